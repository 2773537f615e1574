"""The Socket.IO view-stream protocol: event names and payloads.

Client → server: ``subscribe`` / ``unsubscribe`` with ``{<param>: id}``.
Server → client: ``view`` ``{"path", "version", "data"}`` (``data`` None: the
view was deleted) and ``error`` ``{"code", "message", <param>}``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ..runtime.writer import VERSION_FIELD

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
VIEW = "view"
ERROR = "error"


class SubscribeError(Exception):
    """A refused subscription: ``code`` is 400 (bad input), 401 (token expired),
    403 (not allowed), 404 (no such view) or 500 (a server bug; no detail)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def iso(version: Any) -> str | None:
    """A version as an ISO-8601 string with microseconds, so that versions of
    one view compare as strings (None stays None)."""
    if isinstance(version, _dt.datetime):
        return version.astimezone(_dt.UTC).isoformat(timespec="microseconds")
    return None if version is None else str(version)


def view_payload(path: str, data: Mapping[str, Any] | None, version: Any = None) -> dict[str, Any]:
    """The ``view`` event body; ``_boiler`` is stripped and its version used."""
    body = None
    if data is not None:
        body = {k: v for k, v in data.items() if k != VERSION_FIELD}
        meta = data.get(VERSION_FIELD)
        if version is None and isinstance(meta, Mapping):
            version = meta.get("version")
    return {"path": path, "version": iso(version), "data": _jsonable(body)}


def error_payload(param: str, value: Any, error: SubscribeError) -> dict[str, Any]:
    """The ``error`` event body."""
    return {"code": error.code, "message": error.message, param: value}


def _jsonable(value: Any) -> Any:
    """Datetimes (server timestamps) as ISO strings; the rest as is."""
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
