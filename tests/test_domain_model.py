"""DomainModel CRUD, stored form, polymorphism and transactions (both backends)."""

from __future__ import annotations

import pytest

from boiler import attrs
from boiler.context import Context, run_transaction
from boiler.database import Database, DocumentSnapshot, Transaction
from boiler.domain_model import DomainModel, PrimaryObject
from boiler.exceptions import ConfigurationError, InvalidPath, NotFound, ValidationError


class Account(DomainModel):
    class Meta:
        collection_name = "accounts"

    owner_name = attrs.bproperty(type=str)
    balance = attrs.bproperty(type=int, default=0)


class Animal(DomainModel):
    class Meta:
        collection_name = "animals"

    name = attrs.bproperty(type=str)


class Dog(Animal):
    good_boy = attrs.bproperty(type=bool)


class Puppy(Dog):
    pass


class Cat(Animal):
    lives = attrs.bproperty(type=int)


def test_new_save_get_delete(ctx_db: Database) -> None:
    acc = Account.new(doc_id="a1", owner_name="Ada", balance=10)
    assert acc.doc_id == "a1" and acc.doc_ref == "accounts/a1"
    acc.save()
    stored = ctx_db.get("accounts/a1").to_dict()
    assert stored == {
        "ownerName": "Ada",
        "balance": 10,
        "obj_type": "Account",
        "doc_id": "a1",
        "doc_ref": "accounts/a1",
    }
    got = Account.get(doc_id="a1")
    assert isinstance(got, Account) and got == acc
    assert Account.get(doc_ref="accounts/a1") == acc
    got.delete()
    assert not ctx_db.get("accounts/a1").exists


def test_missing_document_names_the_path(ctx_db: Database) -> None:
    with pytest.raises(NotFound, match="accounts/nope") as info:
        Account.get(doc_id="nope")
    assert info.value.path == "accounts/nope"


def test_invalid_ids_and_paths(ctx_db: Database) -> None:
    with pytest.raises(InvalidPath):
        Account.get(doc_ref="accounts")
    with pytest.raises(InvalidPath):
        Account.get(doc_id="a/b")
    with pytest.raises(InvalidPath):
        Account.get()
    with pytest.raises(InvalidPath, match="does not match"):
        Account.new(doc_id="x", doc_ref="accounts/y")


def test_random_ids_and_create(ctx_db: Database) -> None:
    a, b = Account.new(), Account.create()
    assert len(a.doc_id) == 20 and a.doc_id != b.doc_id
    assert a.doc_ref.startswith("accounts/")


def test_unknown_field_keyword_is_named() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Account.new(colour="red")


def test_from_snapshot_and_to_dict(ctx_db: Database) -> None:
    Account.new(doc_id="a2", owner_name="Bo").save()
    snap = ctx_db.get("accounts/a2")
    obj = Account.from_snapshot(snap)
    assert obj.owner_name == "Bo" and obj.balance == 0 and obj.doc_ref == "accounts/a2"
    with pytest.raises(NotFound, match="accounts/none"):
        Account.from_snapshot(DocumentSnapshot("accounts/none", None))
    again = Account.from_dict(obj.to_dict())
    assert again == obj
    assert Account.from_dict({"ownerName": "X"}, doc_id="z").doc_ref == "accounts/z"


def test_foreign_documents_load_and_keep_unknown_keys(ctx_db: Database) -> None:
    ctx_db.set("accounts/ext", {"ownerName": "Ext", "legacyFlag": True, "nested": {"a": 1}})
    obj = Account.get(doc_id="ext")
    assert type(obj) is Account and obj.owner_name == "Ext" and obj.doc_id == "ext"
    obj.balance = 5
    obj.save()
    stored = ctx_db.get("accounts/ext").to_dict()
    assert stored is not None
    assert stored["legacyFlag"] is True and stored["nested"] == {"a": 1}
    assert stored["balance"] == 5 and stored["obj_type"] == "Account"


def test_wrong_stored_type_names_field_and_path(ctx_db: Database) -> None:
    ctx_db.set("accounts/bad", {"balance": "lots"})
    with pytest.raises(ValidationError, match="balance") as info:
        Account.get(doc_id="bad")
    assert "accounts/bad" in str(info.value)


