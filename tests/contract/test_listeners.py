"""Listeners on a document, a collection and a query.

An initial snapshot (every document ``added``), then one event per change
in commit order; ``unsubscribe()`` stops delivery and releases resources.
Waiting is always polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import datetime as dt
import threading

from boiler.database import DESCENDING, Database, DocumentChange, ListenEvent
from boiler.testing import wait_for

from .conftest import EVENT_TIMEOUT, Listen, Recorder, ids, paths_of, seed


def n_of(event: ListenEvent) -> int | None:
    return event.docs[0].get("n") if event.docs else None


def kinds(event: ListenEvent) -> list[tuple[str, str]]:
    return [(c.type, c.document.id) for c in event.changes]


# -- document listeners -------------------------------------------------------------


def test_document_listener_on_missing_document(db: Database, listen: Listen) -> None:
    rec, _ = listen.document("c/a")
    [initial] = rec.wait_count(1)
    assert initial.docs == []
    assert initial.changes == []
    assert isinstance(initial.read_time, dt.datetime)
    assert initial.read_time.tzinfo is not None


def test_document_listener_lifecycle(db: Database, listen: Listen) -> None:
    rec, _ = listen.document("c/a")
    rec.wait_count(1)

    db.set("c/a", {"n": 1})
    created = rec.wait_count(2)[1]
    assert [s.path for s in created.docs] == ["c/a"]
    assert created.docs[0].to_dict() == {"n": 1}
    [change] = created.changes
    assert isinstance(change, DocumentChange)
    assert (change.type, change.document.path, change.old_index) == ("added", "c/a", -1)
    assert created.docs[0].update_time == db.get("c/a").update_time

    db.update("c/a", {"n": 2})
    modified = rec.wait_count(3)[2]
    assert n_of(modified) == 2
    assert kinds(modified) == [("modified", "a")]

    db.delete("c/a")
    removed = rec.wait_count(4)[3]
    assert removed.docs == []
    [change] = removed.changes
    assert (change.type, change.new_index) == ("removed", -1)
    assert len(rec.events) == 4


def test_document_listener_initial_snapshot_of_existing_document(
    db: Database, listen: Listen
) -> None:
    db.set("users/u1/sessions/s1", {"n": 7})
    rec, _ = listen.document("users/u1/sessions/s1")
    [initial] = rec.wait_count(1)
    assert paths_of(initial.docs) == ["users/u1/sessions/s1"]
    assert initial.docs[0].to_dict() == {"n": 7}
    assert kinds(initial) == [("added", "s1")]
    assert initial.changes[0].old_index == -1


def test_document_listener_sees_changes_in_commit_order(db: Database, listen: Listen) -> None:
    db.set("c/a", {"n": 0})
    rec, _ = listen.document("c/a")
    rec.wait_count(1)
    for n in range(1, 6):
        db.set("c/a", {"n": n})
    rec.wait(lambda events: n_of(events[-1]) == 5, "n == 5")
    values = [n_of(e) for e in rec.events]
    assert values[0] == 0
    assert values == sorted(set(values)), values  # strictly increasing: no reordering


def test_document_listener_ignores_other_documents(db: Database, listen: Listen) -> None:
    rec, _ = listen.document("c/a")
    probe, _ = listen.document("c/b")
    rec.wait_count(1)
    probe.wait_count(1)
    db.set("c/a/sub/x", {"n": 1})  # a subcollection document is not the document
    db.set("c/ab", {"n": 1})
    db.set("c/b", {"n": 1})  # written last: once its listener saw it, the others were processed
    probe.wait_count(2)
    db.set("c/a", {"n": 9})
    rec.wait_count(2)
    assert [n_of(e) for e in rec.events] == [None, 9]


def test_write_that_changes_nothing_sends_no_event(db: Database, listen: Listen) -> None:
    db.set("c/a", {"n": 1, "m": {"k": True}})
    rec, _ = listen.document("c/a")
    rec.wait_count(1)
    db.set("c/a", {"n": 1, "m": {"k": True}})
    db.update("c/a", {"n": 1})
    db.set("c/a", {"n": 2, "m": {"k": True}})
    rec.wait(lambda events: n_of(events[-1]) == 2, "n == 2")
    assert [n_of(e) for e in rec.events] == [1, 2]


# -- collection and query listeners -----------------------------------------------------


def test_collection_listener_initial_snapshot_all_added(db: Database, listen: Listen) -> None:
    seed(db, "c", {"b": {"n": 2}, "a": {"n": 1}, "c": {"n": 3}})
    db.set("c/a/sub/x", {"n": 4})  # not in the collection
    db.set("other/z", {"n": 5})
    rec, _ = listen.query(db.collection("c"))
    [initial] = rec.wait_count(1)
    assert ids(initial.docs) == ["a", "b", "c"]
    assert kinds(initial) == [("added", "a"), ("added", "b"), ("added", "c")]
    assert all(c.old_index == -1 for c in initial.changes)
    assert [c.new_index for c in initial.changes] == [0, 1, 2]


def test_empty_collection_listener_gets_empty_initial_snapshot(
    db: Database, listen: Listen
) -> None:
    rec, _ = listen.query(db.collection("c"))
    [initial] = rec.wait_count(1)
    assert initial.docs == [] and initial.changes == []


def test_collection_listener_added_modified_removed(db: Database, listen: Listen) -> None:
    db.set("c/a", {"n": 1})
    rec, _ = listen.query(db.collection("c"))
    rec.wait_count(1)

    db.set("c/b", {"n": 2})
    ev = rec.wait_count(2)[1]
    assert kinds(ev) == [("added", "b")]
    assert ids(ev.docs) == ["a", "b"]

    db.update("c/a", {"n": 10})
    ev = rec.wait_count(3)[2]
    assert kinds(ev) == [("modified", "a")]
    assert ev.changes[0].document.to_dict() == {"n": 10}
    assert ids(ev.docs) == ["a", "b"]

    db.delete("c/b")
    ev = rec.wait_count(4)[3]
    assert kinds(ev) == [("removed", "b")]
    assert ev.changes[0].new_index == -1
    assert ids(ev.docs) == ["a"]

    db.set("other/x", {"n": 1})
    db.set("c/a/sub/y", {"n": 1})
    db.set("c/z", {"n": 1})
    rec.wait(lambda events: ids(events[-1].docs) == ["a", "z"], "z added")
    assert rec.changes() == [
        ("added", "b"),
        ("modified", "a"),
        ("removed", "b"),
        ("added", "z"),
    ]


def test_query_listener_enter_leave_and_modify(db: Database, listen: Listen) -> None:
    seed(db, "c", {"a": {"n": 5}, "b": {"n": 1}, "c": {"n": 10}})
    q = db.collection("c").where("n", ">=", 5).order_by("n")
    rec, _ = listen.query(q)
    [initial] = rec.wait_count(1)
    assert ids(initial.docs) == ["a", "c"]

    db.update("c/b", {"n": 7})  # enters the result set
    ev = rec.wait_count(2)[1]
    assert kinds(ev) == [("added", "b")]
    assert ids(ev.docs) == ["a", "b", "c"]

    db.update("c/c", {"n": 1})  # leaves it: "removed", although the document still exists
    ev = rec.wait_count(3)[2]
    assert kinds(ev) == [("removed", "c")]
    assert ids(ev.docs) == ["a", "b"]

    db.update("c/a", {"n": 8})  # still matches, moves after "b"
    ev = rec.wait_count(4)[3]
    assert kinds(ev) == [("modified", "a")]
    assert ids(ev.docs) == ["b", "a"]

    db.update("c/c", {"n": 2})  # changes outside the result set: no event
    db.update("c/b", {"x": 1})
    ev = rec.wait_count(5)[4]
    assert kinds(ev) == [("modified", "b")]
    assert len(rec.events) == 5


def test_query_listener_docs_follow_descending_order(db: Database, listen: Listen) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 3}, "c": {"n": 2}})
    rec, _ = listen.query(db.collection("c").order_by("n", DESCENDING))
    [initial] = rec.wait_count(1)
    assert ids(initial.docs) == ["b", "c", "a"]
    db.set("c/d", {"n": 2.5})
    ev = rec.wait_count(2)[1]
    assert ids(ev.docs) == ["b", "d", "c", "a"]


def test_query_listener_with_limit(db: Database, listen: Listen) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})
    rec, _ = listen.query(db.collection("c").order_by("n").limit(2))
    [initial] = rec.wait_count(1)
    assert ids(initial.docs) == ["a", "b"]
    db.set("c/x", {"n": 0})  # pushes "b" out of the first two
    ev = rec.wait(lambda events: ids(events[-1].docs) == ["x", "a"], "x, a")[-1]
    assert sorted(kinds(ev)) == [("added", "x"), ("removed", "b")]
    db.delete("c/a")  # "b" comes back
    rec.wait(lambda events: ids(events[-1].docs) == ["x", "b"], "x, b")


def test_batch_arrives_as_one_event(db: Database, listen: Listen) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 2}})
    rec, _ = listen.query(db.collection("c"))
    rec.wait_count(1)
    batch = db.batch()
    batch.delete("c/a")
    batch.set("c/d", {"n": 4})
    batch.update("c/b", {"n": 20})
    batch.commit()
    ev = rec.wait_count(2)[1]
    assert sorted(kinds(ev)) == [("added", "d"), ("modified", "b"), ("removed", "a")]
    assert ids(ev.docs) == ["b", "d"]
    assert len(rec.events) == 2


def test_transaction_arrives_as_one_event(db: Database, listen: Listen) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 2}})
    rec, _ = listen.query(db.collection("c"))
    rec.wait_count(1)
    with db.transaction() as tx:
        a = tx.get("c/a").get("n")
        b = tx.get("c/b").get("n")
        tx.update("c/a", {"n": a - 1})
        tx.update("c/b", {"n": b + 1})
    ev = rec.wait_count(2)[1]
    assert sorted(kinds(ev)) == [("modified", "a"), ("modified", "b")]
    assert [s.get("n") for s in ev.docs] == [0, 3]


def test_nested_collection_and_collection_group_listeners(db: Database, listen: Listen) -> None:
    db.set("users/u1/tickets/t1", {"n": 1})
    nested, _ = listen.query(db.collection("users/u1/tickets"))
    group, _ = listen.query(db.collection_group("tickets").where("n", ">", 0))
    assert ids(nested.wait_count(1)[0].docs) == ["t1"]
    assert paths_of(group.wait_count(1)[0].docs) == ["users/u1/tickets/t1"]
    db.set("users/u2/tickets/t2", {"n": 2})
    db.set("tickets/t0", {"n": 3})
    group.wait(  # ordered by n: the inequality field is ordered implicitly
        lambda events: (
            paths_of(events[-1].docs)
            == ["users/u1/tickets/t1", "users/u2/tickets/t2", "tickets/t0"]
        ),
        "three tickets",
    )
    db.set("users/u1/tickets/t3", {"n": 3})
    nested.wait(lambda events: ids(events[-1].docs) == ["t1", "t3"], "t3 in u1")
    assert nested.changes() == [("added", "t3")]


def test_listener_converges_to_query_result(db: Database, listen: Listen) -> None:
    q = db.collection("c").where("n", ">=", 3).order_by("n").limit(3)
    rec, _ = listen.query(q)
    rec.wait_count(1)
    for i in range(12):
        path = f"c/d{i % 5}"
        if i % 4 == 3:
            db.delete(path)
        else:
            db.set(path, {"n": (i * 7) % 10})
    expected = db.query(q)
    rec.wait(
        lambda events: (
            [(s.path, s.to_dict()) for s in events[-1].docs]
            == [(s.path, s.to_dict()) for s in expected]
        ),
        f"docs == {paths_of(expected)}",
    )


# -- several listeners, unsubscribe, release --------------------------------------------


def test_several_listeners_on_the_same_target(db: Database, listen: Listen) -> None:
    first, _ = listen.document("c/a")
    second, _ = listen.document("c/a")
    q1, _ = listen.query(db.collection("c"))
    q2, _ = listen.query(db.collection("c"))
    for rec in (first, second, q1, q2):
        rec.wait_count(1)
    db.set("c/a", {"n": 1})
    db.set("c/a", {"n": 2})
    for rec in (first, second):
        rec.wait(lambda events: n_of(events[-1]) == 2, "n == 2")
    for rec in (q1, q2):
        rec.wait(lambda events: [s.get("n") for s in events[-1].docs] == [2], "n == 2")
    assert [n_of(e) for e in first.events] == [n_of(e) for e in second.events]


def test_unsubscribe_stops_delivery(db: Database, listen: Listen) -> None:
    doc_rec, doc_watch = listen.document("c/a")
    query_rec, query_watch = listen.query(db.collection("c"))
    doc_rec.wait_count(1)
    query_rec.wait_count(1)
    db.set("c/a", {"n": 1})
    doc_rec.wait_count(2)
    query_rec.wait_count(2)

    doc_watch.unsubscribe()
    query_watch.unsubscribe()
    delivered = (len(doc_rec.events), len(query_rec.events))

    db.set("c/a", {"n": 2})
    db.set("c/b", {"n": 2})
    # later listeners see those writes; the unsubscribed ones must not
    later_doc, _ = listen.document("c/a")
    later_doc.wait(lambda events: bool(events) and n_of(events[-1]) == 2, "n == 2")
    probe, _ = listen.document("probe/p")
    probe.wait_count(1)
    db.set("probe/p", {"n": 1})
    probe.wait_count(2)
    assert (len(doc_rec.events), len(query_rec.events)) == delivered
    doc_watch.unsubscribe()  # idempotent
    query_watch.unsubscribe()


def test_unsubscribe_leaves_other_listeners_running(db: Database, listen: Listen) -> None:
    kept, _ = listen.document("c/a")
    dropped, dropped_watch = listen.document("c/a")
    kept.wait_count(1)
    dropped.wait_count(1)
    dropped_watch.unsubscribe()
    db.set("c/a", {"n": 1})
    kept.wait_count(2)
    assert n_of(kept.last) == 1
    assert len(dropped.events) == 1


def test_unsubscribe_releases_threads(db: Database, listen: Listen) -> None:
    db.set("c/a", {"n": 1})
    before = threading.active_count()
    # warm up: machinery a backend starts with its first listener may stay until close()
    warm, warm_watch = listen.document("c/a")
    warm.wait_count(1)
    warm_watch.unsubscribe()
    try:
        wait_for(lambda: threading.active_count() <= before, timeout=2)
    except TimeoutError:
        pass  # shared threads stay: fine, but they must not grow per listener
    baseline = threading.active_count()

    recorders: list[Recorder] = []
    for i in range(6):
        if i % 2:
            rec, _ = listen.document("c/a")
        else:
            rec, _ = listen.query(db.collection("c"))
        recorders.append(rec)
    for rec in recorders:
        rec.wait_count(1)
    listen.close()
    wait_for(
        lambda: threading.active_count() <= baseline,
        timeout=EVENT_TIMEOUT,
        message=lambda: f"thread count back to {baseline} (now {threading.active_count()})",
    )
