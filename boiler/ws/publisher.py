"""Publish committed view documents to the Socket.IO rooms named by their paths."""

from __future__ import annotations

import datetime as _dt
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from flask_socketio import SocketIO

from ..runtime.errors import ErrorLog, RecordedError
from ..runtime.writer import ViewWriter
from .mediator import WsMediator
from .protocol import VIEW, view_payload

_STOP = object()


class Publisher:
    """Listens to a :class:`ViewWriter` and emits ``view`` events to rooms.

    The writer's listener only enqueues; one thread (started through
    ``socketio.start_background_task``) emits. With a message queue the emit
    goes through it, so every server process delivers to its own clients.
    """

    def __init__(self, socketio: SocketIO, mediators: Sequence[WsMediator]) -> None:
        self.socketio = socketio
        self.mediators = list(mediators)
        self.published = 0
        self._errors = ErrorLog()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._remove: Callable[[], None] | None = None
        self._thread: Any = None
        self._idle = threading.Condition()
        self._pending = 0

    def start(self, writer: ViewWriter) -> Publisher:
        if self._thread is not None:
            raise RuntimeError("publisher already started")
        self._thread = self.socketio.start_background_task(self._loop)
        self._remove = writer.add_listener(self._on_write)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, emit what is queued, end the thread."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout)
            if thread.is_alive():
                self._errors.record("publisher stop", TimeoutError("publisher did not stop"))

    @property
    def errors(self) -> list[RecordedError]:
        return self._errors.snapshot()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued view has been emitted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _on_write(self, path: str, data: dict[str, Any] | None, version: _dt.datetime) -> None:
        targets = [m.namespace for m in self.mediators if m.matches(path)]
        if targets:
            with self._idle:
                self._pending += 1
            self._queue.put((path, data, version, targets))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            path, data, version, targets = item
            try:
                payload = view_payload(path, data, version)
                for namespace in targets:
                    self.socketio.emit(VIEW, payload, to=path, namespace=namespace)
                self.published += 1
            except Exception as e:
                self._errors.record("publish", e, key=path)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()
