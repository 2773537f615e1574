"""The embedded store's durable copy: one SQLite file (WAL, synchronous=NORMAL).

Every commit is one SQLite transaction, so a commit is on disk entirely or not
at all, and survives a killed process once :meth:`SqliteFile.commit` returns.
Callers serialize access (the store's write lock).

A commit that only writes documents is ONE statement (atomic by itself; a
trigger records the commit time): each statement releases the GIL while
SQLite works, and the thread then has to win it back while holding the
store's lock, which other threads (readers) wait for. Four statements per
commit made a busy runtime's threads queue up behind that lock.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Sequence

from . import _codec

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


class SqliteFile:
    """Documents persisted in a SQLite database file."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self._conn = sqlite3.connect(filename, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

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
        self._conn.close()
