"""Write batches and optimistic transactions of the embedded store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import InvalidTransaction, TransactionConflict
from . import paths
from ._codec import from_micros
from ._records import copy_snap, export, visible
from .base import DocumentSnapshot, Precondition, Transaction, WriteBatch, WriteResult
from .evaluate import check_query
from .query import Query

if TYPE_CHECKING:
    from .memory import EmbeddedDatabase


class EmbeddedBatch(WriteBatch):
    def __init__(self, db: EmbeddedDatabase) -> None:
        super().__init__()
        self._db = db

    def commit(self) -> list[WriteResult]:
        if self._committed:
            raise InvalidTransaction("this batch was already committed")
        self._db._check_open()
        results = self._db._commit(self._writes) if self._writes else []
        self._committed = True
        return results


class EmbeddedTransaction(Transaction):
    """Reads one snapshot; validated optimistically when it commits."""

    def __init__(self, db: EmbeddedDatabase, read_only: bool) -> None:
        self.read_only = read_only
        self._db = db
        self._batch = EmbeddedBatch(db)
        self._at_us: int | None = None
        self._doc_reads: dict[str, int | None] = {}
        self._query_reads: list[tuple[Query, list[tuple[str, Any]]]] = []
        self._done = False

    # reads
    def _begin_read(self) -> int:
        if self._done:
            raise InvalidTransaction("the transaction is already finished")
        if len(self._batch):
            raise InvalidTransaction("a transaction must do all its reads before its writes")
        if self._at_us is None:
            self._at_us = self._db._begin_snapshot()
        return self._at_us

    def get(self, path: str) -> DocumentSnapshot:
        return self.get_all([path])[0]

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        doc_paths = [paths.document_path(p) for p in paths_]
        at_us = self._begin_read()
        db = self._db
        db._check_open()
        # No lock: every commit older than the snapshot was installed before it
        # began (both under the store's lock), and while it is registered no
        # version it may need is dropped; each dict lookup is atomic. Waiting
        # for the lock here made busy readers queue behind commits.
        recs = db._read_recs(doc_paths, at_us)
        for p, r in zip(doc_paths, recs, strict=True):
            self._doc_reads[p] = None if r is None else r.update_us
        read_time = from_micros(at_us)
        return [export(p, r, read_time) for p, r in zip(doc_paths, recs, strict=True)]

    def query(self, query: Query) -> list[DocumentSnapshot]:
        check_query(query)
        at_us = self._begin_read()
        db = self._db
        with db._lock:
            db._check_open()
            snaps = db._run(query, at_us)
        self._query_reads.append((query, [(s.path, s.update_time) for s in snaps]))
        read_time = from_micros(at_us)
        return [copy_snap(s, read_time) for s in snaps]

    # writes
    def _begin_write(self) -> None:
        if self._done:
            raise InvalidTransaction("the transaction is already finished")
        if self.read_only:
            raise InvalidTransaction("a read-only transaction cannot write")

    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> None:
        self._begin_write()
        self._batch.set(path, data, merge=merge)

    def create(self, path: str, data: Mapping[str, Any]) -> None:
        self._begin_write()
        self._batch.create(path, data)

    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> None:
        self._begin_write()
        self._batch.update(path, data, precondition=precondition)

    def delete(self, path: str, *, precondition: Precondition | None = None) -> None:
        self._begin_write()
        self._batch.delete(path, precondition=precondition)

    # commit
    def _validate(self) -> None:
        """Raise TransactionConflict if anything read has changed. Lock held."""
        db = self._db
        for path, seen in self._doc_reads.items():
            rec = visible(db._docs.get(path), None)
            if (None if rec is None else rec.update_us) != seen:
                raise TransactionConflict(
                    f"document {path!r} was changed by a concurrent commit after this "
                    "transaction read it"
                )
        for query, seen_docs in self._query_reads:
            now_docs = [(s.path, s.update_time) for s in db._run(query)]
            if now_docs != seen_docs:
                raise TransactionConflict(
                    f"the result of query {query.describe()!r} was changed by a concurrent "
                    "commit after this transaction read it"
                )

    def _commit(self) -> None:
        if self._done:
            raise InvalidTransaction("the transaction is already finished")
        writes = self._batch._writes
        if writes:
            self._db._commit(writes, self._validate)

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._at_us is not None:
            self._db._end_snapshot(self._at_us)
