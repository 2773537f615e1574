"""Descriptors: bproperty, relation, embed."""

from __future__ import annotations

import datetime as dt

import pytest

from boiler import attrs
from boiler.conditions import Condition, FieldRef
from boiler.database import Database
from boiler.domain_model import DomainModel
from boiler.exceptions import ConfigurationError, ValidationError


class Person(DomainModel):
    class Meta:
        collection_name = "people"

    first_name = attrs.bproperty()
    last_name = attrs.bproperty(type=str)
    age = attrs.bproperty(type=int, validate=lambda v: v >= 0)
    nick = attrs.bproperty(data_key="nickName_v2")
    secret = attrs.bproperty(export_enabled=False)
    tags = attrs.bproperty(type=list, default=[])
    born = attrs.bproperty(type=dt.datetime)
    settings = attrs.embed()

    full_name = attrs.bproperty(import_enabled=False)

    @full_name.getter
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    initials = attrs.bproperty()

    @initials.getter
    def initials(self) -> str:
        return self._initials

    @initials.setter
    def initials(self, value: str) -> None:
        self._initials = value.upper()

    @initials.init
    def initials(self) -> None:
        self._initials = "??"


class Team(DomainModel):
    class Meta:
        collection_name = "teams"

    lead = attrs.relation(nested=False, dm_cls="Person")
    members = attrs.relation(dm_cls=Person, collection=list)
    by_role = attrs.relation(dm_cls=Person, collection=dict)
    mascot = attrs.relation(nested=True, dm_cls=Person)
    anything = attrs.relation()


def test_camel_case_keys_and_overrides() -> None:
    p = Person.new(doc_id="p1", first_name="Ada", last_name="L", nick="al", secret="s")
    d = p.to_dict()
    assert d["firstName"] == "Ada" and d["lastName"] == "L" and d["nickName_v2"] == "al"
    assert "secret" not in d  # export disabled
    assert d["fullName"] == "Ada L"  # computed, exported
    assert (d["obj_type"], d["doc_id"], d["doc_ref"]) == ("Person", "p1", "people/p1")
    assert Person.first_name.data_key == "firstName"


def test_unset_values_read_as_none_or_default() -> None:
    p = Person.new()
    assert p.first_name is None
    assert p.tags == []
    p.tags.append("x")
    assert Person.new().tags == []  # defaults are copied


def test_getter_setter_init() -> None:
    p = Person.new()
    assert p.initials == "??"
    p.initials = "al"
    assert p.initials == "AL" and p.to_dict()["initials"] == "AL"
    with pytest.raises(AttributeError, match="read-only"):
        p.full_name = "x"
    # computed (import disabled) keys in a document are not written back into the getter
    loaded = Person.from_dict({"firstName": "A", "lastName": "B", "fullName": "ignored"})
    assert loaded.full_name == "A B"


def test_declared_type_is_validated() -> None:
    p = Person.new()
    with pytest.raises(ValidationError, match="age") as info:
        p.age = "old"
    assert info.value.field == "age"
    with pytest.raises(ValidationError, match="age"):
        p.age = True  # a bool is not an int here
    with pytest.raises(ValidationError, match="age"):
        p.age = -1  # validate hook
    with pytest.raises(ValidationError, match="last_name"):
        Person.new(last_name=5)
    p.age = 3
    p.born = dt.datetime(2020, 1, 1)  # naive taken as UTC
    assert p.born.tzinfo is dt.UTC


def test_embed_accepts_plain_nested_values_only() -> None:
    p = Person.new(settings={"theme": {"dark": True}, "list": [1, "a"]})
    source = p.settings
    d = p.to_dict()["settings"]
    assert d == {"theme": {"dark": True}, "list": [1, "a"]}
    d["theme"]["dark"] = False
    assert source["theme"]["dark"] is True  # dumped as a copy
    with pytest.raises(ValidationError, match="settings.bad"):
        p.settings = {"bad": object()}
    with pytest.raises(ValidationError, match="settings"):
        p.settings = {1: "x"}


