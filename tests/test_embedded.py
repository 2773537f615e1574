"""Embedded-only behaviour: durability, atomicity on disk, concurrency and the
listener dispatcher. Backend-neutral behaviour lives in ``tests/contract``."""

from __future__ import annotations

import datetime as dt
import gc
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from boiler.database import SERVER_TIMESTAMP, ListenEvent, Query
from boiler.database.evaluate import run_query, sort_key
from boiler.database.memory import EmbeddedDatabase
from boiler.exceptions import DatabaseClosed, NotFound, TransactionConflict
from boiler.testing import wait_for

TRICKY: dict[str, Any] = {
    "int": 1,
    "float": 1.0,
    "big": 2**63 - 1,
    "neg_zero": -0.0,
    "nan": float("nan"),
    "inf": float("-inf"),
    "bool": True,
    "none": None,
    "bytes": b"\x00\xff",
    "when": dt.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=dt.UTC),
    "text": "héllo ☃",
    "nested": {"list": [1, 2.5, "x", {"deep": [b"y", False]}], "$b": "not bytes", "$t": 5},
    "dollar": {"$m": {"a": 1}},
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, float):
        return type(b) is float and math.copysign(1, a) == math.copysign(1, b) and a == b
    return type(a) is type(b) and a == b


@pytest.fixture
def db() -> Any:
    database = EmbeddedDatabase()
    yield database
    database.close()


# -- durability ------------------------------------------------------------------
def test_file_database_survives_close_and_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "store.db")
    with EmbeddedDatabase(path) as db:
        db.set("things/a", TRICKY)
        db.set("things/a/sub/b", {"n": 1})
        db.set("things/gone", {"n": 2})
        db.delete("things/gone")
        written = db.get("things/a")
        last = db.set("other/x", {"at": SERVER_TIMESTAMP}).update_time
    with EmbeddedDatabase(path) as db:
        again = db.get("things/a")
        assert _same(again.to_dict(), TRICKY)
        assert again.create_time == written.create_time
        assert again.update_time == written.update_time
        assert db.get("things/a/sub/b").to_dict() == {"n": 1}
        assert not db.get("things/gone").exists
        assert db.get("other/x").to_dict() == {"at": last}
        assert db.list_collections() == ["other", "things"]
        # Commit times keep increasing across reopen.
        assert db.set("other/y", {}).update_time > last


KILLED_WRITER = """
import sys
from boiler.database.memory import EmbeddedDatabase
db = EmbeddedDatabase(sys.argv[1])
for i in range(50):
    db.set(f"log/{i:03d}", {"i": i, "payload": "x" * 100})
batch = db.batch()
for i in range(50, 60):
    batch.set(f"log/{i:03d}", {"i": i})
batch.commit()
print("committed", flush=True)
sys.stdin.read()  # block until killed
"""


def test_committed_writes_survive_sigkill(tmp_path: Path) -> None:
    path = str(tmp_path / "killed.db")
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    with EmbeddedDatabase(path) as db:
        docs = db.query(Query("log"))
        assert [d.get("i") for d in docs] == list(range(60))


def test_failed_batch_leaves_nothing_in_memory_or_on_disk(tmp_path: Path) -> None:
    path = str(tmp_path / "atomic.db")
    with EmbeddedDatabase(path) as db:
        db.set("c/keep", {"v": 1})
        batch = db.batch().set("c/new", {"v": 1}).update("c/keep", {"v": 2})
        batch.update("c/missing", {"v": 3})
        with pytest.raises(NotFound):
            batch.commit()
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.set("c/tx", {"v": 1})
            raise RuntimeError("abort")
        assert not db.get("c/new").exists
        assert db.get("c/keep").to_dict() == {"v": 1}
    with EmbeddedDatabase(path) as db:
        assert [d.id for d in db.query(Query("c"))] == ["keep"]
        assert db.get("c/keep").to_dict() == {"v": 1}


# -- concurrency ---------------------------------------------------------------------
def test_concurrent_transactional_increments_are_exact(tmp_path: Path) -> None:
    threads, per_thread = 4, 100
    with EmbeddedDatabase(str(tmp_path / "counter.db")) as db:

        def increment(tx: Any) -> None:
            snap = tx.get("counters/c")
            tx.set("counters/c", {"n": (snap.get("n") or 0) + 1})

        def worker() -> None:
            for _ in range(per_thread):
                db.run_transaction(increment, max_attempts=1000)

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(timeout=60)
        assert db.get("counters/c").to_dict() == {"n": threads * per_thread}


