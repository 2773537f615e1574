"""Reading a REST request: the bearer token, the caller, the JSON body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import g, request

from ..auth import Principal, TokenVerifier
from ..database import Database
from ..exceptions import Unauthorized
from .errors import BadRequest


@dataclass(frozen=True)
class RestServices:
    """What REST handlers work with: the database, the token verifier and,
    when one runs in this process, the runtime keeping views fresh."""

    db: Database
    verifier: TokenVerifier
    runtime: Any = None

    @property
    def runtime_running(self) -> bool:
        if self.runtime is None:
            return False
        return bool(self.runtime.running)


def bearer_token() -> str:
    """The token of the ``Authorization: Bearer ...`` header (Unauthorized if absent)."""
    header = request.headers.get("Authorization", "")
    if not header:
        raise Unauthorized("missing Authorization header (expected 'Bearer <token>')")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def authenticate(services: RestServices) -> Principal:
    """Verify the request's bearer token; the caller is then :func:`current_principal`."""
    principal = services.verifier.verify(bearer_token())
    g.boiler_principal = principal
    return principal


def current_principal() -> Principal:
    """The authenticated caller of the current request."""
    principal = g.get("boiler_principal")
    if principal is None:
        raise Unauthorized("this request was not authenticated")
    return principal  # type: ignore[no-any-return]


def current_services() -> RestServices:
    """The :class:`RestServices` of the route handling the current request."""
    services = g.get("boiler_services")
    if services is None:
        raise RuntimeError("not inside a boiler REST request")
    return services  # type: ignore[no-any-return]


def json_object() -> dict[str, Any]:
    """The request body as a JSON object (BadRequest if empty, not JSON, not an object)."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise BadRequest("the request body must be a JSON object")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise BadRequest(f"the request body is not valid JSON: {e}") from e
    except RecursionError as e:
        raise BadRequest("the request body is nested too deeply") from e
    if not isinstance(body, Mapping):
        raise BadRequest(f"the request body must be a JSON object, got {_json_type(body)}")
    return dict(body)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


__all__ = [
    "RestServices",
    "authenticate",
    "bearer_token",
    "current_principal",
    "current_services",
    "json_object",
]
