"""Listeners the runtime owns come back after they stop for good
(``boiler.runtime.revive``), and their errors reach the runtime's errors.

On the real emulator, a listener is ended for good the way the library gives
up on one: its stream's gRPC call is cancelled (CANCELLED ends a watch), so
the library closes it and the database records why in ``listener_errors``.
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from typing import Any

import pytest

from boiler import source
from boiler.backoff import backoff
from boiler.database import Database, DocumentSnapshot, ListenEvent, Query
from boiler.database._firestore_listen import FirestoreWatch
from boiler.database.firestore import FirestoreDatabase
from boiler.exceptions import RuntimeFailure
from boiler.mediators import Mediator
from boiler.runtime import Engine
from boiler.runtime.process import Runtime
from boiler.runtime.revive import SourceWatch, resync_event
from boiler.store import Store
from boiler.testing import wait_for

TIMEOUT = 15.0
T0 = _dt.datetime(2024, 1, 1, tzinfo=_dt.UTC)


def snap(path: str, seconds: int) -> DocumentSnapshot:
    at = T0 + _dt.timedelta(seconds=seconds)
    return DocumentSnapshot(path, {"v": seconds}, update_time=at, read_time=at)


def kill(watch: Any) -> None:
    """End a Firestore watch's stream for good (the library's own path)."""
    assert isinstance(watch, FirestoreWatch)
    rpc = watch._lib_watch._rpc
    wait_for(lambda: rpc.call is not None, timeout=TIMEOUT, message="the stream to open")
    rpc.call.cancel()
    wait_for(lambda: not watch.active, timeout=TIMEOUT, message="the watch to stop")


on_firestore = pytest.mark.skipif(
    "firestore" not in os.environ.get("BOILER_TEST_BACKENDS", "firestore"),
    reason="BOILER_TEST_BACKENDS excludes firestore",
)
#: The library closes a cancelled watch on a thread of its own that re-raises why.
library_reraises = pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning"
)


# -- pure parts --------------------------------------------------------------------------
def test_resync_event_is_the_changes_since_what_was_held() -> None:
    held = {
        "c/keep": snap("c/keep", 1),
        "c/gone": snap("c/gone", 1),
        "c/changed": snap("c/changed", 1),
    }
    fresh = [snap("c/changed", 2), snap("c/keep", 1), snap("c/new", 3)]
    event = resync_event(held, ListenEvent(fresh, [], T0))
    assert event.docs == fresh
    assert [(c.type, c.document.path) for c in event.changes] == [
        ("removed", "c/gone"),
        ("modified", "c/changed"),
        ("added", "c/new"),
    ]
    assert event.changes[0].document is held["c/gone"]  # its last state
    assert (
        resync_event(
            {"c/keep": snap("c/keep", 1)}, ListenEvent([snap("c/keep", 1)], [], T0)
        ).changes
        == []
    )


def test_backoff_doubles_up_to_its_maximum() -> None:
    assert [backoff(n, 0.5, 3.0) for n in (1, 2, 3, 4, 10)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_a_replacement_listener_delivers_the_first_snapshot_even_when_empty(
    db: Database,
) -> None:
    """A source whose first listener stopped before delivering anything: the
    replacement's initial snapshot of an empty collection still reaches the
    consumer (its initial snapshot: the mediator's start-up waits for it)."""
    events: list[ListenEvent] = []
    errors: list[BaseException] = []
    watch = SourceWatch(db, Query("empty"), events.append, on_error=errors.append)
    watch._subscribe(resync=True)  # as check() does once the first listener stopped
    try:
        wait_for(lambda: events, timeout=TIMEOUT, message="the initial snapshot")
        assert events[0].docs == [] and not watch.down and not errors
    finally:
        watch.unsubscribe()


def test_listener_errors_since_start_reach_the_engine_once(db: Database) -> None:
    """A listener callback that raises is recorded by the database; the engine
    reports those recorded since it started (stage ``listener``), each once,
    and stop() raises them."""
    calls: list[int] = []

    def flaky(event: ListenEvent) -> None:
        calls.append(1)
        raise RuntimeError(f"callback failed {len(calls)}")

    watch = db.listen_document("flaky/a", flaky)
    wait_for(lambda: len(getattr(db, "listener_errors", ())) == 1, timeout=TIMEOUT)
    engine = Engine(db).start()
    try:
        db.set("flaky/a", {"v": 1})
        wait_for(lambda: len(calls) == 2, timeout=TIMEOUT)
        wait_for(lambda: engine.health()["error_count"] == 1, timeout=TIMEOUT)
        assert [(e.stage, str(e.exception)) for e in engine.errors] == [
            ("listener", "callback failed 2")
        ]
        assert engine.errors == engine.errors  # taken once, not again
        assert "callback failed 2" in engine.health()["last_error"]
    except BaseException:
        engine.stop(raise_errors=False)
        raise
    finally:
        watch.unsubscribe()
    with pytest.raises(RuntimeFailure) as failure:
        engine.stop()
    assert [str(e) for e in failure.value.errors] == ["callback failed 2"]


# -- on the emulator -----------------------------------------------------------------------
def items(store: Store) -> list[str]:
    return sorted(s.path for s in store.query(Query("items")))


@pytest.mark.firestore
@on_firestore
@library_reraises
def test_an_engine_watch_that_stops_is_subscribed_again(fdb: FirestoreDatabase) -> None:
    """A view's query watch that stops for good is subscribed again after a
    backoff; what changed meanwhile reaches the view, and so does what changes
    later. The failure is reported once, by the engine."""
    fdb.set("items/a", {"v": 1})
    results: list[list[str]] = []
    engine = Engine(fdb, check_interval=0.05, retry_base=0.05).start()
    try:
        engine.live(items, lambda r, v: results.append(r), key="items").wait_built(TIMEOUT)
        assert engine.wait_idle(TIMEOUT)
        state = engine._index._watches[Query("items")]
        first = state.watch
        kill(first)
        fdb.set("items/b", {"v": 1})  # while it is down (or just back)
        wait_for(
            lambda: results[-1] == ["items/a", "items/b"],
            timeout=TIMEOUT,
            message=lambda: f"the change made while down: {results}",
        )
        assert state.watch is not first and getattr(state.watch, "active", False)
        fdb.set("items/c", {"v": 1})
        wait_for(
            lambda: results[-1] == ["items/a", "items/b", "items/c"],
            timeout=TIMEOUT,
            message=lambda: f"a later change: {results}",
        )
        assert engine.wait_idle(TIMEOUT)
        health = engine.health()
        assert health["watches_down"] == 0 and health["error_count"] == 1
        assert fdb.open_watches == engine.watch_count  # the stopped one released
    except BaseException:
        engine.stop(raise_errors=False)
        raise
    with pytest.raises(RuntimeFailure) as failure:
        engine.stop()
    assert len(failure.value.errors) == 1
    assert "listener on query items stopped" in str(failure.value.errors[0])


class Orders(Mediator):
    """Records every trigger as ``(event, path, value)``."""

    source = source.firestore("orders")

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, Any]] = []

    def _record(self, event: str, snapshot: DocumentSnapshot) -> None:
        with self.lock:
            self.seen.append((event, snapshot.path, snapshot.get("v")))

    @source.triggers.on_create
    def created(self, snapshot: DocumentSnapshot) -> None:
        self._record("create", snapshot)

    @source.triggers.on_update
    def updated(self, snapshot: DocumentSnapshot) -> None:
        self._record("update", snapshot)

    @source.triggers.on_delete
    def deleted(self, snapshot: DocumentSnapshot) -> None:
        self._record("delete", snapshot)


