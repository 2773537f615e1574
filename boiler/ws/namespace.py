"""The Socket.IO namespace that serves one WsMediator's subscriptions."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

import flask
from flask_socketio import Namespace, emit, join_room, leave_room
from socketio.exceptions import ConnectionRefusedError as Refused

from ..auth import TokenVerifier
from ..database import Database
from ..exceptions import Unauthorized
from .mediator import WsMediator
from .protocol import ERROR, VIEW, SubscribeError, error_payload

log = logging.getLogger("boiler.ws")


@dataclass
class _Connection:
    uid: str
    rooms: set[str] = field(default_factory=set)


class ViewNamespace(Namespace):
    """``connect`` (token in ``auth``), ``subscribe``, ``unsubscribe``, ``disconnect``.

    Handlers of one connection run in order (the server uses
    ``async_handlers=False``); the state shared across connections is locked.
    """

    def __init__(
        self,
        mediator: WsMediator,
        *,
        db: Database,
        verifier: TokenVerifier,
        max_subscriptions: int = 256,
    ) -> None:
        super().__init__(mediator.namespace)
        self.mediator = mediator
        self.db = db
        self.verifier = verifier
        self.max_subscriptions = max_subscriptions
        self._lock = threading.Lock()
        self._connections: dict[str, _Connection] = {}

    # -- introspection ------------------------------------------------------------------
    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    @property
    def subscription_count(self) -> int:
        with self._lock:
            return sum(len(c.rooms) for c in self._connections.values())

    # -- handlers -------------------------------------------------------------------------
    def on_connect(self, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise Refused("unauthorized: connect with auth={'token': <token>}")
        try:
            principal = self.verifier.verify(token)
        except Unauthorized as e:
            raise Refused(f"unauthorized: {e}") from e
        except Exception as e:  # a broken verifier refuses too, and is logged
            log.exception("token verification failed")
            raise Refused("unauthorized: token verification failed") from e
        with self._lock:
            self._connections[_sid()] = _Connection(str(principal.uid))

    def on_disconnect(self, reason: Any = None) -> None:
        with self._lock:  # the Socket.IO manager drops the sid from every room itself
            self._connections.pop(_sid(), None)

    def on_subscribe(self, message: Any = None) -> dict[str, Any]:
        sid, param = _sid(), self.mediator.param
        value = message.get(param) if isinstance(message, dict) else None
        try:
            conn = self._connection(sid)
            params = self.mediator.params(conn.uid, value)
            path = self.mediator.path_for(params)
            view = self.mediator.authorize(self.db, conn.uid, params)
            with self._lock:
                if self._connections.get(sid) is not conn:
                    return {"ok": False}  # disconnected meanwhile
                if path not in conn.rooms and len(conn.rooms) >= self.max_subscriptions:
                    raise SubscribeError(400, f"at most {self.max_subscriptions} subscriptions")
                conn.rooms.add(path)
            join_room(path)  # join first, then read: no version falls in between
            payload = self.mediator.current(self.db, path, view)
        except SubscribeError as e:
            return self._refuse(param, value, e)
        except Exception as e:
            log.exception("subscribe %s=%r failed", param, value)
            return self._refuse(param, value, SubscribeError(500, f"internal error: {e}"))
        emit(VIEW, payload)
        return {"ok": True, "path": path}

    def on_unsubscribe(self, message: Any = None) -> dict[str, Any]:
        sid, param = _sid(), self.mediator.param
        value = message.get(param) if isinstance(message, dict) else None
        try:
            conn = self._connection(sid)
            path = self.mediator.path_for(self.mediator.params(conn.uid, value))
        except SubscribeError as e:
            return self._refuse(param, value, e)
        with self._lock:
            subscribed = path in conn.rooms
            conn.rooms.discard(path)
        if subscribed:
            leave_room(path)
        return {"ok": True, "path": path, "subscribed": subscribed}

    # -- helpers ------------------------------------------------------------------------------
    def _connection(self, sid: str) -> _Connection:
        with self._lock:
            conn = self._connections.get(sid)
        if conn is None:
            raise SubscribeError(400, "not connected")
        return conn

    def _refuse(self, param: str, value: Any, error: SubscribeError) -> dict[str, Any]:
        body = error_payload(param, value, error)
        emit(ERROR, body)
        return {"ok": False, **body}


def _sid() -> str:
    return str(flask.request.sid)  # type: ignore[attr-defined]
