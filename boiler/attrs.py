"""Attribute descriptors for models: :class:`bproperty`, :class:`relation`, :class:`embed`.

A descriptor declares one attribute: its stored key (``data_key``, camelCase
of the attribute name by default), its field type (a :mod:`boiler.fields`
field, or ``type=int`` etc.), whether it is read from documents
(``import_enabled``) and written to them (``export_enabled``), and optional
``getter`` / ``setter`` / ``init`` functions, decorated like ``property``::

    class User(DomainModel):
        class Meta:
            collection_name = "users"
        first_name = attrs.bproperty(type=str)
        age = attrs.bproperty(type=int, validate=lambda v: v >= 0)

        full = attrs.bproperty(import_enabled=False)
        @full.getter
        def full(self):
            return f"{self.first_name} {self.last_name}"

On the class, ``User.age`` is a :class:`~boiler.conditions.FieldRef` for
queries (``User.age >= 18``); on an instance it is the value. Unset values read
as ``None`` (or ``default``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import marshmallow as ma

from . import fields as _fields
from .conditions import FieldRef
from .exceptions import ValidationError
from .naming import camel_case

_MISSING: Any = object()
_VALUES = "_boiler_values"


def _values(obj: Any) -> dict[str, Any]:
    store: dict[str, Any] | None = obj.__dict__.get(_VALUES)
    if store is None:
        store = obj.__dict__[_VALUES] = {}
    return store


class Field:
    """Base descriptor; see :class:`bproperty` for the arguments."""

    name: str
    owner: type | None

    def __init__(
        self,
        fget: Callable[[Any], Any] | None = None,
        fset: Callable[[Any, Any], None] | None = None,
        *,
        data_key: str | None = None,
        import_enabled: bool = True,
        export_enabled: bool = True,
        type: Any = None,
        field: _fields.Field | None = None,
        validate: Callable[[Any], Any] | None = None,
        default: Any = _MISSING,
        doc: str | None = None,
    ) -> None:
        if field is not None and type is not None:
            raise TypeError("pass either type= or field=, not both")
        self.fget = fget
        self.fset = fset
        self.finit: Callable[[Any], None] | None = None
        self._data_key = data_key
        self.import_enabled = import_enabled
        self.export_enabled = export_enabled
        self.field: _fields.Field = field if field is not None else _fields.for_type(type)
        self.validator = validate
        self.default = default
        self.__doc__ = doc or (fget.__doc__ if fget else None)
        self.name = fget.__name__ if fget else ""
        self.owner = None

    # -- declaration --------------------------------------------------------
    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.owner = owner

    @property
    def data_key(self) -> str:
        """The key in stored documents."""
        return self._data_key or self.field.data_key or camel_case(self.name)

    def _copy(self, **changes: Any) -> Field:
        new = copy.copy(self)
        new.__dict__.update(changes)
        return new

    def getter(self, fget: Callable[[Any], Any]) -> Field:
        """Decorator: compute the value with ``fget(self)``."""
        return self._copy(fget=fget, __doc__=self.__doc__ or fget.__doc__)

    def setter(self, fset: Callable[[Any, Any], None]) -> Field:
        """Decorator: ``fset(self, value)`` receives checked values."""
        return self._copy(fset=fset)

    def init(self, finit: Callable[[Any], None]) -> Field:
        """Decorator: ``finit(self)`` runs when a model object is constructed."""
        return self._copy(finit=finit)

    # -- values ---------------------------------------------------------------
    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return FieldRef(owner, self) if owner is not None else self
        if self.fget is not None:
            return self.fget(obj)
        store = _values(obj)
        if self.name not in store:
            if self.default is _MISSING:
                return None
            store[self.name] = copy.deepcopy(self.default)
        return store[self.name]

    def __set__(self, obj: Any, value: Any) -> None:
        value = self.check(value)
        if self.fset is not None:
            self.fset(obj, value)
        elif self.fget is not None:
            raise AttributeError(f"{self._qualname()} has a getter and no setter: read-only")
        else:
            _values(obj)[self.name] = value

    def check(self, value: Any) -> Any:
        """``value`` validated (and normalized) for this attribute."""
        value = self.field.check(value, self.name)
        if value is not None and self.validator is not None:
            try:
                ok = self.validator(value)
            except (ma.ValidationError, ValueError, TypeError) as e:
                raise ValidationError(f"invalid value {value!r}: {e}", field=self.name) from e
            if ok is False:
                raise ValidationError(f"invalid value {value!r}", field=self.name)
        return value

    def initialize(self, obj: Any) -> None:
        """Run the ``init`` function, if any (called by model constructors)."""
        if self.finit is not None:
            self.finit(obj)

    def is_set(self, obj: Any) -> bool:
        """Whether a value was stored (always True for computed attributes)."""
        return self.fget is not None or self.name in _values(obj)

    # -- storage --------------------------------------------------------------
    def dump(self, obj: Any) -> Any:
        """The stored form of ``obj``'s value."""
        return self.field.to_storage(self.check(self.__get__(obj, type(obj))))

    def load(self, obj: Any, raw: Any) -> None:
        """Set ``obj``'s value from the stored ``raw`` (validated)."""
        try:
            value = self.field.from_storage(raw, self.name)
        except ValidationError as e:
            raise ValidationError(f"stored {e}", field=self.name) from e
        if self.fset is not None:
            self.fset(obj, value)
        elif self.fget is None:
            _values(obj)[self.name] = value

    def query_value(self, op: str, value: Any) -> Any:
        """A query operand in stored form."""
        if op in ("in", "not-in", "array-contains-any") and isinstance(value, list | tuple):
            return [self.field.query_value(v) for v in value]
        return self.field.query_value(value)

    def _qualname(self) -> str:
        owner = self.owner.__name__ + "." if self.owner else ""
        return owner + self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._qualname()} data_key={self.data_key!r}>"


