"""WsMediator: one view model streamed over one Socket.IO namespace."""

from __future__ import annotations

import re
import string
from typing import Any

from ..auth import Principal
from ..database import Database
from ..exceptions import Forbidden, InvalidPath, NotFound
from ..view_model import ViewModel
from .protocol import SubscribeError, view_payload

_PLACEHOLDERS = frozenset({"doc_id", "user_id"})


class WsMediator:
    """Serves the view documents of ``view_model_cls`` on ``namespace``.

    ``view_path`` names the view document a subscription follows, with
    ``{doc_id}`` (the value the client sends under ``param``) and optionally
    ``{user_id}`` (the authenticated user). The same placeholders are the
    view model's params, used to check access (:meth:`ViewModel.authorize
    <boiler.view_model.ViewModel.authorize>`) and to compute a view that is
    not materialized yet. New versions come from the runtime's view writer, so
    a ViewMediator must keep those documents live.
    """

    def __init__(
        self,
        *,
        view_model_cls: type[ViewModel],
        namespace: str,
        view_path: str,
        param: str = "doc_id",
    ) -> None:
        if not namespace.startswith("/"):
            raise ValueError(f"namespace must start with '/', got {namespace!r}")
        names = {name for _, name, _, _ in string.Formatter().parse(view_path) if name}
        if "doc_id" not in names or not names <= _PLACEHOLDERS:
            raise ValueError(
                f"view_path {view_path!r} must use {{doc_id}} and optionally {{user_id}}"
            )
        self.view_model_cls = view_model_cls
        self.namespace = namespace
        self.view_path = view_path
        self.param = param
        self._per_user = "user_id" in names
        pattern = re.escape(view_path)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), "[^/]+")
        self._pattern = re.compile(f"^{pattern}$")

    def matches(self, path: str) -> bool:
        """Whether ``path`` is one of this mediator's view documents."""
        return self._pattern.match(path) is not None

    def params(self, user_id: str, value: Any) -> dict[str, str]:
        """The view params for a subscription; :class:`SubscribeError` 400 if bad."""
        if not isinstance(value, str) or not value or "/" in value or len(value) > 1500:
            raise SubscribeError(400, f"{self.param!r} must be a non-empty id string")
        return {"doc_id": value, "user_id": user_id} if self._per_user else {"doc_id": value}

    def path_for(self, params: dict[str, str]) -> str:
        return self.view_path.format(**params)

    def authorize(self, db: Database, caller: str | Principal, params: dict[str, str]) -> ViewModel:
        """Build the view once and check ``caller`` may see it (404/403 otherwise).

        ``caller``: the connection's verified principal (its claims count for
        role rules) or a bare uid. What ``view.authorize(caller)`` applies: the
        declared ``Meta.access`` rule, then ``check_access``. The declared rule
        reads no documents and is checked first, before the view is built: a
        caller it refuses learns nothing, not even whether the view exists
        (403, as over REST).
        """
        cls = self.view_model_cls
        try:
            cls.check_rule(params, caller)  # before anything is read
        except Forbidden as e:
            raise SubscribeError(403, str(e)) from e
        try:
            kwargs: dict[str, Any] = dict(params)
            view = self.view_model_cls.get(db=db, **kwargs)
        except NotFound as e:
            raise SubscribeError(404, f"{self.param} {params['doc_id']!r} not found") from e
        except InvalidPath as e:
            raise SubscribeError(400, f"{self.param}: {e}") from e
        assert isinstance(view, ViewModel)
        try:
            view.check_access(caller if isinstance(caller, str) else caller.uid)
        except Forbidden as e:
            raise SubscribeError(403, str(e)) from e
        return view

    def current(self, db: Database, path: str, view: ViewModel) -> dict[str, Any]:
        """The ``view`` payload now: the stored document, else ``view`` (no version)."""
        snap = db.get(path)
        if snap.exists and snap.data is not None:
            return view_payload(path, snap.data)
        return view_payload(path, view.data)

    def __repr__(self) -> str:
        return f"<WsMediator {self.view_model_cls.__name__} on {self.namespace}>"
