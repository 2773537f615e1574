"""Choosing a verifier from the configuration.

``BOILER_AUTH=firebase`` or ``dev`` forces a kind; otherwise Firebase ID tokens
when Firestore / a firebase-admin app is configured, signed development tokens
for the embedded store. Development tokens are signed with ``BOILER_SECRET_KEY``;
without it, an embedded store kept in a file uses a random secret generated
once and stored beside that file (``<database>.secret``, mode 0600), so
``boiler run`` and ``boiler token`` agree on a fresh machine with nothing set;
a ``testing`` configuration gets a random per-process key; anything else is a
:class:`~boiler.exceptions.ConfigurationError`.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Mapping
from typing import Any

from ..config import Config
from ..exceptions import ConfigurationError
from .base import TokenVerifier
from .dev import DevTokenVerifier
from .firebase import FirebaseTokenVerifier, app_for_project

#: Environment variables read here.
AUTH_ENV = "BOILER_AUTH"
SECRET_ENV = "BOILER_SECRET_KEY"
MAX_AGE_ENV = "BOILER_TOKEN_MAX_AGE"
AUTH_EMULATOR_ENV = "FIREBASE_AUTH_EMULATOR_HOST"
_KINDS = ("firebase", "dev")

log = logging.getLogger("boiler.auth")


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
    """The :class:`TokenVerifier` ``config`` (and the environment) calls for.

    Firebase ID tokens are verified with ``firebase_app``, else the default
    firebase-admin app, else an app made for the configured project
    (:func:`~.firebase.app_for_project`; no credential on an emulator).
    """
    env = os.environ if environ is None else environ
    if auth_kind(config, firebase_app=firebase_app, environ=env) == "firebase":
        if firebase_app is None:
            emulated = bool(config.emulator_host or env.get(AUTH_EMULATOR_ENV))
            firebase_app = app_for_project(config.project_id, emulated=emulated)
        return FirebaseTokenVerifier(firebase_app)
    return dev_verifier_from_config(config, environ=env)


def dev_verifier_from_config(
    config: Config, *, environ: Mapping[str, str] | None = None
) -> DevTokenVerifier:
    """A :class:`DevTokenVerifier` keyed by ``BOILER_SECRET_KEY``."""
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "")
    if not secret:
        secret = _installation_secret(config)
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


def _installation_secret(config: Config) -> str:
    """The generated secret kept beside the embedded store's file ("" if none applies)."""
    if config.backend != "embedded" or config.testing:
        return ""
    db_path = str(config.database_options().get("path") or "")
    if not db_path or db_path == ":memory:":
        return ""
    secret_path = db_path + ".secret"
    try:
        return _read_or_create_secret(secret_path)
    except OSError as e:  # a missing directory, no permission...
        raise ConfigurationError(
            f"cannot read or create the development secret file {secret_path!r} "
            f"({e.strerror or e}); check the database path, or set {SECRET_ENV}"
        ) from e


def _read_or_create_secret(secret_path: str) -> str:
    try:
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(secret_path, encoding="utf-8") as fh:
            secret = fh.read().strip()
        if len(secret) < 32:
            raise ConfigurationError(
                f"development secret file {secret_path!r} is empty or too short; "
                f"delete it to generate a new one, or set {SECRET_ENV}"
            ) from None
        return secret
    secret = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(secret + "\n")
    log.warning(
        "no %s set: generated a development secret in %s (tokens from "
        "'boiler token' are signed with it)",
        SECRET_ENV,
        secret_path,
    )
    return secret


__all__ = [
    "AUTH_ENV",
    "MAX_AGE_ENV",
    "SECRET_ENV",
    "auth_kind",
    "dev_verifier_from_config",
    "verifier_from_config",
]
