"""Acceptance tests of the reactive core, on the meeting-room app, on both backends.

Each test seeds the demo (one meeting, three participants: Tijuana and
Thomasina attend, Joshua does not), runs the app's runtime and changes
domain documents the way other programs would; the per-participant views
``users/{uid}/MeetingSession/meeting_1`` must follow. ``stop()`` at teardown
raises any recorded runtime error, so an unexpected failure fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from boiler.context import Context
from boiler.database import Database
from boiler.runtime.process import Runtime
from boiler.testing import wait_for

from .. import app
from ..domain import Meeting, Ticket, User
from ..seed import seed
from .helpers import divergence, rebuilt, view_doc, view_path

PARTICIPANTS = ("joshua", "thomasina", "tijuana")
TIJUANA = {"name": "Tijuana Furlong", "organization": "UCSD", "hearingAidRequested": True}
THOMASINA = {"name": "Thomasina Manes", "organization": "UCSD", "hearingAidRequested": False}
JOSHUA = {"name": "Joshua Pendergrast", "organization": "SDSU", "hearingAidRequested": True}
PATCH = "users/{uid}/MeetingSession_PATCH/{mid}"
TIMEOUT = 10.0


@pytest.fixture
def runtime(db: Database) -> Iterator[Runtime]:
    with Context.use(db):
        seed(db)
    rt = app.runtime(db).start()
    try:
        assert rt.wait_idle(20), rt.health()
        yield rt
    finally:
        rt.stop()  # raises RuntimeFailure if anything was recorded (unless already stopped)


def views_satisfy(db: Database, check: Any, uids: tuple[str, ...] = PARTICIPANTS) -> None:
    """Wait until ``check(view)`` holds for the view of every user in ``uids``."""

    def ok() -> bool:
        return all((v := view_doc(db, uid)) is not None and check(v) for uid in uids)

    wait_for(ok, timeout=TIMEOUT, message=lambda: f"views {[view_doc(db, u) for u in uids]}")


def converged(rt: Runtime, db: Database) -> None:
    assert rt.wait_idle(TIMEOUT), rt.health()
    assert divergence(db) == ""


def patch_status(db: Database, path: str) -> dict[str, Any] | None:
    data = db.get(path).to_dict() or {}
    meta = data.get("_boiler")
    return meta if isinstance(meta, dict) and meta.get("status") else None


def wait_patch(db: Database, path: str) -> dict[str, Any]:
    return wait_for(lambda: patch_status(db, path), timeout=TIMEOUT, message=f"outcome of {path}")


# -- the initial state ---------------------------------------------------------------------


def test_seeded_views(runtime: Runtime, db: Database) -> None:
    for uid in PARTICIPANTS:
        view = view_doc(db, uid)
        assert view == {
            "latitude": 32.880361,
            "longitude": -117.242929,
            "address": "9500 Gilman Drive, La Jolla, CA",
            "inSession": True,
            "attending": [THOMASINA, TIJUANA],
            "numHearingAidRequested": 1,
        }, uid
        assert view == rebuilt(db, uid)
    raw = db.get(view_path("tijuana")).to_dict()
    assert raw is not None and "version" in raw["_boiler"]
    assert runtime.health()["error_count"] == 0


# -- the headline ----------------------------------------------------------------------------


def test_attendance_false_drops_participant_everywhere(runtime: Runtime, db: Database) -> None:
    ticket = Ticket.get(doc_id="ticket_tijuana", db=db)
    ticket.attendance = False
    ticket.save(db=db)
    views_satisfy(db, lambda v: v["attending"] == [THOMASINA] and v["numHearingAidRequested"] == 0)
    converged(runtime, db)

    ticket = Ticket.get(doc_id="ticket_thomasina", db=db)
    ticket.attendance = False
    ticket.save(db=db)
    views_satisfy(db, lambda v: v["attending"] == [] and v["numHearingAidRequested"] == 0)
    converged(runtime, db)


def test_documents_written_by_another_program(runtime: Runtime, db: Database) -> None:
    """Plain dicts, no obj_type/doc_id/doc_ref: they load as the collection's model."""
    db.set("tickets/ticket_joshua", {"role": "Speaker", "attendance": True, "user": "users/joshua"})
    views_satisfy(
        db,
        lambda v: (
            v["attending"] == [JOSHUA, THOMASINA, TIJUANA] and v["numHearingAidRequested"] == 2
        ),
    )
    db.set(
        "users/joshua",
        {
            "firstName": "Josh",
            "lastName": "P",
            "organization": "SDSU",
            "hearingAidRequested": False,
        },
    )
    josh = {"name": "Josh P", "organization": "SDSU", "hearingAidRequested": False}
    views_satisfy(
        db,
        lambda v: v["attending"] == [josh, THOMASINA, TIJUANA] and v["numHearingAidRequested"] == 1,
    )
    db.set("locations/location_1", {"latitude": 1.5, "longitude": 2, "address": "Elsewhere"})
    views_satisfy(
        db, lambda v: (v["latitude"], v["longitude"], v["address"]) == (1.5, 2.0, "Elsewhere")
    )
    # A meeting written by another program: its participants get views.
    db.set(
        "meetings/meeting_raw",
        {
            "location": "locations/location_1",
            "users": ["users/joshua"],
            "tickets": {"joshua": "tickets/ticket_joshua"},
            "status": "not-started",
        },
    )
    wait_for(lambda: view_doc(db, "joshua", "meeting_raw"), timeout=TIMEOUT)
    assert view_doc(db, "joshua", "meeting_raw") == {
        "latitude": 1.5,
        "longitude": 2.0,
        "address": "Elsewhere",
        "inSession": False,
        "attending": [josh],
        "numHearingAidRequested": 0,
    }
    converged(runtime, db)


