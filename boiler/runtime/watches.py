"""Which collection listener ("watch") covers which document or query.

The engine multiplexes: ONE listener per watched collection, whatever the
number of views. A top-level collection ``tickets`` is watched with
``Query("tickets")``; a nested collection (``users/u1/sessions``) with a
collection-group listener on its id (``Query("sessions", all_descendants=True)``),
which owns only nested documents, so 10,000 per-user collections still cost
one watch.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ..database.base import DocumentSnapshot
from ..database.query import Query

__all__ = [
    "in_scope",
    "matches",
    "owns",
    "run",
    "watch_key_for_collection",
    "watch_key_for_document",
    "watch_keys_for_query",
]


@lru_cache(maxsize=4096)
def watch_key_for_collection(collection: str) -> Query:
    """The watch covering documents of the collection at path ``collection``."""
    if "/" not in collection:
        return Query(collection)
    return Query(collection.rsplit("/", 1)[1], all_descendants=True)


def watch_key_for_document(path: str) -> Query:
    return watch_key_for_collection(path.rsplit("/", 1)[0])


def watch_keys_for_query(query: Query) -> frozenset[Query]:
    """The watches whose documents can appear in ``query``'s result."""
    if not query.all_descendants:
        return frozenset([watch_key_for_collection(query.collection)])
    keys = {Query(query.collection, all_descendants=True)}
    if not query.scope:
        keys.add(Query(query.collection))
    return frozenset(keys)


def owns(key: Query, path: str) -> bool:
    """Whether documents at ``path`` are tracked through watch ``key``."""
    return watch_key_for_document(path) == key


def in_scope(query: Query, path: str) -> bool:
    """Whether a document at ``path`` lies in ``query``'s collection (or group)."""
    from ..database.evaluate import in_scope as _in_scope

    return _in_scope(query, path)


def run(query: Query, snapshots: Iterable[DocumentSnapshot]) -> list[DocumentSnapshot]:
    """``query`` evaluated in-process over ``snapshots`` (out-of-scope ones ignored)."""
    from ..database.evaluate import run_query

    return list(run_query(query, snapshots))


def matches(query: Query, snapshot: DocumentSnapshot | None) -> bool:
    """Whether ``snapshot`` belongs to ``query``'s result, limits aside."""
    from ..database.evaluate import match_key

    return snapshot is not None and match_key(query, snapshot) is not None
