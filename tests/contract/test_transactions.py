"""Transactions: atomic, isolated (serializable), retried by run_transaction."""

from __future__ import annotations

import threading

import pytest

from boiler.database import Database, Transaction
from boiler.exceptions import (
    AlreadyExists,
    InvalidTransaction,
    NotFound,
    TransactionConflict,
)

from .conftest import ids, seed


class Boom(Exception):
    pass


def test_transaction_commits_all_writes(db: Database) -> None:
    seed(db, "c", {"upd": {"n": 1, "keep": True}, "del": {"n": 2}})
    with db.transaction() as tx:
        assert isinstance(tx, Transaction)
        tx.set("c/new", {"n": 3})
        tx.create("c/created", {"n": 4})
        tx.update("c/upd", {"n": 10, "m.k": 1})
        tx.delete("c/del")
        tx.set("c/upd2", {"x": 1}, merge=True)
    assert db.get("c/new").to_dict() == {"n": 3}
    assert db.get("c/created").to_dict() == {"n": 4}
    assert db.get("c/upd").to_dict() == {"n": 10, "keep": True, "m": {"k": 1}}
    assert not db.get("c/del").exists
    assert db.get("c/upd2").to_dict() == {"x": 1}


def test_writes_are_invisible_until_commit(db: Database) -> None:
    with db.transaction() as tx:
        tx.set("c/a", {"n": 1})
        assert not db.get("c/a").exists
    assert db.get("c/a").exists


def test_all_writes_of_a_transaction_share_one_update_time(db: Database) -> None:
    with db.transaction() as tx:
        tx.set("c/a", {"n": 1})
        tx.set("c/b", {"n": 2})
    a, b = db.get_all(["c/a", "c/b"])
    assert a.update_time is not None
    assert a.update_time == b.update_time


def test_transaction_reads(db: Database) -> None:
    seed(db, "c", {"a": {"n": 1}, "b": {"n": 2}, "c": {"n": 3}})
    with db.transaction() as tx:
        assert tx.get("c/a").to_dict() == {"n": 1}
        assert not tx.get("c/missing").exists
        snaps = tx.get_all(["c/c", "c/missing", "c/a"])
        assert [s.path for s in snaps] == ["c/c", "c/missing", "c/a"]
        assert [s.exists for s in snaps] == [True, False, True]
        assert ids(tx.query(db.collection("c").where("n", ">=", 2))) == ["b", "c"]
        total = sum(s.get("n") for s in tx.query(db.collection("c")))
        tx.set("c/total", {"n": total})
    assert db.get("c/total").to_dict() == {"n": 6}


