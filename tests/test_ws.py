"""Live Socket.IO view streams: real ``socketio.Client``s against a served app on
127.0.0.1, the runtime in-process, on every backend."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import socketio

from boiler import attrs
from boiler.access import role
from boiler.application import App
from boiler.auth import DevTokenVerifier, Principal
from boiler.database import Database
from boiler.runtime.process import Runtime
from boiler.serve import Server
from boiler.testing import wait_for
from boiler.view_model import ViewModel
from boiler.ws import WsMediator
from examples.meeting_room import MeetingSession, app
from examples.meeting_room.seed import seed

NS = "/meeting_sessions"
VERIFIER = DevTokenVerifier("test-secret-key")
#: engine.io releases closed sessions every ping_timeout and ends a ping thread
#: within ping_interval: short values let the leak checks settle quickly.
FAST_PINGS = {"ping_interval": 1, "ping_timeout": 3}


class Client:
    """A real Socket.IO client that records the ``view`` and ``error`` events it gets."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sio = socketio.Client(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        for name in ("view", "error", "connect_error"):
            self.sio.on(name, self._recorder(name), namespace=NS)

    def _recorder(self, name: str) -> Any:
        def record(data: Any = None) -> None:
            with self.lock:
                self.events.append((name, data))

        return record

    def connect(self, auth: Any) -> Client:
        self.sio.connect(
            self.url, namespaces=[NS], auth=auth, transports=["websocket"], wait_timeout=10
        )
        return self

    def call(self, event: str, meeting_id: Any) -> Any:
        return self.sio.call(event, {"meeting_id": meeting_id}, namespace=NS, timeout=10)

    def of(self, name: str, path: str | None = None) -> list[Any]:
        with self.lock:
            return [d for n, d in self.events if n == name and (path is None or d["path"] == path)]

    def wait(self, name: str, count: int = 1, path: str | None = None) -> Any:
        wait_for(lambda: len(self.of(name, path)) >= count, message=f"{count} {name} event(s)")
        return self.of(name, path)[count - 1]

    def close(self) -> None:
        self.sio.disconnect()


def view_path(uid: str, meeting_id: str = "meeting_1") -> str:
    return f"users/{uid}/MeetingSession/{meeting_id}"


@pytest.fixture
def runtime(db: Database) -> Iterator[Runtime]:
    seed(db)
    rt = app.runtime(db).start()
    assert rt.wait_idle(20)
    try:
        yield rt
    finally:
        rt.stop()  # raises if anything failed (publisher errors land in the writer's log)


@pytest.fixture
def server(db: Database, runtime: Runtime) -> Iterator[Server]:
    srv = Server(
        app, db, verifier=VERIFIER, runtime=runtime, port=0, socketio_options=FAST_PINGS
    ).start()
    try:
        yield srv
    finally:
        srv.stop()
        assert srv.errors == []


def connect(server: Server, uid: str) -> Client:
    return Client(server.url).connect({"token": VERIFIER.issue(uid)})


