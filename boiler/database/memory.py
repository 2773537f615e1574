"""The embedded database: boiler's default backend, in-process and durable.

Every document lives in an in-memory index (fast reads and queries); a SQLite
file (``path``) is the durable copy, loaded on open and written in the same
critical section as each commit. ``":memory:"`` keeps no file.

One process per file: the store takes an exclusive lock on ``<path>.lock``
for its lifetime (:class:`~boiler.exceptions.DatabaseLocked` if another store,
in this process or another, has the file open). ``read_only=True`` loads a
snapshot of a file without the lock and refuses writes. A store opened before
``fork()`` is closed in the child (the parent keeps the file).

Concurrency: one write lock serializes commits and gives them strictly
increasing commit times. Single-document reads are lock-free. Transactions
read a snapshot (multi-version: a document keeps, besides its latest version,
the versions some open transaction's snapshot sees, and no others), so reads
inside one transaction are consistent; read-write transactions are validated
optimistically at commit (any document or query result read since changed:
:class:`TransactionConflict`, nothing written). Listener events are computed
at commit, under the lock, and delivered in commit order by one dispatcher
thread, outside the lock.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..exceptions import ConfigurationError, DatabaseClosed, DatabaseLocked
from . import paths
from ._codec import from_micros
from ._listeners import (
    Dispatcher,
    DocumentListener,
    Listener,
    QueryListener,
    log_listener_error,
)
from ._records import (
    PreconditionExists,
    PreconditionNotFound,
    Rec,
    apply_write,
    copy_snap,
    export,
    rows,
    update_time,
    visible,
)
from ._sqlite import SqliteFile, check_durability
from ._transaction import EmbeddedBatch, EmbeddedTransaction
from ._writes import copy_value, prepare
from .base import (
    Database,
    DocumentSnapshot,
    ListenCallback,
    ListenEvent,
    Precondition,
    Transaction,
    Watch,
    WriteBatch,
    WriteResult,
    _Write,
)
from .evaluate import check_query, in_scope, match_key, run_query
from .query import Query

__all__ = ["EmbeddedDatabase", "PreconditionExists", "PreconditionNotFound"]

MAX_LISTENER_ERRORS = 100
#: Documents with old versions (or deletions) kept for open snapshots are
#: re-examined once there are this many, or twice as many as the last time
#: (amortized: no commit walks every document).
SWEEP_MIN = 1024


class EmbeddedDatabase(Database):
    """In-process document database, durable in the SQLite file ``path``.

    ``durability``: ``"normal"`` (default; a killed process loses nothing, a
    power loss or OS crash may lose the last commits) or ``"full"`` (an fsync
    per commit: nothing committed is lost). ``read_only``: a snapshot of the
    file as of opening, without taking it (another process may hold it);
    writes raise :class:`~boiler.exceptions.DatabaseLocked`.
    """

    backend_name = "embedded"

    def __init__(
        self, path: str = ":memory:", *, read_only: bool = False, durability: str = "normal"
    ) -> None:
        check_durability(durability)
        if read_only and path == ":memory:":
            raise ConfigurationError("read_only=True needs a database file, not ':memory:'")
        self.path = path
        self.read_only = read_only
        self.durability = durability
        self._lock = threading.Lock()
        self._docs: dict[str, Rec] = {}
        self._collections: dict[str, dict[str, None]] = {}
        self._groups: dict[str, set[str]] = {}
        self._doc_listeners: dict[str, list[DocumentListener]] = {}
        self._coll_listeners: dict[str, list[QueryListener]] = {}
        self._group_listeners: dict[str, list[QueryListener]] = {}
        # Open snapshots: their distinct read times (ascending) and how many at each.
        self._snap_times: list[int] = []
        self._snap_counts: dict[int, int] = {}
        # Documents holding older versions or a deletion for open snapshots.
        self._retained: set[str] = set()
        self._sweep_at = SWEEP_MIN
        self._last_us = 0
        self._closed = False
        self._closed_reason: str | None = None
        #: Exceptions raised by listener callbacks (most recent last, bounded).
        self.listener_errors: list[BaseException] = []
        self._dispatcher = Dispatcher(self._on_listener_error)
        self._file: SqliteFile | None = None
        self._pid = os.getpid()
        if path != ":memory:":
            file = SqliteFile(path, read_only=read_only, durability=durability)
            try:
                self._load(file)
            except BaseException:
                file.close()
                raise
            if read_only:
                file.close()  # a snapshot: nothing more to read
            else:
                self._file = file
                _close_in_forked_children(self)

    def __repr__(self) -> str:
        if self.read_only:
            return f"EmbeddedDatabase({self.path!r}, read_only=True)"
        return f"EmbeddedDatabase({self.path!r})"

    def _load(self, file: SqliteFile) -> None:
        last = file.last_commit()
        for path, data, create_us, update_us in file.load():
            snap = DocumentSnapshot(path, data, from_micros(create_us), from_micros(update_us))
            self._docs[path] = Rec(snap, update_us, None)
            self._index_add(path)
            last = max(last, update_us)
        self._last_us = last

    # -- internals: clock, indexes, snapshots ------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise DatabaseClosed(self._closed_reason or f"{self!r} is closed")

    def _now_us(self) -> int:
        now = time.time_ns() // 1000
        return now if now > self._last_us else self._last_us

    def _next_commit_us(self) -> int:
        now = time.time_ns() // 1000
        us = now if now > self._last_us else self._last_us + 1
        self._last_us = us
        return us

    def _index_add(self, path: str) -> None:
        coll = path.rpartition("/")[0]
        docs = self._collections.get(coll)
        if docs is None:
            docs = self._collections[coll] = {}
            self._groups.setdefault(coll.rpartition("/")[2], set()).add(coll)
        docs[path] = None

    def _index_remove(self, path: str) -> None:
        del self._docs[path]
        coll = path.rpartition("/")[0]
        docs = self._collections[coll]
        del docs[path]
        if not docs:
            del self._collections[coll]
            group = self._groups[coll.rpartition("/")[2]]
            group.discard(coll)
            if not group:
                del self._groups[coll.rpartition("/")[2]]

    def _scope_recs(self, query: Query, at_us: int | None = None) -> Iterator[Rec]:
        """Visible versions of the documents in ``query``'s collection(s). Lock held."""
        if query.all_descendants:
            prefix = query.scope + "/" if query.scope else ""
            colls: Iterable[str] = [
                c for c in self._groups.get(query.collection, ()) if c.startswith(prefix)
            ]
        else:
            colls = (query.collection,)
        docs = self._docs
        for coll in colls:
            for path in self._collections.get(coll, ()):
                rec = visible(docs[path], at_us)
                if rec is not None:
                    yield rec

    def _run(self, query: Query, at_us: int | None = None) -> list[DocumentSnapshot]:
        """Internal snapshots (shared data: never hand out) matching ``query``."""
        return run_query(query, (r.snap for r in self._scope_recs(query, at_us)))

    def _read_recs(self, doc_paths: Sequence[str], at_us: int | None) -> list[Rec | None]:
        return [visible(self._docs.get(p), at_us) for p in doc_paths]

    # -- reads --------------------------------------------------------------
    def get(self, path: str) -> DocumentSnapshot:
        self._check_open()
        paths.document_path(path)
        rec = visible(self._docs.get(path), None)
        return export(path, rec, from_micros(self._now_us()))

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        self._check_open()
        doc_paths = [paths.document_path(p) for p in paths_]
        with self._lock:
            recs = self._read_recs(doc_paths, None)
            read_time = from_micros(self._now_us())
        return [export(p, r, read_time) for p, r in zip(doc_paths, recs, strict=True)]

    def query(self, query: Query) -> list[DocumentSnapshot]:
        self._check_open()
        check_query(query)
        with self._lock:
            snaps = self._run(query)
            read_time = from_micros(self._now_us())
        return [
            DocumentSnapshot(s.path, copy_value(s.data), s.create_time, s.update_time, read_time)
            for s in snaps
        ]

    def list_collections(self, document_path: str | None = None) -> list[str]:
        self._check_open()
        prefix = "" if document_path is None else paths.document_path(document_path) + "/"
        found: set[str] = set()
        with self._lock:
            for coll, docs in self._collections.items():
                if not coll.startswith(prefix) or coll[len(prefix) :].split("/")[0] in found:
                    continue
                if any(self._docs[p].snap.data is not None for p in docs):
                    found.add(coll[len(prefix) :].split("/")[0])
        return sorted(found)

    # -- writes ---------------------------------------------------------------
    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> WriteResult:
        return self._write_one("set", path, data, merge=merge)

    def create(self, path: str, data: Mapping[str, Any]) -> WriteResult:
        return self._write_one("create", path, data)

    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> WriteResult:
        return self._write_one("update", path, data, precondition=precondition)

    def delete(self, path: str, *, precondition: Precondition | None = None) -> WriteResult:
        self._check_open()
        return self._commit(
            [_Write("delete", paths.document_path(path), None, False, precondition)]
        )[0]

    def _write_one(
        self,
        kind: Any,
        path: str,
        data: Mapping[str, Any],
        *,
        merge: bool = False,
        precondition: Precondition | None = None,
    ) -> WriteResult:
        self._check_open()
        batch = EmbeddedBatch(self)
        if kind == "set":
            batch.set(path, data, merge=merge)
        elif kind == "create":
            batch.create(path, data)
        else:
            batch.update(path, data, precondition=precondition)
        return self._commit(batch._writes)[0]

    def batch(self) -> WriteBatch:
        self._check_open()
        return EmbeddedBatch(self)

    def _commit(
        self, writes: list[_Write], validate: Callable[[], None] | None = None
    ) -> list[WriteResult]:
        """Apply ``writes`` atomically: all of them (memory and disk) or none."""
        if self.read_only:
            raise DatabaseLocked(
                f"{self!r} is a read-only snapshot of the file: it cannot write (the "
                "store that opened the file without read_only=True writes it)",
                path=self.path,
            )
        prepared = [
            None if w.data is None else prepare(w.path, w.data, kind=w.kind, merge=w.merge)
            for w in writes
        ]
        with self._lock:
            self._check_open()
            if validate is not None:
                validate()
            commit_us = self._next_commit_us()
            now = from_micros(commit_us)
            staged: dict[str, DocumentSnapshot | None] = {}
            results: list[WriteResult] = []
            for write, prep in zip(writes, prepared, strict=True):
                if write.path in staged:
                    current = staged[write.path]
                else:
                    rec = visible(self._docs.get(write.path), None)
                    current = None if rec is None else rec.snap
                new = apply_write(write, prep, current, now)
                staged[write.path] = new
                results.append(WriteResult(now if new is None else update_time(new, now)))
            changes: list[tuple[str, Rec | None, DocumentSnapshot | None]] = []
            for path, new in staged.items():
                old = visible(self._docs.get(path), None)
                if new is None and old is None:
                    continue
                if new is not None and old is not None and new is old.snap:
                    continue
                changes.append((path, old, new))
            if changes:
                if self._file is not None:
                    self._file.commit(rows(changes), commit_us)
                self._install(changes, commit_us)
                self._notify(changes, now)
        return results

    def _install(
        self, changes: list[tuple[str, Rec | None, DocumentSnapshot | None]], commit_us: int
    ) -> None:
        docs = self._docs
        if not self._snap_times:  # no open snapshot: only the latest versions
            for path, _old, new in changes:
                if new is None:
                    self._index_remove(path)
                    continue
                latest = docs.get(path)
                docs[path] = Rec(new, commit_us, None)
                if latest is None:
                    self._index_add(path)
            return
        retained = self._retained
        for path, _old, new in changes:
            latest = docs.get(path)
            if new is None:  # a tombstone, while a snapshot may see the document
                new = DocumentSnapshot(path, None, None, from_micros(commit_us))
            head = Rec(new, commit_us, latest)
            self._trim(head)
            if head.prev is None and new.data is None:
                self._index_remove(path)
                retained.discard(path)
                continue
            docs[path] = head
            if latest is None:
                self._index_add(path)
            if head.prev is None:
                retained.discard(path)
            else:
                retained.add(path)
        if len(retained) >= self._sweep_at:
            self._sweep()

    def _trim(self, head: Rec) -> None:
        """Unlink the versions below ``head`` that no open snapshot sees. Lock held.

        A snapshot at time S sees the newest version with ``update_us <= S``;
        each open snapshot time keeps that one version, so a document holds at
        most one version per open snapshot besides its latest, whatever the
        number of writes. Lock-free snapshot readers may be walking the chain:
        only kept versions' ``prev`` links change, and each still leads to every
        older kept version (a reader never goes below the one it sees).
        """
        times = self._snap_times
        i = len(times) - 1
        keep = head
        while True:
            while i >= 0 and times[i] >= keep.update_us:
                i -= 1  # these snapshots see ``keep`` (or a newer kept version)
            if i < 0:
                break
            at = times[i]
            node = keep.prev
            while node is not None and node.update_us > at:
                node = node.prev  # seen by no open snapshot
            if node is not keep.prev:
                keep.prev = node
            if node is None:
                return
            keep = node
        if keep.prev is not None:
            keep.prev = None

    def _sweep(self) -> None:
        """Trim every retained document (amortized: see SWEEP_MIN). Lock held."""
        docs = self._docs
        still: set[str] = set()
        for path in self._retained:
            rec = docs.get(path)
            if rec is None:
                continue
            self._trim(rec)
            if rec.prev is not None:
                still.add(path)
            elif rec.snap.data is None:
                self._index_remove(path)
        self._retained = still
        self._sweep_at = max(SWEEP_MIN, 2 * len(still))

    # -- snapshot readers (transactions) --------------------------------------
    def _begin_snapshot(self) -> int:
        with self._lock:
            self._check_open()
            # No later commit may get a time <= the snapshot time.
            self._last_us = at_us = self._now_us()
            count = self._snap_counts.get(at_us, 0)
            if not count:
                self._snap_times.append(at_us)  # >= every open snapshot's time
            self._snap_counts[at_us] = count + 1
            return at_us

    def _end_snapshot(self, at_us: int) -> None:
        with self._lock:
            count = self._snap_counts[at_us] - 1
            if count:
                self._snap_counts[at_us] = count
                return
            del self._snap_counts[at_us]
            times = self._snap_times
            del times[bisect.bisect_left(times, at_us)]
            if not times and self._retained:
                self._sweep()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Transaction]:
        self._check_open()
        tx = EmbeddedTransaction(self, read_only)
        try:
            yield tx
        except BaseException:
            tx._finish()
            raise
        try:
            tx._commit()
        finally:
            tx._finish()

    # -- listeners ------------------------------------------------------------
    def listen_document(self, path: str, callback: ListenCallback) -> Watch:
        paths.document_path(path)
        listener = DocumentListener(path, callback)
        with self._lock:
            self._check_open()
            read_time = from_micros(self._now_us())
            rec = visible(self._docs.get(path), None)
            changes = listener.change(None if rec is None else export(path, rec, read_time))
            self._doc_listeners.setdefault(path, []).append(listener)
            self._dispatcher.submit(listener, ListenEvent(listener.docs(), changes, read_time))
        return _Watch(self, listener)

    def listen_query(self, query: Query, callback: ListenCallback) -> Watch:
        check_query(query)
        listener = QueryListener(query, callback)
        registry = self._group_listeners if query.all_descendants else self._coll_listeners
        with self._lock:
            self._check_open()
            read_time = from_micros(self._now_us())
            results = listener.results
            assert results is not None
            docs = [copy_snap(s, read_time) for s in self._run(query)]
            changes = results.replace(docs)
            registry.setdefault(query.collection, []).append(listener)
            self._dispatcher.submit(listener, ListenEvent(results.docs, changes, read_time))
        return _Watch(self, listener)

    def _unsubscribe(self, listener: Listener) -> None:
        with self._lock:
            if isinstance(listener, DocumentListener):
                _discard(self._doc_listeners, listener.path, listener)
            elif isinstance(listener, QueryListener):
                q = listener.query
                registry = self._group_listeners if q.all_descendants else self._coll_listeners
                _discard(registry, q.collection, listener)
            listener.release()

    def _notify(
        self, changes: list[tuple[str, Rec | None, DocumentSnapshot | None]], now: Any
    ) -> None:
        """Queue one event per listener whose view changed. Lock held."""
        if self._doc_listeners:
            for path, _old, new in changes:
                for dl in self._doc_listeners.get(path, ()):
                    snap = None if new is None else copy_snap(new, now)
                    doc_changes = dl.change(snap)
                    if doc_changes:
                        self._dispatcher.submit(dl, ListenEvent(dl.docs(), doc_changes, now))
        if not (self._coll_listeners or self._group_listeners):
            return
        affected: dict[int, tuple[QueryListener, list[Any]]] = {}
        for change in changes:
            coll = change[0].rpartition("/")[0]
            for ql in self._coll_listeners.get(coll, ()):
                affected.setdefault(id(ql), (ql, []))[1].append(change)
            for ql in self._group_listeners.get(coll.rpartition("/")[2], ()):
                if in_scope(ql.query, change[0]):
                    affected.setdefault(id(ql), (ql, []))[1].append(change)
        for ql, items in affected.values():
            self._notify_query(ql, items, now)

    def _notify_query(self, ql: QueryListener, items: list[Any], now: Any) -> None:
        query, results = ql.query, ql.results
        if results is None:
            return
        snaps = []
        for path, _old, new in items:
            if new is not None and match_key(query, new) is not None:
                snaps.append(copy_snap(new, now))
            elif results.get(path) is not None:
                snaps.append(DocumentSnapshot(path, None, read_time=now))
        changes = results.update(snaps)
        if changes is None:  # a full, limited window lost a document: re-run
            docs = []
            for snap in self._run(query):
                held = results.get(snap.path)
                same = held is not None and held.update_time == snap.update_time
                docs.append(held if same and held is not None else copy_snap(snap, now))
            changes = results.replace(docs)
        if changes:
            self._dispatcher.submit(ql, ListenEvent(results.docs, changes, now))

    def _on_listener_error(self, listener: Listener, error: BaseException) -> None:
        log_listener_error(listener, error)
        error.add_note(f"raised by an embedded-database listener callback for {listener.target}")
        self.listener_errors.append(error)
        del self.listener_errors[:-MAX_LISTENER_ERRORS]

    @property
    def undelivered_events(self) -> int:
        # Asked by a callback, on the delivering thread: none of them can be
        # delivered before it returns, so there is nothing it could wait for.
        return 0 if self._dispatcher.in_dispatcher() else self._dispatcher.undelivered

    # -- lifecycle ------------------------------------------------------------
    def close(self) -> None:
        if self._closed:  # also a store abandoned after fork(): its lock may be held
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            listeners: list[Listener] = [
                listener
                for registry in (self._doc_listeners, self._coll_listeners, self._group_listeners)
                for group in registry.values()
                for listener in group
            ]
            self._doc_listeners.clear()
            self._coll_listeners.clear()
            self._group_listeners.clear()
        for listener in listeners:
            listener.release()
        self._dispatcher.close()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    @property
    def closed(self) -> bool:
        return self._closed

    def _abandon_after_fork(self) -> None:
        """In a child process after ``fork()``: the parent keeps the file."""
        # Another thread of the parent may have held the lock at fork: the
        # child's copy would never be released (a call would hang, not fail).
        self._lock = threading.Lock()
        file, self._file = self._file, None
        if file is not None:
            file.abandon()
            _abandoned.append(file)  # never closed here: SQLite connections don't survive fork
        if self._closed:
            return
        self._closed = True
        self._closed_reason = (
            f"{self!r} was opened by process {self._pid} and cannot be used in process "
            f"{os.getpid()} (a child after fork()): open the embedded store in the one "
            "process that uses it, after forking, or use Firestore for several processes"
        )


