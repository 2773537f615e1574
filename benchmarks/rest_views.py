"""Document-As-View vs Flask-As-View: ``GET /meeting_sessions/<id>`` two ways, one server.

One server process (``boiler.serve.Server``, what ``boiler run`` uses, with the
runtime keeping the meeting-room views fresh) serves the same view model
through two ``RestMediator`` s:

- ``/doc/meeting_sessions/<id>``: ``serve_documents=True`` — the maintained
  view document (after the access check; falls back to computing if stale);
- ``/computed/meeting_sessions/<id>``: ``serve_documents=False`` — the view
  computed per request from the domain documents (Flask-As-View).

Every response's ``X-Boiler-View-Source`` header is checked, so each number
belongs to the path it claims. Load: C concurrent keep-alive HTTP clients
(``http.client``, split over 2 load processes, no GIL shared with the server)
requesting random (meeting, participant) pairs for a fixed time; the two
modes alternate (ABAB) in the same run. Ratios are document / computed.

    python benchmarks/rest_views.py [--quick] [--backends embedded,emulator]
"""

from __future__ import annotations

import http.client
import logging
import multiprocessing as mp
import random
import threading
import time
from typing import Any

import _common as C

MEETINGS = 100
PER_MEETING = 5  # the computed view reads the meeting, its location, 5 tickets, 5 users
LOAD_PROCESSES = 2
MODES = ("document", "computed")
PREFIX = {"document": "/doc/meeting_sessions", "computed": "/computed/meeting_sessions"}
SOURCE_HEADER = "X-Boiler-View-Source"
SECRET = "rest-views benchmark secret (127.0.0.1 only)"


# -- the load generator (a separate process) -------------------------------------------------


def _one_client(
    port: int,
    targets: list[tuple[str, str]],
    expect: str,
    seed: int,
    start: float,
    end: float,
    out: dict[str, Any],
) -> None:
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()  # before the start line: connection setup is not measured
    lat: list[float] = []
    errors = wrong = 0
    last_error = ""
    now = time.perf_counter()
    if start > now:
        time.sleep(start - now)
    while True:
        path, token = targets[rnd.randrange(len(targets))]
        t0 = time.perf_counter()
        if t0 >= end:
            break
        try:
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            resp.read()
            t1 = time.perf_counter()
            if resp.status != 200:
                errors += 1
                last_error = f"HTTP {resp.status}"
            elif resp.getheader(SOURCE_HEADER) != expect:
                wrong += 1
            else:
                lat.append(t1 - t0)
        except Exception as e:  # count it, reconnect, go on
            errors += 1
            last_error = repr(e)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.close()
    out.update(lat=lat, errors=errors, wrong=wrong, last_error=last_error)


def _load_process(conn: Any) -> None:
    while True:
        job = conn.recv()
        if job is None:
            return
        port, targets, expect, threads, start, end, seed = job
        results: list[dict[str, Any]] = [{} for _ in range(threads)]
        workers = [
            threading.Thread(
                target=_one_client,
                args=(port, targets, expect, seed * 1000 + i, start, end, results[i]),
            )
            for i in range(threads)
        ]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        lat = [x for r in results for x in r.get("lat", [])]
        conn.send(
            {
                "lat": lat,
                "errors": sum(r.get("errors", 0) for r in results),
                "wrong": sum(r.get("wrong", 0) for r in results),
                "last_error": next((r["last_error"] for r in results if r.get("last_error")), ""),
            }
        )


class LoadGenerators:
    """``LOAD_PROCESSES`` spawned processes running client threads on demand."""

    def __init__(self, n: int = LOAD_PROCESSES) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_load_process, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self._seed = 0

    def run(
        self, port: int, targets: list[tuple[str, str]], expect: str, clients: int, seconds: float
    ) -> dict[str, Any]:
        """``clients`` keep-alive clients for ``seconds``; latencies (s) and counts."""
        start = time.perf_counter() + 0.3  # time for the threads to connect
        end = start + seconds
        share = [
            clients // len(self.conns) + (i < clients % len(self.conns))
            for i in range(len(self.conns))
        ]
        used = [(c, k) for c, k in zip(self.conns, share, strict=True) if k]
        for conn, k in used:
            self._seed += 1
            conn.send((port, targets, expect, k, start, end, self._seed))
        parts = [conn.recv() for conn, _ in used]
        lat = [x for p in parts for x in p["lat"]]
        return {
            "lat": lat,
            "n": len(lat),
            "rate": len(lat) / seconds,
            "errors": sum(p["errors"] for p in parts),
            "wrong": sum(p["wrong"] for p in parts),
            "last_error": next((p["last_error"] for p in parts if p["last_error"]), ""),
        }

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except Exception:
                pass
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# -- the server (this process) ----------------------------------------------------------------


def bench_app() -> Any:
    from boiler.application import App
    from boiler.rest import RestMediator
    from examples.meeting_room.mediators import MeetingSessionMediator
    from examples.meeting_room.views import MeetingSession

    view_path = "users/{user_id}/MeetingSession/{doc_id}"
    rest = [
        RestMediator(
            MeetingSession,
            url_prefix=PREFIX[mode],
            id_param="meeting_id",
            view_path=view_path,
            name=f"meeting_session_{mode}",
            serve_documents=mode == "document",
        )
        for mode in MODES
    ]
    return App("rest_views_bench", mediators=[MeetingSessionMediator], rest=rest)


