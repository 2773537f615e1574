"""Scale-out: two real ``boiler run`` processes share Socket.IO fan-out through Redis.

One process runs the runtime (it publishes view versions), the other is web
only; both serve clients from one Firestore emulator project. A domain write
reaches a client of each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ws import Client

from boiler.auth import DevTokenVerifier
from boiler.database import open_database
from boiler.serve import Server
from boiler.testing import FirestoreEmulator, free_port, wait_for
from examples.meeting_room.seed import seed

REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "redis-test-secret"
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.firestore, pytest.mark.timeout(120)]


def _redis_reachable() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as e:
        raise RuntimeError(f"this test needs Redis at {REDIS_URL}: {e}") from e


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # e.g. 503 from a web-only /healthz: the server is up
    except OSError:
        return False


class Served:
    """``boiler run`` in a subprocess; stopped with SIGTERM."""

    def __init__(self, port: int, env: dict[str, str], *extra: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = (ROOT / ".pytest_cache").joinpath(f"boiler-run-{port}.log")
        self.log.parent.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "boiler.cli", "run", "examples.meeting_room:app"]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(port), *extra],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"boiler run exited {self.proc.returncode}:\n{self.output()}")
            return _answers(f"{self.url}/healthz")

        wait_for(ready, timeout=60, message=lambda: f"{self.url} ready\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"{self.url} ignored SIGTERM:\n{self.output()}") from None


@pytest.fixture
def servers(firestore_emulator: FirestoreEmulator, project_id: str) -> Iterator[list[Served]]:
    _redis_reachable()
    db = open_database("firestore", project=project_id, emulator_host=firestore_emulator.host)
    try:
        seed(db)
    finally:
        db.close()
    env = {
        **os.environ,
        "FIRESTORE_EMULATOR_HOST": firestore_emulator.host,
        "GOOGLE_CLOUD_PROJECT": project_id,
        "BOILER_AUTH": "dev",
        "BOILER_SECRET_KEY": SECRET,
        "BOILER_MESSAGE_QUEUE": REDIS_URL,
        "BOILER_CHANNEL": f"boiler-test-{uuid.uuid4().hex}",  # isolates concurrent tests
    }
    started = [Served(free_port(), env), Served(free_port(), env, "--web-only")]
    try:
        for served in started:
            served.wait_ready()
        yield started
    finally:
        codes = [served.stop() for served in started]
        assert codes == [0, 0], "\n---\n".join(s.output() for s in started)


def test_a_domain_write_reaches_clients_of_both_processes(
    servers: list[Served], firestore_emulator: FirestoreEmulator, project_id: str
) -> None:
    verifier = DevTokenVerifier(SECRET)
    runtime_side, web_side = servers
    clients = [
        Client(runtime_side.url).connect({"token": verifier.issue("tijuana")}),
        Client(web_side.url).connect({"token": verifier.issue("thomasina")}),
    ]
    db = open_database("firestore", project=project_id, emulator_host=firestore_emulator.host)
    try:
        for client in clients:
            assert client.call("subscribe", "meeting_1")["ok"]
            # the runtime may still be materializing: wait for a view with data
            wait_for(lambda c=client: any(v["data"] for v in c.of("view")), timeout=30)

        db.update("tickets/ticket_joshua", {"attendance": True})  # Joshua attends now

        def sees_joshua(client: Client) -> bool:
            return any(
                v["data"] and "Joshua Pendergrast" in [a["name"] for a in v["data"]["attending"]]
                for v in client.of("view")
            )

        for client in clients:
            wait_for(lambda c=client: sees_joshua(c), timeout=30, message="Joshua in the view")
        assert [c.of("error") for c in clients] == [[], []]
    finally:
        for client in clients:
            client.close()
        db.close()


def test_a_server_with_a_message_queue_stops_its_threads() -> None:
    """In-process: the Redis listener thread ends with ``Server.stop()``."""
    import threading

    from examples.meeting_room import app

    _redis_reachable()
    db = open_database("embedded", path=":memory:")
    before = sorted(t.name for t in threading.enumerate())
    verifier = DevTokenVerifier(SECRET)
    server = Server(
        app,
        db,
        verifier=verifier,
        port=0,
        message_queue=REDIS_URL,
        channel=f"boiler-test-{uuid.uuid4().hex}",
        socketio_options={"ping_interval": 1},
    ).start()
    try:
        seed(db)
        client = Client(server.url).connect({"token": verifier.issue("tijuana")})
        assert client.call("subscribe", "meeting_1")["ok"]  # starts the Redis listener
        client.close()
    finally:
        server.stop()
        db.close()
    wait_for(
        lambda: sorted(t.name for t in threading.enumerate()) == before,
        timeout=15,
        message=lambda: f"threads back: {sorted(t.name for t in threading.enumerate())}",
    )


def test_an_emit_is_published_before_it_is_delivered_locally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Other processes start their fan-out without waiting for this one's."""
    import socketio

    from boiler.serve import _RedisManager

    order: list[tuple[str, str]] = []
    monkeypatch.setattr(
        socketio.PubSubManager, "_handle_emit", lambda self, m: order.append(("local", m["event"]))
    )
    monkeypatch.setattr(
        _RedisManager, "_publish", lambda self, m: order.append(("publish", m["event"]))
    )
    manager = _RedisManager(REDIS_URL, f"boiler-test-{uuid.uuid4().hex}")
    manager.emit("view", {"x": 1}, namespace="/ns", room="r")
    assert order == [("publish", "view"), ("local", "view")]
    manager._handle_emit({"event": "remote"})  # from the listener thread: delivered at once
    assert order[-1] == ("local", "remote")
    manager.close(1.0)
