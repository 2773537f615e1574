"""Shared helpers for the reactive-core benchmarks.

- percentiles and fixed-width tables (:class:`Report` prints and saves them to
  ``benchmarks/results/NAME.txt``);
- backends: an embedded store in a temp file, or a Cloud Firestore emulator
  started (and stopped) by the script itself, on 127.0.0.1 only;
- the meeting-room workload: :func:`seed_meetings` writes N meetings with K
  participants each (raw documents, batches of <= 500);
- a *client* that writes domain documents and listens to view documents the way
  a front end would: in-process for the embedded store, in a separate process
  (its own Firestore client, no GIL shared with the runtime) for the emulator.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import itertools
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # `python benchmarks/x.py` puts benchmarks/ first, not the repo
    sys.path.insert(0, ROOT)

from boiler.database import Database, Query, open_database  # noqa: E402
from boiler.testing import FirestoreEmulator  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
VIEW_GROUP = "MeetingSession"

# -- arguments, numbers, tables ------------------------------------------------------------


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smaller run (about a minute)")
    parser.add_argument(
        "--backends",
        default="embedded,emulator",
        help="comma-separated: embedded, emulator (default: both)",
    )
    args = parser.parse_args()
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    return args


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100), linear interpolation; nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in samples_s]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"),
        "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def fmt(value: Any, digits: int = 2) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = "  ".join(
        h.ljust(w) if i == 0 else h.rjust(w)
        for i, (h, w) in enumerate(zip(headers, widths, strict=True))
    )
    out = [line, "  ".join("-" * w for w in widths)]
    for row in cells:
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(out)


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


class Report:
    """Collects printed sections; :meth:`save` writes ``benchmarks/results/NAME.txt``."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name = name
        self.parts: list[str] = []
        mode = "quick" if args.quick else "full"
        self.add(
            f"# {name} ({mode}) — {_dt.datetime.now():%Y-%m-%d %H:%M}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}"
        )

    def add(self, text: str = "") -> None:
        print(text, flush=True)
        self.parts.append(text)

    def table(self, title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.add(f"\n## {title}\n{table(headers, rows)}")

    def save(self) -> str:
        os.makedirs(RESULTS, exist_ok=True)
        path = os.path.join(RESULTS, f"{self.name}.txt")
        with open(path, "w") as fh:
            fh.write("\n".join(self.parts) + "\n")
        print(f"\n(saved to {os.path.relpath(path, ROOT)})")
        return path


def rss_mb() -> float:
    """This process's resident set size (VmRSS), MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def wait_until(
    predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.001
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _stat(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state, ppid, pgrp, ...)."""
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().rsplit(")", 1)[1].split()


def _cpu_seconds(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of group ``pgid``."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(entry)
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == pgid:
            total += _cpu_seconds(fields)
    return total


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by process ``pid``."""
    return _cpu_seconds(_stat(pid))


def wait_quiet(
    backend: Backend,
    runtime: Any,
    *,
    below: float = 0.05,
    window: float = 0.5,
    timeout: float = 30.0,
) -> float:
    """Wait until ``runtime`` is idle and, on the emulator, the emulator's
    processes used less than ``below`` of a core over ``window`` seconds (work
    left over from setting up, e.g. a client adding 10,000 targets, would
    otherwise be billed to the next measurement). Returns the seconds waited;
    gives up (and goes on) after ``timeout``."""
    t0 = time.monotonic()
    runtime.wait_idle(timeout)
    pgid = backend.emu.pid if backend.emu is not None else None
    while pgid is not None and time.monotonic() - t0 < timeout:
        c0 = group_cpu_seconds(pgid)
        time.sleep(window)
        if group_cpu_seconds(pgid) - c0 < below * window:
            break
    return time.monotonic() - t0


# -- backends -------------------------------------------------------------------------------


@contextlib.contextmanager
def emulator() -> Iterator[FirestoreEmulator]:
    """A fresh Cloud Firestore emulator on 127.0.0.1 (stopped on exit)."""
    emu = FirestoreEmulator().start()
    try:
        yield emu
    finally:
        emu.stop()


class Backend:
    """One backend for one benchmark run: opens databases on it.

    ``kind`` is ``"embedded"`` (one SQLite file in a temp dir; every
    :meth:`open` returns the same in-process database) or ``"emulator"``
    (each :meth:`open` is a new client on the emulator).
    """

    def __init__(
        self, kind: str, emu: FirestoreEmulator | None = None, project: str = "bench"
    ) -> None:
        self.kind = kind
        self.emu = emu
        self.project = project
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._embedded: Database | None = None
        self._opened: list[Database] = []

    @property
    def remote(self) -> bool:
        return self.kind == "emulator"

    def open(self) -> Database:
        if self.kind == "embedded":
            if self._embedded is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="boiler-bench-")
                self._embedded = open_database(
                    "embedded", path=os.path.join(self._tmp.name, "b.sqlite3")
                )
            return self._embedded
        assert self.emu is not None
        db = open_database("firestore", project=self.project, emulator_host=self.emu.host)
        self._opened.append(db)
        return db

    def raw_client(self) -> Any:
        """A plain google-cloud-firestore client on the emulator (no boiler)."""
        assert self.emu is not None
        return raw_client(self.emu.host, self.project)

    def client(self) -> Client:
        """A front-end-like client (see :class:`Client`)."""
        if self.kind == "embedded":
            return LocalClient(self.open())
        assert self.emu is not None
        return RemoteClient(self.emu.host, self.project)

    def close(self) -> None:
        for db in self._opened:
            db.close()
        self._opened.clear()
        if self._embedded is not None:
            self._embedded.close()
            self._embedded = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


@contextlib.contextmanager
def backends(kinds: Sequence[str], project: str) -> Iterator[Iterator[Backend]]:
    """Yields an iterator of :class:`Backend` (the emulator is started lazily, once)."""
    stack = contextlib.ExitStack()

    def gen() -> Iterator[Backend]:
        emu = None
        for kind in kinds:
            if kind == "emulator" and emu is None:
                t0 = time.perf_counter()
                emu = stack.enter_context(emulator())
                print(
                    f"(emulator on {emu.host}, ready in {time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
            elif kind not in ("embedded", "emulator"):
                raise SystemExit(f"unknown backend {kind!r}")
            backend = Backend(kind, emu, project)
            try:
                yield backend
            finally:
                backend.close()

    with stack:
        yield gen()


def raw_client(host: str, project: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    os.environ["FIRESTORE_EMULATOR_HOST"] = host  # read by the client constructor
    try:
        return firestore.Client(project=project, credentials=AnonymousCredentials())
    finally:
        del os.environ["FIRESTORE_EMULATOR_HOST"]


# -- the meeting-room workload -----------------------------------------------------------------


@dataclass
class Meetings:
    """What :func:`seed_meetings` wrote (ids only; documents are in the database)."""

    meetings: list[str]
    participants: dict[str, list[str]]  # meeting id -> user ids, in ticket-key order
    location_of: dict[str, str]  # meeting id -> location id
    attendance: dict[str, bool] = field(default_factory=dict)  # ticket path -> attends

    def ticket(self, meeting: str, uid: str) -> str:
        return f"tickets/{meeting}_{uid}"

    def view_paths(self, meeting: str) -> list[str]:
        return [f"users/{uid}/{VIEW_GROUP}/{meeting}" for uid in self.participants[meeting]]

    def all_view_paths(self) -> list[str]:
        return [p for m in self.meetings for p in self.view_paths(m)]

    @property
    def view_count(self) -> int:
        return sum(len(v) for v in self.participants.values())

    def attending_names(self, meeting: str) -> list[str]:
        return [
            user_name(uid)
            for uid in self.participants[meeting]  # ticket keys are the uids: sorted order
            if self.attendance[self.ticket(meeting, uid)]
        ]

    def view_data(self, meeting: str, attendance: dict[str, bool]) -> dict[str, Any]:
        """A view document's content (as boiler writes it, less ``_boiler``),
        computed by hand for ``attendance`` (ticket path -> attends)."""
        attending = []
        for uid in self.participants[meeting]:
            if attendance[self.ticket(meeting, uid)]:
                doc = user_doc(uid)
                attending.append(
                    {
                        "name": user_name(uid),
                        "organization": doc["organization"],
                        "hearingAidRequested": doc["hearingAidRequested"],
                    }
                )
        location = location_doc(int(self.location_of[meeting][1:]))
        return {
            "latitude": location["latitude"],
            "longitude": location["longitude"],
            "address": location["address"],
            "inSession": True,
            "attending": attending,
            "numHearingAidRequested": sum(a["hearingAidRequested"] for a in attending),
        }

    def expected_views(self, meeting: str) -> dict[str, dict[str, Any]]:
        """``{view path: {"attending": [...]}}`` for the current attendance."""
        attending = self.view_data(meeting, self.attendance)["attending"]
        return {path: {"attending": attending} for path in self.view_paths(meeting)}


def user_name(uid: str) -> str:
    return f"First{uid} Last{uid}"


def user_doc(uid: str) -> dict[str, Any]:
    return {
        "firstName": f"First{uid}",
        "lastName": f"Last{uid}",
        "organization": "UCSD" if int(uid[1:]) % 2 else "SDSU",
        "hearingAidRequested": int(uid[1:]) % 3 == 0,
        "obj_type": "User",
        "doc_id": uid,
        "doc_ref": f"users/{uid}",
    }


def location_doc(i: int) -> dict[str, Any]:
    lid = f"l{i:03d}"
    return {
        "latitude": 32.88 + i / 1000,
        "longitude": -117.24,
        "address": f"{i} Gilman Drive",
        "obj_type": "Location",
        "doc_id": lid,
        "doc_ref": f"locations/{lid}",
    }


def seed_meetings(
    db: Database,
    meetings: int,
    per_meeting: int,
    *,
    users: int | None = None,
    locations: int = 1,
    batch_size: int = 500,
) -> Meetings:
    """Write ``meetings`` meetings with ``per_meeting`` participants each.

    ``users``: size of the user pool (default: every participant is a distinct
    user); meeting ``m`` gets users ``m*per_meeting .. +per_meeting`` modulo
    the pool. Meeting ``m`` is at location ``m % locations``; every ticket says
    "attends". Returns the ids.
    """
    users = users or meetings * per_meeting
    if per_meeting > users:
        raise ValueError("per_meeting > users")
    docs: list[tuple[str, dict[str, Any]]] = []
    for i in range(locations):
        docs.append((f"locations/l{i:03d}", location_doc(i)))
    for u in range(users):
        uid = f"u{u:05d}"
        docs.append((f"users/{uid}", user_doc(uid)))
    out = Meetings([], {}, {})
    for m in range(meetings):
        mid = f"m{m:05d}"
        uids = sorted({f"u{(m * per_meeting + j) % users:05d}" for j in range(per_meeting)})
        lid = f"l{m % locations:03d}"
        out.meetings.append(mid)
        out.participants[mid] = uids
        out.location_of[mid] = lid
        tickets = {}
        for uid in uids:
            path = out.ticket(mid, uid)
            tid = path.split("/")[1]
            docs.append(
                (
                    path,
                    {
                        "role": "Participant",
                        "attendance": True,
                        "user": f"users/{uid}",
                        "obj_type": "Ticket",
                        "doc_id": tid,
                        "doc_ref": path,
                    },
                )
            )
            tickets[uid] = path
            out.attendance[path] = True
        docs.append(
            (
                f"meetings/{mid}",
                {
                    "location": f"locations/{lid}",
                    "users": [f"users/{uid}" for uid in uids],
                    "tickets": tickets,
                    "status": "in-session",
                    "obj_type": "Meeting",
                    "doc_id": mid,
                    "doc_ref": f"meetings/{mid}",
                },
            )
        )
    for start in range(0, len(docs), batch_size):
        batch = db.batch()
        for path, data in docs[start : start + batch_size]:
            batch.set(path, data)
        batch.commit()
    return out


def start_runtime(db: Database, timeout: float = 600.0) -> Any:
    """A started Runtime with the meeting-room view mediator, views all built."""
    from boiler.runtime.process import Runtime
    from examples.meeting_room.mediators import MeetingSessionMediator

    runtime = Runtime(db, mediators=[MeetingSessionMediator]).start()
    if not runtime.wait_idle(timeout):
        raise TimeoutError(f"runtime not idle after {timeout}s: {runtime.health()}")
    runtime.freeze_heap()  # as `boiler run` does once start-up has settled
    return runtime


# -- endless write workloads ----------------------------------------------------------------

#: One write: ``(kind, path, data)``, kind ``"set"``, ``"merge"`` or ``"update"``.
Op = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class RawSets:
    """``set()`` s of small documents, cycling over ``docs`` paths, without end
    (picklable: a writer in another process iterates it itself)."""

    docs: int = 1000
    start: int = 0  # the first op's number (its ``v``)

    def __iter__(self) -> Iterator[Op]:
        payload = "x" * 64
        for i in itertools.count(self.start):
            yield ("set", f"rawwrites/d{i % self.docs:04d}", {"v": i, "payload": payload})


@dataclass(frozen=True)
class TicketFlips:
    """Updates flipping each ticket's ``attendance`` in turn, without end;
    ``skip`` ops already applied. :meth:`state` is the attendance after more."""

    tickets: tuple[str, ...]
    start: dict[str, bool]
    skip: int = 0

    def state(self, applied: int) -> dict[str, bool]:
        """Each ticket's attendance once ``skip + applied`` ops are applied."""
        rounds, rest = divmod(self.skip + applied, len(self.tickets))
        return {
            path: self.start[path] ^ ((rounds + (i < rest)) % 2 == 1)
            for i, path in enumerate(self.tickets)
        }

    def after(self, applied: int) -> TicketFlips:
        """The same sequence, continuing after ``applied`` more ops."""
        return TicketFlips(self.tickets, self.start, self.skip + applied)

    def __iter__(self) -> Iterator[Op]:
        state = self.state(0)
        n = len(self.tickets)
        for i in itertools.count(self.skip):
            path = self.tickets[i % n]
            state[path] = not state[path]
            yield ("update", path, {"attendance": state[path]})


# -- a front-end-like client ----------------------------------------------------------------


class ClientCore:
    """Writes documents and watches views: the view collection group (one
    listener), or given view documents one by one, as front ends do (on
    Firestore one Listen stream with a target per document; the emulator
    answers a change in a collection-group target by re-sending every
    document of the group, which would load it more than boiler does).

    ``expect({path: {field: value}})`` returns the time (``perf_counter``) of
    the listener event that made every listed view hold those values.
    ``counts()``: per view path, how many listener changes (added or
    modified, i.e. new ``update_time`` values) were seen since ``reset_counts``.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cond = threading.Condition()
        self._views: dict[str, dict[str, Any]] = {}
        self._counts: dict[str, int] = {}
        self._initial = False
        self._last_event = 0.0
        self._watch: Any = None

    def listen(self, collection_id: str = VIEW_GROUP) -> int:
        def on_event(event: Any) -> None:
            now = time.perf_counter()
            with self._cond:
                for change in event.changes:
                    doc = change.document
                    if change.type == "removed" or not doc.exists:
                        self._views.pop(doc.path, None)
                    else:
                        self._views[doc.path] = dict(doc.data)
                    if self._initial:
                        self._counts[doc.path] = self._counts.get(doc.path, 0) + 1
                self._initial = True
                self._last_event = now
                self._cond.notify_all()

        self._watch = self.db.listen_query(Query(collection_id, all_descendants=True), on_event)
        with self._cond:
            if not self._cond.wait_for(lambda: self._initial, 120):
                raise TimeoutError("client listener: no initial snapshot")
            return len(self._views)

    def listen_documents(self, paths: list[str]) -> int:
        """Watch each document of ``paths``; how many exist once all were seen."""
        pending = set(paths)

        def on_states(snaps: list[Any]) -> None:
            now = time.perf_counter()
            with self._cond:
                for doc in snaps:
                    if doc.path in pending:
                        pending.discard(doc.path)
                    elif self._initial:
                        self._counts[doc.path] = self._counts.get(doc.path, 0) + 1
                    if doc.exists:
                        self._views[doc.path] = dict(doc.data)
                    else:
                        self._views.pop(doc.path, None)
                self._initial = not pending
                self._last_event = now
                self._cond.notify_all()

        if hasattr(self.db, "watch_documents"):
            watch = self.db.watch_documents(lambda snaps, read_time: on_states(snaps))
            watch.add(paths)
            self._watch = watch
        else:
            watches = [
                self.db.listen_document(p, lambda ev, p=p: on_states(ev.docs or [_gone(p)]))
                for p in paths
            ]
            self._watch = _Watches(watches)
        with self._cond:
            if not self._cond.wait_for(lambda: self._initial, 600):
                raise TimeoutError(f"client listener: {len(pending)} documents never seen")
            return len(self._views)

    def expect(self, expected: dict[str, dict[str, Any]], timeout: float) -> float | None:
        def done() -> bool:
            for path, fields in expected.items():
                got = self._views.get(path)
                if got is None or any(got.get(k) != v for k, v in fields.items()):
                    return False
            return True

        with self._cond:
            if self._cond.wait_for(done, timeout):
                return self._last_event
            return None

    def counts(self) -> dict[str, int]:
        with self._cond:
            return dict(self._counts)

    def reset_counts(self) -> None:
        with self._cond:
            self._counts.clear()

    def quiet(self, for_s: float, timeout: float) -> bool:
        """Wait until no listener event arrived for ``for_s`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                idle = time.perf_counter() - self._last_event
            if idle >= for_s:
                return True
            time.sleep(max(0.005, for_s - idle))
        return False

    def write(self, ops: list[tuple[str, str, dict[str, Any]]]) -> tuple[float, float]:
        """Apply ``(kind, path, data)`` sequentially (kind: set/update/merge); (t0, t1)."""
        t0 = time.perf_counter()
        for kind, path, data in ops:
            if kind == "update":
                self.db.update(path, data)
            else:
                self.db.set(path, data, merge=kind == "merge")
        return t0, time.perf_counter()

    def write_for(self, ops: Iterable[Op], seconds: float) -> tuple[float, float, int]:
        """Apply ``ops`` in order until ``seconds`` elapse (or ops run out).

        One untimed warm-up write first (opens the channel)."""
        self.db.set("benchwarmup/w", {"at": time.time()})
        t0 = time.perf_counter()
        end = t0 + seconds
        n = 0
        for kind, path, data in ops:
            if kind == "update":
                self.db.update(path, data)
            else:
                self.db.set(path, data, merge=kind == "merge")
            n += 1
            if time.perf_counter() >= end:
                break
        return t0, time.perf_counter(), n

    def close(self) -> None:
        if self._watch is not None:
            self._watch.unsubscribe()
            self._watch = None


def _gone(path: str) -> Any:
    from boiler.database.base import DocumentSnapshot

    return DocumentSnapshot(path, None, None, None, None)


class _Watches:
    def __init__(self, watches: list[Any]) -> None:
        self.watches = watches

    def unsubscribe(self) -> None:
        for w in self.watches:
            w.unsubscribe()


class Client:
    """The interface benchmarks use (see :class:`ClientCore`)."""

    def listen(self, collection_id: str = VIEW_GROUP) -> int:
        return self.call("listen", collection_id)

    def listen_documents(self, paths: list[str]) -> int:
        return self.call("listen_documents", paths)

    def expect(self, expected: dict[str, dict[str, Any]], timeout: float) -> float | None:
        return self.call("expect", expected, timeout)

    def counts(self) -> dict[str, int]:
        return self.call("counts")

    def reset_counts(self) -> None:
        self.call("reset_counts")

    def quiet(self, for_s: float, timeout: float) -> bool:
        return self.call("quiet", for_s, timeout)

    def write(self, ops: list[tuple[str, str, dict[str, Any]]]) -> tuple[float, float]:
        return self.call("write", ops)

    def write_for(self, ops: Iterable[Op], seconds: float) -> tuple[float, float, int]:
        return self.call("write_for", ops, seconds)

    def call(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The client's own process (None: it runs in this one)."""
        return None

    def close(self) -> None:
        pass


class LocalClient(Client):
    """In-process client (embedded store: listeners exist only in-process)."""

    def __init__(self, db: Database) -> None:
        self.core = ClientCore(db)

    def call(self, name: str, *args: Any) -> Any:
        return getattr(self.core, name)(*args)

    def close(self) -> None:
        self.core.close()


def _client_process(conn: Any, host: str, project: str) -> None:
    db = open_database("firestore", project=project, emulator_host=host)
    core = ClientCore(db)
    try:
        while True:
            msg = conn.recv()
            if msg is None:
                break
            name, args = msg
            try:
                conn.send(("ok", getattr(core, name)(*args)))
            except Exception as e:  # report, keep serving
                conn.send(("error", repr(e)))
    finally:
        core.close()
        db.close()


class RemoteClient(Client):
    """The client in its own process (own Firestore client and GIL)."""

    def __init__(self, host: str, project: str) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_client_process, args=(child, host, project), daemon=True)
        self._proc.start()
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    def call(self, name: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((name, args))
            status, value = self._conn.recv()
        if status != "ok":
            raise RuntimeError(f"client process: {name}: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.send(None)
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5)
