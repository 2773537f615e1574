"""Runtime.stop() edge cases: it always reaches the engine, never runs a
mediator's ``stopped()`` under a busy trigger thread, and a mediator added
while it runs is refused rather than left running."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from boiler import source
from boiler.database import Database, Watch
from boiler.exceptions import RuntimeFailure
from boiler.mediators import Mediator
from boiler.runtime.process import Runtime
from boiler.testing import wait_for

TIMEOUT = 10.0


class Things(Mediator):
    """Records its lifecycle; a created ``things`` document may hold its trigger."""

    source = source.firestore("things")
    gate: threading.Event | None = None

    def __init__(self, runtime: Runtime) -> None:
        super().__init__(runtime)
        self.entered = threading.Event()
        self.stopped_calls = 0

    @source.triggers.on_create
    def created(self, snapshot: Any) -> None:
        self.entered.set()
        if self.gate is not None:
            self.gate.wait(TIMEOUT)

    def stopped(self) -> None:
        self.stopped_calls += 1


class FailingUnsubscribe:
    """A real watch whose ``unsubscribe()`` releases it, then raises."""

    def __init__(self, watch: Watch) -> None:
        self.watch = watch

    def unsubscribe(self) -> None:
        self.watch.unsubscribe()
        raise OSError("connection reset while unsubscribing")


@pytest.fixture
def threads() -> Iterator[set[threading.Thread]]:
    """Threads alive before the test (the ones it starts are the others)."""
    yield set(threading.enumerate())


RUNTIME_THREADS = ("boiler-engine-", "boiler-writer", "boiler-mediator-")


def _threads_gone(
    before: set[threading.Thread], prefixes: tuple[str, ...] = RUNTIME_THREADS
) -> None:
    def alive() -> list[str]:
        new = set(threading.enumerate()) - before
        return [t.name for t in new if t.is_alive() and t.name.startswith(prefixes)]

    wait_for(lambda: not alive(), timeout=TIMEOUT, message=lambda: f"threads to end: {alive()}")


def test_stop_goes_on_when_unsubscribe_raises(db: Database, threads: set[Any]) -> None:
    rt = Runtime(db).start()
    first, second = rt.add(Things), rt.add(Things)
    assert rt.wait_idle(TIMEOUT)
    runner = next(r for r in rt._runners if r.mediator is first)
    assert runner.watch is not None
    runner.watch = FailingUnsubscribe(runner.watch)
    with pytest.raises(RuntimeFailure, match="connection reset while unsubscribing"):
        rt.stop()
    assert not rt.engine.running
    assert first.stopped_calls == 1 and second.stopped_calls == 1
    assert [e.stage for e in rt.errors] == ["stop Things: unsubscribe"]
    _threads_gone(threads)


def test_stopped_hook_skipped_while_trigger_thread_busy(db: Database, threads: set[Any]) -> None:
    gate = threading.Event()
    rt = Runtime(db).start()
    busy = rt.add(type("BusyThings", (Things,), {"gate": gate}))
    assert rt.wait_idle(TIMEOUT)
    db.set("things/t1", {"n": 1})
    assert busy.entered.wait(TIMEOUT)  # the trigger thread is now held in the trigger
    try:
        rt.stop(timeout=0.2, raise_errors=False)
        assert not rt.engine.running
        assert busy.stopped_calls == 0
        assert any("BusyThings.stopped() skipped" in str(e.exception) for e in rt.errors)
    finally:
        gate.set()
    _threads_gone(threads)
    assert busy.stopped_calls == 0


def test_add_while_stopping_is_refused(db: Database, threads: set[Any]) -> None:
    constructing, go_on = threading.Event(), threading.Event()

    class SlowToBuild(Things):
        def __init__(self, runtime: Runtime) -> None:
            constructing.set()
            go_on.wait(TIMEOUT)
            super().__init__(runtime)

    rt = Runtime(db).start()
    outcome: list[BaseException | Mediator] = []

    def add() -> None:
        try:
            outcome.append(rt.add(SlowToBuild))
        except BaseException as e:
            outcome.append(e)

    adder = threading.Thread(target=add)
    adder.start()
    try:
        assert constructing.wait(TIMEOUT)  # add() is past its first look at the state
        rt.stop()
    finally:
        go_on.set()
        adder.join(TIMEOUT)
    assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError), outcome
    assert "stopped" in str(outcome[0])
    assert rt.mediators == []
    _threads_gone(threads)
