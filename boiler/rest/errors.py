"""JSON error responses: ``{"error": {"code", "message", "field"?}}``.

Every boiler REST error has this shape and the matching status. Unexpected
exceptions become a generic 500 (the traceback goes to the log, never to the
client).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
from werkzeug.exceptions import HTTPException

from ..exceptions import (
    Conflict,
    Forbidden,
    InvalidPath,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)

log = logging.getLogger("boiler.rest")

#: (exception class, HTTP status, error code), most specific first.
_STATUS: tuple[tuple[type[BaseException], int, str], ...] = (
    (ValidationError, 400, "invalid_request"),
    (InvalidPath, 400, "invalid_request"),
    (Unauthorized, 401, "unauthorized"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (Unavailable, 503, "unavailable"),
)


class BadRequest(ValidationError):
    """The request itself is unusable (not JSON, not an object ...)."""


def error_response(
    status: int, code: str, message: str, *, field: str | None = None, headers: Any = None
) -> Response:
    """A JSON error response."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    response = jsonify({"error": error})
    response.status_code = status
    if headers:
        response.headers.update(headers)
    return response


def response_for(exc: BaseException) -> Response:
    """The JSON response for ``exc`` (any exception)."""
    if isinstance(exc, HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        allow = [(k, v) for k, v in exc.get_headers() if k.lower() == "allow"]
        return error_response(exc.code or 500, code, exc.description or exc.name, headers=allow)
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            field = getattr(exc, "field", None)
            message = str(exc)
            if field and message.startswith(f"{field}: "):
                message = message[len(field) + 2 :]
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return error_response(status, code, message, field=field, headers=headers)
    log.error("unhandled error in a REST request", exc_info=exc)
    return error_response(500, "internal_error", "internal server error")


__all__ = ["BadRequest", "error_response", "log", "response_for"]
