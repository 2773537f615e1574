"""Routes as data: the seed's ``RestViewModelSource().route(...)`` and :class:`RestResource`.

A :class:`RestResource` is a group of routes under ``url_prefix`` that becomes
one Flask blueprint. Declare routes on a subclass with a
:class:`RestViewModelSource` (the seed's style)::

    class MeetingSessionRest(RestResource):
        url_prefix = "/v0/meeting_sessions"
        rest = RestViewModelSource()

        @rest.route("/<doc_id>", methods=("GET",), response=MeetingSession)
        def get(self, doc_id):
            principal = current_principal()
            db = current_services().db
            view = MeetingSession.get(doc_id=doc_id, user_id=principal.uid, db=db)
            view.authorize(principal)  # Meta.access (with the token's claims), check_access
            return view

Handlers return a view model, a :class:`~boiler.rest.access.ViewRead`, JSON
data (dict / list) or a Flask response; errors are raised as boiler
exceptions and answered as JSON (:mod:`boiler.rest.errors`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, g, jsonify

from ..view_model import ViewModel
from .access import ViewRead
from .errors import response_for
from .request import RestServices, authenticate
from .schema import ErrorSchema, view_schema

#: ``<converter:name>`` / ``<name>`` in a Flask rule.
_RULE_ARG = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_CONVERTER_TYPES = {"int": "integer", "float": "number"}
#: Response header telling where a served view came from (``document`` / ``computed``).
VIEW_SOURCE_HEADER = "X-Boiler-View-Source"


@dataclass(frozen=True)
class RouteSpec:
    """A route declared with :meth:`RestViewModelSource.route`."""

    rule: str
    methods: tuple[str, ...]
    func: Callable[..., Any]
    auth: bool = True
    response: Any = None
    request: Any = None
    summary: str | None = None


class RestViewModelSource:
    """Collects routes declared on a :class:`RestResource` subclass (seed API)."""

    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(
        self,
        rule: str,
        methods: Iterable[str] = ("GET",),
        *,
        auth: bool = True,
        response: Any = None,
        request: Any = None,
        summary: str | None = None,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: the method handles ``methods`` on ``rule`` (under the resource prefix).

        ``response`` / ``request``: a view model class or marshmallow schema
        for the OpenAPI document; ``auth=False`` skips the bearer token.
        """
        verbs = tuple(m.upper() for m in methods)

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.specs.append(RouteSpec(rule, verbs, func, auth, response, request, summary))
            return func

        return decorate


@dataclass
class Operation:
    """One method on one rule, bound to its handler (``handler(**view_args)``)."""

    rule: str
    method: str
    endpoint: str
    handler: Callable[..., Any]
    auth: bool = True
    doc: dict[str, Any] = field(default_factory=dict)


class RestResource:
    """Routes under ``url_prefix``, registered as one blueprint named ``name``."""

    url_prefix: str = ""
    name: str | None = None
    tag: str | None = None

    @property
    def blueprint_name(self) -> str:
        return self.name or re.sub(r"\W", "_", type(self).__name__.lower())

    def operations(self) -> list[Operation]:
        """Every operation of this resource (declared routes, then generated ones)."""
        ops: list[Operation] = []
        for source in _sources(type(self)):
            for spec in source.specs:
                for method in spec.methods:
                    ops.append(
                        Operation(
                            rule=spec.rule,
                            method=method,
                            endpoint=f"{spec.func.__name__}_{method.lower()}",
                            handler=functools.partial(spec.func, self),
                            auth=spec.auth,
                            doc=self._spec_doc(spec, method),
                        )
                    )
        return ops

    def _spec_doc(self, spec: RouteSpec, method: str) -> dict[str, Any]:
        doc: dict[str, Any] = {"parameters": path_parameters(spec.rule)}
        summary = spec.summary or (spec.func.__doc__ or "").strip().split("\n")[0]
        if summary:
            doc["summary"] = summary
        if spec.auth:
            doc["security"] = [{"bearerAuth": []}]
        if spec.request is not None and method in ("POST", "PUT", "PATCH"):
            doc["requestBody"] = json_content(spec.request, required=True)
        ok: dict[str, Any] = {"description": "OK"}
        if spec.response is not None:
            ok.update(json_content(spec.response))
        doc["responses"] = {"200": ok, **error_responses(spec.auth)}
        if self.tag:
            doc["tags"] = [self.tag]
        return doc

    def blueprint(self, services: RestServices) -> Blueprint:
        """A new blueprint serving this resource with ``services``."""
        bp = Blueprint(self.blueprint_name, __name__, url_prefix=self.url_prefix or None)
        for op in self.operations():
            bp.add_url_rule(
                op.rule, endpoint=op.endpoint, view_func=_view(op, services), methods=[op.method]
            )
        bp.register_error_handler(Exception, response_for)
        return bp


def _sources(cls: type) -> list[RestViewModelSource]:
    found: dict[str, RestViewModelSource] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if isinstance(value, RestViewModelSource):
                found[name] = value
    return list(found.values())


def _view(op: Operation, services: RestServices) -> Callable[..., Response]:
    """The Flask view function of ``op`` (a factory: no loop-variable capture)."""

    def view(**view_args: Any) -> Response:
        g.boiler_services = services
        try:
            if op.auth:
                authenticate(services)
            result = op.handler(**view_args)
            if isinstance(result, ViewModel):  # never served past its declared rule
                type(result).check_rule(result.params, g.get("boiler_principal"))
            return to_response(result)
        except Exception as e:
            return response_for(e)

    view.__name__ = op.endpoint
    return view


def to_response(result: Any) -> Response:
    """The JSON response for a handler's return value."""
    if isinstance(result, Response):
        return result
    if isinstance(result, ViewRead):
        response = jsonify(result.data)
        response.headers[VIEW_SOURCE_HEADER] = result.source
        return response
    if isinstance(result, ViewModel):
        return jsonify(result.data)
    return jsonify(result)


def path_parameters(rule: str) -> list[dict[str, Any]]:
    """OpenAPI path parameters of a Flask rule."""
    return [
        {
            "in": "path",
            "name": m["name"],
            "required": True,
            "schema": {"type": _CONVERTER_TYPES.get(m["converter"] or "", "string")},
        }
        for m in _RULE_ARG.finditer(rule)
    ]


def json_content(schema: Any, *, required: bool | None = None) -> dict[str, Any]:
    """``{"content": {"application/json": {"schema": ...}}}`` for a schema or view model."""
    if isinstance(schema, type) and issubclass(schema, ViewModel):
        schema = view_schema(schema)
    out: dict[str, Any] = {"content": {"application/json": {"schema": schema}}}
    if required is not None:
        out["required"] = required
    return out


_ERROR_TEXT = {
    "400": "Invalid request (malformed JSON, unknown field, wrong type)",
    "401": "Missing or invalid bearer token",
    "403": "The caller may not access this view",
    "404": "No such resource",
    "409": "A concurrent change prevented the write",
}


def error_responses(auth: bool, codes: Iterable[str] = ("400", "401", "404")) -> dict[str, Any]:
    """OpenAPI error responses (``Error`` schema) for ``codes``."""
    return {
        code: {"description": _ERROR_TEXT[code], **json_content(ErrorSchema)}
        for code in codes
        if auth or code not in ("401", "403")
    }


__all__ = [
    "VIEW_SOURCE_HEADER",
    "Operation",
    "RestResource",
    "RestViewModelSource",
    "RouteSpec",
    "error_responses",
    "json_content",
    "path_parameters",
    "to_response",
]