def check_same_bodies(port: int, targets: list[tuple[str, str]]) -> int:
    """Both routes answer the same JSON from the path they claim; returns pairs checked."""
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    checked = 0
    for path, token in targets[:20]:
        bodies = {}
        for mode in MODES:
            url = path.replace(PREFIX["document"], PREFIX[mode])
            conn.request("GET", url, headers={"Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200, (url, resp.status, body[:200])
            assert resp.getheader(SOURCE_HEADER) == mode, (url, resp.getheader(SOURCE_HEADER))
            bodies[mode] = json.loads(body)
        assert bodies["document"] == bodies["computed"], bodies
        checked += 1
    conn.close()
    return checked


def run_backend(
    backend: C.Backend,
    load: LoadGenerators,
    clients: list[int],
    seconds: float,
    rounds: int,
    meetings: int,
) -> tuple[list[list[Any]], list[str]]:
    from boiler.auth import DevTokenVerifier
    from boiler.serve import Server

    db = backend.open()
    t = time.perf_counter()
    world = C.seed_meetings(db, meetings, PER_MEETING)
    app = bench_app()
    runtime = app.runtime(db).start()
    if not runtime.wait_idle(300):
        raise TimeoutError(f"runtime not idle: {runtime.health()}")
    setup_s = time.perf_counter() - t
    verifier = DevTokenVerifier(SECRET)
    tokens = {uid: verifier.issue(uid) for m in world.meetings for uid in world.participants[m]}
    server = Server(app, db, verifier=verifier, runtime=runtime, port=0).start()
    rows: list[list[Any]] = []
    notes: list[str] = []
    try:
        targets = {
            mode: [
                (f"{PREFIX[mode]}/{m}", tokens[uid])
                for m in world.meetings
                for uid in world.participants[m]
            ]
            for mode in MODES
        }
        checked = check_same_bodies(server.port, targets["document"])
        notes.append(
            f"{backend.kind}: seeded and {len(tokens)} views built in {setup_s:.1f} s; "
            f"{checked} views identical on both routes, headers as claimed"
        )
        for mode in MODES:  # warm-up: connections, caches, JIT of the emulator
            load.run(server.port, targets[mode], mode, max(clients), min(1.0, seconds))
        for c in clients:
            got: dict[str, dict[str, Any]] = {
                m: {"lat": [], "n": 0, "secs": 0.0, "errors": 0, "wrong": 0} for m in MODES
            }
            order = [m for _ in range(rounds) for m in MODES]  # ABAB: noise hits both
            for mode in order:
                r = load.run(server.port, targets[mode], mode, c, seconds)
                g = got[mode]
                g["lat"] += r["lat"]
                g["n"] += r["n"]
                g["secs"] += seconds
                g["errors"] += r["errors"]
                g["wrong"] += r["wrong"]
                if r["last_error"]:
                    notes.append(f"{backend.kind} {mode} C={c}: {r['last_error']}")
            stats = {}
            for mode in MODES:
                g = got[mode]
                s = C.summary_ms(g["lat"])
                stats[mode] = s | {"rate": g["n"] / g["secs"]}
                rows.append(
                    [
                        f"{backend.kind}: {mode}",
                        c,
                        g["n"],
                        stats[mode]["rate"],
                        s["p50"],
                        s["p90"],
                        s["p99"],
                        g["errors"] + g["wrong"],
                    ]
                )
            d, k = stats["document"], stats["computed"]
            rows.append(
                [
                    f"{backend.kind}: ratio doc/computed",
                    c,
                    "",
                    f"{d['rate'] / k['rate']:.2f}x",
                    f"{d['p50'] / k['p50']:.2f}x",
                    f"{d['p90'] / k['p90']:.2f}x",
                    f"{d['p99'] / k['p99']:.2f}x",
                    "",
                ]
            )
        health = runtime.health()
        notes.append(
            f"{backend.kind}: runtime errors {len(runtime.errors)}, running {health.get('running')}"
        )
    finally:
        server.stop()
        runtime.stop(raise_errors=False)
    return rows, notes


def main() -> None:
    args = C.parse_args(__doc__.splitlines()[0])
    # Werkzeug logs one line per request to stderr (as under `boiler run`); the
    # benchmark keeps the lines out of its output (and their cost out of the numbers).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    clients = [1, 8, 32]
    seconds, rounds = (2.0, 1) if args.quick else (5.0, 2)
    meetings = MEETINGS // 5 if args.quick else MEETINGS
    report = C.Report("rest_views", args)
    report.add(
        f"GET /meeting_sessions/<id> for random (meeting, participant) of {meetings} meetings x "
        f"{PER_MEETING} participants; C keep-alive clients in {LOAD_PROCESSES} load processes; "
        f"{rounds} x {seconds:.1f} s per mode and C, modes alternating; latency in ms"
    )
    headers = ["backend: path", "C", "requests", "req/s", "p50", "p90", "p99", "err"]
    rows: list[list[Any]] = []
    notes: list[str] = []
    load = LoadGenerators()
    try:
        with C.backends(args.backends, "bench-rest-views") as each:
            for backend in each:
                r, n = run_backend(backend, load, clients, seconds, rounds, meetings)
                rows += r
                notes += n
    finally:
        load.close()
    report.table("document (maintained view) vs computed (per request)", headers, rows)
    report.add("")
    for note in notes:
        report.add(note)
    report.save()


if __name__ == "__main__":
    main()
