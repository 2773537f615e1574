"""Firebase ID tokens, verified by firebase-admin.

Works against the Firebase Auth emulator when ``FIREBASE_AUTH_EMULATOR_HOST``
is set (firebase-admin then accepts the emulator's unsigned tokens). With that
variable set no signature is checked at all: anyone can forge any uid or claim,
so it must never be set in production.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from ..exceptions import ConfigurationError, Unauthorized, Unavailable
from .base import Principal

#: Seconds of clock difference tolerated on ``exp``.
CLOCK_SKEW = 10


def _reason(error: BaseException) -> str:
    """The library's message without the token it quotes (never echo credentials)."""
    return str(error).split(": b'")[0].split(": '")[0][:160]


class FirebaseTokenVerifier:
    """Verifies Firebase ID tokens with ``firebase_admin.auth.verify_id_token``.

    ``firebase_app``: the firebase-admin app to use (default: the default app,
    looked up at the first verification). ``check_revoked`` also asks Firebase
    whether the token was revoked (one extra request per call).
    """

    def __init__(self, firebase_app: Any = None, *, check_revoked: bool = False) -> None:
        self.firebase_app = firebase_app
        self.check_revoked = check_revoked

    def _app(self) -> Any:
        if self.firebase_app is not None:
            return self.firebase_app
        import firebase_admin

        try:
            return firebase_admin.get_app()
        except ValueError as e:
            raise ConfigurationError(
                "FirebaseTokenVerifier: no firebase_app given and no default firebase-admin "
                "app initialized"
            ) from e

    def verify(self, token: str) -> Principal:
        from firebase_admin import auth

        if not isinstance(token, str) or not token:
            raise Unauthorized("missing token")
        try:
            claims = auth.verify_id_token(token, app=self._app(), check_revoked=self.check_revoked)
        except auth.ExpiredIdTokenError as e:
            raise Unauthorized("token expired") from e
        except auth.RevokedIdTokenError as e:
            raise Unauthorized("token revoked") from e
        except auth.UserDisabledError as e:
            raise Unauthorized("user disabled") from e
        except auth.UserNotFoundError as e:  # check_revoked: the user was deleted
            raise Unauthorized("user not found") from e
        except auth.InvalidIdTokenError as e:
            raise Unauthorized(f"invalid Firebase ID token: {_reason(e)}") from e
        except auth.CertificateFetchError as e:  # our trouble, not the caller's (503)
            raise Unavailable("cannot fetch Firebase public keys to verify the token") from e
        except ValueError as e:
            if "project id" in str(e).lower():  # the server's configuration, not the token
                raise ConfigurationError(f"FirebaseTokenVerifier: {e}") from e
            raise Unauthorized(f"malformed token: {_reason(e)}") from e
        exp = claims.get("exp")
        if isinstance(exp, int | float) and exp + CLOCK_SKEW < time.time():
            # firebase-admin skips time checks for Auth emulator tokens; never accept them late
            raise Unauthorized("token expired")
        uid = claims.get("uid") or claims.get("sub")
        if not isinstance(uid, str) or not uid:
            raise Unauthorized("token has no uid")
        return Principal(uid=uid, claims=dict(claims))


def app_for_project(project: str | None, *, emulated: bool) -> Any:
    """The firebase-admin app to verify tokens of ``project`` with: the default
    app when the program initialized one, else a new app for ``project``.

    Its credential is Application Default Credentials (loaded when first
    needed, e.g. on Cloud Run), or none at all when ``emulated`` (the Firestore
    or Auth emulator: a development machine has no Google credential).
    One app per project and kind is made per process. Without a project id it
    raises :class:`ConfigurationError`.
    """
    import firebase_admin
    from firebase_admin import credentials

    try:
        return firebase_admin.get_app()
    except ValueError:
        pass
    if not project:
        raise ConfigurationError(
            "Firebase ID tokens need a project id: set GOOGLE_CLOUD_PROJECT (config key "
            "project_id), or BOILER_AUTH=dev for development tokens"
        )
    with _apps_lock:
        app = _apps.get((project, emulated))
        if app is None:
            credential = _no_credential() if emulated else credentials.ApplicationDefault()
            name = f"boiler-auth-{project}-{uuid.uuid4().hex[:8]}"
            app = firebase_admin.initialize_app(credential, {"projectId": project}, name=name)
            _apps[(project, emulated)] = app
        return app


def _no_credential() -> Any:
    """A firebase-admin credential that is no Google credential (emulators)."""
    import google.auth.credentials
    from firebase_admin import credentials

    class NoCredential(credentials.Base):  # type: ignore[misc]
        def get_credential(self) -> Any:
            return google.auth.credentials.AnonymousCredentials()

    return NoCredential()


_apps: dict[tuple[str, bool], Any] = {}
_apps_lock = threading.Lock()


__all__ = ["FirebaseTokenVerifier", "app_for_project"]
