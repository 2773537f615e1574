"""The Python snippets of docs/rest.md and docs/auth.md run, in order, per page."""

from __future__ import annotations

from typing import Any

import pytest
from _docs import code_blocks


def snippets(page: str) -> list[str]:
    return code_blocks(f"docs/{page}")


@pytest.mark.parametrize("page", ["auth.md", "rest.md"])
def test_page_snippets_run(page: str) -> None:
    blocks = snippets(page)
    assert blocks, f"{page} has no python snippets"
    namespace: dict[str, Any] = {"__name__": f"docs_{page.replace('.', '_')}"}
    for number, code in enumerate(blocks, 1):
        exec(compile(code, f"{page}[{number}]", "exec"), namespace)


def test_seed_style_resource_from_the_docs_serves() -> None:
    import requests

    from boiler.app import create_flask_app
    from boiler.application import App
    from boiler.auth import DevTokenVerifier
    from boiler.database import open_database
    from boiler.rest.testing import serve
    from examples.meeting_room import seed

    namespace: dict[str, Any] = {"__name__": "docs_rest_seed"}
    for code in snippets("rest.md")[-1:]:
        exec("from examples.meeting_room import MeetingSession\n" + code, namespace)
    verifier = DevTokenVerifier("docs-secret")
    with open_database("embedded", path=":memory:") as db:
        seed.seed(db)
        app = App("seed_style", rest=[namespace["MeetingSessionRest"]()])
        with serve(create_flask_app(app, db, verifier=verifier)) as base:
            url = f"{base}/v0/meeting_sessions/meeting_1"
            me = {"Authorization": f"Bearer {verifier.issue('tijuana')}"}
            assert requests.get(url, headers=me, timeout=10).json()["inSession"] is True
            assert requests.get(url, timeout=10).status_code == 401
            other = {"Authorization": f"Bearer {verifier.issue('mallory')}"}
            assert requests.get(url, headers=other, timeout=10).status_code == 403
            spec = requests.get(f"{base}/apispec_1.json", timeout=10).json()
            op = spec["paths"]["/v0/meeting_sessions/{doc_id}"]["get"]
            assert op["parameters"][0]["name"] == "doc_id"
            assert op["summary"] == "The caller's meeting session."
