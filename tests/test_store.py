"""Store: reads for one build, served once, recorded as dependencies."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from boiler.database import Database, DocumentSnapshot, Query
from boiler.store import Dependencies, Store


class CountingReader:
    """A real reader (the database) that counts round trips."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.calls: list[tuple[str, object]] = []

    def get_all(self, paths: Sequence[str]) -> list[DocumentSnapshot]:
        self.calls.append(("get_all", list(paths)))
        return self.db.get_all(paths)

    def query(self, q: Query) -> list[DocumentSnapshot]:
        self.calls.append(("query", q))
        return self.db.query(q)


@pytest.fixture
def seeded(db: Database) -> Database:
    db.set("users/u1", {"name": "Ann"})
    db.set("users/u2", {"name": "Bob"})
    db.set("tickets/t1", {"meeting": "m1", "user": "users/u1"})
    db.set("tickets/t2", {"meeting": "m2", "user": "users/u2"})
    return db


def test_reads_are_recorded_with_update_times(seeded: Database) -> None:
    store = Store(seeded)
    assert store.get("users/u1").get("name") == "Ann"
    assert not store.get("users/nobody").exists
    deps = store.dependencies
    assert set(deps.documents) == {"users/u1", "users/nobody"}
    assert deps.documents["users/u1"] == seeded.get("users/u1").update_time
    assert deps.documents["users/nobody"] is None
    assert isinstance(deps, Dependencies)
    with pytest.raises(TypeError):
        deps.documents["x"] = None  # type: ignore[index]


def test_repeated_reads_are_served_once(seeded: Database) -> None:
    reader = CountingReader(seeded)
    store = Store(reader)
    first = store.get("users/u1")
    seeded.set("users/u1", {"name": "changed"})
    again = store.get_all(["users/u1", "users/u2", "users/u1"])
    assert again[0] is first and again[2] is first
    assert [c[1] for c in reader.calls] == [["users/u1"], ["users/u2"]]  # misses only
    assert store.round_trips == 2


def test_get_all_is_one_round_trip(seeded: Database) -> None:
    reader = CountingReader(seeded)
    store = Store(reader)
    snaps = store.get_all(["users/u1", "users/u2", "tickets/t1"])
    assert [s.path for s in snaps] == ["users/u1", "users/u2", "tickets/t1"]
    assert len(reader.calls) == 1
    with pytest.raises(TypeError):
        store.get_all("users/u1")


def test_query_is_recorded_and_cached(seeded: Database) -> None:
    reader = CountingReader(seeded)
    store = Store(reader)
    q = Query("tickets").where("meeting", "==", "m1")
    assert [s.path for s in store.query(q)] == ["tickets/t1"]
    assert [s.path for s in store.query(Query("tickets").where("meeting", "==", "m1"))] == [
        "tickets/t1"
    ]
    assert len(reader.calls) == 1
    deps = store.dependencies
    assert dict(deps.queries[q]) == {"tickets/t1": seeded.get("tickets/t1").update_time}
    assert deps.documents == {}
    assert deps.paths == {"tickets/t1"}
    # a document the query returned is then served without a round trip
    store.get("tickets/t1")
    assert len(reader.calls) == 1 and "tickets/t1" in store.dependencies.documents


def test_prefetched_snapshots_are_not_dependencies_until_read(seeded: Database) -> None:
    with seeded.transaction(read_only=True) as tx:
        pre = {s.path: s for s in tx.get_all(["users/u1", "users/u2"])}
        store = Store(tx, prefetched=pre)
        assert store.get("users/u2") is pre["users/u2"]
        store.get("tickets/t1")
    assert set(store.dependencies.documents) == {"users/u2", "tickets/t1"}
    assert store.round_trips == 1


def test_version_is_the_read_point(seeded: Database) -> None:
    with seeded.transaction(read_only=True) as tx:
        store = Store(tx)
        assert store.version is None
        a = store.get("users/u1")
        store.query(Query("tickets"))
    assert store.version == a.read_time
    assert store.version is not None and store.version >= a.update_time  # type: ignore[operator]


def test_dependencies_equality(seeded: Database) -> None:
    s1, s2 = Store(seeded), Store(seeded)
    for s in (s1, s2):
        s.get("users/u1")
        s.query(Query("tickets"))
    assert s1.dependencies == s2.dependencies
    seeded.set("users/u1", {"name": "x"})
    s3 = Store(seeded)
    s3.get("users/u1")
    s3.query(Query("tickets"))
    assert s3.dependencies != s1.dependencies
