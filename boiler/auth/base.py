"""What every token verifier returns and promises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: ``uid`` plus the token's verified ``claims``."""

    uid: str
    claims: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class TokenVerifier(Protocol):
    """Turns a bearer token into a :class:`Principal`.

    ``verify`` raises :class:`~boiler.exceptions.Unauthorized` with the reason
    (missing, malformed, bad signature, expired, revoked ...) for any token it
    does not accept; it never returns a principal for a bad token.
    """

    def verify(self, token: str) -> Principal: ...


__all__ = ["Principal", "TokenVerifier"]
