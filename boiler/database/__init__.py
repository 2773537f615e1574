"""Database backends behind one contract (:class:`Database`).

Backends are imported only when used: :func:`open_database` picks one by name.
"""

from __future__ import annotations

from typing import Any

from .base import DELETE_FIELD as DELETE_FIELD
from .base import SERVER_TIMESTAMP as SERVER_TIMESTAMP
from .base import Database as Database
from .base import DocumentChange as DocumentChange
from .base import DocumentSnapshot as DocumentSnapshot
from .base import ListenEvent as ListenEvent
from .base import Precondition as Precondition
from .base import Transaction as Transaction
from .base import Watch as Watch
from .base import WriteBatch as WriteBatch
from .base import WriteResult as WriteResult
from .query import ASCENDING as ASCENDING
from .query import DESCENDING as DESCENDING
from .query import DOCUMENT_ID as DOCUMENT_ID
from .query import FieldFilter as FieldFilter
from .query import Query as Query

BACKENDS = ("embedded", "firestore")


def open_database(backend: str = "embedded", **options: Any) -> Database:
    """Open a backend by name: ``"embedded"`` (options: ``path``,
    ``read_only``, ``durability``: see
    :class:`~boiler.database.memory.EmbeddedDatabase`) or ``"firestore"``
    (options: ``project``, ``emulator_host``, ``credentials``, ``client``,
    ``firebase_app``)."""
    if backend == "embedded":
        from .memory import EmbeddedDatabase

        return EmbeddedDatabase(**options)
    if backend == "firestore":
        from .firestore import FirestoreDatabase

        return FirestoreDatabase(**options)
    from ..exceptions import ConfigurationError

    raise ConfigurationError(f"unknown database backend {backend!r}; choose one of {BACKENDS}")


__all__ = [
    "ASCENDING",
    "BACKENDS",
    "DELETE_FIELD",
    "DESCENDING",
    "DOCUMENT_ID",
    "SERVER_TIMESTAMP",
    "Database",
    "DocumentChange",
    "DocumentSnapshot",
    "FieldFilter",
    "ListenEvent",
    "Precondition",
    "Query",
    "Transaction",
    "Watch",
    "WriteBatch",
    "WriteResult",
    "open_database",
]
