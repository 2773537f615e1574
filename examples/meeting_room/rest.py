"""REST for the meeting room: each participant reads and patches their session.

``GET /meeting_sessions/<meeting_id>`` answers the caller's ``MeetingSession``
view (the same JSON as ``users/{uid}/MeetingSession/{meetingId}``);
``PATCH /meeting_sessions/<meeting_id>`` with ``{"inSession": false}`` closes
the meeting. Only participants get through (``MeetingSession.check_access``).
"""

from __future__ import annotations

from boiler.rest import RestMediator

from .views import MeetingSession

meeting_sessions = RestMediator(
    MeetingSession,
    url_prefix="/meeting_sessions",
    id_param="meeting_id",
    view_path="users/{user_id}/MeetingSession/{doc_id}",
)
