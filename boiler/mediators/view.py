"""ViewMediator: live views per source document, written to a sink."""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..database import DocumentSnapshot, Query
from ..runtime.live import LiveHandle
from ..source.base import Event
from ..store import Store
from ..view_model import ViewModel
from .base import Mediator


@dataclass
class _LiveView:
    """One view kept live: its engine handle and what it last emitted.

    ``lock`` orders the view's emits against its removal: once ``alive`` is
    False nothing more is emitted, and the removal's delete carries a version
    no older than the last emit (else the writer would drop the delete as
    stale and leave the view behind).
    """

    handle: LiveHandle | None = None
    alive: bool = True
    version: _dt.datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ViewMediator(Mediator):
    """Keeps the views of each source document live.

    Subclasses set ``view_model`` and implement :meth:`views`, which maps a
    source object to ``(view document path, view params)`` pairs. The set is
    re-evaluated whenever the source document changes (participants join or
    leave); views whose root is deleted are deleted. ``view_collection``
    (a collection id) lets the runtime delete orphaned views on start.
    ``view_path_template`` (e.g. ``"users/{user_id}/MeetingSession/{doc_id}"``,
    wildcards named after view params) tells ``boiler rules`` where the views
    live and who owns them.
    """

    view_model: ClassVar[type[ViewModel]]
    view_collection: ClassVar[str | None] = None
    view_path_template: ClassVar[str | None] = None

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        if self.sink is None:
            raise TypeError(f"{type(self).__name__} needs a sink (e.g. sink.firestore())")
        self._by_root: dict[str, dict[str, _LiveView]] = {}

    def views(self, obj: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
        """``(path, params)`` of every view that exists for source object ``obj``."""
        raise NotImplementedError(f"{type(self).__name__}.views()")

    # -- runtime side ----------------------------------------------------------------------
    def dispatch(self, kind: Event, snapshot: DocumentSnapshot, *, read_time: Any = None) -> None:
        if kind == "delete":
            self._sync(snapshot.path, {}, read_time)
        else:
            obj = type(self).source.convert(snapshot)
            targets = {path: dict(params) for path, params in self.views(obj)}
            self._sync(snapshot.path, targets, read_time)
        super().dispatch(kind, snapshot, read_time=read_time)

    def _sync(self, root: str, targets: dict[str, dict[str, Any]], read_time: Any) -> None:
        current = self._by_root.setdefault(root, {})
        for path in [p for p in current if p not in targets]:
            live = current.pop(path)
            with live.lock:
                live.alive = False
                version = read_time if isinstance(read_time, _dt.datetime) else None
                if live.version is not None and (version is None or version < live.version):
                    version = live.version
            assert live.handle is not None
            live.handle.dispose()
            self._delete(path, version)
        for path, params in targets.items():
            if path not in current:
                current[path] = self._live(path, params)
        if not current:
            del self._by_root[root]

    def _live(self, path: str, params: dict[str, Any]) -> _LiveView:
        view_cls = type(self).view_model
        sink = self.sink
        assert sink is not None
        live = _LiveView()

        def compute(store: Store) -> dict[str, Any] | None:
            # Only the view's data is kept between builds (not the view model,
            # its store and domain objects: at 10,000 views that is most memory).
            view = view_cls.build(store, **params)
            return None if view is None else view.data

        def on_result(data: dict[str, Any] | None, version: _dt.datetime) -> None:
            with live.lock:
                if not live.alive:
                    return
                if live.version is None or version > live.version:
                    live.version = version
                if data is None:
                    sink.delete(path, version)
                else:
                    sink.emit(path, data, version)

        live.handle = self.engine.live(
            compute, on_result, key=("view", type(self).__qualname__, path)
        )
        return live

    def _delete(self, path: str, version: _dt.datetime | None) -> None:
        assert self.sink is not None
        self.sink.delete(path, version)

    def handles(self) -> list[LiveHandle]:
        """Handles of every live view of this mediator."""
        return [
            live.handle
            for views in list(self._by_root.values())
            for live in list(views.values())
            if live.handle is not None
        ]

    def live_paths(self) -> set[str]:
        """Paths of every view kept live by this mediator."""
        return {p for views in self._by_root.values() for p in views}

    def started(self) -> None:
        """Delete orphaned views (their root was deleted while nothing ran)."""
        collection_id = type(self).view_collection
        if not collection_id:
            return
        live = self.live_paths()
        for snap in self.db.query(Query(collection_id, all_descendants=True)):
            if snap.path not in live:
                self._delete(snap.path, None)

    def stopped(self) -> None:
        for views in self._by_root.values():
            for live in views.values():
                with live.lock:
                    live.alive = False
                if live.handle is not None:
                    live.handle.dispose()
        self._by_root.clear()