def test_the_file_records_each_commit_time(tmp_path: Path) -> None:
    """Commits that only write documents store their time through a trigger
    (one statement); commits with deletes write it themselves."""
    from boiler.database._codec import to_micros
    from boiler.database._sqlite import SqliteFile

    path = str(tmp_path / "times.db")
    with EmbeddedDatabase(path) as db:
        batch = db.batch()
        batch.set("t/a", {"n": 1})
        batch.set("t/b", {"n": 2})
        written = batch.commit()[0].update_time
        stored = SqliteFile(path, read_only=True)  # the store holds the file's lock
        try:
            assert stored.last_commit() == to_micros(written)
            deleted = db.delete("t/a").update_time
            assert stored.last_commit() == to_micros(deleted)
            assert sorted(p for p, *_ in stored.load()) == ["t/b"]
        finally:
            stored.close()


def test_a_commit_with_more_values_than_one_statement_takes_is_written(tmp_path: Path) -> None:
    import sqlite3

    from boiler.database._sqlite import SqliteFile

    path = str(tmp_path / "many.db")
    stored = SqliteFile(path)
    stored._conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite < 3.32
    rows = [(f"t/{i:03d}", {"i": i}, 7, 7) for i in range(300)]  # 1,200 values
    stored.commit(rows, 7)
    stored.commit([("t/x", {"i": -1}, 8, 8)], 8)  # one statement
    stored.close()
    stored = SqliteFile(path)
    try:
        assert len(list(stored.load())) == 301 and stored.last_commit() == 8
    finally:
        stored.close()


def test_snapshot_reads_never_see_half_a_commit(db: EmbeddedDatabase) -> None:
    """Transactions read without the store's lock: each one must still see
    every commit wholly or not at all while commits keep coming."""
    stop = threading.Event()
    torn: list[tuple[Any, Any]] = []
    reads = [0]

    def write() -> None:
        for i in range(1, 400):
            batch = db.batch()
            batch.set("pair/a", {"i": i})
            batch.set("pair/b", {"i": i})
            batch.commit()
        stop.set()

    def read() -> None:
        while not stop.is_set():
            with db.transaction(read_only=True) as tx:
                a, b = tx.get_all(["pair/a", "pair/b"])
                first = tx.get("pair/a")
            if a.get("i") != b.get("i") or first.get("i") != a.get("i"):
                torn.append((a.to_dict(), b.to_dict()))
            reads[0] += 1

    readers = [threading.Thread(target=read) for _ in range(3)]
    for t in readers:
        t.start()
    write()
    for t in readers:
        t.join(timeout=30)
    assert reads[0] > 0 and torn == []
    assert db._retained == set()  # old versions released once no reader needs them


def test_conflicting_transaction_writes_nothing(db: EmbeddedDatabase) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(TransactionConflict), db.transaction() as tx:
        assert tx.get("c/a").get("n") == 1
        db.set("c/a", {"n": 2})  # a concurrent commit
        tx.set("c/b", {"copied": 1})
    assert not db.get("c/b").exists


def test_query_read_in_transaction_detects_phantoms(db: EmbeddedDatabase) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(TransactionConflict), db.transaction() as tx:
        assert len(tx.query(Query("c").where("n", ">", 0))) == 1
        db.set("c/b", {"n": 5})
        tx.set("totals/t", {"count": 1})
    assert not db.get("totals/t").exists


def test_read_only_transaction_sees_one_snapshot(db: EmbeddedDatabase) -> None:
    db.set("c/a", {"n": 1})
    db.set("c/b", {"n": 1})
    with db.transaction(read_only=True) as tx:
        assert tx.get("c/a").get("n") == 1
        db.set("c/b", {"n": 2})
        db.delete("c/a")
        db.set("c/new", {"n": 3})
        assert tx.get("c/b").get("n") == 1
        assert tx.get("c/a").exists
        assert [d.id for d in tx.query(Query("c"))] == ["a", "b"]
    assert [d.id for d in db.query(Query("c"))] == ["b", "new"]
    # Old versions are released once no transaction needs them.
    assert db._retained == set() and all(r.prev is None for r in db._docs.values())


def _versions(db: EmbeddedDatabase, path: str) -> int:
    """How many versions of ``path`` the store keeps (a deletion counts)."""
    rec, n = db._docs.get(path), 0
    while rec is not None:
        rec, n = rec.prev, n + 1
    return n


