"""REST over real HTTP: the meeting room's RestMediator on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from boiler import attrs
from boiler.access import role
from boiler.app import create_flask_app
from boiler.application import App
from boiler.auth import DevTokenVerifier
from boiler.database import Database
from boiler.database.firestore import FirestoreDatabase
from boiler.rest import (
    VIEW_SOURCE_HEADER,
    RestMediator,
    RestResource,
    RestViewModelSource,
    current_services,
)
from boiler.rest.testing import serve
from boiler.testing import free_port, wait_for
from boiler.view_model import ViewModel
from examples.meeting_room import MeetingSession, app, seed

VERIFIER = DevTokenVerifier("rest-test-secret", max_age=600)
URL = "/meeting_sessions/meeting_1"


def auth(uid: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {VERIFIER.issue(uid)}"}


def status(db: Database) -> str:
    return str(db.get("meetings/meeting_1").to_dict()["status"])  # type: ignore[index]


@pytest.fixture
def seeded(db: Database) -> Database:
    seed.seed(db)
    return db


@pytest.fixture
def base(seeded: Database) -> Iterator[str]:
    """The meeting room served over HTTP from the database alone (views computed)."""
    with serve(create_flask_app(app, seeded, verifier=VERIFIER)) as url:
        yield url


def error_of(response: requests.Response) -> dict[str, Any]:
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message"} <= set(body["error"])
    assert "Traceback" not in response.text
    return body["error"]  # type: ignore[no-any-return]


# -- GET --------------------------------------------------------------------------------------
def test_get_own_view(base: str, seeded: Database) -> None:
    response = requests.get(base + URL, headers=auth("tijuana"), timeout=10)
    assert response.status_code == 200
    expected = MeetingSession.get(doc_id="meeting_1", user_id="tijuana", db=seeded).data
    assert response.json() == expected
    assert response.json()["inSession"] is True
    assert response.headers[VIEW_SOURCE_HEADER] == "computed"


def test_get_as_non_participant_is_forbidden(base: str) -> None:
    response = requests.get(base + URL, headers=auth("mallory"), timeout=10)
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"


def test_get_missing_meeting_is_404(base: str) -> None:
    response = requests.get(base + "/meeting_sessions/nope", headers=auth("tijuana"), timeout=10)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_no_token_is_401(base: str) -> None:
    response = requests.get(base + URL, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer " + DevTokenVerifier("some-other-secret").issue("tijuana"),
        "Bearer not-a-token",
        "Bearer " + VERIFIER.issue("tijuana", ttl=1, issued_at=0),
        "Basic dGlqdWFuYTpwdw==",
        "tijuana",  # "the header is the user id" is never accepted
    ],
)
def test_bad_token_is_401(base: str, header: str) -> None:
    response = requests.get(base + URL, headers={"Authorization": header}, timeout=10)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


# -- PATCH ------------------------------------------------------------------------------------
def test_patch_flips_status_and_returns_fresh_view(base: str, seeded: Database) -> None:
    response = requests.patch(
        base + URL, json={"inSession": False}, headers=auth("tijuana"), timeout=10
    )
    assert response.status_code == 200
    assert response.json()["inSession"] is False
    assert status(seeded) == "closed"
    fresh = MeetingSession.get(doc_id="meeting_1", user_id="thomasina", db=seeded).data
    assert response.json() == fresh  # both participants see the same session state
    again = requests.patch(
        base + URL, json={"inSession": True}, headers=auth("thomasina"), timeout=10
    )
    assert again.status_code == 200 and again.json()["inSession"] is True
    assert status(seeded) == "in-session"


@pytest.mark.parametrize(
    "data, field",
    [
        ("{not json", None),
        ("", None),
        ("[1, 2]", None),
        ('"inSession"', None),
        ('{"inSession": "no"}', "inSession"),
        ('{"inSession": 0}', "inSession"),
        ('{"inSession": null}', "inSession"),
        ('{"inSession": false, "color": "red"}', "color"),
        ('{"numHearingAidRequested": 3}', "numHearingAidRequested"),
    ],
)
def test_patch_bad_input_is_400_and_changes_nothing(
    base: str, seeded: Database, data: str, field: str | None
) -> None:
    headers = {**auth("tijuana"), "Content-Type": "application/json"}
    response = requests.patch(base + URL, data=data, headers=headers, timeout=10)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error.get("field") == field
    if field:
        assert field in error["message"] or error["field"] == field
    assert status(seeded) == "in-session"


def test_patch_as_non_participant_is_403_and_changes_nothing(base: str, seeded: Database) -> None:
    response = requests.patch(
        base + URL, json={"inSession": False}, headers=auth("mallory"), timeout=10
    )
    assert response.status_code == 403
    assert status(seeded) == "in-session"


def test_patch_missing_meeting_is_404(base: str) -> None:
    response = requests.patch(
        base + "/meeting_sessions/nope", json={"inSession": False}, headers=auth("a"), timeout=10
    )
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_wrong_method_is_405(base: str) -> None:
    response = requests.put(
        base + URL, json={"inSession": False}, headers=auth("tijuana"), timeout=10
    )
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"
    assert {"GET", "PATCH"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    delete = requests.delete(base + URL, headers=auth("tijuana"), timeout=10)
    assert delete.status_code == 405


def test_unknown_route_under_prefix_is_json_404(base: str) -> None:
    response = requests.get(base + "/meeting_sessions/a/b", headers=auth("tijuana"), timeout=10)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


# -- unexpected failures --------------------------------------------------------------------
class Broken(ViewModel):
    value = attrs.bproperty(type=int)

    @value.getter
    def value(self) -> int:
        raise RuntimeError("secret internal detail")


def test_unexpected_error_is_generic_500(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    broken = App("broken", rest=[RestMediator(Broken, url_prefix="/broken")])
    with serve(create_flask_app(broken, db, verifier=VERIFIER)) as url:
        response = requests.get(url + "/broken/x", headers=auth("u1"), timeout=10)
    assert response.status_code == 500
    assert error_of(response) == {"code": "internal_error", "message": "internal server error"}
    assert "secret internal detail" not in response.text
    assert any("secret internal detail" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_unreachable_database_is_503(project_id: str) -> None:
    """Firestore not answering is the server's trouble, said as such (503),
    not a generic 500 or a client error."""
    db = FirestoreDatabase(
        project=project_id, emulator_host=f"127.0.0.1:{free_port()}", request_timeout=0.3
    )
    try:
        with serve(create_flask_app(app, db, verifier=VERIFIER)) as url:
            response = requests.get(url + URL, headers=auth("tijuana"), timeout=30)
        assert response.status_code == 503
        assert error_of(response)["code"] == "unavailable"
        assert "Firestore did not answer" in error_of(response)["message"]
    finally:
        db.close()


# -- with the runtime: views served from their maintained documents ------------------------------
def test_rest_body_equals_the_live_view(seeded: Database) -> None:
    runtime = app.runtime(seeded).start()
    live: Any = None
    try:
        with serve(create_flask_app(app, runtime, verifier=VERIFIER)) as url:
            health = requests.get(url + "/healthz", timeout=10)
            assert health.status_code == 200 and health.json()["running"] is True
            view_doc = "users/tijuana/MeetingSession/meeting_1"
            wait_for(lambda: seeded.get(view_doc).exists, message="the maintained view")
            live = MeetingSession.get(
                doc_id="meeting_1", user_id="tijuana", once=False, engine=runtime.engine
            )

            def get() -> requests.Response:
                return requests.get(url + URL, headers=auth("tijuana"), timeout=10)

            first = wait_for(
                lambda: (r := get()).headers[VIEW_SOURCE_HEADER] == "document" and r,
                message="the view served from its document",
            )
            assert first.json() == live.to_view_dict()
            assert "_boiler" not in first.json()

            patched = requests.patch(
                url + URL, json={"inSession": False}, headers=auth("tijuana"), timeout=10
            )
            assert patched.status_code == 200 and patched.json()["inSession"] is False
            # right after the write, a stale document is never served
            assert get().json()["inSession"] is False
            wait_for(lambda: live.to_view_dict()["inSession"] is False, message="the live view")
            settled = wait_for(
                lambda: (r := get()).headers[VIEW_SOURCE_HEADER] == "document" and r,
                message="the refreshed view document",
            )
            assert settled.json() == live.to_view_dict() == patched.json()
            live.dispose()
            live = None
            runtime.stop()
            stopped = requests.get(url + "/healthz", timeout=10)
            assert stopped.status_code == 503 and stopped.json()["running"] is False
    finally:
        if live is not None:
            live.dispose()
        runtime.stop(raise_errors=False)


# -- declared access rules (Meta.access) are enforced over REST ---------------------------------
class AdminSession(MeetingSession):
    """The meeting session for admins only: the declared rule, then check_access."""

    class Meta:
        access = role("admin")


def admin_auth(uid: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {VERIFIER.issue(uid, claims=claims)}"}


@pytest.mark.parametrize("serve_documents", [True, False], ids=["document", "computed"])
def test_role_rule_refuses_get_and_patch_without_the_role(
    seeded: Database, serve_documents: bool
) -> None:
    admin_only = App(
        "admin_only",
        rest=[
            RestMediator(
                AdminSession,
                url_prefix="/admin_sessions",
                id_param="meeting_id",
                view_path="users/{user_id}/MeetingSession/{doc_id}",
                serve_documents=serve_documents,  # both read paths check the rule
            )
        ],
    )
    with serve(create_flask_app(admin_only, seeded, verifier=VERIFIER)) as base:
        url = base + "/admin_sessions/meeting_1"
        # thomasina takes part in the meeting (check_access would let her in): no role
        for response in (
            requests.get(url, headers=auth("thomasina"), timeout=10),
            requests.patch(url, json={"inSession": False}, headers=auth("thomasina"), timeout=10),
            requests.get(url, headers=admin_auth("thomasina", role="organizer"), timeout=10),
        ):
            assert response.status_code == 403
            error = error_of(response)
            assert error["code"] == "forbidden"
            assert "may not access AdminSession: no role 'admin'" in error["message"]
        assert status(seeded) == "in-session"  # the refused PATCH wrote nothing
        # the rule reads no documents: refused before learning whether a meeting exists
        nope = requests.get(base + "/admin_sessions/nope", headers=auth("thomasina"), timeout=10)
        assert nope.status_code == 403

        # an admin who is not a participant: the rule lets them in, check_access does not
        boss = requests.get(url, headers=admin_auth("boss", role="admin"), timeout=10)
        assert boss.status_code == 403 and "not a participant" in error_of(boss)["message"]

        # an admin participant (the `roles` list claim counts too) reads and writes
        admin = admin_auth("tijuana", roles=["admin"])
        got = requests.get(url, headers=admin, timeout=10)
        assert got.status_code == 200 and got.json()["inSession"] is True
        patched = requests.patch(url, json={"inSession": False}, headers=admin, timeout=10)
        assert patched.status_code == 200 and patched.json()["inSession"] is False
        assert status(seeded) == "closed"


class OpenAdminRest(RestResource):
    """A hand-written, unauthenticated route returning a rule-restricted view."""

    url_prefix = "/open"
    rest = RestViewModelSource()

    @rest.route("/<doc_id>", methods=("GET",), auth=False, response=AdminSession)
    def get(self, doc_id: str) -> AdminSession:
        view = AdminSession.get(doc_id=doc_id, user_id="tijuana", db=current_services().db)
        assert isinstance(view, AdminSession)
        return view  # forgets view.authorize(...): the declared rule still holds


def test_a_hand_written_route_cannot_serve_past_the_declared_rule(seeded: Database) -> None:
    with serve(create_flask_app(App("open", rest=[OpenAdminRest()]), seeded)) as url:
        response = requests.get(url + "/open/meeting_1", timeout=10)
    assert response.status_code == 403
    assert error_of(response)["code"] == "forbidden"
    assert "unauthenticated" in error_of(response)["message"]
