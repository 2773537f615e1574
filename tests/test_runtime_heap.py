"""Runtime.freeze_heap: start-up's objects kept out of later garbage collections."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from boiler.database import Database
from boiler.runtime.process import Runtime
from boiler.testing import wait_for
from examples.meeting_room.mediators import MeetingSessionMediator
from examples.meeting_room.seed import seed


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # leave the test process as it was


def test_the_heap_is_frozen_once_start_up_has_settled(db: Database, unfrozen: None) -> None:
    seed(db)
    runtime = Runtime(db, mediators=[MeetingSessionMediator]).start()
    try:
        assert runtime.health()["heap_frozen"] is False and gc.get_freeze_count() == 0
        wait_for(runtime.freeze_heap_when_settled, timeout=30, message="start-up to settle")
        assert runtime.health()["heap_frozen"] is True
        frozen = gc.get_freeze_count()
        assert frozen > 0
        assert runtime.freeze_heap_when_settled()  # once: nothing more is frozen
        assert gc.get_freeze_count() <= frozen  # (frozen objects may still be freed)
        view = "users/tijuana/MeetingSession/meeting_1"
        assert "Thomasina" in str(db.get(view).data)
        db.update("tickets/ticket_thomasina", {"attendance": False})  # still live afterwards
        wait_for(
            lambda: "Thomasina" not in str(db.get(view).data),
            timeout=30,
            message="the view to drop Thomasina",
        )
    finally:
        runtime.stop()
    assert gc.get_freeze_count() == 0 and not runtime.heap_frozen  # collectable again
