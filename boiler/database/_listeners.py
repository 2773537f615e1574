"""Listener state and the dispatcher thread of the embedded store.

The store computes each listener's event under its write lock (so events are
in commit order) and hands it to the :class:`Dispatcher`, whose single thread
runs the callbacks outside any lock. A failing callback is logged, recorded
and never stops its listener or the others.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from .base import DocumentChange, DocumentSnapshot, ListenCallback, ListenEvent
from .query import Query
from .results import ResultSet

logger = logging.getLogger("boiler.database.embedded")

_STOP: Any = object()


class Listener:
    """A registered listener: its target, callback and last delivered state."""

    __slots__ = ("target", "callback", "active")

    def __init__(self, target: str, callback: ListenCallback) -> None:
        self.target = target
        self.callback: ListenCallback | None = callback
        self.active = True

    def release(self) -> None:
        self.active = False
        self.callback = None


class DocumentListener(Listener):
    """Listens to one document path."""

    __slots__ = ("path", "current")

    def __init__(self, path: str, callback: ListenCallback) -> None:
        super().__init__(f"document {path}", callback)
        self.path = path
        self.current: DocumentSnapshot | None = None

    def change(self, snap: DocumentSnapshot | None) -> list[DocumentChange]:
        """Move to ``snap`` (None: missing); the changes, empty if none."""
        old, self.current = self.current, snap
        if snap is None:
            return [] if old is None else [DocumentChange("removed", old, 0, -1)]
        if old is None:
            return [DocumentChange("added", snap, -1, 0)]
        if old.update_time == snap.update_time:
            return []
        return [DocumentChange("modified", snap, 0, 0)]

    def docs(self) -> list[DocumentSnapshot]:
        return [] if self.current is None else [self.current]

    def release(self) -> None:
        super().release()
        self.current = None


class QueryListener(Listener):
    """Listens to a query; keeps its current ordered result set."""

    __slots__ = ("query", "results")

    def __init__(self, query: Query, callback: ListenCallback) -> None:
        super().__init__(f"query {query.describe()}", callback)
        self.query = query
        self.results: ResultSet | None = ResultSet(query)

    def release(self) -> None:
        super().release()
        self.results = None


class Dispatcher:
    """One thread running listener callbacks in the order events were queued."""

    def __init__(self, on_error: Callable[[Listener, BaseException], None]) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_error = on_error
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._count_lock = threading.Lock()
        #: Events submitted whose callback has not finished.
        self.undelivered = 0

    def submit(self, listener: Listener, event: ListenEvent) -> None:
        """Queue ``event`` for ``listener`` (starts the thread on first use)."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(
                        target=self._run, name="boiler-embedded-listeners", daemon=True
                    )
                    thread.start()
                    self._thread = thread
        with self._count_lock:
            self.undelivered += 1
        self._queue.put((listener, event))

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            listener, event = item
            callback = listener.callback
            try:
                if callback is not None and listener.active:
                    callback(event)
            except Exception as e:  # noqa: BLE001 - reported, never kills the listener
                self._on_error(listener, e)
            finally:
                with self._count_lock:
                    self.undelivered -= 1

    def in_dispatcher(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued, then stop the thread (not waiting on itself)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is None:
            return
        self._queue.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.error("listener dispatcher did not stop within %.1fs", timeout)


def log_listener_error(listener: Listener, error: BaseException) -> None:
    logger.error("listener callback for %s failed", listener.target, exc_info=error)
