"""Single-document reads and writes: get / get_all / set / create / update / delete."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pytest

from boiler.database import DELETE_FIELD, Database, DocumentSnapshot
from boiler.exceptions import AlreadyExists, InvalidPath, NotFound, ValidationError

UTC = dt.UTC

EVERY_TYPE: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "int": 42,
    "neg": -7,
    "zero": 0,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "float": 1.5,
    "whole_float": 2.0,
    "inf": math.inf,
    "str": "héllo 😀",
    "empty_str": "",
    "bytes": b"\x00\xffbin",
    "when": dt.datetime(2021, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
    "list": [1, "two", 3.0, None, True, {"k": [1, 2]}],
    "empty_list": [],
    "map": {"a": {"b": {"c": [1, {"d": b"x"}]}}, "e": 1.25},
    "empty_map": {},
}


def test_missing_document_snapshot(db: Database) -> None:
    snap = db.get("users/nobody")
    assert isinstance(snap, DocumentSnapshot)
    assert snap.exists is False
    assert snap.data is None
    assert snap.to_dict() is None
    assert snap.path == "users/nobody"
    assert snap.id == "nobody"
    assert snap.create_time is None
    assert snap.update_time is None


def test_round_trip_every_value_type(db: Database) -> None:
    db.set("types/all", EVERY_TYPE)
    got = db.get("types/all").to_dict()
    assert got == EVERY_TYPE
    assert got is not None
    for key in ("int", "neg", "zero", "int64_max", "int64_min"):
        assert type(got[key]) is int, key
    assert type(got["whole_float"]) is float
    assert type(got["float"]) is float
    assert type(got["true"]) is bool
    assert isinstance(got["bytes"], bytes)
    assert got["list"][2] == 3.0 and type(got["list"][2]) is float
    assert type(got["list"][0]) is int


def test_nan_round_trips(db: Database) -> None:
    db.set("types/nan", {"v": math.nan})
    value = db.get("types/nan").get("v")
    assert isinstance(value, float) and math.isnan(value)


def test_datetime_comes_back_tz_aware_utc_same_instant(db: Database) -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2020, 1, 1, 12, 0, 0, 654321, tzinfo=plus_two)
    db.set("types/dt", {"when": when})
    got = db.get("types/dt").get("when")
    assert isinstance(got, dt.datetime)
    assert got.tzinfo is not None
    assert got.utcoffset() == dt.timedelta(0)
    assert got == when
    assert (got.hour, got.microsecond) == (10, 654321)


def test_snapshot_get_dotted_path_and_default(db: Database) -> None:
    db.set("docs/d", {"a": {"b": {"c": 3}}, "x": 1})
    snap = db.get("docs/d")
    assert snap.get("a.b.c") == 3
    assert snap.get("a.b") == {"c": 3}
    assert snap.get("a.zz", "dflt") == "dflt"
    assert snap.get("x.y") is None


def test_snapshot_data_is_isolated_from_caller_mutation(db: Database) -> None:
    data = {"m": {"k": [1]}}
    db.set("docs/iso", data)
    data["m"]["k"].append(2)  # mutating the caller's dict must not change the document
    got = db.get("docs/iso").to_dict()
    assert got == {"m": {"k": [1]}}
    assert got is not None
    got["m"]["k"].append(3)  # nor mutating what a read returned
    assert db.get("docs/iso").to_dict() == {"m": {"k": [1]}}


def test_set_overwrites_whole_document(db: Database) -> None:
    db.set("docs/d", {"a": 1, "b": {"c": 2}})
    db.set("docs/d", {"b": {"d": 3}})
    assert db.get("docs/d").to_dict() == {"b": {"d": 3}}


def test_set_empty_document(db: Database) -> None:
    db.set("docs/empty", {})
    snap = db.get("docs/empty")
    assert snap.exists
    assert snap.to_dict() == {}


def test_set_key_with_dot_is_a_literal_field_name(db: Database) -> None:
    db.set("docs/dot", {"a.b": 1})
    assert db.get("docs/dot").to_dict() == {"a.b": 1}
    db.set("docs/dot", {"c.d": 2}, merge=True)
    assert db.get("docs/dot").to_dict() == {"a.b": 1, "c.d": 2}


def test_set_merge_deep_merges_maps(db: Database) -> None:
    db.set("docs/m", {"a": 1, "m": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [1, 2]})
    db.set("docs/m", {"m": {"y": {"p": 9}, "z": 3}, "l": [3], "b": 2}, merge=True)
    assert db.get("docs/m").to_dict() == {
        "a": 1,
        "b": 2,
        "l": [3],  # lists are replaced, not merged
        "m": {"x": 1, "y": {"p": 9, "q": 2}, "z": 3},
    }


def test_set_merge_with_empty_map_replaces_the_map(db: Database) -> None:
    db.set("docs/m", {"m": {"x": 1, "y": {"p": 1}}, "k": 1})
    db.set("docs/m", {"m": {"y": {}}}, merge=True)
    assert db.get("docs/m").to_dict() == {"m": {"x": 1, "y": {}}, "k": 1}
    db.set("docs/m", {"m": {}}, merge=True)
    assert db.get("docs/m").to_dict() == {"m": {}, "k": 1}


def test_set_merge_scalar_over_map_and_map_over_scalar(db: Database) -> None:
    db.set("docs/m", {"a": {"x": 1}, "b": 5})
    db.set("docs/m", {"a": 7, "b": {"y": 2}}, merge=True)
    assert db.get("docs/m").to_dict() == {"a": 7, "b": {"y": 2}}


def test_set_merge_creates_missing_document(db: Database) -> None:
    db.set("docs/new", {"a": {"b": 1}}, merge=True)
    assert db.get("docs/new").to_dict() == {"a": {"b": 1}}


def test_set_merge_delete_field(db: Database) -> None:
    db.set("docs/m", {"a": 1, "b": 2, "m": {"x": 1, "y": 2}})
    db.set("docs/m", {"a": DELETE_FIELD, "m": {"x": DELETE_FIELD}}, merge=True)
    assert db.get("docs/m").to_dict() == {"b": 2, "m": {"y": 2}}
    db.set("docs/m", {"m": {"y": DELETE_FIELD}}, merge=True)
    assert db.get("docs/m").to_dict() == {"b": 2, "m": {}}  # the emptied map stays


def test_delete_field_in_plain_set_is_rejected(db: Database) -> None:
    db.set("docs/d", {"a": 1})
    with pytest.raises(ValidationError, match="DELETE_FIELD"):
        db.set("docs/d", {"a": DELETE_FIELD})
    assert db.get("docs/d").to_dict() == {"a": 1}


def test_create_new_document(db: Database) -> None:
    result = db.create("docs/c", {"a": 1})
    snap = db.get("docs/c")
    assert snap.to_dict() == {"a": 1}
    assert result.update_time == snap.update_time


def test_create_existing_raises_already_exists_naming_path(db: Database) -> None:
    db.set("docs/c", {"a": 1})
    with pytest.raises(AlreadyExists, match="docs/c"):
        db.create("docs/c", {"a": 2})
    assert db.get("docs/c").to_dict() == {"a": 1}


def test_update_top_level_fields_keeps_others(db: Database) -> None:
    db.set("docs/u", {"a": 1, "b": 2})
    db.update("docs/u", {"b": 3, "c": 4})
    assert db.get("docs/u").to_dict() == {"a": 1, "b": 3, "c": 4}


def test_update_dotted_paths(db: Database) -> None:
    db.set("docs/u", {"m": {"x": 1, "y": {"p": 1, "q": 2}}, "a": 1})
    db.update("docs/u", {"m.y.p": 5, "n.k": 1})
    assert db.get("docs/u").to_dict() == {
        "m": {"x": 1, "y": {"p": 5, "q": 2}},
        "n": {"k": 1},
        "a": 1,
    }


def test_update_map_value_replaces_the_map(db: Database) -> None:
    db.set("docs/u", {"m": {"x": 1, "y": 2}})
    db.update("docs/u", {"m": {"only": 1}})
    assert db.get("docs/u").to_dict() == {"m": {"only": 1}}


def test_update_dotted_path_through_a_scalar_replaces_it(db: Database) -> None:
    db.set("docs/u", {"a": 1})
    db.update("docs/u", {"a.b": 2})
    assert db.get("docs/u").to_dict() == {"a": {"b": 2}}


def test_update_delete_field(db: Database) -> None:
    db.set("docs/u", {"a": 1, "m": {"x": 1, "y": 2}})
    db.update("docs/u", {"a": DELETE_FIELD, "m.x": DELETE_FIELD, "absent": DELETE_FIELD})
    assert db.get("docs/u").to_dict() == {"m": {"y": 2}}


def test_update_missing_document_raises_not_found_naming_path(db: Database) -> None:
    with pytest.raises(NotFound, match="docs/missing"):
        db.update("docs/missing", {"a": 1})
    assert not db.get("docs/missing").exists


def test_update_with_empty_data_is_rejected(db: Database) -> None:
    db.set("docs/u", {"a": 1})
    with pytest.raises(ValidationError, match="docs/u"):
        db.update("docs/u", {})


def test_update_conflicting_field_paths_is_rejected(db: Database) -> None:
    db.set("docs/u", {"m": {"x": 1}})
    with pytest.raises(ValidationError, match=r"m\.z|'m', ?'z'"):
        db.update("docs/u", {"m": {"y": 1}, "m.z": 2})
    assert db.get("docs/u").to_dict() == {"m": {"x": 1}}


def test_delete_field_nested_in_update_map_is_rejected(db: Database) -> None:
    db.set("docs/u", {"m": {"x": 1}})
    with pytest.raises(ValidationError, match=r"m\.x|'m', ?'x'"):
        db.update("docs/u", {"m": {"x": DELETE_FIELD}})
    assert db.get("docs/u").to_dict() == {"m": {"x": 1}}


def test_delete_existing_and_missing(db: Database) -> None:
    db.set("docs/d", {"a": 1})
    db.delete("docs/d")
    assert not db.get("docs/d").exists
    db.delete("docs/d")  # deleting a missing document is not an error
    db.delete("docs/never")
    assert not db.get("docs/never").exists


def test_recreate_after_delete(db: Database) -> None:
    db.set("docs/d", {"a": 1, "b": 2})
    db.delete("docs/d")
    db.set("docs/d", {"c": 3}, merge=True)
    assert db.get("docs/d").to_dict() == {"c": 3}


def test_get_all_preserves_order_and_reports_missing(db: Database) -> None:
    db.set("c/a", {"n": 1})
    db.set("c/b", {"n": 2})
    db.set("other/x/c/z", {"n": 3})
    wanted = ["c/b", "c/missing", "other/x/c/z", "c/a"]
    snaps = db.get_all(wanted)
    assert [s.path for s in snaps] == wanted
    assert [s.exists for s in snaps] == [True, False, True, True]
    assert [s.get("n") for s in snaps] == [2, None, 3, 1]


def test_get_all_empty_and_duplicates(db: Database) -> None:
    db.set("c/a", {"n": 1})
    assert db.get_all([]) == []
    snaps = db.get_all(["c/a", "c/a"])
    assert [s.path for s in snaps] == ["c/a", "c/a"]
    assert all(s.get("n") == 1 for s in snaps)


@pytest.mark.parametrize("data", [[("a", 1)], "abc", 5, None])
def test_non_mapping_data_is_rejected(db: Database, data: Any) -> None:
    with pytest.raises(ValidationError, match="docs/bad"):
        db.set("docs/bad", data)
    with pytest.raises(ValidationError, match="docs/bad"):
        db.create("docs/bad", data)
    assert not db.get("docs/bad").exists


@pytest.mark.parametrize("key", [1, "", None])
def test_bad_field_names_are_rejected(db: Database, key: Any) -> None:
    with pytest.raises(ValidationError, match="docs/bad"):
        db.set("docs/bad", {key: 1})
    assert not db.get("docs/bad").exists


def test_reserved_field_name_is_rejected(db: Database) -> None:
    with pytest.raises(ValidationError, match="__x__"):
        db.set("docs/bad", {"ok": 1, "__x__": 1})
    assert not db.get("docs/bad").exists


@pytest.mark.parametrize(
    "value",
    [object(), dt.date(2020, 1, 1), bytearray(b"x"), 2**63, -(2**63) - 1],
    ids=["object", "date", "bytearray", "int64_overflow", "int64_underflow"],
)
def test_unsupported_values_are_rejected_naming_field(db: Database, value: Any) -> None:
    with pytest.raises(ValidationError, match="bad_field"):
        db.set("docs/bad", {"ok": 1, "nested": {"bad_field": value}})
    assert not db.get("docs/bad").exists


def test_array_directly_inside_array_is_rejected(db: Database) -> None:
    with pytest.raises(ValidationError, match="matrix"):
        db.set("docs/bad", {"matrix": [[1, 2], [3]]})
    assert not db.get("docs/bad").exists
    db.set("docs/ok", {"rows": [{"cells": [1, 2]}]})  # arrays of maps of arrays are fine
    assert db.get("docs/ok").to_dict() == {"rows": [{"cells": [1, 2]}]}


LONE_SURROGATE = "\ud800"  # a str with no UTF-8 encoding


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"ok": "é", "text": LONE_SURROGATE}, "text"),
        ({"m": {"deep": "x" + LONE_SURROGATE + "y"}}, "m.deep"),
        ({"items": ["fine", LONE_SURROGATE]}, "items"),  # Firestore says items[1]
        ({LONE_SURROGATE: 1}, "\\ud800"),  # escaped: the field's name cannot be sent
    ],
    ids=["value", "nested", "in_array", "field_name"],
)
def test_strings_without_utf8_are_rejected_naming_the_field(
    db: Database, data: dict[str, Any], field: str
) -> None:
    def in_transaction() -> None:
        with db.transaction() as tx:
            tx.set("docs/bad", data)

    writes = {
        "set": lambda: db.set("docs/bad", data),
        "merge": lambda: db.set("docs/bad", data, merge=True),
        "create": lambda: db.create("docs/bad", data),
        "batch": lambda: db.batch().set("docs/bad", data).commit(),
        "transaction": in_transaction,
    }
    for name, write in writes.items():
        with pytest.raises(ValidationError, match="docs/bad") as info:
            write()
        assert info.value.field is not None and info.value.field.startswith(field), name
        str(info.value).encode("utf-8")  # the message itself can be sent (REST: a 400)
    db.set("docs/bad", {"n": 1})
    if field != "\\ud800":
        with pytest.raises(ValidationError, match="docs/bad"):
            db.update("docs/bad", data)
    assert db.get("docs/bad").to_dict() == {"n": 1}


def test_paths_without_utf8_are_rejected(db: Database) -> None:
    for op in (
        lambda: db.get("docs/" + LONE_SURROGATE),
        lambda: db.set("docs/" + LONE_SURROGATE, {"n": 1}),
        lambda: db.delete(LONE_SURROGATE + "/d"),
    ):
        with pytest.raises(InvalidPath, match="lone surrogate"):
            op()