# -- other domain changes ---------------------------------------------------------------------


def test_user_name_and_organization_change(runtime: Runtime, db: Database) -> None:
    user = User.get(doc_id="thomasina", db=db)
    user.last_name = "Manes-Smith"
    user.save(db=db)
    renamed = {**THOMASINA, "name": "Thomasina Manes-Smith"}
    views_satisfy(db, lambda v: v["attending"] == [renamed, TIJUANA])

    user = User.get(doc_id="thomasina", db=db)
    user.organization = "SDSU"
    user.hearing_aid_requested = True
    user.save(db=db)
    moved = {**renamed, "organization": "SDSU", "hearingAidRequested": True}
    views_satisfy(
        db, lambda v: v["attending"] == [moved, TIJUANA] and v["numHearingAidRequested"] == 2
    )
    # A non-attending user's change touches no view content.
    user = User.get(doc_id="joshua", db=db)
    user.first_name = "Josh"
    user.save(db=db)
    converged(runtime, db)
    assert view_doc(db, "tijuana")["attending"] == [moved, TIJUANA]  # type: ignore[index]


def test_location_change(runtime: Runtime, db: Database) -> None:
    db.update("locations/location_1", {"address": "1 Main St", "latitude": 10.0})
    views_satisfy(db, lambda v: v["address"] == "1 Main St" and v["latitude"] == 10.0)
    # Pointing the meeting at another location: the view now depends on that one.
    db.set("locations/location_2", {"latitude": 0.5, "longitude": 0.25, "address": "Two"})
    db.update("meetings/meeting_1", {"location": "locations/location_2"})
    views_satisfy(db, lambda v: v["address"] == "Two")
    db.update("locations/location_1", {"address": "no longer read"})
    db.update("locations/location_2", {"address": "Two, updated"})
    views_satisfy(db, lambda v: v["address"] == "Two, updated")
    converged(runtime, db)


