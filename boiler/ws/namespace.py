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


def _expired() -> SubscribeError:
    return SubscribeError(401, "unauthorized: token expired, reconnect")


@dataclass
class _Connection:
    """One client: its verified principal (uid and claims), when its token
    expires (Unix time; None: no ``exp`` claim) and its subscriptions (view
    path -> the ``param`` value the client subscribed with)."""

    principal: Principal
    expires_at: float | None
    rooms: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return self.principal.uid

    def expired(self, now: float | None = None) -> bool:
        at = time.time() if now is None else now
        return self.expires_at is not None and at >= self.expires_at


class ViewNamespace(Namespace):
    """``connect`` (token in ``auth``), ``subscribe``, ``unsubscribe``, ``disconnect``.

    Handlers of one connection run in order (the server uses
    ``async_handlers=False``); the state shared across connections is locked.

    The token is verified at connect; the connection keeps the principal (for
    ``Meta.access`` role rules) and the token's ``exp``. From that moment a
    ``subscribe`` is refused (401, ``unauthorized: token expired, reconnect``)
    and :meth:`end_expired` (called every second by :class:`ViewStreams`) ends
    the subscriptions made before, with the same error for each: the client
    reconnects with a fresh token and subscribes again.
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

    # -- token expiry ---------------------------------------------------------------------
    def end_expired(self, server: Any) -> int:
        """End every subscription of connections whose token has expired: each
        leaves its room and the client gets the 401 ``error`` naming it.
        ``server`` is the ``socketio.Server``. Returns how many ended."""
        at = time.time()
        ended: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            for sid, conn in self._connections.items():
                if conn.rooms and conn.expired(at):
                    ended.append((sid, dict(conn.rooms)))
                    conn.rooms.clear()
        for sid, rooms in ended:
            for path, value in rooms.items():
                server.leave_room(sid, path, namespace=self.namespace)
                body = error_payload(self.mediator.param, value, _expired())
                server.emit(ERROR, body, to=sid, namespace=self.namespace)
        return sum(len(rooms) for _, rooms in ended)

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
                raise _expired()
            params = self.mediator.params(conn.uid, value)
            path = self.mediator.path_for(params)
            view = self.mediator.authorize(self.db, conn.principal, params)
            with self._lock:
                if self._connections.get(sid) is not conn:
                    return {"ok": False}  # disconnected meanwhile
                if path not in conn.rooms and len(conn.rooms) >= self.max_subscriptions:
                    raise SubscribeError(400, f"at most {self.max_subscriptions} subscriptions")
                conn.rooms[path] = value
            join_room(path)  # join first, then read: no version falls in between
            with self._lock:
                ended = path not in conn.rooms  # end_expired came in between
            if ended:
                leave_room(path)
                raise _expired()
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
            conn.rooms.pop(path, None)
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
