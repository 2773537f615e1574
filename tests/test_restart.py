"""Kill and restart: ``boiler run examples.meeting_room:app`` as a real process.

SIGKILL while domain changes keep coming, start again, and the views converge
to a from-scratch rebuild. SIGTERM stops cleanly (exit code 0, no process left).

The embedded store is single-process: each process keeps the documents in
memory and the SQLite file is its durable copy, loaded once when the store
opens, and the running store holds the file's lock. Another process may
*read* the file (``read_only=True``: a snapshot as of opening it), but not
open it to write (``DatabaseLocked``). So on the embedded backend the test
writes its changes only while the runtime is down; on Firestore it writes
continuously, through the kill and the restart.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from boiler.database import Database, open_database
from boiler.testing import FirestoreEmulator, wait_for
from examples.meeting_room import app
from examples.meeting_room.tests.helpers import actual_views, divergence

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0  # one process start (imports included) on a loaded CI machine
CONVERGE_TIMEOUT = 30.0


class BoilerProcess:
    """One ``boiler run`` subprocess in its own process group, output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - closed in wait()
        self._mark = log.stat().st_size
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "boiler.cli", "run", "examples.meeting_room:app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_bytes()[self._mark :].decode("utf-8", "replace")

    def wait_serving(self, timeout: float = START_TIMEOUT) -> float:
        """Wait until it serves (signal handlers installed); returns the start time."""

        def serving() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"boiler run exited {self.proc.returncode}: {self.output()}")
            return "boiler: serving" in self.output()

        wait_for(serving, timeout=timeout, message=lambda: f"boiler run to serve: {self.output()}")
        return time.monotonic() - self.started

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def group_gone(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGKILL)
        self.wait()


@pytest.fixture
def launcher(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, project_id: str
) -> Iterator[Callable[[], BoilerProcess]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOILER_")
        and k not in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")
    }
    env.update(BOILER_SECRET_KEY="restart-test-secret", BOILER_PORT="0", PYTHONUNBUFFERED="1")
    if backend == "embedded":
        env["BOILER_DATABASE_PATH"] = str(tmp_path / "boiler.sqlite3")
    else:
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        env.update(FIRESTORE_EMULATOR_HOST=emulator.host, GOOGLE_CLOUD_PROJECT=project_id)
    started: list[BoilerProcess] = []

    def launch() -> BoilerProcess:
        started.append(BoilerProcess(env, tmp_path / "boiler-run.log"))
        return started[-1]

    yield launch
    for proc in started:
        proc.kill()


@pytest.fixture
def reader(backend: str, db: Database, tmp_path: Path) -> Callable[[], Any]:
    """A context manager giving a database to read what the subprocess sees
    (embedded: a read-only snapshot; ``write=True`` while no runtime runs)."""
    from contextlib import contextmanager, nullcontext

    if backend != "embedded":
        return lambda write=False: nullcontext(db)

    @contextmanager
    def file_db(write: bool = False) -> Iterator[Database]:
        snapshot = open_database(
            "embedded", path=str(tmp_path / "boiler.sqlite3"), read_only=not write
        )
        try:
            yield snapshot
        finally:
            snapshot.close()

    return file_db


def converge(reader: Callable[[], Any], *, views: int) -> None:
    def ok() -> bool:
        with reader() as rdb:
            return divergence(rdb) == "" and len(actual_views(rdb)) == views

    def why() -> str:
        with reader() as rdb:
            return f"{len(actual_views(rdb))} views, divergence:\n{divergence(rdb)}"

    wait_for(ok, timeout=CONVERGE_TIMEOUT, message=why)


# -- domain changes on the demo data --------------------------------------------------------

UIDS = ("joshua", "thomasina", "tijuana")
EVERYONE = [f"users/{u}" for u in UIDS]


def change(db: Database, rng: random.Random, i: int) -> None:
    """One random domain write; every kind a meeting view depends on."""
    uid = rng.choice(UIDS)
    kind = rng.randrange(7)
    if kind == 0:
        db.update(f"tickets/ticket_{uid}", {"attendance": rng.random() < 0.5})
    elif kind == 1:
        db.update(f"users/{uid}", {"firstName": f"Name{i}", "organization": rng.choice("AB")})
    elif kind == 2:
        db.update("locations/location_1", {"address": f"{i} Gilman Drive"})
    elif kind == 3:
        db.update("meetings/meeting_1", {"status": rng.choice(["in-session", "closed"])})
    elif kind == 4:  # a participant leaves or everyone is back
        users = [u for u in EVERYONE if u != f"users/{uid}"] if rng.random() < 0.5 else EVERYONE
        db.update("meetings/meeting_1", {"users": users})
    elif kind == 5:  # a second meeting appears ...
        db.set(
            "meetings/meeting_2",
            {
                "location": "locations/location_1",
                "users": [f"users/{uid}"],
                "tickets": {uid: f"tickets/ticket_{uid}"},
                "status": "not-started",
            },
        )
    else:  # ... and goes
        db.delete("meetings/meeting_2")


