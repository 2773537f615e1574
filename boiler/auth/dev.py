"""Signed development tokens for the embedded default (no identity provider).

A token is an itsdangerous-signed payload ``{"uid", "iat", "exp"}``: anyone
holding the secret key can mint tokens, so keep ``BOILER_SECRET_KEY`` secret
and use Firebase ID tokens in production::

    verifier = DevTokenVerifier("a long random secret", max_age=3600)
    token = verifier.issue("tijuana", ttl=600)
    verifier.verify(token).uid        # "tijuana"

The principal's claims are the payload (``issue(..., claims={"role": "admin"})``
adds custom claims, which :mod:`boiler.access` role rules read); its ``exp`` is
when this verifier stops accepting the token (``max_age`` counted).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from ..exceptions import ConfigurationError, Unauthorized
from .base import Principal

#: Separates a development token's signing domain from other uses of the key.
SALT = "boiler.dev-token.v1"
_TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


class DevTokenVerifier:
    """Issues and verifies signed development tokens.

    ``max_age`` (seconds) bounds every token's age, whatever ``ttl`` it was
    issued with; ``issue(uid, ttl)`` may shorten it per token.
    """

    def __init__(self, secret_key: str | bytes, *, max_age: float = 24 * 3600) -> None:
        if not secret_key:
            raise ConfigurationError("DevTokenVerifier needs a non-empty secret key")
        if max_age <= 0:
            raise ConfigurationError(f"max_age must be positive, got {max_age!r}")
        self.max_age = max_age
        self._serializer = URLSafeSerializer(secret_key, salt=SALT)

    def issue(
        self,
        uid: str,
        ttl: float | None = None,
        *,
        claims: Mapping[str, Any] | None = None,
        issued_at: float | None = None,
    ) -> str:
        """A token for ``uid`` valid for ``ttl`` seconds (default and cap: ``max_age``).

        ``issued_at`` (a Unix time, default now) exists for tests of expiry.
        """
        if not isinstance(uid, str) or not uid:
            raise ValueError("uid must be a non-empty string")
        iat = time.time() if issued_at is None else issued_at
        lifetime = self.max_age if ttl is None else min(ttl, self.max_age)
        if lifetime <= 0:
            raise ValueError(f"ttl must be positive, got {ttl!r}")
        payload = {**(claims or {}), "uid": uid, "iat": iat, "exp": iat + lifetime}
        return str(self._serializer.dumps(payload))

    def verify(self, token: str) -> Principal:
        if not isinstance(token, str) or not token:
            raise Unauthorized("missing token")
        if "." not in token or not set(token) <= _TOKEN_CHARS:
            raise Unauthorized("malformed token")
        try:
            payload = self._serializer.loads(token)
        except BadSignature as e:
            raise Unauthorized("invalid token signature") from e
        if not isinstance(payload, dict):
            raise Unauthorized("malformed token payload")
        uid, iat, exp = payload.get("uid"), payload.get("iat"), payload.get("exp")
        if not isinstance(uid, str) or not uid or not _is_number(iat) or not _is_number(exp):
            raise Unauthorized("malformed token payload")
        now = time.time()
        assert isinstance(iat, int | float) and isinstance(exp, int | float)
        expires = min(exp, iat + self.max_age)
        if now >= expires:
            raise Unauthorized("token expired")
        # ``exp`` says when *this* verifier stops accepting the token (max_age included),
        # so a connection kept open (Socket.IO) knows when to stop trusting it
        return Principal(uid=uid, claims={**payload, "exp": expires})


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


__all__ = ["SALT", "DevTokenVerifier"]
