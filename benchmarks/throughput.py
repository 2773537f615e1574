"""Throughput: sustained domain changes per second one runtime keeps fresh.

A single writer (a separate process on the emulator, so it shares no GIL with
the runtime; in-process on the embedded store) flips ticket ``attendance`` as
fast as it can for a fixed time, cycling over the tickets of many meetings
(each change alters the 3 views of one meeting). A client listening to every
view document (one target each, as front ends do) records when the LAST view
reaches its final content.

    boiler changes/s = changes written / (time from first write to last view fresh)

compared with the raw single-writer rate of each backend in the same run:
sequential ``set()`` s per second by the same writer with no runtime. The
issue's target compares each runtime with the EMULATOR's raw single-writer
rate (>= 0.8x); both ratios are printed. Each measurement follows a few
seconds of the same work, untimed (the emulator's JIT is slow when cold).

On the emulator it also prints the CPU both sides spend per change: the
emulator's processes (read from /proc) and the runtime's process. On a small
machine the emulator, which does several times a raw write's work for each
change (the write, its delivery to the runtime, the view commit, the
client's deliveries), is what runs out of CPU first.

    python benchmarks/throughput.py [--quick] [--backends embedded,emulator]
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import _common as C

PER_MEETING = 3


def emulator_cpu(backend: C.Backend) -> float | None:
    """CPU seconds the emulator's processes used so far (None: not the emulator)."""
    pid = backend.emu.pid if backend.emu is not None else None
    return None if pid is None else C.group_cpu_seconds(pid)


def cpu_per_change_ms(backend: C.Backend, cpu0: float | None, n: int) -> float | None:
    cpu1 = emulator_cpu(backend)
    return None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000.0 / max(1, n)


def raw_rate(backend: C.Backend, seconds: float, warmup: float) -> dict[str, Any]:
    client = backend.client()
    try:
        ops = [
            ("set", f"rawwrites/d{i % 1000:04d}", {"v": i, "payload": "x" * 64})
            for i in range(int(seconds * 4000))
        ]
        client.write_for(ops, warmup)  # the emulator's JIT warms up on this path too
        cpu0 = emulator_cpu(backend)
        t0, t1, n = client.write_for(ops, seconds)
        cpu_ms = cpu_per_change_ms(backend, cpu0, n)
    finally:
        client.close()
    return {"n": n, "secs": t1 - t0, "rate": n / (t1 - t0), "emulator_cpu_ms": cpu_ms}


def converge(client: Any, world: C.Meetings, runtime: Any) -> float:
    """Wait until the client sees every view as ``world`` says; returns when."""
    expected: dict[str, dict[str, Any]] = {}
    for m in world.meetings:
        expected.update(world.expected_views(m))
    fresh = client.expect(expected, 120.0)
    if fresh is None:
        raise TimeoutError(f"views did not converge within 120 s: {runtime.health()}")
    return float(fresh)


def boiler_rate(backend: C.Backend, meetings: int, seconds: float, warmup: float) -> dict[str, Any]:
    db = backend.open()
    world = C.seed_meetings(db, meetings, PER_MEETING)
    runtime = C.start_runtime(db)
    client = backend.client()
    try:
        views = client.listen_documents(world.all_view_paths())
        assert views == world.view_count, (views, world.view_count)
        tickets = [world.ticket(m, uid) for m in world.meetings for uid in world.participants[m]]
        random.Random(7).shuffle(tickets)
        state = dict(world.attendance)
        ops = []
        for i in range(int((seconds + warmup) * 4000)):
            path = tickets[i % len(tickets)]
            state[path] = not state[path]
            ops.append(("update", path, {"attendance": state[path]}))
        # Warm up (the emulator's JIT, the runtime's caches) on the same work, untimed.
        _, _, warm = client.write_for(ops, warmup)
        for _, path, data in ops[:warm]:
            world.attendance[path] = data["attendance"]
        converge(client, world, runtime)
        C.wait_quiet(backend, runtime)
        ops = ops[warm:]
        builds0 = runtime.engine.stats["builds"]
        wstats0 = dict(runtime.engine.writer.stats)
        cpu0 = emulator_cpu(backend)
        own0 = time.process_time()  # this process: the runtime (and, embedded, the writer)
        t0, t1, n = client.write_for(ops, seconds)
        for _, path, data in ops[:n]:
            world.attendance[path] = data["attendance"]
        fresh = converge(client, world, runtime)
        runtime.wait_idle(60)
        cpu_ms = cpu_per_change_ms(backend, cpu0, n)
        own_ms = (time.process_time() - own0) * 1000.0 / max(1, n)
        builds = runtime.engine.stats["builds"] - builds0
        wstats = {k: v - wstats0[k] for k, v in runtime.engine.writer.stats.items()}
        health = runtime.health()
    finally:
        client.close()
        runtime.stop()
    total = fresh - t0
    return {
        "n": n,
        "write_secs": t1 - t0,
        "writer_rate": n / (t1 - t0),
        "lag": fresh - t1,
        "rate": n / total,
        "builds": builds,
        "view_writes": wstats["writes"],
        "skipped": wstats["skipped"],
        "views": world.view_count,
        "watches": health["watches"],
        "emulator_cpu_ms": cpu_ms,
        "runtime_cpu_ms": own_ms,
    }