def test_ticket_added_new_participant_joins(runtime: Runtime, db: Database) -> None:
    with Context.use(db):
        User.new(
            doc_id="newcomer",
            first_name="Nia",
            last_name="Newcomer",
            organization="UCLA",
            hearing_aid_requested=True,
        ).save()
        Ticket.new(
            doc_id="ticket_newcomer", role="Participant", attendance=True, user="users/newcomer"
        ).save()
        meeting = Meeting.get(doc_id="meeting_1")
        meeting.users = [*meeting.users, "users/newcomer"]
        meeting.tickets = {**meeting.tickets, "newcomer": "tickets/ticket_newcomer"}
        meeting.save()
    nia = {"name": "Nia Newcomer", "organization": "UCLA", "hearingAidRequested": True}
    views_satisfy(
        db,
        lambda v: v["attending"] == [nia, THOMASINA, TIJUANA] and v["numHearingAidRequested"] == 2,
        uids=(*PARTICIPANTS, "newcomer"),
    )
    # Leaves again (not attending): dropped from every list, the own view stays.
    db.update("tickets/ticket_newcomer", {"attendance": False})
    views_satisfy(
        db, lambda v: v["attending"] == [THOMASINA, TIJUANA], uids=(*PARTICIPANTS, "newcomer")
    )
    # Removed from the meeting: the view is deleted.
    meeting = Meeting.get(doc_id="meeting_1", db=db)
    meeting.users = [u for u in meeting.users if u != "users/newcomer"]
    meeting.save(db=db)
    wait_for(lambda: view_doc(db, "newcomer") is None, timeout=TIMEOUT)
    converged(runtime, db)


def test_meeting_deleted_views_gone(runtime: Runtime, db: Database) -> None:
    db.delete("meetings/meeting_1")
    wait_for(
        lambda: all(view_doc(db, uid) is None for uid in PARTICIPANTS),
        timeout=TIMEOUT,
        message="every view deleted",
    )
    converged(runtime, db)
    # Recreated: the views come back.
    with Context.use(db):
        seed(db)
    views_satisfy(db, lambda v: v["attending"] == [THOMASINA, TIJUANA])
    converged(runtime, db)


# -- patch documents (the write path) -----------------------------------------------------------


def test_patch_flips_status_once_even_across_restart(runtime: Runtime, db: Database) -> None:
    path = PATCH.format(uid="thomasina", mid="meeting_1")
    db.set(path, {"inSession": False})
    assert wait_patch(db, path)["status"] == "processed"
    assert Meeting.get(doc_id="meeting_1", db=db).status == "closed"
    views_satisfy(db, lambda v: v["inSession"] is False)
    converged(runtime, db)
    runtime.stop()

    # While nothing runs, the meeting is reopened by a domain write; the old
    # patch (still there, marked processed) must not close it again.
    meeting = Meeting.get(doc_id="meeting_1", db=db)
    meeting.status = "in-session"
    meeting.save(db=db)
    # ... and a new patch arrives while the runtime is down.
    late = PATCH.format(uid="tijuana", mid="meeting_1")
    db.set(late, {"inSession": True})

    again = app.runtime(db).start()
    try:
        assert again.wait_idle(20), again.health()
        assert wait_patch(db, late)["status"] == "processed"
        assert again.wait_idle(TIMEOUT)
        assert Meeting.get(doc_id="meeting_1", db=db).status == "in-session"
        assert patch_status(db, path)["status"] == "processed"  # type: ignore[index]
        views_satisfy(db, lambda v: v["inSession"] is True)
        assert divergence(db) == ""
    finally:
        again.stop()


def test_patch_from_non_participant_rejected(runtime: Runtime, db: Database) -> None:
    before = {p: db.get(p).to_dict() for p in ("meetings/meeting_1", "tickets/ticket_tijuana")}
    path = PATCH.format(uid="mallory", mid="meeting_1")
    db.set(path, {"inSession": False})
    outcome = wait_patch(db, path)
    assert outcome["status"] == "rejected"
    assert "Forbidden" in outcome["error"] and "mallory" in outcome["error"]
    assert runtime.wait_idle(TIMEOUT)
    assert {p: db.get(p).to_dict() for p in before} == before
    assert all(view_doc(db, uid)["inSession"] is True for uid in PARTICIPANTS)  # type: ignore[index]
    assert view_doc(db, "mallory") is None
    # A rejected command is the client's fault, recorded in its document — not a runtime error.
    assert runtime.errors == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inSession": "yes"}, "inSession"),
        ({"numHearingAidRequested": 3}, "numHearingAidRequested"),
        ({"inSession": False, "colour": "red"}, "colour"),
        ({"inSession": None}, "inSession"),  # was processed: the meeting closed
    ],
    ids=["wrong-type", "read-only", "unknown-key", "null"],
)
def test_invalid_patch_rejected_naming_the_field(
    runtime: Runtime, db: Database, body: dict[str, Any], field: str
) -> None:
    meeting_before = db.get("meetings/meeting_1").to_dict()
    path = PATCH.format(uid="tijuana", mid="meeting_1")
    db.set(path, body)
    outcome = wait_patch(db, path)
    assert outcome["status"] == "rejected"
    assert "ValidationError" in outcome["error"] and field in outcome["error"], outcome
    assert runtime.wait_idle(TIMEOUT)
    assert db.get("meetings/meeting_1").to_dict() == meeting_before
    assert runtime.errors == []


