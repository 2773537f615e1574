"""Pure, in-process evaluation of :class:`~boiler.database.query.Query` values.

Firestore semantics, checked against the Cloud Firestore emulator: the
cross-type value order, type-class-bound comparisons, null/NaN handling of
``==``/``!=``/``in``/``not-in``, implicit orders, cursors and limits. Nothing
here does I/O or knows a backend: it works on :class:`DocumentSnapshot` values
from any source (the embedded store uses it, and so can the runtime on
documents received from a collection listener).
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..exceptions import InvalidQuery
from .base import DocumentSnapshot
from .query import DESCENDING, DOCUMENT_ID, Cursor, FieldFilter, Query

# Firestore's type order: null < bool < number < timestamp < string < bytes
# < reference < geopoint < array < map.
NULL, BOOLEAN, NUMBER, TIMESTAMP, STRING, BYTES, REFERENCE, GEOPOINT, ARRAY, MAP = range(10)

_MISSING: Any = object()
_UTC = _dt.UTC
_RANGE_OPS = frozenset(["<", "<=", ">", ">="])


class Reference:
    """A document path as a query value (what ``__name__`` compares)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"Reference({self.path!r})"


# -- values -------------------------------------------------------------------
def type_order(value: Any) -> int:
    """The Firestore type class of ``value`` (its rank in the cross-type order)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    if isinstance(value, _dt.datetime):
        return TIMESTAMP
    if isinstance(value, str):
        return STRING
    if isinstance(value, bytes | bytearray | memoryview):
        return BYTES
    if isinstance(value, Reference):
        return REFERENCE
    if isinstance(value, list | tuple):
        return ARRAY
    if isinstance(value, Mapping):
        return MAP
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return GEOPOINT
    if isinstance(getattr(value, "path", None), str):
        return REFERENCE
    raise InvalidQuery(f"unsupported value type {type(value).__name__}: {value!r}")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key whose natural Python order is Firestore's value order.

    Ints and floats compare numerically (``1 == 1.0``), NaN sorts before every
    other number, equal keys mean Firestore-equal values.
    """
    if value is None:
        return (NULL,)
    if isinstance(value, bool):
        return (BOOLEAN, value)
    if isinstance(value, int):
        return (NUMBER, 1, value)
    if isinstance(value, float):
        return (NUMBER, 0) if math.isnan(value) else (NUMBER, 1, value)
    if isinstance(value, str):
        return (STRING, value)
    if isinstance(value, _dt.datetime):
        return (TIMESTAMP, value if value.tzinfo else value.replace(tzinfo=_UTC))
    if isinstance(value, list | tuple):
        return (ARRAY, tuple(sort_key(v) for v in value))
    if isinstance(value, Mapping):
        return (MAP, tuple((k, sort_key(value[k])) for k in sorted(value)))
    if isinstance(value, bytes | bytearray | memoryview):
        return (BYTES, bytes(value))
    if isinstance(value, Reference):
        return (REFERENCE, tuple(value.path.split("/")))
    if hasattr(value, "latitude") and hasattr(value, "longitude"):
        return (GEOPOINT, value.latitude, value.longitude)
    path = getattr(value, "path", None)  # e.g. a google-cloud-firestore DocumentReference
    if isinstance(path, str):
        return (REFERENCE, tuple(path.split("/")))
    raise InvalidQuery(f"unsupported value type {type(value).__name__}: {value!r}")


