"""collection_group(id): every collection with that id, at any depth."""

from __future__ import annotations

import pytest

from boiler.database import DESCENDING, Database
from boiler.database.query import collection_group
from boiler.exceptions import InvalidQuery

from .conftest import paths_of


@pytest.fixture
def nested(db: Database) -> Database:
    for path, n in [
        ("t/1", 1),
        ("u/1/t/2", 2),
        ("u/1/t/3", 3),
        ("u/2/x/9/t/4", 4),
        ("t2/5", 5),  # another collection id
        ("u/1/tt/6", 6),  # another collection id
        ("x/t/y/7", 7),  # "t" is a document id here, not a collection id
    ]:
        db.set(path, {"n": n})
    return db


def test_collection_group_matches_every_depth(nested: Database) -> None:
    got = nested.query(nested.collection_group("t"))
    assert paths_of(got) == ["t/1", "u/1/t/2", "u/1/t/3", "u/2/x/9/t/4"]
    assert [s.id for s in got] == ["1", "2", "3", "4"]
    assert [s.parent for s in got] == ["t", "u/1/t", "u/1/t", "u/2/x/9/t"]


def test_collection_group_with_filter_and_order(nested: Database) -> None:
    g = nested.collection_group("t")
    assert paths_of(nested.query(g.where("n", ">", 2))) == ["u/1/t/3", "u/2/x/9/t/4"]
    assert paths_of(nested.query(g.order_by("n", DESCENDING).limit(2))) == [
        "u/2/x/9/t/4",
        "u/1/t/3",
    ]


def test_collection_group_orders_paths_segment_by_segment(db: Database) -> None:
    for path in ["a-b/1/t/y", "a/1/t/x", "ab/1/t/w", "a/0/t/z"]:
        db.set(path, {"k": 1})
    # "a" < "a-b" < "ab" segment-wise, although "a-b" < "a/..." as plain strings
    assert paths_of(db.query(db.collection_group("t"))) == [
        "a/0/t/z",
        "a/1/t/x",
        "a-b/1/t/y",
        "ab/1/t/w",
    ]


def test_collection_group_unknown_id_is_empty(nested: Database) -> None:
    assert nested.query(nested.collection_group("nope")) == []


def test_collection_group_scoped_under_a_document(nested: Database) -> None:
    nested.set("u/1/a/b/t/8", {"n": 8})  # deeper under u/1
    nested.set("u/10/t/9", {"n": 9})  # "u/10" is not under "u/1"
    assert paths_of(nested.query(collection_group("t", scope="u/1"))) == [
        "u/1/a/b/t/8",
        "u/1/t/2",
        "u/1/t/3",
    ]
    assert paths_of(nested.query(collection_group("t", scope="u/2"))) == ["u/2/x/9/t/4"]


def test_collection_group_id_must_be_one_segment(db: Database) -> None:
    with pytest.raises(InvalidQuery, match="u/t"):
        db.collection_group("u/t")
