"""Source declarations (no I/O here: the runtime subscribes them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from ..database import DocumentSnapshot, Query, paths
from ..domain_model import PrimaryObject

Event = Literal["create", "update", "delete"]
_EVENTS: tuple[Event, ...] = ("create", "update", "delete")


class Triggers:
    """Decorators naming the mediator methods that run on each kind of change.

    They return the function unchanged, so they stack.
    """

    def __init__(self) -> None:
        self.names: dict[Event, list[str]] = {e: [] for e in _EVENTS}

    def _add(self, event: Event, fn: Callable[..., Any]) -> Callable[..., Any]:
        name = getattr(fn, "__name__", None)
        if not name:
            raise TypeError(f"on_{event} decorates a method, got {fn!r}")
        if name not in self.names[event]:
            self.names[event].append(name)
        return fn

    def on_create(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._add("create", fn)

    def on_update(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._add("update", fn)

    def on_delete(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        return self._add("delete", fn)


class Source:
    """A query whose changes reach a mediator.

    ``model`` (optional) turns snapshots into domain objects before the
    trigger methods see them; without it triggers get ``DocumentSnapshot``.
    """

    kind = "query"

    def __init__(self, query: Query, *, model: type[PrimaryObject] | None = None) -> None:
        if not isinstance(query, Query):
            raise TypeError(f"a source needs a boiler Query, got {type(query).__name__}")
        self.query = query
        self.model = model
        self.triggers = Triggers()

    def convert(self, snapshot: DocumentSnapshot) -> Any:
        """What a trigger receives for ``snapshot``."""
        if self.model is None:
            return snapshot
        if not snapshot.exists:
            return self.model.from_dict({}, doc_ref=snapshot.path)
        return self.model.from_snapshot(snapshot)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.query.describe()}>"


class PatchSource(Source):
    """Command documents in every collection named ``collection_id``."""

    kind = "patch"

    def __init__(self, collection_id: str) -> None:
        super().__init__(Query(collection_id, all_descendants=True))
        self.collection_id = collection_id


def domain_model(model: type[PrimaryObject]) -> Source:
    """Every document of ``model``'s collection; triggers receive ``model`` objects."""
    if not (isinstance(model, type) and issubclass(model, PrimaryObject)):
        raise TypeError(f"source.domain_model() needs a domain model class, got {model!r}")
    return Source(model.query().to_query(), model=model)


def firestore(query: Query | Any, *, model: type[PrimaryObject] | None = None) -> Source:
    """The documents matching ``query`` (a Query, a model query, or a collection path)."""
    if isinstance(query, str):
        query = Query(paths.collection_path(query))
    elif hasattr(query, "to_query"):
        model = model or getattr(query, "model", None)
        query = query.to_query()
    return Source(query, model=model)


def patch_documents(collection_id: str) -> PatchSource:
    """Patch (command) documents: ``users/{uid}/{collection_id}/{doc_id}``."""
    if not isinstance(collection_id, str) or not collection_id or "/" in collection_id:
        raise ValueError(f"patch_documents() needs a collection id, got {collection_id!r}")
    return PatchSource(collection_id)
