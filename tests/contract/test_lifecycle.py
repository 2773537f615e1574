"""close(): idempotent, releases listeners, refuses later use."""

from __future__ import annotations

import pytest

from boiler.database import Database
from boiler.exceptions import DatabaseClosed

from .conftest import Listen


def test_close_is_idempotent_and_refuses_later_use(db: Database) -> None:
    db.set("c/a", {"n": 1})
    db.close()
    db.close()
    with pytest.raises(DatabaseClosed):
        db.get("c/a")
    with pytest.raises(DatabaseClosed):
        db.set("c/a", {"n": 2})
    with pytest.raises(DatabaseClosed):
        db.query(db.collection("c"))


def test_close_releases_listeners(db: Database, listen: Listen) -> None:
    rec, watch = listen.document("c/a")
    rec.wait_count(1)
    db.close()
    watch.unsubscribe()  # still allowed after close
    with pytest.raises(DatabaseClosed):
        db.listen_document("c/a", rec)


def test_context_manager_closes(db: Database) -> None:
    with db as same:
        assert same is db
        same.set("c/a", {"n": 1})
    with pytest.raises(DatabaseClosed):
        db.get("c/a")
