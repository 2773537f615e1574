"""Translate a boiler :class:`~boiler.database.query.Query` into a
google-cloud-firestore query, and order library snapshots the way Firestore does.

- Filters use ``filter=FieldFilter(...)`` (the positional form warns).
- ``__name__`` values (filters and cursors) may be a document id (collection
  queries), a path relative to the database, or one of our snapshots; they are
  sent as document references.
- ``limit_to_last`` is sent as the reversed query (orders flipped, cursors
  swapped) with a plain ``limit``; callers re-sort the result in query order.
  This works for listeners too, which the library's own ``limit_to_last`` does not.
- A collection group with a ``scope`` runs with the scope document as parent
  (``RunQuery``/``Listen`` accept a document parent with ``all_descendants``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as fs_helpers
from google.cloud.firestore_v1.base_document import DocumentSnapshot as LibSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter as LibFieldFilter
from google.cloud.firestore_v1.collection import CollectionReference
from google.cloud.firestore_v1.order import Order
from google.cloud.firestore_v1.query import CollectionGroup

from ..exceptions import InvalidQuery
from ._firestore_convert import to_lib_data, to_lib_snapshot
from .base import DocumentSnapshot
from .query import ASCENDING, DOCUMENT_ID, Cursor, Direction, Query

_LIB_OPS = {"array-contains": "array_contains", "array-contains-any": "array_contains_any"}


def _flip(direction: str) -> Direction:
    return "DESCENDING" if direction == ASCENDING else "ASCENDING"


def reversed_for_last(query: Query) -> Query:
    """The query that reads the same window as ``query`` (a ``limit_to_last``
    query) from the other end, with an ordinary ``limit``."""
    orders = tuple((name, _flip(d)) for name, d in query.effective_orders())

    def swap(c: Cursor | None) -> Cursor | None:
        return None if c is None else Cursor(c.values, c.document, not c.before)

    return Query(
        query.collection,
        filters=query.filters,
        orders=orders,
        limit_count=query.limit_count,
        from_last=False,
        start=swap(query.end),
        end=swap(query.start),
        all_descendants=query.all_descendants,
        scope=query.scope,
    )


def _reference(client: firestore.Client, query: Query, value: Any) -> Any:
    """A ``__name__`` value as a document reference."""
    if isinstance(value, DocumentSnapshot):
        return client.document(value.path)
    if isinstance(value, str):
        if "/" in value:
            return client.document(value)
        if query.all_descendants:
            raise InvalidQuery(
                f"collection group {query.collection!r}: a __name__ value must be a full "
                f"document path, got {value!r}"
            )
        return client.collection(query.collection).document(value)
    return value


def build(client: firestore.Client, query: Query) -> Any:
    """The library query for ``query`` (``limit_to_last`` already reversed)."""
    if query.from_last:
        query = reversed_for_last(query)
    lq: Any
    if query.all_descendants:
        if query.scope:
            lq = CollectionGroup(client.document(query.scope).collection(query.collection))
        else:
            lq = client.collection_group(query.collection)
    else:
        lq = client.collection(query.collection)
    for f in query.filters:
        value = f.value
        if f.field == DOCUMENT_ID:
            if isinstance(value, list):
                value = [_reference(client, query, v) for v in value]
            else:
                value = _reference(client, query, value)
        lq = lq.where(filter=LibFieldFilter(f.field, _LIB_OPS.get(f.op, f.op), value))
    for name, direction in query.orders:
        lq = lq.order_by(name, direction=direction)
    for cursor, is_start in ((query.start, True), (query.end, False)):
        if cursor is None:
            continue
        bound: Any
        if cursor.document is not None:
            bound = to_lib_snapshot(client, cursor.document)
        else:
            names = [n for n, _ in query.orders]
            bound = [
                _reference(client, query, v)
                if i < len(names) and names[i] == DOCUMENT_ID
                else to_lib_data(v)
                for i, v in enumerate(cursor.values)
            ]
        if is_start:
            lq = lq.start_at(bound) if cursor.before else lq.start_after(bound)
        else:
            lq = lq.end_before(bound) if cursor.before else lq.end_at(bound)
    if query.limit_count is not None:
        lq = lq.limit(query.limit_count)
    if isinstance(lq, CollectionReference):
        lq = lq._query()  # a plain Query, so that listeners can carry our comparator
    return lq


def comparator(query: Query) -> Callable[[LibSnapshot, LibSnapshot], int]:
    """A ``cmp`` function ordering library snapshots as ``query`` orders them
    (explicit orders, implicit inequality field, then document name)."""
    orders = query.effective_orders()

    def value(snap: LibSnapshot, name: str) -> Any:
        try:
            return fs_helpers.encode_value(snap.get(name))
        except KeyError:
            return fs_helpers.encode_value(None)

    def cmp(a: LibSnapshot, b: LibSnapshot) -> int:
        for name, direction in orders:
            if name == DOCUMENT_ID:
                pa, pb = tuple(a.reference._path), tuple(b.reference._path)
                c = (pa > pb) - (pa < pb)
            else:
                c = Order.compare(value(a, name), value(b, name))
            if c:
                return c if direction == ASCENDING else -c
        return 0

    return cmp


def sort_key(query: Query) -> Callable[[LibSnapshot], Any]:
    """A ``key=`` function for ``sorted`` in ``query``'s order."""
    if query.effective_orders() == [(DOCUMENT_ID, ASCENDING)]:
        return _name_key  # the common case (a plain collection watch): no Python comparator
    return functools.cmp_to_key(comparator(query))


def _name_key(snap: LibSnapshot) -> tuple[str, ...]:
    return tuple(snap.reference._path)
