"""Serving: HTTP and Socket.IO on a threaded Werkzeug server, next to the runtime.

::

    server = Server(app, db, verifier=verifier, runtime=runtime, port=0).start()
    ...                                  # server.port, server.streams.stats()
    server.stop()                        # clients disconnected, every thread joined

With ``message_queue="redis://..."`` several server processes share Socket.IO
fan-out; exactly one of them runs the runtime and publishes view versions.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import flask
import socketio
from flask_socketio import SocketIO
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from .app import create_flask_app
from .runtime.errors import RecordedError
from .ws import ViewStreams

if TYPE_CHECKING:
    from .application import App
    from .auth import TokenVerifier
    from .database import Database
    from .runtime.process import Runtime

log = logging.getLogger("boiler.serve")


class _Handler(WSGIRequestHandler):
    """Ends the TCP connection when a client drops it (a closed websocket would
    otherwise be read as HTTP and its disconnect delayed by seconds), and sends
    small frames at once (Nagle + delayed ACKs add ~40 ms to back-to-back events)."""

    disable_nagle_algorithm = True

    def connection_dropped(self, error: BaseException, environ: Any = None) -> None:
        self.close_connection = True


class _Stopped(BaseException):
    """Ends the Redis listener thread (not an ``Exception``: passes its retry loop)."""


_DEFER = object()


class _RedisManager(socketio.RedisManager):  # type: ignore[misc]
    """Flask-SocketIO's Redis fan-out, with a listener thread that stops."""

    def __init__(self, url: str, channel: str) -> None:
        super().__init__(url, channel=channel)
        self._stopped = threading.Event()
        self._local = threading.local()

    def emit(self, *args: Any, **kwargs: Any) -> Any:
        """Publish first, then deliver to this process's clients.

        The library delivers locally first, so every other process started
        its fan-out only after this one had queued a packet to each of its
        own clients (~190 ms later with 500 clients each)."""
        if kwargs.get("ignore_queue") or kwargs.get("callback") is not None:
            return super().emit(*args, **kwargs)
        self._local.deferred = _DEFER
        try:
            return super().emit(*args, **kwargs)  # _handle_emit defers, then _publish
        finally:
            message, self._local.deferred = self._local.deferred, None
            if message is not _DEFER and message is not None:
                super()._handle_emit(message)

    def _handle_emit(self, message: Any) -> None:
        if getattr(self._local, "deferred", None) is _DEFER:  # our own emit: after publishing
            self._local.deferred = message
            return
        super()._handle_emit(message)

    def _redis_listen_with_retries(self) -> Iterator[Any]:
        delay, pubsub = 0.5, None
        while not self._stopped.is_set():
            try:
                if pubsub is None:
                    self._redis_connect()
                    pubsub = self.pubsub
                    pubsub.subscribe(self.channel)
                message = pubsub.get_message(timeout=0.2)
                delay = 0.5
                if message is not None:
                    yield message
            except Exception as e:  # redis down: retry with backoff until stopped
                log.error("message queue: cannot receive (%s); retrying in %.1fs", e, delay)
                pubsub = None
                self._stopped.wait(delay)
                delay = min(delay * 2, 30.0)
        if pubsub is not None:
            pubsub.close()
        raise _Stopped

    def _thread(self) -> None:
        try:
            super()._thread()
        except _Stopped:
            pass

    def close(self, timeout: float) -> None:
        self._stopped.set()
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.join(timeout)


class Server:
    """A threaded HTTP + Socket.IO server for ``app``'s ``ws`` mediators.

    HTTP is :func:`boiler.app.create_flask_app` unless ``flask_app`` is given;
    ``socketio_options`` go to ``SocketIO`` (e.g. ``cors_allowed_origins``);
    ``async_handlers`` stays False: one client's ``subscribe`` and
    ``unsubscribe`` must be handled in the order sent (an unsubscribe overtaking
    its subscribe would leave the client subscribed), so passing
    ``async_handlers=True`` raises ValueError.
    ``runtime`` (optional) publishes new view versions to subscribed clients;
    without it (web only) views arrive through ``message_queue`` from the
    process that has one. ``port=0`` picks a free port (see :attr:`port`).
    """

    def __init__(
        self,
        app: App,
        db: Database,
        *,
        verifier: TokenVerifier,
        runtime: Runtime | None = None,
        host: str = "127.0.0.1",
        port: int = 5000,
        message_queue: str | None = None,
        channel: str = "boiler",
        flask_app: flask.Flask | None = None,
        socketio_options: dict[str, Any] | None = None,
    ) -> None:
        self.app = app
        self.db = db
        self.verifier = verifier
        self.runtime = runtime
        self.host = host
        self.port = port
        self.message_queue = message_queue
        self.channel = channel
        self.flask_app = flask_app
        self.socketio_options = dict(socketio_options or {})
        if self.socketio_options.get("async_handlers", False) is not False:
            raise ValueError(
                "socketio_options: async_handlers must stay False: a client's subscribe and "
                "unsubscribe events are handled in the order it sent them"
            )
        self.socketio: SocketIO | None = None
        self.streams: ViewStreams | None = None
        self._manager: _RedisManager | None = None
        self._http: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Server:
        if self._http is not None:
            raise RuntimeError("server already started")
        flask_app = self.flask_app or create_flask_app(
            self.app, self.runtime if self.runtime is not None else self.db, verifier=self.verifier
        )
        options: dict[str, Any] = {"async_handlers": False, **self.socketio_options}
        if self.message_queue:
            self._manager = _RedisManager(self.message_queue, self.channel)
            options["client_manager"] = self._manager
        self.socketio = SocketIO(flask_app, async_mode="threading", **options)
        writer = self.runtime.engine.writer if self.runtime is not None else None
        self.streams = ViewStreams(
            self.socketio, self.app.ws, db=self.db, verifier=self.verifier, writer=writer
        )
        self._http = make_server(
            self.host, self.port, flask_app, threaded=True, request_handler=_Handler
        )
        self.port = self._http.server_port
        self.flask_app = flask_app
        self._thread = threading.Thread(
            target=self._http.serve_forever, args=(0.1,), name="boiler-http", daemon=True
        )
        self._thread.start()
        log.info("serving on http://%s:%s", self.host, self.port)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def errors(self) -> list[RecordedError]:
        """Errors recorded while publishing views."""
        return [] if self.streams is None else self.streams.errors

    def stop(self, timeout: float = 10.0) -> None:
        """Stop publishing, disconnect clients, stop the HTTP server and its threads."""
        if self.streams is not None:
            self.streams.stop(timeout)
        if self._http is not None:
            self._http.shutdown()  # no new requests
        if self.socketio is not None:
            eio = self.socketio.server.eio
            # wait=False: a session whose writer already ended would never drain its queue
            for session in list(eio.sockets.values()):
                session.close(wait=False, reason=eio.reason.SERVER_DISCONNECT)
            self.socketio.server.shutdown()  # the engine.io service thread
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self._http is not None:
            self._http.server_close()
            self._http = None
        if self._manager is not None:
            self._manager.close(timeout)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_until_signal(server: Server, runtime: Runtime | None = None) -> None:
    """Run ``server`` (started if needed) until SIGTERM/SIGINT; then stop it and ``runtime``."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        if not server.running:
            server.start()
        while not stop.wait(0.5):
            if runtime is not None:
                runtime.freeze_heap_when_settled()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("stopping")
        server.stop()
        if runtime is not None:
            runtime.stop(raise_errors=False)


__all__ = ["Server", "serve_until_signal"]
