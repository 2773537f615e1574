"""Helpers for the backend contract suite.

Every test here takes the ``db`` fixture (from the root ``conftest.py``), so it
runs once per backend against an empty database. Listeners are opened through
the ``listen`` fixture, which unsubscribes them all when the test ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from boiler.database import Database, DocumentSnapshot, ListenEvent, Query, Watch
from boiler.testing import wait_for

#: Seconds a listener gets to deliver an event (generous: CI machines are slow).
EVENT_TIMEOUT = 10.0

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every contract test is fast: give each a tight timeout."""
    for item in items:
        if _HERE in Path(str(item.fspath)).parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30))


def ids(snapshots: Sequence[DocumentSnapshot]) -> list[str]:
    """Document ids, in order."""
    return [s.id for s in snapshots]


def paths_of(snapshots: Sequence[DocumentSnapshot]) -> list[str]:
    """Document paths, in order."""
    return [s.path for s in snapshots]


def seed(db: Database, collection: str, docs: Mapping[str, Mapping[str, Any]]) -> None:
    """Write ``docs`` (id -> data) into ``collection`` in one batch."""
    batch = db.batch()
    for doc_id, data in docs.items():
        batch.set(f"{collection}/{doc_id}", data)
    batch.commit()


class Recorder:
    """A listener callback that records every event (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[ListenEvent] = []

    def __call__(self, event: ListenEvent) -> None:
        with self._lock:
            self._events.append(event)

    @property
    def events(self) -> list[ListenEvent]:
        with self._lock:
            return list(self._events)

    @property
    def last(self) -> ListenEvent:
        events = self.events
        assert events, "no event received"
        return events[-1]

    def changes(self) -> list[tuple[str, str]]:
        """Every change after the initial snapshot, as ``(type, doc id)``."""
        return [(c.type, c.document.id) for e in self.events[1:] for c in e.changes]

    def wait(
        self, predicate: Callable[[list[ListenEvent]], object], what: str = "events"
    ) -> list[ListenEvent]:
        """Wait until ``predicate(events)`` is truthy; return the events."""
        wait_for(
            lambda: predicate(self.events),
            timeout=EVENT_TIMEOUT,
            message=lambda: f"{what}; got {self.describe()}",
        )
        return self.events

    def wait_count(self, n: int) -> list[ListenEvent]:
        """Wait until at least ``n`` events arrived."""
        return self.wait(lambda events: len(events) >= n, f"{n} event(s)")

    def wait_docs(self, predicate: Callable[[list[DocumentSnapshot]], object]) -> ListenEvent:
        """Wait until the latest event's ``docs`` satisfy ``predicate``."""
        self.wait(lambda events: bool(events) and predicate(events[-1].docs), "matching docs")
        return self.last

    def describe(self) -> str:
        return repr(
            [
                ([d.id for d in e.docs], [(c.type, c.document.id) for c in e.changes])
                for e in self.events
            ]
        )


class Listen:
    """Opens listeners on one database and unsubscribes them all at teardown."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.watches: list[Watch] = []

    def document(self, path: str) -> tuple[Recorder, Watch]:
        rec = Recorder()
        watch = self.db.listen_document(path, rec)
        self.watches.append(watch)
        return rec, watch

    def query(self, query: Query) -> tuple[Recorder, Watch]:
        rec = Recorder()
        watch = self.db.listen_query(query, rec)
        self.watches.append(watch)
        return rec, watch

    def close(self) -> None:
        watches, self.watches = self.watches, []
        errors: list[BaseException] = []
        for watch in watches:
            try:
                watch.unsubscribe()
            except BaseException as e:  # collect, then report all together
                errors.append(e)
        if errors:
            raise errors[0]


@pytest.fixture
def listen(db: Database) -> Iterator[Listen]:
    """Open listeners with ``listen.document(path)`` / ``listen.query(q)``."""
    opener = Listen(db)
    try:
        yield opener
    finally:
        opener.close()
