"""Checks shared by the meeting-room acceptance tests (also used from ``tests/``).

The reference for every live view is a from-scratch build of the view model
(``MeetingSession.get(..., once=True)``); a view document must equal it,
minus the ``_boiler`` bookkeeping field.
"""

from __future__ import annotations

from typing import Any

from boiler.database import Database, Query, paths
from boiler.exceptions import NotFound

from ..views import MeetingSession

VIEW_COLLECTION = "MeetingSession"


def view_path(uid: str, meeting_id: str = "meeting_1") -> str:
    return f"users/{uid}/{VIEW_COLLECTION}/{meeting_id}"


def view_doc(db: Database, uid: str, meeting_id: str = "meeting_1") -> dict[str, Any] | None:
    """The view document of ``uid`` for ``meeting_id`` without ``_boiler`` (None if absent)."""
    data = db.get(view_path(uid, meeting_id)).to_dict()
    if data is None:
        return None
    data.pop("_boiler", None)
    return data


def rebuilt(db: Database, uid: str, meeting_id: str = "meeting_1") -> dict[str, Any] | None:
    """What the view must hold: a from-scratch build (None if it cannot exist)."""
    try:
        view = MeetingSession.get(doc_id=meeting_id, user_id=uid, once=True, db=db)
    except NotFound:
        return None
    data = view.to_view_dict()
    assert isinstance(data, dict)
    return data


def expected_views(db: Database) -> dict[str, dict[str, Any]]:
    """Every view document that must exist, by path, built from scratch."""
    out: dict[str, dict[str, Any]] = {}
    for snap in db.query(db.collection("meetings")):
        users = (snap.data or {}).get("users") or []
        for user_path in users:
            uid = paths.doc_id(user_path)
            data = rebuilt(db, uid, snap.id)
            if data is not None:
                out[view_path(uid, snap.id)] = data
    return out


def actual_views(db: Database) -> dict[str, dict[str, Any]]:
    """Every view document that exists, by path, without ``_boiler``."""
    out = {}
    for snap in db.query(Query(VIEW_COLLECTION, all_descendants=True)):
        data = dict(snap.data or {})
        data.pop("_boiler", None)
        out[snap.path] = data
    return out


def divergence(db: Database) -> str:
    """Empty when every view equals a from-scratch rebuild and no other view
    exists; otherwise a description of the differences."""
    want, have = expected_views(db), actual_views(db)
    problems = []
    for path in sorted(set(want) | set(have)):
        if path not in have:
            problems.append(f"missing {path}: want {want[path]}")
        elif path not in want:
            problems.append(f"orphan {path}: {have[path]}")
        elif want[path] != have[path]:
            problems.append(f"stale {path}:\n    have {have[path]}\n    want {want[path]}")
    return "\n".join(problems)
