"""Errors recorded by the runtime's threads: never swallowed, surfaced on ``stop()``."""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from ..exceptions import RuntimeFailure

__all__ = ["ErrorLog", "ListenerErrors", "RecordedError"]

log = logging.getLogger("boiler.runtime")


@dataclass(frozen=True)
class RecordedError:
    """One failure: where it happened (``stage``), for which view (``key``) and what."""

    stage: str
    key: Hashable | None
    exception: BaseException
    attempt: int = 1
    at: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.UTC))

    def __str__(self) -> str:
        who = f" [{self.key!r}]" if self.key is not None else ""
        return (
            f"{self.stage}{who} attempt {self.attempt}: "
            f"{type(self.exception).__name__}: {self.exception}"
        )


class ErrorLog:
    """A thread-safe, bounded record of failures (the newest ``limit`` are kept)."""

    def __init__(self, limit: int = 1000) -> None:
        self._lock = threading.Lock()
        self._errors: deque[RecordedError] = deque(maxlen=limit)
        self.count = 0

    def record(
        self,
        stage: str,
        exc: BaseException,
        *,
        key: Hashable | None = None,
        attempt: int = 1,
        logged: bool = False,
    ) -> RecordedError:
        """Keep ``exc``; log it unless it was ``logged`` where it happened."""
        error = RecordedError(stage, key, exc, attempt)
        with self._lock:
            self._errors.append(error)
            self.count += 1
        if not logged:
            log.error("boiler runtime: %s", error, exc_info=exc)
        return error

    def snapshot(self) -> list[RecordedError]:
        with self._lock:
            return list(self._errors)

    @property
    def last(self) -> RecordedError | None:
        with self._lock:
            return self._errors[-1] if self._errors else None

    def failure(self, what: str) -> RuntimeFailure | None:
        """A :class:`RuntimeFailure` listing every recorded error (None if none)."""
        errors = self.snapshot()
        if not errors:
            return None
        lines = "\n".join(f"  - {e}" for e in errors[:20])
        more = f"\n  ... and {self.count - 20} more" if self.count > 20 else ""
        return RuntimeFailure(
            f"{what}: {self.count} error(s) recorded:\n{lines}{more}",
            [e.exception for e in errors],
        )


class ListenerErrors:
    """The errors ``db`` records for its listeners (``db.listener_errors``:
    callbacks that raised, listeners that stopped for good) since this was
    created, each handed out by :meth:`take` once.

    That list is bounded (the oldest fall off); an error is told apart by
    identity, and the ones already seen are kept alive until they fall off,
    so a new error cannot reuse a seen one's id.
    """

    def __init__(self, db: Any) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._seen = {id(e): e for e in self._current()}

    def _current(self) -> list[BaseException]:
        return list(getattr(self._db, "listener_errors", ()))

    def take(self) -> list[BaseException]:
        """The errors recorded since the last call (oldest first)."""
        with self._lock:
            current = self._current()
            new = [e for e in current if id(e) not in self._seen]
            self._seen = {id(e): e for e in current}
            return new
