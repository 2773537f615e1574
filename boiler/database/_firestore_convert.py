"""Conversions between boiler values and google-cloud-firestore ones, and the
mapping of library errors onto :mod:`boiler.exceptions`.

Data written: :data:`~boiler.database.base.SERVER_TIMESTAMP` and
:data:`~boiler.database.base.DELETE_FIELD` become the library's sentinels, at
any depth. Data read: ``DocumentReference`` values become their path strings
(relative to the database, e.g. ``"users/u1"``), at any depth; timestamps stay
timezone-aware ``datetime`` objects (the library's nanosecond-capable
subclass, so that an ``update_time`` read can be used as an exact
precondition).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers as fs_helpers
from google.cloud.firestore_v1._helpers import GeoPoint
from google.cloud.firestore_v1.base_document import DocumentSnapshot as LibSnapshot
from google.cloud.firestore_v1.document import DocumentReference

from .. import exceptions as exc
from .base import DELETE_FIELD, SERVER_TIMESTAMP, DocumentSnapshot, Precondition
from .paths import is_utf8, not_utf8

# -- data ---------------------------------------------------------------------

_RESERVED = re.compile(r"^__.*__$")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_PASS_THROUGH = (type(None), bool, float, str, bytes, _dt.datetime, GeoPoint, DocumentReference)


def _invalid(doc: str | None, field: str, problem: str) -> exc.ValidationError:
    where = f"document {doc!r}, " if doc else ""
    return exc.ValidationError(f"{where}field {field!r}: {problem}", field=field or None)


def to_lib_data(value: Any, field: str = "", *, doc: str | None = None) -> Any:
    """``value`` checked against the contract's value types, with our sentinels
    replaced by the library's, recursively.

    Errors name the document and the field. Tuples become lists; sets, arrays
    directly inside arrays, reserved ``__x__`` field names and integers outside
    int64 are rejected here (the library would accept some of them silently or
    fail without naming the field).
    """
    if value is SERVER_TIMESTAMP:
        return firestore.SERVER_TIMESTAMP
    if value is DELETE_FIELD:
        return firestore.DELETE_FIELD
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            name = f"{field}.{k}" if field else str(k)
            if not isinstance(k, str) or not k:
                raise _invalid(doc, name, f"field names must be non-empty strings, got {k!r}")
            if _RESERVED.match(k):
                raise _invalid(doc, name, "field names of the form __x__ are reserved")
            if not is_utf8(k):
                printable = name.encode("utf-8", "backslashreplace").decode()
                raise _invalid(doc, printable, not_utf8("field name", k))
            out[k] = to_lib_data(v, name, doc=doc)
        return out
    if isinstance(value, list | tuple):
        items = []
        for i, v in enumerate(value):
            if isinstance(v, list | tuple):
                raise _invalid(doc, field, "an array cannot directly contain an array")
            if v is SERVER_TIMESTAMP or v is DELETE_FIELD:
                raise _invalid(doc, field, f"{v!r} cannot be used inside an array")
            items.append(to_lib_data(v, f"{field}[{i}]", doc=doc))
        return items
    if isinstance(value, str) and not is_utf8(value):
        raise _invalid(doc, field, not_utf8("string", value))
    if isinstance(value, int) and not isinstance(value, bool):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _invalid(doc, field, f"integer {value} is outside the 64-bit range")
        return value
    if isinstance(value, _PASS_THROUGH):
        return value
    raise _invalid(doc, field, f"unsupported value type {type(value).__name__}")


def from_lib_data(value: Any) -> Any:
    """``value`` with ``DocumentReference`` objects replaced by path strings."""
    if isinstance(value, DocumentReference):
        return value.path
    if isinstance(value, dict):
        return {k: from_lib_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_lib_data(v) for v in value]
    return value


def to_snapshot(
    snap: LibSnapshot, *, path: str | None = None, read_time: _dt.datetime | None = None
) -> DocumentSnapshot:
    """Our :class:`DocumentSnapshot` for a library snapshot."""
    # from_lib_data builds new maps and lists (scalars are immutable): a deep copy
    # already, so the library's to_dict() (copy.deepcopy) is skipped.
    data = snap._data if snap.exists else None
    return DocumentSnapshot(
        path=path or snap.reference.path,
        data=None if data is None else from_lib_data(data),
        create_time=snap.create_time,
        update_time=snap.update_time,
        read_time=read_time or snap.read_time,
    )


def from_document_pb(
    path: str, doc: Any, client: firestore.Client, read_time: _dt.datetime
) -> DocumentSnapshot:
    """Our snapshot of a ``Document`` message read at ``read_time`` (None: missing)."""
    if doc is None:
        return DocumentSnapshot(path, None, None, None, read_time)
    data = from_lib_data(fs_helpers.decode_dict(doc.fields, client))
    return DocumentSnapshot(path, data, doc.create_time, doc.update_time, read_time)


def to_lib_snapshot(client: firestore.Client, snap: DocumentSnapshot) -> LibSnapshot:
    """A library snapshot carrying ``snap``'s data (used as a query cursor)."""
    if snap.data is None:
        raise exc.InvalidQuery(f"cannot use the missing document {snap.path!r} as a query cursor")
    return LibSnapshot(
        reference=client.document(snap.path),
        data=dict(snap.data),
        exists=True,
        read_time=snap.read_time,
        create_time=snap.create_time,
        update_time=snap.update_time,
    )


