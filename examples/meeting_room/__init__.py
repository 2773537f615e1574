"""The meeting-room reference app.

Run it: ``boiler run examples.meeting_room:app`` (embedded store in
``boiler.sqlite3``, seeded with the demo when empty), or against Firestore
with ``FIRESTORE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT`` set. Its REST
resource (``rest.py``) is served by ``boiler.app.create_flask_app(app, runtime)``;
its live Socket.IO stream (``ws.py``) by ``boiler run`` on the same port, with
the web page (``web.py``, ``web/``) at ``/``.
"""

from __future__ import annotations

from boiler.application import App

from . import seed as _seed
from .domain import Location, Meeting, Ticket, User
from .mediators import MeetingSessionMediator, MeetingSessionPatch
from .rest import meeting_sessions
from .views import MeetingSession
from .web import meeting_room_web
from .ws import meeting_session_ws

app = App(
    "meeting_room",
    mediators=[MeetingSessionMediator, MeetingSessionPatch],
    seed=_seed.seed,
    is_empty=_seed.is_empty,
    rest=[meeting_sessions, meeting_room_web],
    ws=[meeting_session_ws],
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
    "meeting_room_web",
    "meeting_session_ws",
    "meeting_sessions",
]
