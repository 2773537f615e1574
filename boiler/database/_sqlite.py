"""The embedded store's durable copy: one SQLite file (WAL).

Every commit is one SQLite transaction, so a commit is on disk entirely or not
at all, and survives a killed process once :meth:`SqliteFile.commit` returns.
With ``durability="normal"`` (``synchronous=NORMAL``, the default) the last
commits before a power loss or an OS crash may be lost (never half of one);
``"full"`` (``synchronous=FULL``) syncs the WAL on every commit and keeps them,
at the cost of one fsync per commit. Callers serialize access (the store's
write lock).

One store at a time: a writable :class:`SqliteFile` holds an exclusive
``flock`` on ``<file>.lock`` until closed (the store keeps every document in
memory, so a second store on the file would silently lose writes). The lock
goes with the process (even when it is killed); the ``.lock`` file stays.
``read_only=True`` takes no lock and never writes.

A commit that only writes documents is ONE statement (atomic by itself; a
trigger records the commit time): each statement releases the GIL while
SQLite works, and the thread then has to win it back while holding the
store's lock, which other threads (readers) wait for. Four statements per
commit made a busy runtime's threads queue up behind that lock.
"""

from __future__ import annotations

import fcntl
import functools
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..exceptions import ConfigurationError, DatabaseLocked
from . import _codec

#: ``durability`` values and their ``PRAGMA synchronous`` setting.
DURABILITY = {"normal": "NORMAL", "full": "FULL"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    create_us INTEGER NOT NULL,
    update_us INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS documents_commit_time AFTER INSERT ON documents
BEGIN
    INSERT OR REPLACE INTO meta SELECT 'last_commit_us', max(NEW.update_us,
        coalesce((SELECT value FROM meta WHERE key = 'last_commit_us'), 0));
END;
"""

#: ``(path, data, create_us, update_us)``; ``data`` None deletes the document.
Row = tuple[str, "dict[str, object] | None", int, int]


@functools.lru_cache(maxsize=64)
def _upsert(n: int) -> str:
    return "INSERT OR REPLACE INTO documents VALUES " + ",".join(["(?, ?, ?, ?)"] * n)


def check_durability(durability: str) -> str:
    if durability not in DURABILITY:
        raise ConfigurationError(
            f"durability must be one of {', '.join(map(repr, DURABILITY))}, got {durability!r}"
        )
    return DURABILITY[durability]


class SqliteFile:
    """Documents persisted in a SQLite database file.

    Raises :class:`DatabaseLocked` if another writable ``SqliteFile`` (in any
    process) has ``filename`` open.
    """

    def __init__(
        self, filename: str, *, read_only: bool = False, durability: str = "normal"
    ) -> None:
        synchronous = check_durability(durability)
        self.filename = filename
        self.read_only = read_only
        self._lock_fd: int | None = None
        if read_only:
            self._conn = _connect_read_only(filename)
            return
        self._lock_fd = _lock(filename)
        try:
            self._conn = sqlite3.connect(filename, isolation_level=None, check_same_thread=False)
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute(f"PRAGMA synchronous={synchronous}")
                self._conn.executescript(_SCHEMA)
            except BaseException:
                self._conn.close()
                raise
        except BaseException:
            self._unlock()
            raise

    def load(self) -> Iterator[tuple[str, dict[str, object], int, int]]:
        """Every stored document: ``(path, data, create_us, update_us)``."""
        cursor = self._conn.execute("SELECT path, data, create_us, update_us FROM documents")
        for path, text, create_us, update_us in cursor:
            yield path, _codec.decode(text), create_us, update_us

    def last_commit(self) -> int:
        """The last commit time (microseconds) ever written, 0 for a new file."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'last_commit_us'").fetchone()
        return int(row[0]) if row else 0

    def commit(self, rows: Sequence[Row], commit_us: int) -> None:
        """Write ``rows`` and the commit time atomically (all or nothing)."""
        conn = self._conn
        if (
            rows
            # bound parameters one statement may have (999 before SQLite 3.32)
            and 4 * len(rows) <= conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
            and all(data is not None and update_us == commit_us for _, data, _, update_us in rows)
        ):
            params: list[object] = []
            for path, data, create_us, update_us in rows:
                params += (path, _codec.encode(data or {}), create_us, update_us)
            conn.execute(_upsert(len(rows)), params)  # the trigger stores commit_us
            return
        conn.execute("BEGIN")
        try:
            for path, data, create_us, update_us in rows:
                if data is None:
                    conn.execute("DELETE FROM documents WHERE path = ?", (path,))
                else:
                    conn.execute(
                        "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?)",
                        (path, _codec.encode(data), create_us, update_us),
                    )
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_commit_us', ?)", (commit_us,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            self._conn.close()
        finally:
            self._unlock()

    def _unlock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                os.ftruncate(fd, 0)  # no stale process id for the next holder's rivals
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def abandon(self) -> None:
        """In a child process after ``fork()``: let go of the inherited lock
        descriptor without releasing the parent's lock, and never touch the
        inherited SQLite connection (SQLite forbids using it across fork)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # the lock stays with the parent's descriptor


def _lock(filename: str) -> int:
    """An open descriptor of ``<filename>.lock`` holding its exclusive flock."""
    lock_path = filename + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise ConfigurationError(
            f"cannot open the lock file {lock_path!r} of the embedded database: {e}"
        ) from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise DatabaseLocked(_locked_message(filename, holder), path=filename) from None
    except OSError as e:  # e.g. ENOLCK: the file system has no locks (some NFS)
        os.close(fd)
        raise ConfigurationError(
            f"cannot lock {lock_path!r} for the embedded database ({e}); keep the file on "
            "a local file system"
        ) from e
    try:
        os.ftruncate(fd, 0)  # who holds it, for the next one's message
        os.write(fd, f"{os.getpid()}\n".encode())
    except OSError:
        pass  # the lock holds without it; a refused opener just cannot name the pid
    return fd


def _holder(fd: int) -> int | None:
    """The process id the lock's holder wrote in the lock file, if any."""
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError):
        return None


def _locked_message(filename: str, holder: int | None) -> str:
    filename = os.path.abspath(filename)
    if holder == os.getpid():
        return (
            f"the embedded database file {filename!r} is already open in this process: "
            "close the EmbeddedDatabase holding it first, or share that one (two stores "
            "on one file would each keep their own copy of the data and lose writes)"
        )
    who = "another process" if holder is None else f"another process (pid {holder})"
    return (
        f"the embedded database file {filename!r} is open in {who}: the embedded store "
        "serves one process per file (each keeps every document in memory, so a second "
        "one would lose writes). Stop the other process (e.g. a running `boiler run`) "
        "first, open the file with read_only=True to read a snapshot, or use Firestore "
        "to share a database between processes"
    )


def _connect_read_only(filename: str) -> sqlite3.Connection:
    """A read-only connection to an existing store file (no lock, no writes)."""
    uri = Path(filename).absolute().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as e:
        raise ConfigurationError(
            f"cannot open the embedded database file {filename!r} read-only: {e}"
        ) from e
    try:
        conn.execute("SELECT 1 FROM documents, meta LIMIT 1").fetchall()
    except sqlite3.Error as e:
        conn.close()
        raise ConfigurationError(
            f"{filename!r} is not an embedded database file (read-only open: {e})"
        ) from e
    return conn
