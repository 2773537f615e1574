"""The Runtime: the long-lived process that runs mediators on an Engine.

It owns every thread: the engine's workers, the view writer, and one trigger
thread per mediator (changes of one source are handled in commit order).
Listener callbacks only enqueue. Errors are recorded with context, never
swallowed; :meth:`Runtime.stop` raises them (``RuntimeFailure``). A mediator's
source listener that stops for good is subscribed again with backoff from the
engine's periodic check (:class:`~.revive.SourceWatch`).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..database import Database, ListenEvent
from .engine import Engine
from .errors import ErrorLog, RecordedError
from .revive import SourceWatch

if TYPE_CHECKING:
    from ..mediators.base import Mediator

log = logging.getLogger("boiler.runtime")

_STOP = object()
_WAKE = object()


class _MediatorRunner:
    """One mediator: its source listener, its trigger thread and its timers.

    Timers (:meth:`call_later`, e.g. a patch's retry) run on the trigger
    thread too, between events; each one scheduled counts as pending until
    it has run, so :meth:`Runtime.wait_idle` waits for it.
    """

    def __init__(self, runtime: Runtime, mediator: Mediator) -> None:
        self.runtime = runtime
        self.mediator = mediator
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending = 0
        self.lock = threading.Lock()
        self.initial_done = threading.Event()
        self.watch: SourceWatch | None = None
        self.thread = threading.Thread(
            target=self._loop, name=f"boiler-mediator-{type(mediator).__name__}", daemon=True
        )
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False

    def start(self) -> None:
        self.thread.start()
        source = type(self.mediator).source
        engine = self.runtime.engine
        self.watch = SourceWatch(
            self.runtime.db,
            source.query,
            self._on_event,
            on_error=self._on_listen_error,
            retry_base=engine.retry_base,
            retry_max=engine.retry_max,
        ).start()

    @property
    def source_down(self) -> bool:
        """Whether the source listener stopped and is not delivering again yet."""
        watch = self.watch
        return watch is not None and watch.down

    def check(self, now: float) -> None:
        """Subscribe the source again if its listener stopped (engine dispatcher)."""
        watch = self.watch
        if watch is not None:
            watch.check(now)

    def _on_listen_error(self, exc: BaseException) -> None:
        self.runtime.record_error(f"mediator {type(self.mediator).__name__} source", exc)

    def _on_event(self, event: ListenEvent) -> None:  # listener thread: only enqueue
        with self.lock:
            self.pending += 1
        self.queue.put(event)

    def call_later(self, delay: float, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` on the trigger thread in ``delay`` seconds; False once stopping."""
        with self.lock:
            if self._stopping:
                return False
            heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), fn))
            self.pending += 1
        self.queue.put(_WAKE)  # the loop may be waiting for a later timer, or for nothing
        return True

    def _loop(self) -> None:
        first = True
        while True:
            try:
                item = self.queue.get(timeout=self._run_due_timers())
            except queue.Empty:  # the next timer is due
                continue
            if item is _STOP:
                return
            if item is _WAKE:
                continue
            try:
                self.mediator.handle_event(item, initial=first)
            except Exception as e:
                self.runtime.record_error(f"mediator {type(self.mediator).__name__}", e)
            finally:
                if first:
                    first = False
                    self.initial_done.set()
                with self.lock:
                    self.pending -= 1

    def _run_due_timers(self) -> float | None:
        """Run the timers due; seconds until the next one (None: no timer)."""
        while True:
            with self.lock:
                if self._stopping or not self._timers:
                    return None
                due, _, fn = self._timers[0]
                wait = due - time.monotonic()
                if wait > 0:
                    return wait
                heapq.heappop(self._timers)
            try:
                fn()
            except Exception as e:
                self.runtime.record_error(f"timer {type(self.mediator).__name__}", e)
            finally:
                with self.lock:
                    self.pending -= 1

    def stop(self, timeout: float) -> None:
        """Release the listener, end the thread, then call ``mediator.stopped()``.

        Never raises: failures are recorded. ``stopped()`` is skipped (and
        that recorded) if the thread does not end in ``timeout``: it may
        still be handling a change.
        """
        name = type(self.mediator).__name__
        with self.lock:
            self._stopping = True
            self.pending -= len(self._timers)  # scheduled work that will not run
            self._timers.clear()
        watch, self.watch = self.watch, None
        if watch is not None:
            try:
                watch.unsubscribe()
            except Exception as e:
                self.runtime.record_error(f"stop {name}: unsubscribe", e)
        self.queue.put(_STOP)
        if self.thread.is_alive():
            self.thread.join(timeout)
            if self.thread.is_alive():
                self.runtime.record_error(
                    "stop",
                    TimeoutError(
                        f"thread {self.thread.name} did not stop in {timeout:.1f}s;"
                        f" {name}.stopped() skipped"
                    ),
                )
                return
        try:
            self.mediator.stopped()
        except Exception as e:
            self.runtime.record_error(f"{name}.stopped", e)


