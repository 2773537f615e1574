"""Context: the seed facade over an explicit AppContext."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from boiler import config, context
from boiler.context import AppContext, Context
from boiler.database import Database, open_database
from boiler.exceptions import DatabaseClosed, DatabaseLocked
from boiler.testing import FirestoreEmulator


@pytest.fixture
def clean_context() -> Iterator[None]:
    """Run with nothing installed; put back whatever was installed before."""
    previous = Context._swap(None)
    try:
        yield
    finally:
        Context.close()
        Context._swap(previous)


def _config_for(backend: str, request: pytest.FixtureRequest, project_id: str) -> config.Config:
    if backend == "embedded":
        return config.Config(app_name="demo", testing=True)
    emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
    return config.Config(app_name="demo", project_id=project_id, emulator_host=emulator.host)


def test_read_opens_the_configured_backend(
    clean_context: None, backend: str, request: pytest.FixtureRequest, project_id: str
) -> None:
    CTX = context.Context
    app = CTX.read(_config_for(backend, request, project_id))
    assert isinstance(app, AppContext)
    assert CTX.backend == backend == CTX.db.backend_name
    assert CTX.config.app_name == "demo"
    assert CTX.firebase_app is getattr(CTX.db, "firebase_app", None)
    CTX.db.set("things/t1", {"n": 1})
    assert CTX.db.get("things/t1").to_dict() == {"n": 1}


def test_embedded_has_no_firebase_app(clean_context: None) -> None:
    Context.read(config.Config(testing=True))
    assert Context.firebase_app is None


def test_read_again_closes_the_previous_database(clean_context: None) -> None:
    first = Context.read(config.Config(testing=True)).db
    second = Context.read(config.Config(testing=True)).db
    assert Context.db is second
    with pytest.raises(DatabaseClosed):
        first.get("a/b")
    Context.close()
    assert not Context.is_configured
    with pytest.raises(DatabaseClosed):
        second.get("a/b")


def test_read_the_same_embedded_file_again(clean_context: None, tmp_path: Path) -> None:
    """The embedded store holds its file exclusively: reading the same
    configuration again hands the file from the old database to the new one."""
    cfg = config.Config(database_path=str(tmp_path / "app.sqlite3"))
    first = Context.read(cfg).db
    first.set("a/b", {"n": 1})
    second = Context.read(cfg).db
    assert second is not first and Context.db is second
    assert second.get("a/b").to_dict() == {"n": 1}
    with pytest.raises(DatabaseClosed):
        first.get("a/b")
    other = open_database("embedded", path=str(tmp_path / "other.sqlite3"))
    try:  # another file held elsewhere: refused, and the current context stays
        with pytest.raises(DatabaseLocked):
            Context.read(config.Config(database_path=str(tmp_path / "other.sqlite3")))
        assert Context.db is second and second.get("a/b").exists
    finally:
        other.close()
    Context.close()


def test_use_installs_and_restores(clean_context: None, db: Database) -> None:
    outer = Context.read(config.Config(testing=True))
    with Context.use(db) as app:
        assert Context.db is db and app.db is db
        assert Context.backend == db.backend_name
    assert Context.db is outer.db
    db.get("a/b")  # not closed by the facade: the caller owns it
    Context.use(db)  # plain call installs without restoring
    assert Context.db is db


def test_use_rejects_non_databases(clean_context: None) -> None:
    with pytest.raises(TypeError, match="Database"):
        Context.use("not a db")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Config"):
        Context.read({"testing": True})  # type: ignore[arg-type]


def test_no_configuration_means_the_embedded_store(
    clean_context: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT", "BOILER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOILER_DATABASE_PATH", str(tmp_path / "default.sqlite3"))
    assert not Context.is_configured
    assert Context.db.backend_name == "embedded"
    assert Context.is_configured
    Context.db.set("a/b", {"x": 1})
    assert (tmp_path / "default.sqlite3").exists()


def test_the_ctx_fixture_installs_db(ctx_db: Database) -> None:
    assert Context.db is ctx_db
