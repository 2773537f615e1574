"""docs/rules.md: its Python snippets run in order (the last one on the emulator),
the printed lines are the ones the page shows, and the pasted rules are what
``boiler rules`` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _docs import code_blocks
from click.testing import CliRunner

from boiler.cli import main
from boiler.testing import FirestoreEmulator

PAGE = Path(__file__).resolve().parent.parent / "docs" / "rules.md"

pytestmark = pytest.mark.timeout(90)


def blocks(kind: str) -> list[str]:
    return code_blocks(PAGE, kind)


def test_snippets_run_and_print_what_the_page_shows(
    firestore_emulator: FirestoreEmulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    namespace: dict[str, Any] = {"__name__": "docs_rules"}
    for number, code in enumerate(blocks("python"), 1):
        capsys.readouterr()
        exec(compile(code, f"rules.md[{number}]", "exec"), namespace)
        printed = capsys.readouterr().out.splitlines()
        shown = [
            line.split("# ", 1)[1]
            for line in code.splitlines()
            if line.startswith("print(") and "# " in line or line.startswith("# ")
        ]
        assert printed == shown, f"rules.md[{number}]"


def test_pasted_rules_are_the_cli_output() -> None:
    (pasted,) = blocks("text")
    result = CliRunner().invoke(main, ["rules", "examples.meeting_room:app"])
    assert result.exit_code == 0, result.output
    assert pasted == result.stdout