def test_old_versions_stay_bounded_while_snapshots_overlap(db: EmbeddedDatabase) -> None:
    """Read-only transactions that always overlap (the runtime's workers do)
    never let the number of open snapshots reach 0: old versions must still
    go once no open snapshot sees them, or memory grows with every write."""
    db.set("hot/d", {"i": -1})
    open_txs: list[tuple[Any, Any, int]] = []  # (context manager, transaction, value seen)
    for i in range(600):
        cm = db.transaction(read_only=True)
        tx = cm.__enter__()
        open_txs.append((cm, tx, tx.get("hot/d").get("i")))
        db.set("hot/d", {"i": i})
        db.set(f"tmp/{i}", {"i": i})
        db.delete(f"tmp/{i}")
        if i % 50 == 0:
            db.delete("hot/d")  # a deletion an open snapshot still sees through
        # the latest version and one per open snapshot, however many writes
        assert _versions(db, "hot/d") <= len(open_txs) + 1
        if len(open_txs) > 3:  # the oldest ends, after checking its snapshot
            cm, tx, seen = open_txs.pop(0)
            assert tx.get("hot/d").get("i") == seen
            cm.__exit__(None, None, None)
        # a document created and deleted after every open snapshot began is gone
        assert f"tmp/{i}" not in db._docs
    assert db._snap_times and len(db._retained) <= 1
    for cm, tx, seen in open_txs:
        assert tx.get("hot/d").get("i") == seen
        cm.__exit__(None, None, None)
    assert db._snap_times == [] and db._retained == set()
    assert _versions(db, "hot/d") == 1 and len(db._docs) == 1


