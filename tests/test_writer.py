"""ViewWriter: versioned, deduplicated, batched view-document writes."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from boiler.database import Database, ListenEvent, Query
from boiler.runtime import VERSION_FIELD, ViewWriter
from boiler.testing import wait_for

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
