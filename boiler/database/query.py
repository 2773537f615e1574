"""Backend-neutral query values.

A :class:`Query` is an immutable, hashable description of a Firestore-style
query. Backends execute it (``db.query(q)``, ``db.listen_query(q, cb)``); the
runtime uses it as a dependency key. Builder methods return new queries::

    q = Query("cities").where("population", ">", 1000).order_by("population").limit(10)
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..exceptions import InvalidQuery
from . import paths

if TYPE_CHECKING:
    from .base import DocumentSnapshot

Operator = Literal[
    "==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "array-contains-any"
]
OPERATORS: frozenset[str] = frozenset(
    ["==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "array-contains-any"]
)
LIST_OPERATORS: frozenset[str] = frozenset(["in", "not-in", "array-contains-any"])
INEQUALITY_OPERATORS: frozenset[str] = frozenset(["!=", "<", "<=", ">", ">=", "not-in"])
MAX_DISJUNCTION = 30

ASCENDING = "ASCENDING"
DESCENDING = "DESCENDING"
Direction = Literal["ASCENDING", "DESCENDING"]

#: Field path naming the document id (``FieldPath.document_id()`` in Firestore).
DOCUMENT_ID = "__name__"


def _freeze(value: Any) -> Any:
    """A hashable, order-preserving canonical form of a query value."""
    if isinstance(value, dict):
        return ("__map__", tuple(sorted((k, _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return ("__list__", tuple(_freeze(v) for v in value))
    if isinstance(value, bool):
        return ("__bool__", value)
    if isinstance(value, _dt.datetime):
        return ("__ts__", value.isoformat())
    return value


def _check_field(field_path: str) -> str:
    if not isinstance(field_path, str) or not field_path:
        raise InvalidQuery(f"field path must be a non-empty string, got {field_path!r}")
    if field_path != DOCUMENT_ID and any(not part for part in field_path.split(".")):
        raise InvalidQuery(f"invalid field path {field_path!r}: empty segment")
    return field_path


@dataclass(frozen=True, eq=False)
class FieldFilter:
    """``field op value``; ``field`` is a dotted field path."""

    field: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        _check_field(self.field)
        if self.op not in OPERATORS:
            raise InvalidQuery(
                f"unsupported query operator {self.op!r} on field {self.field!r}; "
                f"use one of {sorted(OPERATORS)}"
            )
        if self.op in LIST_OPERATORS:
            if not isinstance(self.value, list | tuple) or not self.value:
                raise InvalidQuery(
                    f"operator {self.op!r} on field {self.field!r} needs a non-empty list, "
                    f"got {self.value!r}"
                )
            if len(self.value) > MAX_DISJUNCTION:
                raise InvalidQuery(
                    f"operator {self.op!r} on field {self.field!r} takes at most "
                    f"{MAX_DISJUNCTION} values, got {len(self.value)}"
                )
            object.__setattr__(self, "value", list(self.value))
        values = self.value if isinstance(self.value, list) else [self.value]
        for value in values:
            if isinstance(value, str) and not paths.is_utf8(value):
                raise InvalidQuery(f"field {self.field!r}: {paths.not_utf8('value', value)}")

    def key(self) -> tuple[Any, ...]:
        return (self.field, self.op, _freeze(self.value))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldFilter) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


@dataclass(frozen=True, eq=False)
class Cursor:
    """A query bound: values for the order-by fields (or a document snapshot's).

    ``before`` is True for ``start_at`` / ``end_before`` (the position lies just
    before the given values) and False for ``start_after`` / ``end_at``.
    """

    values: tuple[Any, ...] = ()
    document: DocumentSnapshot | None = None
    before: bool = True

    def key(self) -> tuple[Any, ...]:
        doc = self.document
        doc_key = (
            (doc.path, doc.update_time.isoformat() if doc.update_time else None) if doc else None
        )
        return (_freeze(list(self.values)), doc_key, self.before)


@dataclass(frozen=True, eq=False)
class Query:
    """An immutable Firestore-style query over one collection or a collection group.

    ``collection`` is a collection path (``"users"``, ``"users/u1/tickets"``) or,
    when ``all_descendants`` is True, a collection id matched anywhere under
    ``scope`` (``""`` means the whole database): a collection group query.
    """

    collection: str
    filters: tuple[FieldFilter, ...] = ()
    orders: tuple[tuple[str, Direction], ...] = ()
    limit_count: int | None = None
    from_last: bool = False
    start: Cursor | None = None
    end: Cursor | None = None
    all_descendants: bool = False
    scope: str = ""
    _key: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.all_descendants:
            if (
                not isinstance(self.collection, str)
                or not self.collection
                or "/" in self.collection
            ):
                raise InvalidQuery(
                    f"collection group id must be a single segment, got {self.collection!r}"
                )
            if self.scope:
                paths.document_path(self.scope)
        else:
            paths.collection_path(self.collection)
        object.__setattr__(
            self,
            "_key",
            (
                self.collection,
                tuple(f.key() for f in self.filters),
                self.orders,
                self.limit_count,
                self.from_last,
                self.start.key() if self.start else None,
                self.end.key() if self.end else None,
                self.all_descendants,
                self.scope,
            ),
        )

    # -- identity -----------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Query) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    # -- builders -----------------------------------------------------------
    def where(
        self,
        field_path: str | None = None,
        op: str | None = None,
        value: Any = None,
        *,
        filter: FieldFilter | None = None,
    ) -> Query:
        """Add a filter: ``where("age", ">=", 18)`` or ``where(filter=FieldFilter(...))``."""
        if filter is None:
            if field_path is None or op is None:
                raise InvalidQuery("where() needs a field path, an operator and a value")
            filter = FieldFilter(field_path, op, value)
        elif field_path is not None or op is not None:
            raise InvalidQuery("where() takes either filter= or (field, op, value), not both")
        return replace(self, filters=(*self.filters, filter))

    def order_by(self, field_path: str, direction: str = ASCENDING) -> Query:
        """Order by ``field_path``; documents without that field are excluded."""
        _check_field(field_path)
        direction = direction.upper()
        if direction not in (ASCENDING, DESCENDING):
            raise InvalidQuery(
                f"order direction for {field_path!r} must be ASCENDING or DESCENDING, "
                f"got {direction!r}"
            )
        return replace(self, orders=(*self.orders, (field_path, direction)))  # type: ignore[arg-type]

    def limit(self, count: int) -> Query:
        """Return at most ``count`` documents (the first ones in query order)."""
        return replace(self, limit_count=_check_limit(count), from_last=False)

    def limit_to_last(self, count: int) -> Query:
        """Return the last ``count`` documents (needs an order_by)."""
        if not self.orders:
            raise InvalidQuery("limit_to_last() needs at least one order_by()")
        return replace(self, limit_count=_check_limit(count), from_last=True)

    def start_at(self, *values: Any) -> Query:
        return replace(self, start=_cursor(values, before=True))

    def start_after(self, *values: Any) -> Query:
        return replace(self, start=_cursor(values, before=False))

    def end_at(self, *values: Any) -> Query:
        return replace(self, end=_cursor(values, before=False))

    def end_before(self, *values: Any) -> Query:
        return replace(self, end=_cursor(values, before=True))

    # -- helpers ------------------------------------------------------------
    def effective_orders(self) -> list[tuple[str, Direction]]:
        """Explicit orders, plus Firestore's implicit ones: every inequality field
        not ordered explicitly (sorted by field path), then ``__name__``, in the
        direction of the last explicit order (as the emulator does)."""
        orders = list(self.orders)
        last_dir: Direction = orders[-1][1] if orders else "ASCENDING"
        ordered = {name for name, _ in orders}
        implicit = sorted(
            {
                f.field
                for f in self.filters
                if f.op in INEQUALITY_OPERATORS
                and f.field not in ordered
                and f.field != DOCUMENT_ID
            },
            key=lambda name: name.split("."),
        )
        orders += [(name, last_dir) for name in implicit]
        if DOCUMENT_ID not in ordered:
            orders.append((DOCUMENT_ID, last_dir))
        return orders

    def describe(self) -> str:
        """A short human-readable description for logs and errors."""
        parts = [("group:" if self.all_descendants else "") + self.collection]
        parts += [f"{f.field} {f.op} {f.value!r}" for f in self.filters]
        parts += [f"order_by {n} {d}" for n, d in self.orders]
        if self.limit_count is not None:
            parts.append(("limit_to_last " if self.from_last else "limit ") + str(self.limit_count))
        return " | ".join(parts)


def _check_limit(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidQuery(f"limit must be a non-negative integer, got {count!r}")
    return count


def _cursor(values: Sequence[Any], *, before: bool) -> Cursor:
    from .base import DocumentSnapshot  # local: base imports this module

    if len(values) == 1 and isinstance(values[0], DocumentSnapshot):
        return Cursor(values=(), document=values[0], before=before)
    if not values:
        raise InvalidQuery("a cursor needs at least one value or a document snapshot")
    return Cursor(values=tuple(values), before=before)


def collection(path: str) -> Query:
    """A query over every document of the collection at ``path``."""
    return Query(path)


def collection_group(collection_id: str, scope: str = "") -> Query:
    """A query over every collection named ``collection_id`` (under ``scope``)."""
    return Query(collection_id, all_descendants=True, scope=scope)


def in_values(values: Iterable[Any]) -> list[Any]:
    """Convenience: a list for ``in`` / ``not-in`` filters."""
    return list(values)
