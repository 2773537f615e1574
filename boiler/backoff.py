"""Exponential backoff: the one delay rule for every retry boiler makes."""

from __future__ import annotations

__all__ = ["backoff"]


def backoff(failures: int, base: float, maximum: float) -> float:
    """Seconds to wait after ``failures`` in a row: ``base`` doubling per
    failure, at most ``maximum`` (the exponent is capped: no float overflow
    however long a failure lasts)."""
    return float(min(maximum, base * 2 ** min(max(0, failures - 1), 64)))
