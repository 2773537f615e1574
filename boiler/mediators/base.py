"""The Mediator base class (seed API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..database import DocumentSnapshot, ListenEvent
from ..sink.base import Sink
from ..source.base import Event, Source

if TYPE_CHECKING:
    from ..runtime.process import Runtime

_KIND: dict[str, Event] = {"added": "create", "modified": "update", "removed": "delete"}


class Mediator:
    """Connects ``source`` to ``sink``; trigger methods run on the runtime's threads.

    Declare ``source`` (and usually ``sink``) as class attributes; decorate
    methods with ``@source.triggers.on_create`` / ``on_update`` / ``on_delete``.
    Each receives the changed object (a domain object for model sources).
    """

    source: ClassVar[Source]
    sink: Sink | None = None

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine = runtime.engine
        self.db = runtime.db
        declared = type(self).__dict__.get("sink", getattr(type(self), "sink", None))
        self.sink = declared.bind(runtime.engine.writer) if isinstance(declared, Sink) else None
        if not isinstance(getattr(type(self), "source", None), Source):
            raise TypeError(f"{type(self).__name__} must declare a `source` (boiler.source...)")

    @classmethod
    def start(cls, runtime: Runtime | None = None) -> Mediator:
        """Seed API: start this mediator on ``runtime`` (the context runtime by default)."""
        if runtime is None:
            from ..runtime.process import current_runtime

            runtime = current_runtime()
        return runtime.add(cls)

    def stop(self) -> None:
        """Stop receiving changes (the runtime releases the listener)."""
        self.runtime.remove(self)

    # -- called by the runtime, on its trigger thread for this mediator -------------------
    def handle_event(self, event: ListenEvent, *, initial: bool) -> None:
        """Dispatch one listener event to the trigger methods, change by change."""
        for change in event.changes:
            try:
                self.dispatch(_KIND[change.type], change.document, read_time=event.read_time)
            except Exception as e:  # isolate: one bad document never stops the others
                self.runtime.record_error(
                    f"trigger {type(self).__name__}.on_{_KIND[change.type]}",
                    e,
                    key=change.document.path,
                )
        if initial:
            try:
                self.started()
            except Exception as e:
                self.runtime.record_error(f"{type(self).__name__}.started", e)

    def dispatch(self, kind: Event, snapshot: DocumentSnapshot, *, read_time: Any = None) -> None:
        """Run the trigger methods for one change (errors go to the runtime's log)."""
        names = type(self).source.triggers.names[kind]
        if not names:
            return
        obj = type(self).source.convert(snapshot)
        for name in names:
            getattr(self, name)(obj)

    def started(self) -> None:
        """Hook: the source's initial snapshot has been handled (reconcile here)."""

    def stopped(self) -> None:
        """Hook: the mediator was removed from the runtime."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} source={type(self).source!r}>"