def test_retained_versions_are_swept_without_a_pause_in_readers(
    db: EmbeddedDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents written once while snapshots overlap keep an old version
    until a sweep: one runs when enough of them pile up, though readers never
    all end."""
    import boiler.database.memory as memory

    monkeypatch.setattr(memory, "SWEEP_MIN", 16)
    db._sweep_at = 16
    for k in range(200):
        db.set(f"cold/{k}", {"v": 0})
    txs = [db.transaction(read_only=True) for _ in range(2)]
    first = txs[0].__enter__()
    first.get("cold/0")
    for k in range(100):  # the first snapshot sees version 0 of each
        db.set(f"cold/{k}", {"v": 1})
    second = txs[1].__enter__()
    second.get("cold/0")
    txs[0].__exit__(None, None, None)  # readers overlap: never 0 open snapshots
    for k in range(100, 200):  # the second snapshot sees version 0 of these
        db.set(f"cold/{k}", {"v": 1})
        assert len(db._retained) < 2 * 100 + 16
    kept = sum(_versions(db, f"cold/{k}") - 1 for k in range(100))
    assert kept < 40  # the first 100 lost their old versions in sweeps
    assert [d.get("v") for d in second.get_all([f"cold/{k}" for k in range(99, 102)])] == [
        1,
        0,
        0,
    ]
    txs[1].__exit__(None, None, None)
    assert db._retained == set()


@pytest.mark.parametrize("seed", range(4))
def test_snapshots_read_their_versions_under_random_interleavings(
    db: EmbeddedDatabase, seed: int
) -> None:
    """A model check of version trimming: each open transaction keeps reading
    the state as of its first read while writes, deletes and other
    transactions come and go in any order."""
    import random

    rng = random.Random(seed)
    paths_ = [f"m/{k}" for k in range(6)]
    model: dict[str, int] = {}
    open_txs: list[tuple[Any, Any, dict[str, int]]] = []
    for step in range(1500):
        op = rng.random()
        path = rng.choice(paths_)
        if op < 0.35:
            db.set(path, {"v": step})
            model[path] = step
        elif op < 0.5:
            db.delete(path)
            model.pop(path, None)
        elif op < 0.65 and len(open_txs) < 6:
            cm = db.transaction(read_only=True)
            tx = cm.__enter__()
            tx.get(path)  # takes the snapshot
            open_txs.append((cm, tx, dict(model)))
        elif op < 0.8 and open_txs:
            cm, tx, seen = open_txs.pop(rng.randrange(len(open_txs)))
            cm.__exit__(None, None, None)
        elif open_txs:
            _, tx, seen = rng.choice(open_txs)
            got = {s.id: s.get("v") for s in tx.get_all(paths_) if s.exists}
            assert got == {p.rpartition("/")[2]: v for p, v in seen.items()}, step
            queried = {s.id: s.get("v") for s in tx.query(Query("m"))}
            assert queried == got, step
        # the latest version, and one per snapshot open when the document was
        # last written (ended snapshots' versions go at its next write or sweep)
        assert all(_versions(db, p) <= 6 + 1 for p in paths_), step
    for cm, _tx, _seen in open_txs:
        cm.__exit__(None, None, None)
    assert db._retained == set()
    assert all(_versions(db, p) == (1 if p in model else 0) for p in paths_)


def test_commit_times_strictly_increase_across_threads(db: EmbeddedDatabase) -> None:
    times: list[dt.datetime] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        for i in range(200):
            t = db.set(f"c/{k}-{i}", {"i": i}).update_time
            with lock:
                times.append(t)

    workers = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(timeout=60)
    assert len(set(times)) == len(times) == 600


# -- listeners ---------------------------------------------------------------------------
def test_callback_errors_are_recorded_and_do_not_stop_listeners(
    db: EmbeddedDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[ListenEvent] = []
    other: list[ListenEvent] = []

    def failing(event: ListenEvent) -> None:
        seen.append(event)
        raise ValueError(f"boom {len(seen)}")

    with caplog.at_level(logging.ERROR, logger="boiler.database.embedded"):
        db.listen_document("c/a", failing)
        db.listen_document("c/a", other.append)
        db.set("c/a", {"n": 1})
        db.set("c/a", {"n": 2})
        wait_for(lambda: len(seen) == 3 and len(other) == 3, message="three events each")
        wait_for(lambda: len(db.listener_errors) == 3, message="three recorded errors")
    assert [str(e) for e in db.listener_errors] == ["boom 1", "boom 2", "boom 3"]
    assert "document c/a" in caplog.text
    assert [e.docs[0].get("n") for e in seen[1:]] == [1, 2]


def test_listener_errors_are_bounded(db: EmbeddedDatabase) -> None:
    def failing(event: ListenEvent) -> None:
        raise ValueError("boom")

    db.listen_query(Query("c"), failing)
    for i in range(150):
        db.set(f"c/{i}", {})
    wait_for(lambda: db.get("c/149").exists and len(db.listener_errors) == 100)
    db.set("c/last", {})
    wait_for(lambda: db.listener_errors[-1] is not db.listener_errors[-2])
    assert len(db.listener_errors) == 100


def test_writes_inside_callbacks_do_not_deadlock(db: EmbeddedDatabase) -> None:
    mirrored: list[ListenEvent] = []

    def mirror(event: ListenEvent) -> None:
        for change in event.changes:
            if change.type != "removed":
                db.set(f"mirror/{change.document.id}", change.document.to_dict() or {})
            else:
                db.delete(f"mirror/{change.document.id}")

    db.listen_query(Query("src"), mirror)
    db.listen_query(Query("mirror"), mirrored.append)
    for i in range(20):
        db.set(f"src/{i}", {"i": i})
    db.delete("src/0")
    wait_for(
        lambda: len(db.query(Query("mirror"))) == 19 and not db.get("mirror/0").exists,
        message="mirror collection to catch up",
    )
    assert not db.listener_errors


def test_close_from_inside_a_callback_returns(db: EmbeddedDatabase) -> None:
    closed = threading.Event()

    def closer(event: ListenEvent) -> None:
        db.close()
        closed.set()

    db.listen_document("c/a", closer)
    wait_for(closed.is_set)
    with pytest.raises(DatabaseClosed):
        db.get("c/a")
    db.close()


def test_unsubscribe_releases_callback_and_stops_events(db: EmbeddedDatabase) -> None:
    events: list[ListenEvent] = []

    class Callback:
        def __call__(self, event: ListenEvent) -> None:
            events.append(event)

    callback = Callback()
    ref = weakref.ref(callback)
    watches = [
        db.listen_document("c/a", callback),
        db.listen_query(Query("c").where("n", ">", 0), callback),
        db.listen_query(db.collection_group("c"), callback),
    ]
    del callback
    wait_for(lambda: len(events) == 3)
    for w in watches:
        w.unsubscribe()
        w.unsubscribe()  # idempotent
    db.set("c/a", {"n": 1})
    marker: list[ListenEvent] = []
    db.listen_document("c/a", marker.append)
    wait_for(lambda: marker)  # the dispatcher ran past anything queued before
    assert len(events) == 3
    gc.collect()
    assert ref() is None
    assert not db._coll_listeners and not db._group_listeners
    assert list(db._doc_listeners) == ["c/a"]


def test_listener_sees_every_commit_in_order(db: EmbeddedDatabase) -> None:
    events: list[ListenEvent] = []
    db.listen_document("c/a", events.append)
    for i in range(100):
        db.set("c/a", {"i": i})
    db.set("c/a", {"i": 99})  # no change: no event
    db.delete("c/a")
    wait_for(lambda: len(events) == 102)
    assert [e.docs[0].get("i") for e in events[1:101]] == list(range(100))
    assert events[-1].docs == [] and events[-1].changes[0].type == "removed"
    read_times = [e.read_time for e in events]
    assert read_times == sorted(read_times)


def test_operations_after_close_raise(tmp_path: Path) -> None:
    db = EmbeddedDatabase(str(tmp_path / "closed.db"))
    db.close()
    db.close()
    for op in (
        lambda: db.get("c/a"),
        lambda: db.set("c/a", {}),
        lambda: db.query(Query("c")),
        lambda: db.listen_document("c/a", lambda e: None),
        lambda: db.batch(),
    ):
        with pytest.raises(DatabaseClosed):
            op()


# -- the pure evaluator ------------------------------------------------------------------
def test_sort_key_follows_firestore_type_order() -> None:
    ordered = [
        None,
        False,
        True,
        float("nan"),
        float("-inf"),
        -1,
        0,
        0.5,
        1,
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
        "",
        "a",
        b"",
        b"a",
        [],
        [1],
        [1, 2],
        {},
        {"a": 1},
        {"b": 0},
    ]
    assert all(sort_key(a) < sort_key(b) for a, b in zip(ordered, ordered[1:], strict=False))
    assert sort_key(1) == sort_key(1.0) and sort_key(True) != sort_key(1)


def test_run_query_works_on_plain_snapshots() -> None:
    from boiler.database import DocumentSnapshot

    snaps = [DocumentSnapshot(f"c/{i}", {"n": i % 3, "tag": ["x"] * (i % 2)}) for i in range(6)]
    q = Query("c").where("tag", "array-contains", "x").order_by("n", "DESCENDING").limit(2)
    assert [s.id for s in run_query(q, snaps)] == ["5", "1"]


def _replay(docs: list[Any], event: ListenEvent) -> list[str]:
    """Apply an event's changes, one after another, to the previous ids."""
    ids = [d.id for d in docs]
    for change in event.changes:
        if change.old_index >= 0:
            assert ids[change.old_index] == change.document.id
            del ids[change.old_index]
        if change.new_index >= 0:
            ids.insert(change.new_index, change.document.id)
    return ids


@pytest.mark.parametrize(
    "query",
    [
        Query("r"),
        Query("r").where("n", ">=", 3).order_by("n", "DESCENDING"),
        Query("r").order_by("n").limit(4),
        Query("r").where("tag", "in", ["a", "b"]).order_by("n").limit_to_last(3),
        Query("r").order_by("n").start_after(2).end_at(7).limit(3),
        Query("r").where("n", "!=", 5).limit(5),
        Query("r", all_descendants=True).order_by("tag").order_by("n", "DESCENDING").limit(6),
    ],
    ids=["all", "filter-desc", "limit", "limit-to-last", "cursors", "not-equal", "group"],
)
def test_live_query_results_track_a_full_rerun(db: EmbeddedDatabase, query: Query) -> None:
    import random

    rng = random.Random(1234)
    events: list[ListenEvent] = []
    db.listen_query(query, events.append)
    docs = [f"r/{i}" for i in range(12)] + [f"x/1/r/{i}" for i in range(4)]
    expected: list[list[tuple[str, Any]]] = [[]]
    for _step in range(300):
        batch = db.batch()
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            path = rng.choice(docs)
            if rng.random() < 0.2:
                batch.delete(path)
            else:
                data = {"n": rng.randrange(10), "tag": rng.choice("abc")}
                if rng.random() < 0.1:
                    data.pop("n")
                batch.set(path, data, merge=rng.random() < 0.3)
        batch.commit()
        result = [(d.path, d.update_time) for d in db.query(query)]
        if result != expected[-1]:
            expected.append(result)
    # Wait until every event queued so far was delivered: one dispatcher
    # thread delivers in queue order, so a later write's event comes after
    # them all. (Waiting for the final result could end early: the result may
    # return to an earlier state, same update times and all.)
    seen: list[ListenEvent] = []
    db.listen_document("sentinel/done", seen.append)
    db.set("sentinel/done", {"done": True})
    wait_for(lambda: any(e.docs for e in seen), message="listener to catch up")
    previous: list[Any] = []
    for index, event in enumerate(events):
        assert _replay(previous, event) == [d.id for d in event.docs]
        assert event.changes or index == 0, "later events are only sent on a change"
        previous = event.docs
    # One event per commit that changed the result, equal to a full re-run then.
    assert [[(d.path, d.update_time) for d in e.docs] for e in events] == expected
