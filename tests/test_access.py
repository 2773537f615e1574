"""Declarative access rules (``boiler.access``) and ``ViewModel.authorize``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boiler import access
from boiler.auth import Principal
from boiler.database import Database, open_database
from boiler.exceptions import ConfigurationError, Forbidden
from boiler.view_model import ViewModel
from examples.meeting_room import MeetingSession
from examples.meeting_room.seed import seed as write_demo

pytestmark = pytest.mark.timeout(30)

MINE = {"user_id": "u1", "doc_id": "d1"}


def denial(rule: access.Rule, uid: str | None, **claims: object) -> str | None:
    return rule.denial(MINE, access.Caller(uid, claims))


def test_owner() -> None:
    rule = access.owner()
    assert denial(rule, "u1") is None
    assert denial(rule, "u2") == "not the owner (user_id is 'u1')"
    assert denial(rule, None) == "authentication required"
    assert denial(access.owner("viewer"), "u1") == "the view has no 'viewer' param to compare with"
    assert access.owner("viewer").allows({"viewer": "u1"}, access.Caller("u1"))


def test_role_claim_or_roles_list() -> None:
    rule = access.role("admin", "ops")
    assert denial(rule, "u2", role="admin") is None
    assert denial(rule, "u2", roles=["viewer", "ops"]) is None
    assert denial(rule, "u2", role="viewer") == "no role 'admin' or 'ops'"
    assert denial(rule, "u2", role=["admin"]) is not None  # `role` must be a string
    assert denial(rule, "u2", roles="admin") is not None  # `roles` must be a list
    assert denial(rule, None, role="admin") == "authentication required"


def test_combinations() -> None:
    either = access.owner() | access.role("admin")
    assert denial(either, "u1") is None
    assert denial(either, "u2", role="admin") is None
    assert denial(either, "u2") == "not the owner (user_id is 'u1') and no role 'admin'"
    assert denial(either, None) == "authentication required"

    both = access.owner() & access.role("member")
    assert denial(both, "u1", role="member") is None
    assert denial(both, "u1") == "no role 'member'"
    assert denial(both, "u2", role="member") == "not the owner (user_id is 'u1')"

    nested = (access.owner() & access.role("member")) | access.role("admin")
    assert repr(nested) == "(owner('user_id') & role('member')) | role('admin')"
    assert nested.firestore({"user_id": "user_id"}) == (
        "(isUser(user_id) && hasRole(['member'])) || hasRole(['admin'])"
    )
    flat = access.owner() | access.role("a") | access.role("b")
    assert isinstance(flat, access.AnyOf) and len(flat.rules) == 3
    assert denial(access.anyone(), None) is None
    assert denial(access.authenticated(), None) == "authentication required"
    assert denial(access.authenticated(), "u9") is None


def test_bad_declarations_fail_early() -> None:
    with pytest.raises(ConfigurationError, match="role names"):
        access.role()
    with pytest.raises(ConfigurationError, match="param name"):
        access.owner("users/{uid}")
    with pytest.raises(ConfigurationError, match="Meta.access must be a boiler.access rule"):

        class Broken(ViewModel):
            class Meta:
                access = "owner"


class Profile(ViewModel):
    """No data-dependent check: only the declared rule applies."""

    class Meta:
        access = access.owner("user_id") | access.role("admin")


def test_authorize_applies_the_declared_rule() -> None:
    view = Profile(store=None, user_id="u1")  # type: ignore[arg-type]
    view.authorize("u1")
    view.authorize("u2", {"role": "admin"})
    view.authorize(Principal("u2", {"roles": ["admin"]}))
    with pytest.raises(Forbidden) as caught:
        view.authorize("u2")
    assert str(caught.value) == (
        "user 'u2' may not access Profile: not the owner (user_id is 'u1') and no role 'admin'"
    )
    with pytest.raises(Forbidden, match="an unauthenticated caller may not access Profile"):
        view.authorize(None)


def test_without_meta_access_only_check_access_applies() -> None:
    class Open(ViewModel):
        pass

    assert access.rule_of(Open) is None
    Open(store=None).authorize(None)  # type: ignore[arg-type]


@pytest.fixture
def demo() -> Iterator[Database]:
    db = open_database("embedded", path=":memory:")
    write_demo(db)
    try:
        yield db
    finally:
        db.close()


def test_meeting_session_rule_then_participant_check(demo: Database) -> None:
    view = MeetingSession.get(db=demo, doc_id="meeting_1", user_id="tijuana")
    assert isinstance(view, MeetingSession)
    view.authorize("tijuana")
    view.authorize(Principal("tijuana", {}))
    view.check_access("tijuana")  # still works on its own
    view.authorize("joshua", {"role": "admin"})  # an admin who is a participant
    with pytest.raises(Forbidden, match="user 'thomasina' may not access MeetingSession: not"):
        view.authorize("thomasina")  # a participant, but not this view's owner
    with pytest.raises(Forbidden, match="'boss' is not a participant of meeting 'meeting_1'"):
        view.authorize("boss", {"role": "admin"})  # the rule lets admins in; check_access not
    with pytest.raises(Forbidden, match="unauthenticated"):
        view.authorize(None)

    outsider = MeetingSession.get(db=demo, doc_id="meeting_1", user_id="mallory")
    assert isinstance(outsider, MeetingSession)
    with pytest.raises(Forbidden, match="'mallory' is not a participant"):
        outsider.authorize("mallory")
