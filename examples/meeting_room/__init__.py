"""The meeting-room reference app.

Run it: ``boiler run examples.meeting_room:app`` (embedded store in
``boiler.sqlite3``, seeded with the demo when empty), or against Firestore
with ``FIRESTORE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT`` set.
"""

from __future__ import annotations

from boiler.application import App

from . import seed as _seed
from .domain import Location, Meeting, Ticket, User
from .mediators import MeetingSessionMediator, MeetingSessionPatch
from .views import MeetingSession

app = App(
    "meeting_room",
    mediators=[MeetingSessionMediator, MeetingSessionPatch],
    seed=_seed.seed,
    is_empty=_seed.is_empty,
)

__all__ = [
    "Location",
    "Meeting",
    "MeetingSession",
    "MeetingSessionMediator",
    "MeetingSessionPatch",
    "Ticket",
    "User",
    "app",
]
