"""boiler.auth: development tokens, Firebase ID tokens, choosing a verifier, ``boiler token``."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from boiler.auth import (
    DevTokenVerifier,
    FirebaseTokenVerifier,
    Principal,
    TokenVerifier,
    verifier_from_config,
)
from boiler.cli import main
from boiler.config import Config
from boiler.exceptions import ConfigurationError, Unauthorized

SECRET = "test-secret-key-0123456789"


# -- development tokens ----------------------------------------------------------------
def test_dev_token_round_trip() -> None:
    verifier = DevTokenVerifier(SECRET, max_age=60)
    token = verifier.issue("tijuana", ttl=30, claims={"role": "organizer"})
    principal = verifier.verify(token)
    assert isinstance(verifier, TokenVerifier)
    assert principal == Principal("tijuana", principal.claims)
    assert principal.claims["role"] == "organizer"
    assert principal.claims["exp"] - principal.claims["iat"] == pytest.approx(30)


def test_dev_token_signed_with_another_key_is_refused() -> None:
    token = DevTokenVerifier("another-secret").issue("tijuana")
    with pytest.raises(Unauthorized, match="signature"):
        DevTokenVerifier(SECRET).verify(token)


def test_tampered_dev_token_is_refused() -> None:
    verifier = DevTokenVerifier(SECRET)
    token = verifier.issue("tijuana")
    payload, _, signature = token.rpartition(".")
    forged = verifier.issue("joshua").rpartition(".")[0] + "." + signature
    with pytest.raises(Unauthorized, match="signature"):
        verifier.verify(forged)
    flipped = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(Unauthorized, match="signature"):
        verifier.verify(flipped)


def test_expired_dev_token_is_refused() -> None:
    verifier = DevTokenVerifier(SECRET, max_age=60)
    old = verifier.issue("tijuana", ttl=5, issued_at=time.time() - 3600)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(old)
    # ttl shorter than max_age: expired after ttl even though max_age allows more
    short = verifier.issue("tijuana", ttl=1, issued_at=time.time() - 2)
    with pytest.raises(Unauthorized, match="expired"):
        verifier.verify(short)


def test_max_age_caps_tokens_issued_elsewhere() -> None:
    long_lived = DevTokenVerifier(SECRET, max_age=10_000).issue(
        "tijuana", issued_at=time.time() - 120
    )
    assert DevTokenVerifier(SECRET, max_age=10_000).verify(long_lived).uid == "tijuana"
    with pytest.raises(Unauthorized, match="expired"):
        DevTokenVerifier(SECRET, max_age=60).verify(long_lived)


@pytest.mark.parametrize("token", ["", "abc", "not a token", "a.b.c!", "é.x", "..."])
def test_malformed_dev_tokens_are_refused(token: str) -> None:
    with pytest.raises(Unauthorized):
        DevTokenVerifier(SECRET).verify(token)


def test_dev_verifier_needs_a_secret() -> None:
    with pytest.raises(ConfigurationError):
        DevTokenVerifier("")


# -- choosing a verifier -----------------------------------------------------------------
def test_missing_secret_is_a_configuration_error_naming_the_variable() -> None:
    # no file beside which a generated secret could live
    config = Config(database="embedded", database_path=":memory:")
    with pytest.raises(ConfigurationError, match="BOILER_SECRET_KEY"):
        verifier_from_config(config, environ={})


def test_embedded_file_store_generates_one_private_secret(tmp_path: Any) -> None:
    config = Config(database="embedded", database_path=str(tmp_path / "app.sqlite3"))
    first = verifier_from_config(config, environ={})
    secret_file = tmp_path / "app.sqlite3.secret"
    assert secret_file.exists()
    assert secret_file.stat().st_mode & 0o777 == 0o600
    second = verifier_from_config(config, environ={})  # e.g. `boiler token` in another process
    assert isinstance(first, DevTokenVerifier) and isinstance(second, DevTokenVerifier)
    assert second.verify(first.issue("u1")).uid == "u1"
    other = Config(database="embedded", database_path=str(tmp_path / "other.sqlite3"))
    with pytest.raises(Unauthorized):
        verifier_from_config(other, environ={}).verify(first.issue("u1"))


def test_truncated_secret_file_is_refused(tmp_path: Any) -> None:
    (tmp_path / "app.sqlite3.secret").write_text("short")
    config = Config(database="embedded", database_path=str(tmp_path / "app.sqlite3"))
    with pytest.raises(ConfigurationError, match="too short"):
        verifier_from_config(config, environ={})


def test_secret_from_environment() -> None:
    verifier = verifier_from_config(Config(), environ={"BOILER_SECRET_KEY": SECRET})
    assert isinstance(verifier, DevTokenVerifier)
    token = DevTokenVerifier(SECRET).issue("u1")
    assert verifier.verify(token).uid == "u1"


def test_testing_config_gets_a_random_secret_never_a_fixed_one() -> None:
    first = verifier_from_config(Config(testing=True), environ={})
    second = verifier_from_config(Config(testing=True), environ={})
    assert isinstance(first, DevTokenVerifier) and isinstance(second, DevTokenVerifier)
    with pytest.raises(Unauthorized):
        second.verify(first.issue("u1"))


def test_firestore_selects_firebase_tokens() -> None:
    config = Config(emulator_host="127.0.0.1:1", project_id="demo-boiler")
    assert isinstance(verifier_from_config(config, environ={}), FirebaseTokenVerifier)
    forced = verifier_from_config(Config(project_id="p"), environ={"BOILER_AUTH": "firebase"})
    assert isinstance(forced, FirebaseTokenVerifier)
    # no project and no firebase-admin app: said at start-up, not a 500 per request
    with pytest.raises(ConfigurationError, match="need a project id: set GOOGLE_CLOUD_PROJECT"):
        verifier_from_config(Config(), environ={"BOILER_AUTH": "firebase"})
    dev = verifier_from_config(config, environ={"BOILER_AUTH": "dev", "BOILER_SECRET_KEY": "k"})
    assert isinstance(dev, DevTokenVerifier)
    with pytest.raises(ConfigurationError, match="BOILER_AUTH"):
        verifier_from_config(Config(), environ={"BOILER_AUTH": "header"})


# -- Firebase ID tokens (Auth emulator mode: unsigned tokens, verified claims) -------------
PROJECT = "demo-boiler"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _emulator_token(uid: str, *, age: float = 0, project: str = PROJECT) -> str:
    now = int(time.time() - age)
    claims = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + 3600,
        "firebase": {"sign_in_provider": "password"},
    }
    return _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims) + "."


@pytest.fixture
def firebase_app(monkeypatch: pytest.MonkeyPatch) -> Any:
    import firebase_admin
    import google.auth.credentials
    from firebase_admin import credentials

    class Anonymous(credentials.Base):  # type: ignore[misc]
        def get_credential(self) -> Any:
            return google.auth.credentials.AnonymousCredentials()

    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", "127.0.0.1:9099")
    app = firebase_admin.initialize_app(
        Anonymous(), {"projectId": PROJECT}, name=f"test-{uuid.uuid4().hex}"
    )
    yield app
    firebase_admin.delete_app(app)


def test_firebase_emulator_token_round_trip(firebase_app: Any) -> None:
    principal = FirebaseTokenVerifier(firebase_app).verify(_emulator_token("tijuana"))
    assert principal.uid == "tijuana"
    assert principal.claims["firebase"]["sign_in_provider"] == "password"


@pytest.mark.parametrize(
    "token, reason",
    [
        ("garbage", "invalid"),
        ("", "missing"),
        (_emulator_token("tijuana", age=7200), "expired"),
        (_emulator_token("tijuana", project="someone-else"), "invalid"),
    ],
)
def test_firebase_bad_tokens_are_refused(firebase_app: Any, token: str, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason) as info:
        FirebaseTokenVerifier(firebase_app).verify(token)
    assert "eyJ" not in str(info.value)  # the token is never echoed back


# -- boiler token ---------------------------------------------------------------------
def test_cli_prints_a_dev_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOILER_SECRET_KEY", SECRET)
    monkeypatch.delenv("BOILER_AUTH", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    result = CliRunner().invoke(
        main, ["token", "--app", "examples.meeting_room:app", "tijuana", "--ttl", "120"]
    )
    assert result.exit_code == 0, result.output
    principal = DevTokenVerifier(SECRET).verify(result.stdout.strip())
    assert principal.uid == "tijuana"
    assert principal.claims["exp"] - principal.claims["iat"] == pytest.approx(120)


def test_cli_token_without_secret_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOILER_SECRET_KEY", raising=False)
    monkeypatch.delenv("BOILER_AUTH", raising=False)
    monkeypatch.delenv("BOILER_TESTING", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("BOILER_DATABASE_PATH", ":memory:")
    result = CliRunner().invoke(main, ["token", "--app", "examples.meeting_room:app", "tijuana"])
    assert result.exit_code != 0
    assert "BOILER_SECRET_KEY" in result.output


def test_cli_token_on_a_fresh_embedded_install_uses_the_generated_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    for name in ("BOILER_SECRET_KEY", "BOILER_AUTH", "BOILER_TESTING", "BOILER_DATABASE_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["token", "--app", "examples.meeting_room:app", "tijuana"])
    assert result.exit_code == 0, result.output
    secret = (tmp_path / "boiler.sqlite3.secret").read_text().strip()
    assert DevTokenVerifier(secret).verify(result.stdout.strip()).uid == "tijuana"


def test_dev_principal_exp_is_when_this_verifier_stops_accepting() -> None:
    """A long-lived token verified under a shorter max_age reports the earlier
    expiry: what a Socket.IO connection relies on to stop trusting it."""
    now = time.time()
    token = DevTokenVerifier(SECRET, max_age=10_000).issue("tijuana", ttl=5_000, issued_at=now)
    principal = DevTokenVerifier(SECRET, max_age=60).verify(token)
    assert principal.claims["exp"] == pytest.approx(now + 60)
    assert principal.claims["iat"] == pytest.approx(now)
    assert DevTokenVerifier(SECRET).verify(token).claims["exp"] == pytest.approx(now + 5_000)
