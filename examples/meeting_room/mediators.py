"""Wiring: meetings -> per-participant views; patch documents -> domain writes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boiler import sink, source
from boiler.database import paths
from boiler.mediators import PatchMediator, ViewMediator

from .domain import Meeting
from .views import MeetingSession


class MeetingSessionMediator(ViewMediator):
    """One ``users/{uid}/MeetingSession/{meetingId}`` view per participant."""

    source = source.domain_model(Meeting)
    sink = sink.firestore()
    view_model = MeetingSession
    view_collection = "MeetingSession"
    view_path_template = "users/{user_id}/MeetingSession/{doc_id}"  # for `boiler rules`

    def views(self, meeting: Meeting) -> Iterator[tuple[str, dict[str, Any]]]:
        for user_path in meeting.users or []:
            uid = paths.doc_id(user_path)
            yield (
                f"users/{uid}/MeetingSession/{meeting.doc_id}",
                {"doc_id": meeting.doc_id, "user_id": uid},
            )


class MeetingSessionPatch(PatchMediator):
    """``users/{uid}/MeetingSession_PATCH/{meetingId}`` = ``{"inSession": bool}``."""

    source = source.patch_documents("MeetingSession_PATCH")
    view_model = MeetingSession