def test_exception_inside_rolls_back_and_propagates(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(Boom):
        with db.transaction() as tx:
            tx.get("c/a")
            tx.set("c/a", {"n": 2})
            tx.set("c/b", {"n": 2})
            raise Boom()
    assert db.get("c/a").to_dict() == {"n": 1}
    assert not db.get("c/b").exists


def test_read_after_write_is_invalid(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(InvalidTransaction):
        with db.transaction() as tx:
            tx.set("c/b", {"n": 1})
            tx.get("c/a")
    assert not db.get("c/b").exists
    with pytest.raises(InvalidTransaction):
        with db.transaction() as tx:
            tx.update("c/a", {"n": 2})
            tx.query(db.collection("c"))
    assert db.get("c/a").to_dict() == {"n": 1}


def test_read_only_transaction_reads_but_rejects_writes(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with db.transaction(read_only=True) as tx:
        assert tx.read_only is True
        assert tx.get("c/a").get("n") == 1
        assert ids(tx.query(db.collection("c"))) == ["a"]
    with pytest.raises(InvalidTransaction, match="read.only"):
        with db.transaction(read_only=True) as tx:
            tx.get("c/a")
            tx.set("c/a", {"n": 2})
    assert db.get("c/a").to_dict() == {"n": 1}


def test_use_after_commit_is_invalid(db: Database) -> None:
    with db.transaction() as tx:
        tx.set("c/a", {"n": 1})
    with pytest.raises(InvalidTransaction):
        tx.set("c/b", {"n": 2})
    with pytest.raises(InvalidTransaction):
        tx.get("c/a")
    assert not db.get("c/b").exists


def test_failing_update_writes_nothing(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(NotFound, match="c/missing"):
        with db.transaction() as tx:
            tx.set("c/a", {"n": 2})
            tx.set("c/b", {"n": 2})
            tx.update("c/missing", {"n": 2})
    assert db.get("c/a").to_dict() == {"n": 1}
    assert not db.get("c/b").exists
    assert not db.get("c/missing").exists


def test_failing_create_writes_nothing(db: Database) -> None:
    db.set("c/a", {"n": 1})
    with pytest.raises(AlreadyExists, match="c/a"):
        with db.transaction() as tx:
            tx.set("c/b", {"n": 2})
            tx.create("c/a", {"n": 2})
    assert db.get("c/a").to_dict() == {"n": 1}
    assert not db.get("c/b").exists


def test_run_transaction_returns_result(db: Database) -> None:
    db.set("c/a", {"n": 41})

    def bump(tx: Transaction) -> int:
        n = tx.get("c/a").get("n") + 1
        tx.update("c/a", {"n": n})
        return n

    assert db.run_transaction(bump) == 42
    assert db.get("c/a").get("n") == 42


def test_run_transaction_does_not_retry_other_errors(db: Database) -> None:
    calls: list[int] = []

    def fail(tx: Transaction) -> None:
        calls.append(1)
        tx.get("c/a")
        tx.set("c/a", {"n": 1})
        raise Boom()

    with pytest.raises(Boom):
        db.run_transaction(fail)
    assert calls == [1]
    assert not db.get("c/a").exists


def test_concurrent_write_to_a_read_document_is_never_lost(db: Database) -> None:
    """A plain write lands while a transaction that read the same document is open.

    Serializable outcomes only: either the transaction commits first and the
    write follows (n == 100), or the write goes first, the transaction
    conflicts and run_transaction retries it on fresh data (n == 101). A
    backend may also make the write wait for the transaction (the emulator
    does). n == 1 would be a lost update.
    """
    db.set("acct/x", {"n": 0})
    writer_done = threading.Event()
    writer_errors: list[BaseException] = []

    def writer() -> None:
        try:
            db.set("acct/x", {"n": 100})
        except BaseException as e:
            writer_errors.append(e)
        finally:
            writer_done.set()

    seen: list[int] = []
    threads: list[threading.Thread] = []
    done_before_commit: list[bool] = []

    def fn(tx: Transaction) -> None:
        n = tx.get("acct/x").get("n")
        seen.append(n)
        if not threads:
            threads.append(threading.Thread(target=writer))
            threads[0].start()
            # returns at once if the write does not wait for us
            done_before_commit.append(writer_done.wait(timeout=0.5))
        tx.set("acct/x", {"n": n + 1})

    db.run_transaction(fn)
    threads[0].join(timeout=10)
    assert not threads[0].is_alive()
    assert writer_errors == []
    final = db.get("acct/x").get("n")
    if done_before_commit[0]:
        assert (final, seen) == (101, [0, 100])
    else:
        assert final in (100, 101)
        assert seen[0] == 0


def test_conflicting_transaction_writes_nothing(db: Database) -> None:
    """Without retries, a transaction whose read was overwritten fails whole."""
    db.set("acct/x", {"n": 0})
    writer_done = threading.Event()

    def writer() -> None:
        try:
            db.set("acct/x", {"n": 100})
        finally:
            writer_done.set()

    thread = threading.Thread(target=writer)
    conflicted = False
    try:
        with db.transaction() as tx:
            n = tx.get("acct/x").get("n")
            thread.start()
            done_before_commit = writer_done.wait(timeout=0.5)
            tx.set("acct/x", {"n": n + 1})
            tx.set("acct/log", {"n": n + 1})
    except TransactionConflict:
        conflicted = True
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert db.get("acct/x").get("n") == 100  # the plain write always survives
    if done_before_commit:
        assert conflicted
    assert db.get("acct/log").exists is not conflicted  # all or nothing


def test_contended_transactions_are_retried(db: Database) -> None:
    """Two transactions read the same counter before either writes: one must retry."""
    db.set("c/counter", {"n": 0})
    barrier = threading.Barrier(2)
    attempts: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    met = []

    def work(worker: int) -> None:
        first = True

        def inc(tx: Transaction) -> None:
            nonlocal first
            with lock:
                attempts.append(worker)
            n = tx.get("c/counter").get("n")
            if first:
                first = False
                try:
                    barrier.wait(timeout=3)  # both have read n before either writes
                    met.append(worker)
                except threading.BrokenBarrierError:
                    pass  # a backend may serialize whole transactions instead
            tx.update("c/counter", {"n": n + 1})

        try:
            db.run_transaction(inc, max_attempts=5)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert db.get("c/counter").get("n") == 2
    if len(met) == 2:
        assert len(attempts) >= 3  # both read 0: one of them had to run again


def test_counter_incremented_from_several_threads_is_exact(db: Database) -> None:
    db.set("c/counter", {"n": 0})
    workers, increments = 2, 2
    errors: list[BaseException] = []

    def inc(tx: Transaction) -> None:
        tx.update("c/counter", {"n": tx.get("c/counter").get("n") + 1})

    def work() -> None:
        try:
            for _ in range(increments):
                db.run_transaction(inc, max_attempts=10)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=25)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert db.get("c/counter").get("n") == workers * increments
