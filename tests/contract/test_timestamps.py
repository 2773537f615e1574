"""Server timestamps, create_time and update_time."""

from __future__ import annotations

import datetime as dt

import pytest

from boiler.database import SERVER_TIMESTAMP, Database
from boiler.exceptions import ValidationError

# The emulator stores server timestamps at millisecond precision, so a value can be
# up to 1 ms before the client clock read before the write; allow clock slack.
SLACK = dt.timedelta(seconds=1)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def assert_server_time(value: object, before: dt.datetime, after: dt.datetime) -> None:
    assert isinstance(value, dt.datetime), repr(value)
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
    assert before - SLACK <= value <= after + SLACK


def test_server_timestamp_top_level_and_nested(db: Database) -> None:
    before = now()
    result = db.set("c/a", {"t": SERVER_TIMESTAMP, "m": {"t": SERVER_TIMESTAMP, "l": [1]}})
    after = now()
    snap = db.get("c/a")
    data = snap.to_dict()
    assert data is not None
    assert_server_time(data["t"], before, after)
    assert data["m"]["t"] == data["t"]  # one write, one time
    assert data["m"]["l"] == [1]
    assert data["t"] <= result.update_time


def test_server_timestamp_in_update_merge_and_create(db: Database) -> None:
    before = now()
    db.create("c/a", {"created": SERVER_TIMESTAMP})
    db.update("c/a", {"m.updated": SERVER_TIMESTAMP})
    db.set("c/a", {"m": {"merged": SERVER_TIMESTAMP}}, merge=True)
    after = now()
    snap = db.get("c/a")
    created, updated, merged = (snap.get(k) for k in ("created", "m.updated", "m.merged"))
    for value in (created, updated, merged):
        assert_server_time(value, before, after)
    assert created <= updated <= merged
    assert set(snap.to_dict() or {}) == {"created", "m"}


def test_server_timestamp_is_one_time_per_batch(db: Database) -> None:
    batch = db.batch()
    batch.set("c/a", {"t": SERVER_TIMESTAMP})
    batch.set("c/b", {"t": SERVER_TIMESTAMP})
    batch.commit()
    a, b = db.get_all(["c/a", "c/b"])
    assert isinstance(a.get("t"), dt.datetime)
    assert a.get("t") == b.get("t")


def test_server_timestamp_in_transaction(db: Database) -> None:
    before = now()
    with db.transaction() as tx:
        tx.set("c/a", {"t": SERVER_TIMESTAMP})
    assert_server_time(db.get("c/a").get("t"), before, now())


def test_server_timestamp_inside_a_list_is_rejected(db: Database) -> None:
    with pytest.raises(ValidationError, match="stamps|SERVER_TIMESTAMP"):
        db.set("c/a", {"stamps": [SERVER_TIMESTAMP]})
    assert not db.get("c/a").exists


def test_write_result_and_snapshot_times(db: Database) -> None:
    before = now()
    result = db.set("c/a", {"n": 1})
    after = now()
    snap = db.get("c/a")
    assert isinstance(result.update_time, dt.datetime)
    assert result.update_time.tzinfo is not None
    assert snap.update_time == result.update_time
    assert snap.create_time == snap.update_time  # first write creates
    assert before - SLACK <= snap.update_time <= after + SLACK


def test_create_time_stays_update_time_grows(db: Database) -> None:
    db.set("c/a", {"n": 0})
    first = db.get("c/a")
    times = [first.update_time]
    for n in range(1, 8):
        if n % 3 == 0:
            result = db.set("c/a", {"n": n}, merge=True)
        elif n % 3 == 1:
            result = db.update("c/a", {"n": n})
        else:
            result = db.set("c/a", {"n": n})
        times.append(result.update_time)
    last = db.get("c/a")
    assert last.create_time == first.create_time
    assert last.update_time == times[-1]
    assert all(a < b for a, b in zip(times, times[1:], strict=False)), times


def test_update_times_increase_across_documents(db: Database) -> None:
    times = [db.set(f"c/d{i}", {"n": i}).update_time for i in range(5)]
    assert all(a < b for a, b in zip(times, times[1:], strict=False)), times


def test_write_that_changes_nothing_keeps_update_time(db: Database) -> None:
    first = db.set("c/a", {"n": 1, "m": {"k": [1, 2]}})
    again = db.set("c/a", {"n": 1, "m": {"k": [1, 2]}})
    same = db.update("c/a", {"m.k": [1, 2]})
    assert again.update_time == first.update_time
    assert same.update_time == first.update_time
    assert db.get("c/a").update_time == first.update_time
    changed = db.update("c/a", {"n": 2})
    assert changed.update_time > first.update_time


def test_server_timestamp_always_changes_the_document(db: Database) -> None:
    first = db.set("c/a", {"t": SERVER_TIMESTAMP})
    second = db.set("c/a", {"t": SERVER_TIMESTAMP})
    assert second.update_time > first.update_time
    assert db.get("c/a").get("t") >= first.update_time - SLACK


def test_recreated_document_gets_new_create_time(db: Database) -> None:
    db.set("c/a", {"n": 1})
    first = db.get("c/a")
    db.delete("c/a")
    db.set("c/a", {"n": 1})
    second = db.get("c/a")
    assert first.create_time is not None and second.create_time is not None
    assert second.create_time > first.create_time
    assert second.create_time == second.update_time
