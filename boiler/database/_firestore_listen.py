"""Listeners on Firestore: wrap ``on_snapshot`` into boiler :class:`ListenEvent`\\ s.

Why not pass the library's values through:

- an exception raised inside an ``on_snapshot`` callback silently kills the
  watch, so the user callback runs under a guard that logs and records errors;
- the library sorts ``docs`` with a comparator that ignores DESCENDING and
  cannot read nested (dotted) order fields (the latter raises inside the watch
  thread and kills it), so each query watch gets a correct comparator and the
  docs are re-sorted;
- the library's ``old_index``/``new_index`` are insertion counters, not
  positions, so change indexes are recomputed here the way Firestore's other
  SDKs define them: removals (old order), then additions, then modifications
  (new order), each applied in turn to a sorted working list.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_document import DocumentSnapshot as LibSnapshot

from .. import exceptions as exc
from ._firestore_convert import first_line, to_snapshot, translate
from .base import ChangeType, DocumentChange, ListenCallback, ListenEvent

if TYPE_CHECKING:
    from .firestore import FirestoreDatabase

logger = logging.getLogger("boiler.database.firestore")

_CHANGE_TYPES: dict[str, ChangeType] = {
    "ADDED": "added",
    "MODIFIED": "modified",
    "REMOVED": "removed",
}


def _path(snap: LibSnapshot) -> str:
    return str(snap.reference.path)


class FirestoreWatch:
    """One live ``on_snapshot`` watch delivering :class:`ListenEvent` s.

    ``key`` orders library snapshots in query order (None for a document watch).
    """

    def __init__(
        self,
        db: FirestoreDatabase,
        target: str,
        callback: ListenCallback,
        key: Callable[[LibSnapshot], Any] | None,
    ) -> None:
        self.target = target
        self._db = db
        self._callback = callback
        self._key = key
        self._lock = threading.Lock()
        self._active = True
        self._lib_watch: Any = None
        self._callback_thread: int | None = None
        self._failed = False
        self._docs: list[LibSnapshot] = []

    def start(self, subscribe: Callable[[Callable[..., None]], Any]) -> FirestoreWatch:
        lib = self._lib_watch = subscribe(self._on_snapshot)
        # The library ends a watch the server rejected (e.g. an invalid query) or
        # whose stream failed for good by only logging it; surface that instead.
        consumer = getattr(lib, "_consumer", None)
        if consumer is not None and hasattr(consumer, "_on_fatal_exception"):
            consumer._on_fatal_exception = self._on_stream_failure
        rpc = getattr(lib, "_rpc", None)
        if rpc is not None:
            rpc.add_done_callback(self._on_stream_failure)
        return self

    @property
    def active(self) -> bool:
        """True until unsubscribed or until the stream failed for good."""
        lib = self._lib_watch
        return (
            self._active
            and not self._failed
            and lib is not None
            and not getattr(lib, "_closed", False)
        )

    def _on_stream_failure(self, error: Any) -> None:
        """The stream ended without being unsubscribed: record why."""
        if not self._active or self._failed:
            return
        self._failed = True
        cause = error if isinstance(error, BaseException) else None
        if cause is None and hasattr(error, "exception"):
            try:  # a grpc call / future
                cause = error.exception()
            except Exception as e:
                cause = e
        inner = getattr(cause, "__cause__", None) or cause or RuntimeError(str(error))
        mapped = translate(inner, query=self.target if self._key is not None else None)
        kind = type(mapped) if isinstance(mapped, exc.BoilerError) else exc.BoilerError
        failure = kind(f"listener on {self.target} stopped: {first_line(inner)}")
        failure.__cause__ = inner
        self._db._record_listener_error(self.target, failure)

    # -- event building -----------------------------------------------------------
    def _sort(self, docs: list[LibSnapshot]) -> list[LibSnapshot]:
        return sorted(docs, key=self._key) if self._key is not None else list(docs)

    def _changes(
        self, new_docs: list[LibSnapshot], lib_changes: list[Any], read_time: _dt.datetime | None
    ) -> list[DocumentChange]:
        key = self._key or (lambda s: _path(s))
        working = list(self._docs)
        keys = [key(d) for d in working]
        removed: list[LibSnapshot] = []
        added: list[LibSnapshot] = []
        modified: list[LibSnapshot] = []
        for ch in lib_changes:
            kind = _CHANGE_TYPES[ch.type.name]
            {"removed": removed, "added": added, "modified": modified}[kind].append(ch.document)
        position = {_path(d): i for i, d in enumerate(self._docs)}
        removed.sort(key=lambda d: position.get(_path(d), -1))
        added.sort(key=key)
        modified.sort(key=key)
        out: list[DocumentChange] = []

        def take(path: str) -> int:
            i = next(i for i, d in enumerate(working) if _path(d) == path)
            del working[i]
            del keys[i]
            return i

        def put(doc: LibSnapshot) -> int:
            k = key(doc)
            i = bisect.bisect_left(keys, k)
            working.insert(i, doc)
            keys.insert(i, k)
            return i

        for doc in removed:
            old = take(_path(doc))
            out.append(DocumentChange("removed", to_snapshot(doc, read_time=read_time), old, -1))
        for doc in added:
            new = put(doc)
            out.append(DocumentChange("added", to_snapshot(doc, read_time=read_time), -1, new))
        for doc in modified:
            old = take(_path(doc))
            new = put(doc)
            out.append(DocumentChange("modified", to_snapshot(doc, read_time=read_time), old, new))
        return out

    def _on_snapshot(self, docs: list[LibSnapshot], changes: list[Any], read_time: Any) -> None:
        """The library callback: must never raise (that would kill the watch)."""
        try:
            with self._lock:
                if not self._active:
                    return
                new_docs = self._sort(docs)
                event = ListenEvent(
                    docs=[to_snapshot(d, read_time=read_time) for d in new_docs],
                    changes=self._changes(new_docs, changes, read_time),
                    read_time=read_time,
                )
                self._docs = new_docs
                self._callback_thread = threading.get_ident()
                try:
                    self._callback(event)
                finally:
                    self._callback_thread = None
        except BaseException as e:  # noqa: BLE001 - anything escaping kills the watch
            self._db._record_listener_error(self.target, e)

    # -- lifecycle -------------------------------------------------------------------
    def unsubscribe(self) -> None:
        """Stop delivering events and release the stream and its threads. Idempotent."""
        # Not under self._lock: a callback running right now may block on a lock
        # the caller holds. It finishes; no later event is delivered.
        self._active = False
        inside_callback = self._callback_thread == threading.get_ident()
        self._db._forget_watch(self)
        lib, self._lib_watch = self._lib_watch, None
        if lib is None:
            return
        if inside_callback:
            # The library joins the watch thread on close: not from that thread.
            threading.Thread(
                target=_close_quietly, args=(lib, self.target), name="boiler-unwatch", daemon=True
            ).start()
        else:
            _close_quietly(lib, self.target)

    def __repr__(self) -> str:
        state = "active" if self.active else "closed"
        return f"<FirestoreWatch {self.target} {state}>"


def _close_quietly(lib_watch: Any, target: str) -> None:
    try:
        lib_watch.unsubscribe()
    except Exception:  # the stream may already be broken; nothing left to release
        logger.debug("closing watch on %s failed", target, exc_info=True)