def write_option(
    client: firestore.Client, precondition: Precondition | None, *, update: bool = False
) -> Any:
    """The library write option for ``precondition`` (None if unconditional).

    ``update()`` always requires the document to exist, so ``exists=True`` is
    implied there (the library rejects it explicitly) and ``exists=False`` is an error.
    """
    if precondition is None:
        return None
    if precondition.update_time is not None:
        return client.write_option(last_update_time=precondition.update_time)
    if precondition.exists is not None:
        if update:
            if not precondition.exists:
                raise exc.ValidationError(
                    "update() needs an existing document: Precondition(exists=False) "
                    "cannot hold; use create()"
                )
            return None
        return client.write_option(exists=precondition.exists)
    return None


# -- errors ---------------------------------------------------------------------

#: Server answers meaning "try again": the request may succeed when retried.
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.ResourceExhausted,
    gexc.RetryError,
)


def first_line(e: BaseException) -> str:
    text = getattr(e, "message", None) or str(e)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__


def translate(
    e: BaseException, *, path: str | None = None, query: str | None = None
) -> BaseException:
    """The boiler exception for a library exception (``e`` itself if unknown).

    ``path`` names the document an operation was about, ``query`` describes the
    query being run; both end up in the message.
    """
    where = f"document {path!r}" if path else (f"query {query}" if query else "request")
    msg = first_line(e)
    if isinstance(e, exc.BoilerError):
        return e
    if isinstance(e, fs_helpers.ReadAfterWriteError):
        return exc.InvalidTransaction(
            f"{where}: all reads in a transaction must come before its writes ({msg})"
        )
    if isinstance(e, gexc.AlreadyExists):
        return exc.AlreadyExists(f"{where} already exists", path=path)
    if isinstance(e, gexc.NotFound):
        return exc.NotFound(f"{where} not found ({msg})", path=path)
    if isinstance(e, gexc.Aborted | gexc.Conflict):
        return exc.TransactionConflict(f"{where}: transaction aborted by contention ({msg})")
    if isinstance(e, gexc.FailedPrecondition):
        if query is not None:  # e.g. a composite index is missing in production
            return exc.InvalidQuery(f"{where}: {msg}")
        return exc.FailedPrecondition(f"{where}: precondition failed ({msg})", path=path)
    if isinstance(e, gexc.InvalidArgument):
        if query is not None:
            return exc.InvalidQuery(f"{where}: {msg}")
        return exc.ValidationError(f"{where}: {msg}")
    if isinstance(e, ValueError | TypeError):
        text = str(e)
        if "read-only transaction" in text or "ransaction not in progress" in text:
            return exc.InvalidTransaction(f"{where}: {text}")
        if query is not None:
            return exc.InvalidQuery(f"{where}: {text}")
        return exc.ValidationError(f"{where}: {text}")
    if isinstance(e, _TRANSIENT):
        return exc.Unavailable(f"Firestore did not answer for {where}: {msg}")
    if isinstance(e, gexc.GoogleAPICallError | gexc.RetryError | auth_exc.GoogleAuthError):
        return exc.BoilerError(f"Firestore request failed for {where}: {msg}")
    return e


@contextmanager
def translated(
    *,
    path: str | None = None,
    query: str | None = None,
    blame: Callable[[BaseException], str | None] | None = None,
) -> Iterator[None]:
    """Re-raise library exceptions as boiler ones (``raise ... from e``).

    ``blame(e)`` names the document(s) when only the error can tell (commits).
    """
    try:
        yield
    except exc.BoilerError:
        raise
    except Exception as e:
        mapped = translate(e, path=blame(e) if blame else path, query=query)
        if mapped is e:
            raise
        raise mapped from e


_EMULATOR_ELEMENT = re.compile(r'type: "([^"]*)"\s*name: "([^"]*)"')


def blame_commit(
    writes: Sequence[tuple[str, str, Precondition | None]],
) -> Callable[..., str | None]:
    """A ``blame`` function for a commit of ``writes`` (kind, path, precondition):
    the documents whose write can fail the way the error says, narrowed to those
    the server's message mentions (production and emulator formats)."""

    def blame(e: BaseException) -> str | None:
        def can_fail(kind: str, pre: Precondition | None) -> bool:
            if isinstance(e, gexc.NotFound):
                return kind == "update" or bool(pre and pre.exists is True)
            if isinstance(e, gexc.AlreadyExists):
                return kind == "create" or bool(pre and pre.exists is False)
            if isinstance(e, gexc.FailedPrecondition):
                return pre is not None and pre.update_time is not None
            return True

        candidates = [p for kind, p, pre in writes if can_fail(kind, pre)]
        text = str(e)
        elements = "/".join(part for m in _EMULATOR_ELEMENT.findall(text) for part in m)
        named = [
            p
            for p in candidates
            if p == elements or re.search(re.escape(f"/{p}") + r"(?=[\s,}\"']|$)", text)
        ]
        chosen = named or candidates or [p for _, p, _ in writes]
        return ", ".join(dict.fromkeys(chosen)) or None

    return blame
