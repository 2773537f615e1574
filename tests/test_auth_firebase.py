"""Firebase ID tokens from the real Firebase Auth emulator, through
:class:`FirebaseTokenVerifier` and the REST layer.

The emulator (firebase-tools, pinned in ``tools/firebase``) is started once per
session; if its ``node_modules`` is missing the fixture runs ``npm ci`` there,
and fails (never skips) when that is impossible.

The emulator signs nothing (``alg: none``) and firebase-admin skips signature
checks when ``FIREBASE_AUTH_EMULATOR_HOST`` is set: what is verified here is
everything else (project, issuer, subject, expiry, revocation, disabled and
deleted users, claims). ``test_emulator_mode_cannot_detect_forged_claims``
pins down that trust boundary.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from boiler.app import create_flask_app
from boiler.auth import FirebaseTokenVerifier, Principal, verifier_from_config
from boiler.config import Config
from boiler.database import Database, open_database
from boiler.exceptions import ConfigurationError, Unauthorized
from boiler.rest.testing import serve
from boiler.testing import FIREBASE_TOOLS_DIR, AuthEmulator, wait_for
from examples.meeting_room import MeetingSession, app, seed

PROJECT = "demo-boiler"
PASSWORD = "correct horse battery staple"
EMULATOR_ENV = "FIREBASE_AUTH_EMULATOR_HOST"

# A cold `npm ci` of firebase-tools plus the emulator's start (~15 s) can take a
# few minutes on the first test of a fresh checkout; every other test is quick.
pytestmark = pytest.mark.timeout(300)


def _install_firebase_tools() -> None:
    """``npm ci`` in tools/firebase unless the pinned firebase-tools is installed."""
    wanted = json.loads((FIREBASE_TOOLS_DIR / "package.json").read_text())["dependencies"][
        "firebase-tools"
    ]
    installed = FIREBASE_TOOLS_DIR / "node_modules" / "firebase-tools" / "package.json"
    if installed.exists() and json.loads(installed.read_text())["version"] == wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail(
            f"firebase-tools {wanted} is not installed in {FIREBASE_TOOLS_DIR} and npm is "
            "missing: install Node.js 20+ and run `npm ci` there"
        )
    command = [npm, "ci", "--no-audit", "--no-fund"]
    try:
        done = subprocess.run(
            command, cwd=FIREBASE_TOOLS_DIR, capture_output=True, text=True, timeout=240
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`{' '.join(command)}` in {FIREBASE_TOOLS_DIR} took over 240 s")
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` in {FIREBASE_TOOLS_DIR} failed ({done.returncode}):\n"
            f"{done.stderr[-3000:]}"
        )


@pytest.fixture(scope="session")
def auth_emulator_session() -> Iterator[AuthEmulator]:
    _install_firebase_tools()
    with AuthEmulator(project_id=PROJECT) as emulator:
        yield emulator


@pytest.fixture
def emulator(auth_emulator_session: AuthEmulator) -> AuthEmulator:
    """The session's Auth emulator, with no users."""
    auth_emulator_session.reset()
    return auth_emulator_session


def _firebase_app(project: str, *, default: bool = False) -> Any:
    """A firebase-admin app for ``project`` (uniquely named unless ``default``)."""
    import firebase_admin
    import google.auth.credentials
    from firebase_admin import credentials

    class Anonymous(credentials.Base):  # type: ignore[misc]
        """No Google credential: the admin SDK talks to the emulator as ``owner``."""

        def get_credential(self) -> Any:
            return google.auth.credentials.AnonymousCredentials()

    options = {"projectId": project}
    if default:
        return firebase_admin.initialize_app(Anonymous(), options)
    return firebase_admin.initialize_app(Anonymous(), options, name=f"test-{uuid.uuid4().hex}")