def final_state(db: Database) -> int:
    """A known end state: meeting_2 exists for Joshua; returns the expected view count."""
    db.update("meetings/meeting_1", {"users": EVERYONE, "status": "in-session"})
    change_seed = {
        "location": "locations/location_1",
        "users": ["users/joshua"],
        "tickets": {"joshua": "tickets/ticket_joshua"},
        "status": "closed",
    }
    db.set("meetings/meeting_2", change_seed)
    return 4


# -- the tests ---------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_sigkill_and_restart_converges(
    backend: str, db: Database, launcher: Callable[[], BoilerProcess], reader: Any
) -> None:
    rng = random.Random(1234)
    first = launcher()
    assert first.wait_serving() < START_TIMEOUT
    converge(reader, views=3)  # seeded by the first start

    if backend == "embedded":
        # Single-process store: write only while the runtime is down.
        for round_ in range(2):
            first.kill()
            with reader(write=True) as fdb:
                for i in range(25):
                    change(fdb, rng, 100 * round_ + i)
                expected = final_state(fdb) if round_ == 1 else None
            first = launcher()
            first.wait_serving()
            if expected is None:
                with reader() as rdb:
                    expected = len(_expected_paths(rdb))
            converge(reader, views=expected)
    else:
        # Firestore: the test keeps writing through the kill and the restart.
        written = 0
        cond = threading.Condition()
        stop = threading.Event()
        failures: list[BaseException] = []

        def writer() -> None:
            nonlocal written
            try:
                while not stop.is_set():
                    change(db, rng, written)
                    with cond:
                        written += 1
                        cond.notify_all()
                    stop.wait(0.005)  # pacing the writes, not waiting for a reaction
            except BaseException as e:  # surfaced below
                failures.append(e)
                with cond:
                    cond.notify_all()

        def reached(n: int) -> None:
            with cond:
                assert cond.wait_for(lambda: written >= n or failures, timeout=60), written
            assert not failures, failures

        thread = threading.Thread(target=writer, name="test-writer")
        thread.start()
        try:
            reached(20)
            first.kill()  # SIGKILL mid-stream
            killed_at = written
            reached(killed_at + 40)  # changes while nothing runs
            second = launcher()
            second.wait_serving()  # changes keep coming during the start
            reached(written + 40)  # ... and after it
        finally:
            stop.set()
            thread.join(30)
        assert not failures, failures
        final_state(db)
        converge(reader, views=4)
        first = second

    # SIGTERM: a clean stop.
    first.signal(signal.SIGTERM)
    assert first.wait(20) == 0, first.output()
    assert "boiler: stopped" in first.output()
    assert "recorded error" not in first.output(), first.output()
    assert first.group_gone()
    with reader() as rdb:
        assert divergence(rdb) == ""


def _expected_paths(db: Database) -> set[str]:
    from examples.meeting_room.tests.helpers import expected_views

    return set(expected_views(db))


@pytest.mark.timeout(120)
def test_sigterm_clean_exit(launcher: Callable[[], BoilerProcess], reader: Any) -> None:
    proc = launcher()
    proc.wait_serving()
    converge(reader, views=3)
    started = time.monotonic()
    proc.signal(signal.SIGTERM)
    assert proc.wait(20) == 0, proc.output()
    assert time.monotonic() - started < 15
    out = proc.output()
    assert "boiler: stopped" in out and "Traceback" not in out, out
    assert proc.group_gone(), "a process of the group outlived boiler run"


RUNTIME_THREADS = ("boiler-engine-", "boiler-writer", "boiler-mediator-")


def test_runtime_stop_leaves_no_threads(db: Database) -> None:
    """In process: every thread the runtime started is gone after stop()."""
    from boiler.context import Context
    from examples.meeting_room.seed import seed

    before = {t.ident for t in threading.enumerate()}
    with Context.use(db):
        seed(db)
    runtime = app.runtime(db).start()
    assert runtime.wait_idle(20)
    ours = [t for t in threading.enumerate() if t.ident not in before]
    assert any(t.name.startswith("boiler-") for t in ours)
    runtime.stop()
    wait_for(
        lambda: not any(t.is_alive() and t.name.startswith(RUNTIME_THREADS) for t in ours),
        timeout=10,
        message=lambda: f"runtime threads still alive: {[t.name for t in ours if t.is_alive()]}",
    )
    # The database's own threads (listener dispatch, gRPC streams) end with it.
    db.close()
    wait_for(
        lambda: not any(t.is_alive() for t in ours),
        timeout=10,
        message=lambda: f"threads alive after db.close(): {[t.name for t in ours if t.is_alive()]}",
    )
