"""Generated Firestore security rules, enforced by the real emulator.

The meeting room's generated rules are loaded into a project of the session
emulator; the server writes domain, view and patch documents through boiler's
Firestore backend (admin credentials bypass rules); clients then call the
Firestore REST API with unsigned user ID tokens (``alg: none``), which the
emulator evaluates as that user.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from boiler import access
from boiler.cli import main
from boiler.database import open_database
from boiler.exceptions import ConfigurationError
from boiler.mediators import PatchMediator, ViewMediator
from boiler.rules import PathTemplate, generate, writable_types
from boiler.testing import FirestoreEmulator
from examples.meeting_room import MeetingSession, app
from examples.meeting_room.mediators import MeetingSessionMediator, MeetingSessionPatch
from examples.meeting_room.seed import seed as write_demo

pytestmark = pytest.mark.timeout(60)

RULES = generate(app)
DOMAIN = ["meetings/meeting_1", "users/tijuana", "tickets/ticket_tijuana", "locations/location_1"]


# -- the generated text ------------------------------------------------------------------------
def test_text_is_deterministic_and_readable() -> None:
    assert generate(app) == RULES
    reordered = generate([MeetingSessionMediator, *reversed(app.mediators)], source="meeting_room")
    assert reordered.count("match /users/{user_id}/MeetingSession/{doc_id}") == 2
    assert RULES.startswith("rules_version = '2';\n")
    assert "// View MeetingSession (MeetingSessionMediator)" in RULES
    assert RULES.index("/MeetingSession/{doc_id}") < RULES.index("/MeetingSession_PATCH/{doc_id}")
    assert "allow get, list: if isUser(user_id) || hasRole(['admin']);" in RULES
    assert "keys().hasOnly(['inSession'])" in RULES
    assert "request.resource.data['inSession'] is bool" in RULES


def test_no_rule_for_domain_collections() -> None:
    matches = [line.strip() for line in RULES.splitlines() if line.strip().startswith("match ")]
    assert matches == [
        "match /databases/{database}/documents {",
        "match /users/{user_id}/MeetingSession/{doc_id} {",
        "match /users/{user_id}/MeetingSession_PATCH/{doc_id} {",
        "match /{document=**} {",
    ]
    assert "allow read, write: if false;" in RULES
    for collection in ("meetings", "tickets", "locations"):
        assert f"/{collection}" not in RULES
    # patches: create only, never read/update/delete
    patch_block = RULES.split("MeetingSession_PATCH/{doc_id} {")[1].split("}")[0]
    assert "allow create:" in patch_block
    assert not any(op in patch_block for op in ("read", "update", "delete", "get", "list"))


def test_default_owner_rule_and_path_errors() -> None:
    from boiler.view_model import ViewModel

    class Plain(ViewModel):
        pass

    class PlainViews(ViewMediator):
        source = MeetingSessionMediator.source
        view_model = Plain
        view_path_template = "users/{user_id}/Plain/{doc_id}"

    class NoTemplate(ViewMediator):
        source = MeetingSessionMediator.source
        view_model = Plain

    text = generate([PlainViews, NoTemplate])
    assert "read by owner only (no Meta.access)" in text
    assert "allow get, list: if isUser(user_id);" in text
    assert "no view_path_template, so clients cannot read it" in text

    class Shared(ViewModel):
        class Meta:
            access = access.owner("viewer")

    class SharedViews(PlainViews):
        view_model = Shared

    with pytest.raises(ConfigurationError, match=r"no \{viewer\} segment"):
        generate([SharedViews])
    with pytest.raises(ConfigurationError, match="not a document path"):
        PathTemplate.parse("users/{user_id}/Views", what="t")
    with pytest.raises(ConfigurationError, match="reserved or repeated"):
        PathTemplate.parse("users/{request}/Views/{doc_id}", what="t")


def test_writable_types() -> None:
    assert writable_types(MeetingSession) == {"inSession": ("bool",)}
    assert issubclass(MeetingSessionPatch, PatchMediator)


def test_cli_prints_and_writes_rules(tmp_path: Any) -> None:
    runner = CliRunner()
    printed = runner.invoke(main, ["rules", "examples.meeting_room:app"])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout == generate(app, source="examples.meeting_room:app")
    out = tmp_path / "firestore.rules"
    written = runner.invoke(main, ["rules", "examples.meeting_room:app", "-o", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text() == printed.stdout
    bad = runner.invoke(main, ["rules", "examples.meeting_room"])
    assert bad.exit_code == 2 and "MODULE:ATTR" in bad.output


# -- enforced by the emulator ------------------------------------------------------------------
class Client:
    """A Firestore REST client acting as one user (None: unauthenticated)."""

    def __init__(self, host: str, project: str, uid: str | None, **claims: Any) -> None:
        self.base = f"http://{host}/v1/projects/{project}/databases/(default)/documents"
        self.headers = (
            {} if uid is None else {"Authorization": f"Bearer {_jwt(project, uid, claims)}"}
        )

    def get(self, path: str) -> int:
        return requests.get(f"{self.base}/{path}", headers=self.headers, timeout=10).status_code

    def create(self, path: str, data: dict[str, Any]) -> int:
        parent, _, doc_id = path.rpartition("/")
        response = requests.post(
            f"{self.base}/{parent}",
            params={"documentId": doc_id},
            json={"fields": _fields(data)},
            headers=self.headers,
            timeout=10,
        )
        return response.status_code

    def update(self, path: str, data: dict[str, Any]) -> int:
        response = requests.patch(
            f"{self.base}/{path}",
            params={"currentDocument.exists": "true"},
            json={"fields": _fields(data)},
            headers=self.headers,
            timeout=10,
        )
        return response.status_code

    def delete(self, path: str) -> int:
        return requests.delete(f"{self.base}/{path}", headers=self.headers, timeout=10).status_code


def _jwt(project: str, uid: str, claims: dict[str, Any]) -> str:
    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        "firebase": {"sign_in_provider": "custom", "identities": {}},
        **claims,
    }

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}."


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    def value(v: Any) -> dict[str, Any]:
        if isinstance(v, bool):
            return {"booleanValue": v}
        if isinstance(v, int):
            return {"integerValue": str(v)}
        return {"stringValue": str(v)}

    return {k: value(v) for k, v in data.items()}


@pytest.fixture(scope="module")
def secured(firestore_emulator: FirestoreEmulator) -> Iterator[tuple[str, str]]:
    """A project with the generated rules, the demo data and two stored views."""
    project = f"boiler-rules-{uuid.uuid4().hex[:10]}"
    response = requests.put(
        f"http://{firestore_emulator.host}/emulator/v1/projects/{project}:securityRules",
        json={"rules": {"files": [{"name": "firestore.rules", "content": RULES}]}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    db = open_database("firestore", project=project, emulator_host=firestore_emulator.host)
    try:
        write_demo(db)  # as the server: bypasses the rules
        for uid in ("tijuana", "thomasina"):
            db.set(f"users/{uid}/MeetingSession/meeting_1", {"inSession": True, "address": "x"})
        db.set("users/thomasina/MeetingSession_PATCH/old", {"inSession": True})
    finally:
        db.close()
    yield firestore_emulator.host, project


def _client(secured: tuple[str, str], uid: str | None, **claims: Any) -> Client:
    host, project = secured
    return Client(host, project, uid, **claims)


def test_owner_reads_own_view_only(secured: tuple[str, str]) -> None:
    tijuana = _client(secured, "tijuana")
    assert tijuana.get("users/tijuana/MeetingSession/meeting_1") == 200
    assert tijuana.get("users/tijuana/MeetingSession") == 200  # list own views
    assert tijuana.get("users/thomasina/MeetingSession/meeting_1") == 403
    assert tijuana.get("users/thomasina/MeetingSession") == 403
    assert _client(secured, None).get("users/tijuana/MeetingSession/meeting_1") == 403


def test_clients_never_touch_domain_collections(secured: tuple[str, str]) -> None:
    for client in (_client(secured, "tijuana"), _client(secured, "boss", role="admin")):
        for path in DOMAIN:
            assert client.get(path) == 403, path
            assert client.get(path.rpartition("/")[0]) == 403, path  # list
            assert client.update(path, {"status": "closed"}) == 403, path
            assert client.delete(path) == 403, path
        assert client.create("meetings/new_meeting", {"status": "in-session"}) == 403
    assert _client(secured, None).get("meetings/meeting_1") == 403


def test_admin_role_reads_every_view(secured: tuple[str, str]) -> None:
    for admin in (_client(secured, "boss", role="admin"), _client(secured, "ops", roles=["admin"])):
        assert admin.get("users/thomasina/MeetingSession/meeting_1") == 200
        assert admin.get("users/tijuana/MeetingSession") == 200
        assert admin.get("users/thomasina/MeetingSession_PATCH/old") == 403
        assert admin.create("users/tijuana/MeetingSession_PATCH/a1", {"inSession": False}) == 403
    assert (
        _client(secured, "eve", role="editor").get("users/tijuana/MeetingSession/meeting_1") == 403
    )


def test_owner_creates_patches_with_writable_typed_fields_only(secured: tuple[str, str]) -> None:
    tijuana = _client(secured, "tijuana")
    patches = "users/tijuana/MeetingSession_PATCH"
    assert tijuana.create(f"{patches}/p1", {"inSession": False}) == 200
    assert tijuana.create("users/thomasina/MeetingSession_PATCH/p2", {"inSession": False}) == 403
    assert tijuana.create(f"{patches}/p3", {"inSession": False, "address": "here"}) == 403
    assert tijuana.create(f"{patches}/p4", {"inSession": "no"}) == 403
    assert tijuana.create(f"{patches}/p5", {"inSession": False, "_boiler": "processed"}) == 403
    assert tijuana.create(f"{patches}/p6", {}) == 403
    assert _client(secured, None).create(f"{patches}/p7", {"inSession": False}) == 403
    # once created, a patch belongs to the server: no update, delete or read
    assert tijuana.update(f"{patches}/p1", {"inSession": True}) == 403
    assert tijuana.delete(f"{patches}/p1") == 403
    assert tijuana.get(f"{patches}/p1") == 403
    # views are read-only for everyone
    assert tijuana.update("users/tijuana/MeetingSession/meeting_1", {"inSession": False}) == 403
    assert tijuana.create("users/tijuana/MeetingSession/meeting_9", {"inSession": False}) == 403
    assert tijuana.delete("users/tijuana/MeetingSession/meeting_1") == 403
