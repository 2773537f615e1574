"""ViewStreams: WsMediators attached to a Flask-SocketIO server."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from flask_socketio import SocketIO

from ..auth import TokenVerifier
from ..database import Database
from ..runtime.errors import ErrorLog, RecordedError
from ..runtime.writer import ViewWriter
from .mediator import WsMediator
from .namespace import ViewNamespace
from .publisher import Publisher


class ViewStreams:
    """Serves ``mediators`` on ``socketio``; publishes ``writer``'s views if given.

    A process without a runtime (web only) passes no writer: it serves
    connections and initial views, and receives new versions through the
    message queue from the one process that publishes.

    Every ``expiry_interval`` seconds one thread (started through
    ``socketio.start_background_task``, ended by :meth:`stop`) ends the
    subscriptions of connections whose token expired
    (:meth:`ViewNamespace.end_expired`).
    """

    def __init__(
        self,
        socketio: SocketIO,
        mediators: Iterable[WsMediator],
        *,
        db: Database,
        verifier: TokenVerifier,
        writer: ViewWriter | None = None,
        expiry_interval: float = 1.0,
    ) -> None:
        if not expiry_interval > 0:
            raise ValueError(f"expiry_interval must be > 0 seconds, got {expiry_interval!r}")
        self.socketio = socketio
        self.mediators = list(mediators)
        seen: set[str] = set()
        for m in self.mediators:
            if m.namespace in seen:
                raise ValueError(f"two WsMediators on namespace {m.namespace!r}")
            seen.add(m.namespace)
        self.namespaces = [ViewNamespace(m, db=db, verifier=verifier) for m in self.mediators]
        for namespace in self.namespaces:
            socketio.on_namespace(namespace)
        self.publisher: Publisher | None = None
        if writer is not None and self.mediators:
            self.publisher = Publisher(socketio, self.mediators).start(writer)
        self.expired = 0  # subscriptions ended because their token expired
        self._errors = ErrorLog()
        self._stopping = threading.Event()
        self._expiry: Any = None
        if self.namespaces:
            self._expiry = socketio.start_background_task(self._expiry_loop, expiry_interval)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        expiry, self._expiry = self._expiry, None
        if expiry is not None:
            expiry.join(timeout)
            if expiry.is_alive():
                self._errors.record("expiry stop", TimeoutError("expiry thread did not stop"))
        if self.publisher is not None:
            self.publisher.stop(timeout)

    def _expiry_loop(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            for namespace in self.namespaces:
                try:
                    self.expired += namespace.end_expired(self.socketio.server)
                except Exception as e:  # recorded; the next round tries again
                    self._errors.record("token expiry", e, key=namespace.namespace)

    @property
    def errors(self) -> list[RecordedError]:
        publisher = [] if self.publisher is None else self.publisher.errors
        return self._errors.snapshot() + publisher

    def stats(self) -> dict[str, Any]:
        """Connections and subscriptions per namespace, views published."""
        return {
            "connections": sum(n.connection_count for n in self.namespaces),
            "subscriptions": sum(n.subscription_count for n in self.namespaces),
            "published": 0 if self.publisher is None else self.publisher.published,
            "expired": self.expired,
        }
