"""ViewWriter: versioned, deduplicated, batched view-document writes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from boiler.database import Database, ListenEvent, Query
from boiler.database.firestore import FirestoreDatabase
from boiler.exceptions import Unavailable
from boiler.runtime import VERSION_FIELD, ViewWriter
from boiler.testing import FirestoreEmulator, wait_for

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def v(n: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=n)


@pytest.fixture
def writer(db: Database) -> Iterator[ViewWriter]:
    w = ViewWriter(db).start()
    try:
        yield w
    finally:
        w.stop()
    assert not writer_threads()


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("boiler-writer")]


def content(db: Database, path: str) -> dict[str, Any] | None:
    data = db.get(path).to_dict()
    if data is not None:
        data.pop(VERSION_FIELD)
    return data


def test_writes_carry_their_version(db: Database, writer: ViewWriter) -> None:
    writer.write("views/a", {"title": "x", "n": [1, 2]}, v(1))
    assert writer.flush(10)
    snap = db.get("views/a")
    assert snap.get("title") == "x" and snap.get(f"{VERSION_FIELD}.version") == v(1)
    writer.write("views/a", {"title": "y"}, v(2))  # replaces: "n" goes away
    assert writer.flush(10)
    assert content(db, "views/a") == {"title": "y"}


def test_identical_content_writes_nothing(db: Database, writer: ViewWriter) -> None:
    events: list[ListenEvent] = []
    watch = db.listen_query(Query("views"), events.append)
    try:
        writer.write("views/a", {"title": "x"}, v(1))
        assert writer.flush(10)
        first = db.get("views/a").update_time
        wait_for(lambda: any(e.changes for e in events), timeout=10)
        seen = len(events)
        for i in range(2, 12):
            writer.write("views/a", {"title": "x"}, v(i))
            assert writer.flush(10)
        assert db.get("views/a").update_time == first
        assert writer.stats["writes"] == 1 and writer.stats["skipped"] == 10
        # a cold writer (another process) reads once and skips too
        other = ViewWriter(db).start()
        other.write("views/a", {"title": "x"}, v(20))
        assert other.flush(10)
        other.stop()
        assert other.stats["writes"] == 0 and db.get("views/a").update_time == first
        writer.write("views/a", {"title": "changed"}, v(30))  # a real change: one write
        assert writer.flush(10)
        wait_for(lambda: len(events) > seen, timeout=10)
        assert [c.type for e in events[seen:] for c in e.changes] == ["modified"]
    finally:
        watch.unsubscribe()


def test_older_version_is_dropped(db: Database, writer: ViewWriter) -> None:
    writer.write("views/a", {"title": "new"}, v(5))
    assert writer.flush(10)
    writer.write("views/a", {"title": "old"}, v(3))
    assert writer.flush(10)
    assert content(db, "views/a") == {"title": "new"}
    # pending writes coalesce: the newest version wins whatever the order
    writer.write("views/b", {"n": 2}, v(2))
    writer.write("views/b", {"n": 1}, v(1))
    assert writer.flush(10)
    assert content(db, "views/b") == {"n": 2}
    assert writer.stats["stale"] >= 2


def test_delete_then_late_older_write_stays_deleted(db: Database, writer: ViewWriter) -> None:
    writer.write("views/a", {"title": "x"}, v(1))
    assert writer.flush(10)
    writer.write("views/a", None, v(3))
    assert writer.flush(10)
    assert not db.get("views/a").exists
    writer.write("views/a", {"title": "late"}, v(2))
    assert writer.flush(10)
    assert not db.get("views/a").exists
    writer.write("views/a", {"title": "back"}, v(4))  # a newer build may recreate it
    assert writer.flush(10)
    assert content(db, "views/a") == {"title": "back"}


def test_several_writers_never_regress(db: Database, writer: ViewWriter) -> None:
    other = ViewWriter(db).start()
    try:
        writer.write("views/a", {"n": 1}, v(1))
        assert writer.flush(10)  # writer's cache now holds v1
        other.write("views/a", {"n": 3}, v(3))
        assert other.flush(10)
        writer.write("views/a", {"n": 2}, v(2))  # stale cache: precondition fails, re-read
        assert writer.flush(10)
        assert content(db, "views/a") == {"n": 3}
        writer.write("views/a", {"n": 4}, v(4))
        assert writer.flush(10)
        assert content(db, "views/a") == {"n": 4}
        assert writer.stats["conflicts"] >= 1
    finally:
        other.stop()


def test_batches_and_unusual_keys(db: Database) -> None:
    w = ViewWriter(db, batch_size=7).start()
    try:
        for i in range(30):
            w.write(f"views/{i}", {"i": i}, v(1))
        w.write("views/dotted", {"a.b": 1, "with space": 2}, v(1))
        assert w.flush(20)
        assert len(db.query(Query("views"))) == 31
        assert content(db, "views/dotted") == {"a.b": 1, "with space": 2}
        w.write("views/dotted", {"a.b": 2}, v(2))
        assert w.flush(10)
        assert content(db, "views/dotted") == {"a.b": 2}
    finally:
        w.stop()
    with pytest.raises(ValueError):
        ViewWriter(db, batch_size=501)


def test_several_committers_write_everything(db: Database) -> None:
    """With several commits under way at once, every document ends at its
    latest write and each path is heard in version order."""
    w = ViewWriter(db, batch_size=5, committers=4).start()
    heard: dict[str, list[dt.datetime]] = {}
    lock = threading.Lock()

    def listener(path: str, data: Any, version: dt.datetime) -> None:
        with lock:
            heard.setdefault(path, []).append(version)

    w.add_listener(listener)
    try:
        assert len(writer_threads()) == 4
        for n in range(1, 7):
            for i in range(25):
                w.write(f"views/c{i:02d}", {"round": n}, v(n))
        assert w.flush(30)
        assert {f"views/c{i:02d}": content(db, f"views/c{i:02d}") for i in range(25)} == {
            f"views/c{i:02d}": {"round": 6} for i in range(25)
        }
        assert all(vs == sorted(vs) and vs[-1] == v(6) for vs in heard.values()), heard
    finally:
        w.stop()
    assert not writer_threads()
    with pytest.raises(ValueError, match="committers"):
        ViewWriter(db, committers=0)


def test_a_path_is_never_in_two_commits_at_once(db: Database) -> None:
    """A path written again while its commit is under way waits for that
    commit (listeners included), while other paths go on through the other
    committer: its writes land, and are heard, in order."""
    w = ViewWriter(db, committers=2).start()
    heard: list[tuple[str, dt.datetime]] = []
    entered, gate = threading.Event(), threading.Event()

    def listener(path: str, data: Any, version: dt.datetime) -> None:
        if (path, version) == ("views/x", v(1)):
            entered.set()
            assert gate.wait(10)
        heard.append((path, version))

    w.add_listener(listener)
    try:
        w.write("views/x", {"n": 1}, v(1))
        assert entered.wait(10)  # x's first commit is under way (in its listener)
        w.write("views/x", {"n": 2}, v(2))
        w.write("views/y", {"n": 1}, v(1))
        wait_for(lambda: ("views/y", v(1)) in heard, timeout=10, message="y through the other")
        assert ("views/x", v(2)) not in heard  # x's second write waited
        gate.set()
        assert w.flush(10)
        assert [ver for p, ver in heard if p == "views/x"] == [v(1), v(2)]
        assert content(db, "views/x") == {"n": 2}
    finally:
        gate.set()
        w.stop()


def test_bad_input_is_rejected(db: Database, writer: ViewWriter) -> None:
    with pytest.raises(TypeError):
        writer.write("views/a", {"x": 1}, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        writer.write("views/a", {VERSION_FIELD: 1}, v(1))


def test_a_delete_wins_over_a_write_of_the_same_version(db: Database) -> None:
    """A view removed while it was being built (its build read the same point
    as the removal) stays removed, whichever reaches the writer first."""
    w = ViewWriter(db)  # not started: both wait in the queue
    w.write("views/a", None, v(2))
    w.write("views/a", {"title": "built"}, v(2))
    w.start()
    try:
        assert w.flush(10)
        assert not db.get("views/a").exists
        w.write("views/b", {"title": "x"}, v(1))
        w.write("views/b", None, v(2))
        assert w.flush(10)  # committed: the tombstone decides
        w.write("views/b", {"title": "built"}, v(2))
        assert w.flush(10)
        assert not db.get("views/b").exists
        assert w.stats["stale"] == 2
        w.write("views/b", {"title": "again"}, v(3))  # a newer build recreates it
        assert w.flush(10)
        assert content(db, "views/b") == {"title": "again"}
    finally:
        w.stop()


def test_a_refused_write_is_split_out_of_its_batch(db: Database) -> None:
    """One view the database cannot store never costs the others their write,
    and the error names that view."""
    w = ViewWriter(db, retry_base=0.001)  # not started: the three go in one batch
    w.write("views/good1", {"n": 1}, v(1))
    w.write("views/bad", {"n": object()}, v(1))
    w.write("views/good2", {"n": 2}, v(1))
    w.start()
    try:
        assert w.flush(10)
    finally:
        w.stop(raise_errors=False)
    assert content(db, "views/good1") == {"n": 1}
    assert content(db, "views/good2") == {"n": 2}
    assert not db.get("views/bad").exists
    assert w.errors and {e.key for e in w.errors} == {"views/bad"}
    assert "gave up" in str(w.errors[-1].exception)


def test_known_content_is_bounded(db: Database) -> None:
    """Past ``known_limit`` the oldest entries are forgotten; writing one of
    them again reads it once and still skips an unchanged write."""
    w = ViewWriter(db, known_limit=2).start()
    try:
        for name in "abc":
            w.write(f"views/{name}", {"n": name}, v(1))
        assert w.flush(10)
        # which one is forgotten depends on the order the commits ended
        (forgotten,) = {f"views/{name}" for name in "abc"} - set(w._known)
        first = db.get(forgotten).update_time
        w.write(forgotten, {"n": forgotten[-1]}, v(2))
        assert w.flush(10)
        assert db.get(forgotten).update_time == first and w.stats["skipped"] == 1
        assert len(w._known) == 2 and forgotten in w._known
    finally:
        w.stop()
    with pytest.raises(ValueError, match="known_limit"):
        ViewWriter(db, known_limit=0)


@pytest.mark.timeout(180)
def test_writes_wait_for_an_unavailable_database(project_id: str) -> None:
    """While Firestore does not answer, writes are retried (each failure
    recorded as Unavailable), never given up; they land once it answers."""
    emulator = FirestoreEmulator()  # not started yet: nothing listens on its port
    db = FirestoreDatabase(project=project_id, emulator_host=emulator.host, request_timeout=0.3)
    w = ViewWriter(db, retry_base=0.05).start()
    try:
        w.write("views/a", {"n": 1}, v(1))
        wait_for(
            lambda: sum(isinstance(e.exception, Unavailable) for e in w.errors) >= 3,
            timeout=60,
            message=lambda: f"repeated Unavailable errors, got {w.errors}",
        )
        assert all("gave up" not in str(e.exception) for e in w.errors)
        assert all(e.key == "views/a" for e in w.errors)
        emulator.start()
        assert w.flush(90)
        assert content(db, "views/a") == {"n": 1}
    finally:
        w.stop(raise_errors=False)
        db.close()
        emulator.stop()


def test_a_batch_failing_as_a_whole_is_not_split(db: Database) -> None:
    """Only data the database refuses is split out; a failure of the whole
    batch (here: the database closed) is given up once, not once per view."""
    w = ViewWriter(db, retry_base=0.001)  # not started: the three go in one batch
    for name in "abc":
        w.write(f"views/{name}", {"n": name}, v(1))
    db.close()
    w.start()
    try:
        assert w.flush(10)
    finally:
        w.stop(raise_errors=False)
    assert [type(e.exception).__name__ for e in w.errors] == ["DatabaseClosed", "RuntimeError"]
    assert {e.key for e in w.errors} == {"views/a and 2 more"}
