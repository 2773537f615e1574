"""The Store: the domain snapshots one build reads, with its dependencies.

A view model (or any ``compute`` function run by the engine) reads domain
documents only through a :class:`Store`. The store serves every path at most
once per build (repeated reads return the same snapshot: one consistent value)
and records what was read, so the runtime knows exactly which documents and
queries the result depends on::

    with db.transaction(read_only=True) as tx:
        store = Store(tx)
        meeting = store.get("meetings/m1")
        tickets = store.get_all(meeting.get("tickets", []))
    store.dependencies.documents  # {"meetings/m1": <update_time>, "tickets/t1": ...}

The store builds no domain objects: callers do (``Model.from_snapshot(snap)``).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from .database import paths
from .database.base import DocumentSnapshot
from .database.query import Query
from .model_cache import ModelCache

__all__ = ["Dependencies", "Reader", "Store"]


class Reader(Protocol):
    """What a store reads from: a ``Transaction`` or a ``Database``."""

    def get_all(self, paths: Sequence[str]) -> list[DocumentSnapshot]: ...

    def query(self, query: Query) -> list[DocumentSnapshot]: ...


def _frozen(mapping: Mapping[str, _dt.datetime | None]) -> Mapping[str, _dt.datetime | None]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Dependencies:
    """What one build read.

    ``documents``: path -> ``update_time`` seen (None: the document was missing).
    ``queries``: query -> {result path: ``update_time`` seen}.
    """

    documents: Mapping[str, _dt.datetime | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    queries: Mapping[Query, Mapping[str, _dt.datetime]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dependencies):
            return NotImplemented
        return dict(self.documents) == dict(other.documents) and {
            q: dict(r) for q, r in self.queries.items()
        } == {q: dict(r) for q, r in other.queries.items()}

    def __hash__(self) -> int:
        return hash((frozenset(self.documents.items()), frozenset(self.queries)))

    @property
    def paths(self) -> frozenset[str]:
        """Every document path read directly or as a query result."""
        found = set(self.documents)
        for result in self.queries.values():
            found.update(result)
        return frozenset(found)


class Store:
    """Reads domain snapshots for ONE build and records its dependencies.

    ``reader`` has ``get_all(paths)`` and ``query(q)`` (a read-only
    ``Transaction`` for a consistent build, or a ``Database``). ``prefetched``
    snapshots (read at the same point) are served without a round trip; they
    become dependencies only when the build actually reads them. ``models``:
    a :class:`~boiler.model_cache.ModelCache` view models load domain objects
    through (the engine shares one between builds). ``version``: the point the
    prefetched snapshots hold at, when known better than their read times.
    """

    def __init__(
        self,
        reader: Reader,
        *,
        prefetched: Mapping[str, DocumentSnapshot] | None = None,
        models: ModelCache | None = None,
        version: _dt.datetime | None = None,
    ) -> None:
        self._reader = reader
        self.models = models
        self._cache: dict[str, DocumentSnapshot] = dict(prefetched or {})
        self._documents: dict[str, _dt.datetime | None] = {}
        self._queries: dict[Query, dict[str, _dt.datetime]] = {}
        self._query_results: dict[Query, list[DocumentSnapshot]] = {}
        self._version: _dt.datetime | None = version
        self.round_trips = 0
        for snap in self._cache.values():
            self._see(snap)

    # -- reads ----------------------------------------------------------------
    def get(self, path: str) -> DocumentSnapshot:
        """The snapshot at ``path`` (``exists`` False if missing)."""
        return self.get_all([path])[0]

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        """Snapshots for ``paths_`` in order; misses are read in one round trip."""
        if isinstance(paths_, str):
            raise TypeError("get_all() takes a sequence of paths, not a single string")
        cache = self._cache
        wanted = [p if p in cache else paths.document_path(p) for p in paths_]  # known: valid
        misses = list(dict.fromkeys(p for p in wanted if p not in cache))
        if misses:
            self.round_trips += 1
            for snap in self._reader.get_all(misses):
                self._cache[snap.path] = snap
                self._see(snap)
        result = [self._cache[p] for p in wanted]
        for snap in result:
            self._documents[snap.path] = snap.update_time if snap.exists else None
        return result

    def query(self, query: Query) -> list[DocumentSnapshot]:
        """The result of ``query``; repeated runs in one build return the same list."""
        if not isinstance(query, Query):
            raise TypeError(f"query() takes a Query, got {type(query).__name__}")
        cached = self._query_results.get(query)
        if cached is None:
            self.round_trips += 1
            cached = list(self._reader.query(query))
            self._query_results[query] = cached
            self._queries[query] = {s.path: s.update_time for s in cached if s.update_time}
            for snap in cached:
                self._see(snap)
                self._cache.setdefault(snap.path, snap)
        return list(cached)

    # -- what was read ----------------------------------------------------------
    @property
    def dependencies(self) -> Dependencies:
        """A frozen record of every document and query read so far."""
        return Dependencies(
            documents=_frozen(self._documents),
            queries=MappingProxyType(
                {q: MappingProxyType(dict(r)) for q, r in self._queries.items()}
            ),
        )

    @property
    def version(self) -> _dt.datetime | None:
        """The read point of this build (the snapshots' ``read_time``), if known."""
        return self._version

    def _see(self, snap: DocumentSnapshot) -> None:
        if snap.read_time is not None and (self._version is None or snap.read_time > self._version):
            self._version = snap.read_time
