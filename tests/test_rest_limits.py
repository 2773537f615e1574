"""REST at its limits: oversized and deeply nested bodies, invalid stored data,
and what the unauthenticated ``/healthz`` may tell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from boiler import attrs
from boiler.app import MAX_CONTENT_LENGTH, create_flask_app
from boiler.application import App
from boiler.auth import DevTokenVerifier
from boiler.database import Database
from boiler.domain_model import DomainModel
from boiler.rest import RestMediator
from boiler.rest.testing import serve
from boiler.runtime.process import Runtime
from boiler.view_model import ViewModel
from examples.meeting_room import app, seed

VERIFIER = DevTokenVerifier("rest-limits-secret", max_age=600)
URL = "/meeting_sessions/meeting_1"


def auth(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {VERIFIER.issue(uid)}"}


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in response.text
    return response.json()["error"]  # type: ignore[no-any-return]


@pytest.fixture
def base(db: Database) -> Iterator[str]:
    seed.seed(db)
    with serve(create_flask_app(app, db, verifier=VERIFIER)) as url:
        yield url


def test_a_body_over_the_limit_is_413(base: str) -> None:
    body = b'{"inSession": false, "pad": "' + b"x" * MAX_CONTENT_LENGTH + b'"}'
    response = requests.patch(
        base + URL,
        data=body,
        headers={**auth("tijuana"), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"


def test_a_deeply_nested_body_is_400(base: str) -> None:
    response = requests.patch(
        base + URL,
        data="[" * 100_000,
        headers={**auth("tijuana"), "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 400
    assert error_of(response) == {
        "code": "invalid_request",
        "message": "the request body is nested too deeply",
    }


class Secret(DomainModel):
    class Meta:
        collection_name = "secrets"

    text = attrs.bproperty(type=str)


class SecretView(ViewModel):
    text = attrs.bproperty(type=str)

    @text.getter
    def text(self) -> str:
        return self.doc(Secret, doc_id=self.params["doc_id"]).text


def test_invalid_stored_data_is_a_generic_500(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A GET sends no data: a stored document failing validation is the
    server's fault (logged), and its path and value stay out of the answer."""
    db.set("secrets/s1", {"text": 12345})
    secrets = App("secrets", rest=[RestMediator(SecretView, url_prefix="/secrets")])
    with serve(create_flask_app(secrets, db, verifier=VERIFIER)) as url:
        response = requests.get(url + "/secrets/s1", headers=auth("u1"), timeout=10)
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal_error", "message": "internal server error"}
    assert "12345" not in response.text and "secrets/s1" not in response.text
    logged = [r for r in caplog.records if r.exc_info]
    assert any("invalid stored data" in str(r.exc_info[1]) for r in logged)  # type: ignore[index]


def test_healthz_tells_counts_not_errors(db: Database) -> None:
    runtime = Runtime(db).start()
    try:
        runtime.record_error("test", RuntimeError("users/u1 holds 'secret'"))
        with serve(create_flask_app(app, runtime, verifier=VERIFIER)) as url:
            health = requests.get(url + "/healthz", timeout=10).json()
        assert health["error_count"] == 1 and health["running"] is True
        assert "last_error" not in health and "secret" not in str(health)
        assert runtime.health()["last_error"]  # in-process, the full story
    finally:
        runtime.stop(raise_errors=False)
