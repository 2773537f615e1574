"""Push latency and fan-out: domain write -> Socket.IO ``view`` event at every client.

The meeting-room demo (``examples.meeting_room``): N clients connect to
``/meeting_sessions`` with a development token for ``tijuana`` and subscribe to
``meeting_1`` — all N follow the same view document (one Socket.IO room, so
one write is one broadcast to N sockets). Each sample flips
``tickets/ticket_thomasina.attendance`` and times, from the start of that
write, the arrival of the new ``view`` at the FIRST and at the LAST of the N
clients (``perf_counter``: one monotonic clock for every process here).

Scenarios, each with N = 1, 100, 1,000 (clients added between levels, one
server run per scenario):

- ``embedded, 1 process``: ``boiler.serve.Server`` + runtime in this process
  (the embedded store lives in-process, so the write is made here too);
- ``emulator, 1 process``: ``boiler run examples.meeting_room:app`` (runtime +
  HTTP + Socket.IO) as a subprocess; the write comes from this process;
- ``emulator, 2 processes + Redis``: ``boiler run ... --message-queue
  redis://127.0.0.1:6379/0 --channel <unique>`` (runtime + web) and the same
  with ``--web-only``; clients alternate between the two (client 0 on the
  web-only one, so N = 1 measures the cross-process path).

Clients: a minimal asyncio Socket.IO/Engine.IO v4 websocket client (wsproto,
one event loop per client process, several processes), so that receiving
stays cheap next to the server; the arrival time is taken when the bytes are
read, before parsing.

    python benchmarks/push.py [--quick] [--scenarios embedded,emulator,redis] [--clients 1,100,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

import _common as C

NAMESPACE = "/meeting_sessions"
MEETING = "meeting_1"
VIEWER = "tijuana"
TICKET = "tickets/ticket_thomasina"
APP = "examples.meeting_room:app"
SECRET = "push benchmark secret (127.0.0.1 only)"
REDIS = "redis://127.0.0.1:6379/0"
CLIENT_PROCESSES = 4
CONNECT_CONCURRENCY = 16  # per client process (Werkzeug's listen backlog is 128)


# -- the client side: one asyncio loop holding many Socket.IO connections ------------------------


class _Conn(asyncio.Protocol):
    """One websocket Socket.IO client: connect, authenticate, subscribe, record ``view`` s."""

    def __init__(self, owner: _Clients, group: int, host: str, token: str) -> None:
        from wsproto import ConnectionType, WSConnection

        self.owner = owner
        self.group = group
        self.host = host
        self.token = token
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.transport: Any = None
        self.parts: list[str] = []
        self.key: Any = None  # the attending names of the newest view
        self.at = 0.0  # when that key arrived
        self.events = 0
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        from wsproto.events import Request

        self.transport = transport
        target = "/socket.io/?EIO=4&transport=websocket"
        transport.write(self.ws.send(Request(host=self.host, target=target)))

    def send(self, text: str) -> None:
        from wsproto.events import TextMessage

        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(self.ws.send(TextMessage(data=text)))

    def data_received(self, data: bytes) -> None:
        from wsproto.events import CloseConnection, Ping, TextMessage

        at = time.perf_counter()
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                self.parts.append(event.data)
                if event.message_finished:
                    text, self.parts = "".join(self.parts), []
                    self.on_message(text, at)
            elif isinstance(event, Ping):
                self.transport.write(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._fail(f"closed by the server ({event.code})")

    def on_message(self, text: str, at: float) -> None:
        ns = NAMESPACE + ","
        if text == "2":  # engine.io ping
            self.send("3")
        elif text.startswith("0"):  # engine.io open: connect the namespace
            self.send(f"40{ns}" + json.dumps({"token": self.token}))
        elif text.startswith("40" + ns):
            self.send(f"42{ns}1" + json.dumps(["subscribe", {"meeting_id": MEETING}]))
        elif text.startswith("44" + ns):
            self._fail(f"connect refused: {text}")
        elif text.startswith("42" + ns):
            name, body = json.loads(text[len(ns) + 2 :])
            if name == "view":
                self.events += 1
                data = body.get("data") or {}
                key = tuple(sorted(a["name"] for a in data.get("attending", [])))
                if key != self.key:
                    self.owner.changed(self, self.key, key)
                    self.key, self.at = key, at
                if not self.ready.done():
                    self.ready.set_result(True)
            elif name == "error":
                self._fail(f"error event: {body}")

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"connection lost: {exc}")
        self.transport = None

    def close(self) -> None:
        from wsproto.events import CloseConnection

        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.write(self.ws.send(CloseConnection(code=1000)))
            self.transport.close()


class _Clients:
    """Every connection of one client process, and the wait for a target view."""

    def __init__(self) -> None:
        self.conns: list[_Conn] = []
        self.target: Any = None
        self.matching = 0
        self.all_match = asyncio.Event()

    def changed(self, conn: _Conn, old: Any, new: Any) -> None:
        if self.target is None:
            return
        if old == self.target:
            self.matching -= 1
        if new == self.target:
            self.matching += 1
            if self.matching == len(self.conns):
                self.all_match.set()

    async def connect(self, servers: list[tuple[int, str, int]], token: str) -> int:
        """Open one connection per ``(group, host, port)``; each gets its first view."""
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(group: int, host: str, port: int) -> None:
            async with gate:
                _, conn = await loop.create_connection(
                    lambda: _Conn(self, group, f"{host}:{port}", token), host, port
                )
                self.conns.append(conn)
                await asyncio.wait_for(conn.ready, 60)

        await asyncio.gather(*(one(*s) for s in servers))
        return len(self.conns)

    async def expect(self, key: Any, since: float, timeout: float) -> dict[str, Any]:
        """Wait until every connection holds ``key``; first/last arrival per group."""
        self.target = key
        self.matching = sum(1 for c in self.conns if c.key == key)
        self.all_match.clear()
        if self.matching < len(self.conns):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_match.wait(), timeout)
        self.target = None
        groups: dict[int, list[float]] = {}
        missing = 0
        for c in self.conns:
            if c.key == key and c.at >= since:
                groups.setdefault(c.group, []).append(c.at)
            else:
                missing += 1
        return {
            "groups": {g: (min(ts), max(ts), len(ts)) for g, ts in groups.items()},
            "missing": missing,
        }


def _client_process(conn: Any) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        clients = _Clients()
        while True:
            msg = await loop.run_in_executor(None, conn.recv)
            if msg is None:
                break
            name, args = msg
            try:
                if name == "connect":
                    result: Any = await clients.connect(*args)
                elif name == "expect":
                    result = await clients.expect(*args)
                elif name == "events":
                    result = sum(c.events for c in clients.conns)
                else:
                    raise ValueError(name)
                conn.send(("ok", result))
            except Exception as e:
                conn.send(("error", repr(e)))
        for c in clients.conns:
            c.close()
        await asyncio.sleep(0.2)

    asyncio.run(serve())


class ClientPool:
    """``CLIENT_PROCESSES`` spawned processes holding the Socket.IO clients."""

    def __init__(self, n: int = CLIENT_PROCESSES) -> None:
        ctx = mp.get_context("spawn")
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_client_process, args=(child,), daemon=True)
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.size = 0

    def _all(self, calls: list[tuple[Any, tuple[str, tuple[Any, ...]]]]) -> list[Any]:
        for conn, msg in calls:
            conn.send(msg)
        out = []
        for conn, msg in calls:
            status, value = conn.recv()
            if status != "ok":
                raise RuntimeError(f"client process: {msg[0]}: {value}")
            out.append(value)
        return out

    def grow(self, total: int, servers: list[tuple[str, int]], token: str) -> None:
        """Add clients up to ``total``; client ``i`` goes to ``servers[i % len(servers)]``."""
        plan: dict[int, list[tuple[int, str, int]]] = {}
        for i in range(self.size, total):
            group = i % len(servers)
            plan.setdefault(i % len(self.conns), []).append((group, *servers[group]))
        self._all([(self.conns[p], ("connect", (s, token))) for p, s in plan.items()])
        self.size = total

    def expect(self, key: Any, since: float, timeout: float) -> dict[str, Any]:
        parts = self._all([(c, ("expect", (key, since, timeout))) for c in self.conns])
        groups: dict[int, list[tuple[float, float, int]]] = {}
        for part in parts:
            for g, v in part["groups"].items():
                groups.setdefault(g, []).append(v)
        merged = {
            g: (min(v[0] for v in vs), max(v[1] for v in vs), sum(v[2] for v in vs))
            for g, vs in groups.items()
        }
        return {"groups": merged, "missing": sum(p["missing"] for p in parts)}

    def events(self) -> int:
        return sum(self._all([(c, ("events", ())) for c in self.conns]))

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.send(None)
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)


# -- the servers -----------------------------------------------------------------------------------


class BoilerRun:
    """``boiler run APP`` as a subprocess in its own process group (stopped with SIGTERM)."""

    def __init__(self, env: dict[str, str], *extra: str) -> None:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "boiler.cli", "run", APP, "--port", str(self.port), *extra]
        self.log = open(os.devnull, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=C.ROOT,
            env={**os.environ, **env},
            stdout=self.log,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        def answers() -> bool:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"boiler run exited {self.proc.returncode}: {err[-2000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return True
            except urllib.error.HTTPError:
                return True  # 503: web only, but serving
            except OSError:
                return False

        C.wait_until(answers, timeout, f"boiler run on port {self.port}", interval=0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.proc.stderr is not None:
            self.proc.stderr.close()
        self.log.close()


def _free_port() -> int:
    from boiler.testing import free_port

    return free_port()


# -- measuring -------------------------------------------------------------------------------------


def attending_key(attends: bool) -> tuple[str, ...]:
    return ("Thomasina Manes", "Tijuana Furlong") if attends else ("Tijuana Furlong",)


def measure(
    pool: ClientPool,
    write: Any,
    n: int,
    warmup: int,
    state: dict[str, bool],
    groups: int,
    written: Any = None,
) -> dict[str, Any]:
    """``n`` flips (after ``warmup``); first/last arrival per sample, per group and overall.

    ``written()`` (optional): when the runtime committed the viewer's new view
    (its writer's listener), for the part of the latency after the runtime."""
    first: list[float] = []
    last: list[float] = []
    by_group: dict[int, tuple[list[float], list[float]]] = {g: ([], []) for g in range(groups)}
    after_write: tuple[list[float], list[float]] = ([], [])
    spread: list[float] = []
    missing = failures = 0
    for i in range(warmup + n):
        state["attends"] = not state["attends"]
        t0 = time.perf_counter()
        write(state["attends"])
        got = pool.expect(attending_key(state["attends"]), t0, 10.0)
        if got["missing"]:
            missing += got["missing"]
            failures += 1
            if failures >= 3:  # keep the run bounded
                raise TimeoutError(f"{got['missing']} clients never got the view (3 flips)")
            time.sleep(0.5)
            continue
        if i < warmup:
            continue
        g = got["groups"]
        t_first, t_last = min(v[0] for v in g.values()), max(v[1] for v in g.values())
        first.append(t_first - t0)
        last.append(t_last - t0)
        spread.append(t_last - t_first)
        for k, v in g.items():
            by_group[k][0].append(v[0] - t0)
            by_group[k][1].append(v[1] - t0)
        if written is not None:
            tw = written(t0)
            if tw is not None:
                after_write[0].append(t_first - tw)
                after_write[1].append(t_last - tw)
        time.sleep(0.02)
    return {
        "first": first,
        "last": last,
        "by_group": by_group,
        "after_write": after_write,
        "spread": spread,
        "missing": missing,
    }


def run_levels(
    label: str,
    pool: ClientPool,
    servers: list[tuple[str, int]],
    token: str,
    write: Any,
    levels: list[int],
    samples: dict[int, int],
    group_names: list[str],
    written: Any = None,
    emit_times: list[float] | None = None,
) -> tuple[list[list[Any]], list[str]]:
    rows: list[list[Any]] = []
    notes: list[str] = []
    state = {"attends": True}
    for level in levels:
        t = time.perf_counter()
        pool.grow(level, servers, token)
        connect_s = time.perf_counter() - t
        events0 = pool.events()
        if emit_times is not None:
            emit_times.clear()
        r = measure(pool, write, samples[level], 3, state, len(servers), written)
        events = pool.events() - events0
        f, la = C.summary_ms(r["first"]), C.summary_ms(r["last"])
        sp = C.summary_ms(r["spread"])
        rows.append(
            [label, level, f["n"], f["p50"], f["p99"], la["p50"], la["p90"], la["p99"], sp["p50"]]
        )
        if len(servers) > 1 and level > 1:
            for g, name in enumerate(group_names):
                sf, sl = (C.summary_ms(x) for x in r["by_group"][g])
                share = (level + len(servers) - 1 - g) // len(servers)
                rows.append(
                    [
                        f"  {name} only",
                        share,
                        sl["n"],
                        sf["p50"],
                        sf["p99"],
                        sl["p50"],
                        sl["p90"],
                        sl["p99"],
                        "",
                    ]
                )
        if r["after_write"][0]:
            sf, sl = (C.summary_ms(x) for x in r["after_write"])
            rows.append(
                [
                    "  of which view written -> client",
                    level,
                    sl["n"],
                    sf["p50"],
                    sf["p99"],
                    sl["p50"],
                    sl["p90"],
                    sl["p99"],
                    "",
                ]
            )
        if emit_times is not None:
            e = C.summary_ms(emit_times)
            notes.append(
                f"{label}, N={level}: SocketIO.emit to the room returns after p50 {e['p50']:.2f} ms "
                f"(p99 {e['p99']:.2f}; a packet queued for each of the {level} sockets; "
                "their writer threads send afterwards)"
            )
            emit_times.clear()
        flips = samples[level] + 3
        notes.append(
            f"{label}, N={level}: {level} clients connected+subscribed in {connect_s:.1f} s; "
            f"{events} view events for {flips} flips x {level} clients "
            f"({events / max(1, flips * level):.2f} per client per flip); "
            f"missed deliveries {r['missing']}"
        )
    return rows, notes


def write_emulator(host: str, project: str) -> tuple[Any, Any]:
    from boiler.database import open_database

    db = open_database("firestore", project=project, emulator_host=host)

    def write(attends: bool) -> None:
        db.update(TICKET, {"attendance": attends})

    return db, write


def wait_view(db: Any, timeout: float = 60.0) -> None:
    path = f"users/{VIEWER}/MeetingSession/{MEETING}"
    C.wait_until(lambda: db.get(path).exists, timeout, f"view {path}", interval=0.1)


def scenario_embedded(
    pool: ClientPool, levels: list[int], samples: dict[int, int]
) -> tuple[list[list[Any]], list[str]]:
    import tempfile

    from boiler.auth import DevTokenVerifier
    from boiler.database import open_database
    from boiler.serve import Server
    from examples.meeting_room import app, seed

    verifier = DevTokenVerifier(SECRET)
    with tempfile.TemporaryDirectory(prefix="boiler-push-") as tmp:
        db = open_database("embedded", path=os.path.join(tmp, "push.sqlite3"))
        seed.seed(db)
        runtime = app.runtime(db).start()
        server = None
        try:
            if not runtime.wait_idle(60):
                raise TimeoutError("runtime not idle")
            server = Server(app, db, verifier=verifier, runtime=runtime, port=0).start()

            def write(attends: bool) -> None:
                db.update(TICKET, {"attendance": attends})

            view = f"users/{VIEWER}/MeetingSession/{MEETING}"
            commits: list[float] = []

            def on_commit(path: str, data: Any, version: Any) -> None:
                if path == view:
                    commits.append(time.perf_counter())

            def written(since: float) -> float | None:
                return next((t for t in reversed(commits) if t >= since), None)

            runtime.engine.writer.add_listener(on_commit)
            assert server.socketio is not None
            emit, emit_times = server.socketio.emit, []

            def timed_emit(*a: Any, **k: Any) -> Any:  # what the publisher calls per version
                t = time.perf_counter()
                try:
                    return emit(*a, **k)
                finally:
                    if k.get("to") == view:
                        emit_times.append(time.perf_counter() - t)

            server.socketio.emit = timed_emit  # type: ignore[method-assign]
            servers = [("127.0.0.1", server.port)]
            token = verifier.issue(VIEWER)
            rows, notes = run_levels(
                "embedded, 1 process",
                pool,
                servers,
                token,
                write,
                levels,
                samples,
                [],
                written,
                emit_times,
            )
            notes.append(
                f"embedded server stats {server.streams.stats() if server.streams else {}}"
            )
        finally:
            if server is not None:
                server.stop()
            runtime.stop(raise_errors=False)
            db.close()
    return rows, notes


def scenario_emulator(
    emu: Any, pool: ClientPool, levels: list[int], samples: dict[int, int], redis: bool
) -> tuple[list[list[Any]], list[str]]:
    from boiler.auth import DevTokenVerifier

    project = f"bench-push-{'redis' if redis else 'single'}"
    env = {
        "FIRESTORE_EMULATOR_HOST": emu.host,
        "GOOGLE_CLOUD_PROJECT": project,
        "BOILER_AUTH": "dev",
        "BOILER_SECRET_KEY": SECRET,
    }
    channel = f"boiler-bench-push-{uuid.uuid4().hex[:8]}"
    queue = ["--message-queue", REDIS, "--channel", channel] if redis else []
    procs: list[BoilerRun] = []
    db = None
    try:
        runtime_proc = BoilerRun(env, *queue)
        procs.append(runtime_proc)
        runtime_proc.wait_ready()
        db, write = write_emulator(emu.host, project)
        wait_view(db)
        servers = [("127.0.0.1", runtime_proc.port)]
        names = ["runtime+web"]
        if redis:
            web = BoilerRun(env, *queue, "--web-only")
            procs.append(web)
            web.wait_ready()
            servers = [("127.0.0.1", web.port), ("127.0.0.1", runtime_proc.port)]
            names = ["web-only", "runtime+web"]
        label = "emulator, 2 processes + Redis" if redis else "emulator, 1 process"
        token = DevTokenVerifier(SECRET).issue(VIEWER)
        rows, notes = run_levels(label, pool, servers, token, write, levels, samples, names)
    finally:
        if db is not None:
            db.close()
        for p in reversed(procs):
            p.stop()
    return rows, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (about a minute)")
    parser.add_argument(
        "--scenarios",
        default="embedded,emulator,redis",
        help="comma-separated: embedded, emulator (1 process), redis (2 processes)",
    )
    parser.add_argument("--clients", default=None, help="levels, e.g. 1,100,1000")
    args = parser.parse_args()
    scenarios = [b.strip() for b in args.scenarios.split(",") if b.strip()]
    default = "1,100" if args.quick else "1,100,1000"
    levels = sorted({int(x) for x in (args.clients or default).split(",")})
    base = {1: 20, 100: 15} if args.quick else {1: 60, 100: 40}
    samples = {lv: base.get(lv, 15 if args.quick else 25) for lv in levels}
    report = C.Report("push", args)
    report.add(
        f"N clients on one view (one room); samples per N {samples} (after 3 warm-up flips); "
        f"clients in {CLIENT_PROCESSES} processes; ms from the start of the domain write"
    )
    headers = [
        "scenario",
        "N",
        "n",
        "first p50",
        "first p99",
        "last p50",
        "last p90",
        "last p99",
        "last-first p50",
    ]
    rows: list[list[Any]] = []
    notes: list[str] = []
    pool = None
    try:
        if "embedded" in scenarios:
            pool = ClientPool()
            r, n = scenario_embedded(pool, levels, samples)
            rows += r
            notes += n
            pool.close()
            pool = None
        emulated = [s == "redis" for s in scenarios if s in ("emulator", "redis")]
        if emulated:
            with C.emulator() as emu:
                for redis in emulated:
                    pool = ClientPool()
                    r, n = scenario_emulator(emu, pool, levels, samples, redis)
                    rows += r
                    notes += n
                    pool.close()
                    pool = None
    finally:
        if pool is not None:
            pool.close()
    report.table("domain write -> view event at the first / last client (ms)", headers, rows)
    by = {(r[0], r[1]): r for r in rows}
    report.add("")
    for (label, level), r in by.items():
        one = by.get((label, 1))
        if one is not None and level > 1 and not label.startswith(" "):
            report.add(
                f"{label}: last-client p50 at N={level} / N=1: {r[5] / one[5]:.1f}x "
                f"(p99 {r[7] / one[7]:.1f}x)"
            )
    for label in ("emulator, 2 processes + Redis",):
        for level in levels:
            a, b = by.get((label, level)), by.get(("emulator, 1 process", level))
            if a and b:
                report.add(
                    f"Redis 2-process / 1-process at N={level}: first p50 {a[3] / b[3]:.2f}x, "
                    f"last p50 {a[5] / b[5]:.2f}x"
                )
    report.add("")
    for note in notes:
        report.add(note)
    report.save()


if __name__ == "__main__":
    main()
