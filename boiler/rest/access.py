"""Reading and writing one user's view, independent of the transport.

:class:`ViewAccess` is what REST (and later Socket.IO) handlers call:

- :meth:`ViewAccess.read` checks access and returns the view, served from the
  maintained view document when it is current, else computed once;
- :meth:`ViewAccess.write` validates a body of view data keys and applies it
  through the view model's setters in one transaction.

Access is :meth:`ViewModel.authorize <boiler.view_model.ViewModel.authorize>`
with the caller's verified :class:`~boiler.auth.Principal`: the declared
``Meta.access`` rule (its role claims included), then ``check_access`` — the
policy the generated Firestore rules enforce too.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..auth import Principal
from ..database import Database, DocumentSnapshot, Transaction
from ..exceptions import ValidationError
from ..store import Store
from ..view_model import ViewModel
from .schema import exported, writable

#: Field of a maintained view document holding ``{"version": <read time>}``.
VERSION_FIELD = "_boiler"


@dataclass(frozen=True)
class ViewRead:
    """A view as served: its data and where it came from (``document`` / ``computed``)."""

    data: dict[str, Any]
    source: str


class ViewAccess:
    """Access to ``view_model`` views for authenticated users.

    ``view_path`` (e.g. ``"users/{user_id}/MeetingSession/{doc_id}"``, filled
    from the view params) names the maintained view document; None: always
    compute. View params are ``{"doc_id": <id>, user_param: <uid>}``.
    """

    def __init__(
        self,
        view_model: type[ViewModel],
        *,
        view_path: str | None = None,
        user_param: str = "user_id",
    ) -> None:
        self.view_model = view_model
        self.view_path = view_path
        self.user_param = user_param

    def params(self, doc_id: str, uid: str | Principal) -> dict[str, Any]:
        """The view params for ``doc_id`` as seen by ``uid`` (or a principal)."""
        return {"doc_id": doc_id, self.user_param: _uid(uid)}

    def document_path(self, params: Mapping[str, Any]) -> str | None:
        """Where the maintained view for ``params`` lives (None if not maintained)."""
        return None if self.view_path is None else self.view_path.format(**params)

    # -- read ---------------------------------------------------------------------------------
    def read(
        self, db: Database, caller: str | Principal, doc_id: str, *, use_document: bool = True
    ) -> ViewRead:
        """``caller``'s view of ``doc_id``, after ``view.authorize(caller)``.

        ``caller`` is the verified :class:`~boiler.auth.Principal` (its claims
        count for role rules) or a bare uid (no claims).

        The view document is served only if it has every exported key and its
        version is not older than anything the access check read (the view's
        root, typically); otherwise the view is computed once, in one
        consistent read-only transaction. Raises NotFound / Forbidden.

        The document path needs no transaction (whose begin and commit are two
        of its four round trips on Firestore): the view document is read
        *first*, so the documents the access check reads afterwards are at
        least as new, and "not older than them" still holds for the view.

        A read takes no data from the caller: a ValidationError here means
        stored data is invalid, the server's fault (a RuntimeError, logged
        and answered as a generic 500, never the document's path and value).
        """
        try:
            return self._read(db, caller, doc_id, use_document=use_document)
        except ValidationError as e:
            raise RuntimeError(f"{self.view_model.__name__} {doc_id!r}: invalid stored data") from e

    def _read(
        self, db: Database, caller: str | Principal, doc_id: str, *, use_document: bool
    ) -> ViewRead:
        params = self.params(doc_id, caller)
        path = self.document_path(params) if use_document else None
        if path is not None:
            snap = db.get(path)  # before the access check's reads: see above
            store = Store(db)
            self.view_model(store, **params).authorize(caller)
            data = self._current_document(snap, store)
            if data is not None:
                return ViewRead(data, "document")
        with db.transaction(read_only=True) as tx:
            view = self.view_model(Store(tx), **params)
            view.authorize(caller)
            return ViewRead(view.to_view_dict(), "computed")

    def _current_document(self, snap: DocumentSnapshot, store: Store) -> dict[str, Any] | None:
        data = snap.to_dict() if snap.exists else None
        if not data:
            return None
        meta = data.pop(VERSION_FIELD, None)
        version = meta.get("version") if isinstance(meta, Mapping) else None
        read = store.dependencies.documents
        if not isinstance(version, _dt.datetime) or not read:
            return None
        if any(t is None or t > version for t in read.values()):
            return None
        if set(data) != set(exported(self.view_model)):
            return None
        return data

    # -- write --------------------------------------------------------------------------------
    def validate(self, body: Mapping[str, Any]) -> None:
        """Check ``body`` (view data keys) before any read: unknown, read-only,
        null and wrongly typed values raise ValidationError naming the key."""
        allowed = writable(self.view_model)
        every = exported(self.view_model)
        for key, value in body.items():
            descriptor = allowed.get(key)
            if descriptor is None:
                problem = "is read-only" if key in every else "is not a field of this view"
                raise ValidationError(
                    f"{key!r} {problem}; writable fields: {sorted(allowed)}", field=key
                )
            if value is None:
                raise ValidationError("may not be null", field=key)
            try:
                descriptor.check(value)
            except ValidationError as e:
                message = str(e).split(": ", 1)[-1] if e.field else str(e)
                raise ValidationError(message, field=key) from e

    def write(
        self, db: Database, caller: str | Principal, doc_id: str, body: Mapping[str, Any]
    ) -> ViewRead:
        """Apply ``body`` as ``caller`` (one transaction, after ``view.authorize(caller)``);
        returns the fresh view."""
        self.validate(body)
        params = self.params(doc_id, caller)

        def apply(tx: Transaction) -> None:
            view = self.view_model(Store(tx), **params)
            view.authorize(caller)
            view.update(body)
            for obj in view.changed_models():
                obj.save(transaction=tx)

        db.run_transaction(apply)
        return self.read(db, caller, doc_id, use_document=False)


def _uid(caller: str | Principal) -> str:
    return caller if isinstance(caller, str) else caller.uid


__all__ = ["VERSION_FIELD", "ViewAccess", "ViewRead"]
