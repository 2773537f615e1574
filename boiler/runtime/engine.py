"""The reactive engine: live views rebuilt whenever anything they read changes.

::

    engine = Engine(db).start()
    handle = engine.live(meeting_summary, on_result=publish, key=("summary", "m1"))
    ...
    engine.stop()          # joins threads, unsubscribes, raises RuntimeFailure on errors

Threads (all owned here, all named ``boiler-engine-*``): one *dispatcher*
applies listener events to the :class:`~.index.DependencyIndex` and fires
retry timers; ``workers`` build views. Listener callbacks only enqueue.
A view is never built twice at once; dirtying it while queued or building
coalesces into one more build that reads the latest state.

A worker takes every queued view (up to ``build_batch``) at once: the views
one change dirtied are read in one round trip at one point, built one after
the other on that thread, and their view documents reach the writer together
(one commit).

Every ``check_interval`` seconds the dispatcher also takes the errors the
database recorded for its listeners (``db.listener_errors``, stage
``listener``) into :attr:`Engine.errors`, subscribes again the watches that
stopped for good (:mod:`.revive`), and runs the checks added with
:meth:`Engine.on_check`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from ..backoff import backoff
from ..database.base import Database, DocumentSnapshot
from ..database.query import Query
from ..model_cache import ModelCache
from ..store import Store
from .errors import ErrorLog, ListenerErrors, RecordedError
from .index import DOCUMENTS, DependencyIndex
from .live import BACKOFF, BUILDING, IDLE, QUEUED, Compute, LiveHandle, OnError, OnResult, _View
from .writer import ViewWriter

__all__ = ["Engine"]

log = logging.getLogger("boiler.runtime")

_STOP = object()
#: How old the document watch's point may be to still read other documents at it.
_RECENT = _dt.timedelta(seconds=30)
_WAKE = object()


class Engine:
    """Keeps live views fresh from ``db``; owns its threads and watches.

    ``retry_base``/``retry_max``: exponential backoff (seconds) for a failing
    build. ``writer_batch_size``, ``writer_committers``: batch size and commits
    under way at once of :attr:`writer` (see :class:`ViewWriter`).

    ``confirm_delay``: when a new watch delivers its initial snapshot, the views
    depending on it are rebuilt once more this many seconds later (a rebuild
    with unchanged inputs emits nothing). This covers listener streams that
    miss a write racing their start: the Cloud Firestore emulator does (see
    FIELD-NOTES). Default: 0.1 s on Firestore, off (None) on the embedded store,
    whose listeners are exact.

    ``document_watches``: watch the documents views read one by one on one
    Listen stream (``db.watch_documents``) rather than through one listener per
    collection. Default ("auto"): on when the database offers it (Firestore).

    ``check_interval``: how often (seconds) the dispatcher takes listener
    errors in and looks for watches that stopped for good; those are
    subscribed again with the ``retry_base``/``retry_max`` backoff.
    """

    def __init__(
        self,
        db: Database,
        *,
        workers: int = 4,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        writer_batch_size: int = 500,
        writer_committers: int | None = None,
        build_batch: int = 64,
        confirm_delay: float | None | str = "auto",
        document_watches: bool | str = "auto",
        check_interval: float = 1.0,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        if build_batch < 1:
            raise ValueError(f"build_batch must be >= 1, got {build_batch}")
        self.build_batch = build_batch
        self.db = db
        self.workers = workers
        self.retry_base = retry_base
        self.retry_max = retry_max
        if confirm_delay == "auto":
            confirm_delay = None if db.backend_name == "embedded" else 0.1
        assert confirm_delay is None or isinstance(confirm_delay, int | float)
        self.confirm_delay: float | None = confirm_delay
        self._errors = ErrorLog()
        # The embedded store delivers events from its own dispatcher thread, in
        # commit order, and survives a slow callback; so does the document
        # watch's reader thread (ours, on Firestore): dirty views right there
        # (one thread hand-off less). Library listeners (Firestore) only enqueue.
        self._inline_events = db.backend_name == "embedded"
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._handling = 0  # events handed to the engine, not yet processed
        self._ready: queue.SimpleQueue[Any] = queue.SimpleQueue()
        if document_watches == "auto":
            document_watches = hasattr(db, "watch_documents")
        self._index = DependencyIndex(
            db,
            self._enqueue_event,
            self._errors,
            document_watches=bool(document_watches),
            retry_base=retry_base,
            retry_max=retry_max,
        )
        self.check_interval = check_interval
        self._checks: list[Callable[[float], None]] = []
        self._listener_errors: ListenerErrors | None = None
        self._lock = threading.Lock()
        self._views: dict[Hashable, _View[Any]] = {}
        self._timers: list[tuple[float, int, Hashable, bool]] = []
        self._seq = itertools.count()
        self._threads: list[threading.Thread] = []
        self._state = "new"
        self._queued = 0
        self.stats = {"builds": 0, "emits": 0, "failures": 0, "reads": 0, "events": 0}
        self.writer = ViewWriter(db, batch_size=writer_batch_size, committers=writer_committers)
        #: Domain objects loaded by builds, shared by state (see ModelCache).
        self.models = ModelCache()

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> Engine:
        """Start the dispatcher, the workers and the writer. Returns ``self``."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"engine already {self._state}; create a new Engine")
            self._state = "running"
        self._listener_errors = ListenerErrors(self.db)  # the ones from now on
        self.writer.start()
        self._spawn("boiler-engine-dispatch", self._dispatch_loop)
        for i in range(self.workers):
            self._spawn(f"boiler-engine-worker-{i}", self._worker_loop)
        return self

    def stop(self, timeout: float = 10.0, *, raise_errors: bool = True) -> None:
        """Stop threads, unsubscribe every watch, flush the writer.

        Raises :class:`~boiler.exceptions.RuntimeFailure` listing the recorded
        errors (engine and writer) unless ``raise_errors`` is False.
        """
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
            views = list(self._views.values())
            self._views.clear()
            for view in views:
                view.disposed = True
        self._index.close()
        deadline = time.monotonic() + timeout
        self._events.put(_STOP)
        for _ in range(self.workers):
            self._ready.put(_STOP)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._errors.record("stop", TimeoutError(f"thread {thread.name} did not stop"))
        self.writer.stop(max(0.1, deadline - time.monotonic()), raise_errors=False)
        self._take_listener_errors()
        if raise_errors:
            failure = self._errors.failure("engine stopped with errors")
            writer_failure = self.writer.failure()
            if failure is None:
                failure = writer_failure
            elif writer_failure is not None:
                failure.errors.extend(writer_failure.errors)
                failure.args = (f"{failure}\nwriter: {writer_failure}",)
            if failure is not None:
                raise failure

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop(raise_errors=exc[0] is None)

    # -- views ----------------------------------------------------------------------------
    def live(
        self,
        compute: Compute[Any],
        on_result: OnResult[Any],
        *,
        key: Hashable,
        on_error: OnError | None = None,
    ) -> LiveHandle:
        """Keep ``compute`` live under ``key``; the existing handle if ``key`` is live."""
        hash(key)
        with self._lock:
            if self._state == "stopped":
                raise RuntimeError("engine is stopped")
            view = self._views.get(key)
            if view is not None:
                assert view.handle is not None
                return view.handle
            view = _View(key=key, compute=compute, on_result=on_result, on_error=on_error)
            view.handle = LiveHandle(self, view)
            self._views[key] = view
            self._enqueue_locked(view)
            return view.handle

    def handle(self, key: Hashable) -> LiveHandle | None:
        """The handle of the live view ``key`` (None if not live)."""
        with self._lock:
            view = self._views.get(key)
            return view.handle if view else None

    @property
    def running(self) -> bool:
        """Whether :meth:`start` ran and :meth:`stop` did not."""
        return self._state == "running"

    # -- introspection ------------------------------------------------------------------------
    @property
    def watch_count(self) -> int:
        """Listeners currently open (one per watched collection)."""
        return self._index.watch_count

    def watched(self) -> list[Query]:
        """The collection (and collection-group) queries being listened to."""
        return self._index.watched()

    @property
    def document_watches(self) -> bool:
        """Whether document dependencies are watched one by one (one stream)."""
        return self._index.document_mode

    def watched_documents(self) -> frozenset[str]:
        """Documents watched one by one (empty unless :attr:`document_watches`)."""
        return self._index.watched_documents()

    def latest(self, path: str) -> DocumentSnapshot | None:
        """The newest state of the document at ``path`` seen by the watches, if any."""
        return self._index.latest(path)

    @property
    def errors(self) -> list[RecordedError]:
        """Recorded failures (newest last), each with stage, view key and
        exception; the database's listener errors since :meth:`start` included
        (stage ``listener``)."""
        self._take_listener_errors()
        return self._errors.snapshot()

    def on_check(self, check: Callable[[float], None]) -> None:
        """Run ``check(time.monotonic())`` on the dispatcher thread every
        ``check_interval`` seconds (the runtime keeps its own listeners alive
        from there). An exception it raises is recorded (stage ``check``)."""
        self._checks.append(check)

    def health(self) -> dict[str, Any]:
        self._take_listener_errors()
        last = self._errors.last
        with self._lock:
            live = len(self._views)
            building = sum(1 for v in self._views.values() if v.state == BUILDING)
            backoff = sum(1 for v in self._views.values() if v.state == BACKOFF)
            state = self._state
        return {
            "running": state == "running",
            "live_views": live,
            "watches": self.watch_count,
            "watches_down": self._index.watches_down,
            "document_targets": self._index.document_targets,
            "queue_depth": self._queued + self._events.qsize(),
            "building": building,
            "backoff": backoff,
            "error_count": self._errors.count,
            "last_error": str(last) if last else None,
            "writer_pending": self.writer.pending,
            **self.stats,
        }

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until no event, initial snapshot, confirmation or build is pending
        (views in backoff aside); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = (
                    self._queued
                    or self._handling
                    or any(t[3] for t in self._timers)
                    or any(v.state in (QUEUED, BUILDING) for v in self._views.values())
                )
            if (
                not busy
                and self._events.empty()
                and not self.db.undelivered_events
                and not self._index.awaiting_initial()
            ):
                return True
            time.sleep(0.005)
        return False

    # -- scheduling (under self._lock where noted) -----------------------------------------------
    def _enqueue_locked(self, view: _View[Any]) -> None:
        view.state = QUEUED
        self._queued += 1
        self._ready.put(view)

    def _mark_dirty(self, key: Hashable, *, force: bool = False) -> None:
        with self._lock:
            view = self._views.get(key)
            if view is None or view.disposed:
                return
            view.force = view.force or force
            # A view in backoff is retried at once when an input changes: the
            # change may be the fix (its pending timer is then ignored by seq).
            if view.state in (IDLE, BACKOFF):
                self._enqueue_locked(view)
            elif view.state == BUILDING:
                view.dirty_again = True

    def _dispose(self, view: _View[Any]) -> None:
        with self._lock:
            if view.disposed:
                return
            view.disposed = True
            if self._views.get(view.key) is view:
                del self._views[view.key]
        self._index.unregister(view.key)

    def _enqueue_event(self, key: Any, generation: int, event: Any) -> None:
        with self._lock:
            self._handling += 1  # until processed: wait_idle must not miss it
        if self._inline_events or key == DOCUMENTS:
            self._process_event(key, generation, event)
        else:
            self._events.put((key, generation, event))  # listener thread: nothing else

    def _spawn(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- dispatcher ---------------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        next_check = time.monotonic() + self.check_interval
        while True:
            now = time.monotonic()
            if now >= next_check:
                self._check(now)
                next_check = now + self.check_interval
            with self._lock:
                wait = next_check - now
                if self._timers:
                    wait = min(wait, self._timers[0][0] - now)
            try:
                item = self._events.get(timeout=max(0.0, wait))
            except queue.Empty:
                item = _WAKE
            if item is _STOP:
                return
            if item is not _WAKE:
                self._process_event(*item)
            self._fire_timers()

    def _check(self, now: float) -> None:
        """The periodic check: listener errors, dead watches, added checks."""
        self._take_listener_errors()
        for check in (self._index.revive, *self._checks):
            try:
                check(now)
            except Exception as e:
                self._errors.record("check", e)

    def _take_listener_errors(self) -> None:
        """Record the listener errors the database logged since the last call."""
        feed = self._listener_errors
        if feed is not None:
            for error in feed.take():
                self._errors.record("listener", error, logged=True)

    def _process_event(self, key: Any, generation: int, event: Any) -> None:
        try:
            try:
                dirty, confirm = self._index.process_event(key, generation, event)
            except Exception as e:
                where = key.describe() if isinstance(key, Query) else key
                self._errors.record("listen", e, key=where)
                dirty, confirm = set(), set()
            for view_key in dirty:
                self._mark_dirty(view_key)
            if confirm and self.confirm_delay is not None:
                at = time.monotonic() + self.confirm_delay
                with self._lock:
                    for view_key in confirm:
                        heapq.heappush(self._timers, (at, next(self._seq), view_key, True))
                self._events.put(_WAKE)  # the dispatcher re-arms its timer wait
            self.stats["events"] += 1  # processed (tests wait on it)
        finally:
            with self._lock:
                self._handling -= 1

    def _fire_timers(self) -> None:
        now = time.monotonic()
        confirm = []
        with self._lock:
            while self._timers and self._timers[0][0] <= now:
                _, seq, key, is_confirm = heapq.heappop(self._timers)
                view = self._views.get(key)
                if is_confirm:
                    confirm.append(key)
                elif view is not None and view.state == BACKOFF and view.timer == seq:
                    self._enqueue_locked(view)
        for key in confirm:
            self._mark_dirty(key)

    # -- workers ----------------------------------------------------------------------------------------
    def _worker_loop(self) -> None:
        while True:
            first = self._ready.get()
            if first is _STOP:
                return
            taken, stop = [first], False
            while len(taken) < self.build_batch:
                try:
                    item = self._ready.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:  # ours: finish this batch, then stop
                    stop = True
                    break
                taken.append(item)
            batch: list[tuple[_View[Any], bool]] = []
            with self._lock:
                for view in taken:
                    self._queued -= 1
                    if view.disposed or view.state != QUEUED:
                        continue
                    view.state = BUILDING
                    view.dirty_again = False
                    force, view.force = view.force, False
                    batch.append((view, force))
            if batch:
                built: list[tuple[_View[Any], bool]] = []
                try:
                    with self.writer.deferred():
                        self._build_batch(batch, built)
                except Exception as e:  # handing the batch's writes over failed
                    self._errors.record("write", e, key=tuple(v.key for v, _ in batch))
                # Only now, with their writes handed over, do the views count as
                # idle (wait_idle then flushes the writer: nothing is missed).
                with self._lock:
                    for view, stale in built:
                        if view.disposed:
                            view.state = IDLE
                        elif stale or view.dirty_again or view.force:
                            self._enqueue_locked(view)
                        else:
                            view.state = IDLE
            if stop:
                return

    def _build_batch(
        self, batch: list[tuple[_View[Any], bool]], built: list[tuple[_View[Any], bool]]
    ) -> None:
        """Build ``batch``: one read of every document dependency, then each view.

        The batch reads at one point: a snapshot reader pinned to the read
        time of the first read (Firestore: no transaction round trips), or one
        read-only transaction (embedded: a snapshot). What a view reads beyond
        the prefetch comes from the same point. Views built go to ``built``
        with whether they are already stale; failed ones are scheduled for a
        retry.
        """
        wanted = list(dict.fromkeys(p for v, _ in batch if v.deps for p in v.deps.documents))
        # Document-watch mode: the watched states hold together at the stream's
        # last consistent point; read from them (no round trip) when all are
        # known and current, and anything else at that same point. Only for
        # views that read documents alone and whose last build is not newer than
        # that point (other listeners, a first build or a refresh may need a
        # newer one), and while the point is recent enough to be read at.
        cacheable = wanted and all(
            v.deps is not None and not v.deps.queries and v.version is not None for v, _ in batch
        )
        snaps, at = self._index.consistent_states(wanted) if cacheable else ({}, None)
        if at is not None and (
            _dt.datetime.now(_dt.UTC) - at >= _RECENT
            or any(v.version is not None and v.version > at for v, _ in batch)
        ):
            snaps, at = {}, None
        try:
            with contextlib.ExitStack() as stack:
                pinned = getattr(self.db, "snapshot_reader", None)
                reader: Any
                if pinned is not None:
                    # at the watched states' point (reads nothing unless a view
                    # needs more), or at the point of the first read below
                    reader = pinned(at)
                    if at is not None:
                        reader = _WatchedFirst(self._index, at, reader)
                else:
                    reader = stack.enter_context(self.db.transaction(read_only=True))
                if at is None:
                    snaps = {s.path: s for s in reader.get_all(wanted)} if wanted else {}
                    if wanted:
                        self.stats["reads"] += 1
                for view, force in batch:
                    try:
                        built.append((view, self._build(view, force, reader, snaps, at)))
                    except Exception as e:
                        self._failed(view, e, force)
        except Exception as e:  # the batch's read (or its snapshot) failed
            self._errors.record("build", e, key=tuple(v.key for v, _ in batch))
            done = {id(v) for v, _ in built}
            for view, force in batch:
                if id(view) not in done and view.state == BUILDING:
                    self._failed(view, e, force)

    def _build(
        self,
        view: _View[Any],
        force: bool,
        reader: Any,
        snaps: dict[str, DocumentSnapshot],
        at: _dt.datetime | None = None,
    ) -> bool:
        """Build ``view`` once; emit if its inputs changed. True if already stale.

        ``snaps``: last build's document dependencies (and other views'), all
        holding at one point: read just now, or the document watch's states at
        its consistent point ``at``. ``reader`` serves whatever else
        ``compute`` reads, from that same point.
        """
        deps = view.deps
        mine = {p: snaps[p] for p in deps.documents if p in snaps} if deps is not None else {}
        store = Store(reader, prefetched=mine, models=self.models, version=at)
        trips = getattr(reader, "round_trips", None)  # _WatchedFirst: what really went out
        result = view.compute(store)
        self.stats["reads"] += store.round_trips if trips is None else reader.round_trips - trips
        deps = store.dependencies
        version = store.version or _dt.datetime.now(_dt.UTC)
        self.stats["builds"] += 1
        view.builds += 1

        def still_live() -> bool:
            return not view.disposed

        stale = self._index.register(view.key, deps, version, still_live=still_live)
        if view.disposed:
            return False
        if force or view.deps is None or deps != view.deps:
            view.on_result(result, version)
            self.stats["emits"] += 1
            view.emits += 1
            view.result, view.version = result, version
        view.deps = deps
        view.attempts = 0
        view.built.set()
        return stale

    def _failed(self, view: _View[Any], exc: Exception, force: bool) -> None:
        self.stats["failures"] += 1
        view.attempts += 1
        self._errors.record("build", exc, key=view.key, attempt=view.attempts)
        if view.on_error is not None:
            try:
                view.on_error(exc)
            except Exception as e:
                self._errors.record("on_error", e, key=view.key)
        delay = backoff(view.attempts, self.retry_base, self.retry_max)
        with self._lock:
            view.force = view.force or force
            if view.disposed:
                view.state = IDLE
                return
            view.state = BACKOFF
            view.timer = next(self._seq)
            heapq.heappush(self._timers, (time.monotonic() + delay, view.timer, view.key, False))
        self._events.put(_WAKE)


class _WatchedFirst:
    """A reader at the document watch's point ``at``: documents the watch holds
    at exactly that point (say, a user a view starts reading when its ticket
    turns to attending) come from it; anything else from ``pinned`` (a reader
    pinned to ``at``). ``round_trips`` counts reads that went to the database."""

    def __init__(self, index: DependencyIndex, at: _dt.datetime, pinned: Any) -> None:
        self._index = index
        self._at = at
        self._pinned = pinned
        self.round_trips = 0

    def get_all(self, paths: list[str]) -> list[DocumentSnapshot]:
        held = self._index.states_at(paths, self._at)
        missing = [p for p in paths if p not in held]
        if missing:
            self.round_trips += 1
            held.update((s.path, s) for s in self._pinned.get_all(missing))
        return [held[p] for p in paths]

    def query(self, query: Query) -> list[DocumentSnapshot]:
        self.round_trips += 1
        result: list[DocumentSnapshot] = self._pinned.query(query)
        return result
