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

With ``document_watches`` (a database offering ``watch_documents``: Firestore),
document dependencies are watched one by one on a single Listen stream instead
of through their collection's watch (queries still use collection watches):
a change then costs one message, not one per document of the collection.

A collection watch that stops for good (see :mod:`.revive`) is subscribed
again by :meth:`DependencyIndex.revive` after a backoff; until its new initial
snapshot arrives the watch counts as awaiting it, and that snapshot then
rebuilds the views depending on it as a first one does.
"""

from __future__ import annotations

import datetime as _dt
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..database.base import Database, DocumentSnapshot, ListenEvent, Watch
from ..database.query import Query
from ..store import Dependencies
from . import watches as W
from .errors import ErrorLog
from .revive import retry_at, stopped

__all__ = ["DependencyIndex"]

EventSink = Callable[[Any, int, Any], None]

#: The event key of the document watch (its events are lists of snapshots).
DOCUMENTS = "documents"

#: How long a document no view reads any more stays watched (document-watch mode).
IDLE_DOCUMENT_SECONDS = 60.0


@dataclass
class _WatchState:
    key: Query
    generation: int
    watch: Watch | None = None
    docs: dict[str, DocumentSnapshot] = field(default_factory=dict)
    read_time: _dt.datetime | None = None  # None until the initial snapshot
    revision: int = 0
    views: set[Hashable] = field(default_factory=set)
    failures: int = 0  # stopped (or failed to subscribe) in a row
    retry_at: float | None = None  # stopped: when to subscribe again


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

    def __init__(
        self,
        db: Database,
        on_event: EventSink,
        errors: ErrorLog,
        *,
        document_watches: bool = False,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        if document_watches and not hasattr(db, "watch_documents"):
            raise ValueError(f"the {db.backend_name} backend has no document watches")
        self._db = db
        self._doc_mode = document_watches
        self._docwatch: Any = None
        # doc mode: the latest delivered state of each watched document
        # (exists False: missing), its read_time the delivery's.
        self._doc_state: dict[str, DocumentSnapshot] = {}
        self._doc_watched: set[str] = set()
        self._doc_idle: dict[str, float] = {}  # watched, read by no view: since when
        self._doc_read_time: _dt.datetime | None = None  # of the last delivery
        self._docwatch_gen = 0
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
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.closed = False

    # -- introspection ------------------------------------------------------------
    @property
    def watch_count(self) -> int:
        """Listener streams: one per watched collection, plus the document watch."""
        with self._lock:
            return len(self._watches) + (self._docwatch is not None)

    @property
    def document_targets(self) -> int:
        """Documents watched one by one (document-watch mode)."""
        with self._lock:
            return len(self._doc_watched)

    def consistent_states(
        self, paths: list[str]
    ) -> tuple[dict[str, DocumentSnapshot], _dt.datetime | None]:
        """Document-watch mode: the delivered states of ``paths`` and the read
        time at which ALL of them hold together (None if any is not known yet).

        Each delivery is a consistent point of the one stream; a state stays
        valid until its next delivery, so after processing the delivery at
        ``R`` every known state holds at ``R``.
        """
        with self._lock:
            rt = self._doc_read_time
            if not self._doc_mode or rt is None or self._docwatch is None:
                return {}, None
            if not self._docwatch.all_current(paths):
                return {}, None  # some state is not known to hold at rt (reset, resync)
            found = {}
            for path in paths:
                snap = self._doc_state.get(path)
                if snap is None:
                    return {}, None
                found[path] = snap
            return found, rt

    def states_at(self, paths: Iterable[str], at: _dt.datetime) -> dict[str, DocumentSnapshot]:
        """Document-watch mode: the delivered states among ``paths`` that hold
        at exactly ``at`` (empty unless ``at`` is the last processed point and
        the states found are current). Lets a build pinned at ``at`` read a
        document it did not read last time without a round trip."""
        with self._lock:
            if not self._doc_mode or self._docwatch is None or self._doc_read_time != at:
                return {}
            found = {p: s for p in paths if (s := self._doc_state.get(p)) is not None}
            if not found or not self._docwatch.all_current(found):
                return {}
            return found

    def watched_documents(self) -> frozenset[str]:
        """Documents watched one by one because views read them (document-watch
        mode; empty otherwise). Documents no view reads any more stay watched
        a while longer (:attr:`document_targets` counts them)."""
        with self._lock:
            return frozenset(p for p in self._doc_watched if p not in self._doc_idle)

    @property
    def document_mode(self) -> bool:
        return self._doc_mode

    def latest(self, path: str) -> DocumentSnapshot | None:
        """The newest state of ``path`` the watches reported (None if unknown/missing)."""
        with self._lock:
            if self._doc_mode:
                snap = self._doc_state.get(path)
                return snap if snap is not None and snap.exists else None
            state = self._watches.get(W.watch_key_for_document(path))
            return None if state is None else state.docs.get(path)

    def awaiting_initial(self) -> int:
        """Watches (or watched documents) whose initial state is not processed yet."""
        with self._lock:
            waiting = sum(1 for s in self._watches.values() if s.read_time is None)
            if self._docwatch is not None:
                waiting += self._docwatch.undelivered
            return waiting

    def watched(self) -> list[Query]:
        with self._lock:
            return list(self._watches)

    @property
    def watches_down(self) -> int:
        """Collection watches that stopped for good and wait to be subscribed again."""
        with self._lock:
            return sum(1 for s in self._watches.values() if s.retry_at is not None)

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
        with self._lock:
            old = self._views.get(view)
            if (
                old is not None
                and not self.closed
                and old.deps.documents.keys() == deps.documents.keys()
                and old.deps.queries.keys() == deps.queries.keys()
            ):
                # Same documents and queries as last time (the common rebuild):
                # the index entries stand; only what was seen and when changes.
                if not still_live():
                    return False
                reg = self._views[view] = _Registration(deps, version, old.watch_keys)
                return self._stale(reg, old.watch_keys, {})
        doc_keys = (
            frozenset()
            if self._doc_mode
            else frozenset(W.watch_key_for_document(p) for p in deps.documents)
        )
        keys = doc_keys | frozenset(k for q in deps.queries for k in W.watch_keys_for_query(q))
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
            retired = self._sync_documents(deps.documents, old) if self._doc_mode else None
            for query in deps.queries:
                self._query_deps.setdefault(query, set()).add(view)
                for key in W.watch_keys_for_query(query):
                    self._watch_queries.setdefault(key, set()).add(query)
            for key in keys:
                self._watches[key].views.add(view)
            released = self._drop_watches(view, old.watch_keys - keys if old else frozenset())
            stale = self._stale(reg, keys, {})
        self._unsubscribe_docwatch(retired)
        self._release(released)
        return stale

    def unregister(self, view: Hashable) -> None:
        """Forget ``view``; watches nobody depends on any more are released."""
        with self._lock:
            old = self._views.pop(view, None)
            if old is None:
                return
            self._unindex(view, old)
            retired = self._sync_documents((), old) if self._doc_mode else None
            released = self._drop_watches(view, old.watch_keys)
        self._unsubscribe_docwatch(retired)
        self._release(released)

    def close(self) -> None:
        """Unsubscribe every watch and forget every view."""
        with self._lock:
            self.closed = True
            docwatch, self._docwatch = self._docwatch, None
            self._doc_state.clear()
            self._doc_watched.clear()
            self._doc_idle.clear()
            released = list(self._watches.values())
            self._watches.clear()
            self._views.clear()
            self._doc_deps.clear()
            self._query_deps.clear()
            self._watch_queries.clear()
            self._exact.clear()
        if docwatch is not None:
            try:
                docwatch.unsubscribe()
            except Exception as e:
                self._errors.record("unsubscribe", e, key="document watch")
        self._release(released)

    # -- events -------------------------------------------------------------------------
    def process_event(
        self, key: Any, generation: int, event: Any
    ) -> tuple[set[Hashable], set[Hashable]]:
        """Apply one listener event; return the views it made dirty and, for a
        watch's initial snapshot, every view depending on that watch."""
        if key == DOCUMENTS:
            return self._process_documents(generation, event), set()
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
                state.failures = 0
                only = frozenset([key])
                memo: dict[Query, dict[str, Any] | None] = {}
                dirty = {v for v in state.views if self._stale(self._views[v], only, memo)}
                return dirty, set(state.views)
            return self._dirty_from_changes(state, changed), set()

    def _process_documents(self, generation: int, snaps: list[DocumentSnapshot]) -> set[Hashable]:
        """Document-watch states (all as of one read time): the views they dirty."""
        dirty: set[Hashable] = set()
        with self._lock:
            if generation != self._docwatch_gen or self._docwatch is None:
                return dirty  # a late delivery of a released watch
            if snaps and _newer(snaps[0].read_time, self._doc_read_time):
                self._doc_read_time = snaps[0].read_time
            for snap in snaps:
                if snap.path not in self._doc_watched:
                    continue  # no longer watched
                self._doc_state[snap.path] = snap
                views = self._doc_deps.get(snap.path, ())
                now = snap.update_time if snap.exists else None
                for view in views:
                    reg = self._views[view]
                    if (
                        view not in dirty
                        and _newer(snap.read_time, reg.version)
                        and reg.deps.documents[snap.path] != now
                    ):
                        dirty.add(view)
        return dirty

    def _sync_documents(self, now: Iterable[str], old: _Registration | None) -> Any:
        """Watch the documents a view now reads (lock held).

        A document nobody reads any more stays watched for a while
        (``IDLE_DOCUMENT_SECONDS``): views often drop and re-read the same
        documents (an attendee leaving and coming back), and adding and
        removing targets on a busy stream is what the emulator handles worst.
        Returns a document watch to unsubscribe once the lock is released
        (no view reads any document), else None.
        """
        new = [p for p in now if p not in self._doc_watched]
        for path in now:
            self._doc_idle.pop(path, None)
        if new:
            self._watch_documents(new)
            self._doc_watched.update(new)
        if old:
            stamp = time.monotonic()
            for path in old.deps.documents:
                if path not in self._doc_deps and path in self._doc_watched:
                    self._doc_idle.setdefault(path, stamp)
        if not self._doc_deps and self._docwatch is not None:
            # nothing left to watch: release the stream and its thread
            retired, self._docwatch = self._docwatch, None
            self._docwatch_gen += 1  # its late deliveries are ignored
            self._doc_watched.clear()
            self._doc_idle.clear()
            self._doc_state.clear()
            self._doc_read_time = None  # a new stream's points start afresh
            return retired
        self._expire_idle_documents()
        return None

    def _expire_idle_documents(self) -> None:
        """Stop watching documents idle for long enough (lock held)."""
        if not self._doc_idle:
            return
        horizon = time.monotonic() - IDLE_DOCUMENT_SECONDS
        # Insertion order is idle-since order (a path is only ever added with
        # the current time, and removed when read again): stop at the first
        # one not expired, so this costs O(expired), not O(idle documents).
        expired = []
        for path, since in self._doc_idle.items():
            if since > horizon:
                break
            expired.append(path)
        if not expired:
            return
        for path in expired:
            del self._doc_idle[path]
            self._doc_watched.discard(path)
            self._doc_state.pop(path, None)
        self._docwatch.remove(expired)

    def _watch_documents(self, paths: list[str]) -> None:
        """Start watching ``paths`` one by one (lock held)."""
        if self._docwatch is None:
            on_event = self._on_event
            self._docwatch_gen += 1
            gen = self._docwatch_gen

            def callback(snaps: list[DocumentSnapshot], read_time: Any) -> None:
                on_event(DOCUMENTS, gen, snaps)  # the stream's own thread

            self._docwatch = self._db.watch_documents(callback)  # type: ignore[attr-defined]
        self._docwatch.add(paths)

    def _unsubscribe_docwatch(self, watch: Any) -> None:
        """Release a retired document watch (lock NOT held: it joins its thread,
        which may be waiting for the lock to hand over a delivery)."""
        if watch is None:
            return
        try:
            watch.unsubscribe()
        except Exception as e:
            self._errors.record("unsubscribe", e, key="document watch")

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
            if self._doc_mode:
                snap = self._doc_state.get(path)
                if snap is not None and _newer(snap.read_time, reg.version):
                    if (snap.update_time if snap.exists else None) != seen:
                        return True
                continue
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
        state = _WatchState(key=key, generation=0)
        self._watches[key] = state
        self._listen(state)
        return state

    def _listen(self, state: _WatchState) -> None:
        """Subscribe ``state``'s watch under a new generation (lock held)."""
        self._generation += 1
        state.generation = generation = self._generation
        on_event, key = self._on_event, state.key

        def callback(event: ListenEvent) -> None:  # listener thread: only enqueue
            on_event(key, generation, event)

        state.watch = self._db.listen_query(key, callback)

    def revive(self, now: float) -> None:
        """Subscribe again, after a backoff, the collection watches that stopped
        for good. Until its new initial snapshot, a watch awaits it (its query
        results count as unknown); that snapshot then dirties and confirms
        the views depending on it like a first one."""
        dead: list[tuple[Query, Watch]] = []
        with self._lock:
            if self.closed:
                return
            for state in self._watches.values():
                if state.retry_at is None:
                    if not stopped(state.watch):
                        continue
                    if state.watch is not None:
                        dead.append((state.key, state.watch))
                    state.watch = None
                    state.read_time = None  # awaiting a new initial snapshot
                    state.generation = 0  # a late event of the dead watch is ignored
                    self._retry(state, now, "stopped")
                elif now >= state.retry_at:
                    try:
                        self._listen(state)
                        state.retry_at = None
                    except Exception as e:
                        self._errors.record("listen", e, key=state.key.describe())
                        self._retry(state, now, "could not be subscribed again")
        for key, watch in dead:  # release what is left of them
            try:
                watch.unsubscribe()
            except Exception as e:
                self._errors.record("unsubscribe", e, key=key.describe())

    def _retry(self, state: _WatchState, now: float, what: str) -> None:
        """Schedule ``state``'s next subscription (lock held)."""
        state.failures += 1
        state.retry_at = retry_at(
            now, state.failures, state.key, what, self.retry_base, self.retry_max
        )

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
