"""Document versions and write application for the embedded store.

A :class:`Rec` is one immutable version of a document (``prev`` links older
versions while a transaction snapshot may still need them). :func:`apply_write`
computes the document after one buffered write, Firestore-style.
"""

from __future__ import annotations

from typing import Any

from ..exceptions import AlreadyExists, FailedPrecondition, NotFound
from ._codec import to_micros
from ._sqlite import Row
from ._writes import Prepared, apply_set, apply_update, copy_value, same_data
from .base import DocumentSnapshot, _Write


class PreconditionNotFound(NotFound, FailedPrecondition):
    """An ``exists=True`` precondition on a missing document (Firestore: NOT_FOUND)."""


class PreconditionExists(AlreadyExists, FailedPrecondition):
    """An ``exists=False`` precondition on an existing document."""


class Rec:
    """One version of a document; ``snap.data`` None marks a deletion (tombstone)."""

    __slots__ = ("snap", "update_us", "prev")

    def __init__(self, snap: DocumentSnapshot, update_us: int, prev: Rec | None) -> None:
        self.snap = snap
        self.update_us = update_us
        self.prev = prev


def visible(rec: Rec | None, at_us: int | None) -> Rec | None:
    """The version of ``rec``'s document at ``at_us`` (None: latest), if it exists."""
    if at_us is not None:
        while rec is not None and rec.update_us > at_us:
            rec = rec.prev
    return None if rec is None or rec.snap.data is None else rec


def export(path: str, rec: Rec | None, read_time: Any) -> DocumentSnapshot:
    """A caller-owned snapshot (its data is a copy)."""
    if rec is None:
        return DocumentSnapshot(path, None, read_time=read_time)
    snap = rec.snap
    return DocumentSnapshot(
        path, copy_value(snap.data), snap.create_time, snap.update_time, read_time
    )


def update_time(snap: DocumentSnapshot, now: Any) -> Any:
    return snap.update_time or now


def _check_precondition(write: _Write, current: DocumentSnapshot | None) -> None:
    pre = write.precondition
    if pre is None:
        return
    if pre.exists is True and current is None:
        raise PreconditionNotFound(
            f"{write.kind} of {write.path!r}: the document does not exist", path=write.path
        )
    if pre.exists is False and current is not None:
        raise PreconditionExists(
            f"{write.kind} of {write.path!r}: the document already exists", path=write.path
        )
    if pre.update_time is not None and (current is None or current.update_time != pre.update_time):
        found = "missing" if current is None else f"last updated {current.update_time}"
        raise FailedPrecondition(
            f"{write.kind} of {write.path!r}: expected update_time {pre.update_time}, "
            f"document is {found}",
            path=write.path,
        )


def apply_write(
    write: _Write, prep: Prepared | None, current: DocumentSnapshot | None, now: Any
) -> DocumentSnapshot | None:
    """The document after ``write`` (None: deleted); ``current`` if unchanged."""
    _check_precondition(write, current)
    if write.kind == "delete":
        return None
    assert prep is not None
    if write.kind == "create":
        if current is not None:
            raise AlreadyExists(f"document {write.path!r} already exists", path=write.path)
        data = apply_set(None, prep, merge=False, now=now)
    elif write.kind == "set":
        old = None if current is None else dict(current.data or {})
        data = apply_set(old, prep, merge=write.merge, now=now)
    else:
        if current is None:
            raise NotFound(f"cannot update missing document {write.path!r}", path=write.path)
        data = apply_update(dict(current.data or {}), prep, now=now)
    if current is not None and same_data(dict(current.data or {}), data):
        return current
    create_time = now if current is None else current.create_time
    return DocumentSnapshot(write.path, data, create_time, now)


def rows(changes: list[tuple[str, Rec | None, DocumentSnapshot | None]]) -> list[Row]:
    rows: list[Row] = []
    for path, _old, new in changes:
        if new is None or new.create_time is None or new.update_time is None:
            rows.append((path, None, 0, 0))
        else:
            data: dict[str, object] = dict(new.data or {})
            rows.append((path, data, to_micros(new.create_time), to_micros(new.update_time)))
    return rows


def copy_snap(snap: DocumentSnapshot, read_time: Any) -> DocumentSnapshot:
    return DocumentSnapshot(
        snap.path, copy_value(snap.data), snap.create_time, snap.update_time, read_time
    )