class bproperty(Field):  # noqa: N801 - seed name
    """A model attribute (stored, or computed with ``getter``)."""


class relation(Field):  # noqa: N801 - seed name
    """A reference to another model, stored as a document path (``"users/u1"``).

    ``collection=list`` / ``dict`` holds a list / map of references.
    ``nested=True`` embeds the related object's dict and reads back an object.
    Reading a non-nested relation gives the path string(s); assigning accepts
    model objects or paths.
    """

    def __init__(
        self,
        fget: Callable[[Any], Any] | None = None,
        fset: Callable[[Any, Any], None] | None = None,
        *,
        nested: bool = False,
        dm_cls: type | str | None = None,
        collection: type | None = None,
        **kwargs: Any,
    ) -> None:
        rel = _fields.Relationship(dm_cls, nested=nested, many=collection)
        super().__init__(fget, fset, field=rel, **kwargs)

    @property
    def nested(self) -> bool:
        return self.relationship.nested

    @property
    def relationship(self) -> _fields.Relationship:
        field = self.field
        assert isinstance(field, _fields.Relationship)
        return field

    def __set_name__(self, owner: type, name: str) -> None:
        super().__set_name__(owner, name)
        self.relationship.owner = owner


def _storable(value: Any, name: str) -> Any:
    if value is None or isinstance(value, str | int | float | bool | bytes):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValidationError(f"map keys must be strings, got {k!r}", field=name)
            out[k] = _storable(v, f"{name}.{k}")
        return out
    if isinstance(value, list | tuple):
        return [_storable(v, f"{name}[{i}]") for i, v in enumerate(value)]
    import datetime as _dt

    if isinstance(value, _dt.datetime):
        return value
    raise ValidationError(f"cannot store a {type(value).__name__} value {value!r}", field=name)


class _Embedded(_fields.Raw):
    """Plain nested data (maps, lists, scalars), copied in and out."""

    def check(self, value: Any, name: str) -> Any:
        return super().check(_storable(value, name), name)

    def to_storage(self, value: Any) -> Any:
        return copy.deepcopy(value)


class embed(Field):  # noqa: N801 - seed name
    """Plain nested data (maps, lists, scalars) stored inside the document."""

    def __init__(
        self,
        fget: Callable[[Any], Any] | None = None,
        fset: Callable[[Any, Any], None] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("field", _Embedded())
        super().__init__(fget, fset, **kwargs)


def declared_fields(cls: type) -> dict[str, Field]:
    """Every :class:`Field` of ``cls`` by attribute name, base classes first."""
    found: dict[str, Field] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, Field):
                found[name] = value
            elif name in found:
                del found[name]
    return found


__all__ = ["Field", "bproperty", "declared_fields", "embed", "relation"]
