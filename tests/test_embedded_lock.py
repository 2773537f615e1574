"""One store per SQLite file: the embedded store keeps every document in its
process's memory, so a second store on the same file (in another process or in
this one) is refused with :class:`DatabaseLocked` instead of silently losing
writes. ``read_only=True`` reads a snapshot without taking the file. Also the
``durability`` option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from boiler.database import open_database
from boiler.database.memory import EmbeddedDatabase
from boiler.exceptions import ConfigurationError, DatabaseClosed, DatabaseLocked

HOLDER = """
import sys
from boiler.database.memory import EmbeddedDatabase
db = EmbeddedDatabase(sys.argv[1])
db.set("things/a", {"by": "child"})
print("open", flush=True)
sys.stdin.read()  # hold the file until stdin closes
db.set("things/b", {"by": "child"})
db.close()
"""

OPENER = """
import sys
from boiler.database.memory import EmbeddedDatabase
from boiler.exceptions import DatabaseLocked
try:
    EmbeddedDatabase(sys.argv[1])
except DatabaseLocked as e:
    print(e)
    sys.exit(3)
"""


def _python(code: str, *args: str, **kw: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], text=True, stdout=subprocess.PIPE, **kw
    )


def test_a_second_store_in_this_process_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "one.db")
    with EmbeddedDatabase(path) as db:
        db.set("things/a", {"n": 1})
        with pytest.raises(DatabaseLocked, match="already open in this process") as info:
            EmbeddedDatabase(path)
        assert info.value.path == path and os.path.abspath(path) in str(info.value)
        with pytest.raises(DatabaseLocked):
            open_database("embedded", path=path)
        db.set("things/a", {"n": 2})  # the first store is unaffected
    with EmbeddedDatabase(path) as again:  # close() released the file
        assert again.get("things/a").to_dict() == {"n": 2}


@pytest.mark.timeout(60)
def test_a_store_held_by_another_process_is_refused_with_its_pid(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    child = _python(HOLDER, path, stdin=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "open"
        with pytest.raises(DatabaseLocked) as info:
            EmbeddedDatabase(path)
        message = str(info.value)
        assert f"open in another process (pid {child.pid})" in message
        assert os.path.abspath(path) in message
        assert "Stop the other process" in message and "Firestore" in message
        # Reading a snapshot needs no lock; writing through it is refused.
        with EmbeddedDatabase(path, read_only=True) as snapshot:
            assert snapshot.get("things/a").to_dict() == {"by": "child"}
            with pytest.raises(DatabaseLocked, match="read-only"):
                snapshot.set("things/c", {"by": "parent"})
        child.stdin.close()
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    with EmbeddedDatabase(path) as db:  # released when the holder closed it
        assert db.get("things/b").to_dict() == {"by": "child"}
        assert not db.get("things/c").exists


@pytest.mark.timeout(60)
def test_another_process_is_refused_while_this_one_holds_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "mine.db")
    with EmbeddedDatabase(path) as db:
        db.set("things/a", {"n": 1})
        opener = _python(OPENER, path)
        out, _ = opener.communicate(timeout=30)
        assert opener.returncode == 3, out
        assert f"pid {os.getpid()}" in out and "read_only=True" in out, out
    opener = _python(OPENER, path)  # closed: the other process may open it now
    out, _ = opener.communicate(timeout=30)
    assert opener.returncode == 0, out


def test_a_child_after_fork_cannot_use_the_parents_store(tmp_path: Path) -> None:
    path = str(tmp_path / "forked.db")
    with EmbeddedDatabase(path) as db:
        db.set("things/a", {"n": 1})
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, never return
            code = 1
            try:
                try:
                    db.get("things/a")
                except DatabaseClosed as e:
                    if "fork()" in str(e):
                        code = 2
                try:
                    EmbeddedDatabase(path)  # the parent still holds the file
                except DatabaseLocked:
                    code = code * 10 + 3
                db.close()  # a no-op: neither the parent's lock nor its SQLite connection
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 23
        db.set("things/a", {"n": 2})  # the parent's store works and still holds the file
        with pytest.raises(DatabaseLocked):
            EmbeddedDatabase(path)
    with EmbeddedDatabase(path) as again:
        assert again.get("things/a").to_dict() == {"n": 2}


def test_read_only_is_a_snapshot_of_an_existing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "snap.db")
    with pytest.raises(ConfigurationError, match="read-only"):
        EmbeddedDatabase(path, read_only=True)  # no such file: none is created
    assert not os.path.exists(path)
    with pytest.raises(ConfigurationError, match="memory"):
        EmbeddedDatabase(read_only=True)
    with EmbeddedDatabase(path) as db:
        db.set("things/a", {"n": 1})
        snapshot = open_database("embedded", path=path, read_only=True)
        db.set("things/a", {"n": 2})
        try:
            assert snapshot.get("things/a").to_dict() == {"n": 1}  # as of opening
            assert repr(snapshot) == f"EmbeddedDatabase({path!r}, read_only=True)"
            for write in (
                lambda: snapshot.delete("things/a"),
                lambda: snapshot.batch().set("things/b", {}).commit(),
            ):
                with pytest.raises(DatabaseLocked, match="read-only"):
                    write()
            with snapshot.transaction(read_only=True) as tx:
                assert tx.get("things/a").to_dict() == {"n": 1}
        finally:
            snapshot.close()
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not an embedded database file"):
        EmbeddedDatabase(str(other), read_only=True)


@pytest.mark.parametrize(("durability", "synchronous"), [("normal", 1), ("full", 2)])
def test_durability_sets_sqlite_synchronous(
    tmp_path: Path, durability: str, synchronous: int
) -> None:
    path = str(tmp_path / "durable.db")
    with open_database("embedded", path=path, durability=durability) as db:
        assert isinstance(db, EmbeddedDatabase) and db.durability == durability
        assert db._file is not None
        assert db._file._conn.execute("PRAGMA synchronous").fetchone()[0] == synchronous
        db.set("things/a", {"n": 1})
    with EmbeddedDatabase(path) as db:
        assert db.get("things/a").to_dict() == {"n": 1}


def test_bad_durability_is_a_configuration_error(tmp_path: Path) -> None:
    for path in (":memory:", str(tmp_path / "x.db")):
        with pytest.raises(ConfigurationError, match="durability must be one of"):
            EmbeddedDatabase(path, durability="paranoid")
    assert not (tmp_path / "x.db").exists()
