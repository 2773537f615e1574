"""The Firestore backend: :class:`FirestoreDatabase` on google-cloud-firestore.

Client set-up, in order of precedence:

- ``client=``: an existing ``google.cloud.firestore.Client`` (not closed by us);
- ``emulator_host="127.0.0.1:8080"``: anonymous credentials, insecure channel
  to that host. The library only reads ``FIRESTORE_EMULATOR_HOST`` when a client
  is constructed, so the host is set on this client alone (no process-wide
  environment change); an already exported ``FIRESTORE_EMULATOR_HOST`` works too;
- ``certificate_path=`` (a service-account JSON) or ``firebase_app=``: credentials
  through firebase-admin; ``self.firebase_app`` is that app (else None);
- ``credentials=``: google-auth credentials; otherwise application defaults.

``request_timeout`` bounds each request including the library's retries
(default: 30 s against the emulator, the library's own policy otherwise, which
retries an unreachable server for minutes); past it a
:class:`~boiler.exceptions.BoilerError` names the document or query.

Reads return :class:`~boiler.database.base.DocumentSnapshot` with paths relative
to the database; ``DocumentReference`` values in documents are returned as
their path strings. Library errors are mapped onto :mod:`boiler.exceptions`.

Listeners: callback exceptions are logged (logger ``boiler.database.firestore``)
and kept in :attr:`FirestoreDatabase.listener_errors`; the watch keeps going. A
watch whose stream ends for good (a query the server rejects, a target it
removes, a cancelled stream) is recorded there too and its ``active`` turns
False: nothing here subscribes it again (the runtime does for the listeners it
owns). Watches survive an emulator/server restart: the library reconnects and
resyncs (documents gone meanwhile are reported removed).
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from .. import exceptions as exc
from . import _firestore_query as fq
from . import paths
from ._firestore_convert import (
    blame_commit,
    from_document_pb,
    to_lib_data,
    to_snapshot,
    translated,
    write_option,
)
from ._firestore_docwatch import DocumentsCallback, DocumentWatch
from ._firestore_encode import plain_write
from ._firestore_listen import FirestoreWatch, LibSnapshot, _LibWatch, logger
from .base import (
    Database,
    DocumentSnapshot,
    ListenCallback,
    Precondition,
    Transaction,
    Watch,
    WriteBatch,
    WriteResult,
    _as_data,
)
from .query import Query

#: Default ``request_timeout`` (seconds) against the emulator: a stopped emulator
#: fails fast instead of being retried for minutes.
EMULATOR_REQUEST_TIMEOUT = 30.0
#: How many listener errors :attr:`FirestoreDatabase.listener_errors` keeps.
MAX_LISTENER_ERRORS = 100


class FirestoreDatabase(Database):
    """A :class:`~boiler.database.base.Database` on Cloud Firestore (or its emulator)."""

    backend_name = "firestore"

    def __init__(
        self,
        *,
        project: str | None,
        emulator_host: str | None = None,
        credentials: Any = None,
        certificate_path: str | None = None,
        client: firestore.Client | None = None,
        firebase_app: Any = None,
        request_timeout: float | None = None,
    ) -> None:
        if project is None and certificate_path is not None:
            project = _certificate_project(certificate_path)
        if not project or not isinstance(project, str):
            raise exc.ConfigurationError(f"Firestore needs a project id, got {project!r}")
        self.project = project
        self.emulator_host = emulator_host
        #: The firebase_admin App in use (None when not configured through firebase-admin).
        self.firebase_app: Any = firebase_app
        #: Exceptions raised by listener callbacks (newest last, at most MAX_LISTENER_ERRORS).
        self.listener_errors: list[BaseException] = []
        self._owns_app = False
        self._owns_client = client is None
        self._watches: set[FirestoreWatch | DocumentWatch] = set()
        self._lock = threading.Lock()
        self._closed = False
        if request_timeout is None and emulator_host:
            request_timeout = EMULATOR_REQUEST_TIMEOUT
        self.request_timeout = request_timeout
        self._emulated = bool(emulator_host)
        self._rpc: dict[str, Any] = {}
        if request_timeout is not None:
            # The emulator sometimes answers a request with CANCELLED "call already
            # cancelled" (seen once in ~900 tests, on a batch commit): the request
            # was not handled, so it is retried like an unavailable server. A
            # retried write that had applied after all surfaces as
            # FailedPrecondition/AlreadyExists when it carries a precondition.
            self._rpc = {
                "retry": Retry(
                    predicate=if_exception_type(
                        gexc.ServiceUnavailable, gexc.ResourceExhausted, gexc.Cancelled
                    ),
                    initial=0.05,
                    maximum=1.0,
                    timeout=request_timeout,
                ),
                "timeout": request_timeout,
            }
        if certificate_path is not None and firebase_app is None:
            self.firebase_app = _app_from_certificate(certificate_path, project)
            self._owns_app = True
        try:
            self._client = client or self._make_client(credentials)
        except BaseException:
            self._delete_app()
            raise

    def _make_client(self, credentials: Any) -> firestore.Client:
        if self.emulator_host:
            creds = credentials or AnonymousCredentials()
        elif self.firebase_app is not None:
            creds = self.firebase_app.credential.get_credential()
        else:
            creds = credentials
        try:
            client = firestore.Client(project=self.project, credentials=creds)
        except Exception as e:
            raise exc.ConfigurationError(
                f"cannot create a Firestore client for project {self.project!r}: {e}"
            ) from e
        if self.emulator_host:
            # Read from FIRESTORE_EMULATOR_HOST in the constructor; used lazily when
            # the channel is first opened. Setting it here scopes it to this client.
            client._emulator_host = self.emulator_host
        return client

    @property
    def client(self) -> firestore.Client:
        """The underlying ``google.cloud.firestore.Client``."""
        return self._client

    def _check_open(self) -> None:
        if self._closed:
            raise exc.DatabaseClosed(f"Firestore database for project {self.project!r} is closed")

    def _ref(self, path: str) -> Any:
        self._check_open()
        return self._client.document(paths.document_path(path))

    # -- single documents ---------------------------------------------------------------
    def get(self, path: str) -> DocumentSnapshot:
        ref = self._ref(path)
        with translated(path=path):
            return to_snapshot(ref.get(**self._rpc), path=path)

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        return self._get_all(paths_)

    def _get_all(self, paths_: Sequence[str], read_time: Any = None) -> list[DocumentSnapshot]:
        """One lookup of ``paths_`` at ``read_time`` or, if None, at one point.

        A plain BatchGetDocuments is not one point on the emulator (it shows
        half of a concurrent batch about once in 70 lookups), so an unpinned
        lookup runs in a read-only transaction the request itself begins (one
        round trip). The emulator's transactional reads can still see half of
        a batch being applied, while its reads at an explicit read time never
        do (FIELD-NOTES): there, several documents are read again at the
        transaction's read time.
        """
        refs = [self._ref(p) for p in paths_]
        if not refs:
            return []
        client = self._client
        request: dict[str, Any] = {
            "database": client._database_string,
            "documents": list(dict.fromkeys(r._document_path for r in refs)),
        }
        if read_time is None:
            request["new_transaction"] = {"read_only": {}}
        else:
            request["read_time"] = read_time
        found: dict[str, DocumentSnapshot] = {}
        prefix = client._database_string + "/documents/"
        with translated(path=", ".join(paths_)):
            stream = client._firestore_api.batch_get_documents(
                request=request, metadata=client._rpc_metadata, **self._rpc
            )
            for response in stream:
                result = response._pb.WhichOneof("result")
                if result == "found":
                    path, doc = response.found.name[len(prefix) :], response.found
                elif result == "missing":
                    path, doc = response.missing[len(prefix) :], None
                else:
                    continue  # the transaction's id alone
                found[path] = from_document_pb(path, doc, client, response.read_time)
        if read_time is None and self._emulated and len(request["documents"]) > 1:
            return self._get_all(paths_, found[paths_[0]].read_time)
        return [found[p] for p in paths_]

    def snapshot_reader(self, read_time: Any = None) -> SnapshotReader:
        """A reader whose reads all see one consistent point, without a transaction.

        Every read is pinned to ``read_time`` or, if None, to the read time of
        the first read (a lookup and a query cost one round trip each, instead
        of BeginTransaction + reads + Commit for a read-only transaction).
        """
        return SnapshotReader(self, read_time)

    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> WriteResult:
        ref = self._ref(path)
        payload = _payload(path, data)
        with translated(path=path):
            return WriteResult(ref.set(payload, merge=merge, **self._rpc).update_time)

    def create(self, path: str, data: Mapping[str, Any]) -> WriteResult:
        ref = self._ref(path)
        payload = _payload(path, data)
        with translated(path=path):
            return WriteResult(ref.create(payload, **self._rpc).update_time)

    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> WriteResult:
        ref = self._ref(path)
        payload = _payload(path, data)
        with translated(path=path):
            option = write_option(self._client, precondition, update=True)
            return WriteResult(ref.update(payload, option=option, **self._rpc).update_time)

    def delete(self, path: str, *, precondition: Precondition | None = None) -> WriteResult:
        ref = self._ref(path)
        with translated(path=path):
            option = write_option(self._client, precondition)
            return WriteResult(ref.delete(option=option, **self._rpc))

    # -- queries ----------------------------------------------------------------------------
    def _run(
        self, query: Query, transaction: Any = None, read_time: Any = None
    ) -> list[DocumentSnapshot]:
        self._check_open()
        at = {} if read_time is None else {"read_time": read_time}
        with translated(query=query.describe()):
            lq = fq.build(self._client, query)
            found = list(lq.stream(transaction=transaction, **self._rpc, **at))
        if query.from_last:
            found.sort(key=fq.sort_key(query))
        return [to_snapshot(s) for s in found]

    def query(self, query: Query) -> list[DocumentSnapshot]:
        return self._run(query)

    def list_collections(self, document_path: str | None = None) -> list[str]:
        self._check_open()
        with translated(path=document_path):
            if document_path is None:
                cols = self._client.collections(**self._rpc)
            else:
                cols = self._ref(document_path).collections(**self._rpc)
            return sorted(c.id for c in cols)

    # -- atomicity --------------------------------------------------------------------------
    def batch(self) -> WriteBatch:
        self._check_open()
        return _FirestoreBatch(self)

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Transaction]:
        self._check_open()
        lib_tx = self._client.transaction(read_only=read_only)
        with translated():
            _tx_call(lib_tx, "begin_transaction", self._rpc)
        tx = _FirestoreTransaction(self, lib_tx, read_only)
        try:
            yield tx
        except BaseException:
            tx._finish(commit=False)
            raise
        tx._finish(commit=True)

    # -- listeners --------------------------------------------------------------------------
    def listen_document(self, path: str, callback: ListenCallback) -> Watch:
        ref = self._ref(path)
        watch = FirestoreWatch(self, f"document {path!r}", callback, None)
        return self._start_watch(watch, lambda cb: _LibWatch.for_document(ref, cb, LibSnapshot))

    def listen_query(self, query: Query, callback: ListenCallback) -> Watch:
        self._check_open()
        with translated(query=query.describe()):
            lq = fq.build(self._client, query)
        watch = FirestoreWatch(self, f"query {query.describe()}", callback, fq.sort_key(query))
        return self._start_watch(watch, lambda cb: _LibWatch.for_query(lq, cb, LibSnapshot))

    def watch_documents(self, callback: DocumentsCallback) -> DocumentWatch:
        """One Listen stream for a changing set of single documents (see
        :class:`~._firestore_docwatch.DocumentWatch`); closed with the database."""
        with self._lock:
            self._check_open()
            watch = DocumentWatch(self, callback)
            self._watches.add(watch)
        return watch

    def _start_watch(self, watch: FirestoreWatch, subscribe: Any) -> Watch:
        with self._lock:
            self._check_open()
            self._watches.add(watch)
        try:
            with translated(query=watch.target):
                return watch.start(subscribe)
        except BaseException:
            self._forget_watch(watch)
            raise

    def _forget_watch(self, watch: FirestoreWatch | DocumentWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _record_listener_error(
        self, target: str, error: BaseException, *, outcome: str = "the listener keeps running"
    ) -> None:
        """Keep (and log) a listener's error; ``outcome`` says what became of
        the listener (a callback that raised: it keeps running)."""
        logger.error("listener on %s failed; %s", target, outcome, exc_info=error)
        error.add_note(f"raised by the listener on {target}; {outcome}")
        with self._lock:
            self.listener_errors.append(error)
            del self.listener_errors[:-MAX_LISTENER_ERRORS]

    @property
    def open_watches(self) -> int:
        """How many listeners are subscribed right now."""
        with self._lock:
            return len(self._watches)

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Unsubscribe every listener, close the client (if created here) and the
        firebase app (if created here). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            watches = list(self._watches)
        for watch in watches:
            watch.unsubscribe()
        if self._owns_client:
            try:
                self._client.close()
            except Exception:
                logger.debug("closing the Firestore client failed", exc_info=True)
        self._delete_app()

    def _delete_app(self) -> None:
        if self._owns_app and self.firebase_app is not None:
            import firebase_admin

            firebase_admin.delete_app(self.firebase_app)
            self._owns_app = False

    def __repr__(self) -> str:
        where = f"emulator {self.emulator_host}" if self.emulator_host else "cloud"
        return f"<FirestoreDatabase project={self.project!r} {where}>"


def _certificate_project(certificate_path: str) -> str | None:
    """The ``project_id`` a service-account JSON file names (None if it names none)."""
    try:
        with open(certificate_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as e:
        raise exc.ConfigurationError(
            f"invalid Firebase certificate {certificate_path!r}: {e}"
        ) from e
    project = data.get("project_id") if isinstance(data, dict) else None
    return project if isinstance(project, str) and project else None


def _app_from_certificate(certificate_path: str, project: str) -> Any:
    """A firebase_admin App (uniquely named) from a service-account JSON file."""
    if not os.path.isfile(certificate_path):
        raise exc.ConfigurationError(f"Firebase certificate file not found: {certificate_path!r}")
    import firebase_admin
    from firebase_admin import credentials as fb_credentials

    try:
        cred = fb_credentials.Certificate(certificate_path)
    except (ValueError, OSError) as e:
        raise exc.ConfigurationError(
            f"invalid Firebase certificate {certificate_path!r}: {e}"
        ) from e
    return firebase_admin.initialize_app(
        cred, {"projectId": project}, name=f"boiler-{project}-{uuid.uuid4().hex[:8]}"
    )


def _payload(path: str, data: Mapping[str, Any]) -> Any:
    """Validated library data for a write to ``path``."""
    return to_lib_data(_as_data(data, path), doc=path)


def _apply(target: Any, client: firestore.Client, kind: str, path: str, **kw: Any) -> None:
    """Buffer one write on a library batch or transaction."""
    ref = client.document(path)
    data = kw.get("data")
    payload = None if data is None else _payload(path, data)
    option = write_option(client, kw.get("precondition"), update=kind == "update")
    if kind == "set":
        target.set(ref, payload, merge=kw.get("merge", False))
    elif kind == "create":
        target.create(ref, payload)
    elif kind == "update":
        target.update(ref, payload, option=option)
    else:
        target.delete(ref, option=option)


class SnapshotReader:
    """Reads (``get_all``, ``query``) pinned to one read time; see
    :meth:`FirestoreDatabase.snapshot_reader`.

    A lookup's or a query's documents may carry increasing read times (the
    earlier ones unchanged up to the later ones), so the latest one of the
    first read is the pinned point. A query as the very first read could come
    back empty, with no read time to pin: the point is fixed first by looking
    up one (possibly missing) document of the queried collection.
    """

    def __init__(self, db: FirestoreDatabase, read_time: Any = None) -> None:
        self._db = db
        self.read_time = read_time

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        return self._pin(self._db._get_all(paths_, self.read_time))

    def query(self, query: Query) -> list[DocumentSnapshot]:
        if self.read_time is None:
            self._pin(self._db._get_all([f"{query.collection}/{_PIN_ID}"]))
        return self._pin(self._db._run(query, read_time=self.read_time))

    def _pin(self, snaps: list[DocumentSnapshot]) -> list[DocumentSnapshot]:
        """Fix the read time (first read); every snapshot carries exactly it."""
        if self.read_time is None:
            times = [s.read_time for s in snaps if s.read_time is not None]
            if times:
                self.read_time = max(times)
        rt = self.read_time
        if rt is None:
            return snaps
        return [s if s.read_time == rt else dataclasses.replace(s, read_time=rt) for s in snaps]


#: A document id read (and never written) to fix a read time before a query.
_PIN_ID = "boiler-read-time"


class _FirestoreBatch(WriteBatch):
    def __init__(self, db: FirestoreDatabase) -> None:
        super().__init__()
        self._db = db

    def commit(self) -> list[WriteResult]:
        if self._committed:
            raise exc.InvalidTransaction("this batch was already committed")
        self._db._check_open()
        client = self._db.client
        writes = [(w.kind, w.path, w.precondition) for w in self._writes]
        prefix = client._database_string + "/documents/"
        plain = [
            plain_write(prefix, w.kind, w.path, w.data, w.merge, w.precondition)
            for w in self._writes
        ]
        if self._writes and all(pb is not None for pb in plain):
            # Every write is plain: encoded straight to protobuf (see _firestore_encode).
            request = {"database": client._database_string, "writes": plain}
            with translated(blame=blame_commit(writes)):
                response = client._firestore_api.commit(
                    request=request, metadata=client._rpc_metadata, **self._db._rpc
                )
            self._committed = True
            commit_time: Any = response.commit_time
            return [WriteResult(r.update_time or commit_time) for r in response.write_results]
        lib = client.batch()
        for w in self._writes:
            with translated(path=w.path):
                _apply(
                    lib,
                    client,
                    w.kind,
                    w.path,
                    data=w.data,
                    merge=w.merge,
                    precondition=w.precondition,
                )
        with translated(blame=blame_commit(writes)):
            results = lib.commit(**self._db._rpc) if self._writes else []
        self._committed = True
        commit_time = lib.commit_time
        return [WriteResult(r.update_time or commit_time) for r in results]


class _FirestoreTransaction(Transaction):
    def __init__(self, db: FirestoreDatabase, lib_tx: Any, read_only: bool) -> None:
        self._db = db
        self._lib = lib_tx
        self.read_only = read_only
        self._done = False
        self._writes: list[tuple[str, str, Precondition | None]] = []

    def _check(self) -> None:
        if self._done:
            raise exc.InvalidTransaction("this transaction is already committed or rolled back")

    def get(self, path: str) -> DocumentSnapshot:
        return self.get_all([path])[0]

    def get_all(self, paths_: Sequence[str]) -> list[DocumentSnapshot]:
        self._check()
        refs = [self._db._ref(p) for p in paths_]
        if not refs:
            return []
        with translated(path=", ".join(paths_)):
            found = {s.reference.path: s for s in self._lib.get_all(refs, **self._db._rpc)}
        return [to_snapshot(found[p], path=p) for p in paths_]

    def query(self, query: Query) -> list[DocumentSnapshot]:
        self._check()
        return self._db._run(query, transaction=self._lib)

    def _write(self, kind: str, path: str, **kw: Any) -> None:
        self._check()
        self._db._ref(path)  # checks the path and that the database is open
        with translated(path=path):
            _apply(self._lib, self._db.client, kind, path, **kw)
        self._writes.append((kind, path, kw.get("precondition")))

    def set(self, path: str, data: Mapping[str, Any], *, merge: bool = False) -> None:
        self._write("set", path, data=_as_data(data, path), merge=merge)

    def create(self, path: str, data: Mapping[str, Any]) -> None:
        self._write("create", path, data=_as_data(data, path))

    def update(
        self, path: str, data: Mapping[str, Any], *, precondition: Precondition | None = None
    ) -> None:
        self._write("update", path, data=_as_data(data, path), precondition=precondition)

    def delete(self, path: str, *, precondition: Precondition | None = None) -> None:
        self._write("delete", path, precondition=precondition)

    def _finish(self, *, commit: bool) -> None:
        """Commit (or roll back); a failed commit is rolled back and re-raised as ours."""
        if self._done:
            return
        self._done = True
        if commit:
            try:
                with translated(blame=blame_commit(self._writes)):
                    _tx_call(self._lib, "commit", self._db._rpc)
                return
            except BaseException:
                self._rollback_quietly()
                raise
        self._rollback_quietly()

    def _rollback_quietly(self) -> None:
        if not self._lib.in_progress:
            return
        try:
            _tx_call(self._lib, "rollback", self._db._rpc)
        except (gexc.GoogleAPIError, ValueError):  # RetryError is not a GoogleAPICallError
            logger.debug("transaction rollback failed", exc_info=True)


def _tx_call(lib_tx: Any, method: str, rpc: dict[str, Any]) -> None:
    """Begin, commit or roll back the library transaction ``lib_tx`` with the
    database's retry and request timeout (the library's own ``_begin``,
    ``_commit`` and ``_rollback`` take neither: a server that does not answer
    would hold them for a minute)."""
    client = lib_tx._client
    request: dict[str, Any] = {"database": client._database_string}
    if method == "begin_transaction":
        request["options"] = lib_tx._options_protobuf(None)
    else:
        request["transaction"] = lib_tx._id
    if method == "commit":
        request["writes"] = lib_tx._write_pbs
    call = getattr(client._firestore_api, method)
    if method == "rollback":
        try:
            call(request=request, metadata=client._rpc_metadata, **rpc)
        finally:
            lib_tx._clean_up()  # as the library does: even if the rollback fails
        return
    response = call(request=request, metadata=client._rpc_metadata, **rpc)
    if method == "begin_transaction":
        lib_tx._id = response.transaction
    else:
        lib_tx._clean_up()
