"""The view writer: versioned, deduplicated, batched writes of view documents.

Sinks call ``writer.write(path, data, version)``; writer threads coalesce
pending writes per path (latest version wins) and commit them in batches. On a
remote store several batches are in flight at once (``committers``), never two
holding the same path, so each path's writes still land in order.

- **No write amplification**: a write whose content equals what the view
  document holds is skipped (the last written content per path is cached; a
  cold path is read once).
- **Versioned**: each view document stores ``{"_boiler": {"version": v}}``; an
  older version never overwrites a newer one. Writes carry ``update_time``
  preconditions (``create`` for new documents), so this holds with several
  writer processes too: on a precondition failure the paths are re-read and
  the decision is made again.
- **Deletes** (``data=None``) remove the document and leave an in-memory
  tombstone version, so a late older write cannot resurrect it; a write of the
  *same* version loses to the delete (a view removed while it was being built
  stays removed).
- **Failures**: a write the database refuses (a value it cannot store, a
  document too large) is split out of its batch, so the other views land and
  the error names the document; while the database does not answer
  (:class:`~boiler.exceptions.Unavailable`) the writes wait and retry until
  it does or the writer stops. Every failure is recorded.
- **Memory**: what the last ``known_limit`` view documents written hold is
  kept (to skip unchanged writes); older entries are forgotten and read once
  more when written again. A tombstone is forgotten too: it guards against a
  late older write until ``known_limit`` newer writes have followed.
- **Listeners** (:meth:`ViewWriter.add_listener`) hear every committed write
  or delete as ``fn(path, data, version)`` (``data`` None: deleted), on the
  writer thread after the commit, outside any lock; their errors are recorded.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..backoff import backoff
from ..database.base import (
    DELETE_FIELD,
    Database,
    DocumentSnapshot,
    Precondition,
    Transaction,
    clone,
)
from ..exceptions import (
    AlreadyExists,
    Conflict,
    DatabaseClosed,
    NotFound,
    RuntimeFailure,
    Unavailable,
)
from .errors import ErrorLog, RecordedError

__all__ = ["VERSION_FIELD", "ViewListener", "ViewWriter"]

#: The field of a view document holding ``{"version": <datetime>}``.
VERSION_FIELD = "_boiler"

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")
_RETRYABLE = (Conflict, AlreadyExists, NotFound)

#: ``fn(path, data, version)``: a view document was written (``data`` None: deleted).
ViewListener = Callable[[str, "dict[str, Any] | None", _dt.datetime], None]


@dataclass
class _Known:
    """What the view document at a path holds (as far as this writer knows)."""

    exists: bool
    content: dict[str, Any] | None
    keys: frozenset[str]
    update_time: _dt.datetime | None
    version: _dt.datetime | None  # the newest version stored or decided (tombstone)
    deleted: bool = False  # ``version`` is a delete's: a write of the same version loses

    def supersedes(self, data: dict[str, Any] | None, version: _dt.datetime) -> bool:
        """Whether what is known is newer than writing ``data`` at ``version``."""
        return _newer(self.version, self.deleted, data, version)


def _newer(
    held: _dt.datetime | None,
    held_deleted: bool,
    data: dict[str, Any] | None,
    version: _dt.datetime,
) -> bool:
    """Whether ``held`` (a delete's version if ``held_deleted``) wins over
    ``data`` at ``version``: it is newer, or a delete of the same version
    facing a write."""
    if held is None:
        return False
    return version < held or (version == held and held_deleted and data is not None)


def _known(snap: DocumentSnapshot) -> _Known:
    if not snap.exists or snap.data is None:
        return _Known(False, None, frozenset(), None, None)
    data = dict(snap.data)
    meta = data.pop(VERSION_FIELD, None)
    version = meta.get("version") if isinstance(meta, Mapping) else None
    return _Known(True, data, frozenset(snap.data), snap.update_time, version)


class ViewWriter:
    """Writes view documents for sinks; see the module docstring for the rules."""

    def __init__(
        self,
        db: Database,
        *,
        batch_size: int = 500,
        max_attempts: int = 5,
        retry_base: float = 0.05,
        committers: int | None = None,
        known_limit: int = 100_000,
    ) -> None:
        if not 1 <= batch_size <= 500:
            raise ValueError(f"batch_size must be within 1..500, got {batch_size}")
        if committers is not None and not 1 <= committers <= 16:
            raise ValueError(f"committers must be within 1..16, got {committers}")
        if known_limit < 1:
            raise ValueError(f"known_limit must be >= 1, got {known_limit}")
        self.known_limit = known_limit
        self.db = db
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_base = retry_base
        self._errors = ErrorLog()
        self._cond = threading.Condition()
        self._pending: dict[str, tuple[dict[str, Any] | None, _dt.datetime]] = {}
        self._inflight = 0
        self._busy: set[str] = set()  # paths in a commit under way
        self._known: OrderedDict[str, _Known] = OrderedDict()  # oldest first
        self._known_lock = threading.Lock()
        self._reread: set[str] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._listeners: list[ViewListener] = []
        self._local = threading.local()
        local = db.backend_name == "embedded"
        #: Embedded store: a batch handed over by :meth:`deferred` is committed
        #: right on the handing thread when the writer is idle (one thread
        #: hand-off less; a commit costs ~0.3 ms there). Remote stores: always
        #: a writer thread.
        self.inline_commits = local
        #: Commits under way at once (each its own thread): 1 on the embedded
        #: store (its commits serialize anyway), 3 on remote stores, where a
        #: commit is mostly waiting for the server (1,000 view documents with a
        #: client listening: ~460 ms one batch after another, ~310 ms 3-4 at once
        #: on the emulator).
        self.committers = committers if committers is not None else (1 if local else 3)
        self._stats_lock = threading.Lock()
        self.stats = {
            "writes": 0,
            "deletes": 0,
            "skipped": 0,
            "stale": 0,
            "conflicts": 0,
            "commits": 0,
        }

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ViewWriter:
        with self._cond:
            if self._threads:
                return self
            self._stopping = False
            for i in range(self.committers):
                name = "boiler-writer" if i == 0 else f"boiler-writer-{i + 1}"
                thread = threading.Thread(target=self._loop, name=name, daemon=True)
                self._threads.append(thread)
                thread.start()
        return self

    def stop(self, timeout: float = 10.0, *, raise_errors: bool = True) -> None:
        """Write what is pending, then stop the threads; raise recorded errors."""
        with self._cond:
            threads, self._stopping = self._threads, True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self._errors.record("writer stop", TimeoutError(f"{thread.name} did not stop"))
        with self._cond:
            self._threads = []
        if raise_errors and (failure := self.failure()) is not None:
            raise failure

    @property
    def errors(self) -> list[RecordedError]:
        return self._errors.snapshot()

    def failure(self) -> RuntimeFailure | None:
        return self._errors.failure("view writer")

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._inflight

    # -- API ------------------------------------------------------------------------------
    def write(self, path: str, data: Mapping[str, Any] | None, version: _dt.datetime) -> None:
        """Enqueue ``data`` (None: delete) for the view document at ``path``."""
        if not isinstance(version, _dt.datetime):
            raise TypeError(f"version must be a datetime, got {version!r}")
        if data is not None and VERSION_FIELD in data:
            raise ValueError(f"view data for {path!r} must not contain {VERSION_FIELD!r}")
        item = (path, None if data is None else clone(data), version)
        held = getattr(self._local, "held", None)
        if held is not None:
            held.append(item)
            return
        self._enqueue([item])

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Within this block, writes made on this thread are enqueued together at
        its end (one commit for the views one change altered). Nestable."""
        outer = getattr(self._local, "held", None)
        if outer is not None:
            yield
            return
        held: list[tuple[str, dict[str, Any] | None, _dt.datetime]] = []
        self._local.held = held
        try:
            yield
        finally:
            self._local.held = None
            if held:
                self._enqueue(held, inline=True)

    def _enqueue(
        self, items: list[tuple[str, dict[str, Any] | None, _dt.datetime]], *, inline: bool = False
    ) -> None:
        with self._cond:
            if self._stopping:
                raise RuntimeError("view writer is stopped")
            for path, item, version in items:
                queued = self._pending.get(path)
                if queued is not None and _newer(queued[1], queued[0] is None, item, version):
                    self._count("stale")
                    continue
                self._pending.pop(path, None)  # re-insert: FIFO by latest enqueue
                self._pending[path] = (item, version)
            if not (inline and self.inline_commits and self._inflight == 0):
                self._cond.notify_all()
                return
            batch = self._take()
        self._commit_and_notify(batch)

    def _takeable(self) -> bool:
        """Whether a pending path is not in a commit under way (cond held)."""
        busy = self._busy
        return any(path not in busy for path in self._pending) if busy else bool(self._pending)

    def _take(self) -> list[tuple[str, dict[str, Any] | None, _dt.datetime]]:
        """Up to ``batch_size`` pending items whose paths are in no commit under
        way; counted in flight and marked busy (cond held)."""
        items = []
        busy = self._busy
        for path in list(self._pending):
            if path in busy:
                continue  # its earlier write lands first
            data, version = self._pending.pop(path)
            items.append((path, data, version))
            if len(items) == self.batch_size:
                break
        busy.update(path for path, _, _ in items)
        self._inflight += len(items)
        return items

    def _commit_and_notify(
        self, items: list[tuple[str, dict[str, Any] | None, _dt.datetime]]
    ) -> None:
        committed: list[tuple[str, dict[str, Any] | None, _dt.datetime]] = []
        try:
            try:
                self._commit(items, committed)
            except Exception as e:  # never let the caller (or the thread) die
                self._errors.record("writer", e)
            finally:
                self._notify(committed)
        finally:
            with self._cond:
                self._inflight -= len(items)
                self._busy.difference_update(path for path, _, _ in items)
                self._cond.notify_all()

    def _count(self, key: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[key] += n

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything enqueued so far is durable; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def add_listener(self, fn: ViewListener) -> Callable[[], None]:
        """Call ``fn(path, data, version)`` after each committed write or delete;
        returns a function that removes it. ``data`` is a copy without
        ``_boiler``; errors ``fn`` raises are recorded, never raised here."""
        with self._cond:
            self._listeners = [*self._listeners, fn]

        def remove() -> None:
            with self._cond:
                self._listeners = [f for f in self._listeners if f is not fn]

        return remove

    @property
    def listener_count(self) -> int:
        return len(self._listeners)

    def _notify(self, committed: list[tuple[str, dict[str, Any] | None, _dt.datetime]]) -> None:
        """Hand what was just committed to the listeners (committing thread, no lock held)."""
        listeners = self._listeners
        for path, data, version in committed:
            for fn in listeners:
                try:
                    fn(path, None if data is None else clone(data), version)
                except Exception as e:
                    self._errors.record("writer listener", e, key=path)

    # -- writer thread --------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._takeable():
                    if self._stopping and not self._pending:
                        return
                    self._cond.wait()
                items = self._take()
            self._commit_and_notify(items)

    def _commit(
        self,
        items: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
        out: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
    ) -> None:
        simple = [i for i in items if i[1] is None or all(_SIMPLE_KEY.match(k) for k in i[1])]
        for path, data, version in items:
            if not (data is None or all(_SIMPLE_KEY.match(k) for k in data)):
                write = functools.partial(self._write_tx, path, data, version, out)
                self._attempt(write, [path])
        if simple:
            self._commit_batch(simple, out)

    def _commit_batch(
        self,
        items: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
        out: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
    ) -> None:
        """Commit ``items`` in one batch; if a write in it is refused, split the
        batch in halves (the others land, the error names its document)."""
        paths = [path for path, _, _ in items]
        if self._attempt(lambda: self._write_batch(items, out), paths, split=len(items) > 1):
            half = len(items) // 2
            self._commit_batch(items[:half], out)
            self._commit_batch(items[half:], out)

    def _attempt(self, fn: Callable[[], None], paths: list[str], *, split: bool = False) -> bool:
        """Run ``fn`` (a commit of ``paths``) until it succeeds or is given up;
        True when it was refused and ``split`` asks the caller to split it.

        A conflict re-reads and decides again (up to ``max_attempts``); while
        the database does not answer, retry until the writer stops (recording
        the 1st, 2nd, 4th, 8th... failure: an outage logs little); data the
        database refuses (``ValueError``/``TypeError``, e.g. a value it cannot
        store) is split out, or given up at once when alone, as on a closed
        database; any other error is recorded and retried up to ``max_attempts``.
        """
        key = paths[0] if len(paths) == 1 else f"{paths[0]} and {len(paths) - 1} more"
        attempt = 0
        while True:
            attempt += 1
            try:
                fn()
                return False
            except _RETRYABLE:
                self._count("conflicts")  # re-read and decide again
                done = attempt >= self.max_attempts
            except Unavailable as e:
                if attempt & (attempt - 1) == 0:
                    self._errors.record("write", e, key=key, attempt=attempt)
                done = self._stopping
            except Exception as e:
                refused = isinstance(e, TypeError | ValueError)
                if split and refused:
                    return True
                self._errors.record("write", e, key=key, attempt=attempt)
                done = refused or isinstance(e, DatabaseClosed) or attempt >= self.max_attempts
            if done:
                why = "the writer is stopping" if self._stopping else f"{attempt} attempt(s)"
                self._errors.record("write", RuntimeError(f"gave up after {why}"), key=key)
                return False
            # The whole backoff (other commits' notifications must not cut it
            # short), unless the writer is stopping.
            deadline = time.monotonic() + backoff(attempt, self.retry_base, 2.0)
            with self._cond:
                while not self._stopping and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)

    def _decide(
        self, known: _Known, data: dict[str, Any] | None, version: _dt.datetime
    ) -> str | None:
        """ "write", "delete" or None (nothing to do) for one pending item."""
        if known.supersedes(data, version):
            self._count("stale")
            return None
        if data is None:
            known.version, known.deleted = version, True  # tombstone
            if not known.exists:
                self._count("skipped")
                return None
            return "delete"
        if known.exists and known.content == data:
            known.version = version if known.version is None else max(known.version, version)
            self._count("skipped")
            return None
        return "write"

    def _write_batch(
        self,
        items: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
        out: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
    ) -> None:
        # Taken once: another committer may forget an entry meanwhile.
        knowns = {p: self._known.get(p) for p, _, _ in items}
        cold = [p for p, known in knowns.items() if known is None or p in self._reread]
        if cold:
            for snap in self.db.get_all(cold):
                knowns[snap.path] = self._learn(snap)
        batch = self.db.batch()
        planned = []
        for path, data, version in items:
            known = knowns[path]
            assert known is not None
            action = self._decide(known, data, version)
            if action == "delete":
                batch.delete(path, precondition=Precondition(update_time=known.update_time))
            elif action == "write":
                assert data is not None
                doc = {**data, VERSION_FIELD: {"version": version}}
                if known.exists:
                    removed = {k: DELETE_FIELD for k in known.keys if k not in doc}
                    batch.update(
                        path,
                        {**removed, **doc},
                        precondition=Precondition(update_time=known.update_time),
                    )
                else:
                    batch.create(path, doc)
            else:
                continue
            planned.append((path, data, version))
        if not planned:
            return
        try:
            results = batch.commit()
            self._count("commits")
        except Exception:
            self._reread.update(path for path, _, _ in planned)  # re-read, decide again
            raise
        for (path, data, version), result in zip(planned, results, strict=True):
            self._record(path, data, version, result.update_time, out)

    def _write_tx(
        self,
        path: str,
        data: dict[str, Any] | None,
        version: _dt.datetime,
        out: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
    ) -> None:
        def fn(tx: Transaction) -> _dt.datetime | None:
            known = self._learn(tx.get(path))
            action = self._decide(known, data, version)
            if action == "delete":
                tx.delete(path)
            elif action == "write":
                assert data is not None
                tx.set(path, {**data, VERSION_FIELD: {"version": version}})
            return None if action is None else version

        if self.db.run_transaction(fn) is not None:
            self._count("commits")
            self._reread.add(path)  # update_time unknown: read again next time
            self._count("writes" if data is not None else "deletes")
            out.append((path, data, version))

    def _learn(self, snap: DocumentSnapshot) -> _Known:
        """Take what the database holds, keeping the newest version decided here."""
        known = _known(snap)
        old = self._known.get(snap.path)
        if old is not None and old.version is not None:
            if known.version is None or known.version < old.version:
                known.version, known.deleted = old.version, old.deleted
        self._remember(snap.path, known)
        self._reread.discard(snap.path)
        return known

    def _remember(self, path: str, known: _Known) -> None:
        """Keep ``known`` for ``path`` as the newest entry; forget the oldest
        beyond ``known_limit``."""
        entries = self._known
        with self._known_lock:
            entries[path] = known
            entries.move_to_end(path)
            while len(entries) > self.known_limit:
                entries.popitem(last=False)

    def _record(
        self,
        path: str,
        data: dict[str, Any] | None,
        version: _dt.datetime,
        update_time: _dt.datetime,
        out: list[tuple[str, dict[str, Any] | None, _dt.datetime]],
    ) -> None:
        if data is None:
            self._remember(path, _Known(False, None, frozenset(), None, version, deleted=True))
            self._count("deletes")
        else:
            keys = frozenset(data) | {VERSION_FIELD}
            self._remember(path, _Known(True, data, keys, update_time, version))
            self._count("writes")
        out.append((path, data, version))