@pytest.fixture
def firebase_app(emulator: AuthEmulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A firebase-admin app for the demo project, pointed at the emulator."""
    import firebase_admin

    monkeypatch.setenv(EMULATOR_ENV, emulator.host)
    firebase = _firebase_app(PROJECT)
    yield firebase
    firebase_admin.delete_app(firebase)


@pytest.fixture
def user(emulator: AuthEmulator) -> Callable[..., str]:
    """``user(uid, claims=None) -> id_token``: a new emulator user, signed in."""

    def make(uid: str, claims: dict[str, Any] | None = None) -> str:
        email = f"{uid}@example.com"
        emulator.create_user(uid, email, PASSWORD, claims=claims)
        return emulator.sign_in(email, PASSWORD)

    return make


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    decode = lambda part: json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # noqa: E731
    return decode(header), decode(payload), signature


def _b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _with_payload(token: str, **changes: Any) -> str:
    """``token`` with its payload edited (``None`` deletes a claim), signature kept."""
    header, payload, signature = _segments(token)
    payload.update(changes)
    payload = {k: v for k, v in payload.items() if v is not None}
    return f"{_b64(header)}.{_b64(payload)}.{signature}"


# -- real emulator tokens ---------------------------------------------------------------------
def test_emulator_token_verifies_to_its_uid_and_claims(
    firebase_app: Any, user: Callable[..., str]
) -> None:
    token = user("tijuana", claims={"role": "admin"})
    assert _segments(token)[0]["alg"] == "none"  # a real emulator token, not a hand-made one

    principal = FirebaseTokenVerifier(firebase_app).verify(token)

    assert isinstance(principal, Principal)
    assert principal.uid == "tijuana"
    assert principal.claims["role"] == "admin"
    assert principal.claims["email"] == "tijuana@example.com"
    assert principal.claims["aud"] == PROJECT
    assert principal.claims["firebase"]["sign_in_provider"] == "password"


def test_claims_set_later_come_with_the_next_token(
    emulator: AuthEmulator, firebase_app: Any, user: Callable[..., str]
) -> None:
    from firebase_admin import auth

    before = user("thomasina")
    auth.set_custom_user_claims("thomasina", {"role": "organizer"}, app=firebase_app)
    after = emulator.sign_in("thomasina@example.com", PASSWORD)

    verifier = FirebaseTokenVerifier(firebase_app, check_revoked=True)
    assert "role" not in verifier.verify(before).claims  # claims are frozen into a token
    assert verifier.verify(after).claims["role"] == "organizer"


def test_default_app_is_used_when_none_is_given(
    emulator: AuthEmulator, user: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import firebase_admin

    monkeypatch.setenv(EMULATOR_ENV, emulator.host)
    token = user("joshua")
    default = _firebase_app(PROJECT, default=True)
    try:
        assert FirebaseTokenVerifier().verify(token).uid == "joshua"
    finally:
        firebase_admin.delete_app(default)


def test_configured_project_gets_an_app_when_the_program_made_none(
    emulator: AuthEmulator, user: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`boiler run` against the Firestore emulator: no certificate, no default
    app; the verifier makes an app for GOOGLE_CLOUD_PROJECT (it used to fail
    every request with a 500)."""
    monkeypatch.setenv(EMULATOR_ENV, emulator.host)
    config = Config(project_id=PROJECT, emulator_host="127.0.0.1:1")  # Firestore, never reached
    verifier = verifier_from_config(config)
    assert isinstance(verifier, FirebaseTokenVerifier)
    assert verifier.verify(user("joshua")).uid == "joshua"
    assert verifier_from_config(config).firebase_app is verifier.firebase_app  # one per project
    with pytest.raises(ConfigurationError, match="GOOGLE_CLOUD_PROJECT"):
        verifier_from_config(Config(database="firestore"))


# -- refused ----------------------------------------------------------------------------------
def test_deleted_user_is_refused_when_checking_revocation(
    emulator: AuthEmulator, firebase_app: Any, user: Callable[..., str]
) -> None:
    token = user("gone")
    emulator.delete_user("gone")
    with pytest.raises(Unauthorized, match="user not found"):
        FirebaseTokenVerifier(firebase_app, check_revoked=True).verify(token)
    # without the extra lookup the token is valid until it expires
    assert FirebaseTokenVerifier(firebase_app).verify(token).uid == "gone"


def test_disabled_user_is_refused_when_checking_revocation(
    emulator: AuthEmulator, firebase_app: Any, user: Callable[..., str]
) -> None:
    token = user("banned")
    verifier = FirebaseTokenVerifier(firebase_app, check_revoked=True)
    assert verifier.verify(token).uid == "banned"
    emulator.disable_user("banned")
    with pytest.raises(Unauthorized, match="user disabled"):
        verifier.verify(token)
    emulator.disable_user("banned", disabled=False)
    assert verifier.verify(token).uid == "banned"


def test_revoked_token_is_refused_and_a_new_one_accepted(
    emulator: AuthEmulator, firebase_app: Any, user: Callable[..., str]
) -> None:
    token = user("revoked")
    issued = _segments(token)[1]["iat"]
    # Firebase revokes tokens issued *before* the revocation's second
    wait_for(lambda: time.time() >= issued + 1, timeout=3, message="the next second")
    emulator.revoke_tokens("revoked")

    verifier = FirebaseTokenVerifier(firebase_app, check_revoked=True)
    with pytest.raises(Unauthorized, match="revoked"):
        verifier.verify(token)
    fresh = emulator.sign_in("revoked@example.com", PASSWORD)
    assert verifier.verify(fresh).uid == "revoked"


def test_token_from_another_project_is_refused(firebase_app: Any, user: Callable[..., str]) -> None:
    import firebase_admin

    token = user("tijuana")
    other = _firebase_app("demo-other")
    try:
        with pytest.raises(Unauthorized, match='incorrect "aud"') as info:
            FirebaseTokenVerifier(other).verify(token)
    finally:
        firebase_admin.delete_app(other)
    assert token not in str(info.value) and "eyJ" not in str(info.value)


TAMPERINGS: dict[str, tuple[Callable[[str], str], str]] = {
    "payload not JSON": (
        lambda t: f"{t.split('.')[0]}.{_b64(b'not json')}.{t.split('.')[2]}",
        "invalid Firebase ID token",
    ),
    "payload cut short": (lambda t: t[: len(t) // 2], "invalid Firebase ID token"),
    "audience moved": (lambda t: _with_payload(t, aud="demo-other"), 'incorrect "aud"'),
    "issuer moved": (
        lambda t: _with_payload(t, iss="https://securetoken.google.com/demo-other"),
        'incorrect "iss"',
    ),
    "subject removed": (lambda t: _with_payload(t, sub=None), 'no "sub"'),
    "expiry moved back": (
        lambda t: _with_payload(t, exp=_segments(t)[1]["iat"] - 60),
        "token expired",
    ),
    "uid of a user who does not exist": (
        lambda t: _with_payload(t, sub="nobody", user_id="nobody"),
        "user not found",
    ),
}


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=list(TAMPERINGS))
def test_tampered_token_is_refused(
    firebase_app: Any, user: Callable[..., str], tamper: str
) -> None:
    edit, reason = TAMPERINGS[tamper]
    token = user("tijuana", claims={"role": "participant"})
    with pytest.raises(Unauthorized, match=reason) as info:
        FirebaseTokenVerifier(firebase_app, check_revoked=True).verify(edit(token))
    assert "eyJ" not in str(info.value)  # the token is never echoed back


def test_emulator_mode_cannot_detect_forged_claims(
    firebase_app: Any, user: Callable[..., str]
) -> None:
    """The trust boundary: emulator tokens are unsigned, so with
    FIREBASE_AUTH_EMULATOR_HOST set anyone can claim any existing uid or any
    claim. That variable must never be set in production."""
    user("tijuana")
    mallory = user("mallory")
    forged = _with_payload(mallory, sub="tijuana", user_id="tijuana", role="admin")
    principal = FirebaseTokenVerifier(firebase_app, check_revoked=True).verify(forged)
    assert (principal.uid, principal.claims["role"]) == ("tijuana", "admin")


# -- end to end over REST ---------------------------------------------------------------------
@pytest.fixture
def meeting_db() -> Iterator[Database]:
    db = open_database("embedded", path=":memory:")
    seed.seed(db)
    try:
        yield db
    finally:
        db.close()


@pytest.fixture
def meeting_room(meeting_db: Database, firebase_app: Any) -> Iterator[str]:
    """The meeting room on the embedded store, served over HTTP, Firebase ID tokens."""
    verifier = FirebaseTokenVerifier(firebase_app, check_revoked=True)
    with serve(create_flask_app(app, meeting_db, verifier=verifier)) as base_url:
        yield base_url


def _get(base_url: str, token: str) -> requests.Response:
    return requests.get(
        f"{base_url}/meeting_sessions/meeting_1",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def test_rest_accepts_a_participants_emulator_token(
    meeting_room: str, meeting_db: Database, user: Callable[..., str]
) -> None:
    response = _get(meeting_room, user("tijuana"))
    assert response.status_code == 200, response.text
    expected = MeetingSession.get(doc_id="meeting_1", user_id="tijuana", db=meeting_db).data
    assert response.json() == expected
    assert response.json()["inSession"] is True


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_rest_refuses_garbage_with_401(meeting_room: str, token: str) -> None:
    response = _get(meeting_room, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert token not in response.json()["error"]["message"]


def test_rest_identity_comes_from_the_token(
    emulator: AuthEmulator, meeting_room: str, user: Callable[..., str]
) -> None:
    assert _get(meeting_room, user("mallory")).status_code == 403  # valid, not a participant
    token = user("thomasina")
    assert _get(meeting_room, token).status_code == 200
    emulator.disable_user("thomasina")
    assert _get(meeting_room, token).status_code == 401