#: File-backed stores to close in a child process after ``fork()``.
_forkable: weakref.WeakSet[EmbeddedDatabase] = weakref.WeakSet()
_fork_lock = threading.Lock()
_fork_hooked = False
_abandoned: list[SqliteFile] = []


def _close_in_forked_children(db: EmbeddedDatabase) -> None:
    global _fork_hooked
    with _fork_lock:
        if not _fork_hooked:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hooked = True
        _forkable.add(db)


def _after_fork_in_child() -> None:
    global _fork_lock
    _fork_lock = threading.Lock()  # another thread may have held it at fork()
    for db in list(_forkable):
        db._abandon_after_fork()


def _discard(registry: dict[str, list[Any]], key: str, listener: Listener) -> None:
    group = registry.get(key)
    if group is None:
        return
    group[:] = [item for item in group if item is not listener]
    if not group:
        del registry[key]


class _Watch:
    """The handle returned by ``listen_*``; ``unsubscribe()`` is idempotent."""

    __slots__ = ("_db", "_listener")

    def __init__(self, db: EmbeddedDatabase, listener: Listener) -> None:
        self._db: EmbeddedDatabase | None = db
        self._listener: Listener | None = listener

    def unsubscribe(self) -> None:
        db, listener = self._db, self._listener
        self._db = self._listener = None
        if db is not None and listener is not None:
            db._unsubscribe(listener)
