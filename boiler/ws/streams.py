"""ViewStreams: WsMediators attached to a Flask-SocketIO server."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_socketio import SocketIO

from ..auth import TokenVerifier
from ..database import Database
from ..runtime.errors import RecordedError
from ..runtime.writer import ViewWriter
from .mediator import WsMediator
from .namespace import ViewNamespace
from .publisher import Publisher


class ViewStreams:
    """Serves ``mediators`` on ``socketio``; publishes ``writer``'s views if given.

    A process without a runtime (web only) passes no writer: it serves
    connections and initial views, and receives new versions through the
    message queue from the one process that publishes.
    """

    def __init__(
        self,
        socketio: SocketIO,
        mediators: Iterable[WsMediator],
        *,
        db: Database,
        verifier: TokenVerifier,
        writer: ViewWriter | None = None,
    ) -> None:
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

    def stop(self, timeout: float = 10.0) -> None:
        if self.publisher is not None:
            self.publisher.stop(timeout)

    @property
    def errors(self) -> list[RecordedError]:
        return [] if self.publisher is None else self.publisher.errors

    def stats(self) -> dict[str, Any]:
        """Connections and subscriptions per namespace, views published."""
        return {
            "connections": sum(n.connection_count for n in self.namespaces),
            "subscriptions": sum(n.subscription_count for n in self.namespaces),
            "published": 0 if self.publisher is None else self.publisher.published,
        }
