"""order_by, limit, limit_to_last and cursors (values and snapshots)."""

from __future__ import annotations

import pytest

from boiler.database import DESCENDING, DOCUMENT_ID, Database, Query
from boiler.exceptions import InvalidQuery

from .conftest import ids, seed

# "d" has no n, "e" has no s: ordering by a field excludes documents without it.
DOCS = {
    "a": {"n": 2, "s": "x"},
    "b": {"n": 1, "s": "y"},
    "c": {"n": 2, "s": "a"},
    "d": {"s": "z"},
    "e": {"n": 3},
    "f": {"n": 1.5, "s": "y"},
}


@pytest.fixture
def col(db: Database) -> Query:
    seed(db, "c", DOCS)
    return db.collection("c")


def run(db: Database, q: Query) -> list[str]:
    return ids(db.query(q))


def test_order_by_ascending_excludes_missing_field_ties_by_id(db: Database, col: Query) -> None:
    assert run(db, col.order_by("n")) == ["b", "f", "a", "c", "e"]


def test_order_by_descending_ties_by_id_descending(db: Database, col: Query) -> None:
    assert run(db, col.order_by("n", DESCENDING)) == ["e", "c", "a", "f", "b"]
    assert run(db, col.order_by("n", "descending")) == ["e", "c", "a", "f", "b"]


def test_order_by_two_fields(db: Database, col: Query) -> None:
    # documents missing either field are excluded
    assert run(db, col.order_by("n").order_by("s", DESCENDING)) == ["b", "f", "a", "c"]
    assert run(db, col.order_by("s").order_by("n")) == ["c", "a", "b", "f"]


def test_order_by_strings(db: Database, col: Query) -> None:
    assert run(db, col.order_by("s")) == ["c", "a", "b", "f", "d"]


def test_order_by_document_id(db: Database, col: Query) -> None:
    assert run(db, col.order_by(DOCUMENT_ID)) == ["a", "b", "c", "d", "e", "f"]
    assert run(db, col.order_by("n", DESCENDING).order_by(DOCUMENT_ID)) == [
        "e", "a", "c", "f", "b",
    ]  # fmt: skip


def test_order_by_mixed_types_follows_firestore_type_order(db: Database) -> None:
    import datetime as dt
    import math

    seed(
        db,
        "m",
        {
            "01-map": {"v": {"a": 1}},
            "02-arr": {"v": [1, 2]},
            "03-arr-short": {"v": [1]},
            "04-bytes": {"v": b"\x01"},
            "05-str": {"v": "abc"},
            "06-ts": {"v": dt.datetime(2001, 1, 1, tzinfo=dt.UTC)},
            "07-float": {"v": 2.5},
            "08-int": {"v": -3},
            "09-nan": {"v": math.nan},
            "10-true": {"v": True},
            "11-false": {"v": False},
            "12-null": {"v": None},
            "13-map-empty": {"v": {}},
            "14-arr-empty": {"v": []},
        },
    )
    assert run(db, db.collection("m").order_by("v")) == [
        "12-null", "11-false", "10-true", "09-nan", "08-int", "07-float", "06-ts", "05-str",
        "04-bytes", "14-arr-empty", "03-arr-short", "02-arr", "13-map-empty", "01-map",
    ]  # fmt: skip


def test_order_by_compares_arrays_and_maps_element_wise(db: Database) -> None:
    seed(
        db,
        "m",
        {
            "a1": {"v": [1, "b"]},
            "a2": {"v": [1, "a", 5]},
            "a3": {"v": [0, "z"]},
            "m1": {"v": {"b": 1}},
            "m2": {"v": {"a": 2}},
            "m3": {"v": {"a": 1, "c": 1}},
            "m4": {"v": {"a": 1}},
        },
    )
    assert run(db, db.collection("m").order_by("v")) == ["a3", "a2", "a1", "m4", "m3", "m2", "m1"]


def test_inequality_field_is_ordered_implicitly(db: Database, col: Query) -> None:
    assert run(db, col.where("n", ">", 1)) == ["f", "a", "c", "e"]


def test_explicit_order_then_implicit_inequality_order(db: Database) -> None:
    seed(
        db,
        "o",
        {
            "a": {"n": 1, "x": 3, "y": 1},
            "b": {"n": 1, "x": 1, "y": 3},
            "c": {"n": 1, "x": 2, "y": 2},
            "d": {"n": 0, "x": 9, "y": 9},
        },
    )
    o = db.collection("o")
    # unordered inequality fields follow the explicit orders, by field name, then the id
    assert run(db, o.where("y", ">", 0).order_by("n")) == ["d", "a", "c", "b"]
    assert run(db, o.where("y", ">", 0).order_by("n", DESCENDING)) == ["b", "c", "a", "d"]
    assert run(db, o.where("y", ">", 0).where("x", ">", 0)) == ["b", "c", "a", "d"]
    assert run(db, o.where("y", ">", 0).where("x", ">", 0).order_by("n")) == ["d", "b", "c", "a"]


def test_inequality_with_order_on_other_field_excludes_missing(db: Database, col: Query) -> None:
    assert run(db, col.where("n", ">", 1).order_by("s")) == ["c", "a", "f"]


