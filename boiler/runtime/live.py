"""A live view: one ``compute`` kept fresh by the engine, and its handle."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ..store import Dependencies, Store

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Compute", "LiveHandle", "OnError", "OnResult"]

R = TypeVar("R")

#: ``compute(store) -> result``: pure, reads only through the store.
Compute = Callable[[Store], R]
#: ``on_result(result, version)``: called after the first build and every rebuild
#: whose inputs changed; ``version`` is the build's read point.
OnResult = Callable[[R, _dt.datetime], None]
#: ``on_error(exception)``: called when a build (or ``on_result``) fails.
OnError = Callable[[BaseException], None]

IDLE, QUEUED, BUILDING, BACKOFF = "idle", "queued", "building", "backoff"


@dataclass(eq=False)
class _View(Generic[R]):
    """Engine-private state of one live view (guarded by the engine's lock)."""

    key: Hashable
    compute: Compute[R]
    on_result: OnResult[R]
    on_error: OnError | None
    state: str = IDLE
    dirty_again: bool = False
    force: bool = False
    disposed: bool = False
    attempts: int = 0
    timer: int = -1  # sequence number of the pending retry timer
    deps: Dependencies | None = None  # of the last emitted build
    result: Any = None
    version: _dt.datetime | None = None
    builds: int = 0
    emits: int = 0
    built: threading.Event = field(default_factory=threading.Event)
    handle: LiveHandle | None = None


class LiveHandle:
    """The caller's side of a live view: ``dispose()``, ``refresh()``, ``wait_built()``."""

    def __init__(self, engine: Engine, view: _View[Any]) -> None:
        self._engine = engine
        self._view = view

    @property
    def key(self) -> Hashable:
        return self._view.key

    @property
    def disposed(self) -> bool:
        return self._view.disposed

    @property
    def result(self) -> Any:
        """The last emitted result (None before the first build)."""
        return self._view.result

    @property
    def version(self) -> _dt.datetime | None:
        """The read point of the last emitted result."""
        return self._view.version

    @property
    def builds(self) -> int:
        """How many builds completed (emitted or not)."""
        return self._view.builds

    @property
    def emits(self) -> int:
        """How many times ``on_result`` was called."""
        return self._view.emits

    @property
    def dependencies(self) -> Dependencies | None:
        """What the last emitted build read."""
        return self._view.deps

    def dispose(self) -> None:
        """Stop keeping this view live and release what it watched. Idempotent."""
        self._engine._dispose(self._view)

    def refresh(self) -> None:
        """Force a rebuild; its result is emitted even if the inputs are unchanged."""
        self._engine._mark_dirty(self._view.key, force=True)

    def wait_built(self, timeout: float = 10.0) -> bool:
        """Block until the first result was emitted; False on timeout."""
        return self._view.built.wait(timeout)

    def __repr__(self) -> str:
        return f"<LiveHandle {self._view.key!r} {self._view.state} builds={self._view.builds}>"
