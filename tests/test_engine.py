"""The reactive engine on every backend: any dependency refreshes a live view."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boiler.database import Database, Query, open_database
from boiler.exceptions import RuntimeFailure
from boiler.runtime import Engine, LiveHandle
from boiler.store import Store
from boiler.testing import wait_for

TIMEOUT = 15.0


# -- a small domain over raw snapshots ------------------------------------------------------
def seed(db: Database) -> None:
    batch = db.batch()
    batch.set("locations/l1", {"name": "Room 1"})
    batch.set("locations/l2", {"name": "Room 2"})
    batch.set("users/u1", {"name": "Ann"})
    batch.set("users/u2", {"name": "Bob"})
    batch.set("users/u3", {"name": "Cid"})
    batch.set("tickets/t1", {"meeting": "meetings/m1", "user": "users/u1", "role": "host"})
    batch.set("tickets/t2", {"meeting": "meetings/m1", "user": "users/u2", "role": "guest"})
    batch.set("tickets/t3", {"meeting": "meetings/m2", "user": "users/u3", "role": "guest"})
    batch.set(
        "meetings/m1",
        {"title": "Standup", "location": "locations/l1", "tickets": ["tickets/t1", "tickets/t2"]},
    )
    batch.commit()


def meeting_summary(store: Store, meeting: str = "meetings/m1") -> dict[str, Any] | None:
    """The meeting, its location, every listed ticket and each ticket's user."""
    m = store.get(meeting)
    if not m.exists:
        return None
    location = store.get(m.get("location")) if m.get("location") else None
    tickets = [t for t in store.get_all(m.get("tickets", [])) if t.exists]
    users = {u.path: u for u in store.get_all([t.get("user") for t in tickets if t.get("user")])}
    return {
        "title": m.get("title"),
        "location": location.get("name") if location is not None else None,
        "attendees": [
            (t.id, t.get("role"), users[t.get("user")].get("name") if t.get("user") else None)
            for t in tickets
        ],
    }


TICKETS_OF_M1 = Query("tickets").where("meeting", "==", "meetings/m1")


def tickets_of_m1(store: Store) -> list[tuple[str, Any, Any]]:
    """A query dependency, then the user each result points to."""
    tickets = store.query(TICKETS_OF_M1)
    users = {u.path: u for u in store.get_all([t.get("user") for t in tickets])}
    return sorted((t.id, t.get("role"), users[t.get("user")].get("name")) for t in tickets)


def from_scratch(db: Database, compute: Callable[[Store], Any]) -> Any:
    with db.transaction(read_only=True) as tx:
        return compute(Store(tx))


