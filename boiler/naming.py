"""Stored-key naming: attribute names in Python, camelCase keys in documents."""

from __future__ import annotations

import re
from functools import lru_cache

_SNAKE_PART = re.compile(r"_+([a-zA-Z0-9])")


@lru_cache(maxsize=4096)
def camel_case(name: str) -> str:
    """``first_name`` -> ``firstName``; leading underscores and camelCase are kept."""
    stripped = name.lstrip("_")
    prefix = name[: len(name) - len(stripped)]
    if not stripped:
        return name
    return prefix + _SNAKE_PART.sub(lambda m: m.group(1).upper(), stripped)


__all__ = ["camel_case"]
