"""Batched writes: all or nothing, one commit time."""

from __future__ import annotations

import pytest

from boiler.database import DELETE_FIELD, Database, Precondition, WriteBatch
from boiler.exceptions import AlreadyExists, FailedPrecondition, InvalidPath, NotFound

from .conftest import seed


def test_batch_applies_every_write(db: Database) -> None:
    seed(db, "c", {"upd": {"n": 1, "gone": 1}, "del": {"n": 2}, "mrg": {"m": {"x": 1}}})
    batch = db.batch()
    assert isinstance(batch, WriteBatch)
    returned = (
        batch.set("c/new", {"n": 3})
        .create("c/created", {"n": 4})
        .update("c/upd", {"n": 10, "gone": DELETE_FIELD})
        .delete("c/del")
        .set("c/mrg", {"m": {"y": 2}}, merge=True)
    )
    assert returned is batch
    assert len(batch) == 5
    results = batch.commit()
    assert len(results) == 5
    assert db.get("c/new").to_dict() == {"n": 3}
    assert db.get("c/created").to_dict() == {"n": 4}
    assert db.get("c/upd").to_dict() == {"n": 10}
    assert not db.get("c/del").exists
    assert db.get("c/mrg").to_dict() == {"m": {"x": 1, "y": 2}}


def test_batch_writes_share_one_update_time(db: Database) -> None:
    batch = db.batch()
    batch.set("c/a", {"n": 1})
    batch.set("c/b", {"n": 2})
    r1, r2 = batch.commit()
    a, b = db.get_all(["c/a", "c/b"])
    assert r1.update_time == r2.update_time == a.update_time == b.update_time


def test_nothing_is_written_before_commit(db: Database) -> None:
    batch = db.batch()
    batch.set("c/a", {"n": 1})
    assert not db.get("c/a").exists
    batch.commit()
    assert db.get("c/a").exists


def test_several_writes_to_one_document_apply_in_order(db: Database) -> None:
    batch = db.batch()
    batch.create("c/a", {"x": 1})
    batch.set("c/a", {"y": 2}, merge=True)
    batch.update("c/a", {"z": 3})
    batch.commit()
    assert db.get("c/a").to_dict() == {"x": 1, "y": 2, "z": 3}


def test_empty_batch_commits(db: Database) -> None:
    assert db.batch().commit() == []


def test_batch_with_update_of_missing_document_writes_nothing(db: Database) -> None:
    db.set("c/keep", {"n": 1})
    batch = db.batch()
    batch.set("c/a", {"n": 1})
    batch.delete("c/keep")
    batch.update("c/missing", {"n": 1})
    with pytest.raises(NotFound, match="c/missing"):
        batch.commit()
    assert not db.get("c/a").exists
    assert db.get("c/keep").to_dict() == {"n": 1}


def test_batch_with_create_of_existing_document_writes_nothing(db: Database) -> None:
    db.set("c/exists", {"n": 1})
    batch = db.batch()
    batch.set("c/a", {"n": 1})
    batch.create("c/exists", {"n": 2})
    with pytest.raises(AlreadyExists, match="c/exists"):
        batch.commit()
    assert not db.get("c/a").exists
    assert db.get("c/exists").to_dict() == {"n": 1}


def test_batch_with_stale_update_time_writes_nothing(db: Database) -> None:
    first = db.set("c/a", {"n": 1})
    db.set("c/a", {"n": 2})
    batch = db.batch()
    batch.set("c/b", {"n": 1})
    batch.update("c/a", {"n": 3}, precondition=Precondition(update_time=first.update_time))
    with pytest.raises(FailedPrecondition, match="c/a"):
        batch.commit()
    assert not db.get("c/b").exists
    assert db.get("c/a").to_dict() == {"n": 2}


def test_batch_rejects_invalid_path_when_added(db: Database) -> None:
    batch = db.batch()
    with pytest.raises(InvalidPath, match="'c'"):
        batch.set("c", {"n": 1})


def test_get_all_sees_a_concurrent_batch_whole_or_not_at_all(db: Database) -> None:
    """Observed on the emulator: a plain lookup (and even a transactional one)
    could show half of a batch being applied; reads must not."""
    import threading
    import time

    db.set("pair/left", {"n": 0})
    db.set("pair/right", {"n": 0})
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            db.batch().update("pair/left", {"n": n}).update("pair/right", {"n": n}).commit()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            left, right = db.get_all(["pair/left", "pair/right"])
            seen.append((left.get("n"), right.get("n")))
    finally:
        stop.set()
        thread.join()
    assert len({a for a, _ in seen}) > 3, "the writer and the reads did not overlap"
    assert all(a == b for a, b in seen), [p for p in seen if p[0] != p[1]][:5]
