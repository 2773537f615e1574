"""The dependency index: watched collections -> live views, and dirtiness.

Every live view registers the :class:`~boiler.store.Dependencies` of its last
build and the read point (``version``) of that build. Listener events update
the latest known state of each watched collection; a view is dirty exactly when
a watch state *newer than its read point* differs from what it saw:

- a document dependency: the ``update_time`` (or existence) differs;
- a query dependency: the query, evaluated in-process over the watch state,
  yields different paths / ``update_time`` values.

States at or before a view's read point are ignored: the build already saw
them (a watch's initial snapshot of what was just read does not rebuild).
Registration re-checks against the latest states, so a change that raced a
build is never lost. All of it happens under one lock, in memory.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from ..database.base import Database, DocumentSnapshot, ListenEvent, Watch
from ..database.query import Query
from ..store import Dependencies
from . import watches as W
from .errors import ErrorLog

__all__ = ["DependencyIndex"]

EventSink = Callable[[Query, int, ListenEvent], None]


@dataclass
class _WatchState:
    key: Query
    generation: int
    watch: Watch | None = None
    docs: dict[str, DocumentSnapshot] = field(default_factory=dict)
    read_time: _dt.datetime | None = None  # None until the initial snapshot
    revision: int = 0
    views: set[Hashable] = field(default_factory=set)


@dataclass
class _Registration:
    deps: Dependencies
    version: _dt.datetime | None
    watch_keys: frozenset[Query]


class DependencyIndex:
    """Maps watched documents and queries to the live views depending on them.

    ``on_event`` is what each listener callback calls (it must only enqueue);
    the engine later hands the event to :meth:`process_event`.
    """

    def __init__(self, db: Database, on_event: EventSink, errors: ErrorLog) -> None:
        self._db = db
        self._errors = errors
        self._on_event = on_event
        self._lock = threading.RLock()
        self._watches: dict[Query, _WatchState] = {}
        self._views: dict[Hashable, _Registration] = {}
        self._doc_deps: dict[str, set[Hashable]] = {}
        self._query_deps: dict[Query, set[Hashable]] = {}
        self._watch_queries: dict[Query, set[Query]] = {}
        self._exact: dict[Query, tuple[tuple[int, ...], dict[str, Any]]] = {}
        self._generation = 0
        self.closed = False

    # -- introspection ------------------------------------------------------------
    @property
    def watch_count(self) -> int:
        with self._lock:
            return len(self._watches)

    def latest(self, path: str) -> DocumentSnapshot | None:
        """The newest state of ``path`` the watches reported (None if unknown/missing)."""
        with self._lock:
            state = self._watches.get(W.watch_key_for_document(path))
            return None if state is None else state.docs.get(path)

    def awaiting_initial(self) -> int:
        """Watches whose initial snapshot has not been processed yet."""
        with self._lock:
            return sum(1 for s in self._watches.values() if s.read_time is None)

    def watched(self) -> list[Query]:
        with self._lock:
            return list(self._watches)

    # -- registration ---------------------------------------------------------------
    def register(
        self,
        view: Hashable,
        deps: Dependencies,
        version: _dt.datetime | None,
        *,
        still_live: Callable[[], bool] = lambda: True,
    ) -> bool:
        """Record ``view``'s dependencies; True if it is already stale (rebuild)."""
        keys = frozenset(W.watch_key_for_document(p) for p in deps.documents) | frozenset(
            k for q in deps.queries for k in W.watch_keys_for_query(q)
        )
        with self._lock:
            if self.closed or not still_live():
                return False
            created: list[_WatchState] = []
            try:
                for key in keys:
                    if key not in self._watches:
                        created.append(self._subscribe(key))
            except BaseException:
                for state in created:
                    self._watches.pop(state.key, None)
                self._release([s for s in created if s.watch is not None])
                raise
            old = self._views.get(view)
            self._unindex(view, old)
            reg = _Registration(deps, version, keys)
            self._views[view] = reg
            for path in deps.documents:
                self._doc_deps.setdefault(path, set()).add(view)
            for query in deps.queries:
                self._query_deps.setdefault(query, set()).add(view)
                for key in W.watch_keys_for_query(query):
                    self._watch_queries.setdefault(key, set()).add(query)
            for key in keys:
                self._watches[key].views.add(view)
            released = self._drop_watches(view, old.watch_keys - keys if old else frozenset())
            stale = self._stale(reg, keys, {})
        self._release(released)
        return stale

    def unregister(self, view: Hashable) -> None:
        """Forget ``view``; watches nobody depends on any more are released."""
        with self._lock:
            old = self._views.pop(view, None)
            if old is None:
                return
            self._unindex(view, old)
            released = self._drop_watches(view, old.watch_keys)
        self._release(released)

    def close(self) -> None:
        """Unsubscribe every watch and forget every view."""
        with self._lock:
            self.closed = True
            released = list(self._watches.values())
            self._watches.clear()
            self._views.clear()
            self._doc_deps.clear()
            self._query_deps.clear()
            self._watch_queries.clear()
            self._exact.clear()
        self._release(released)

    # -- events -------------------------------------------------------------------------
    def process_event(
        self, key: Query, generation: int, event: ListenEvent
    ) -> tuple[set[Hashable], set[Hashable]]:
        """Apply one listener event; return the views it made dirty and, for a
        watch's initial snapshot, every view depending on that watch."""
        with self._lock:
            state = self._watches.get(key)
            if state is None or state.generation != generation:
                return set(), set()  # a late event of a released watch
            initial = state.read_time is None
            changed: list[str] = []
            if initial:
                state.docs = {d.path: d for d in event.docs if d.exists and W.owns(key, d.path)}
            else:
                for change in event.changes:
                    doc = change.document
                    if not W.owns(key, doc.path):
                        continue
                    if change.type == "removed" or not doc.exists:
                        state.docs.pop(doc.path, None)
                    else:
                        state.docs[doc.path] = doc
                    changed.append(doc.path)
            state.read_time = event.read_time
            state.revision += 1
            if initial:
                only = frozenset([key])
                memo: dict[Query, dict[str, Any] | None] = {}
                dirty = {v for v in state.views if self._stale(self._views[v], only, memo)}
                return dirty, set(state.views)
            return self._dirty_from_changes(state, changed), set()

    def _dirty_from_changes(self, state: _WatchState, changed: list[str]) -> set[Hashable]:
        dirty: set[Hashable] = set()
        rt = state.read_time
        for path in changed:
            current = state.docs.get(path)
            now = current.update_time if current is not None else None
            for view in self._doc_deps.get(path, ()):
                reg = self._views[view]
                if (
                    view not in dirty
                    and _newer(rt, reg.version)
                    and reg.deps.documents[path] != now
                ):
                    dirty.add(view)
        memo: dict[Query, dict[str, Any] | None] = {}
        for query in self._watch_queries.get(state.key, ()):
            relevant = [p for p in changed if W.in_scope(query, p)]
            if not relevant:
                continue
            match = {p: W.matches(query, state.docs.get(p)) for p in relevant}
            for view in self._query_deps.get(query, ()):
                reg = self._views[view]
                if view in dirty or not _newer(rt, reg.version):
                    continue
                seen = reg.deps.queries[query]
                if query.limit_count is not None:
                    result = self._evaluate(query, memo)
                    if result is not None and result != dict(seen):
                        dirty.add(view)
                    continue
                for p in relevant:
                    doc = state.docs.get(p)
                    if match[p] != (p in seen) or (
                        match[p] and doc is not None and doc.update_time != seen[p]
                    ):
                        dirty.add(view)
                        break
        return dirty

    # -- internals -------------------------------------------------------------------------
    def _stale(
        self,
        reg: _Registration,
        keys: frozenset[Query],
        memo: dict[Query, dict[str, Any] | None],
    ) -> bool:
        """Whether watch states newer than ``reg.version`` differ from what it saw."""
        for path, seen in reg.deps.documents.items():
            state = self._watches.get(W.watch_key_for_document(path))
            if state is None or state.key not in keys or not _newer(state.read_time, reg.version):
                continue
            current = state.docs.get(path)
            if (current.update_time if current is not None else None) != seen:
                return True
        for query, seen_result in reg.deps.queries.items():
            qkeys = W.watch_keys_for_query(query)
            if not (qkeys & keys):
                continue
            states = [self._watches.get(k) for k in qkeys]
            if not any(s is not None and _newer(s.read_time, reg.version) for s in states):
                continue
            result = self._evaluate(query, memo)
            if result is not None and result != dict(seen_result):
                return True
        return False

    def _evaluate(
        self, query: Query, memo: dict[Query, dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """``query``'s result over the watch states (None if a state is not known yet)."""
        if query in memo:
            return memo[query]
        states = [self._watches.get(k) for k in sorted(W.watch_keys_for_query(query), key=repr)]
        if any(s is None or s.read_time is None for s in states):
            memo[query] = None
            return None
        revisions = tuple(s.revision for s in states if s is not None)
        cached = self._exact.get(query)
        if cached is not None and cached[0] == revisions:
            memo[query] = cached[1]
            return cached[1]
        docs = [d for s in states if s is not None for d in s.docs.values()]
        result = {s.path: s.update_time for s in W.run(query, docs)}
        self._exact[query] = (revisions, result)
        memo[query] = result
        return result

    def _subscribe(self, key: Query) -> _WatchState:
        self._generation += 1
        state = _WatchState(key=key, generation=self._generation)
        self._watches[key] = state
        on_event = self._on_event
        generation = state.generation

        def callback(event: ListenEvent) -> None:  # listener thread: only enqueue
            on_event(key, generation, event)

        state.watch = self._db.listen_query(key, callback)
        return state

    def _unindex(self, view: Hashable, reg: _Registration | None) -> None:
        if reg is None:
            return
        for path in reg.deps.documents:
            views = self._doc_deps.get(path)
            if views is not None:
                views.discard(view)
                if not views:
                    del self._doc_deps[path]
        for query in reg.deps.queries:
            views = self._query_deps.get(query)
            if views is not None:
                views.discard(view)
                if not views:
                    del self._query_deps[query]
                    self._exact.pop(query, None)
                    for key in W.watch_keys_for_query(query):
                        queries = self._watch_queries.get(key)
                        if queries is not None:
                            queries.discard(query)
                            if not queries:
                                del self._watch_queries[key]

    def _drop_watches(self, view: Hashable, keys: frozenset[Query]) -> list[_WatchState]:
        released = []
        for key in keys:
            state = self._watches.get(key)
            if state is None:
                continue
            state.views.discard(view)
            if not state.views:
                del self._watches[key]
                released.append(state)
        return released

    def _release(self, states: list[_WatchState]) -> None:
        for state in states:
            watch, state.watch = state.watch, None
            if watch is None:
                continue
            try:
                watch.unsubscribe()
            except Exception as e:  # keep releasing the others
                self._errors.record("unsubscribe", e, key=state.key.describe())


def _newer(state_time: _dt.datetime | None, version: _dt.datetime | None) -> bool:
    """Whether a watch state read at ``state_time`` may hold news for a build at ``version``."""
    if state_time is None:
        return False
    return version is None or state_time > version
