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
rate (>= 0.8x); both ratios are printed.

    python benchmarks/throughput.py [--quick] [--backends embedded,emulator]
"""

from __future__ import annotations

import random
from typing import Any

import _common as C

PER_MEETING = 3


def raw_rate(backend: C.Backend, seconds: float) -> dict[str, Any]:
    client = backend.client()
    try:
        ops = [
            ("set", f"rawwrites/d{i % 1000:04d}", {"v": i, "payload": "x" * 64})
            for i in range(int(seconds * 4000))
        ]
        t0, t1, n = client.write_for(ops, seconds)
    finally:
        client.close()
    return {"n": n, "secs": t1 - t0, "rate": n / (t1 - t0)}


def boiler_rate(backend: C.Backend, meetings: int, seconds: float) -> dict[str, Any]:
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
        for i in range(int(seconds * 4000)):
            path = tickets[i % len(tickets)]
            state[path] = not state[path]
            ops.append(("update", path, {"attendance": state[path]}))
        builds0 = runtime.engine.stats["builds"]
        wstats0 = dict(runtime.engine.writer.stats)
        t0, t1, n = client.write_for(ops, seconds)
        for _, path, data in ops[:n]:
            world.attendance[path] = data["attendance"]
        expected: dict[str, dict[str, Any]] = {}
        for m in world.meetings:
            expected.update(world.expected_views(m))
        fresh = client.expect(expected, 120.0)
        if fresh is None:
            raise TimeoutError(f"views did not converge within 120 s: {runtime.health()}")
        runtime.wait_idle(60)
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
    }


def main() -> None:
    args = C.parse_args(__doc__.splitlines()[0])
    seconds, meetings = (5.0, 100) if args.quick else (20.0, 300)
    report = C.Report("throughput", args)
    report.add(
        f"writer runs {seconds:.0f} s flat out; boiler: {meetings} meetings x {PER_MEETING} "
        f"participants = {meetings * PER_MEETING} live views, each change flips one ticket"
    )
    rows: list[list[Any]] = []
    notes: list[str] = []
    boiler_rates: dict[str, float] = {}
    emulator_raw: float | None = None
    with C.backends(args.backends, "bench-throughput") as each:
        for backend in each:
            raw = raw_rate(backend, seconds)
            b = boiler_rate(backend, meetings, seconds)
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
