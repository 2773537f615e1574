"""Documents and collections are addressed by slash-separated paths."""

from __future__ import annotations

import pytest

from boiler.database import Database
from boiler.exceptions import InvalidPath

from .conftest import ids

BAD_DOCUMENT_PATHS = [
    "users",  # a collection, not a document
    "users/u1/tickets",
    "/users/u1",
    "users/u1/",
    "users//u1",
    "",
]


@pytest.mark.parametrize("path", BAD_DOCUMENT_PATHS)
def test_get_rejects_invalid_document_path(db: Database, path: str) -> None:
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.get(path)


@pytest.mark.parametrize("path", ["users", "a/b/c", "users/u1/", "x//y"])
def test_writes_reject_invalid_document_path(db: Database, path: str) -> None:
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.set(path, {"a": 1})
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.create(path, {"a": 1})
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.update(path, {"a": 1})
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.delete(path)
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.get_all(["ok/1", path])


def test_non_string_path_is_invalid(db: Database) -> None:
    with pytest.raises(InvalidPath, match="42"):
        db.get(42)  # type: ignore[arg-type]
    db.get("users/u1")  # a valid path, now remembered as checked
    with pytest.raises(InvalidPath, match="list"):
        db.get(["users", "u1"])  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["users/u1", "a/b/c/d"])
def test_collection_rejects_document_path(db: Database, path: str) -> None:
    with pytest.raises(InvalidPath, match=f"'{path}'"):
        db.collection(path)


def test_listen_document_rejects_collection_path(db: Database) -> None:
    with pytest.raises(InvalidPath, match="'users'"):
        db.listen_document("users", lambda event: None)


def test_nested_document_round_trip(db: Database) -> None:
    db.set("users/u1/MeetingSession/m1", {"title": "standup"})
    snap = db.get("users/u1/MeetingSession/m1")
    assert snap.exists
    assert snap.path == "users/u1/MeetingSession/m1"
    assert snap.id == "m1"
    assert snap.parent == "users/u1/MeetingSession"
    assert snap.to_dict() == {"title": "standup"}


def test_parent_document_need_not_exist(db: Database) -> None:
    db.set("users/u1/tickets/t1", {"n": 1})
    assert not db.get("users/u1").exists
    assert db.query(db.collection("users")) == []
    assert ids(db.query(db.collection("users/u1/tickets"))) == ["t1"]


def test_subcollection_is_distinct_from_top_level_collection(db: Database) -> None:
    db.set("tickets/t1", {"where": "top"})
    db.set("users/u1/tickets/t1", {"where": "nested"})
    db.set("users/u2/tickets/t1", {"where": "nested2"})
    assert db.get("tickets/t1").to_dict() == {"where": "top"}
    assert db.get("users/u1/tickets/t1").to_dict() == {"where": "nested"}
    assert [s.get("where") for s in db.query(db.collection("users/u1/tickets"))] == ["nested"]
    assert [s.get("where") for s in db.query(db.collection("tickets"))] == ["top"]


def test_deleting_a_document_keeps_its_subcollections(db: Database) -> None:
    db.set("users/u1", {"name": "a"})
    db.set("users/u1/tickets/t1", {"n": 1})
    db.delete("users/u1")
    assert not db.get("users/u1").exists
    assert db.get("users/u1/tickets/t1").to_dict() == {"n": 1}
    assert db.list_collections("users/u1") == ["tickets"]


def test_ids_may_contain_spaces_and_unicode(db: Database) -> None:
    path = "cities/San Francisco é 😀"
    db.set(path, {"ok": True})
    snap = db.get(path)
    assert snap.id == "San Francisco é 😀"
    assert snap.to_dict() == {"ok": True}


def test_list_collections_root_and_nested(db: Database) -> None:
    assert db.list_collections() == []
    db.set("zeta/1", {"a": 1})
    db.set("alpha/1", {"a": 1})
    db.set("alpha/1/sub_b/x", {"a": 1})
    db.set("alpha/1/sub_a/y", {"a": 1})
    db.set("alpha/2/other/z", {"a": 1})
    db.set("ghost/1/inner/q", {"a": 1})  # "ghost/1" itself never written
    assert db.list_collections() == ["alpha", "ghost", "zeta"]
    assert db.list_collections("alpha/1") == ["sub_a", "sub_b"]
    assert db.list_collections("alpha/2") == ["other"]
    assert db.list_collections("ghost/1") == ["inner"]
    assert db.list_collections("zeta/1") == []
    assert db.list_collections("nothing/here") == []


def test_collection_disappears_with_its_last_document(db: Database) -> None:
    db.set("keep/1", {"a": 1})
    db.set("gone/1", {"a": 1})
    db.delete("gone/1")
    assert db.list_collections() == ["keep"]


def test_list_collections_rejects_collection_path(db: Database) -> None:
    with pytest.raises(InvalidPath, match="'alpha'"):
        db.list_collections("alpha")
