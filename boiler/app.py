"""Flask integration: REST resources, OpenAPI at ``/apidocs/`` and ``/healthz``.

::

    flask_app = create_flask_app(app, runtime)      # app factory
    # or, init_app style:
    boiler_ext = Boiler()
    boiler_ext.init_app(flask_app, app, runtime)

State lives in ``flask_app.extensions["boiler"]`` (a :class:`BoilerState`).
``runtime_or_db`` is a running :class:`~boiler.runtime.Runtime` (views are
then served from their maintained documents and ``/healthz`` reports it) or
a plain :class:`~boiler.database.Database` (views computed per request).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .application import App
from .auth import TokenVerifier, verifier_from_config
from .config import Config
from .database import Database
from .rest.apidocs import local_templates
from .rest.errors import response_for
from .rest.openapi import openapi_template
from .rest.request import RestServices
from .rest.source import RestResource

if TYPE_CHECKING:
    from .runtime.process import Runtime

log = logging.getLogger("boiler.app")
EXTENSION = "boiler"
#: The request body limit set on a Flask app that has none (``MAX_CONTENT_LENGTH``).
MAX_CONTENT_LENGTH = 1 << 20
#: Where flasgger serves the UI and the document.
APIDOCS_ROUTE = "/apidocs/"
APISPEC_ROUTE = "/apispec_1.json"


@dataclass
class BoilerState:
    """What the extension keeps in ``flask_app.extensions["boiler"]``."""

    app: App | None
    services: RestServices
    resources: list[RestResource] = field(default_factory=list)
    swagger: Any = None

    @property
    def db(self) -> Database:
        return self.services.db

    @property
    def runtime(self) -> Runtime | None:
        runtime: Runtime | None = self.services.runtime
        return runtime

    @property
    def verifier(self) -> TokenVerifier:
        return self.services.verifier


class Boiler:
    """The Flask extension (``Boiler(flask_app, app, runtime)`` or ``init_app`` later)."""

    def __init__(
        self,
        flask_app: Flask | None = None,
        app: App | None = None,
        runtime_or_db: Runtime | Database | None = None,
        **options: Any,
    ) -> None:
        if flask_app is not None:
            self.init_app(flask_app, app, runtime_or_db, **options)

    def init_app(
        self,
        flask_app: Flask,
        app: App | None = None,
        runtime_or_db: Runtime | Database | None = None,
        *,
        verifier: TokenVerifier | None = None,
        resources: Iterable[RestResource] = (),
        apidocs: bool = True,
    ) -> BoilerState:
        """Register ``app``'s REST resources (plus ``resources``), ``/healthz`` and,
        with ``apidocs``, flasgger. Refuses to run twice on one Flask app."""
        if EXTENSION in flask_app.extensions:
            raise RuntimeError("boiler is already initialized on this Flask app")
        # Request bodies are read whole: 1 MiB unless the app set its own limit (413).
        if flask_app.config.get("MAX_CONTENT_LENGTH") is None:
            flask_app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
        db, runtime = _resolve(runtime_or_db)
        if verifier is None:
            config = (app.config if app is not None else None) or Config.from_env()
            verifier = verifier_from_config(config, firebase_app=getattr(db, "firebase_app", None))
        state = BoilerState(app, RestServices(db, verifier, runtime))
        state.resources = [*(app.rest if app is not None else ()), *resources]
        for resource in state.resources:
            flask_app.register_blueprint(resource.blueprint(state.services))
        flask_app.add_url_rule("/healthz", "boiler_healthz", _healthz, methods=["GET"])
        flask_app.register_error_handler(HTTPException, _http_error)
        flask_app.extensions[EXTENSION] = state
        if apidocs:
            state.swagger = _swagger(flask_app, state, app.name if app is not None else "boiler")
        return state


def create_flask_app(
    app: App,
    runtime_or_db: Runtime | Database | None = None,
    *,
    verifier: TokenVerifier | None = None,
    apidocs: bool = True,
) -> Flask:
    """A new Flask app serving ``app``'s REST resources, OpenAPI and ``/healthz``."""
    flask_app = Flask(app.name)
    Boiler().init_app(flask_app, app, runtime_or_db, verifier=verifier, apidocs=apidocs)
    return flask_app


def state_of(flask_app: Flask) -> BoilerState:
    """The :class:`BoilerState` of ``flask_app``."""
    try:
        state: BoilerState = flask_app.extensions[EXTENSION]
    except KeyError:
        raise RuntimeError("boiler is not initialized on this Flask app") from None
    return state


def _resolve(runtime_or_db: Any) -> tuple[Database, Any]:
    if runtime_or_db is None:
        from .context import Context

        return Context.db, None
    if isinstance(runtime_or_db, Database):
        return runtime_or_db, None
    from .runtime.process import Runtime

    if isinstance(runtime_or_db, Runtime):
        return runtime_or_db.db, runtime_or_db
    raise TypeError(f"expected a Runtime or a Database, got {type(runtime_or_db).__name__}")


def _healthz() -> Response:
    from flask import current_app

    runtime = state_of(current_app).runtime
    if runtime is None:
        body: dict[str, Any] = {"running": False, "reason": "no runtime attached"}
    else:  # unauthenticated: counts, never the errors' text (paths, ids, data)
        body = {k: v for k, v in runtime.health().items() if k != "last_error"}
    response = jsonify(body)
    response.status_code = 200 if body.get("running") else 503
    return response


def _http_error(exc: HTTPException) -> Any:
    """Routing errors (404 / 405) under a REST prefix are JSON; others stay as they are."""
    from flask import current_app

    prefixes = [r.url_prefix for r in state_of(current_app).resources if r.url_prefix]
    path = request.path
    if any(path == p or path.startswith(p.rstrip("/") + "/") for p in prefixes):
        return response_for(exc)
    return exc


def _swagger(flask_app: Flask, state: BoilerState, title: str) -> Any:
    from flasgger import Swagger

    flask_app.register_blueprint(local_templates())  # before flasgger's: its templates win
    template = openapi_template(flask_app, state.resources, title=title)
    config = {
        **Swagger.DEFAULT_CONFIG,
        "specs": [
            {
                "endpoint": "apispec_1",
                "route": APISPEC_ROUTE,
                "rule_filter": lambda rule: False,  # the template holds every boiler route
                "model_filter": lambda tag: True,
            }
        ],
        "specs_route": APIDOCS_ROUTE,
        "openapi": template.get("openapi"),
        "uiversion": 3,
    }
    return Swagger(flask_app, template=template, config=config, merge=False)


__all__ = [
    "APIDOCS_ROUTE",
    "APISPEC_ROUTE",
    "Boiler",
    "BoilerState",
    "MAX_CONTENT_LENGTH",
    "create_flask_app",
    "state_of",
]
