"""The backend contract every database implements.

Both the embedded store (:mod:`boiler.database.memory`) and Firestore
(:mod:`boiler.database.firestore`) implement :class:`Database`, and one
contract test suite (``tests/contract``) runs against each. Where Firestore's
behaviour is the reference, the embedded store matches it.

Values stored in documents: ``None``, ``bool``, ``int``, ``float``, ``str``,
``bytes``, timezone-aware ``datetime`` (UTC), ``list`` and ``dict`` (string
keys), nested freely. The sentinels :data:`SERVER_TIMESTAMP` and
:data:`DELETE_FIELD` may appear in written data.
"""

from __future__ import annotations

import copy
import datetime as _dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from . import paths
from .query import Query

T = TypeVar("T")


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name


#: Replaced by the commit time of the write that carries it.
SERVER_TIMESTAMP: Any = _Sentinel("SERVER_TIMESTAMP")
#: In ``update()`` or ``set(merge=True)``: removes the field.
DELETE_FIELD: Any = _Sentinel("DELETE_FIELD")


@dataclass(frozen=True)
class DocumentSnapshot:
    """One document as read at one point in time. ``data`` is None if missing."""

    path: str
    data: Mapping[str, Any] | None
    create_time: _dt.datetime | None = None
    update_time: _dt.datetime | None = None
    read_time: _dt.datetime | None = None

    @property
    def id(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def parent(self) -> str:
        """The collection path holding this document."""
        return self.path.rsplit("/", 1)[0]

    @property
    def exists(self) -> bool:
        return self.data is not None

    def to_dict(self) -> dict[str, Any] | None:
        """A deep copy of the data (None if the document does not exist)."""
        return None if self.data is None else clone(self.data)

    def get(self, field_path: str, default: Any = None) -> Any:
        """The value at a dotted ``field_path`` (``default`` if absent)."""
        node: Any = self.data
        for part in field_path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


def clone(value: Any) -> Any:
    """A deep copy of document data (maps, lists, immutable scalars).

    Much cheaper than ``copy.deepcopy`` for this shape; anything else is
    copied with ``copy.deepcopy``.
    """
    kind = type(value)
    if kind in _SCALARS:  # exact type checks first: cheap, and the common case
        return value
    if kind is dict:
        return {k: v if type(v) in _SCALARS else clone(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _SCALARS else clone(v) for v in value]
    if isinstance(value, Mapping):
        return {k: clone(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clone(v) for v in value]
    if isinstance(value, str | int | float | bool | bytes | _dt.datetime):
        return value
    return copy.deepcopy(value)


_SCALARS = frozenset({str, int, float, bool, type(None), bytes, _dt.datetime})


ChangeType = Literal["added", "modified", "removed"]


@dataclass(frozen=True)
class DocumentChange:
    """One change in a listener event. Indexes are -1 where not applicable."""

    type: ChangeType
    document: DocumentSnapshot
    old_index: int
    new_index: int


@dataclass(frozen=True)
class ListenEvent:
    """What a listener receives: the full current result set and what changed.

    For a document listener ``docs`` is ``[snapshot]`` while the document
    exists and ``[]`` while it does not. The first event (the initial
    snapshot) reports every document as ``added``.
    """

    docs: list[DocumentSnapshot]
    changes: list[DocumentChange]
    read_time: _dt.datetime


ListenCallback = Callable[[ListenEvent], None]


class Watch(Protocol):
    """A live listener; ``unsubscribe()`` stops it and releases its resources."""

    def unsubscribe(self) -> None: ...


@dataclass(frozen=True)
class Precondition:
    """A write condition: the document must (not) exist / have this update time."""

    exists: bool | None = None
    update_time: _dt.datetime | None = None


@dataclass(frozen=True)
class WriteResult:
    update_time: _dt.datetime


@dataclass
class _Write:
    """A buffered write (for batches and transactions)."""

    kind: Literal["set", "create", "update", "delete"]
    path: str
    data: dict[str, Any] | None = None
    merge: bool = False
    precondition: Precondition | None = None


class WriteBatch(ABC):
    """Writes applied atomically by :meth:`commit` (no reads)."""

    def __init__(self) -> None:
        self._writes: list[_Write] = []
        self._committed = False

    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> WriteBatch:
        self._writes.append(_Write("set", paths.document_path(path), _as_data(data, path), merge))
        return self

    def create(self, path: str, data: Mapping[str, Any]) -> WriteBatch:
        self._writes.append(_Write("create", paths.document_path(path), _as_data(data, path)))
        return self

    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> WriteBatch:
        self._writes.append(
            _Write("update", paths.document_path(path), _as_data(data, path), False, precondition)
        )
        return self

    def delete(self, path: str, *, precondition: Precondition | None = None) -> WriteBatch:
        self._writes.append(_Write("delete", paths.document_path(path), None, False, precondition))
        return self

    def __len__(self) -> int:
        return len(self._writes)

    @abstractmethod
    def commit(self) -> list[WriteResult]:
        """Apply every buffered write atomically; one result per write."""


class Transaction(ABC):
    """Reads see one consistent state; writes apply atomically at commit.

    As in Firestore, all reads must come before the first write
    (:class:`~boiler.exceptions.InvalidTransaction` otherwise). A transaction
    whose reads were changed by a concurrent commit fails with
    :class:`~boiler.exceptions.TransactionConflict` and writes nothing.
    """

    read_only: bool = False

    @abstractmethod
    def get(self, path: str) -> DocumentSnapshot: ...

    @abstractmethod
    def get_all(self, paths: Sequence[str]) -> list[DocumentSnapshot]: ...

    @abstractmethod
    def query(self, query: Query) -> list[DocumentSnapshot]: ...

    @abstractmethod
    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> None: ...

    @abstractmethod
    def create(self, path: str, data: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> None: ...

    @abstractmethod
    def delete(self, path: str, *, precondition: Precondition | None = None) -> None: ...


class Database(ABC):
    """A document database: the port every backend implements.

    Paths are ``collection/doc[/collection/doc...]`` strings. Reads of missing
    documents return a snapshot with ``exists == False``; ``update`` of a
    missing document raises :class:`~boiler.exceptions.NotFound`.
    """

    #: ``"embedded"`` or ``"firestore"``.
    backend_name: str = "abstract"

    @property
    def undelivered_events(self) -> int:
        """Listener events this process holds that callbacks have not finished
        (0 where the backend cannot tell: Firestore's are still on the wire;
        0 asked from a listener callback, which could not wait for them)."""
        return 0

    # -- single-document operations -----------------------------------------
    @abstractmethod
    def get(self, path: str) -> DocumentSnapshot:
        """Read one document (a snapshot with ``exists == False`` if missing)."""

    @abstractmethod
    def get_all(self, paths: Sequence[str]) -> list[DocumentSnapshot]:
        """Read several documents at one consistent point, in the order given."""

    @abstractmethod
    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> WriteResult:
        """Create or overwrite (``merge=True``: deep-merge) a document."""

    @abstractmethod
    def create(self, path: str, data: Mapping[str, Any]) -> WriteResult:
        """Create a document; :class:`~boiler.exceptions.AlreadyExists` if it exists."""

    @abstractmethod
    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> WriteResult:
        """Update fields of an existing document; keys are dotted field paths."""

    @abstractmethod
    def delete(self, path: str, *, precondition: Precondition | None = None) -> WriteResult:
        """Delete a document (no error if missing, unless a precondition says so).

        Like Firestore, this does not delete the document's subcollections.
        """

    # -- queries ------------------------------------------------------------
    @abstractmethod
    def query(self, query: Query) -> list[DocumentSnapshot]:
        """Run ``query`` and return the matching documents in query order."""

    def collection(self, path: str) -> Query:
        """A query over the collection at ``path``."""
        return Query(path)

    def collection_group(self, collection_id: str) -> Query:
        """A query over every collection named ``collection_id``."""
        return Query(collection_id, all_descendants=True)

    @abstractmethod
    def list_collections(self, document_path: str | None = None) -> list[str]:
        """Collection ids directly under ``document_path`` (root if None), sorted."""

    # -- atomicity ------------------------------------------------------------
    @abstractmethod
    def batch(self) -> WriteBatch:
        """A new atomic write batch."""

    @abstractmethod
    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Transaction]:
        """``with db.transaction() as tx:`` commits on normal exit, rolls back on error.

        Raises :class:`~boiler.exceptions.TransactionConflict` at exit if a
        concurrent commit invalidated the reads (nothing is written then).
        """
        yield  # type: ignore[misc]

    def run_transaction(
        self, fn: Callable[[Transaction], T], *, max_attempts: int = 5, read_only: bool = False
    ) -> T:
        """Run ``fn(tx)`` in a transaction, retrying on conflict up to ``max_attempts``."""
        from ..exceptions import TransactionConflict

        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
        last: TransactionConflict | None = None
        for _attempt in range(max_attempts):
            try:
                with self.transaction(read_only=read_only) as tx:
                    result = fn(tx)
                return result
            except TransactionConflict as e:
                last = e
        raise TransactionConflict(
            f"transaction still conflicting after {max_attempts} attempts: {last}"
        ) from last

    # -- listeners ------------------------------------------------------------
    @abstractmethod
    def listen_document(self, path: str, callback: ListenCallback) -> Watch:
        """Call ``callback`` with the initial state, then after each change."""

    @abstractmethod
    def listen_query(self, query: Query, callback: ListenCallback) -> Watch:
        """Call ``callback`` with the initial result set, then after each change."""

    # -- lifecycle ------------------------------------------------------------
    @abstractmethod
    def close(self) -> None:
        """Release connections, listeners and threads. Idempotent."""

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_data(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    from ..exceptions import ValidationError

    if not isinstance(data, Mapping):
        raise ValidationError(
            f"document data for {path!r} must be a mapping, got {type(data).__name__}"
        )
    for key in data:
        if not isinstance(key, str) or not key:
            raise ValidationError(
                f"document {path!r}: field names must be non-empty strings, got {key!r}"
            )
    return dict(data)


__all__ = [
    "DELETE_FIELD",
    "SERVER_TIMESTAMP",
    "ChangeType",
    "Database",
    "DocumentChange",
    "DocumentSnapshot",
    "ListenCallback",
    "ListenEvent",
    "Precondition",
    "Transaction",
    "Watch",
    "WriteBatch",
    "WriteResult",
]
