"""Listeners the runtime owns are subscribed again when they stop for good.

A Firestore listener can end for good: the library gives up a stream the
server ends with an error (a target it removes) or that is cancelled. Its
``active`` then turns False and the database records why in
``listener_errors`` (the engine surfaces those in its errors). Nothing would
ever deliver its changes again, so whoever owns the listener notices it on
the engine's periodic check (the dispatcher thread; no thread of its own)
and subscribes again after a backoff: the dependency index for its
collection watches, :class:`SourceWatch` for a mediator's source.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..backoff import backoff
from ..database.base import Database, DocumentChange, DocumentSnapshot, ListenEvent, Watch
from ..database.query import Query

__all__ = ["SourceWatch", "resync_event", "retry_at", "stopped"]

log = logging.getLogger("boiler.runtime")


def stopped(watch: Any) -> bool:
    """Whether ``watch`` ended for good (watches without ``active`` never do)."""
    return watch is not None and getattr(watch, "active", True) is False


def retry_at(
    now: float, failures: int, query: Query, what: str, base: float, maximum: float
) -> float:
    """When to subscribe the listener on ``query`` again, after ``failures``
    in a row (``what`` happened to it: logged with the delay)."""
    delay = backoff(failures, base, maximum)
    log.warning("listener on %s %s; subscribing again in %.1f s", query.describe(), what, delay)
    return now + delay


def resync_event(held: dict[str, DocumentSnapshot], event: ListenEvent) -> ListenEvent:
    """A new listener's initial snapshot as the changes since ``held`` (what
    the listener it replaces had delivered): documents gone meanwhile are
    ``removed`` (with their last state), new ones ``added``, changed ones
    ``modified``; unchanged ones are left out."""
    now = {d.path: d for d in event.docs}
    changes = [DocumentChange("removed", d, -1, -1) for p, d in held.items() if p not in now]
    for path, doc in now.items():
        old = held.get(path)
        if old is None:
            changes.append(DocumentChange("added", doc, -1, -1))
        elif old.update_time != doc.update_time:
            changes.append(DocumentChange("modified", doc, -1, -1))
    return ListenEvent(docs=event.docs, changes=changes, read_time=event.read_time)


class SourceWatch:
    """A query listener kept alive: a :class:`~boiler.database.base.Watch`
    that :meth:`check` subscribes again (after a backoff) once it stopped for
    good. The new listener's first event reaches ``on_event`` as the changes
    since the last event delivered (see :func:`resync_event`), so a consumer
    sees one continuous stream; an event with nothing in it is not passed on
    (unless it is the first of all: the consumer's initial snapshot).

    ``on_error(exc)`` gets a failure to subscribe again (the listener's own
    failure is in the database's ``listener_errors``).
    """

    def __init__(
        self,
        db: Database,
        query: Query,
        on_event: Callable[[ListenEvent], None],
        *,
        on_error: Callable[[BaseException], None],
        retry_base: float = 0.5,
        retry_max: float = 30.0,
    ) -> None:
        self._db = db
        self._query = query
        self._on_event = on_event
        self._on_error = on_error
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._lock = threading.Lock()
        self._watch: Watch | None = None
        self._generation = 0
        self._resync = False  # the current listener's first event is a resync
        self._held: dict[str, DocumentSnapshot] = {}
        self._delivered = False  # an event has reached on_event
        self._failures = 0
        self._retry_at: float | None = None  # down: when to subscribe again
        self._closed = False
        #: Listeners subscribed after the first one.
        self.resubscribes = 0

    def start(self) -> SourceWatch:
        """Subscribe (errors propagate, as from ``listen_query``)."""
        self._subscribe(resync=False)
        return self

    @property
    def down(self) -> bool:
        """Whether the listener stopped and its replacement has not delivered yet."""
        return self._retry_at is not None or self._resync or stopped(self._watch)

    def check(self, now: float) -> None:
        """Notice a listener that stopped for good; subscribe again once its
        backoff is over (the engine's dispatcher calls this periodically)."""
        with self._lock:
            if self._closed:
                return
            dead, due = None, False
            if self._retry_at is not None:
                due = now >= self._retry_at
            elif stopped(self._watch):
                dead, self._watch = self._watch, None
                self._generation += 1  # a late event of the dead listener is ignored
                self._schedule(now, "stopped")
        if dead is not None:
            dead.unsubscribe()  # release what is left of it
        if not due:
            return
        try:
            self._subscribe(resync=True)
        except Exception as e:
            self._on_error(e)
            with self._lock:
                if not self._closed:
                    self._schedule(now, "could not be subscribed again")

    def unsubscribe(self) -> None:
        """Stop listening for good. Idempotent."""
        with self._lock:
            self._closed = True
            self._generation += 1
            watch, self._watch = self._watch, None
        if watch is not None:
            watch.unsubscribe()

    # -- internals -----------------------------------------------------------------------
    def _schedule(self, now: float, what: str) -> None:
        """Subscribe again after a backoff (lock held)."""
        self._failures += 1
        self._retry_at = retry_at(
            now, self._failures, self._query, what, self.retry_base, self.retry_max
        )

    def _subscribe(self, *, resync: bool) -> None:
        """Subscribe a listener (not under the lock: it may deliver at once)."""
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._resync = resync

        def callback(event: ListenEvent) -> None:  # listener thread
            self._deliver(generation, event)

        watch = self._db.listen_query(self._query, callback)
        with self._lock:
            if not self._closed and generation == self._generation:
                self._watch = watch
                self._retry_at = None
                self.resubscribes += resync
                return
        watch.unsubscribe()  # unsubscribed meanwhile

    def _deliver(self, generation: int, event: ListenEvent) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if self._resync:
                self._resync = False
                self._failures = 0
                event = resync_event(self._held, event)
                if not event.changes and self._delivered:
                    self._held = {d.path: d for d in event.docs}
                    return
            held = self._held
            for change in event.changes:
                if change.type == "removed":
                    held.pop(change.document.path, None)
                else:
                    held[change.document.path] = change.document
            self._delivered = True
        self._on_event(event)