class Recorder:
    """Collects ``on_result`` calls."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: list[tuple[Any, Any]] = []

    def __call__(self, result: Any, version: Any) -> None:
        with self.lock:
            self.results.append((result, version))

    @property
    def last(self) -> Any:
        with self.lock:
            return self.results[-1][0] if self.results else None

    def wait(self, predicate: Callable[[Any], bool], what: str = "result") -> Any:
        return wait_for(
            lambda: self.results and predicate(self.last),
            timeout=TIMEOUT,
            message=lambda: f"{what}; last result {self.last!r}",
        )


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    eng = Engine(db, workers=4, retry_base=0.02, retry_max=0.2).start()
    try:
        yield eng
    finally:
        eng.stop(raise_errors=False)
        assert eng.watch_count == 0
        assert not engine_threads()


def engine_threads() -> list[threading.Thread]:
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith(("boiler-engine", "boiler-writer", "boiler-docwatch"))
    ]


def settle(engine: Engine, events_before: int, count: int = 1) -> None:
    """Wait until ``count`` more listener events were processed and the engine is idle."""
    wait_for(lambda: engine.stats["events"] >= events_before + count, timeout=TIMEOUT)
    assert engine.wait_idle(TIMEOUT)


def live(engine: Engine, compute: Callable[[Store], Any], key: Any) -> tuple[LiveHandle, Recorder]:
    rec = Recorder()
    handle = engine.live(compute, rec, key=key)
    assert handle.wait_built(TIMEOUT)
    return handle, rec


# -- freshness ----------------------------------------------------------------------------------------
def test_non_root_dependencies_refresh(db: Database, engine: Engine) -> None:
    seed(db)
    handle, rec = live(engine, meeting_summary, "summary")
    assert rec.last == from_scratch(db, meeting_summary)
    assert len(rec.results) == 1

    db.update("users/u2", {"name": "Bobby"})  # a user behind a ticket
    rec.wait(lambda r: ("t2", "guest", "Bobby") in r["attendees"], "user change")
    db.update("tickets/t1", {"role": "chair"})  # a ticket
    rec.wait(lambda r: ("t1", "chair", "Ann") in r["attendees"], "ticket change")
    db.update("locations/l1", {"name": "Hall"})  # the location
    rec.wait(lambda r: r["location"] == "Hall", "location change")
    db.update("meetings/m1", {"title": "Retro"})  # the root
    rec.wait(lambda r: r["title"] == "Retro", "root change")
    assert rec.last == from_scratch(db, meeting_summary)
    assert rec.results[-1][1] == handle.version


def test_dependencies_follow_references(db: Database, engine: Engine) -> None:
    seed(db)
    handle, rec = live(engine, meeting_summary, "summary")
    # t3 joins the meeting, t2 leaves it: t3 and u3 become dependencies, t2 and u2 stop
    db.update("meetings/m1", {"tickets": ["tickets/t1", "tickets/t3"]})
    rec.wait(lambda r: [a[0] for a in r["attendees"]] == ["t1", "t3"], "new ticket list")
    deps = handle.dependencies
    assert deps is not None and "users/u3" in deps.documents and "tickets/t2" not in deps.documents
    db.update("users/u3", {"name": "Cyd"})
    rec.wait(lambda r: ("t3", "guest", "Cyd") in r["attendees"], "new dependency change")

    assert engine.wait_idle(TIMEOUT)
    builds, emits = handle.builds, handle.emits
    before = engine.stats["events"]
    db.update("tickets/t2", {"role": "gone"})  # no longer referenced
    db.update("users/u2", {"name": "nobody cares"})
    if engine.document_watches:  # not watched any more: no event comes at all
        watched = engine.watched_documents()
        assert "users/u3" in watched and not {"tickets/t2", "users/u2"} & watched
        assert engine.wait_idle(TIMEOUT)
    else:
        settle(engine, before, 2)
    assert (handle.builds, handle.emits) == (builds, emits)

    db.update("locations/l2", {"name": "Room 2b"})
    db.update("meetings/m1", {"location": "locations/l2"})  # location switched
    rec.wait(lambda r: r["location"] == "Room 2b", "new location")
    db.delete("locations/l2")
    rec.wait(lambda r: r["location"] is None, "deleted location")
    assert rec.last == from_scratch(db, meeting_summary)


def test_missing_document_dependency(db: Database, engine: Engine) -> None:
    _, rec = live(engine, meeting_summary, "summary")
    assert rec.last is None
    seed(db)
    rec.wait(lambda r: r is not None and len(r["attendees"]) == 2, "root created")
    db.delete("meetings/m1")
    rec.wait(lambda r: r is None, "root deleted")


def test_query_dependency(db: Database, engine: Engine) -> None:
    seed(db)
    handle, rec = live(engine, tickets_of_m1, "tickets")
    assert rec.last == [("t1", "host", "Ann"), ("t2", "guest", "Bob")]

    db.set("tickets/t4", {"meeting": "meetings/m1", "user": "users/u3", "role": "new"})
    rec.wait(lambda r: ("t4", "new", "Cid") in r, "added match")
    db.update("tickets/t4", {"role": "newer"})
    rec.wait(lambda r: ("t4", "newer", "Cid") in r, "modified match")
    db.update("users/u3", {"name": "Cyd"})  # a document read through a query result
    rec.wait(lambda r: ("t4", "newer", "Cyd") in r, "user of a match")
    db.update("tickets/t1", {"meeting": "meetings/m2"})  # leaves the result
    rec.wait(lambda r: [x[0] for x in r] == ["t2", "t4"], "match moved away")
    db.delete("tickets/t4")
    rec.wait(lambda r: [x[0] for x in r] == ["t2"], "match deleted")

    assert engine.wait_idle(TIMEOUT)
    builds = handle.builds
    before = engine.stats["events"]
    db.update("tickets/t3", {"role": "other meeting"})  # unrelated document
    db.set("tickets/t9", {"meeting": "meetings/m3", "user": "users/u1"})
    settle(engine, before, 2)
    assert handle.builds == builds
    assert rec.last == from_scratch(db, tickets_of_m1)


def test_limited_query_dependency(db: Database, engine: Engine) -> None:
    seed(db)
    top = Query("users").order_by("name").limit(2)

    def first_two(store: Store) -> list[str]:
        return [s.get("name") for s in store.query(top)]

    handle, rec = live(engine, first_two, "top")
    assert rec.last == ["Ann", "Bob"]
    assert engine.wait_idle(TIMEOUT)
    builds = handle.builds
    before = engine.stats["events"]
    db.update("users/u3", {"name": "Dan"})  # outside the limit: no rebuild
    settle(engine, before)
    assert handle.builds == builds
    db.update("users/u3", {"name": "Al"})
    rec.wait(lambda r: r == ["Al", "Ann"], "enters the limit")


def test_nested_collections_share_one_group_watch(db: Database, engine: Engine) -> None:
    for uid in ("u1", "u2", "u3"):
        db.set(f"users/{uid}/sessions/s1", {"n": 0})

    def session(uid: str) -> Callable[[Store], Any]:
        return lambda store: store.get(f"users/{uid}/sessions/s1").get("n")

    recs = {uid: live(engine, session(uid), uid)[1] for uid in ("u1", "u2", "u3")}
    assert engine.watch_count == 1
    db.update("users/u2/sessions/s1", {"n": 5})
    recs["u2"].wait(lambda r: r == 5, "nested change")
    assert [r.last for r in recs.values()] == [0, 5, 0]


# -- consistency, coalescing ------------------------------------------------------------------
def test_transaction_changes_never_show_half_applied(db: Database, engine: Engine) -> None:
    db.set("left/x", {"counter": 0})
    db.set("right/y", {"counter": 0})

    def pair(store: Store) -> tuple[int, int]:
        x, y = store.get_all(["left/x", "right/y"])
        return x.get("counter"), y.get("counter")

    _, rec = live(engine, pair, "pair")
    rounds = 30 if db.backend_name == "embedded" else 12
    for i in range(1, rounds + 1):

        def bump(tx: Any, i: int = i) -> None:
            tx.get_all(["left/x", "right/y"])
            tx.update("left/x", {"counter": i})
            tx.update("right/y", {"counter": i})

        db.run_transaction(bump)
    rec.wait(lambda r: r == (rounds, rounds), "final counters")
    with rec.lock:
        seen = [r for r, _ in rec.results]
    assert all(a == b for a, b in seen), seen
    versions = [v for _, v in rec.results]
    assert versions == sorted(versions)


def test_bursts_coalesce(db: Database, engine: Engine) -> None:
    seed(db)
    gate = threading.Event()
    hold = threading.Event()

    def gated(store: Store) -> Any:
        result = meeting_summary(store)
        if hold.is_set():
            hold.clear()
            assert gate.wait(TIMEOUT)  # keep this build busy while the burst lands
        return result

    handle, rec = live(engine, gated, "summary")
    assert engine.wait_idle(TIMEOUT)
    builds = handle.builds
    hold.set()
    last = None
    for i in range(100):
        last = db.update("users/u1", {"name": f"Ann {i}"})
    assert last is not None
    wait_for(
        lambda: (s := engine.latest("users/u1")) is not None and s.update_time == last.update_time,
        timeout=TIMEOUT,
    )
    gate.set()
    rec.wait(lambda r: ("t1", "host", "Ann 99") in r["attendees"], "last write")
    assert engine.wait_idle(TIMEOUT)
    assert rec.last == from_scratch(db, meeting_summary)
    # the busy build, then ONE more for everything that arrived meanwhile
    assert handle.builds - builds <= 3, handle.builds - builds


def test_rebuild_prefetches_in_one_round_trip(db: Database, engine: Engine) -> None:
    seed(db)
    handle, rec = live(engine, meeting_summary, "summary")
    reads = engine.stats["reads"]
    db.update("users/u1", {"name": "Ann 2"})
    rec.wait(lambda r: ("t1", "host", "Ann 2") in r["attendees"], "rebuild")
    assert engine.wait_idle(TIMEOUT)
    assert engine.stats["reads"] - reads == handle.builds - 1  # one get_all per rebuild


# -- registration, disposal, watches ---------------------------------------------------------
def test_live_is_idempotent_and_refresh_forces_a_build(db: Database, engine: Engine) -> None:
    seed(db)
    handle, rec = live(engine, meeting_summary, ("summary", "m1"))
    assert engine.live(meeting_summary, Recorder(), key=("summary", "m1")) is handle
    assert engine.handle(("summary", "m1")) is handle
    handle.refresh()
    wait_for(lambda: len(rec.results) == 2, timeout=TIMEOUT)
    handle.dispose()
    handle.dispose()
    assert engine.handle(("summary", "m1")) is None and engine.watch_count == 0


def test_watch_count_does_not_grow_with_views(db: Database, engine: Engine) -> None:
    batch = db.batch()
    for i in range(10):
        for coll in ("a", "b", "c"):
            batch.set(f"{coll}/{i}", {"v": 0})
    batch.commit()

    def reader(i: int) -> Callable[[Store], Any]:
        paths = [f"a/{i % 10}", f"b/{i % 10}", f"c/{i % 10}"]
        return lambda store: tuple(s.get("v") for s in store.get_all(paths))

    recs = []
    handles = []
    for i in range(300):
        rec = Recorder()
        recs.append(rec)
        handles.append(engine.live(reader(i), rec, key=i))
    wait_for(lambda: all(h.builds for h in handles), timeout=60)
    if engine.document_watches:  # one stream, one target per document read
        assert engine.watch_count == 1
        assert engine.health()["document_targets"] == 30
    else:  # one listener per collection
        assert engine.watch_count == 3
    assert engine.health()["live_views"] == 300

    db.update("c/3", {"v": 7})
    for i in range(3, 300, 10):
        recs[i].wait(lambda r: r == (0, 0, 7), f"view {i}")
    assert engine.wait_idle(TIMEOUT)
    assert all(recs[i].last == (0, 0, 0) for i in range(300) if i % 10 != 3)

    for h in handles:
        h.dispose()
    assert engine.watch_count == 0
    assert engine.health()["live_views"] == 0


# -- failures -----------------------------------------------------------------------------------------
def test_failing_view_is_isolated_retried_and_reported(db: Database) -> None:
    seed(db)
    engine = Engine(db, workers=2, retry_base=0.01, retry_max=0.05).start()
    seen_errors: list[BaseException] = []

    def bad(store: Store) -> Any:
        store.get("users/u1")
        raise ValueError("broken getter")

    try:
        engine.live(bad, Recorder(), key="bad", on_error=seen_errors.append)
        good, rec = live(engine, meeting_summary, "good")
        wait_for(lambda: engine.stats["failures"] >= 3, timeout=TIMEOUT)  # retried
        db.update("users/u1", {"name": "Still flowing"})
        rec.wait(lambda r: ("t1", "host", "Still flowing") in r["attendees"], "good view")
        errors = engine.errors
        assert errors and all(e.key == "bad" and e.stage == "build" for e in errors)
        assert isinstance(errors[0].exception, ValueError)
        assert [e.attempt for e in errors[:3]] == [1, 2, 3]
        assert seen_errors and isinstance(seen_errors[0], ValueError)
        health = engine.health()
        assert health["error_count"] >= 3 and "broken getter" in health["last_error"]
    finally:
        with pytest.raises(RuntimeFailure) as info:
            engine.stop()
    assert "bad" in str(info.value) and "broken getter" in str(info.value)
    assert all(isinstance(e, ValueError) for e in info.value.errors)
    assert not engine_threads() and engine.watch_count == 0


def test_stop_without_raising(db: Database) -> None:
    engine = Engine(db, workers=1, retry_base=0.01).start()

    def bad(store: Store) -> Any:
        raise KeyError("nope")

    engine.live(bad, Recorder(), key="bad")
    wait_for(lambda: engine.errors, timeout=TIMEOUT)
    engine.stop(raise_errors=False)
    assert engine.errors and not engine_threads()
    engine.stop()  # idempotent once stopped


def test_failing_on_result_is_recorded(db: Database, engine: Engine) -> None:
    seed(db)
    calls = []

    def on_result(result: Any, version: Any) -> None:
        calls.append(result)
        if len(calls) == 1:
            raise RuntimeError("sink down")

    handle = engine.live(meeting_summary, on_result, key="flaky")
    wait_for(lambda: len(calls) >= 2, timeout=TIMEOUT)  # retried and delivered
    assert handle.wait_built(TIMEOUT)
    assert any(e.key == "flaky" and "sink down" in str(e) for e in engine.errors)


def test_no_leaks_after_stop(db: Database) -> None:
    seed(db)
    engine = Engine(db, workers=3).start()
    for i in range(5):
        live(engine, meeting_summary, i)
    live(engine, tickets_of_m1, "q")
    # meetings, locations, tickets, users; or the document stream + tickets (query)
    assert engine.watch_count == (2 if engine.document_watches else 4)
    engine.writer.write("views/v1", {"a": 1}, engine.handle(0).version)  # type: ignore[union-attr,arg-type]
    engine.stop()
    assert engine.watch_count == 0
    assert not engine_threads()
    assert db.get("views/v1").exists
    with pytest.raises(RuntimeError):
        engine.live(meeting_summary, Recorder(), key="late")


# -- property: convergence after any sequence of writes -----------------------------------
_names = st.sampled_from(["Ann", "Bob", "Cid", "Dee"])
_ops = st.one_of(
    st.tuples(st.just("user"), st.sampled_from(["u1", "u2"]), st.none() | _names),
    st.tuples(
        st.just("ticket"),
        st.sampled_from(["t1", "t2", "t3"]),
        st.none() | st.tuples(st.sampled_from(["m1", "m2"]), st.sampled_from(["u1", "u2"])),
    ),
    st.tuples(
        st.just("meeting"),
        st.sampled_from([None, "l1", "l2"]),
        st.lists(st.sampled_from(["t1", "t2", "t3"]), unique=True, max_size=3),
    ),
    st.tuples(st.just("location"), st.sampled_from(["l1", "l2"]), st.none() | _names),
)
PROPERTY_DOCS = [
    "users/u1", "users/u2", "tickets/t1", "tickets/t2", "tickets/t3",
    "meetings/m1", "locations/l1", "locations/l2",
]  # fmt: skip


def _apply(db: Database, op: tuple[Any, ...], tx: Any = None) -> None:
    target: Any = tx if tx is not None else db
    kind, ident, value = op
    if kind == "user":
        path, data = f"users/{ident}", None if value is None else {"name": value}
    elif kind == "location":
        path, data = f"locations/{ident}", None if value is None else {"name": value}
    elif kind == "ticket":
        path = f"tickets/{ident}"
        data = (
            None
            if value is None
            else {"meeting": f"meetings/{value[0]}", "user": f"users/{value[1]}"}
        )
    else:
        path = "meetings/m1"
        data = {"title": "M", "location": f"locations/{ident}" if ident else None}
        data["tickets"] = [f"tickets/{t}" for t in value]
    if data is None:
        target.delete(path)
    else:
        target.set(path, data)


def _first_user(store: Store) -> Any:
    return [s.get("name") for s in store.query(Query("users").order_by("name").limit(1))]


PROPERTY_VIEWS = {"summary": meeting_summary, "tickets": tickets_of_m1, "first": _first_user}


def _tickets_of_m1_tolerant(store: Store) -> Any:
    tickets = store.query(TICKETS_OF_M1)
    users = {u.path: u for u in store.get_all([t.get("user") for t in tickets])}
    return sorted((t.id, users[t.get("user")].get("name")) for t in tickets)


PROPERTY_VIEWS["tickets"] = _tickets_of_m1_tolerant


def _check_convergence(db: Database, ops: list[Any]) -> None:
    batch = db.batch()
    for path in PROPERTY_DOCS:
        batch.delete(path)
    batch.commit()
    seed(db)
    engine = Engine(db, workers=3, retry_base=0.01, retry_max=0.1).start()
    try:
        recs = {}
        for key, compute in PROPERTY_VIEWS.items():
            rec = Recorder()
            recs[key] = rec
            assert engine.live(compute, rec, key=key).wait_built(TIMEOUT)
        for op in ops:
            if op[0] == "tx":  # two changes in one transaction
                with db.transaction() as tx:
                    _apply(db, op[1], tx)
                    same_doc = op[2][:2] == op[1][:2] or op[1][0] == op[2][0] == "meeting"
                    if not same_doc:
                        _apply(db, op[2], tx)  # another document (one write per doc)
            else:
                _apply(db, op)

        def converged() -> bool:
            return all(recs[k].last == from_scratch(db, c) for k, c in PROPERTY_VIEWS.items())

        wait_for(
            converged,
            timeout=TIMEOUT,
            message=lambda: f"convergence; {[(k, r.last) for k, r in recs.items()]}",
        )
    finally:
        engine.stop(raise_errors=False)
    assert not engine.errors, engine.errors
    assert not engine_threads()


@pytest.mark.timeout(600)
def test_views_converge_after_random_writes(db: Database) -> None:
    examples = 25 if db.backend_name == "embedded" else 6
    ops = st.lists(st.one_of(_ops, st.tuples(st.just("tx"), _ops, _ops)), min_size=1, max_size=8)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(ops=ops)
    def run(ops: list[Any]) -> None:
        _check_convergence(db, ops)

    run()


def test_writer_committers_reach_the_writer(db: Database) -> None:
    assert Engine(db, writer_committers=2).writer.committers == 2
    default = Engine(db).writer.committers
    assert default == (1 if db.backend_name == "embedded" else 3)
    with pytest.raises(ValueError, match="committers must be within 1..16, got 0"):
        Engine(db, writer_committers=0)


def test_wait_idle_covers_a_change_already_committed(db: Database) -> None:
    """Once wait_idle() returns True, a change committed before the call is
    built: on the embedded store its event may still sit in the store's
    delivery queue, or be on its way from the engine's queue to a view."""
    db.set("idle/a", {"n": -1})
    seen: list[Any] = []
    engine = Engine(db).start()
    try:
        engine.live(lambda s: s.get("idle/a").get("n"), lambda r, v: seen.append(r), key="n")
        wait_for(lambda: seen == [-1], message=lambda: f"first build: {seen}")
        for n in range(40):
            db.set("idle/a", {"n": n})
            assert engine.wait_idle(15)
            if db.backend_name == "embedded":  # Firestore's events may still be on the wire
                assert seen[-1] == n, (n, seen[-3:])
        wait_for(lambda: seen[-1] == 39, message=lambda: f"last build: {seen[-3:]}")
    finally:
        engine.stop()


def test_wait_idle_from_a_listener_callback() -> None:
    """On the embedded store, a listener callback asking whether the engine is
    idle does not wait for deliveries that can only follow its own return."""
    db = open_database("embedded", path=":memory:")
    engine = Engine(db).start()
    answers: list[bool] = []
    watch = db.listen_document("idle/cb", lambda event: answers.append(engine.wait_idle(5)))
    try:
        db.set("idle/cb", {"n": 1})
        wait_for(lambda: len(answers) >= 2, message=lambda: f"callbacks: {answers}")
        assert all(answers), answers
    finally:
        watch.unsubscribe()
        engine.stop()
        db.close()
