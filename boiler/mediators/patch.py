"""PatchMediator: command documents applied exactly once in effect (Query+Task)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

from ..backoff import backoff
from ..database import SERVER_TIMESTAMP, DocumentSnapshot, Transaction, paths
from ..exceptions import (
    Conflict,
    Forbidden,
    InvalidPath,
    NotFound,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from ..source.base import Event, PatchSource
from ..store import Store
from ..view_model import ViewModel
from .base import Mediator

#: Field of a patch document where boiler records the outcome.
PATCH_FIELD = "_boiler"

#: Errors the client caused: a patch failing with one is rejected for good.
#: Any other failure (a network blip, a conflict, a bug) is retried.
CLIENT_ERRORS: tuple[type[Exception], ...] = (
    ValidationError,
    Forbidden,
    Unauthorized,
    NotFound,
    InvalidPath,
)


class PatchMediator(Mediator):
    """Applies patch documents ``users/{uid}/{Collection}/{doc_id}`` to a view model.

    The patch's fields (view data keys, e.g. ``{"inSession": false}``) go
    through the view model's setters inside one transaction that also marks
    the patch processed (``_boiler.status``), so a patch takes effect exactly
    once even if delivered twice or replayed after a restart.

    A patch failing with an error the client caused (:data:`CLIENT_ERRORS`:
    validation, access, a missing document) is marked ``rejected`` with the
    error; nothing else changes. Any other failure (the database unavailable,
    a transaction still conflicting, a bug) leaves the patch pending: it is
    recorded (keyed by the patch path) and retried on this mediator's thread
    with exponential backoff (the engine's ``retry_base``/``retry_max``)
    until it is processed, deleted, or the runtime stops; a restart picks it
    up again. While the database is unavailable or contended that goes on
    for as long as it takes; any other error (a bug, say) rejects the patch
    after ``max_failures`` failures in a row ("gave up after N failures").
    """

    view_model: ClassVar[type[ViewModel]]
    #: Failures in a row after which a patch failing with an error that is
    #: neither the client's nor transient is rejected.
    max_failures: ClassVar[int] = 8

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        if not isinstance(type(self).source, PatchSource):
            raise TypeError(f"{type(self).__name__}.source must be source.patch_documents(...)")
        #: Patches waiting for a retry: path -> (failures so far, token of the timer).
        self._retries: dict[str, tuple[int, int]] = {}
        self._tokens = itertools.count()

    def params(self, patch_path: str) -> dict[str, Any]:
        """View params for a patch at ``patch_path`` (default: ``user_id`` and ``doc_id``)."""
        segments = patch_path.split("/")
        if len(segments) != 4 or segments[0] != "users":
            raise ValidationError(
                f"patch document {patch_path!r} is not under a user document "
                "(users/{uid}/<collection>/<id>)"
            )
        return {"user_id": segments[-3], "doc_id": segments[-1]}

    def dispatch(self, kind: Event, snapshot: DocumentSnapshot, *, read_time: Any = None) -> None:
        if kind == "delete":
            self._retries.pop(snapshot.path, None)  # nothing left to apply
        elif not _outcome(snapshot.data) and not self._attempt(snapshot.path):
            return  # failed, retry scheduled: triggers see the patch once it has an outcome
        super().dispatch(kind, snapshot, read_time=read_time)

    def process(self, patch_path: str) -> str | None:
        """Apply the patch at ``patch_path`` once; returns its outcome status.

        ``"processed"``, ``"rejected"`` (a client error, recorded in the
        patch), or None if the patch does not exist. Any other error is
        raised and the patch left as it was (it may be processed again).
        """
        paths.document_path(patch_path)
        try:
            return self.db.run_transaction(lambda tx: self._apply(tx, patch_path))
        except CLIENT_ERRORS as e:
            error: Exception = e
        return self.db.run_transaction(lambda tx: self._reject(tx, patch_path, error))

    def stopped(self) -> None:
        self._retries.clear()  # timers are dropped with the runner; a restart retries

    # -- retries (on the runtime's thread for this mediator) -------------------------------
    def _attempt(self, patch_path: str, retry: tuple[int, int] | None = None) -> bool:
        """Process the patch; on failure record it and schedule a retry. True if done."""
        try:
            self.process(patch_path)
        except Exception as e:
            self._failed(patch_path, e, retry)
            return False
        self._retries.pop(patch_path, None)
        return True

    def _failed(self, patch_path: str, error: Exception, retry: tuple[int, int] | None) -> None:
        name = type(self).__name__
        pending = self._retries.get(patch_path) if retry is None else None
        failures = (retry or pending or (0, 0))[0] + 1
        if pending is not None:  # a retry is already scheduled: it will try again
            self._retries[patch_path] = (failures, pending[1])
            self.runtime.record_error(f"patch {name} (failure {failures})", error, key=patch_path)
            return
        if failures >= self.max_failures and not isinstance(error, Unavailable | Conflict):
            try:
                self.db.run_transaction(
                    lambda tx: self._reject(tx, patch_path, error, gave_up=failures)
                )
            except Exception as e:  # not even rejected: retry as usual
                self.runtime.record_error(f"patch {name} (reject)", e, key=patch_path)
            else:
                self._retries.pop(patch_path, None)
                self.runtime.record_error(
                    f"patch {name} (failure {failures}, gave up: rejected)", error, key=patch_path
                )
                return
        delay = backoff(failures, self.engine.retry_base, self.engine.retry_max)
        token = next(self._tokens)
        if self.runtime.call_later(self, delay, lambda: self._retry(patch_path, token)):
            self._retries[patch_path] = (failures, token)
            then = f"retry in {delay:g}s"
        else:  # stopping (or not run by a runtime): the next start processes it
            self._retries.pop(patch_path, None)
            then = "not retried: mediator not running"
        self.runtime.record_error(
            f"patch {name} (failure {failures}, {then})", error, key=patch_path
        )

    def _retry(self, patch_path: str, token: int) -> None:
        retry = self._retries.get(patch_path)
        if retry is None or retry[1] != token:  # processed or deleted meanwhile
            return
        del self._retries[patch_path]
        self._attempt(patch_path, retry)

    def _apply(self, tx: Transaction, patch_path: str) -> str | None:
        snap = tx.get(patch_path)
        if not snap.exists or _outcome(snap.data):
            return _outcome(snap.data)
        body = {k: v for k, v in (snap.to_dict() or {}).items() if k != PATCH_FIELD}
        params = self.params(patch_path)
        view = type(self).view_model(Store(tx), **params)
        view.authorize(params.get("user_id"))
        view.update(body)
        changed = view.changed_models()
        for obj in changed:
            obj.save(transaction=tx)
        tx.update(
            patch_path,
            {PATCH_FIELD: {"status": "processed", "processedAt": SERVER_TIMESTAMP}},
        )
        return "processed"

    def _reject(
        self, tx: Transaction, patch_path: str, error: BaseException, *, gave_up: int = 0
    ) -> str | None:
        snap = tx.get(patch_path)
        if not snap.exists or _outcome(snap.data):
            return _outcome(snap.data)
        tx.update(
            patch_path,
            {
                PATCH_FIELD: {
                    "status": "rejected",
                    "error": f"{type(error).__name__}: {error}"
                    + (f" (gave up after {gave_up} failures)" if gave_up else ""),
                    "processedAt": SERVER_TIMESTAMP,
                }
            },
        )
        return "rejected"


def _outcome(data: Mapping[str, Any] | None) -> str | None:
    if not data:
        return None
    meta = data.get(PATCH_FIELD)
    if isinstance(meta, Mapping):
        status = meta.get("status")
        return status if isinstance(status, str) else None
    return None
