"""docs/runtime.md: the live-view snippet runs as written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _docs import code_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "runtime.md"


def snippet() -> str:
    blocks = code_blocks(DOC)
    [code] = [b for b in blocks if "engine.live(" in b]
    return code


def test_the_documented_live_view_follows_its_documents(
    capsys: pytest.CaptureFixture[str],
) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(snippet(), str(DOC), "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "[['ann'], [], ['bob']]"
    assert out[1] == "2"  # meetings and tickets: one listener per collection