@pytest.mark.firestore
@on_firestore
@library_reraises
def test_a_mediator_source_that_stops_is_subscribed_again(fdb: FirestoreDatabase) -> None:
    """The mediator sees one continuous stream: what changed while its source
    was down arrives as changes (a delete included), what did not change is
    not triggered again. The runtime reports the failure once (errors,
    health, stop)."""
    for name in ("keep", "gone", "changed"):
        fdb.set(f"orders/{name}", {"v": 0})
    runtime = Runtime(fdb)
    runtime.engine.check_interval = 0.05
    runtime.engine.retry_base = 0.2
    runtime.start()
    try:
        mediator = runtime.add(Orders)
        assert isinstance(mediator, Orders)
        assert runtime.wait_idle(TIMEOUT)
        assert sorted(mediator.seen) == [
            ("create", f"orders/{n}", 0) for n in ("changed", "gone", "keep")
        ]
        runner = runtime._runners[0]
        source_watch = runner.watch
        assert isinstance(source_watch, SourceWatch)
        kill(source_watch._watch)
        fdb.delete("orders/gone")
        fdb.update("orders/changed", {"v": 1})
        fdb.set("orders/new", {"v": 2})
        wait_for(
            lambda: len(mediator.seen) == 6,
            timeout=TIMEOUT,
            message=lambda: f"the changes made while down: {mediator.seen}",
        )
        assert sorted(mediator.seen[3:]) == [
            ("create", "orders/new", 2),
            ("delete", "orders/gone", 0),
            ("update", "orders/changed", 1),
        ]
        fdb.update("orders/keep", {"v": 3})  # the new listener delivers
        wait_for(lambda: len(mediator.seen) == 7, timeout=TIMEOUT, message="a later change")
        assert mediator.seen[-1] == ("update", "orders/keep", 3)
        assert runtime.wait_idle(TIMEOUT)
        assert source_watch.resubscribes == 1
        health = runtime.health()
        assert health["source_watches_down"] == 0 and health["error_count"] == 1
        assert "listener on query orders stopped" in health["last_error"]
        assert [e.stage for e in runtime.errors] == ["listener"]
    except BaseException:
        runtime.stop(raise_errors=False)
        raise
    with pytest.raises(RuntimeFailure) as failure:
        runtime.stop()
    assert len(failure.value.errors) == 1
    assert "listener on query orders stopped" in str(failure.value.errors[0])
    assert fdb.open_watches == 0