# -- malformed documents: isolation and healing ----------------------------------------------------


def _second_meeting(db: Database) -> None:
    db.set("locations/location_9", {"latitude": 9.0, "longitude": 9.0, "address": "Nine"})
    db.set("tickets/t9_joshua", {"role": "Host", "attendance": True, "user": "users/joshua"})
    db.set(
        "meetings/meeting_9",
        {
            "location": "locations/location_9",
            "users": ["users/joshua"],
            "tickets": {"joshua": "tickets/t9_joshua"},
            "status": "in-session",
        },
    )


def _errors_mention(rt: Runtime, text: str) -> bool:
    return any(text in f"{e.key!r} {e.exception}" for e in rt.errors)


def test_malformed_ticket_reported_others_fresh_then_heals(runtime: Runtime, db: Database) -> None:
    _second_meeting(db)
    wait_for(lambda: view_doc(db, "joshua", "meeting_9"), timeout=TIMEOUT)

    db.update("tickets/ticket_thomasina", {"attendance": "maybe"})
    wait_for(
        lambda: _errors_mention(runtime, "tickets/ticket_thomasina"),
        timeout=TIMEOUT,
        message=lambda: f"an error naming tickets/ticket_thomasina in {runtime.errors}",
    )
    # Another meeting's views keep flowing.
    db.update("locations/location_9", {"address": "Nine, moved"})
    wait_for(
        lambda: (view_doc(db, "joshua", "meeting_9") or {}).get("address") == "Nine, moved",
        timeout=TIMEOUT,
    )
    # Fixing the document heals the broken views.
    db.update("tickets/ticket_thomasina", {"attendance": False})
    views_satisfy(db, lambda v: v["attending"] == [TIJUANA])
    converged(runtime, db)
    runtime.stop(raise_errors=False)
    assert runtime.errors and all(
        "tickets/ticket_thomasina" in str(e.exception) for e in runtime.errors
    ), runtime.errors


def test_malformed_meeting_reported_others_fresh_then_heals(runtime: Runtime, db: Database) -> None:
    _second_meeting(db)
    wait_for(lambda: view_doc(db, "joshua", "meeting_9"), timeout=TIMEOUT)

    db.update("meetings/meeting_1", {"users": 42})
    wait_for(
        lambda: _errors_mention(runtime, "meetings/meeting_1"),
        timeout=TIMEOUT,
        message=lambda: f"an error naming meetings/meeting_1 in {runtime.errors}",
    )
    db.update("users/joshua", {"organization": "UCSD"})
    wait_for(
        lambda: (
            (view_doc(db, "joshua", "meeting_9") or {}).get("attending")
            == [{**JOSHUA, "organization": "UCSD"}]
        ),
        timeout=TIMEOUT,
    )
    db.update("meetings/meeting_1", {"users": ["users/tijuana", "users/thomasina"]})
    wait_for(
        lambda: view_doc(db, "joshua") is None, timeout=TIMEOUT, message="joshua's view removed"
    )
    views_satisfy(
        db, lambda v: v["attending"] == [THOMASINA, TIJUANA], uids=("thomasina", "tijuana")
    )
    converged(runtime, db)
    runtime.stop(raise_errors=False)
    assert runtime.errors and all("meetings/meeting_1" in str(e) for e in runtime.errors), [
        str(e) for e in runtime.errors
    ]