def test_limit(db: Database, col: Query) -> None:
    assert run(db, col.limit(2)) == ["a", "b"]
    assert run(db, col.order_by("n").limit(2)) == ["b", "f"]
    assert run(db, col.order_by("n").limit(100)) == ["b", "f", "a", "c", "e"]
    assert run(db, col.limit(0)) == []


def test_limit_to_last(db: Database, col: Query) -> None:
    assert run(db, col.order_by("n").limit_to_last(2)) == ["c", "e"]
    assert run(db, col.order_by("n", DESCENDING).limit_to_last(2)) == ["f", "b"]
    assert run(db, col.order_by("n").limit_to_last(100)) == ["b", "f", "a", "c", "e"]


def test_limit_to_last_applies_after_cursors(db: Database, col: Query) -> None:
    # the last N of the cursor-bounded result, returned in query order
    assert run(db, col.order_by("n").end_at(2).limit_to_last(2)) == ["a", "c"]
    assert run(db, col.order_by("n").start_at(1.5).limit_to_last(10)) == ["f", "a", "c", "e"]
    assert run(db, col.order_by("n").start_after(1).limit_to_last(2)) == ["c", "e"]


def test_limit_to_last_needs_order_by(db: Database) -> None:
    with pytest.raises(InvalidQuery, match="order_by"):
        db.collection("c").limit_to_last(1)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_limit_is_rejected(db: Database, bad: object) -> None:
    with pytest.raises(InvalidQuery, match="limit"):
        db.collection("c").limit(bad)  # type: ignore[arg-type]


def test_bad_direction_is_rejected(db: Database) -> None:
    with pytest.raises(InvalidQuery, match="(?i)sideways"):
        db.collection("c").order_by("n", "sideways")


def test_value_cursors(db: Database, col: Query) -> None:
    by_n = col.order_by("n")
    assert run(db, by_n.start_at(2)) == ["a", "c", "e"]
    assert run(db, by_n.start_after(2)) == ["e"]
    assert run(db, by_n.end_at(2)) == ["b", "f", "a", "c"]
    assert run(db, by_n.end_before(2)) == ["b", "f"]
    assert run(db, by_n.start_at(1.5).end_at(2)) == ["f", "a", "c"]
    assert run(db, by_n.start_after(1).end_before(3)) == ["f", "a", "c"]
    assert run(db, by_n.start_at(2.0)) == ["a", "c", "e"]  # 2.0 == 2
    assert run(db, by_n.start_after(99)) == []


def test_value_cursor_descending(db: Database, col: Query) -> None:
    by_n_desc = col.order_by("n", DESCENDING)
    assert run(db, by_n_desc.start_at(2)) == ["c", "a", "f", "b"]
    assert run(db, by_n_desc.start_after(2)) == ["f", "b"]
    assert run(db, by_n_desc.end_before(1.5)) == ["e", "c", "a"]


def test_value_cursor_on_several_fields(db: Database, col: Query) -> None:
    q = col.order_by("n").order_by("s")
    assert run(db, q.start_at(2, "x")) == ["a"]
    assert run(db, q.start_at(2, "b")) == ["a"]
    assert run(db, q.start_after(1.5, "y")) == ["c", "a"]
    assert run(db, q.start_at(2)) == ["c", "a"]  # a prefix of the orders is allowed


def test_cursor_on_document_id(db: Database, col: Query) -> None:
    q = col.order_by(DOCUMENT_ID)
    assert run(db, q.start_after("b")) == ["c", "d", "e", "f"]
    assert run(db, q.start_at("b").end_before("d")) == ["b", "c"]


def test_snapshot_cursors(db: Database, col: Query) -> None:
    snap_a = db.get("c/a")  # n == 2, tied with "c": the id breaks the tie
    by_n = col.order_by("n")
    assert run(db, by_n.start_at(snap_a)) == ["a", "c", "e"]
    assert run(db, by_n.start_after(snap_a)) == ["c", "e"]
    assert run(db, by_n.end_before(snap_a)) == ["b", "f"]
    assert run(db, by_n.end_at(snap_a)) == ["b", "f", "a"]
    assert run(db, col.order_by("n", DESCENDING).start_after(snap_a)) == ["f", "b"]


def test_snapshot_cursor_without_order_by_uses_id(db: Database, col: Query) -> None:
    assert run(db, col.start_after(db.get("c/a"))) == ["b", "c", "d", "e", "f"]


def test_snapshot_cursor_from_a_query_result_paginates(db: Database, col: Query) -> None:
    by_n = col.order_by("n").limit(2)
    pages: list[list[str]] = []
    page = db.query(by_n)
    while page:
        pages.append(ids(page))
        page = db.query(by_n.start_after(page[-1]))
    assert pages == [["b", "f"], ["a", "c"], ["e"]]


def test_cursor_with_too_many_values_is_rejected(db: Database, col: Query) -> None:
    with pytest.raises(InvalidQuery, match="cursor"):
        db.query(col.order_by("n").start_at(1, 2))


def test_empty_cursor_is_rejected(db: Database) -> None:
    with pytest.raises(InvalidQuery, match="cursor"):
        db.collection("c").order_by("n").start_at()
