"""Domain objects shared between builds: each stored state is validated once.

The views one change alters read mostly the same documents (a meeting's three
participants read the same meeting, location, tickets and users). Loading a
domain object validates every field; the engine's :class:`ModelCache` does
that once per document *state* — ``(class, path, update_time)`` — and hands
each build its own copy, so a build can never see another build's edits::

    cache = ModelCache()
    user = cache.load(User, snap)      # validated, remembered
    again = cache.load(User, snap)     # a copy of the remembered object

A document written again has a new ``update_time``: its new state replaces
the old entry. The least recently used entries go once ``max_entries`` is
reached (oldest first).
"""

from __future__ import annotations

import datetime as _dt
import threading
from typing import Any, TypeVar

from .database.base import DocumentSnapshot

__all__ = ["ModelCache"]

M = TypeVar("M")


class ModelCache:
    """A bounded map from document state to a loaded domain object (thread-safe)."""

    def __init__(self, max_entries: int = 50_000) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: dict[tuple[Any, str, Any], Any] = {}  # insertion ordered
        self._state_of: dict[tuple[Any, str], tuple[Any, str, Any]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, cls: type[M], snap: DocumentSnapshot) -> M:
        """``cls.from_snapshot(snap)``, or a copy of the object loaded from the
        same state before. A snapshot without ``update_time`` is not cached."""
        if snap.update_time is None:
            return cls.from_snapshot(snap)  # type: ignore[attr-defined, no-any-return]
        key = (cls, snap.path, snap.update_time)
        proto = self._entries.get(key)  # a hit takes no lock
        if proto is not None:
            self.hits += 1  # approximate under concurrency
        else:
            proto = cls.from_snapshot(snap)  # type: ignore[attr-defined]
            with self._lock:
                self.misses += 1
                older = self._state_of.get(key[:2])
                if older is not None and older != key:
                    self._entries.pop(older, None)
                self._state_of[key[:2]] = key
                self._entries[key] = proto
                while len(self._entries) > self.max_entries:
                    evicted = next(iter(self._entries))
                    del self._entries[evicted]
                    if self._state_of.get(evicted[:2]) == evicted:
                        del self._state_of[evicted[:2]]
        return _copy(proto)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._state_of.clear()


def _copy(obj: Any) -> Any:
    """A copy of a domain object whose state (maps, lists, nested objects) is
    not shared; other values (strings, numbers, tuples...) are immutable."""
    new = object.__new__(type(obj))
    new.__dict__.update({k: _copy_value(v) for k, v in obj.__dict__.items()})
    return new


#: Value types returned as they are (immutable); checked first, it is most values.
_ATOMIC = frozenset({str, int, float, bool, type(None), bytes, _dt.datetime})


def _copy_value(value: Any) -> Any:
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if kind is dict:
        return {k: _copy_value(v) for k, v in value.items()}
    if kind is list:
        return [_copy_value(v) for v in value]
    if hasattr(kind, "_fields") and hasattr(value, "__dict__"):  # a nested domain object
        return _copy(value)
    return value
