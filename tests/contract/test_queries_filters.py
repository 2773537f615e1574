"""where(): every operator, Firestore's type-aware comparisons, missing fields and nulls."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from boiler.database import Database, FieldFilter, Query
from boiler.exceptions import InvalidQuery

from .conftest import ids, seed

UTC = dt.UTC

# One document per value of "v", covering every type, plus one without "v".
MIXED: dict[str, dict[str, Any]] = {
    "null": {"v": None},
    "false": {"v": False},
    "true": {"v": True},
    "nan": {"v": math.nan},
    "ninf": {"v": -math.inf},
    "i-1": {"v": -1},
    "i1": {"v": 1},
    "f1": {"v": 1.0},
    "f15": {"v": 1.5},
    "i2": {"v": 2},
    "ts": {"v": dt.datetime(2020, 1, 1, tzinfo=UTC)},
    "s_empty": {"v": ""},
    "sA": {"v": "A"},
    "sa": {"v": "a"},
    "bytes": {"v": b"\x00"},
    "arr0": {"v": []},
    "arr1": {"v": [1]},
    "arr_mixed": {"v": [1, "a", None]},
    "map0": {"v": {}},
    "map1": {"v": {"a": 1}},
    "no_v": {"other": 1},
}


@pytest.fixture
def mixed(db: Database) -> Query:
    seed(db, "mixed", MIXED)
    return db.collection("mixed")


def run(db: Database, q: Query) -> list[str]:
    return ids(db.query(q))


def test_no_filter_returns_all_ordered_by_id(db: Database) -> None:
    seed(db, "c", {"b": {"n": 1}, "a": {"n": 2}, "10": {"n": 3}, "9": {"n": 4}, "B": {}})
    assert run(db, db.collection("c")) == ["10", "9", "B", "a", "b"]


def test_empty_collection(db: Database) -> None:
    assert db.query(db.collection("nothing")) == []


def test_query_results_are_snapshots_with_data(db: Database) -> None:
    db.set("c/a", {"n": 1, "m": {"k": "v"}})
    [snap] = db.query(db.collection("c"))
    assert snap.path == "c/a"
    assert snap.exists
    assert snap.to_dict() == {"n": 1, "m": {"k": "v"}}
    assert snap.update_time == db.get("c/a").update_time


def test_equal_int_and_float_are_equal(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "==", 1)) == ["f1", "i1"]
    assert run(db, mixed.where("v", "==", 1.0)) == ["f1", "i1"]


def test_equal_does_not_cross_types(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "==", True)) == ["true"]
    assert run(db, mixed.where("v", "==", 0)) == []  # False is not 0
    assert run(db, mixed.where("v", "==", "1")) == []


def test_equal_null_matches_only_null_not_missing(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "==", None)) == ["null"]


def test_equal_nan_matches_nan(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "==", math.nan)) == ["nan"]


def test_equal_arrays_and_maps_by_value(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "==", [1])) == ["arr1"]
    assert run(db, mixed.where("v", "==", [])) == ["arr0"]
    assert run(db, mixed.where("v", "==", {"a": 1})) == ["map1"]
    assert run(db, mixed.where("v", "==", {"a": 1.0})) == ["map1"]


def test_equal_on_nested_field_path(db: Database) -> None:
    seed(db, "c", {"a": {"m": {"k": 1}}, "b": {"m": {"k": 2}}, "c": {"m": 1}})
    assert run(db, db.collection("c").where("m.k", "==", 2)) == ["b"]


def test_not_equal_excludes_missing_and_null(db: Database, mixed: Query) -> None:
    got = run(db, mixed.where("v", "!=", 1))
    assert "no_v" not in got
    assert "null" not in got
    assert "i1" not in got and "f1" not in got
    # ordered by v (the inequality field), then by id
    assert got == [
        "false", "true", "nan", "ninf", "i-1", "f15", "i2", "ts", "s_empty", "sA", "sa",
        "bytes", "arr0", "arr1", "arr_mixed", "map0", "map1",
    ]  # fmt: skip


def test_not_equal_null_returns_every_non_null_value(db: Database, mixed: Query) -> None:
    got = run(db, mixed.where("v", "!=", None))
    assert sorted(got) == sorted(k for k in MIXED if k not in ("null", "no_v"))


def test_not_equal_nan_excludes_nan_and_null(db: Database, mixed: Query) -> None:
    got = run(db, mixed.where("v", "!=", math.nan))
    assert "nan" not in got and "null" not in got and "no_v" not in got
    assert len(got) == len(MIXED) - 3


def test_not_in_excludes_missing_and_null(db: Database, mixed: Query) -> None:
    got = run(db, mixed.where("v", "not-in", [1, "a"]))
    assert got == [
        "false", "true", "nan", "ninf", "i-1", "f15", "i2", "ts", "s_empty", "sA",
        "bytes", "arr0", "arr1", "arr_mixed", "map0", "map1",
    ]  # fmt: skip


def test_not_in_with_null_in_list_matches_nothing(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "not-in", [None, 1])) == []


def test_missing_field_not_equal_matches_others(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("other", "!=", 5)) == ["no_v"]
    assert run(db, mixed.where("other", "==", None)) == []


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        (">", 0, ["f1", "i1", "f15", "i2"]),
        (">=", 1, ["f1", "i1", "f15", "i2"]),
        ("<", 2, ["ninf", "i-1", "f1", "i1", "f15"]),  # NaN matches no range
        ("<=", -1, ["ninf", "i-1"]),
        (">=", -math.inf, ["ninf", "i-1", "f1", "i1", "f15", "i2"]),
        (">", 1.2, ["f15", "i2"]),
        ("<", True, ["false"]),
        (">", False, ["true"]),
        (">=", "", ["s_empty", "sA", "sa"]),
        ("<", "b", ["s_empty", "sA", "sa"]),
        (">", "A", ["sa"]),
        ("<", dt.datetime(2030, 1, 1, tzinfo=UTC), ["ts"]),
        (">", dt.datetime(2020, 1, 1, tzinfo=UTC), []),
        ("<", b"\x01", ["bytes"]),
        (">", [], ["arr1", "arr_mixed"]),
        (">=", {}, ["map0", "map1"]),
    ],
)
def test_range_filters_compare_within_one_type(
    db: Database, mixed: Query, op: str, value: Any, expected: list[str]
) -> None:
    assert run(db, mixed.where("v", op, value)) == expected


def test_in_matches_any_value_with_numeric_equality(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "in", [1, "a"])) == ["f1", "i1", "sa"]


def test_in_matches_arrays_and_maps_by_value(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "in", [[1], {"a": 1}])) == ["arr1", "map1"]
    assert run(db, mixed.where("v", "in", [[]])) == ["arr0"]


def test_array_contains(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "array-contains", 1)) == ["arr1", "arr_mixed"]
    assert run(db, mixed.where("v", "array-contains", 1.0)) == ["arr1", "arr_mixed"]
    assert run(db, mixed.where("v", "array-contains", "a")) == ["arr_mixed"]
    assert run(db, mixed.where("v", "array-contains", "zzz")) == []


def test_array_contains_any(db: Database, mixed: Query) -> None:
    assert run(db, mixed.where("v", "array-contains-any", [1, "zz"])) == ["arr1", "arr_mixed"]
    assert run(db, mixed.where("v", "array-contains-any", ["a", "q"])) == ["arr_mixed"]


def test_array_contains_does_not_match_scalars(db: Database) -> None:
    seed(
        db, "c", {"scalar": {"tags": "x"}, "list": {"tags": ["x", "y"]}, "map": {"tags": {"x": 1}}}
    )
    assert run(db, db.collection("c").where("tags", "array-contains", "x")) == ["list"]


def test_array_contains_returns_each_document_once(db: Database) -> None:
    seed(db, "c", {"d": {"tags": ["x", "x", "y"]}})
    assert run(db, db.collection("c").where("tags", "array-contains-any", ["x", "y"])) == ["d"]


def test_several_filters_are_anded(db: Database) -> None:
    seed(
        db,
        "c",
        {
            "a": {"city": "SD", "age": 30, "tags": ["x"]},
            "b": {"city": "SD", "age": 15, "tags": ["x"]},
            "c": {"city": "LA", "age": 40, "tags": ["x"]},
            "d": {"city": "SD", "age": 50, "tags": ["y"]},
        },
    )
    q = (
        db.collection("c")
        .where("city", "==", "SD")
        .where("age", ">=", 18)
        .where("tags", "array-contains", "x")
    )
    assert run(db, q) == ["a"]


def test_range_on_two_fields(db: Database) -> None:
    seed(db, "c", {"a": {"x": 1, "y": 5}, "b": {"x": 5, "y": 5}, "c": {"x": 5, "y": 1}})
    assert run(db, db.collection("c").where("x", ">", 2).where("y", ">", 2)) == ["b"]


def test_where_accepts_field_filter_object(db: Database) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 2}})
    q = db.collection("c").where(filter=FieldFilter("n", ">", 1))
    assert run(db, q) == ["b"]


def test_unsupported_operator_is_rejected_naming_it(db: Database) -> None:
    with pytest.raises(InvalidQuery, match="'like'"):
        db.collection("c").where("n", "like", 1)
    with pytest.raises(InvalidQuery, match="'array_contains'"):
        db.collection("c").where("n", "array_contains", 1)


def test_list_operators_need_a_non_empty_list(db: Database) -> None:
    for op in ("in", "not-in", "array-contains-any"):
        with pytest.raises(InvalidQuery, match=op):
            db.collection("c").where("n", op, [])
        with pytest.raises(InvalidQuery, match=op):
            db.collection("c").where("n", op, 5)


def test_two_not_equal_filters_are_rejected(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(InvalidQuery, match="!="):
        db.query(db.collection("c").where("n", "!=", 1).where("m", "!=", 2))


def test_not_in_with_in_is_rejected(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(InvalidQuery, match="not-in"):
        db.query(db.collection("c").where("n", "not-in", [1]).where("m", "in", [2]))


def test_two_array_contains_are_rejected(db: Database) -> None:
    db.set("c/a", {"n": [1]})
    with pytest.raises(InvalidQuery, match="array-contains"):
        db.query(db.collection("c").where("n", "array-contains", 1).where("m", "array-contains", 2))


@pytest.mark.parametrize(
    ("op", "value"), [("==", "\ud800"), ("in", ["ok", "x\udfff"]), ("<", "\ud800")]
)
def test_a_lone_surrogate_in_a_filter_is_an_invalid_query(
    db: Database, op: str, value: Any
) -> None:
    """No stored string can hold one (writes refuse it): the filter is refused
    by name on both backends, not sent (Firestore failed with a bare
    UnicodeEncodeError, the embedded store matched nothing)."""
    with pytest.raises(InvalidQuery, match="'name': value .* is not valid Unicode"):
        db.query(Query("people").where("name", op, value))
