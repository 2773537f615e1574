"""Socket.IO: each participant follows their own MeetingSession view live.

A client connects to ``/meeting_sessions`` with ``auth={"token": ...}``, emits
``subscribe`` ``{"meeting_id": "meeting_1"}`` and receives ``view`` events:
the current view at once, then every new version the runtime writes.
"""

from __future__ import annotations

from boiler.ws import WsMediator

from .views import MeetingSession

meeting_session_ws = WsMediator(
    view_model_cls=MeetingSession,
    namespace="/meeting_sessions",
    view_path="users/{user_id}/MeetingSession/{doc_id}",
    param="meeting_id",
)