@pytest.mark.parametrize(
    "auth",
    [None, {}, {"token": ""}, {"token": "not-a-token"}, {"token": "x.y"}],
    ids=["none", "empty", "blank", "malformed", "bad-signature"],
)
def test_connect_without_a_valid_token_is_refused(server: Server, auth: Any) -> None:
    client = Client(server.url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect(auth)
    error = client.wait("connect_error")
    assert "unauthorized" in error["message"]
    assert server.streams is not None and server.streams.stats()["connections"] == 0


def test_token_of_another_key_is_refused(server: Server) -> None:
    client = Client(server.url)
    with pytest.raises(socketio.exceptions.ConnectionError):
        client.connect({"token": DevTokenVerifier("another-key").issue("tijuana")})
    assert "signature" in client.wait("connect_error")["message"]


def test_subscribe_sends_the_view_now_and_every_new_version(db: Database, server: Server) -> None:
    client = connect(server, "tijuana")
    try:
        ack = client.call("subscribe", "meeting_1")
        assert ack == {"ok": True, "path": view_path("tijuana")}
        first = client.wait("view")
        stored = db.get(view_path("tijuana")).data
        assert stored is not None
        assert first["path"] == view_path("tijuana")
        assert first["version"] == stored["_boiler"]["version"].isoformat(timespec="microseconds")
        assert first["data"] == {k: v for k, v in stored.items() if k != "_boiler"}
        assert [a["name"] for a in first["data"]["attending"]] == [
            "Thomasina Manes",
            "Tijuana Furlong",
        ]

        db.update("tickets/ticket_thomasina", {"attendance": False})  # a domain write
        second = client.wait("view", 2)
        assert [a["name"] for a in second["data"]["attending"]] == ["Tijuana Furlong"]
        assert second["version"] > first["version"]
        assert client.of("error") == []
    finally:
        client.close()


def test_refused_subscriptions_get_an_error_event(server: Server) -> None:
    client = connect(server, "stranger")
    try:
        ack = client.call("subscribe", "meeting_1")
        assert ack["ok"] is False and ack["code"] == 403
        error = client.wait("error")
        assert error["code"] == 403 and error["meeting_id"] == "meeting_1"
        assert "not a participant" in error["message"]

        assert client.call("subscribe", "no_such_meeting")["code"] == 404
        assert client.wait("error", 2) == {
            "code": 404,
            "message": "meeting_id 'no_such_meeting' not found",
            "meeting_id": "no_such_meeting",
        }
        for bad in ("", None, 7, "a/b"):
            assert client.call("subscribe", bad)["code"] == 400
        assert (
            client.sio.call("subscribe", "not an object", namespace=NS, timeout=10)["code"] == 400
        )
        assert client.of("view") == []
        assert server.streams is not None and server.streams.stats()["subscriptions"] == 0
        assert client.sio.connected  # refusals never drop the connection
    finally:
        client.close()


def test_unsubscribe_stops_events(db: Database, server: Server, runtime: Runtime) -> None:
    db.set(
        "tickets/ticket2_tijuana",
        {"role": "Organizer", "attendance": True, "user": "users/tijuana"},
    )
    db.set(
        "meetings/meeting_2",
        {
            "location": "locations/location_1",
            "users": ["users/tijuana"],
            "tickets": {"tijuana": "tickets/ticket2_tijuana"},
            "status": "in-session",
        },
    )
    assert runtime.wait_idle(20)
    client = connect(server, "tijuana")
    try:
        assert client.call("subscribe", "meeting_1")["ok"]
        assert client.call("subscribe", "meeting_2")["ok"]
        client.wait("view", 1, view_path("tijuana"))
        client.wait("view", 1, view_path("tijuana", "meeting_2"))
        assert client.call("unsubscribe", "meeting_1") == {
            "ok": True,
            "path": view_path("tijuana"),
            "subscribed": True,
        }

        db.update("tickets/ticket_thomasina", {"attendance": False})  # changes meeting_1's view
        assert runtime.wait_idle(20)
        db.update("meetings/meeting_2", {"status": "closed"})  # then meeting_2's
        later = client.wait("view", 2, view_path("tijuana", "meeting_2"))
        assert later["data"]["inSession"] is False
        # Views reach one client in publication order: meeting_1's change came first.
        assert len(client.of("view", view_path("tijuana"))) == 1
        assert db.get(view_path("tijuana")).data["attending"][0]["name"] == "Tijuana Furlong"
    finally:
        client.close()


def test_a_deleted_view_is_sent_with_null_data(db: Database, server: Server) -> None:
    client = connect(server, "thomasina")
    try:
        assert client.call("subscribe", "meeting_1")["ok"]
        client.wait("view")
        db.update("meetings/meeting_1", {"users": ["users/tijuana", "users/joshua"]})
        gone = client.wait("view", 2)
        assert gone["path"] == view_path("thomasina") and gone["data"] is None
        assert gone["version"] is not None
    finally:
        client.close()


def test_web_only_server_computes_a_view_not_materialized_yet(db: Database) -> None:
    seed(db)  # no runtime: nothing materializes views here
    with Server(app, db, verifier=VERIFIER, port=0, socketio_options=FAST_PINGS) as srv:
        client = connect(srv, "joshua")
        try:
            assert client.call("subscribe", "meeting_1")["ok"]
            view = client.wait("view")
            assert view["version"] is None and view["data"]["inSession"] is True
            assert len(view["data"]["attending"]) == 2
        finally:
            client.close()


def _threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


def _settled_threads() -> list[str]:
    """Threads once engine.io's per-connection ping threads (≤ ping_interval) are gone."""
    wait_for(lambda: not any("_send_ping" in name for name in _threads()), timeout=30)
    return _threads()


@pytest.mark.timeout(120)
def test_no_leaks_after_1000_subscription_cycles(server: Server, runtime: Runtime) -> None:
    """1,000 cycles: 4 long-lived connections (one thread each, in parallel) do
    238 subscribe/unsubscribe cycles each (952) while the main thread does 48
    connect/subscribe/disconnect cycles. Afterwards no subscription, room,
    engine.io session, engine watch, writer listener or thread is left behind."""
    assert server.socketio is not None and server.streams is not None
    sio_server = server.socketio.server
    warm = connect(server, "tijuana")  # warm up: lazily started server threads
    warm.call("subscribe", "meeting_1")
    warm.close()
    wait_for(lambda: not sio_server.manager.rooms and not sio_server.eio.sockets, timeout=10)
    baseline_threads = _settled_threads()
    watches = runtime.engine.watch_count
    listeners = runtime.engine.writer.listener_count
    failures: list[BaseException] = []
    started = time.monotonic()

    def cycles(uid: str, count: int) -> None:
        try:
            client = connect(server, uid)
            try:
                for _ in range(count):
                    assert client.call("subscribe", "meeting_1")["ok"]
                    assert client.call("unsubscribe", "meeting_1")["subscribed"]
            finally:
                client.close()
        except BaseException as e:  # surfaced by the main thread below
            failures.append(e)

    uids = ("tijuana", "thomasina", "joshua", "tijuana")
    workers = [threading.Thread(target=cycles, args=(uid, 238)) for uid in uids]
    for worker in workers:
        worker.start()
    for i in range(48):
        client = connect(server, uids[i % 3])
        assert client.call("subscribe", "meeting_1")["ok"]
        client.close()
    for worker in workers:
        worker.join(90)
        assert not worker.is_alive()
    assert failures == []
    elapsed = time.monotonic() - started
    assert elapsed < 90, f"1,000 cycles took {elapsed:.1f}s"

    def settled() -> bool:
        stats = server.streams.stats()  # type: ignore[union-attr]
        return (
            stats["connections"] == 0
            and stats["subscriptions"] == 0
            and not sio_server.manager.rooms
            and not sio_server.eio.sockets
            and not sio_server.environ
        )

    wait_for(settled, timeout=10, message=lambda: f"release: {server.streams.stats()}")
    assert runtime.engine.watch_count == watches
    assert runtime.engine.writer.listener_count == listeners == 1
    # engine.io's per-connection ping threads end within ping_interval (1 s here)
    wait_for(
        lambda: _threads() == baseline_threads,
        timeout=15,
        message=lambda: f"threads back to baseline: {_threads()} vs {baseline_threads}",
    )


def test_stop_releases_every_server_thread(db: Database, runtime: Runtime) -> None:
    before = _settled_threads()
    srv = Server(
        app, db, verifier=VERIFIER, runtime=runtime, port=0, socketio_options=FAST_PINGS
    ).start()
    client = connect(srv, "tijuana")
    assert client.call("subscribe", "meeting_1")["ok"]
    srv.stop()  # with a client still connected
    wait_for(lambda: not client.sio.connected, message="client disconnected by stop()")
    assert runtime.engine.writer.listener_count == 0
    wait_for(
        lambda: _threads() == before,
        timeout=15,
        message=lambda: f"threads back: {_threads()} vs {before}",
    )


def test_writer_listeners_hear_commits_and_their_errors_are_recorded(db: Database) -> None:
    import datetime as dt

    from boiler.runtime.writer import ViewWriter

    heard: list[tuple[str, Any, Any]] = []

    def broken(path: str, data: Any, version: Any) -> None:
        raise RuntimeError("listener bug")

    writer = ViewWriter(db).start()
    writer.add_listener(broken)
    remove = writer.add_listener(lambda *args: heard.append(args))
    v1 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    writer.write("views/a", {"n": 1}, v1)
    assert writer.flush(10)
    writer.write("views/a", {"n": 1}, v1 + dt.timedelta(seconds=1))  # unchanged: not heard
    assert writer.flush(10)
    writer.write("views/a", None, v1 + dt.timedelta(seconds=2))
    assert writer.flush(10)
    assert heard == [("views/a", {"n": 1}, v1), ("views/a", None, v1 + dt.timedelta(seconds=2))]
    remove()
    assert writer.listener_count == 1
    writer.stop(raise_errors=False)
    assert [e.stage for e in writer.errors] == ["writer listener", "writer listener"]
    assert db.get("views/a").exists is False


# -- declared access rules, internal errors, token expiry -------------------------------------------
class AdminSession(MeetingSession):
    """The meeting session for admins only: the declared rule, then check_access."""

    class Meta:
        access = role("admin")


ADMIN_ONLY = App(
    "admin_only",
    ws=[
        WsMediator(
            view_model_cls=AdminSession,
            namespace=NS,
            view_path="users/{user_id}/MeetingSession/{doc_id}",
            param="meeting_id",
        )
    ],
)


def test_role_rule_refuses_subscribe_without_the_role(db: Database) -> None:
    seed(db)  # web only: views computed on subscribe
    with Server(ADMIN_ONLY, db, verifier=VERIFIER, port=0, socketio_options=FAST_PINGS) as srv:
        # thomasina takes part in the meeting (check_access would let her in): no role
        client = connect(srv, "thomasina")
        try:
            ack = client.call("subscribe", "meeting_1")
            assert ack["ok"] is False and ack["code"] == 403
            assert "may not access AdminSession: no role 'admin'" in ack["message"]
            assert client.wait("error")["code"] == 403
            # the rule reads no documents: refused before learning whether a meeting exists
            assert client.call("subscribe", "nope")["code"] == 403
            assert client.of("view") == []
            assert srv.streams is not None and srv.streams.stats()["subscriptions"] == 0
        finally:
            client.close()

        # an admin who is not a participant: the rule lets them in, check_access does not
        boss = Client(srv.url).connect({"token": VERIFIER.issue("boss", claims={"role": "admin"})})
        try:
            ack = boss.call("subscribe", "meeting_1")
            assert ack["code"] == 403 and "not a participant" in ack["message"]
        finally:
            boss.close()

        admin = Client(srv.url).connect(
            {"token": VERIFIER.issue("tijuana", claims={"role": "admin"})}
        )
        try:
            assert admin.call("subscribe", "meeting_1") == {
                "ok": True,
                "path": view_path("tijuana"),
            }
            view = admin.wait("view")
            assert view["data"]["inSession"] is True and len(view["data"]["attending"]) == 2
            assert admin.of("error") == []
        finally:
            admin.close()


class Broken(ViewModel):
    value = attrs.bproperty(type=int)

    @value.getter
    def value(self) -> int:
        raise ValueError("meetings/secret_meeting: stored status 'classified' is not a bool")


def test_an_internal_error_is_generic_and_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    broken = App(
        "broken",
        ws=[
            WsMediator(
                view_model_cls=Broken, namespace=NS, view_path="broken/{doc_id}", param="meeting_id"
            )
        ],
    )
    with Server(broken, db, verifier=VERIFIER, port=0, socketio_options=FAST_PINGS) as srv:
        client = connect(srv, "tijuana")
        try:
            refused = {"code": 500, "message": "internal error", "meeting_id": "m1"}
            assert client.call("subscribe", "m1") == {"ok": False, **refused}
            assert client.wait("error") == refused
            assert client.sio.connected
        finally:
            client.close()
    logged = [r for r in caplog.records if r.name == "boiler.ws" and r.exc_info]
    assert any("secret_meeting" in str(r.exc_info[1]) for r in logged if r.exc_info)


class ExpiredOnArrival:
    """A verifier (a user's own, say) that accepts the token at connect while
    its claims say it already expired: the connection's expiry is in the
    past from the start, no waiting for a clock."""

    def verify(self, token: str) -> Principal:
        principal = VERIFIER.verify(token)
        return Principal(principal.uid, {**principal.claims, "exp": time.time() - 1})


def test_subscribe_after_the_token_expired_is_refused(db: Database, runtime: Runtime) -> None:
    with Server(
        app, db, verifier=ExpiredOnArrival(), runtime=runtime, port=0, socketio_options=FAST_PINGS
    ) as stale:
        client = connect(stale, "tijuana")
        try:
            expired = {
                "code": 401,
                "message": "unauthorized: token expired, reconnect",
                "meeting_id": "meeting_1",
            }
            assert client.call("subscribe", "meeting_1") == {"ok": False, **expired}
            assert client.wait("error") == expired
            assert client.of("view") == []
            assert stale.streams is not None and stale.streams.stats()["subscriptions"] == 0
            # unsubscribing only releases: still answered
            assert client.call("unsubscribe", "meeting_1")["ok"] is True
        finally:
            client.close()


def test_subscriptions_end_when_the_token_expires(db: Database, server: Server) -> None:
    expiring = Client(server.url).connect({"token": VERIFIER.issue("tijuana", ttl=2.0)})
    fresh = connect(server, "tijuana")
    try:
        assert expiring.call("subscribe", "meeting_1")["ok"]
        assert fresh.call("subscribe", "meeting_1")["ok"]
        expiring.wait("view")
        fresh.wait("view")
        expired = {
            "code": 401,
            "message": "unauthorized: token expired, reconnect",
            "meeting_id": "meeting_1",
        }
        assert expiring.wait("error") == expired  # within a second of the token's exp
        assert server.streams is not None
        assert server.streams.stats()["subscriptions"] == 1  # the fresh client's
        assert server.streams.stats()["expired"] == 1

        db.update("tickets/ticket_thomasina", {"attendance": False})
        assert fresh.wait("view", 2)["data"]["attending"][0]["name"] == "Tijuana Furlong"
        # one emit to the room reaches its members together: the expired one left it
        assert len(expiring.of("view")) == 1
        assert expiring.call("subscribe", "meeting_1") == {"ok": False, **expired}
        assert expiring.sio.connected  # it may still unsubscribe, or reconnect
    finally:
        expiring.close()
        fresh.close()


def test_server_refuses_async_handlers(db: Database) -> None:
    with pytest.raises(ValueError, match="async_handlers must stay False"):
        Server(app, db, verifier=VERIFIER, port=0, socketio_options={"async_handlers": True})
    Server(app, db, verifier=VERIFIER, port=0, socketio_options={"async_handlers": False})
