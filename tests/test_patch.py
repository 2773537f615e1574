"""PatchMediator (Query+Task): client errors reject a patch, anything else is retried.

A counter's view model takes ``{"add": n}`` patches. Its setter fails on
purpose, the way ``FAULTS`` says (a number of times, or until released), so
a failing patch needs no mock: the database, the runtime and its threads are
the real ones, on both backends. Adding is not idempotent, so the counter's
value shows how many times a patch took effect.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from boiler import attrs, source
from boiler.database import Database
from boiler.domain_model import DomainModel
from boiler.exceptions import (
    BoilerError,
    Forbidden,
    NotFound,
    TransactionConflict,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from boiler.mediators import PatchMediator
from boiler.runtime.process import Runtime
from boiler.testing import wait_for
from boiler.view_model import ViewModel

TIMEOUT = 10.0
PATCH = "users/ann/PtCounter_PATCH/c1"
COUNTER = "pt_counters/c1"


class Faults:
    """How the setter fails: ``times`` more times, and/or until ``release()``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.times = 0
        self.error: Callable[[], Exception] = lambda: RuntimeError("blip")
        self._gate: threading.Event | None = None
        self.raised = 0

    def hold(self) -> None:
        """Fail every call until :meth:`release`."""
        self._gate = threading.Event()

    def release(self) -> None:
        if self._gate is not None:
            self._gate.set()

    def hit(self) -> None:
        with self._lock:
            held = self._gate is not None and not self._gate.is_set()
            if not held and self.times <= 0:
                return
            self.times -= 0 if held else 1
            self.raised += 1
        raise self.error()


FAULTS = Faults()


class PtCounter(DomainModel):
    class Meta:
        collection_name = "pt_counters"

    value = attrs.bproperty(type=int)


class CounterPanel(ViewModel):
    """``params``: ``doc_id`` (the counter) and ``user_id``."""

    value = attrs.bproperty(type=int)
    add = attrs.bproperty(type=int)

    @property
    def counter(self) -> PtCounter:
        return self.doc(PtCounter, doc_id=self.params["doc_id"])

    @value.getter
    def value(self) -> int:
        return self.counter.value

    @add.getter
    def add(self) -> int:
        return 0

    @add.setter
    def add(self, amount: int) -> None:
        FAULTS.hit()
        self.counter.value += amount


class CounterPatch(PatchMediator):
    source = source.patch_documents("PtCounter_PATCH")
    view_model = CounterPanel


@pytest.fixture(autouse=True)
def faults() -> Iterator[Faults]:
    global FAULTS
    FAULTS = Faults()
    yield FAULTS
    FAULTS.release()


def _runtime(db: Database) -> Runtime:
    rt = Runtime(db, mediators=[CounterPatch])
    rt.engine.retry_base, rt.engine.retry_max = 0.01, 0.05  # quick retries
    return rt


@pytest.fixture
def runtime(db: Database) -> Iterator[Runtime]:
    db.set(COUNTER, {"value": 0})
    rt = _runtime(db).start()
    try:
        assert rt.wait_idle(TIMEOUT), rt.health()
        yield rt
    finally:
        rt.stop(raise_errors=False)


def outcome(db: Database, path: str = PATCH) -> dict[str, Any] | None:
    meta = (db.get(path).to_dict() or {}).get("_boiler")
    return meta if isinstance(meta, dict) and meta.get("status") else None


def wait_outcome(db: Database, path: str = PATCH) -> dict[str, Any]:
    return wait_for(lambda: outcome(db, path), timeout=TIMEOUT, message=f"outcome of {path}")


def counter(db: Database) -> int:
    return int(db.get(COUNTER).to_dict()["value"])  # type: ignore[index]


def patch_errors(rt: Runtime, path: str = PATCH) -> list[Any]:
    return [e for e in rt.errors if e.key == path]


@pytest.mark.parametrize(
    ("error", "times", "failures"),
    [
        (lambda: RuntimeError("a bug that went away"), 3, 3),
        (lambda: BoilerError("Firestore UNAVAILABLE: connection reset"), 3, 3),  # translate()'s
        # run_transaction tries a conflicting transaction 5 times before it gives up
        (lambda: TransactionConflict("conflict"), 10, 2),
    ],
    ids=["exception", "server-error", "conflict"],
)
def test_transient_failure_retried_until_processed_once(
    runtime: Runtime,
    db: Database,
    faults: Faults,
    error: Callable[[], Exception],
    times: int,
    failures: int,
) -> None:
    faults.times, faults.error = times, error
    db.set(PATCH, {"add": 1})
    assert wait_outcome(db)["status"] == "processed"
    assert runtime.wait_idle(TIMEOUT), runtime.health()
    assert counter(db) == 1  # took effect once, not once per attempt
    assert faults.raised == times
    recorded = patch_errors(runtime)
    assert len(recorded) == failures, recorded  # each failure recorded, keyed by the patch
    assert all(isinstance(e.exception, type(error())) for e in recorded)
    assert "retry in" in recorded[0].stage


