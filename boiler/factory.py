"""``ClsFactory``: model classes from marshmallow schemas (the seed's style).

::

    class TestObjectSchema(schema.Schema):
        int_a = fields.Raw(load_from="intA", dump_to="intA")

    TestObject = ClsFactory.create(name="TestObject", schema=TestObjectSchema,
                                   base=PrimaryObject)

Each schema field becomes a :class:`~boiler.attrs.bproperty` with the field's
data key (camelCase of the name by default) and type checks.
"""

from __future__ import annotations

import copy
from typing import Any

import marshmallow as ma

from . import fields as _fields
from .attrs import Field, bproperty, relation
from .domain_model import PrimaryObject
from .exceptions import ConfigurationError


def _descriptor(name: str, field: Any) -> Field:
    field = copy.deepcopy(field)
    if isinstance(field, _fields.Relationship):
        rel = relation(
            nested=field.nested, dm_cls=field.dm_cls, collection=field.many, data_key=field.data_key
        )
        return rel
    if not isinstance(field, _fields.Field):
        # A plain marshmallow field: keep its data key and validators, no type check.
        wrapped = _fields.Raw(data_key=field.data_key, validate=field.validators or None)
        wrapped.metadata = {**wrapped.metadata, **field.metadata}
        field = wrapped
    return bproperty(
        field=field,
        data_key=field.data_key,
        export_enabled=not field.load_only,
        import_enabled=not field.dump_only,
    )


class ClsFactory:
    """Builds model classes from schemas."""

    @staticmethod
    def create(
        name: str,
        schema: type[ma.Schema],
        base: type[PrimaryObject] = PrimaryObject,
        *,
        collection_name: str | None = None,
        module: str | None = None,
        namespace: dict[str, Any] | None = None,
    ) -> Any:
        """A subclass of ``base`` called ``name`` with one attribute per schema field.

        ``collection_name`` defaults to the base's collection, else ``name``.
        """
        if not (isinstance(schema, type) and issubclass(schema, ma.Schema)):
            raise ConfigurationError(
                f"ClsFactory.create(schema=...) needs a Schema class, got {schema!r}"
            )
        if not (isinstance(base, type) and issubclass(base, PrimaryObject)):
            raise ConfigurationError(
                f"ClsFactory.create(base=...) needs a model class, got {base!r}"
            )
        body: dict[str, Any] = {
            name_: _descriptor(name_, f) for name_, f in schema._declared_fields.items()
        }
        body.update(namespace or {})
        body["_schema_cls"] = schema
        if module:
            body["__module__"] = module
        if collection_name:
            body["Meta"] = type("Meta", (), {"collection_name": collection_name})
        return type(name, (base,), body)


__all__ = ["ClsFactory"]
