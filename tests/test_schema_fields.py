"""marshmallow-based schema and fields (the seed's ClsFactory style)."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
import pytest

from boiler import fields, schema
from boiler.database import Database
from boiler.domain_model import PrimaryObject
from boiler.exceptions import ConfigurationError, ValidationError
from boiler.factory import ClsFactory


class ItemSchema(schema.Schema):
    int_a = fields.Raw(load_from="intA", dump_to="intA")
    item_name = fields.String()
    count = fields.Integer()
    price = fields.Float()
    active = fields.Boolean()
    created = fields.DateTime()
    tags = fields.List(fields.String())
    extra = fields.Dict()
    legacy = ma.fields.Integer(data_key="legacyKey", validate=ma.validate.Range(min=0))
    label = fields.String(validate=ma.validate.Length(max=5))


Item = ClsFactory.create(name="Item", schema=ItemSchema, base=PrimaryObject)


def test_legacy_keys_map_to_data_key() -> None:
    f = fields.Raw(load_from="intA", dump_to="intA")
    assert f.data_key == "intA"
    assert fields.Integer(dump_to="n").data_key == "n"
    with pytest.raises(ConfigurationError, match="differ"):
        fields.Raw(load_from="a", dump_to="b")


def test_schema_defaults_to_camel_case_keys() -> None:
    s = ItemSchema()
    assert s.fields["item_name"].data_key == "itemName"
    assert s.fields["int_a"].data_key == "intA"
    dumped = s.dump({"item_name": "x", "count": 2})
    assert dumped == {"itemName": "x", "count": 2}
    assert s.load({"itemName": "y", "unknownKey": 1}) == {"item_name": "y"}


def test_factory_class_uses_schema_keys() -> None:
    obj = Item.create(doc_id="i1")
    obj.int_a = 1
    obj.item_name = "pen"
    obj.tags = ["a"]
    d = obj.to_dict()
    assert d["intA"] == 1 and d["itemName"] == "pen" and d["tags"] == ["a"]
    assert d["legacyKey"] is None
    assert Item.collection_path() == "Item" and d["doc_ref"] == "Item/i1"
    assert Item._schema_cls is ItemSchema


@pytest.mark.parametrize(
    ("attr", "bad"),
    [
        ("item_name", 3),
        ("count", "3"),
        ("count", 1.5),
        ("price", "cheap"),
        ("active", "yes"),
        ("created", "2020-01-01"),
        ("tags", "a"),
        ("extra", [1]),
        ("label", "too long"),
        ("legacy", -1),
    ],
)
def test_wrong_types_name_the_field(attr: str, bad: object) -> None:
    with pytest.raises(ValidationError, match=attr) as info:
        setattr(Item.create(), attr, bad)
    assert info.value.field is not None and info.value.field.startswith(attr)


def test_inner_types_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"tags\[1\]"):
        Item.create(tags=["a", 2])
    with pytest.raises(ValidationError, match="extra"):
        Item.create(extra={1: "x"})


def test_normalization() -> None:
    obj = Item.create(price=3, created=dt.datetime(2021, 5, 1, 12))
    assert obj.price == 3.0 and isinstance(obj.price, float)
    assert obj.created.tzinfo is dt.UTC


def test_model_schema_describes_a_model() -> None:
    s = schema.model_schema(Item)()
    assert s.fields["item_name"].data_key == "itemName"
    assert isinstance(s.fields["count"], fields.Integer)
    assert s.dump({"item_name": "x"}) == {"itemName": "x"}


def test_factory_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigurationError, match="Schema"):
        ClsFactory.create(name="X", schema=dict)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="model class"):
        ClsFactory.create(name="X", schema=ItemSchema, base=object)  # type: ignore[arg-type]


def test_factory_collection_name() -> None:
    Named = ClsFactory.create(name="Named", schema=ItemSchema, collection_name="named_items")
    assert Named.new(doc_id="n").doc_ref == "named_items/n"


def test_round_trip_and_stored_type_errors(ctx_db: Database) -> None:
    when = dt.datetime(2022, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    Item.create(
        doc_id="i1", count=2, price=1.5, active=True, created=when, tags=["x"], extra={"k": [1]}
    ).save()
    got = Item.get(doc_id="i1")
    assert (got.count, got.price, got.active, got.tags, got.extra) == (
        2,
        1.5,
        True,
        ["x"],
        {"k": [1]},
    )
    assert got.created == when
    ctx_db.set("Item/bad", {"count": "two", "obj_type": "Item"})
    with pytest.raises(ValidationError, match="count") as info:
        Item.get(doc_id="bad")
    assert "Item/bad" in str(info.value) and info.value.field == "count"
