"""PatchMediator: command documents applied exactly once in effect (Query+Task)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from ..database import SERVER_TIMESTAMP, DocumentSnapshot, Transaction, paths
from ..exceptions import BoilerError, TransactionConflict
from ..source.base import Event, PatchSource
from ..store import Store
from ..view_model import ViewModel
from .base import Mediator

#: Field of a patch document where boiler records the outcome.
PATCH_FIELD = "_boiler"


class PatchMediator(Mediator):
    """Applies patch documents ``users/{uid}/{Collection}/{doc_id}`` to a view model.

    The patch's fields (view data keys, e.g. ``{"inSession": false}``) go
    through the view model's setters inside one transaction that also marks
    the patch processed (``_boiler.status``), so a patch takes effect exactly
    once even if delivered twice or replayed after a restart. A patch that
    fails validation or access rules is marked ``rejected`` with the error;
    nothing else changes.
    """

    view_model: ClassVar[type[ViewModel]]

    def __init__(self, runtime: Any) -> None:
        super().__init__(runtime)
        if not isinstance(type(self).source, PatchSource):
            raise TypeError(f"{type(self).__name__}.source must be source.patch_documents(...)")

    def params(self, patch_path: str) -> dict[str, Any]:
        """View params for a patch at ``patch_path`` (default: ``user_id`` and ``doc_id``)."""
        segments = patch_path.split("/")
        if len(segments) < 4:
            raise BoilerError(f"patch document {patch_path!r} is not under a user document")
        return {"user_id": segments[-3], "doc_id": segments[-1]}

    def dispatch(self, kind: Event, snapshot: DocumentSnapshot, *, read_time: Any = None) -> None:
        if kind != "delete" and not _outcome(snapshot.data):
            self.process(snapshot.path)
        super().dispatch(kind, snapshot, read_time=read_time)

    def process(self, patch_path: str) -> str | None:
        """Apply the patch at ``patch_path`` once; returns its outcome status."""
        paths.document_path(patch_path)
        try:
            return self.db.run_transaction(lambda tx: self._apply(tx, patch_path))
        except TransactionConflict:
            raise
        except BoilerError as e:
            error: BoilerError = e
        return self.db.run_transaction(lambda tx: self._reject(tx, patch_path, error))

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

    def _reject(self, tx: Transaction, patch_path: str, error: BaseException) -> str | None:
        snap = tx.get(patch_path)
        if not snap.exists or _outcome(snap.data):
            return _outcome(snap.data)
        tx.update(
            patch_path,
            {
                PATCH_FIELD: {
                    "status": "rejected",
                    "error": f"{type(error).__name__}: {error}",
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
