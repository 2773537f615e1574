"""Firestore-only behaviour of :class:`boiler.database.firestore.FirestoreDatabase`.

The shared behaviour is covered by ``tests/contract``; here: error mapping,
listener robustness and clean-up, configuration, and what happens when the
emulator restarts. Everything runs against the real emulator.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from boiler.config import Config
from boiler.database import DESCENDING, ListenEvent, Precondition, Query, open_database
from boiler.database.firestore import FirestoreDatabase
from boiler.exceptions import (
    AlreadyExists,
    BoilerError,
    ConfigurationError,
    DatabaseClosed,
    FailedPrecondition,
    InvalidQuery,
    InvalidTransaction,
    NotFound,
    TransactionConflict,
    ValidationError,
)
from boiler.testing import FirestoreEmulator, free_port, wait_for

pytestmark = pytest.mark.firestore

if "firestore" not in os.environ.get("BOILER_TEST_BACKENDS", "firestore"):
    pytest.skip("BOILER_TEST_BACKENDS excludes firestore", allow_module_level=True)


def _events(db: FirestoreDatabase, target: str | Query) -> tuple[list[ListenEvent], Any]:
    events: list[ListenEvent] = []
    if isinstance(target, Query):
        watch = db.listen_query(target, events.append)
    else:
        watch = db.listen_document(target, events.append)
    wait_for(lambda: events, timeout=30, message=f"initial event of {target}")
    return events, watch


def _ids(event: ListenEvent) -> list[str]:
    return [d.id for d in event.docs]


# -- configuration ----------------------------------------------------------------------


def test_missing_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "service-account.json"
    with pytest.raises(ConfigurationError, match="service-account.json"):
        FirestoreDatabase(project="p", certificate_path=str(missing))


def test_invalid_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "cert.json"
    bad.write_text("{}")
    with pytest.raises(ConfigurationError, match="cert.json"):
        FirestoreDatabase(project="p", certificate_path=str(bad))


def _service_account_file(path: Path, project: str) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": project,
                "private_key_id": "test",
                "private_key": pem,
                "client_email": f"test@{project}.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def test_certificate_creates_a_firebase_app_released_on_close(
    firestore_emulator: FirestoreEmulator, project_id: str, tmp_path: Path
) -> None:
    import firebase_admin

    cert = _service_account_file(tmp_path / "sa.json", project_id)
    db = FirestoreDatabase(
        project=project_id, emulator_host=firestore_emulator.host, certificate_path=str(cert)
    )
    app = db.firebase_app
    assert app is not None and app.project_id == project_id
    db.set("c/a", {"n": 1})
    assert db.get("c/a").to_dict() == {"n": 1}
    db.close()
    with pytest.raises(ValueError):
        firebase_admin.get_app(app.name)


def test_certificate_alone_names_the_project(
    firestore_emulator: FirestoreEmulator, project_id: str, tmp_path: Path
) -> None:
    """A service-account file is enough (its project_id), as Config promises
    (it used to be "Firestore needs a project id, got None")."""
    cert = _service_account_file(tmp_path / "sa.json", project_id)
    config = Config(certificate_path=str(cert), emulator_host=firestore_emulator.host)
    assert config.backend == "firestore" and config.project_id is None
    db = open_database(config.backend, **config.database_options())
    try:
        assert db.project == project_id  # type: ignore[attr-defined]
        assert db.firebase_app.project_id == project_id  # type: ignore[attr-defined]
        db.set("c/a", {"n": 1})
        assert db.get("c/a").to_dict() == {"n": 1}
    finally:
        db.close()


def test_no_firebase_app_without_certificate(fdb: FirestoreDatabase) -> None:
    assert fdb.firebase_app is None


def test_emulator_host_is_not_exported_to_the_process(
    firestore_emulator: FirestoreEmulator, project_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    with FirestoreDatabase(project=project_id, emulator_host=firestore_emulator.host) as db:
        db.set("c/a", {"n": 1})
        assert db.client.project == project_id
    assert "FIRESTORE_EMULATOR_HOST" not in os.environ


def test_a_given_client_is_used_and_left_open(
    firestore_emulator: FirestoreEmulator, project_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", firestore_emulator.host)
    client = firestore.Client(project=project_id, credentials=AnonymousCredentials())
    db = FirestoreDatabase(project=project_id, client=client)
    db.set("c/a", {"n": 1})
    db.close()
    assert client.document("c/a").get().to_dict() == {"n": 1}
    client.close()


def test_unreachable_emulator_fails_with_a_clear_error_in_bounded_time(project_id: str) -> None:
    db = FirestoreDatabase(
        project=project_id, emulator_host=f"127.0.0.1:{free_port()}", request_timeout=1.0
    )
    started = time.monotonic()
    with pytest.raises(BoilerError, match="c/a") as info:
        db.get("c/a")
    assert time.monotonic() - started < 10
    assert isinstance(info.value.__cause__, gexc.GoogleAPICallError | gexc.RetryError)
    db.close()


# -- error mapping ------------------------------------------------------------------------


def test_library_errors_are_mapped_and_chained(fdb: FirestoreDatabase) -> None:
    first = fdb.set("c/a", {"n": 1})
    fdb.set("c/a", {"n": 2})

    with pytest.raises(AlreadyExists, match="c/a") as exists:
        fdb.create("c/a", {"n": 3})
    assert isinstance(exists.value.__cause__, gexc.AlreadyExists)
    assert exists.value.path == "c/a"

    with pytest.raises(NotFound, match="c/missing") as missing:
        fdb.update("c/missing", {"n": 1})
    assert isinstance(missing.value.__cause__, gexc.NotFound)
    assert missing.value.path == "c/missing"

    with pytest.raises(FailedPrecondition, match="c/a") as stale:
        fdb.update("c/a", {"n": 9}, precondition=Precondition(update_time=first.update_time))
    assert isinstance(stale.value.__cause__, gexc.FailedPrecondition)

    with pytest.raises(InvalidQuery, match="NOT_EQUAL") as query:
        fdb.query(Query("c").where("a", "!=", 1).where("b", "!=", 2))
    assert isinstance(query.value.__cause__, gexc.InvalidArgument)

    with pytest.raises(ValidationError, match="c/a"):
        fdb.update("c/a", {})
    assert fdb.get("c/a").to_dict() == {"n": 2}


def test_batch_errors_name_the_failing_document(fdb: FirestoreDatabase) -> None:
    fdb.set("c/a", {"n": 1})
    batch = fdb.batch().set("c/b", {"n": 1}).create("c/a", {"n": 2}).update("c/x", {"n": 1})
    with pytest.raises((AlreadyExists, NotFound)) as info:
        batch.commit()
    assert isinstance(info.value, BoilerError)
    assert not fdb.get("c/b").exists


def test_read_after_write_in_a_transaction(fdb: FirestoreDatabase) -> None:
    with pytest.raises(InvalidTransaction, match="before"):
        with fdb.transaction() as tx:
            tx.set("c/a", {"n": 1})
            tx.get("c/b")
    assert not fdb.get("c/a").exists


def test_write_in_a_read_only_transaction(fdb: FirestoreDatabase) -> None:
    with pytest.raises(InvalidTransaction, match="read-only"):
        with fdb.transaction(read_only=True) as tx:
            tx.get("c/a")
            tx.set("c/a", {"n": 1})
    assert not fdb.get("c/a").exists


def test_lock_timeout_is_a_transaction_conflict_and_writes_nothing(fdb: FirestoreDatabase) -> None:
    """The emulator locks pessimistically: a transaction whose commit needs a
    document another open transaction has read waits ~2 s, then is ABORTED."""
    fdb.set("c/a", {"n": 0})
    with fdb.transaction() as outer:
        assert outer.get("c/a").get("n") == 0
        with pytest.raises(TransactionConflict) as info:
            with fdb.transaction() as inner:
                inner.get("c/a")
                inner.set("c/a", {"n": 1})
                inner.set("c/b", {"n": 1})
        assert isinstance(info.value.__cause__, gexc.Aborted | gexc.Conflict)
        outer.set("c/a", {"n": 2})
    assert fdb.get("c/a").get("n") == 2
    assert not fdb.get("c/b").exists


# -- data conversion ------------------------------------------------------------------------


def test_document_references_are_read_as_paths(fdb: FirestoreDatabase) -> None:
    ref = fdb.client.document("users/u1")
    fdb.set("c/a", {"user": ref, "nested": {"refs": [ref, {"r": ref}]}})
    assert fdb.get("c/a").to_dict() == {
        "user": "users/u1",
        "nested": {"refs": ["users/u1", {"r": "users/u1"}]},
    }


def test_update_time_round_trips_as_an_exact_precondition(fdb: FirestoreDatabase) -> None:
    fdb.set("c/a", {"n": 1})
    snap = fdb.get("c/a")
    fdb.update("c/a", {"n": 2}, precondition=Precondition(update_time=snap.update_time))
    fdb.delete("c/a", precondition=Precondition(update_time=fdb.get("c/a").update_time))
    assert not fdb.get("c/a").exists


# -- listeners --------------------------------------------------------------------------------


def test_listener_survives_a_callback_exception(
    fdb: FirestoreDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[ListenEvent] = []

    def flaky(event: ListenEvent) -> None:
        seen.append(event)
        if len(seen) <= 2:
            raise RuntimeError(f"boom {len(seen)}")

    caplog.set_level(logging.ERROR, logger="boiler.database.firestore")
    watch = fdb.listen_document("c/a", flaky)
    wait_for(lambda: seen, message="initial event")
    fdb.set("c/a", {"n": 1})
    wait_for(lambda: len(seen) >= 2, message="second event")
    fdb.set("c/a", {"n": 2})
    wait_for(lambda: len(seen) >= 3, message="event after two failing callbacks")
    assert seen[-1].docs[0].get("n") == 2
    assert [str(e) for e in fdb.listener_errors] == ["boom 1", "boom 2"]
    assert "c/a" in (fdb.listener_errors[0].__notes__[0])
    assert any("c/a" in r.getMessage() for r in caplog.records)
    watch.unsubscribe()


def test_a_listener_the_server_rejects_is_reported(fdb: FirestoreDatabase) -> None:
    """The library only logs a watch the server ends; we record it and mark it inactive."""
    events: list[ListenEvent] = []
    watch = fdb.listen_query(Query("c").where("a", "!=", 1).where("b", "!=", 2), events.append)
    wait_for(lambda: fdb.listener_errors, message="the rejected watch to be reported")
    error = fdb.listener_errors[0]
    assert isinstance(error, InvalidQuery)
    assert "a != 1" in str(error) and "NOT_EQUAL" in str(error)
    assert not watch.active and events == []
    watch.unsubscribe()
    assert fdb.open_watches == 0


def test_listener_errors_are_bounded(fdb: FirestoreDatabase) -> None:
    from boiler.database import firestore as fs_module

    for i in range(fs_module.MAX_LISTENER_ERRORS + 5):
        fdb._record_listener_error("test", RuntimeError(str(i)))
    assert len(fdb.listener_errors) == fs_module.MAX_LISTENER_ERRORS
    assert str(fdb.listener_errors[-1]) == str(fs_module.MAX_LISTENER_ERRORS + 4)


def _watch_threads() -> int:
    return sum(1 for t in threading.enumerate() if t is not threading.main_thread())


def test_close_releases_every_watch_and_its_threads(
    firestore_emulator: FirestoreEmulator, project_id: str
) -> None:
    before = _watch_threads()
    db = FirestoreDatabase(project=project_id, emulator_host=firestore_emulator.host)
    watches = [_events(db, f"c/d{i}")[1] for i in range(3)]
    _events(db, Query("c"))
    assert db.open_watches == 4
    assert _watch_threads() >= before + 4
    db.close()
    db.close()  # idempotent
    assert db.open_watches == 0
    assert all(not w.active for w in watches)
    wait_for(lambda: _watch_threads() <= before, message="watch threads to end")
    with pytest.raises(DatabaseClosed):
        db.get("c/d0")
    with pytest.raises(DatabaseClosed):
        db.listen_document("c/d0", lambda e: None)


def test_unsubscribe_releases_threads_and_stops_events(fdb: FirestoreDatabase) -> None:
    before = _watch_threads()
    events, watch = _events(fdb, "c/a")
    assert _watch_threads() > before
    watch.unsubscribe()
    watch.unsubscribe()
    assert fdb.open_watches == 0
    wait_for(lambda: _watch_threads() <= before, message="watch threads to end")
    fdb.set("c/a", {"n": 1})
    probe, probe_watch = _events(fdb, "c/a")  # a later listener sees the write ...
    assert probe[-1].docs[0].get("n") == 1
    probe_watch.unsubscribe()
    assert len(events) == 1  # ... the unsubscribed one got nothing more


def test_unsubscribe_from_inside_the_callback(fdb: FirestoreDatabase) -> None:
    events: list[ListenEvent] = []
    holder: list[Any] = []

    def once(event: ListenEvent) -> None:
        events.append(event)
        wait_for(lambda: holder, message="watch handle")
        holder[0].unsubscribe()

    holder.append(fdb.listen_document("c/a", once))
    wait_for(lambda: events and fdb.open_watches == 0, message="self-unsubscribe")
    fdb.set("c/a", {"n": 1})
    assert not fdb.listener_errors
    assert len(events) == 1


def test_descending_query_watch_keeps_query_order(fdb: FirestoreDatabase) -> None:
    """The library hands ``docs`` ascending for a DESCENDING watch; we re-sort."""
    for i in range(5):
        fdb.set(f"c/d{i}", {"n": i, "m": {"k": -i}})
    events, watch = _events(fdb, Query("c").order_by("n", DESCENDING).limit(3))
    assert _ids(events[0]) == ["d4", "d3", "d2"]
    assert [(c.type, c.document.id, c.new_index) for c in events[0].changes] == [
        ("added", "d4", 0),
        ("added", "d3", 1),
        ("added", "d2", 2),
    ]
    fdb.set("c/d9", {"n": 9, "m": {"k": -9}})
    wait_for(lambda: len(events) >= 2, message="event for d9")
    assert _ids(events[-1]) == ["d9", "d4", "d3"]
    changes = [(c.type, c.document.id, c.old_index, c.new_index) for c in events[-1].changes]
    assert changes == [("removed", "d2", 2, -1), ("added", "d9", -1, 0)]
    watch.unsubscribe()


def test_nested_order_field_watch(fdb: FirestoreDatabase) -> None:
    """The library's watch comparator cannot read dotted fields (it would raise
    inside the watch thread and kill the watch)."""
    for i in range(3):
        fdb.set(f"c/d{i}", {"m": {"k": i}})
    events, watch = _events(fdb, Query("c").order_by("m.k", DESCENDING))
    assert _ids(events[0]) == ["d2", "d1", "d0"]
    fdb.update("c/d0", {"m.k": 5})
    wait_for(lambda: len(events) >= 2, message="reorder event")
    assert _ids(events[-1]) == ["d0", "d2", "d1"]
    assert [(c.type, c.old_index, c.new_index) for c in events[-1].changes] == [("modified", 2, 0)]
    assert not fdb.listener_errors
    watch.unsubscribe()


def test_limit_to_last_watch(fdb: FirestoreDatabase) -> None:
    for i in range(5):
        fdb.set(f"c/d{i}", {"n": i})
    events, watch = _events(fdb, Query("c").order_by("n").limit_to_last(2))
    assert _ids(events[0]) == ["d3", "d4"]
    fdb.set("c/d7", {"n": 7})
    wait_for(lambda: len(events) >= 2, message="event for d7")
    assert _ids(events[-1]) == ["d4", "d7"]
    watch.unsubscribe()


def test_document_listener_indexes_stay_positional(fdb: FirestoreDatabase) -> None:
    """The library's indexes are insertion counters; ours are positions."""
    events, watch = _events(fdb, "c/a")
    for n in range(3):
        fdb.set("c/a", {"n": n})
        wait_for(lambda n=n: events[-1].docs and events[-1].docs[0].get("n") == n)
    fdb.delete("c/a")
    wait_for(lambda: not events[-1].docs, message="removal")
    indexes = [(c.type, c.old_index, c.new_index) for e in events[1:] for c in e.changes]
    assert indexes == [
        ("added", -1, 0),
        ("modified", 0, 0),
        ("modified", 0, 0),
        ("removed", 0, -1),
    ]
    watch.unsubscribe()


# -- emulator restart ---------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_emulator_restart_client_and_listeners_reconnect(project_id: str) -> None:
    """Observed: the client's channel reconnects (after gRPC's reconnect backoff,
    a few seconds), watches resume on their own and resync to the new, empty
    emulator: the document is reported removed, later writes arrive normally."""
    emulator = FirestoreEmulator().start()
    db = FirestoreDatabase(project=project_id, emulator_host=emulator.host)
    try:
        events, watch = _events(db, "c/a")
        db.set("c/a", {"n": 1})
        wait_for(lambda: events[-1].docs, message="added before restart")

        emulator.restart()  # same port, empty database

        db.set("c/a", {"n": 2})  # retried until the channel reconnects
        wait_for(
            lambda: events[-1].docs and events[-1].docs[0].get("n") == 2,
            timeout=60,
            message=lambda: f"listener to see the write after restart: {events[-3:]}",
        )
        assert watch.active
        assert not db.listener_errors
        kinds = [c.type for e in events for c in e.changes]
        assert kinds[0] == "added" and kinds[-1] in ("added", "modified")
    finally:
        db.close()
        emulator.stop()
