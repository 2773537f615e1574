"""OpenAPI at /apispec_1.json and Swagger UI at /apidocs/, checked against real responses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests

from boiler.app import create_flask_app
from boiler.auth import DevTokenVerifier
from boiler.database import Database
from boiler.rest.testing import serve
from examples.meeting_room import app, seed

VERIFIER = DevTokenVerifier("openapi-test-secret")
PATH = "/meeting_sessions/{meeting_id}"


@pytest.fixture
def base(db: Database) -> Iterator[str]:
    seed.seed(db)
    with serve(create_flask_app(app, db, verifier=VERIFIER)) as url:
        yield url


@pytest.fixture
def spec(base: str) -> dict[str, Any]:
    response = requests.get(base + "/apispec_1.json", timeout=10)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = spec["components"]["schemas"][name]
    return node


def validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Validator:
    """A JSON Schema validator for ``schema`` with the spec's components resolvable."""
    root = {**schema, "components": spec["components"]}
    cls = jsonschema.validators.validator_for(root)
    return cls(root)  # type: ignore[no-any-return]


def response_schema(spec: dict[str, Any], method: str, code: str = "200") -> dict[str, Any]:
    op = spec["paths"][PATH][method]
    return op["responses"][code]["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_spec_has_the_routes_and_path_params(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"][PATH]) == {"get", "patch"}
    for method in ("get", "patch"):
        op = spec["paths"][PATH][method]
        (param,) = op["parameters"]
        assert param == {**param, "in": "path", "name": "meeting_id", "required": True}
        assert param["schema"]["type"] == "string"
        assert op["security"] == [{"bearerAuth": []}]
        assert {"200", "401", "403", "404"} <= set(op["responses"])
    assert {"400", "409"} <= set(spec["paths"][PATH]["patch"]["responses"])
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        **spec["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }


def test_response_schema_has_real_types_and_camel_case(spec: dict[str, Any]) -> None:
    view = resolve(spec, response_schema(spec, "get"))
    props = view["properties"]
    assert set(props) == {
        "latitude",
        "longitude",
        "address",
        "inSession",
        "attending",
        "numHearingAidRequested",
    }
    assert set(view["required"]) == set(props)
    assert props["inSession"]["type"] == "boolean"
    assert props["latitude"]["type"] == "number"
    assert props["address"]["type"] == "string"
    assert props["numHearingAidRequested"]["type"] == "integer"
    assert props["attending"]["type"] == "array"
    item = resolve(spec, props["attending"]["items"])
    assert item["type"] == "object"
    assert item["properties"] == {
        "name": {"type": "string"},
        "organization": {"type": "string"},
        "hearingAidRequested": {"type": "boolean"},
    }
    assert props["numHearingAidRequested"].get("readOnly") is True
    assert "readOnly" not in props["inSession"]


def test_request_schema_lists_writable_fields_only(spec: dict[str, Any]) -> None:
    body = spec["paths"][PATH]["patch"]["requestBody"]
    assert body["required"] is True
    schema = resolve(spec, body["content"]["application/json"]["schema"])
    assert schema["properties"] == {"inSession": {"type": "boolean"}}
    assert schema.get("additionalProperties") is False
    check = validator(spec, body["content"]["application/json"]["schema"])
    assert check.is_valid({"inSession": False})
    assert not check.is_valid({"inSession": "no"})
    assert not check.is_valid({"color": "red"})


def test_no_internal_or_snake_case_names(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert "_boiler" not in text
    for name in ("in_session", "num_hearing_aid_requested", "hearing_aid_requested"):
        assert name not in text


def test_real_responses_match_the_spec(base: str, spec: dict[str, Any]) -> None:
    headers = {"Authorization": f"Bearer {VERIFIER.issue('tijuana')}"}
    url = base + "/meeting_sessions/meeting_1"
    view_check = validator(spec, response_schema(spec, "get"))
    got = requests.get(url, headers=headers, timeout=10)
    assert got.status_code == 200
    view_check.validate(got.json())
    patched = requests.patch(url, json={"inSession": False}, headers=headers, timeout=10)
    assert patched.status_code == 200
    validator(spec, response_schema(spec, "patch")).validate(patched.json())
    # the schema really constrains: a wrongly typed body fails it
    assert not view_check.is_valid({**got.json(), "inSession": "yes"})
    assert not view_check.is_valid({**got.json(), "attending": [{"name": 1}]})
    # error bodies match the Error schema
    bad = requests.patch(url, data="{", headers=headers, timeout=10)
    unauthorized = requests.get(url, timeout=10)
    for response, code in ((bad, "400"), (unauthorized, "401")):
        assert response.status_code == int(code)
        method = "patch" if response is bad else "get"
        validator(spec, response_schema(spec, method, code)).validate(response.json())


def test_apidocs_html_uses_local_assets_only(base: str) -> None:
    response = requests.get(base + "/apidocs/", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    html = response.text
    assets = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', html)
    assert assets, "the page references its assets"
    assert not re.search(r"https?://", html), "no third-party (CDN) URL"
    for asset in assets:
        assert asset.startswith("/"), asset
        assert requests.get(base + asset, timeout=10).status_code == 200, asset
    assert "/apispec_1.json" in html
