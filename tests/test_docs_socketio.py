"""docs/socketio.md: the Python client snippet runs against a served app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _docs import code_blocks

from boiler.auth import DevTokenVerifier
from boiler.database import Database, open_database
from boiler.serve import Server
from boiler.testing import wait_for
from examples.meeting_room import app
from examples.meeting_room.seed import seed

DOC = Path(__file__).resolve().parents[1] / "docs" / "socketio.md"


def client_snippet() -> str:
    blocks = code_blocks(DOC)
    [snippet] = [b for b in blocks if "socketio.Client()" in b]
    return snippet


@pytest.fixture
def embedded() -> Iterator[Database]:
    db = open_database("embedded", path=":memory:")
    try:
        yield db
    finally:
        db.close()


def test_the_documented_client_follows_a_view(
    embedded: Database, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(embedded)
    verifier = DevTokenVerifier("docs-secret")
    with app.runtime(embedded) as runtime:
        assert runtime.wait_idle(20)
        server = Server(
            app,
            embedded,
            verifier=verifier,
            runtime=runtime,
            port=0,
            socketio_options={"ping_interval": 1},  # its ping thread ends soon after
        ).start()
        namespace: dict[str, Any] = {}
        try:
            monkeypatch.setenv("BOILER_URL", server.url)
            monkeypatch.setenv("BOILER_TOKEN", verifier.issue("tijuana"))
            exec(compile(client_snippet(), str(DOC), "exec"), namespace)
            path = "users/tijuana/MeetingSession/meeting_1"
            latest = namespace["latest"]
            wait_for(lambda: path in latest, message="the initial view")
            assert len(latest[path]["data"]["attending"]) == 2

            embedded.update("tickets/ticket_joshua", {"attendance": True})
            wait_for(lambda: len(latest[path]["data"]["attending"]) == 3, message="Joshua joins")
            assert "Joshua Pendergrast" in capsys.readouterr().out
        finally:
            if "client" in namespace:
                namespace["client"].disconnect()
            server.stop()


def test_the_documented_access_snippet_runs() -> None:
    [snippet] = [b for b in code_blocks(DOC) if "class AdminSession" in b]
    exec(compile(snippet, f"{DOC}[access]", "exec"), {"__name__": "docs_socketio_access"})
