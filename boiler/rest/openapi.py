"""The OpenAPI document of a Flask app's boiler REST resources (apispec + flasgger)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec_webframeworks.flask import FlaskPlugin
from flasgger import APISpec
from flask import Flask

from .schema import ErrorSchema
from .source import RestResource

OPENAPI_VERSION = "3.0.3"
#: The security scheme every authenticated operation names.
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A Firebase ID token, or a boiler development token (`boiler token`).",
}


def openapi_template(
    flask_app: Flask,
    resources: Iterable[RestResource],
    *,
    title: str,
    version: str = "1.0.0",
) -> dict[str, Any]:
    """The OpenAPI document (a flasgger template) for ``resources`` registered on ``flask_app``."""
    spec = APISpec(
        title=title,
        version=version,
        openapi_version=OPENAPI_VERSION,
        plugins=[FlaskPlugin(), MarshmallowPlugin()],
    )
    spec.components.security_scheme("bearerAuth", BEARER_SCHEME)
    spec.components.schema("Error", schema=ErrorSchema)
    for resource in resources:
        for op in resource.operations():
            view = flask_app.view_functions[f"{resource.blueprint_name}.{op.endpoint}"]
            spec.path(view=view, app=flask_app, operations={op.method.lower(): dict(op.doc)})
    return spec.to_flasgger(flask_app)


__all__ = ["BEARER_SCHEME", "OPENAPI_VERSION", "openapi_template"]
