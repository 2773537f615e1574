"""The fenced code blocks of a Markdown page (for tests that run the docs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def code_blocks(page: str | Path, language: str = "python") -> list[str]:
    """The ``language`` blocks of ``page`` (a path, or relative to the repository root)."""
    path = page if isinstance(page, Path) else ROOT / page
    text = path.read_text(encoding="utf-8")
    return [code for lang, code in _BLOCK.findall(text) if lang == language]