def test_a_lasting_bug_rejects_the_patch_after_max_failures(
    runtime: Runtime, db: Database, faults: Faults
) -> None:
    faults.times, faults.error = 100, lambda: RuntimeError("a bug that stays")
    db.set(PATCH, {"add": 1})
    result = wait_outcome(db)
    assert result["status"] == "rejected"
    assert result["error"] == "RuntimeError: a bug that stays (gave up after 8 failures)"
    assert runtime.wait_idle(TIMEOUT), runtime.health()
    assert faults.raised == CounterPatch.max_failures == 8 and counter(db) == 0
    recorded = patch_errors(runtime)
    assert len(recorded) == 8 and "gave up: rejected" in recorded[-1].stage


def test_an_unavailable_database_is_waited_for_past_max_failures(
    runtime: Runtime, db: Database, faults: Faults
) -> None:
    faults.times, faults.error = 10, lambda: Unavailable("Firestore did not answer")
    db.set(PATCH, {"add": 1})
    assert wait_outcome(db)["status"] == "processed"
    assert runtime.wait_idle(TIMEOUT), runtime.health()
    assert faults.raised == 10 and counter(db) == 1


@pytest.mark.parametrize(
    "error",
    [
        lambda: ValidationError("must be small", field="add"),
        lambda: Forbidden("ann may not add"),
        lambda: Unauthorized("who are you"),
        lambda: NotFound("no such counter"),
    ],
    ids=["validation", "forbidden", "unauthorized", "not-found"],
)
def test_client_error_rejects_without_retry(
    runtime: Runtime, db: Database, faults: Faults, error: Callable[[], Exception]
) -> None:
    faults.times, faults.error = 100, error
    db.set(PATCH, {"add": 1})
    result = wait_outcome(db)
    assert result["status"] == "rejected"
    assert type(error()).__name__ in result["error"]
    assert runtime.wait_idle(TIMEOUT), runtime.health()
    assert faults.raised == 1
    assert counter(db) == 0
    assert runtime.errors == []  # the client's fault, recorded in its patch only


@pytest.mark.parametrize(
    "path",
    ["PtCounter_PATCH/c1", "teams/alice/PtCounter_PATCH/c1", "a/b/users/alice/PtCounter_PATCH/c1"],
    ids=["top-level", "not-users", "nested"],  # the last two were applied as user "alice"
)
def test_patch_outside_a_user_document_rejected(runtime: Runtime, db: Database, path: str) -> None:
    db.set(path, {"add": 1})
    result = wait_outcome(db, path)
    assert result["status"] == "rejected"
    assert "ValidationError" in result["error"] and "not under a user document" in result["error"]
    assert runtime.wait_idle(TIMEOUT)
    assert counter(db) == 0
    assert runtime.errors == []


def test_wait_idle_waits_for_a_scheduled_retry(
    runtime: Runtime, db: Database, faults: Faults
) -> None:
    faults.hold()
    db.set(PATCH, {"add": 2})
    wait_for(lambda: patch_errors(runtime), timeout=TIMEOUT, message="a recorded failure")
    # Failing until released: a retry is always scheduled, so never idle.
    assert not runtime.wait_idle(0.2)
    assert runtime.health()["trigger_queue"] >= 1
    assert outcome(db) is None
    faults.release()
    assert runtime.wait_idle(TIMEOUT), runtime.health()
    assert outcome(db) == {"status": "processed", "processedAt": outcome(db)["processedAt"]}  # type: ignore[index]
    assert counter(db) == 2


def test_retry_ends_with_the_runtime_and_resumes_on_restart(db: Database, faults: Faults) -> None:
    db.set(COUNTER, {"value": 0})
    faults.hold()
    before = set(threading.enumerate())
    rt = _runtime(db).start()
    db.set(PATCH, {"add": 5})
    wait_for(lambda: len(patch_errors(rt)) >= 2, timeout=TIMEOUT, message="two failures")
    rt.stop(raise_errors=False)
    wait_for(
        lambda: (
            not any(
                t.is_alive() and t.name.startswith("boiler-mediator-")
                for t in set(threading.enumerate()) - before
            )
        ),
        timeout=TIMEOUT,
        message="the mediator's thread to end",
    )
    assert outcome(db) is None and counter(db) == 0  # left pending, not rejected

    faults.release()
    again = _runtime(db).start()
    try:
        assert wait_outcome(db)["status"] == "processed"
        assert again.wait_idle(TIMEOUT), again.health()
        assert counter(db) == 5
    finally:
        again.stop()  # nothing failed this time
