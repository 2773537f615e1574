"""README.md is executed: its Python snippets run as written and the views they
describe are the views boiler produces (embedded store)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _docs import code_blocks

from boiler.database import Database, open_database
from boiler.runtime.process import Runtime
from boiler.testing import wait_for

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    return code_blocks(README, language)


@pytest.fixture
def embedded() -> Iterator[Database]:
    db = open_database("embedded", path=":memory:")
    try:
        yield db
    finally:
        db.close()


def run_snippets() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "readme_snippets"}
    snippets = blocks("python")
    assert snippets, "README.md has no python code block"
    for code in snippets:
        exec(compile(code, str(README), "exec"), namespace)
    return namespace


def test_writing_an_app_snippet_produces_its_view(embedded: Database) -> None:
    ns = run_snippets()
    city_cls, mediator_cls = ns["City"], ns["CityViews"]
    runtime = Runtime(embedded, mediators=[mediator_cls]).start()
    try:
        city_cls.new(doc_id="sd", city_name="San Diego", country="USA").save(db=embedded)
        city_cls.new(doc_id="tj", city_name="Tijuana", country="Mexico").save(db=embedded)

        def view(doc_id: str) -> dict[str, Any] | None:
            data = embedded.get(f"cityViews/{doc_id}").to_dict()
            if data is not None:
                data.pop("_boiler")
            return data

        wait_for(lambda: view("sd") == {"name": "San Diego"}, timeout=10, message="cityViews/sd")
        wait_for(lambda: view("tj") == {"name": "Tijuana"}, timeout=10, message="cityViews/tj")
        # Live: the view follows its city; deleting the city removes it.
        embedded.update("cities/sd", {"cityName": "San Diego, CA"})
        wait_for(lambda: view("sd") == {"name": "San Diego, CA"}, timeout=10)
        embedded.delete("cities/tj")
        wait_for(lambda: view("tj") is None, timeout=10, message="cityViews/tj deleted")
        assert runtime.wait_idle(10)
    finally:
        runtime.stop()


def test_the_example_view_shown_in_the_readme_is_real(embedded: Database) -> None:
    from boiler.context import Context
    from examples.meeting_room import app
    from examples.meeting_room.seed import seed

    (shown,) = [json.loads(b) for b in blocks("json")]
    with Context.use(embedded):
        seed(embedded)
    runtime = app.runtime(embedded).start()
    try:
        assert runtime.wait_idle(20)
        for uid in ("joshua", "thomasina", "tijuana"):
            actual = embedded.get(f"users/{uid}/MeetingSession/meeting_1").to_dict()
            assert actual is not None
            # the stored document also carries the version it was built from
            assert set(actual.pop("_boiler")) == {"version"}
            assert "_boiler" not in shown
            assert actual == shown
    finally:
        runtime.stop()