class Runtime:
    """Runs mediators against ``db`` and keeps their views fresh.

    ::

        runtime = Runtime(db, mediators=[MeetingSessionMediator]).start()
        ...
        runtime.stop()      # raises RuntimeFailure if anything failed
    """

    def __init__(
        self,
        db: Database | None = None,
        *,
        mediators: Iterable[type[Mediator]] = (),
        workers: int = 4,
    ) -> None:
        if db is None:
            from ..context import Context

            db = Context.db
        self.db = db
        self.engine = Engine(db, workers=workers)
        self.engine.on_check(self._check_sources)
        self._errors = ErrorLog()
        self._runners: list[_MediatorRunner] = []
        self._pending_classes = list(mediators)
        self._state = "new"
        self._lock = threading.Lock()
        self._stop_requested = threading.Event()
        #: Whether :meth:`freeze_heap` ran.
        self.heap_frozen = False

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Runtime:
        """Start the engine, then every mediator (each subscribes its source)."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(f"runtime already {self._state}")
            self._state = "running"
        self.engine.start()
        for cls in self._pending_classes:
            self.add(cls)
        self._pending_classes.clear()
        return self

    def add(self, mediator: type[Mediator] | Mediator) -> Mediator:
        """Start ``mediator`` (a class or an instance) on this runtime."""
        if self._state == "new":
            self.start()
        instance = mediator(self) if isinstance(mediator, type) else mediator
        runner = _MediatorRunner(self, instance)
        # Checked and started under the lock: stop() either sees this runner
        # (and stops it) or this call fails, so nothing is left running.
        with self._lock:
            if self._state != "running":
                raise RuntimeError("runtime is stopped")
            self._runners.append(runner)
            try:
                runner.start()
                return instance
            except BaseException as e:
                self._runners.remove(runner)
                failure = e
        runner.stop(1.0)  # not under the lock: it joins a thread, runs mediator.stopped()
        raise failure

    def remove(self, mediator: Mediator) -> None:
        with self._lock:
            runners = [r for r in self._runners if r.mediator is mediator]
            self._runners = [r for r in self._runners if r.mediator is not mediator]
        for runner in runners:
            runner.stop(10.0)

    def call_later(self, mediator: Mediator, delay: float, fn: Callable[[], None]) -> bool:
        """Run ``fn()`` on ``mediator``'s trigger thread in ``delay`` seconds.

        It counts as pending work (:meth:`wait_idle` waits for it); an
        exception it raises is recorded. False (and nothing scheduled) if
        ``mediator`` is not running here, or is stopping.
        """
        with self._lock:
            runner = next((r for r in self._runners if r.mediator is mediator), None)
        return runner is not None and runner.call_later(delay, fn)

    def stop(self, timeout: float = 10.0, *, raise_errors: bool = True) -> None:
        """Stop mediators, the engine and the writer; release every listener.

        Raises :class:`~boiler.exceptions.RuntimeFailure` listing recorded
        errors (mediators, engine, writer) unless ``raise_errors`` is False.
        """
        with self._lock:
            if self._state == "stopped":
                return
            self._state = "stopped"
            runners, self._runners = self._runners, []
        self._stop_requested.set()
        deadline = time.monotonic() + timeout
        for runner in runners:
            try:  # runner.stop records its failures; whatever else, go on to the engine
                runner.stop(max(0.1, deadline - time.monotonic()))
            except Exception as e:
                self.record_error(f"stop {type(runner.mediator).__name__}", e)
        failure = self._errors.failure("runtime stopped with errors")
        try:
            self.engine.stop(max(0.1, deadline - time.monotonic()), raise_errors=raise_errors)
        except Exception as engine_failure:
            if failure is None:
                raise
            failure.errors.extend(getattr(engine_failure, "errors", [engine_failure]))
        finally:
            if self.heap_frozen:  # what this runtime held may be collected again
                gc.unfreeze()
                self.heap_frozen = False
        if raise_errors and failure is not None:
            raise failure

    def run_forever(self, *, install_signal_handlers: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or :meth:`request_stop`), then stop cleanly."""
        if self._state == "new":
            self.start()
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self._stop_requested.set())
        while not self._stop_requested.wait(0.5):
            self.freeze_heap_when_settled()
        log.info("boiler runtime: stopping")
        self.stop(raise_errors=False)
        for error in self.errors:
            log.error("boiler runtime: recorded %s", error)

    def freeze_heap_when_settled(self) -> bool:
        """:meth:`freeze_heap` once, the first time sources and builds have
        settled; True once done (cheap to call again)."""
        if self.heap_frozen:
            return True
        if self._state == "running" and self.sources_ready() and self.wait_idle(0.05):
            self.freeze_heap()
        return self.heap_frozen

    def freeze_heap(self) -> None:
        """Collect garbage once, then keep every object alive now out of later
        collections (``gc.freeze()``).

        Call it once start-up has settled (``boiler run`` does, when the
        runtime is first idle): the views, index entries and cached models
        built at start-up are then scanned by no later full collection (with
        10,000 views such a collection paused a change for ~0.35 s). Frozen
        objects are still freed when nothing refers to them; reference cycles
        among them wait until :meth:`stop`, which unfreezes the heap.
        """
        gc.collect()
        gc.freeze()
        self.heap_frozen = True

    def request_stop(self) -> None:
        self._stop_requested.set()

    def __enter__(self) -> Runtime:
        return self.start() if self._state == "new" else self

    def __exit__(self, *exc: object) -> None:
        self.stop(raise_errors=exc[0] is None)

    @property
    def running(self) -> bool:
        """Whether the runtime (and its engine) is running; cheap, unlike :meth:`health`."""
        return self._state == "running" and self.engine.running

    # -- errors and health -----------------------------------------------------------------
    def record_error(self, stage: str, exc: BaseException, *, key: Any = None) -> None:
        self._errors.record(stage, exc, key=key)

    @property
    def errors(self) -> list[RecordedError]:
        """Every recorded error: mediators, engine builds, the writer and the
        database's listener errors since start (stage ``listener``)."""
        return self._errors.snapshot() + self.engine.errors + self.engine.writer.errors

    def _check_sources(self, now: float) -> None:
        """The engine's periodic check: mediator sources whose listener stopped."""
        with self._lock:
            runners = list(self._runners)
        for runner in runners:
            runner.check(now)

    @property
    def mediators(self) -> list[Mediator]:
        with self._lock:
            return [r.mediator for r in self._runners]

    def health(self) -> dict[str, Any]:
        """A JSON-able summary: running, views, watches, queues, errors."""
        engine = self.engine.health()
        with self._lock:
            runners = list(self._runners)
        errors = self.errors
        return {
            **engine,
            "running": self._state == "running" and engine["running"],
            "mediators": [type(r.mediator).__name__ for r in runners],
            "trigger_queue": sum(r.pending for r in runners),
            "error_count": len(errors),
            "last_error": str(errors[-1]) if errors else None,
            "source_watches": sum(1 for r in runners if r.watch is not None),
            "source_watches_down": sum(1 for r in runners if r.source_down),
            "heap_frozen": self.heap_frozen,
            "switch_interval": sys.getswitchinterval(),
        }

    def sources_ready(self) -> bool:
        """Whether every mediator has handled its source's initial snapshot."""
        with self._lock:
            return all(r.initial_done.is_set() for r in self._runners)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until sources, builds and view writes have all settled."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline:
            with self._lock:
                runners = list(self._runners)
            if all(
                r.initial_done.is_set() and r.pending == 0 and not r.source_down for r in runners
            ):
                left = max(0.01, deadline - time.monotonic())
                if self.engine.wait_idle(left) and self.engine.writer.flush(left):
                    if all(r.pending == 0 for r in runners) and self.engine.wait_idle(0.01):
                        return True
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return False


_current: Runtime | None = None
_current_lock = threading.Lock()


def current_runtime() -> Runtime:
    """The context runtime (created on the context database and started on first use)."""
    global _current
    with _current_lock:
        if _current is None or _current._state == "stopped":
            _current = Runtime().start()
        return _current


def set_current_runtime(runtime: Runtime | None) -> Runtime | None:
    """Install ``runtime`` as the context runtime; returns the previous one."""
    global _current
    with _current_lock:
        previous, _current = _current, runtime
        return previous
