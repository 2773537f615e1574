"""The DESIGN.md §3 seed snippets, run as written on both backends."""

from __future__ import annotations

import pytest

from boiler.database import Database
from boiler.testing import FirestoreEmulator


@pytest.fixture
def seed_ctx(backend: str, request: pytest.FixtureRequest, project_id: str):  # type: ignore[no-untyped-def]
    """``CTX.read(Config(...))`` as the seed does, on each backend; restored after."""
    from boiler import config, context

    CTX = context.Context
    previous = CTX._swap(None)
    if backend == "embedded":
        cfg = config.Config(app_name="demo", testing=True)
    else:
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        cfg = config.Config(app_name="demo", project_id=project_id, emulator_host=emulator.host)
    CTX.read(cfg)
    try:
        yield CTX
    finally:
        CTX.close()
        CTX._swap(previous)


def test_config_and_context(seed_ctx, backend: str) -> None:  # type: ignore[no-untyped-def]
    from boiler import config, context

    CTX = context.Context
    assert CTX is seed_ctx
    assert isinstance(CTX.db, Database) and CTX.db.backend_name == backend
    if backend == "embedded":
        assert CTX.firebase_app is None
        assert config.Config(app_name="demo", testing=True).backend == "embedded"


def test_schema_and_cls_factory_crud(seed_ctx) -> None:  # type: ignore[no-untyped-def]
    from boiler import fields, schema
    from boiler.domain_model import PrimaryObject
    from boiler.exceptions import NotFound
    from boiler.factory import ClsFactory

    class TestObjectSchema(schema.Schema):
        int_a = fields.Raw(load_from="intA", dump_to="intA")
        int_b = fields.Raw(load_from="intB", dump_to="intB")

    TestObject = ClsFactory.create(name="TestObject", schema=TestObjectSchema, base=PrimaryObject)
    obj = TestObject.create(doc_id="testObjId1")
    obj.int_a = 1
    obj.int_b = 2
    obj.save()
    got = TestObject.get(doc_id="testObjId1")
    assert (got.int_a, got.int_b) == (1, 2)
    stored = seed_ctx.db.get(got.doc_ref).to_dict()
    assert stored["intA"] == 1 and stored["intB"] == 2 and stored["obj_type"] == "TestObject"
    got.delete()
    with pytest.raises(NotFound, match="testObjId1"):
        TestObject.get(doc_id="testObjId1")


def test_class_based_domain_model_crud_and_queries(seed_ctx) -> None:  # type: ignore[no-untyped-def]
    from boiler import attrs
    from boiler.domain_model import DomainModel

    class User(DomainModel):
        class Meta:
            collection_name = "users"

        first_name = attrs.bproperty()
        last_name = attrs.bproperty()
        organization = attrs.bproperty()
        hearing_aid_requested = attrs.bproperty()

    class Ticket(DomainModel):
        class Meta:
            collection_name = "tickets"

        role = attrs.bproperty()
        attendance = attrs.bproperty()
        user = attrs.relation(nested=False, dm_cls="User")  # stored as a document path

    User.new(doc_id="u1", first_name="A").save()
    User.new(doc_id="u2", first_name="B", organization="UCSD").save()
    User.new(doc_id="u3", first_name="C", organization="UCSD", hearing_aid_requested=True).save()

    u1 = User.get(doc_id="u1")
    assert u1.first_name == "A" and u1.organization is None
    assert seed_ctx.db.get("users/u1").to_dict()["firstName"] == "A"
    assert sorted(u.doc_id for u in User.all()) == ["u1", "u2", "u3"]
    assert sorted(u.doc_id for u in User.where("organization", "==", "UCSD")) == ["u2", "u3"]
    assert sorted(u.doc_id for u in User.where(organization="UCSD")) == ["u2", "u3"]
    assert sorted(u.doc_id for u in User.where(User.organization == "UCSD")) == ["u2", "u3"]
    assert [u.doc_id for u in User.where(organization="UCSD", hearing_aid_requested=True)] == ["u3"]

    Ticket.new(doc_id="t1", role="speaker", attendance=True, user=u1).save()
    ticket = Ticket.get(doc_id="t1")
    assert ticket.user == "users/u1"
    assert seed_ctx.db.get("tickets/t1").to_dict()["user"] == "users/u1"
    assert User.get(doc_ref=ticket.user).first_name == "A"
    assert [t.doc_id for t in Ticket.where(Ticket.user == u1)] == ["t1"]