def compare_values(a: Any, b: Any) -> int:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b`` in Firestore order."""
    ka, kb = sort_key(a), sort_key(b)
    return (ka > kb) - (ka < kb)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


# -- field paths ------------------------------------------------------------------
def split_field_path(field_path: str) -> list[str]:
    """Split a dotted field path; backticks quote a segment (``a.`b.c```)."""
    if "`" not in field_path:
        return field_path.split(".")
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(field_path):
        ch = field_path[i]
        if ch == "\\" and quoted and i + 1 < len(field_path):
            current.append(field_path[i + 1])
            i += 2
            continue
        if ch == "`":
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise InvalidQuery(f"invalid field path {field_path!r}: unbalanced backtick")
    parts.append("".join(current))
    return parts


def field_value(snapshot: DocumentSnapshot, field_path: str, default: Any = _MISSING) -> Any:
    """The value at ``field_path`` (``__name__``: the document reference)."""
    parts = None if field_path == DOCUMENT_ID else split_field_path(field_path)
    value = _lookup(snapshot, parts)
    return default if value is _MISSING else value


# -- query checks -------------------------------------------------------------------
def check_query(query: Query) -> None:
    """Raise :class:`InvalidQuery` for queries Firestore rejects (before any
    evaluation, so evaluating a checked query never raises)."""
    ops = [f.op for f in query.filters]
    if ops.count("!=") + ops.count("not-in") > 1:
        raise InvalidQuery(
            f"query {query.describe()!r}: at most one '!=' or 'not-in' filter is allowed"
        )
    if "not-in" in ops and ("in" in ops or "array-contains-any" in ops):
        raise InvalidQuery(
            f"query {query.describe()!r}: 'not-in' cannot be combined with 'in' or "
            "'array-contains-any'"
        )
    for op in ("array-contains", "array-contains-any"):
        if ops.count(op) > 1:
            raise InvalidQuery(f"query {query.describe()!r}: at most one '{op}' filter is allowed")
    for f in query.filters:
        _filter_value(query, f)
        values = f.value if f.op in ("in", "not-in", "array-contains-any") else [f.value]
        for v in values:
            type_order(v)
        if f.op in _RANGE_OPS or f.op == "array-contains":
            if f.value is None or _is_nan(f.value):
                raise InvalidQuery(
                    f"filter {f.field} {f.op} {f.value!r}: only == and != can be used "
                    "with None or NaN"
                )
    orders = query.effective_orders()
    for cursor in (query.start, query.end):
        if cursor is None:
            continue
        if cursor.document is None and len(cursor.values) > len(orders):
            raise InvalidQuery(
                f"cursor has {len(cursor.values)} values but the query orders by only "
                f"{len(orders)} fields ({', '.join(n for n, _ in orders)})"
            )
        for value in _cursor_values(query, cursor):
            type_order(value)


# -- matching ---------------------------------------------------------------------
def _reference_value(query: Query, value: Any) -> Any:
    """Normalize a ``__name__`` filter/cursor value to a :class:`Reference`."""
    if isinstance(value, Reference):
        return value
    if isinstance(value, DocumentSnapshot):
        return Reference(value.path)
    if isinstance(value, str):
        if "/" in value:
            return Reference(value)
        if query.all_descendants:
            raise InvalidQuery(
                f"__name__ value {value!r} of a collection group query must be a full document path"
            )
        return Reference(f"{query.collection}/{value}")
    path = getattr(value, "path", None)  # e.g. a google-cloud-firestore DocumentReference
    if isinstance(path, str):
        return Reference(path)
    raise InvalidQuery(f"__name__ values must be document paths or ids, got {value!r}")


def _filter_value(query: Query, f: FieldFilter) -> Any:
    if f.field != DOCUMENT_ID:
        return f.value
    if isinstance(f.value, list):
        return [_reference_value(query, v) for v in f.value]
    return _reference_value(query, f.value)


def _member_keys(values: Iterable[Any]) -> frozenset[tuple[Any, ...]]:
    """Keys for in / array-contains(-any): null and NaN never match."""
    return frozenset(sort_key(v) for v in values if v is not None and not _is_nan(v))


class _Filter:
    """One filter, prepared: field path parts and the target's sort keys."""

    __slots__ = ("field", "parts", "op", "target", "key", "keys", "type")

    def __init__(self, query: Query, f: FieldFilter) -> None:
        self.field = f.field
        self.parts = None if f.field == DOCUMENT_ID else split_field_path(f.field)
        self.op = f.op
        self.target = target = _filter_value(query, f)
        self.key: tuple[Any, ...] | None = None
        self.keys: frozenset[tuple[Any, ...]] = frozenset()
        self.type = -1
        if f.op in ("in", "not-in", "array-contains-any"):
            self.keys = _member_keys(target)
        elif f.op == "array-contains":
            self.keys = _member_keys([target])
        elif target is not None and not _is_nan(target):
            self.key = sort_key(target)
            self.type = self.key[0]

    def matches(self, snapshot: DocumentSnapshot) -> bool:
        value = _lookup(snapshot, self.parts)
        if value is _MISSING:
            return False
        op = self.op
        if op == "==":
            if self.key is None:
                return value is None if self.target is None else _is_nan(value)
            return sort_key(value) == self.key
        if op == "!=":
            if value is None:
                return False
            if self.key is None:
                return self.target is None or not _is_nan(value)
            return sort_key(value) != self.key
        if op == "in":
            return sort_key(value) in self.keys
        if op == "not-in":
            if value is None or any(t is None for t in self.target):
                return False
            return sort_key(value) not in self.keys
        if op == "array-contains" or op == "array-contains-any":
            return isinstance(value, list | tuple) and any(sort_key(v) in self.keys for v in value)
        vk = sort_key(value)
        if vk[0] != self.type or _is_nan(value):
            return False
        tk = self.key
        assert tk is not None
        if op == "<":
            return vk < tk
        if op == "<=":
            return vk <= tk
        if op == ">":
            return vk > tk
        return vk >= tk


