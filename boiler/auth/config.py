"""Choosing a verifier from the configuration.

``BOILER_AUTH=firebase`` or ``dev`` forces a kind; otherwise Firebase ID tokens
when Firestore / a firebase-admin app is configured, signed development tokens
for the embedded store. Development tokens need ``BOILER_SECRET_KEY``; only a
``testing`` configuration gets a random per-process key instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..exceptions import ConfigurationError
from .base import TokenVerifier
from .dev import DevTokenVerifier
from .firebase import FirebaseTokenVerifier

#: Environment variables read here.
AUTH_ENV = "BOILER_AUTH"
SECRET_ENV = "BOILER_SECRET_KEY"
MAX_AGE_ENV = "BOILER_TOKEN_MAX_AGE"
_KINDS = ("firebase", "dev")


def auth_kind(
    config: Config, *, firebase_app: Any = None, environ: Mapping[str, str] | None = None
) -> str:
    """``"firebase"`` or ``"dev"`` (see the module docs for the rule)."""
    env = os.environ if environ is None else environ
    forced = env.get(AUTH_ENV, "").strip().lower()
    if forced:
        if forced not in _KINDS:
            raise ConfigurationError(f"{AUTH_ENV} must be one of {_KINDS}, got {forced!r}")
        return forced
    if firebase_app is not None or config.backend == "firestore":
        return "firebase"
    return "dev"


def verifier_from_config(
    config: Config, *, firebase_app: Any = None, environ: Mapping[str, str] | None = None
) -> TokenVerifier:
    """The :class:`TokenVerifier` ``config`` (and the environment) calls for."""
    env = os.environ if environ is None else environ
    if auth_kind(config, firebase_app=firebase_app, environ=env) == "firebase":
        return FirebaseTokenVerifier(firebase_app)
    return dev_verifier_from_config(config, environ=env)


def dev_verifier_from_config(
    config: Config, *, environ: Mapping[str, str] | None = None
) -> DevTokenVerifier:
    """A :class:`DevTokenVerifier` keyed by ``BOILER_SECRET_KEY``."""
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "")
    if not secret:
        if not config.testing:
            raise ConfigurationError(
                f"{SECRET_ENV} is not set: development tokens need a secret key "
                f"(e.g. export {SECRET_ENV}=$(python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))')), or use Firebase Auth"
            )
        secret = secrets.token_urlsafe(32)  # testing only: tokens die with the process
    raw_age = env.get(MAX_AGE_ENV, "")
    try:
        max_age = float(raw_age) if raw_age else 24 * 3600.0
    except ValueError as e:
        raise ConfigurationError(
            f"{MAX_AGE_ENV} must be a number of seconds, got {raw_age!r}"
        ) from e
    return DevTokenVerifier(secret, max_age=max_age)


__all__ = [
    "AUTH_ENV",
    "MAX_AGE_ENV",
    "SECRET_ENV",
    "auth_kind",
    "dev_verifier_from_config",
    "verifier_from_config",
]
