"""Queries over a model class: ``User.where(...)`` returns a :class:`ModelQuery`.

A :class:`ModelQuery` is immutable and lazy: it wraps a backend
:class:`~boiler.database.Query` (see :meth:`ModelQuery.to_query`, the value the
reactive core uses as a dependency key) and runs it only when iterated or
fetched. Filters accept, in any mix::

    User.where("organization", "==", "UCSD")          # one (field, op, value)
    User.where(("age", ">=", 18), ("age", "<", 65))   # tuples
    User.where(User.organization == "UCSD")           # conditions
    User.where(0 <= User.age <= 10)                   # chained comparison
    User.where(organization="UCSD")                   # equality per keyword

Field names are attribute names (``first_name``) or stored keys
(``firstName``); an unknown one raises :class:`~boiler.exceptions.InvalidQuery`
naming it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .conditions import Condition, FieldRef, absorb_pending
from .database import DOCUMENT_ID, Database, DocumentSnapshot, FieldFilter, Query, Transaction
from .database.query import ASCENDING, OPERATORS
from .exceptions import InvalidQuery

if TYPE_CHECKING:
    from .domain_model import PrimaryObject

M = TypeVar("M", bound="PrimaryObject")

#: Stored keys every model document carries; queryable on any model.
META_KEYS = ("obj_type", "doc_id", "doc_ref")


class ModelQuery(Generic[M]):
    """A lazy, immutable query returning objects of ``model``."""

    __slots__ = ("_query", "model")

    def __init__(self, model: type[M], query: Query) -> None:
        self.model = model
        self._query = query

    # -- building -------------------------------------------------------------
    def where(self, *args: Any, **equals: Any) -> ModelQuery[M]:
        """Add filters (see the module docs); all must hold."""
        args = absorb_pending(args)
        query = self._query
        for field_path, op, value in self._clauses(args, equals):
            query = query.where(filter=FieldFilter(field_path, op, value))
        return ModelQuery(self.model, query)

    def order_by(self, field: str | FieldRef, direction: str = ASCENDING) -> ModelQuery[M]:
        """Order by an attribute (name or ``Model.attr``)."""
        path, _ = self._resolve(field)
        return ModelQuery(self.model, self._query.order_by(path, direction))

    def limit(self, count: int) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.limit(count))

    def limit_to_last(self, count: int) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.limit_to_last(count))

    def start_at(self, *values: Any) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.start_at(*values))

    def start_after(self, *values: Any) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.start_after(*values))

    def end_at(self, *values: Any) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.end_at(*values))

    def end_before(self, *values: Any) -> ModelQuery[M]:
        return ModelQuery(self.model, self._query.end_before(*values))

    # -- running --------------------------------------------------------------
    def to_query(self) -> Query:
        """The backend query this stands for (hashable; a dependency key)."""
        return self._query

    def snapshots(
        self, db: Database | None = None, *, transaction: Transaction | None = None
    ) -> list[DocumentSnapshot]:
        """Run the query and return the raw snapshots."""
        if transaction is not None:
            return transaction.query(self._query)
        return _database(db).query(self._query)

    def fetch(
        self, db: Database | None = None, *, transaction: Transaction | None = None
    ) -> list[M]:
        """Run the query (on ``db``, ``transaction`` or the context database)."""
        return [self.model.from_snapshot(s) for s in self.snapshots(db, transaction=transaction)]

    def first(
        self, db: Database | None = None, *, transaction: Transaction | None = None
    ) -> M | None:
        """The first result, or None."""
        found = self.limit(1).fetch(db, transaction=transaction)
        return found[0] if found else None

    def __iter__(self) -> Iterator[M]:
        """Runs the query when iteration starts; objects are built one by one."""
        for snapshot in self.snapshots():
            yield self.model.from_snapshot(snapshot)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ModelQuery)
            and self.model is other.model
            and self._query == other._query
        )

    def __hash__(self) -> int:
        return hash((self.model, self._query))

    def __repr__(self) -> str:
        return f"<ModelQuery {self.model.__name__}: {self._query.describe()}>"

    # -- helpers --------------------------------------------------------------
    def _clauses(self, args: tuple[Any, ...], equals: dict[str, Any]) -> list[tuple[str, str, Any]]:
        if len(args) == 3 and isinstance(args[0], str | FieldRef) and isinstance(args[1], str):
            args = (tuple(args),)
        out: list[tuple[str, str, Any]] = []
        for arg in args:
            if isinstance(arg, Condition):
                for field, op, value in arg.clauses:
                    out.append(self._clause(field, op, value))
            elif isinstance(arg, tuple) and len(arg) == 3:
                out.append(self._clause(*arg))
            elif isinstance(arg, FieldFilter):
                out.append((arg.field, arg.op, arg.value))
            else:
                raise InvalidQuery(
                    f"where() takes (field, op, value), tuples, conditions or keywords; got {arg!r}"
                )
        for name, value in equals.items():
            out.append(self._clause(name, "==", value, keyword=True))
        return out

    def _clause(
        self, field: str | FieldRef, op: str, value: Any, *, keyword: bool = False
    ) -> tuple[str, str, Any]:
        if not isinstance(op, str) or op not in OPERATORS:
            raise InvalidQuery(
                f"unsupported query operator {op!r} on {self.model.__name__}.{field}; "
                f"use one of {sorted(OPERATORS)}"
            )
        path, descriptor = self._resolve(field, keyword=keyword)
        if descriptor is not None:
            value = descriptor.query_value(op, value)
        return path, op, value

    def _resolve(self, field: str | FieldRef, *, keyword: bool = False) -> tuple[str, Any]:
        model = self.model
        if isinstance(field, FieldRef):
            if not issubclass(model, field.model) and not issubclass(field.model, model):
                raise InvalidQuery(f"{field!r} is not an attribute of {model.__name__}")
            return field.field_path, field.descriptor
        if not isinstance(field, str) or not field:
            raise InvalidQuery(f"field must be a non-empty string or Model.attr, got {field!r}")
        if field in META_KEYS or field == DOCUMENT_ID:
            return field, None
        head, dot, rest = field.partition(".")
        fields = model._fields
        descriptor = fields.get(head)
        if descriptor is None:
            descriptor = next((d for d in fields.values() if d.data_key == head), None)
        if descriptor is None:
            kind = "where() keyword" if keyword else "field"
            raise InvalidQuery(
                f"unknown {kind} {field!r} for {model.__name__}; "
                f"known: {', '.join(sorted(fields)) or '(none)'}"
            )
        return descriptor.data_key + dot + rest, (descriptor if not dot else None)


def _database(db: Database | None) -> Database:
    if db is not None:
        return db
    from .context import Context

    return Context.db


__all__ = ["META_KEYS", "ModelQuery"]