def _lookup(snapshot: DocumentSnapshot, parts: list[str] | None) -> Any:
    if parts is None:
        return Reference(snapshot.path)
    node: Any = snapshot.data
    for part in parts:
        if not isinstance(node, Mapping):
            return _MISSING
        node = node.get(part, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


class _Desc:
    """Inverts the order of a key (for DESCENDING orders)."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[Any, ...]) -> None:
        self.key = key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.key == other.key

    def __lt__(self, other: _Desc) -> bool:
        return other.key < self.key

    def __le__(self, other: _Desc) -> bool:
        return other.key <= self.key

    def __gt__(self, other: _Desc) -> bool:
        return other.key > self.key

    def __ge__(self, other: _Desc) -> bool:
        return other.key >= self.key

    def __hash__(self) -> int:
        return hash(self.key)


class _Plan:
    """A query prepared for evaluation (built once per query, cached)."""

    __slots__ = ("filters", "orders", "start", "end", "start_before", "end_before")

    def __init__(self, query: Query) -> None:
        self.filters = [_Filter(query, f) for f in query.filters]
        self.orders = [
            (None if name == DOCUMENT_ID else split_field_path(name), direction == DESCENDING)
            for name, direction in query.effective_orders()
        ]
        self.start = self._cursor(query, query.start)
        self.end = self._cursor(query, query.end)
        self.start_before = query.start is None or query.start.before
        self.end_before = query.end is None or query.end.before

    def _cursor(self, query: Query, cursor: Cursor | None) -> tuple[Any, ...] | None:
        """A cursor as an order-key prefix."""
        if cursor is None:
            return None
        values = _cursor_values(query, cursor)
        return tuple(
            _Desc(sort_key(v)) if desc else sort_key(v)
            for v, (_parts, desc) in zip(values, self.orders, strict=False)
        )

    def key(self, snapshot: DocumentSnapshot) -> tuple[Any, ...] | None:
        parts: list[Any] = []
        for path, desc in self.orders:
            value = _lookup(snapshot, path)
            if value is _MISSING:
                return None
            key = sort_key(value)
            parts.append(_Desc(key) if desc else key)
        return tuple(parts)

    def within(self, key: tuple[Any, ...]) -> bool:
        start, end = self.start, self.end
        if start is not None:
            prefix = key[: len(start)]
            if prefix < start or (prefix == start and not self.start_before):
                return False
        if end is not None:
            prefix = key[: len(end)]
            if prefix > end or (prefix == end and self.end_before):
                return False
        return True


@functools.lru_cache(maxsize=1024)
def _plan(query: Query) -> _Plan:
    return _Plan(query)


def filter_matches(query: Query, f: FieldFilter, snapshot: DocumentSnapshot) -> bool:
    """Whether ``snapshot`` satisfies the single filter ``f`` of ``query``."""
    return _Filter(query, f).matches(snapshot)


def matches_filters(query: Query, snapshot: DocumentSnapshot) -> bool:
    """Whether an existing ``snapshot`` satisfies every filter of ``query``."""
    if snapshot.data is None:
        return False
    return all(f.matches(snapshot) for f in _plan(query).filters)


def in_scope(query: Query, path: str) -> bool:
    """Whether the document ``path`` lies in the collection(s) ``query`` reads."""
    parent, _, _ = path.rpartition("/")
    if not query.all_descendants:
        return parent == query.collection
    if parent.rpartition("/")[2] != query.collection:
        return False
    return not query.scope or path.startswith(query.scope + "/")


# -- ordering -----------------------------------------------------------------------
def order_key(query: Query, snapshot: DocumentSnapshot) -> tuple[Any, ...] | None:
    """The position of ``snapshot`` in ``query`` order, or None if it lacks an
    order-by field (Firestore then leaves the document out)."""
    return _plan(query).key(snapshot)


def _cursor_values(query: Query, cursor: Cursor) -> list[Any]:
    orders = query.effective_orders()
    if cursor.document is None:
        try:
            return [
                _reference_value(query, v) if name == DOCUMENT_ID else v
                for (name, _), v in zip(orders, cursor.values, strict=False)
            ]
        except InvalidQuery as e:
            raise InvalidQuery(f"cursor value for __name__: {e}") from e
    values = []
    for name, _ in orders:
        value = field_value(cursor.document, name)
        if value is _MISSING:
            raise InvalidQuery(
                f"cursor document {cursor.document.path!r} has no field {name!r} "
                "that the query orders by"
            )
        values.append(value)
    return values


def within_cursors(query: Query, key: tuple[Any, ...]) -> bool:
    """Whether a document at order ``key`` lies between the query's cursors."""
    return _plan(query).within(key)


def match_key(query: Query, snapshot: DocumentSnapshot) -> tuple[Any, ...] | None:
    """The order key of ``snapshot`` if it belongs to ``query``'s results
    before the limit is applied (scope, filters, order fields, cursors), else None."""
    if snapshot.data is None or not in_scope(query, snapshot.path):
        return None
    plan = _plan(query)
    for f in plan.filters:
        if not f.matches(snapshot):
            return None
    key = plan.key(snapshot)
    if key is None or not plan.within(key):
        return None
    return key


def run_query(query: Query, snapshots: Iterable[DocumentSnapshot]) -> list[DocumentSnapshot]:
    """The documents of ``snapshots`` that ``query`` returns, in query order.

    ``limit_to_last`` keeps the last documents but returns them in query order.
    """
    keyed = []
    for snap in snapshots:
        key = match_key(query, snap)
        if key is not None:
            keyed.append((key, snap))
    keyed.sort(key=lambda pair: pair[0])
    docs = [snap for _, snap in keyed]
    n = query.limit_count
    if n is not None:
        docs = docs[-n:] if query.from_last and n else docs[:n]
    return docs


__all__ = [
    "Reference",
    "check_query",
    "compare_values",
    "field_value",
    "filter_matches",
    "in_scope",
    "match_key",
    "matches_filters",
    "order_key",
    "run_query",
    "sort_key",
    "split_field_path",
    "type_order",
    "within_cursors",
]
