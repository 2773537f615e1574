"""Freshness: domain write -> the view document a client listens to shows it.

Meeting-room views (``users/{uid}/MeetingSession/{meeting}``). Each sample flips
one ticket's ``attendance`` and waits until a client listener on one
participant's view document sees the changed ``attending`` list.

On the emulator the same run also measures the raw floor, no framework, with
plain google-cloud-firestore clients: client ``set()`` -> a "server" listener
-> that listener ``set()``s a derived document -> a client listener sees it.
Two floors: the server listens to the source document itself (what boiler
does on Firestore: one target per document read, all on one stream), or to
its collection (here a one-document collection, the cheapest query target).
A third row, not the issue's yardstick, does boiler's work by hand: the
listener recomputes the meeting's 3 real view documents and writes them in
one library batch (the floors write one small document).
Ratio = boiler p50 / raw p50 (target <= 1.5x); both are printed. All three
paths are warmed up first (untimed): the emulator's JIT is slow when cold.
Even warm, the emulator keeps drifting (the same raw floor measured 3.25,
2.64 and 1.52 ms at p50 in three consecutive rounds of one run), so the
floors and boiler alternate in rounds and each scenario's samples are pooled
across rounds: both sides are measured at the same points of the drift.
Each round's own ratio is printed too.

    python benchmarks/freshness.py [--quick] [--backends embedded,emulator]
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import _common as C

MEETINGS = 100  # meetings x 3 participants live while measuring
PER_MEETING = 3


class Latest:
    """The latest value a listener saw, with the time it arrived."""

    def __init__(self, extract: Callable[[Any], Any]) -> None:
        self.extract = extract
        self.cond = threading.Condition()
        self.value: Any = None
        self.at = 0.0

    def on_value(self, raw: Any) -> None:
        now = time.perf_counter()
        value = self.extract(raw)
        with self.cond:
            self.value, self.at = value, now
            self.cond.notify_all()

    def wait(self, expected: Any, timeout: float = 10.0) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: self.value == expected, timeout):
                raise TimeoutError(f"listener never saw {expected!r} (last {self.value!r})")
            return self.at


def run_samples(
    n: int, warmup: int, write: Callable[[int], Any], latest: Latest, expect: Callable[[int], Any]
) -> list[float]:
    samples = []
    for i in range(warmup + n):
        t0 = time.perf_counter()
        write(i)
        seen = latest.wait(expect(i))
        if i >= warmup:
            samples.append(seen - t0)
        time.sleep(0.002)  # let trailing work (confirmations, writer) settle
    return samples


def attending(data: Any) -> Any:
    return None if data is None else tuple(a["name"] for a in data.get("attending", []))


def boiler_embedded(backend: C.Backend, n: int, warmup: int) -> tuple[list[float], dict[str, Any]]:
    db = backend.open()
    world = C.seed_meetings(db, MEETINGS, PER_MEETING)
    runtime = C.start_runtime(db)
    meeting = world.meetings[0]
    viewer, other = world.participants[meeting][:2]
    ticket = world.ticket(meeting, other)
    latest = Latest(lambda ev: attending(ev.docs[0].data if ev.docs else None))
    watch = db.listen_document(f"users/{viewer}/{C.VIEW_GROUP}/{meeting}", latest.on_value)
    try:

        def write(i: int) -> None:
            world.attendance[ticket] = i % 2 == 1
            db.update(ticket, {"attendance": world.attendance[ticket]})

        samples = run_samples(
            n, warmup, write, latest, lambda i: tuple(world.attending_names(meeting))
        )
        stats = dict(runtime.engine.writer.stats)
    finally:
        watch.unsubscribe()
        runtime.stop()
    return samples, stats


def boiler_emulator(backend: C.Backend, n: int, warmup: int) -> tuple[list[float], dict[str, Any]]:
    db = backend.open()
    world = C.seed_meetings(db, MEETINGS, PER_MEETING)
    runtime = C.start_runtime(db)
    C.wait_quiet(backend, runtime)  # start-up's work is not billed to the samples
    client = backend.raw_client()
    meeting, viewer, _ = flipped(world)
    try:
        samples = flip_samples(client, world, f"users/{viewer}/{C.VIEW_GROUP}/{meeting}", n, warmup)
        stats = dict(runtime.engine.writer.stats)
    finally:
        runtime.stop()
        client.close()
        db.close()
    return samples, stats


def flipped(world: C.Meetings) -> tuple[str, str, str]:
    """``(meeting, viewer, ticket)``: the samples flip the ticket of the first
    meeting's second participant; the first participant's view is watched."""
    meeting = world.meetings[0]
    viewer, other = world.participants[meeting][:2]
    return meeting, viewer, world.ticket(meeting, other)


def flip_samples(
    client: Any, world: C.Meetings, view_path: str, n: int, warmup: int
) -> list[float]:
    """Flip the :func:`flipped` ticket with ``client`` (a plain library client)
    until a listener on ``view_path`` shows the new attending list, n times."""
    meeting, _, ticket = flipped(world)
    latest = Latest(
        lambda snaps: attending(snaps[0].to_dict() if snaps and snaps[0].exists else None)
    )
    watch = client.document(view_path).on_snapshot(
        lambda snaps, changes, read_time: latest.on_value(snaps)
    )
    try:

        def write(i: int) -> None:
            world.attendance[ticket] = i % 2 == 1
            client.document(ticket).update({"attendance": world.attendance[ticket]})

        def expected(i: int) -> tuple[str, ...]:
            return tuple(world.attending_names(meeting))

        latest.wait(expected(-1))  # the view is there before the first sample
        return run_samples(n, warmup, write, latest, expected)
    finally:
        watch.unsubscribe()


def raw_floor(backend: C.Backend, n: int, warmup: int, *, collection_listener: bool) -> list[float]:
    """client set() -> server listener -> server set() of a derived doc -> client listener."""
    server = backend.raw_client()
    client = backend.raw_client()
    tag = "col" if collection_listener else "doc"
    src, dst = f"raw_src_{tag}/s1", f"raw_view_{tag}/v1"
    client.document(src).set({"v": -1})

    def derive(snap: Any) -> None:
        if snap.exists:
            data = snap.to_dict()
            server.document(dst).set({"v": data["v"], "derived": f"value {data['v']}"})

    if collection_listener:
        server_watch = server.collection(src.split("/")[0]).on_snapshot(
            lambda snaps, changes, rt: [derive(c.document) for c in changes]
        )
    else:
        server_watch = server.document(src).on_snapshot(
            lambda snaps, changes, rt: [derive(s) for s in snaps]
        )
    latest = Latest(lambda snaps: snaps[0].to_dict()["v"] if snaps and snaps[0].exists else None)
    client_watch = client.document(dst).on_snapshot(
        lambda snaps, changes, rt: latest.on_value(snaps)
    )
    try:
        latest.wait(-1)
        samples = run_samples(
            n, warmup, lambda i: client.document(src).set({"v": i}), latest, lambda i: i
        )
    finally:
        client_watch.unsubscribe()
        server_watch.unsubscribe()
        server.close()
        client.close()
    return samples


def raw_view_floor(backend: C.Backend, n: int, warmup: int) -> list[float]:
    """The raw floor doing boiler's work by hand: a listener on the ticket
    recomputes its meeting's 3 view documents (real content) and writes them in
    one library batch; a client listens to one of them. No framework, no
    versions, no change detection. Written under ``rawviews/``."""
    db = backend.open()
    world = C.seed_meetings(db, 1, PER_MEETING)
    db.close()
    meeting, viewer, ticket = flipped(world)
    server = backend.raw_client()
    client = backend.raw_client()
    attendance = dict(world.attendance)

    def derive(snap: Any) -> None:
        if snap.exists:
            attendance[ticket] = snap.to_dict()["attendance"]
            data = world.view_data(meeting, attendance)
            batch = server.batch()
            for uid in world.participants[meeting]:
                batch.set(server.document(f"rawviews/{uid}_{meeting}"), data)
            batch.commit()

    server_watch = server.document(ticket).on_snapshot(
        lambda snaps, changes, rt: [derive(s) for s in snaps]
    )
    try:
        samples = flip_samples(client, world, f"rawviews/{viewer}_{meeting}", n, warmup)
    finally:
        server_watch.unsubscribe()
        server.close()
        client.close()
    return samples


def main() -> None:
    args = C.parse_args(__doc__.splitlines()[0])
    n, warmup, rounds = (60, 10, 2) if args.quick else (400, 32, 4)
    report = C.Report("freshness", args)
    report.add(
        f"{MEETINGS} meetings x {PER_MEETING} participants live for boiler; times in ms from "
        f"the start of the domain write; embedded: {n} samples after {warmup} warm-up"
    )
    if "emulator" in args.backends:
        report.add(
            f"emulator: every path warmed up ({10 * warmup} samples each), then {rounds} rounds "
            f"of {n // rounds} samples per scenario (after {warmup} warm-up each), the order "
            "rotating; samples pooled over the rounds"
        )
    headers = ["scenario", "n", "p50", "p90", "p99", "max"]
    rows: list[list[Any]] = []
    notes: list[str] = []
    with C.backends(args.backends, "bench-freshness") as each:
        for backend in each:
            if backend.kind == "embedded":
                samples, wstats = boiler_embedded(backend, n, warmup)
                s = C.summary_ms(samples)
                rows.append(["embedded: boiler", s["n"], s["p50"], s["p90"], s["p99"], s["max"]])
                notes.append(
                    f"embedded p50 {s['p50']:.2f} ms vs target < 2 ms: {C.verdict(s['p50'] < 2.0)}"
                    f"  (writer stats {wstats})"
                )
                continue
            writer: dict[str, Any] = {}

            def boiler(
                k: int, w: int, b: C.Backend = backend, out: dict[str, Any] = writer
            ) -> list[float]:
                samples, out["stats"] = boiler_emulator(b, k, w)
                return samples

            scenarios: dict[str, Callable[[int, int], list[float]]] = {
                "doc": functools.partial(raw_floor, backend, collection_listener=False),
                "col": functools.partial(raw_floor, backend, collection_listener=True),
                "views": functools.partial(raw_view_floor, backend),
                "boiler": boiler,
            }
            # The emulator's JIT is slow when cold: warm every path up first, untimed.
            for run in scenarios.values():
                run(0, 10 * warmup)
            pooled: dict[str, list[float]] = {name: [] for name in scenarios}
            round_ratios = []
            for turn in range(rounds):
                names = list(scenarios)
                names = names[turn % len(names) :] + names[: turn % len(names)]  # none always last
                p50: dict[str, float] = {}
                for name in names:
                    got = scenarios[name](n // rounds, warmup)
                    pooled[name].extend(got)
                    p50[name] = C.percentile(got, 50)
                round_ratios.append(
                    f"{p50['boiler'] * 1e3:.2f} / {p50['doc'] * 1e3:.2f} ms = "
                    f"{p50['boiler'] / p50['doc']:.2f}x"
                )
            raw_doc, raw_col, raw_views, s = (C.summary_ms(v) for v in pooled.values())
            for label, r in (
                ("emulator: raw floor (doc listener)", raw_doc),
                ("emulator: raw floor (collection listener)", raw_col),
                ("emulator: raw floor writing the 3 real views", raw_views),
                ("emulator: boiler", s),
            ):
                rows.append([label, r["n"], r["p50"], r["p90"], r["p99"], r["max"]])
            ratio_doc = s["p50"] / raw_doc["p50"]
            ratio_col = s["p50"] / raw_col["p50"]
            notes.append(
                f"emulator ratio boiler/raw at p50: {ratio_doc:.2f}x vs the doc-listener floor, "
                f"{ratio_col:.2f}x vs the collection-listener floor (target <= 1.5x: "
                f"{C.verdict(ratio_doc <= 1.5)} / {C.verdict(ratio_col <= 1.5)}); "
                f"p99 ratio {s['p99'] / raw_doc['p99']:.2f}x / {s['p99'] / raw_col['p99']:.2f}x"
                f"  (writer stats, last round: {writer['stats']})"
            )
            notes.append(
                "each round, boiler / doc-listener floor at p50: " + "; ".join(round_ratios)
            )
            notes.append(
                "boiler / the floor writing the 3 real views at p50: "
                f"{s['p50'] / raw_views['p50']:.2f}x (not the issue's yardstick: that floor "
                "recomputes the views by hand, writes them in one library batch, and has 1 "
                f"meeting seeded where boiler has {MEETINGS} live)"
            )
    report.table("domain write -> client listener sees the view (ms)", headers, rows)
    report.add("")
    for note in notes:
        report.add(note)
    report.save()


if __name__ == "__main__":
    main()
