"""marshmallow schemas generated from view models (for OpenAPI and validation).

:func:`view_schema` describes the JSON a view serves: every exported
attribute under its data key (camelCase), with the attribute's real field
type (``bool`` -> boolean, ``list`` of :class:`~boiler.fields.Nested` ->
array of objects ...). :func:`patch_schema` describes a PATCH body: the
writable attributes only, all optional. Internal fields (``_boiler``) are
never part of either.
"""

from __future__ import annotations

import copy
from typing import Any

import marshmallow as ma

from ..attrs import Field as Attribute
from ..view_model import ViewModel


class ViewSchema(ma.Schema):
    """Base of generated schemas: unknown keys are refused."""

    class Meta:
        unknown = ma.RAISE


class ErrorDetailSchema(ma.Schema):
    code = ma.fields.String(required=True, metadata={"description": "machine-readable kind"})
    message = ma.fields.String(required=True)
    field = ma.fields.String(metadata={"description": "the request field at fault"})


class ErrorSchema(ma.Schema):
    """``{"error": {"code", "message", "field"?}}``: every REST error body."""

    error = ma.fields.Nested(ErrorDetailSchema, required=True)


def exported(view_cls: type[ViewModel]) -> dict[str, Attribute]:
    """Exported attributes of ``view_cls`` by data key."""
    return {d.data_key: d for d in view_cls._fields.values() if d.export_enabled}


def writable(view_cls: type[ViewModel]) -> dict[str, Attribute]:
    """Attributes a client may write (an import-enabled setter) by data key."""
    return {
        d.data_key: d for d in view_cls._fields.values() if d.import_enabled and d.fset is not None
    }


def _field(descriptor: Attribute, **options: Any) -> ma.fields.Field:  # type: ignore[type-arg]
    field = copy.deepcopy(descriptor.field)
    field.data_key = descriptor.data_key
    for key, value in options.items():
        setattr(field, key, value)
    if descriptor.__doc__ and "description" not in field.metadata:
        field.metadata = {**field.metadata, "description": descriptor.__doc__.strip()}
    return field


#: Generated schemas by (kind, view model): one class each, so OpenAPI names stay unique.
_CACHE: dict[tuple[str, type], type[ma.Schema]] = {}


def view_schema(view_cls: type[ViewModel]) -> type[ma.Schema]:
    """The schema of ``view_cls``'s JSON (named after the class)."""
    cached = _CACHE.get(("view", view_cls))
    if cached is not None:
        return cached
    declared = {
        d.name: _field(
            d, required=True, allow_none=True, dump_only=d.fset is None or not d.import_enabled
        )
        for d in exported(view_cls).values()
    }
    schema = ViewSchema.from_dict(declared, name=f"{view_cls.__name__}Schema")
    return _CACHE.setdefault(("view", view_cls), schema)


def patch_schema(view_cls: type[ViewModel]) -> type[ma.Schema]:
    """The schema of a PATCH body for ``view_cls`` (writable fields, all optional)."""
    cached = _CACHE.get(("patch", view_cls))
    if cached is not None:
        return cached
    declared = {
        d.name: _field(d, required=False, allow_none=False) for d in writable(view_cls).values()
    }
    schema = ViewSchema.from_dict(declared, name=f"{view_cls.__name__}PatchSchema")
    return _CACHE.setdefault(("patch", view_cls), schema)


__all__ = [
    "ErrorDetailSchema",
    "ErrorSchema",
    "ViewSchema",
    "exported",
    "patch_schema",
    "view_schema",
    "writable",
]
