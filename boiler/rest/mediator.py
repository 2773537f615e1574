"""RestMediator: GET / PATCH routes generated for a view model.

::

    meeting_sessions = RestMediator(
        MeetingSession,
        url_prefix="/meeting_sessions",
        id_param="meeting_id",
        view_path="users/{user_id}/MeetingSession/{doc_id}",
    )

- ``GET {prefix}/<meeting_id>``: the caller's view (params ``doc_id`` = the
  id, ``user_id`` = the token's uid), after ``authorize(principal)`` (the
  declared ``Meta.access`` rule, then ``check_access``). Served from
  the maintained view document at ``view_path`` when it is current (see
  :meth:`ViewAccess.read`), else computed once.
- ``PATCH {prefix}/<meeting_id>`` with view data keys (``{"inSession": false}``):
  validated, applied through the view model's setters in one transaction,
  answered with the fresh view.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..view_model import ViewModel
from .access import ViewAccess, ViewRead
from .request import current_principal, current_services, json_object
from .schema import patch_schema, view_schema
from .source import Operation, RestResource, error_responses, json_content

_METHODS = ("GET", "PATCH")


class RestMediator(RestResource):
    """REST routes for ``view_model`` under ``url_prefix``.

    ``serve_documents``: serve maintained view documents when current — None
    (default) does so while a runtime runs in this process (it maintains
    them), True always (views maintained by another process), False never.
    """

    def __init__(
        self,
        view_model: type[ViewModel],
        url_prefix: str,
        *,
        id_param: str = "doc_id",
        user_param: str = "user_id",
        view_path: str | None = None,
        methods: Iterable[str] = _METHODS,
        name: str | None = None,
        tag: str | None = None,
        serve_documents: bool | None = None,
    ) -> None:
        verbs = tuple(m.upper() for m in methods)
        unknown = sorted(set(verbs) - set(_METHODS))
        if unknown:
            raise ValueError(f"RestMediator supports {_METHODS}, not {unknown}")
        if not id_param.isidentifier():
            raise ValueError(f"id_param must be an identifier, got {id_param!r}")
        self.view_model = view_model
        self.url_prefix = "/" + url_prefix.strip("/")
        self.id_param = id_param
        self.methods = verbs
        self.name = name or re.sub(r"(?<!^)(?=[A-Z])", "_", view_model.__name__).lower()
        self.tag = tag or view_model.__name__
        self.serve_documents = serve_documents
        self.access = ViewAccess(view_model, view_path=view_path, user_param=user_param)

    # -- handlers -----------------------------------------------------------------------------
    def get_view(self, **view_args: Any) -> ViewRead:
        services = current_services()
        use = self.serve_documents
        if use is None:
            use = services.runtime_running
        principal = current_principal()
        doc_id = view_args[self.id_param]
        return self.access.read(services.db, principal, doc_id, use_document=use)

    def patch_view(self, **view_args: Any) -> ViewRead:
        body = json_object()
        principal = current_principal()
        return self.access.write(current_services().db, principal, view_args[self.id_param], body)

    # -- routes -------------------------------------------------------------------------------
    def operations(self) -> list[Operation]:
        ops = super().operations()
        rule = f"/<{self.id_param}>"
        if "GET" in self.methods:
            ops.append(Operation(rule, "GET", "get", self.get_view, doc=self._doc("GET")))
        if "PATCH" in self.methods:
            ops.append(Operation(rule, "PATCH", "patch", self.patch_view, doc=self._doc("PATCH")))
        return ops

    def _doc(self, method: str) -> dict[str, Any]:
        name = self.view_model.__name__
        param = {
            "in": "path",
            "name": self.id_param,
            "required": True,
            "schema": {"type": "string"},
            "description": f"id of the {name}'s root document",
        }
        doc: dict[str, Any] = {
            "tags": [self.tag],
            "parameters": [param],
            "security": [{"bearerAuth": []}],
            "operationId": f"{method.lower()}{name}",
        }
        ok = {
            "description": f"the caller's {name} view",
            **json_content(view_schema(self.view_model)),
        }
        if method == "GET":
            doc["summary"] = f"Read the caller's {name} view"
            codes: tuple[str, ...] = ("401", "403", "404")
        else:
            doc["summary"] = f"Change the caller's {name} view (writable fields only)"
            doc["requestBody"] = json_content(patch_schema(self.view_model), required=True)
            codes = ("400", "401", "403", "404", "409")
        doc["responses"] = {"200": ok, **error_responses(True, codes)}
        return doc

    def __repr__(self) -> str:
        return f"<RestMediator {self.view_model.__name__} at {self.url_prefix}>"


__all__ = ["RestMediator"]
