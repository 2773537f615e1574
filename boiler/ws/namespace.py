"""The Socket.IO namespace that serves one WsMediator's subscriptions."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import flask
from flask_socketio import Namespace, emit, join_room, leave_room
from socketio.exceptions import ConnectionRefusedError as Refused

from ..auth import Principal, TokenVerifier
from ..database import Database
from ..exceptions import Unauthorized
from .mediator import WsMediator
from .protocol import ERROR, VIEW, SubscribeError, error_payload

log = logging.getLogger("boiler.ws")


@dataclass
class _Connection:
    """One client: its verified principal (uid and claims), when its token
    expires (Unix time; None: no ``exp`` claim) and its subscriptions."""

    principal: Principal
    expires_at: float | None
    rooms: set[str] = field(default_factory=set)

    @property
    def uid(self) -> str:
        return self.principal.uid

    def expired(self) -> bool:
        return self.expires_at is not None and time.time() >= self.expires_at


class ViewNamespace(Namespace):
    """``connect`` (token in ``auth``), ``subscribe``, ``unsubscribe``, ``disconnect``.

    Handlers of one connection run in order (the server uses
    ``async_handlers=False``); the state shared across connections is locked.

    The token is verified at connect; the connection keeps the principal (for
    ``Meta.access`` role rules) and the token's ``exp``. A ``subscribe`` after
    that moment is refused (401, ``unauthorized: token expired, reconnect``):
    the client reconnects with a fresh token. Subscriptions made before keep
    streaming until the client unsubscribes or disconnects.
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
            self._connections[_sid()] = _Connection(principal, _expires_at(principal))

    def on_disconnect(self, reason: Any = None) -> None:
        with self._lock:  # the Socket.IO manager drops the sid from every room itself
            self._connections.pop(_sid(), None)

    def on_subscribe(self, message: Any = None) -> dict[str, Any]:
        sid, param = _sid(), self.mediator.param
        value = message.get(param) if isinstance(message, dict) else None
        try:
            conn = self._connection(sid)
            if conn.expired():
                raise SubscribeError(401, "unauthorized: token expired, reconnect")
            params = self.mediator.params(conn.uid, value)
            path = self.mediator.path_for(params)
            view = self.mediator.authorize(self.db, conn.principal, params)
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
        except Exception:  # the detail (paths, stored values) is logged, never sent
            log.exception("subscribe %s=%r failed", param, value)
            return self._refuse(param, value, SubscribeError(500, "internal error"))
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


def _expires_at(principal: Principal) -> float | None:
    """The token's ``exp`` claim (Unix time): both verifiers report it."""
    exp = principal.claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def _sid() -> str:
    return str(flask.request.sid)  # type: ignore[attr-defined]
