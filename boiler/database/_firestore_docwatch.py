"""Many single-document listeners on ONE Firestore Listen stream.

The engine keeps views fresh from the exact documents they read. A Listen
stream carries any number of *targets*; here each watched document is its own
target, all on one stream and one reader thread (the library's watch costs a
stream and two threads per listener). Why documents and not collections: the
Cloud Firestore emulator answers every change in a query target by sending
the whole result again (a change in a 300-document collection costs 300
messages, ~80 ms; FIELD-NOTES), while a document target gets just that
document.

The Cloud Firestore emulator sometimes misses a write that races a target's
start: the target reports the older state and never the write. So each
document's first delivered state is checked once, shortly after, by a lookup;
a target found behind is listened to afresh (its current state then arrives
like any change).

Changes are delivered at the stream's *global consistent points* (a
``NO_CHANGE`` target change without target ids): every document in one
delivery is as of that ``read_time``, across all targets, so one
transaction's writes arrive together. When the stream breaks it is opened
again and every target added afresh; what changed in between is delivered
like any other change. (The emulator corrupts a busy stream with many targets
now and then: "Wire format was corrupt" on the client; see FIELD-NOTES in
tests/contract/README.md.)

A target the server removes with an error (a ``REMOVE`` target change with a
cause) is recorded in the database's ``listener_errors`` and listened to again
after a backoff, as a new target: its state is not current meanwhile (so no
build trusts it) and the state found then is delivered if it differs.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from google.cloud.firestore_v1.types import firestore as fs_types

from ..backoff import backoff
from ._firestore_convert import first_line, from_document_pb
from .base import DocumentSnapshot

if TYPE_CHECKING:
    from .firestore import FirestoreDatabase

logger = logging.getLogger("boiler.database.firestore")

#: ``fn(snapshots, read_time)``: documents whose state changed (or were seen for
#: the first time after :meth:`DocumentWatch.add`), all as of ``read_time``.
DocumentsCallback = Callable[[list[DocumentSnapshot], _dt.datetime], None]

_NO_CHANGE, _ADD, _REMOVE, _CURRENT, _RESET = 0, 1, 2, 3, 4
_CLOSE = object()
_MISSING = object()  # pending state: the document is gone (or left its target)


class _Target:
    __slots__ = ("path", "tid", "held", "known", "current", "removals")

    def __init__(self, path: str, tid: int) -> None:
        self.path = path
        self.tid = tid
        self.held: DocumentSnapshot | None = None  # None: missing
        self.known = False  # a state was delivered at least once
        self.current = False  # the server said CURRENT (since the last reset)
        self.removals = 0  # removed by the server in a row (backoff)


class DocumentWatch:
    """Watches a changing set of documents on one Listen stream.

    ``callback`` runs on the reader thread; it should only hand work over.
    Errors (a callback that raises, a target the server drops) are recorded in
    the database's ``listener_errors``; the watch keeps going, and a dropped
    target is listened to again ``retry_delay`` seconds later (doubling while
    the server keeps dropping it, at most ``retry_max``).

    When the stream breaks it is opened again and every document listened to
    afresh (and checked like a new one): what was received but not delivered,
    or changed meanwhile, arrives again.
    """

    def __init__(
        self,
        db: FirestoreDatabase,
        callback: DocumentsCallback,
        *,
        verify_delay: float = 0.1,
        recheck_delay: float = 1.0,
        stall_seconds: float = 10.0,
        retry_delay: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._db = db
        self._client = db._client
        self._callback = callback
        self._database = self._client._database_string
        self._prefix = self._database + "/documents/"
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._by_path: dict[str, _Target] = {}
        self._by_id: dict[int, _Target] = {}
        self._pending: dict[int, Any] = {}  # target id -> document proto or _MISSING
        self._undelivered: set[int] = set()  # added, no state delivered yet
        self._requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._call: Any = None
        self._closed = False
        self._wake = threading.Event()
        self.verify_delay = verify_delay
        #: A stream silent this long while documents wait for their first state
        #: is given up and opened again (seen on the emulator: a stream opened
        #: right as it restarted never answered). Checked by the checking
        #: thread, so a lookup it is waiting for (bounded by the request
        #: timeout) can delay the check.
        self.stall_seconds = stall_seconds
        self._heard = time.monotonic()  # the last message (or stream opening)
        #: Streams opened after the first one (breaks, stalls).
        self.reopens = 0
        self._opened = 0
        self._verify: dict[int, float] = {}  # target id -> when to check its first state
        #: A first state found current is looked up once more ``recheck_delay``
        #: later (a write still racing the target's start, e.g. one retried while
        #: the stream reopened, can land after the first lookup and be missed
        #: too). Not counted as undelivered: the state is trusted meanwhile.
        self.recheck_delay = recheck_delay
        self._recheck: dict[int, float] = {}
        self.retry_delay = retry_delay
        self.retry_max = retry_max
        self._dropped: dict[str, float] = {}  # removed by the server -> when to listen again
        self._verify_wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="boiler-docwatch", daemon=True)
        self._verifier = threading.Thread(
            target=self._verify_loop, name="boiler-docwatch-verify", daemon=True
        )
        self._thread.start()
        self._verifier.start()

    # -- API ----------------------------------------------------------------------
    def add(self, paths: Iterable[str]) -> None:
        """Start watching ``paths`` (already watched ones are ignored)."""
        with self._lock:
            for path in paths:
                if path in self._by_path or self._closed:
                    continue
                target = _Target(path, next(self._ids))
                self._by_path[path] = target
                self._by_id[target.tid] = target
                self._undelivered.add(target.tid)
                self._requests.put(self._add_request(target))

    def remove(self, paths: Iterable[str]) -> None:
        """Stop watching ``paths``."""
        with self._lock:
            for path in paths:
                target = self._by_path.pop(path, None)
                if target is not None:
                    # a target the server removed is not on the stream any more
                    self._drop(target, tell_server=self._dropped.pop(path, None) is None)

    def all_current(self, paths: Iterable[str]) -> bool:
        """Whether every one of ``paths`` is watched, delivered, checked and
        current (its delivered state holds at the last consistent point). A
        first state is not trusted before its check: the emulator may have
        missed a write racing the target's start."""
        with self._lock:
            for path in paths:
                target = self._by_path.get(path)
                if (
                    target is None
                    or not target.known
                    or not target.current
                    or target.tid in self._pending
                    or target.tid in self._verify
                ):
                    return False
            return True

    @property
    def watched(self) -> int:
        with self._lock:
            return len(self._by_path)

    @property
    def undelivered(self) -> int:
        """Documents added whose first state is not delivered and checked yet
        (those the server dropped, waiting to be listened to again, included)."""
        with self._lock:
            return len(self._undelivered) + len(self._verify) + len(self._dropped)

    @property
    def active(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def unsubscribe(self) -> None:
        """Close the stream and stop the reader thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            call = self._call
        self._db._forget_watch(self)
        self._requests.put(_CLOSE)
        self._wake.set()
        self._verify_wake.set()
        if call is not None:
            call.cancel()
        for thread in (self._thread, self._verifier):
            if threading.current_thread() is not thread:
                thread.join(5.0)

    # -- the stream -------------------------------------------------------------------
    def _drop(self, target: _Target, *, tell_server: bool = True) -> None:
        """Forget ``target``'s stream state (lock held)."""
        self._by_id.pop(target.tid, None)
        self._pending.pop(target.tid, None)
        self._undelivered.discard(target.tid)
        self._verify.pop(target.tid, None)
        self._recheck.pop(target.tid, None)
        if tell_server and not self._closed:
            self._requests.put(
                fs_types.ListenRequest(database=self._database, remove_target=target.tid)
            )

    def _add_request(self, target: _Target) -> Any:
        spec = fs_types.Target(
            target_id=target.tid,
            documents=fs_types.Target.DocumentsTarget(documents=[self._prefix + target.path]),
        )
        return fs_types.ListenRequest(database=self._database, add_target=spec)

    def _request_stream(self, requests: queue.SimpleQueue[Any]) -> Iterator[Any]:
        while True:
            item = requests.get()
            if item is _CLOSE:
                return
            yield item

    def _reopen(self) -> queue.SimpleQueue[Any]:
        """A fresh request queue re-adding every target (lock held).

        Targets are listened to afresh, not resumed: the emulator's resumed
        targets were seen to miss changes. Each one's state is delivered again
        (only if it differs from the one held) and checked like a new one.
        """
        requests: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._heard = time.monotonic()
        self.reopens, self._opened = self.reopens + (self._opened > 0), self._opened + 1
        for target in self._by_id.values():
            target.current = False
            self._undelivered.add(target.tid)
            requests.put(self._add_request(target))
        self._pending.clear()
        self._requests = requests
        return requests

    def _run(self) -> None:
        delay = 0.1
        while True:
            with self._lock:
                if self._closed:
                    return
                requests = self._reopen()
            try:
                listen = self._client._firestore_api._transport.listen
                call = listen(
                    self._request_stream(requests),
                    metadata=[("google-cloud-resource-prefix", self._database)],
                )
                with self._lock:
                    self._call, self._heard = call, time.monotonic()
                    if self._closed:
                        call.cancel()
                for response in call:
                    self._on_response(response)
                    delay = 0.1
            except Exception as e:
                if self._closed:
                    return
                logger.warning("document watch stream broke (%s); reopening", _describe(e))
            finally:
                requests.put(_CLOSE)
                with self._lock:
                    self._call = None
            if self._closed:
                return
            # The server ended the stream (or it broke): open it again shortly.
            self._wake.wait(delay)
            delay = min(5.0, delay * 2)

    def _on_response(self, response: Any) -> None:
        self._heard = time.monotonic()
        pb = response._pb
        kind = pb.WhichOneof("response_type")
        if kind == "target_change":
            change = pb.target_change
            ids = list(change.target_ids)
            kind_of = change.target_change_type
            with self._lock:
                if kind_of == _CURRENT:
                    for tid in ids or list(self._by_id):
                        if (target := self._by_id.get(tid)) is not None:
                            target.current = True
                            target.removals = 0
                elif kind_of == _RESET:
                    for tid in ids or list(self._by_id):
                        if (target := self._by_id.get(tid)) is not None:
                            target.current = False
                            self._pending[tid] = _MISSING  # unless sent again
                elif kind_of == _REMOVE and change.HasField("cause"):
                    self._removed(ids, change.cause.message)
                global_point = kind_of == _NO_CHANGE and not ids and change.HasField("read_time")
            if global_point:
                self._deliver(response.target_change.read_time)
        elif kind == "document_change":
            dc = pb.document_change
            with self._lock:
                for tid in dc.target_ids:
                    if tid in self._by_id:
                        self._pending[tid] = response.document_change.document
                for tid in dc.removed_target_ids:
                    if tid in self._by_id:
                        self._pending[tid] = _MISSING
        elif kind in ("document_delete", "document_remove"):
            msg = getattr(pb, kind)
            with self._lock:
                for tid in msg.removed_target_ids:
                    if tid in self._by_id:
                        self._pending[tid] = _MISSING
        elif kind == "filter":
            f = pb.filter
            with self._lock:
                target = self._by_id.get(f.target_id)
                if target is not None and target.known and target.tid not in self._pending:
                    have = 1 if target.held is not None else 0
                    if f.count != have:  # out of sync: listen to it afresh
                        self._resync(target)

    def _deliver(self, read_time: _dt.datetime) -> None:
        out: list[DocumentSnapshot] = []
        with self._lock:
            pending = self._pending
            # New targets that became current without a document: missing ones.
            for tid in self._undelivered:
                target = self._by_id.get(tid)
                if target is not None and target.current:
                    pending.setdefault(tid, _MISSING)
            for tid, doc in list(pending.items()):
                target = self._by_id.get(tid)
                if target is None:
                    del pending[tid]
                    continue
                if not target.current:
                    continue  # not consistent yet: keep it for a later point
                del pending[tid]
                snap = self._snapshot(target.path, doc, read_time)
                held = target.held
                same = (
                    target.known
                    and (held is None) == (snap is None or not snap.exists)
                    and (held is None or held.update_time == snap.update_time)
                )
                if tid in self._undelivered:  # a first state (or first since a restart)
                    self._verify[tid] = time.monotonic() + self.verify_delay
                    self._verify_wake.set()
                target.known = True
                self._undelivered.discard(tid)
                if same:
                    continue
                target.held = snap if snap.exists else None
                out.append(snap)
        if out:
            try:
                self._callback(out, read_time)
            except Exception as e:
                self._db._record_listener_error(
                    "document watch", e, outcome="the watch keeps running"
                )

    def _snapshot(self, path: str, doc: Any, read_time: _dt.datetime) -> DocumentSnapshot:
        return from_document_pb(path, None if doc is _MISSING else doc, self._client, read_time)

    # -- checking first states --------------------------------------------------------
    def _verify_loop(self) -> None:
        while not self._closed:
            self._check_stall()
            with self._lock:
                now = time.monotonic()
                self._listen_again(now)
                first = [tid for tid, at in self._verify.items() if at <= now][:500]
                again = [tid for tid, at in self._recheck.items() if at <= now][: 500 - len(first)]
                due = first + again
                wait = 1.0  # at least once a second: the stall check
                for pending in (self._verify, self._recheck, self._dropped):
                    if not due and pending:
                        wait = min(wait, max(0.0, min(pending.values()) - now))
                checks = [
                    (tid, t.path, t.held) for tid in due if (t := self._by_id.get(tid)) is not None
                ]
            if not due:
                self._verify_wake.wait(wait)
                self._verify_wake.clear()
                continue
            try:
                found = self._db._get_all([path for _, path, _ in checks])
            except Exception as e:  # try again a little later
                logger.warning("checking watched documents failed (%s); retrying", _describe(e))
                with self._lock:
                    later = time.monotonic() + max(0.5, self.verify_delay)
                    for tid in due:
                        for pending in (self._verify, self._recheck):
                            if tid in pending:
                                pending[tid] = later
                self._verify_wake.wait(0.5)
                continue
            with self._lock:
                behind = set()
                for (tid, _path, held), snap in zip(checks, found, strict=True):
                    target = self._by_id.get(tid)
                    if target is not None and target.held is held and _behind(held, snap):
                        self._resync(target)
                        behind.add(tid)
                later = time.monotonic() + self.recheck_delay
                for tid in first:
                    self._verify.pop(tid, None)
                    if tid not in behind and tid in self._by_id:
                        self._recheck[tid] = later
                for tid in again:
                    self._recheck.pop(tid, None)

    def _check_stall(self) -> None:
        """Give up a stream that has been silent for ``stall_seconds`` while
        documents wait for their first state: the reader then opens it again."""
        with self._lock:
            call, now = self._call, time.monotonic()
            if self._closed or call is None or not self._undelivered:
                return
            if now - self._heard < self.stall_seconds:
                return
            self._heard = now  # once per stall
            waiting = len(self._undelivered)
        logger.warning(
            "document watch stream silent for %.0f s with %d documents waiting; reopening",
            self.stall_seconds,
            waiting,
        )
        call.cancel()

    def _resync(self, target: _Target) -> None:
        """Listen to ``target`` afresh (lock held): its state arrives again."""
        target.current = False
        self._pending[target.tid] = _MISSING  # unless sent again
        self._requests.put(
            fs_types.ListenRequest(database=self._database, remove_target=target.tid)
        )
        self._requests.put(self._add_request(target))

    def _removed(self, ids: list[int], message: str) -> None:
        """The server dropped targets with an error (lock held): record it and
        listen to each again after a backoff (see :meth:`_listen_again`)."""
        now = time.monotonic()
        for tid in ids:
            target = self._by_id.get(tid)
            if target is None:
                continue
            self._drop(target, tell_server=False)  # the server has forgotten it
            target.current = False
            if self._by_path.get(target.path) is not target:
                continue  # no longer watched
            target.removals += 1
            delay = backoff(target.removals, self.retry_delay, self.retry_max)
            self._dropped[target.path] = now + delay
            self._verify_wake.set()
            error = RuntimeError(f"document watch on {target.path!r} removed: {message}")
            self._db._record_listener_error(
                "document watch", error, outcome=f"listening to it again in {delay:.1f} s"
            )

    def _listen_again(self, now: float) -> None:
        """Add again, as new targets, dropped documents whose backoff is over
        (lock held). Their state is checked like a first one and delivered if
        it differs from the one delivered before."""
        for path, at in list(self._dropped.items()):
            if at > now or self._closed:
                continue
            del self._dropped[path]
            target = self._by_path.get(path)
            if target is None or target.tid in self._by_id:
                continue
            target.tid = next(self._ids)
            self._by_id[target.tid] = target
            self._undelivered.add(target.tid)
            self._requests.put(self._add_request(target))


def _behind(held: DocumentSnapshot | None, found: DocumentSnapshot) -> bool:
    """Whether a lookup shows a newer state than the one delivered."""
    if held is None:
        return found.exists
    if not found.exists:
        return True
    if found.update_time is None or held.update_time is None:
        return found.update_time != held.update_time
    return found.update_time > held.update_time


def _describe(error: BaseException) -> str:
    """``CODE: details`` for a gRPC error, else its first line."""
    code, details = getattr(error, "code", None), getattr(error, "details", None)
    if callable(code) and callable(details):
        try:
            return f"{code().name}: {details()}"
        except Exception:
            pass
    return first_line(error)