def main() -> None:
    args = C.parse_args(__doc__.splitlines()[0])
    seconds, meetings = (5.0, 100) if args.quick else (20.0, 300)
    warmup = 3.0 if args.quick else 15.0
    report = C.Report("throughput", args)
    report.add(
        f"writer runs {seconds:.0f} s flat out after {warmup:.0f} s of the same work untimed; boiler: "
        f"{meetings} meetings x {PER_MEETING} participants = {meetings * PER_MEETING} live views, "
        "each change flips one ticket"
    )
    rows: list[list[Any]] = []
    notes: list[str] = []
    boiler_rates: dict[str, float] = {}
    emulator_raw: float | None = None
    with C.backends(args.backends, "bench-throughput") as each:
        for backend in each:
            raw = raw_rate(backend, seconds, warmup)
            b = boiler_rate(backend, meetings, seconds, warmup)
            ratio = b["rate"] / raw["rate"]
            boiler_rates[backend.kind] = b["rate"]
            if backend.kind == "emulator":
                emulator_raw = raw["rate"]
            rows.append(
                [
                    f"{backend.kind}: raw single writer (set/s)",
                    raw["n"],
                    raw["rate"],
                    "-",
                    "-",
                    "-",
                    "-",
                ]
            )
            rows.append(
                [
                    f"{backend.kind}: boiler (changes/s, fresh)",
                    b["n"],
                    b["rate"],
                    b["writer_rate"],
                    b["lag"] * 1000,
                    b["builds"],
                    b["view_writes"],
                ]
            )
            notes.append(
                f"{backend.kind}: boiler / this backend's raw writer = {ratio:.2f}x; "
                f"{b['builds'] / max(1, b['n']):.2f} builds and {b['view_writes'] / max(1, b['n']):.2f} "
                f"view writes per change (3 views per change; coalescing lowers it), "
                f"{b['skipped']} writes skipped as unchanged, {b['watches']} watches"
            )
            if backend.remote:
                notes.append(
                    f"{backend.kind}: the runtime's process used {b['runtime_cpu_ms']:.2f} ms CPU per "
                    f"change (all its threads): one core keeps up with "
                    f"{1000.0 / b['runtime_cpu_ms']:.0f} changes/s"
                )
            if raw["emulator_cpu_ms"] is not None and b["emulator_cpu_ms"] is not None:
                cores = os.cpu_count() or 1
                ceiling = cores * 1000.0 / b["emulator_cpu_ms"]
                notes.append(
                    f"emulator CPU per change: raw write {raw['emulator_cpu_ms']:.2f} ms, boiler "
                    f"{b['emulator_cpu_ms']:.2f} ms (the write, its delivery to the runtime, the "
                    f"view commit, the client's deliveries); even with all {cores} cores to itself "
                    f"the emulator could serve at most {ceiling:.0f} boiler changes/s "
                    f"({ceiling / raw['rate']:.2f}x the raw writer)"
                )
    report.table(
        "sustained changes per second",
        ["scenario", "changes", "per s", "writer/s", "lag ms", "builds", "view writes"],
        rows,
    )
    report.add(
        "(per s: changes / (first write .. last view fresh); writer/s: the writer's own rate while the runtime ran;"
    )
    report.add(" lag: last write -> last view fresh)\n")
    for note in notes:
        report.add(note)
    if emulator_raw is not None:
        report.add(
            f"\ntarget (boiler changes/s vs the emulator's raw single-writer rate, "
            f"{emulator_raw:.0f}/s in this run, >= 0.8x):"
        )
        for kind, rate in boiler_rates.items():
            r = rate / emulator_raw
            report.add(f"  {kind} runtime: {r:.2f}x: {C.verdict(r >= 0.8)}")
    report.save()


if __name__ == "__main__":
    main()
