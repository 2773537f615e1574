"""Listeners on Firestore: wrap ``on_snapshot`` into boiler :class:`ListenEvent`\\ s.

Why not pass the library's values through:

- an exception raised inside an ``on_snapshot`` callback silently kills the
  watch, so the user callback runs under a guard that logs and records errors;
- the library sorts ``docs`` with a comparator that ignores DESCENDING and
  cannot read nested (dotted) order fields (the latter raises inside the watch
  thread and kills it), so each query watch gets a correct order here;
- the library's ``old_index``/``new_index`` are insertion counters, not
  positions, so change indexes are recomputed here the way Firestore's other
  SDKs define them: removals (old order), then additions, then modifications
  (new order), each applied in turn to a sorted working list;
- every event costs O(changes), not O(documents): the library's ``push`` copies
  its whole document map once per changed document and re-sorts every document
  with a Python comparator on every event (~0.1 s at 10,000 documents), so
  :class:`_LibWatch` applies changes in place and hands over only what changed;
  :class:`FirestoreWatch` keeps the ordered result (keys and converted
  snapshots, in parallel lists) and converts only changed documents.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.base_document import DocumentSnapshot as LibSnapshot
from google.cloud.firestore_v1.watch import WATCH_TARGET_ID
from google.cloud.firestore_v1.watch import ChangeType as LibChangeType
from google.cloud.firestore_v1.watch import Watch as _LibraryWatch

from .. import exceptions as exc
from ._firestore_convert import first_line, to_snapshot, translate
from .base import DocumentChange, DocumentSnapshot, ListenCallback, ListenEvent

if TYPE_CHECKING:
    from .firestore import FirestoreDatabase

logger = logging.getLogger("boiler.database.firestore")

#: What :class:`_LibWatch` hands to its callback: ``[(kind, library snapshot)]``
#: (kind: "added", "modified", "removed"; a removed document's last state) and
#: the read time.
LibChanges = list[tuple[str, LibSnapshot]]


def _path(snap: LibSnapshot) -> str:
    return str(snap.reference.path)


def _same_time(held: Any, sent: Any) -> bool:
    """Whether a held ``update_time`` (datetime) equals a protobuf Timestamp."""
    if held is None:
        return False
    ts = held.timestamp_pb()
    return bool(ts.seconds == sent.seconds and ts.nanos == sent.nanos)


class _LibWatch(_LibraryWatch):  # type: ignore[misc]
    """The library's watch stream, pushing only the changes of each snapshot.

    Same protocol handling (the base class parses the stream, resets and
    resumes); only the bookkeeping at each consistent point differs: changes
    are applied to ``doc_map`` in place (no per-change copy of every entry, no
    sort of every document) and the callback gets ``(changes, read_time)``.
    Created with the library's own ``for_query``/``for_document``.
    """

    def on_snapshot(self, proto: Any) -> None:
        """One stream message. A document sent again unchanged (same
        ``update_time`` as held) is not decoded again: the emulator re-sends
        every document of a query target on every change (~50 us of Python
        each in the base class)."""
        if proto is not None and not self._closing.locked():
            pb = proto._pb
            if pb.WhichOneof("response_type") == "document_change":
                change = pb.document_change
                if WATCH_TARGET_ID in change.target_ids:
                    doc = change.document
                    held = self.doc_map.get(doc.name)
                    if held is not None and _same_time(held.update_time, doc.update_time):
                        pending = self.change_map.get(doc.name)
                        if pending is None:
                            return  # nothing to do at the next push
                        if pending is LibChangeType.REMOVED:  # after a RESET: still there
                            del self.change_map[doc.name]
                            return
        super().on_snapshot(proto)

    def push(self, read_time: Any, next_resume_token: Any) -> None:
        deletes, adds, updates = self._extract_changes(self.doc_map, self.change_map, read_time)
        doc_map = self.doc_map
        changes: LibChanges = []
        for name in deletes:
            changes.append(("removed", doc_map.pop(name)))
        for snap in adds:
            doc_map[snap.reference._document_path] = snap
            changes.append(("added", snap))
        for snap in updates:
            name = snap.reference._document_path
            if doc_map[name].update_time != snap.update_time:
                doc_map[name] = snap
                changes.append(("modified", snap))
        if not self.has_pushed or changes:
            self._snapshot_callback(changes, read_time)
            self.has_pushed = True
        self.change_map.clear()
        self.resume_token = next_resume_token

    def _reset_docs(self) -> None:
        """On RESET / filter mismatch: every held document counts as removed
        unless the server sends it again (the base class reads its doc tree,
        which this class does not maintain)."""
        self.change_map.clear()
        self.resume_token = None
        for name in self.doc_map:
            self.change_map[name] = LibChangeType.REMOVED
        self.current = False


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
        self._key: Callable[[LibSnapshot], Any] = key or _path
        self._is_query = key is not None
        self._lock = threading.Lock()
        self._active = True
        self._lib_watch: Any = None
        self._callback_thread: int | None = None
        self._failed = False
        # The current result in order: sort keys and our snapshots (parallel lists),
        # and each held path's key (to find it again in O(log n)).
        self._keys: list[Any] = []
        self._snaps: list[DocumentSnapshot] = []
        self._key_of: dict[str, Any] = {}

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
        """The stream ended for good without being unsubscribed: record why.
        The watch is not subscribed again here; its owner may (the runtime
        does for its own, seeing ``active`` turn False)."""
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
        mapped = translate(inner, query=self.target if self._is_query else None)
        kind = type(mapped) if isinstance(mapped, exc.BoilerError) else exc.BoilerError
        failure = kind(f"listener on {self.target} stopped: {first_line(inner)}")
        failure.__cause__ = inner
        self._db._record_listener_error(
            self.target, failure, outcome="the listener stopped for good (active is False)"
        )

    # -- event building (under self._lock) -------------------------------------------
    def _take(self, path: str) -> int:
        """Remove ``path`` from the held result; its old index."""
        key = self._key_of.pop(path)
        i = bisect.bisect_left(self._keys, key)
        while self._snaps[i].path != path:  # equal keys: never with a name tie-break
            i += 1
        del self._keys[i]
        del self._snaps[i]
        return i

    def _put(self, key: Any, snap: DocumentSnapshot) -> int:
        i = bisect.bisect_left(self._keys, key)
        self._keys.insert(i, key)
        self._snaps.insert(i, snap)
        self._key_of[snap.path] = key
        return i

    def _changes(self, lib_changes: LibChanges, read_time: _dt.datetime) -> list[DocumentChange]:
        key = self._key
        removed: list[LibSnapshot] = []
        added: list[tuple[Any, LibSnapshot]] = []
        modified: list[tuple[Any, LibSnapshot]] = []
        for kind, doc in lib_changes:
            held = _path(doc) in self._key_of
            if kind == "removed":
                if held:
                    removed.append(doc)
            elif held:
                modified.append((key(doc), doc))
            else:
                added.append((key(doc), doc))
        removed.sort(key=lambda d: self._key_of[_path(d)])
        added.sort(key=lambda pair: pair[0])
        modified.sort(key=lambda pair: pair[0])
        out: list[DocumentChange] = []
        for doc in removed:
            old = self._take(_path(doc))
            out.append(DocumentChange("removed", to_snapshot(doc, read_time=read_time), old, -1))
        for k, doc in added:
            snap = to_snapshot(doc, read_time=read_time)
            out.append(DocumentChange("added", snap, -1, self._put(k, snap)))
        for k, doc in modified:
            snap = to_snapshot(doc, read_time=read_time)
            old = self._take(snap.path)
            out.append(DocumentChange("modified", snap, old, self._put(k, snap)))
        return out

    def _on_snapshot(self, lib_changes: LibChanges, read_time: Any) -> None:
        """The library callback: must never raise (that would kill the watch)."""
        try:
            with self._lock:
                if not self._active:
                    return
                changes = self._changes(lib_changes, read_time)
                # Unchanged documents keep the snapshot (and read time) of their
                # last change, as on the embedded store.
                event = ListenEvent(docs=list(self._snaps), changes=changes, read_time=read_time)
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
