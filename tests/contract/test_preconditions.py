"""Write preconditions: exists / update_time, on update and delete."""

from __future__ import annotations

import datetime as dt

import pytest

from boiler.database import Database, Precondition
from boiler.exceptions import AlreadyExists, Conflict, FailedPrecondition, NotFound


def test_update_with_matching_update_time(db: Database) -> None:
    written = db.set("c/a", {"n": 1})
    result = db.update("c/a", {"n": 2}, precondition=Precondition(update_time=written.update_time))
    assert db.get("c/a").to_dict() == {"n": 2}
    assert result.update_time > written.update_time


def test_update_with_snapshot_update_time(db: Database) -> None:
    db.set("c/a", {"n": 1})
    snap = db.get("c/a")
    db.update("c/a", {"n": 2}, precondition=Precondition(update_time=snap.update_time))
    assert db.get("c/a").get("n") == 2


def test_update_with_stale_update_time_fails(db: Database) -> None:
    first = db.set("c/a", {"n": 1})
    db.set("c/a", {"n": 2})
    with pytest.raises(FailedPrecondition, match="c/a") as info:
        db.update("c/a", {"n": 3}, precondition=Precondition(update_time=first.update_time))
    assert isinstance(info.value, Conflict)
    assert db.get("c/a").to_dict() == {"n": 2}


def test_update_with_update_time_on_missing_document_fails(db: Database) -> None:
    some_time = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(FailedPrecondition, match="c/missing"):
        db.update("c/missing", {"n": 1}, precondition=Precondition(update_time=some_time))
    assert not db.get("c/missing").exists


def test_update_with_exists_true(db: Database) -> None:
    db.set("c/a", {"n": 1})
    db.update("c/a", {"n": 2}, precondition=Precondition(exists=True))
    assert db.get("c/a").get("n") == 2
    with pytest.raises(NotFound, match="c/missing"):
        db.update("c/missing", {"n": 1}, precondition=Precondition(exists=True))


def test_delete_with_matching_update_time(db: Database) -> None:
    written = db.set("c/a", {"n": 1})
    db.delete("c/a", precondition=Precondition(update_time=written.update_time))
    assert not db.get("c/a").exists


def test_delete_with_stale_update_time_fails(db: Database) -> None:
    first = db.set("c/a", {"n": 1})
    db.update("c/a", {"n": 2})
    with pytest.raises(FailedPrecondition, match="c/a"):
        db.delete("c/a", precondition=Precondition(update_time=first.update_time))
    assert db.get("c/a").to_dict() == {"n": 2}


def test_delete_exists_true_on_missing_raises_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="c/missing"):
        db.delete("c/missing", precondition=Precondition(exists=True))


def test_delete_exists_true_on_existing(db: Database) -> None:
    db.set("c/a", {"n": 1})
    db.delete("c/a", precondition=Precondition(exists=True))
    assert not db.get("c/a").exists


def test_delete_exists_false_on_existing_raises_already_exists(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(AlreadyExists, match="c/a"):
        db.delete("c/a", precondition=Precondition(exists=False))
    assert db.get("c/a").exists


def test_delete_exists_false_on_missing_is_a_no_op(db: Database) -> None:
    db.delete("c/missing", precondition=Precondition(exists=False))
    assert not db.get("c/missing").exists


def test_precondition_in_transaction(db: Database) -> None:
    first = db.set("c/a", {"n": 1})
    db.set("c/a", {"n": 2})
    with pytest.raises(FailedPrecondition, match="c/a"):
        with db.transaction() as tx:
            tx.set("c/b", {"n": 1})
            tx.update("c/a", {"n": 3}, precondition=Precondition(update_time=first.update_time))
    assert not db.get("c/b").exists
    assert db.get("c/a").get("n") == 2


def test_optimistic_update_loop(db: Database) -> None:
    """The read-modify-write pattern preconditions exist for."""
    db.set("c/a", {"n": 1})
    snap = db.get("c/a")
    db.update("c/a", {"n": 5})  # someone else wrote in between
    with pytest.raises(FailedPrecondition):
        db.update(
            "c/a", {"n": snap.get("n") + 1}, precondition=Precondition(update_time=snap.update_time)
        )
    fresh = db.get("c/a")
    db.update(
        "c/a", {"n": fresh.get("n") + 1}, precondition=Precondition(update_time=fresh.update_time)
    )
    assert db.get("c/a").get("n") == 6
