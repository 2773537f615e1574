"""marshmallow 4 schemas with boiler's conventions (the seed's schema style).

:class:`Schema` gives every field a camelCase data key unless one is set
(``int_a`` -> ``intA``) and ignores unknown keys on load. Use it with
:class:`boiler.factory.ClsFactory` to build a model class, or get a schema
describing a model class with :func:`model_schema` (for REST / OpenAPI).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from .naming import camel_case


class Schema(ma.Schema):
    """A marshmallow schema whose fields default to camelCase data keys."""

    class Meta:
        unknown = ma.EXCLUDE

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:  # type: ignore[type-arg]
        if field_obj.data_key is None:
            field_obj.data_key = camel_case(field_name)
        super().on_bind_field(field_name, field_obj)

    @classmethod
    def field_declarations(cls) -> dict[str, Any]:
        """Declared fields by attribute name (class-level instances; copy before binding)."""
        return dict(cls._declared_fields)


def model_schema(model_cls: type, *, name: str | None = None) -> type[Schema]:
    """A :class:`Schema` class with one field per exportable model attribute."""
    import copy

    declared: dict[str, Any] = {}
    for attr, descriptor in getattr(model_cls, "_fields", {}).items():
        if not descriptor.export_enabled and not descriptor.import_enabled:
            continue
        field = copy.deepcopy(descriptor.field)
        field.data_key = descriptor.data_key
        field.dump_only = not descriptor.import_enabled
        field.load_only = not descriptor.export_enabled
        declared[attr] = field
    schema_cls: type[Schema] = Schema.from_dict(
        declared, name=name or f"{model_cls.__name__}Schema"
    )  # type: ignore[assignment]
    return schema_cls


__all__ = ["Schema", "model_schema"]
