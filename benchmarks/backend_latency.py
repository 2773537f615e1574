"""Backend latency: embedded (``:memory:`` and a SQLite file) vs the Firestore emulator.

Run: ``python benchmarks/backend_latency.py [--samples 500] [--warmup 200]``

Starts its own Cloud Firestore emulator, then measures, for each backend in
this one run: single-document write (``set``), ``get``, a small query
(equality filter + limit 10 over 100 documents), and write→listener
notification (a document listener on the written document; time from just
before ``set()`` to the callback seeing that write). Prints p50/p99 in
milliseconds and the same-run emulator/embedded ratios for the listener.

Targets: embedded write→listener p50 < 1 ms, and ≥ 10× faster than the emulator.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from boiler.database import Database, ListenEvent, Query, open_database
from boiler.testing import FirestoreEmulator

OPS = ("write", "get", "query", "write→listener")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def timed(fn: Callable[[], object], n: int) -> list[float]:
    """``n`` latencies of ``fn()`` in milliseconds."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def listener_latencies(db: Database, path: str, n: int, *, start: int) -> list[float]:
    """Write ``{"seq": i}`` to ``path`` ``n`` times; the time until a document
    listener on ``path`` sees each write (ms)."""
    seen = threading.Condition()
    state = {"seq": -1, "at": 0.0}

    def on_event(event: ListenEvent) -> None:
        at = time.perf_counter()
        if event.docs:
            with seen:
                state["seq"] = event.docs[0].get("seq", -1)
                state["at"] = at
                seen.notify_all()

    db.set(path, {"seq": start - 1})
    watch = db.listen_document(path, on_event)
    try:
        with seen:
            if not seen.wait_for(lambda: state["seq"] == start - 1, timeout=30):
                raise RuntimeError(f"listener on {path} never delivered its initial snapshot")
        out = []
        for seq in range(start, start + n):
            t0 = time.perf_counter()
            db.set(path, {"seq": seq})
            with seen:
                if not seen.wait_for(lambda seq=seq: state["seq"] == seq, timeout=30):
                    raise RuntimeError(f"listener on {path} missed write {seq}")
                out.append((state["at"] - t0) * 1000)
        return out
    finally:
        watch.unsubscribe()


def measure(db: Database, samples: int, warmup: int) -> dict[str, list[float]]:
    for i in range(100):
        db.set(f"bench_query/q{i:03d}", {"group": i % 10, "n": i})
    counter = iter(range(10**9))

    def write() -> None:
        db.set("bench/w", {"n": next(counter), "name": "benchmark", "tags": ["a", "b"]})

    def get() -> None:
        db.get("bench/w")

    small = Query("bench_query").where("group", "==", 3).limit(10)

    def query() -> None:
        assert len(db.query(small)) == 10

    results: dict[str, list[float]] = {}
    for name, fn in (("write", write), ("get", get), ("query", query)):
        timed(fn, warmup)
        results[name] = timed(fn, samples)
    listener_latencies(db, "bench/listen", warmup, start=0)
    results["write→listener"] = listener_latencies(db, "bench/listen", samples, start=warmup)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500, help="samples per operation")
    parser.add_argument(
        "--warmup",
        type=int,
        default=200,
        help="warm-up operations (the emulator JVM needs a few hundred)",
    )
    args = parser.parse_args(argv)

    all_results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="boiler-bench-") as tmp:
        with open_database("embedded", path=":memory:") as db:
            all_results["embedded :memory:"] = measure(db, args.samples, args.warmup)
        with open_database("embedded", path=str(Path(tmp) / "bench.sqlite")) as db:
            all_results["embedded file"] = measure(db, args.samples, args.warmup)
    with FirestoreEmulator() as emulator:
        project = f"bench-{uuid.uuid4().hex[:8]}"
        with open_database("firestore", project=project, emulator_host=emulator.host) as db:
            all_results["firestore emulator"] = measure(db, args.samples, args.warmup)

    print(f"\nbackend latency, ms ({args.samples} samples each, {args.warmup} warm-up)\n")
    header = f"{'backend':<20}" + "".join(f"{op + ' p50':>22}{'p99':>8}" for op in OPS)
    print(header)
    print("-" * len(header))
    for backend, res in all_results.items():
        cells = "".join(
            f"{percentile(res[op], 50):>22.3f}{percentile(res[op], 99):>8.3f}" for op in OPS
        )
        print(f"{backend:<20}{cells}")

    emu = all_results["firestore emulator"]["write→listener"]
    print("\nwrite→listener, emulator / embedded (same run):")
    ok = True
    for backend in ("embedded :memory:", "embedded file"):
        lat = all_results[backend]["write→listener"]
        r50 = percentile(emu, 50) / percentile(lat, 50)
        r99 = percentile(emu, 99) / percentile(lat, 99)
        print(f"  vs {backend:<18} p50 {r50:6.1f}x   p99 {r99:6.1f}x")
    mem = all_results["embedded :memory:"]["write→listener"]
    p50 = percentile(mem, 50)
    ratio = percentile(emu, 50) / p50
    print(
        f"\ntargets: embedded :memory: write→listener p50 {p50:.3f} ms (< 1 ms: "
        f"{'yes' if p50 < 1 else 'NO'}); {ratio:.1f}x faster than the emulator "
        f"(>= 10x: {'yes' if ratio >= 10 else 'NO'}); "
        f"mean {statistics.fmean(mem):.3f} ms"
    )
    ok = p50 < 1 and ratio >= 10
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
