"""The MeetingSession view: what one participant's screen shows.

Served as ``users/{uid}/MeetingSession/{meetingId}``. It reads the meeting,
its location, every ticket and every attending user — and it is refreshed
when ANY of them changes, not only the meeting.
"""

from __future__ import annotations

from typing import Any

from boiler import access, attrs, fields, schema
from boiler.exceptions import Forbidden
from boiler.view_model import ViewModel

from .domain import Location, Meeting, Ticket, User


class Attendee(schema.Schema):
    """One attending participant in a meeting session (camelCase keys)."""

    name = fields.String()
    organization = fields.String()
    hearing_aid_requested = fields.Boolean()


class MeetingSession(ViewModel):
    """``params``: ``doc_id`` (the meeting id) and ``user_id`` (the viewer)."""

    class Meta:
        # Who may see a session: its viewer, or an admin. `boiler rules` turns
        # this into the Firestore rules for users/{uid}/MeetingSession/{id};
        # `authorize()` also applies `check_access` (participants only) below.
        access = access.owner("user_id") | access.role("admin")

    latitude = attrs.bproperty(type=float)
    longitude = attrs.bproperty(type=float)
    address = attrs.bproperty(type=str)
    in_session = attrs.bproperty(type=bool)
    attending = attrs.bproperty(field=fields.List(fields.Nested(Attendee)))
    num_hearing_aid_requested = attrs.bproperty(type=int)

    # -- what the view reads (through the store: every read is a dependency) ----
    @property
    def meeting(self) -> Meeting:
        return self.doc(Meeting, doc_id=self.params["doc_id"])

    @property
    def location(self) -> Location:
        return self.doc(Location, self.meeting.location)

    def attending_users(self) -> list[User]:
        """Participants whose ticket says they attend, sorted by user id."""
        tickets = self.meeting.tickets or {}
        ordered = sorted(tickets.items())
        loaded = self.docs(Ticket, [path for _, path in ordered], required=False)
        by_path = {t.doc_ref: t for t in loaded}
        user_paths = [
            by_path[path].user
            for _, path in ordered
            if path in by_path and by_path[path].attendance and by_path[path].user
        ]
        return self.docs(User, user_paths, required=False)

    # -- the view's fields ---------------------------------------------------------
    @latitude.getter
    def latitude(self) -> float:
        return self.location.latitude

    @longitude.getter
    def longitude(self) -> float:
        return self.location.longitude

    @address.getter
    def address(self) -> str:
        return self.location.address

    @in_session.getter
    def in_session(self) -> bool:
        return self.meeting.status == "in-session"

    @in_session.setter
    def in_session(self, value: bool) -> None:
        self.meeting.status = "in-session" if value else "closed"

    @attending.getter
    def attending(self) -> list[dict[str, Any]]:
        return [
            {
                "name": f"{u.first_name} {u.last_name}",
                "organization": u.organization,
                "hearingAidRequested": bool(u.hearing_aid_requested),
            }
            for u in self.attending_users()
        ]

    @num_hearing_aid_requested.getter
    def num_hearing_aid_requested(self) -> int:
        return sum(1 for u in self.attending_users() if u.hearing_aid_requested)

    # -- access rule: only participants see (and patch) a meeting session -------------
    def check_access(self, user_id: str | None) -> None:
        if user_id is None or f"users/{user_id}" not in (self.meeting.users or []):
            raise Forbidden(
                f"user {user_id!r} is not a participant of meeting {self.params['doc_id']!r}"
            )
