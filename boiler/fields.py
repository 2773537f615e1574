"""Schema fields: marshmallow 4 fields that also know how values are stored.

Each field is a real marshmallow field (usable in :class:`boiler.schema.Schema`,
REST bodies and OpenAPI) with three extra duties used by domain models:

- :meth:`Field.check` — validate a Python value assigned to an attribute;
- :meth:`Field.to_storage` — the value written to the database;
- :meth:`Field.from_storage` — the Python value for a stored one.

Wrong types raise :class:`boiler.exceptions.ValidationError` naming the field.
The legacy keywords ``load_from=`` / ``dump_to=`` map to marshmallow 4's
``data_key=``; without them :class:`~boiler.schema.Schema` uses camelCase keys.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import marshmallow as ma

from .exceptions import ConfigurationError, ValidationError


def _type_name(value: Any) -> str:
    return type(value).__name__


class Field(ma.fields.Field):  # type: ignore[type-arg]
    """Base of boiler fields: marshmallow ``Field`` plus storage conversion.

    ``python_types`` (empty: anything) are the accepted Python types.
    """

    python_types: tuple[type, ...] = ()

    def __init__(
        self, *args: Any, load_from: str | None = None, dump_to: str | None = None, **kwargs: Any
    ) -> None:
        data_key = kwargs.pop("data_key", None)
        keys = {k for k in (load_from, dump_to, data_key) if k is not None}
        if len(keys) > 1:
            raise ConfigurationError(
                f"load_from={load_from!r}, dump_to={dump_to!r}, data_key={data_key!r} differ; "
                "a field has one stored key (marshmallow 4 data_key)"
            )
        super().__init__(*args, data_key=keys.pop() if keys else None, **kwargs)

    # -- the three duties -----------------------------------------------------
    def check(self, value: Any, name: str) -> Any:
        """Return ``value`` (possibly normalized) if it fits, else raise ValidationError."""
        if value is None:
            return None
        value = self._check_type(value, name)
        if self.validators:
            try:
                self._validate(value)
            except ma.ValidationError as e:
                raise ValidationError(f"{_flatten(e.messages)}", field=name) from e
        return value

    def to_storage(self, value: Any) -> Any:
        """The stored form of an already-checked value."""
        return value

    def from_storage(self, raw: Any, name: str) -> Any:
        """The Python value of the stored ``raw`` (validated)."""
        return self.check(raw, name)

    def query_value(self, value: Any) -> Any:
        """A query operand in stored form (best effort, no type check)."""
        return value

    def _check_type(self, value: Any, name: str) -> Any:
        types = self.python_types
        if types and (not isinstance(value, types) or _is_bool_for_number(value, types)):
            expected = " or ".join(t.__name__ for t in types)
            raise ValidationError(
                f"expected {expected}, got {_type_name(value)} {value!r}", field=name
            )
        return value


def _is_bool_for_number(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, bool) and bool not in types


def _flatten(messages: Any) -> str:
    if isinstance(messages, list):
        return "; ".join(str(m) for m in messages)
    if isinstance(messages, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in messages.items())
    return str(messages)


class Raw(Field, ma.fields.Raw):  # type: ignore[type-arg]
    """Any storable value, stored as is."""


class String(Field, ma.fields.String):
    python_types = (str,)


class Integer(Field, ma.fields.Integer):
    python_types = (int,)


class Float(Field, ma.fields.Float):
    """Accepts ints too; stores a float."""

    python_types = (float, int)

    def check(self, value: Any, name: str) -> Any:
        value = super().check(value, name)
        return None if value is None else float(value)


class Boolean(Field, ma.fields.Boolean):
    python_types = (bool,)


class DateTime(Field, ma.fields.DateTime):
    """A timezone-aware datetime; a naive one is taken as UTC."""

    python_types = (_dt.datetime,)

    def check(self, value: Any, name: str) -> Any:
        value = super().check(value, name)
        if isinstance(value, _dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=_dt.UTC)
        return value


class List(Field, ma.fields.List):  # type: ignore[type-arg]
    """A list whose items fit ``inner`` (default: anything)."""

    python_types = (list, tuple)

    def __init__(self, inner: Any = None, **kwargs: Any) -> None:
        super().__init__(inner if inner is not None else Raw(), **kwargs)

    def check(self, value: Any, name: str) -> Any:
        value = super().check(value, name)
        if value is None:
            return None
        inner = self.inner
        if isinstance(inner, Field):
            return [inner.check(v, f"{name}[{i}]") for i, v in enumerate(value)]
        return list(value)

    def to_storage(self, value: Any) -> Any:
        inner = self.inner
        if value is None or not isinstance(inner, Field):
            return value
        return [inner.to_storage(v) for v in value]

    def from_storage(self, raw: Any, name: str) -> Any:
        raw = Field.check(self, raw, name)
        inner = self.inner
        if raw is None or not isinstance(inner, Field):
            return None if raw is None else list(raw)
        return [inner.from_storage(v, f"{name}[{i}]") for i, v in enumerate(raw)]

    def query_value(self, value: Any) -> Any:
        inner = self.inner
        return inner.query_value(value) if isinstance(inner, Field) else value


class Dict(Field, ma.fields.Dict):  # type: ignore[type-arg]
    """A mapping with string keys (values fit ``values`` if given)."""

    python_types = (dict,)

    def check(self, value: Any, name: str) -> Any:
        value = super().check(value, name)
        if value is None:
            return None
        for key in value:
            if not isinstance(key, str):
                raise ValidationError(f"keys must be strings, got {key!r}", field=name)
        inner = self.value_field
        if isinstance(inner, Field):
            return {k: inner.check(v, f"{name}.{k}") for k, v in value.items()}
        return dict(value)

    def to_storage(self, value: Any) -> Any:
        inner = self.value_field
        if value is None or not isinstance(inner, Field):
            return value
        return {k: inner.to_storage(v) for k, v in value.items()}

    def from_storage(self, raw: Any, name: str) -> Any:
        raw = Field.check(self, raw, name)
        inner = self.value_field
        if raw is None or not isinstance(inner, Field):
            return None if raw is None else dict(raw)
        return {k: inner.from_storage(v, f"{name}.{k}") for k, v in raw.items()}


class Nested(Field, ma.fields.Nested):
    """A plain object (dict keyed by the nested schema's data keys), e.g. list items.

    ``fields.List(fields.Nested(AttendeeSchema))`` declares an array of objects
    for view attributes; keys outside the schema are refused, and each declared
    key is checked by its boiler field. Stored (and served) as a plain dict.
    """

    python_types = (dict,)

    def __init__(self, nested: Any, **kwargs: Any) -> None:
        super().__init__(nested, **kwargs)

    def _schema_fields(self) -> dict[str, ma.fields.Field]:  # type: ignore[type-arg]
        known: dict[str, ma.fields.Field] | None = self.__dict__.get("_known_fields")  # type: ignore[type-arg]
        if known is None:  # the nested schema is fixed once declared: map it once
            schema = self.schema
            known = {f.data_key or name: f for name, f in schema.fields.items()}
            self.__dict__["_known_fields"] = known
        return known

    def check(self, value: Any, name: str) -> Any:
        value = super().check(value, name)
        if value is None:
            return None
        known = self._schema_fields()
        unknown = sorted(str(k) for k in value if k not in known)
        if unknown:
            raise ValidationError(f"unknown key(s) {unknown}", field=name)
        out = {}
        for key, item in value.items():
            field = known[key]
            out[key] = field.check(item, f"{name}.{key}") if isinstance(field, Field) else item
        return out

    def to_storage(self, value: Any) -> Any:
        return None if value is None else dict(value)


class TypeChecked(Raw):
    """Values that are instances of ``python_type`` (for ``bproperty(type=...)``)."""

    def __init__(self, python_type: type | tuple[type, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.python_types = python_type if isinstance(python_type, tuple) else (python_type,)


_BY_TYPE: dict[type, type[Field]] = {
    str: String,
    bool: Boolean,
    int: Integer,
    float: Float,
    _dt.datetime: DateTime,
    list: List,
    dict: Dict,
}


def for_type(python_type: Any) -> Field:
    """The field for a declared Python type (``int`` -> :class:`Integer`, ...)."""
    if python_type is None or python_type is Any:
        return Raw()
    if isinstance(python_type, type) and python_type in _BY_TYPE:
        return _BY_TYPE[python_type]()
    if isinstance(python_type, type) or (
        isinstance(python_type, tuple) and all(isinstance(t, type) for t in python_type)
    ):
        return TypeChecked(python_type)
    raise ConfigurationError(f"unsupported field type {python_type!r}; pass a class")


def _model_base() -> type:
    from .domain_model import PrimaryObject  # local: models import this module

    return PrimaryObject


class Relationship(Field):
    """A reference to another model, stored as its document path (``"users/u1"``).

    ``many``: ``None`` for one reference, ``list`` or ``dict`` for a list or a
    map of them. ``nested=True`` stores the related object's dict instead and
    loads it back as a model object. ``dm_cls`` is a class or a class name
    (resolved when first needed; pass the class to avoid ambiguity).
    """

    def __init__(
        self,
        dm_cls: type | str | None = None,
        *,
        nested: bool = False,
        many: type | None = None,
        **kwargs: Any,
    ) -> None:
        if many not in (None, list, dict):
            raise ConfigurationError(
                f"relation collection must be list, dict or None, got {many!r}"
            )
        super().__init__(**kwargs)
        self.dm_cls = dm_cls
        self.nested = nested
        self.many = many
        self.owner: type | None = None

    def model_class(self) -> type | None:
        """The related class (``dm_cls`` resolved), or None if unspecified."""
        if isinstance(self.dm_cls, str):
            from . import registry

            self.dm_cls = registry.resolve(self.dm_cls, near=self.owner, base=_model_base())
        return self.dm_cls if isinstance(self.dm_cls, type) else None

    # -- one reference ----------------------------------------------------------
    def _check_one(self, value: Any, name: str) -> Any:
        if value is None:
            return None
        base = _model_base()
        target = self.model_class()
        if isinstance(value, base):
            if target is not None and not isinstance(value, target):
                raise ValidationError(
                    f"expected a {target.__name__}, got {_type_name(value)}", field=name
                )
            return value if self.nested else value.doc_ref  # type: ignore[attr-defined]
        if self.nested:
            if isinstance(value, dict):
                return target.from_dict(value) if target is not None else dict(value)  # type: ignore[attr-defined]
            raise ValidationError(
                f"expected a model object or dict, got {_type_name(value)} {value!r}", field=name
            )
        if isinstance(value, str):
            from .database import paths
            from .exceptions import InvalidPath

            try:
                return paths.document_path(value)
            except InvalidPath as e:
                raise ValidationError(str(e), field=name) from e
        raise ValidationError(
            f"expected a model object or a document path, got {_type_name(value)} {value!r}",
            field=name,
        )

    def _store_one(self, value: Any) -> Any:
        if value is None or not self.nested:
            return value
        return value.to_dict() if hasattr(value, "to_dict") else value

    # -- duties -----------------------------------------------------------------
    def check(self, value: Any, name: str) -> Any:
        if value is None:
            return None
        if self.many is list:
            if not isinstance(value, list | tuple):
                raise ValidationError(f"expected a list, got {_type_name(value)}", field=name)
            return [self._check_one(v, f"{name}[{i}]") for i, v in enumerate(value)]
        if self.many is dict:
            if not isinstance(value, dict):
                raise ValidationError(f"expected a dict, got {_type_name(value)}", field=name)
            return {str(k): self._check_one(v, f"{name}.{k}") for k, v in value.items()}
        return self._check_one(value, name)

    def to_storage(self, value: Any) -> Any:
        if value is None:
            return None
        if self.many is list:
            return [self._store_one(v) for v in value]
        if self.many is dict:
            return {k: self._store_one(v) for k, v in value.items()}
        return self._store_one(value)

    def query_value(self, value: Any) -> Any:
        if isinstance(value, _model_base()):
            return value.doc_ref  # type: ignore[attr-defined]
        return value

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return self.to_storage(self.check(value, attr or "relation"))


Str = String
Int = Integer
Bool = Boolean

__all__ = [
    "Bool",
    "Boolean",
    "DateTime",
    "Dict",
    "Field",
    "Float",
    "Int",
    "Integer",
    "List",
    "Nested",
    "Raw",
    "Relationship",
    "Str",
    "String",
    "TypeChecked",
    "for_type",
]
