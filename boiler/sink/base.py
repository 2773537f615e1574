"""Sink declarations; a mediator binds its sink to the runtime when it starts."""

from __future__ import annotations

import copy
import datetime as _dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..database import paths
from ..exceptions import BoilerError

if TYPE_CHECKING:
    from ..runtime.writer import ViewWriter


class Sink:
    """Base class: ``emit(reference=, snapshot=, version=)`` and ``delete(reference=)``."""

    def bind(self, writer: ViewWriter) -> Sink:
        """A copy of this sink attached to ``writer`` (done by the runtime)."""
        bound = copy.copy(self)
        bound._writer = writer  # type: ignore[attr-defined]
        return bound

    def emit(
        self,
        reference: str,
        snapshot: Mapping[str, Any],
        version: _dt.datetime | None = None,
    ) -> None:
        raise NotImplementedError

    def delete(self, reference: str, version: _dt.datetime | None = None) -> None:
        raise NotImplementedError


class FirestoreSink(Sink):
    """Writes view documents (the database in use: embedded or Firestore).

    Writes are versioned (older versions never overwrite newer ones),
    skipped when the content is unchanged, and batched.
    """

    _writer: ViewWriter | None = None

    def _bound(self) -> ViewWriter:
        if self._writer is None:
            raise BoilerError("this sink is not bound to a runtime: start the mediator first")
        return self._writer

    def emit(
        self,
        reference: str,
        snapshot: Mapping[str, Any],
        version: _dt.datetime | None = None,
    ) -> None:
        """Write ``snapshot`` as the view document at ``reference``."""
        self._bound().write(paths.document_path(reference), dict(snapshot), _version(version))

    def delete(self, reference: str, version: _dt.datetime | None = None) -> None:
        """Remove the view document at ``reference``."""
        self._bound().write(paths.document_path(reference), None, _version(version))


class CallbackSink(Sink):
    """Calls ``fn(reference, snapshot)`` (``snapshot`` None for deletes)."""

    def __init__(self, fn: Callable[[str, Mapping[str, Any] | None], None]) -> None:
        self.fn = fn

    def bind(self, writer: ViewWriter) -> Sink:
        return self

    def emit(
        self, reference: str, snapshot: Mapping[str, Any], version: _dt.datetime | None = None
    ) -> None:
        self.fn(reference, snapshot)

    def delete(self, reference: str, version: _dt.datetime | None = None) -> None:
        self.fn(reference, None)


def _version(version: _dt.datetime | None) -> _dt.datetime:
    return version if version is not None else _dt.datetime.now(_dt.UTC)


def firestore() -> FirestoreSink:
    """View documents in the database in use."""
    return FirestoreSink()


def callback(fn: Callable[[str, Mapping[str, Any] | None], None]) -> CallbackSink:
    """Views handed to ``fn(reference, snapshot)``."""
    return CallbackSink(fn)