def test_relations_store_paths() -> None:
    ada, bob = Person.new(doc_id="ada"), Person.new(doc_id="bob")
    t = Team.new(doc_id="t1", lead=ada, members=[ada, "people/bob"], by_role={"cto": bob})
    assert t.lead == "people/ada"
    assert t.members == ["people/ada", "people/bob"]
    d = t.to_dict()
    assert d["lead"] == "people/ada"
    assert d["byRole"] == {"cto": "people/bob"}
    back = Team.from_dict(d)
    assert back.members == ["people/ada", "people/bob"] and back == t


def test_relation_bad_values() -> None:
    t = Team.new()
    with pytest.raises(ValidationError, match="lead"):
        t.lead = "people"  # a collection path, not a document
    with pytest.raises(ValidationError, match="lead"):
        t.lead = Team.new()  # wrong class
    with pytest.raises(ValidationError, match="members"):
        t.members = "people/ada"  # not a list
    with pytest.raises(ValidationError, match=r"members\[1\]"):
        t.members = ["people/a", 3]
    t.anything = Team.new(doc_id="t9")  # no dm_cls: any model
    assert t.anything == "teams/t9"


def test_nested_relation_embeds_the_dict() -> None:
    t = Team.new(mascot=Person.new(doc_id="m", first_name="Rex"))
    stored = t.to_dict()["mascot"]
    assert stored["firstName"] == "Rex" and stored["doc_ref"] == "people/m"
    back = Team.from_dict(t.to_dict())
    assert isinstance(back.mascot, Person) and back.mascot.first_name == "Rex"
    t.mascot = {"firstName": "Dog"}
    assert isinstance(t.mascot, Person) and t.mascot.first_name == "Dog"


def test_class_access_gives_field_refs_and_conditions() -> None:
    ref = Person.age
    assert isinstance(ref, FieldRef) and ref.data_key == "age" and ref.name == "age"
    cond = Person.age >= 3
    assert isinstance(cond, Condition) and cond.clauses == ((Person.age, ">=", 3),)
    assert Person.age == Person.age  # identity between refs, not a condition
    assert Person.age in [Person.first_name, Person.age]
    assert Person.age not in [Person.first_name]


def test_ambiguous_or_unknown_class_names() -> None:
    from boiler.factory import ClsFactory
    from boiler.schema import Schema

    dup_a = ClsFactory.create("Dup", Schema, DomainModel, collection_name="d1", module="mod_a")
    dup_b = ClsFactory.create("Dup", Schema, DomainModel, collection_name="d2", module="mod_b")

    class Holder(DomainModel):
        class Meta:
            collection_name = "holders"

        ref = attrs.relation(dm_cls="Dup")
        ghost = attrs.relation(dm_cls="NoSuchModel")
        mine = attrs.relation(dm_cls="Local")

    class Local(DomainModel):
        pass

    with pytest.raises(ConfigurationError, match="ambiguous"):
        Holder.new(ref="d1/x")
    with pytest.raises(ConfigurationError, match="NoSuchModel"):
        Holder.new(ghost="x/y")
    assert dup_a is not dup_b

    class Local(DomainModel):  # type: ignore[no-redef]  # noqa: F811 - the latest wins
        pass

    with pytest.raises(ValidationError, match="expected a Local"):
        Holder.new(mine=Local.new()).mine = ClsFactory.create("Local", Schema).new()
    assert Holder.new(mine=Local.new(doc_id="l1")).mine == "Local/l1"


def test_declaration_errors() -> None:
    with pytest.raises(ConfigurationError, match="share stored key"):

        class Clash(DomainModel):
            a_b = attrs.bproperty()
            aB = attrs.bproperty()  # noqa: N815

    with pytest.raises(ConfigurationError, match="reserved"):

        class Reserved(DomainModel):
            doc_id = attrs.bproperty()

    with pytest.raises(ConfigurationError, match="collection"):

        class BadList(DomainModel):
            r = attrs.relation(collection=set)

    with pytest.raises(TypeError):
        attrs.bproperty(type=int, field=object())  # type: ignore[arg-type]


def test_relations_round_trip_through_the_database(ctx_db: Database) -> None:
    ada = Person.new(doc_id="ada", first_name="Ada", age=36)
    ada.save()
    Team.new(doc_id="t1", lead=ada, members=[ada], mascot=ada).save()
    team = Team.get(doc_id="t1")
    assert team.lead == "people/ada" and team.members == ["people/ada"]
    assert Person.get(doc_ref=team.lead).age == 36
    assert team.mascot.first_name == "Ada"
