"""Property: after ANY sequence of domain writes, every live view equals a
from-scratch rebuild, and no view exists for a non-participant or a deleted meeting.

One runtime per test function (per backend); between examples the domain is
emptied (the runtime must then delete every view) and re-seeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boiler.database import Database
from boiler.runtime.process import Runtime
from boiler.testing import wait_for
from examples.meeting_room import app
from examples.meeting_room.domain import STATUSES, Location, Meeting, Ticket, User
from examples.meeting_room.tests.helpers import actual_views, divergence

USERS = ("u0", "u1", "u2", "u3")
MEETINGS = ("m0", "m1")
LOCATIONS = ("l0", "l1")
DOMAIN = ("meetings", "tickets", "users", "locations")
BASE = {"m0": ("l0", ("u0", "u1")), "m1": ("l1", ("u1", "u2"))}
SETTLE = 20.0


def ticket_path(mid: str, uid: str) -> str:
    return f"tickets/t_{mid}_{uid}"


def seed(db: Database) -> None:
    batch = db.batch()
    for i, uid in enumerate(USERS):
        User.new(
            doc_id=uid,
            first_name=f"F{i}",
            last_name=f"L{i}",
            organization="UCSD",
            hearing_aid_requested=i % 2 == 0,
        ).save(batch=batch)
    for i, lid in enumerate(LOCATIONS):
        Location.new(doc_id=lid, latitude=float(i), longitude=-float(i), address=f"A{i}").save(
            batch=batch
        )
    for mid, (lid, uids) in BASE.items():
        write_meeting(batch, mid, lid, uids)
    batch.commit()


def write_meeting(writer: Any, mid: str, lid: str, uids: tuple[str, ...]) -> None:
    for uid in uids:
        Ticket.new(
            doc_ref=ticket_path(mid, uid), role="Participant", attendance=True, user=f"users/{uid}"
        ).save(batch=writer)
    Meeting.new(
        doc_id=mid,
        location=f"locations/{lid}",
        users=[f"users/{u}" for u in uids],
        tickets={u: ticket_path(mid, u) for u in uids},
        status="in-session",
    ).save(batch=writer)


def clear(db: Database) -> None:
    batch = db.batch()
    for collection in DOMAIN:
        for snap in db.query(db.collection(collection)):
            batch.delete(snap.path)
    batch.commit()


# -- operations: each is a tuple the strategy draws; apply() performs it --------------------------

users = st.sampled_from(USERS)
meetings = st.sampled_from(MEETINGS)
operations = st.one_of(
    st.tuples(st.just("attendance"), meetings, users, st.booleans()),
    st.tuples(st.just("rename"), users, st.sampled_from(["Ann", "Bob", "Cy"])),
    st.tuples(st.just("organization"), users, st.sampled_from(["UCSD", "SDSU", "UCLA"])),
    st.tuples(st.just("hearing_aid"), users, st.booleans()),
    st.tuples(st.just("location"), st.sampled_from(LOCATIONS), st.sampled_from(["X", "Y"])),
    st.tuples(st.just("move"), meetings, st.sampled_from(LOCATIONS)),
    st.tuples(st.just("join"), meetings, users, st.booleans()),
    st.tuples(st.just("leave"), meetings, users),
    st.tuples(st.just("delete_ticket"), meetings, users),
    st.tuples(st.just("status"), meetings, st.sampled_from(STATUSES)),
    st.tuples(st.just("delete_meeting"), meetings),
    st.tuples(
        st.just("recreate_meeting"),
        meetings,
        st.sampled_from(LOCATIONS),
        st.lists(users, max_size=3, unique=True).map(tuple),
    ),
    st.tuples(st.just("delete_user"), users),
)


def apply(db: Database, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "attendance":
        _, mid, uid, attends = op
        db.set(
            ticket_path(mid, uid),
            {"role": "Participant", "attendance": attends, "user": f"users/{uid}"},
            merge=True,
        )
    elif kind in ("rename", "organization", "hearing_aid"):
        _, uid, value = op
        key = {
            "rename": "firstName",
            "organization": "organization",
            "hearing_aid": "hearingAidRequested",
        }[kind]
        db.set(f"users/{uid}", {key: value}, merge=True)
    elif kind == "location":
        _, lid, address = op
        db.set(
            f"locations/{lid}", {"address": address, "latitude": 1.0, "longitude": 2.0}, merge=True
        )
    elif kind == "move":
        _, mid, lid = op
        _update_meeting(db, mid, lambda m: setattr(m, "location", f"locations/{lid}"))
    elif kind == "join":
        _, mid, uid, attends = op

        def join(m: Meeting) -> None:
            if f"users/{uid}" not in m.users:
                m.users = [*m.users, f"users/{uid}"]
            m.tickets = {**m.tickets, uid: ticket_path(mid, uid)}

        db.set(
            ticket_path(mid, uid),
            {"role": "Participant", "attendance": attends, "user": f"users/{uid}"},
        )
        _update_meeting(db, mid, join)
    elif kind == "leave":
        _, mid, uid = op

        def leave(m: Meeting) -> None:
            m.users = [u for u in m.users if u != f"users/{uid}"]
            m.tickets = {k: v for k, v in m.tickets.items() if k != uid}

        _update_meeting(db, mid, leave)
    elif kind == "delete_ticket":
        _, mid, uid = op
        db.delete(ticket_path(mid, uid))
    elif kind == "status":
        _, mid, status = op
        _update_meeting(db, mid, lambda m: setattr(m, "status", status))
    elif kind == "delete_meeting":
        db.delete(f"meetings/{op[1]}")
    elif kind == "recreate_meeting":
        _, mid, lid, uids = op
        batch = db.batch()
        write_meeting(batch, mid, lid, uids)
        batch.commit()
    elif kind == "delete_user":
        db.delete(f"users/{op[1]}")
    else:  # pragma: no cover
        raise AssertionError(op)


def _update_meeting(db: Database, mid: str, change: Any) -> None:
    def body(tx: Any) -> None:
        snap = tx.get(f"meetings/{mid}")
        if not snap.exists:
            return
        meeting = Meeting.from_snapshot(snap)
        change(meeting)
        meeting.save(transaction=tx)

    db.run_transaction(body)


# -- the property ----------------------------------------------------------------------------------


@pytest.fixture
def runtime(db: Database) -> Iterator[Runtime]:
    rt = app.runtime(db).start()
    try:
        assert rt.wait_idle(SETTLE), rt.health()
        yield rt
    finally:
        rt.stop()


def settle(rt: Runtime, db: Database) -> None:
    """Wait until the views equal a from-scratch rebuild, then check they stay so."""

    def converged() -> bool:
        return rt.wait_idle(SETTLE) and divergence(db) == ""

    try:
        wait_for(converged, timeout=SETTLE, message="convergence")
    except TimeoutError:
        assert divergence(db) == "", rt.health()
        raise
    assert rt.wait_idle(SETTLE)
    assert divergence(db) == ""
    assert rt.errors == [], [str(e) for e in rt.errors]


def check(rt: Runtime, db: Database, ops: list[tuple[Any, ...]]) -> None:
    clear(db)
    wait_for(
        lambda: rt.wait_idle(SETTLE) and not actual_views(db),
        timeout=SETTLE,
        message=lambda: f"every view deleted after clearing the domain: {actual_views(db)}",
    )
    seed(db)
    settle(rt, db)
    for op in ops:
        apply(db, op)
    settle(rt, db)


COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "derandomize": False,
}


@settings(max_examples=40, **COMMON)  # type: ignore[arg-type]
@given(ops=st.lists(operations, min_size=1, max_size=15))
def _embedded_property(rt: Runtime, db: Database, ops: list[tuple[Any, ...]]) -> None:
    check(rt, db, ops)


@settings(max_examples=10, **COMMON)  # type: ignore[arg-type]
@given(ops=st.lists(operations, min_size=1, max_size=12))
def _firestore_property(rt: Runtime, db: Database, ops: list[tuple[Any, ...]]) -> None:
    check(rt, db, ops)


@pytest.mark.timeout(600)
def test_views_converge_after_random_domain_writes(
    runtime: Runtime, db: Database, backend: str
) -> None:
    prop = _embedded_property if backend == "embedded" else _firestore_property
    prop(runtime, db)