def test_polymorphic_collection(ctx_db: Database) -> None:
    Dog.new(doc_id="rex", name="Rex", good_boy=True).save()
    Cat.new(doc_id="tom", name="Tom", lives=9).save()
    Puppy.new(doc_id="bit", name="Bit").save()
    Animal.new(doc_id="gen", name="Generic").save()
    ctx_db.set("animals/wild", {"name": "Wild"})  # no obj_type: written elsewhere
    assert type(Animal.get(doc_id="rex")) is Dog
    assert type(Animal.get(doc_id="bit")) is Puppy
    assert type(Animal.get(doc_id="wild")) is Animal
    everyone = {a.doc_id: type(a) for a in Animal.all()}
    assert everyone == {"rex": Dog, "tom": Cat, "bit": Puppy, "gen": Animal, "wild": Animal}
    assert sorted(d.doc_id for d in Dog.all()) == ["bit", "rex"]
    assert [c.doc_id for c in Cat.all()] == ["tom"]
    with pytest.raises(ValidationError, match="Cat"):
        Dog.get(doc_id="tom")


def test_unknown_obj_type_loads_as_requested_class(ctx_db: Database) -> None:
    ctx_db.set("animals/x", {"name": "X", "obj_type": "SomethingElseEntirely"})
    assert type(Animal.get(doc_id="x")) is Animal


def test_abstract_bases_have_no_collection() -> None:
    with pytest.raises(ConfigurationError, match="abstract"):
        DomainModel.new()
    with pytest.raises(ConfigurationError, match="abstract"):
        PrimaryObject.all()


def test_explicit_database_argument(db: Database) -> None:
    acc = Account.new(doc_id="e1", owner_name="E")
    acc.save(db=db)
    assert Account.get(doc_id="e1", db=db) == acc
    assert [a.doc_id for a in Account.all().fetch(db)] == ["e1"]
    acc.delete(db=db)
    assert not db.get("accounts/e1").exists


def test_batch_save_and_delete(ctx_db: Database) -> None:
    batch = ctx_db.batch()
    Account.new(doc_id="b1", balance=1).save(batch=batch)
    Account.new(doc_id="b2", balance=2).save(batch=batch)
    assert not ctx_db.get("accounts/b1").exists
    batch.commit()
    assert sorted(a.balance for a in Account.all()) == [1, 2]
    batch = ctx_db.batch()
    Account.get(doc_id="b1").delete(batch=batch)
    batch.commit()
    assert [a.doc_id for a in Account.all()] == ["b2"]


def test_with_transaction(ctx_db: Database) -> None:
    Account.new(doc_id="t1", balance=10).save()
    Account.new(doc_id="t2", balance=0).save()
    with Context.db.transaction() as tx:
        src = Account.get(doc_id="t1", transaction=tx)
        dst = Account.get(doc_id="t2", transaction=tx)
        src.balance -= 4
        dst.balance += 4
        src.save(transaction=tx)
        dst.save(transaction=tx)
    assert (Account.get(doc_id="t1").balance, Account.get(doc_id="t2").balance) == (6, 4)


def test_failed_transaction_writes_nothing(ctx_db: Database) -> None:
    Account.new(doc_id="t1", balance=10).save()
    with pytest.raises(RuntimeError, match="boom"):
        with ctx_db.transaction() as tx:
            acc = Account.get(doc_id="t1", transaction=tx)
            acc.balance = 0
            acc.save(transaction=tx)
            Account.new(doc_id="t3").save(transaction=tx)
            raise RuntimeError("boom")
    assert Account.get(doc_id="t1").balance == 10
    assert not ctx_db.get("accounts/t3").exists


def test_run_transaction_decorator(ctx_db: Database) -> None:
    Account.new(doc_id="r1", balance=1).save()

    @run_transaction
    def bump(transaction: Transaction, by: int) -> int:
        acc = Account.get(doc_id="r1", transaction=transaction)
        acc.balance += by
        acc.save(transaction=transaction)
        gone = Account.new(doc_id="r0")
        gone.delete(transaction=transaction)
        return int(acc.balance)

    assert bump(5) == 6
    assert Account.get(doc_id="r1").balance == 6

    @run_transaction(max_attempts=2)
    def read_only(transaction: Transaction) -> list[str]:
        return [a.doc_id for a in Account.all().fetch(transaction=transaction)]

    assert read_only() == ["r1"]


def test_repr_and_equality() -> None:
    a = Account.new(doc_id="q", owner_name="Q")
    assert repr(a) == "Account('accounts/q', owner_name='Q')"
    assert a == Account.new(doc_id="q", owner_name="Q")
    assert a != Account.new(doc_id="q", owner_name="R")


def test_subclass_defined_per_run_resolves_to_the_latest(ctx_db: Database) -> None:
    # runs once per backend: the previous run's Bird may still be alive
    class Bird(Animal):
        wings = attrs.bproperty(type=int)

    Bird.new(doc_id="b", name="Tweety", wings=2).save()
    got = Animal.get(doc_id="b")
    assert type(got) is Bird and got.wings == 2
