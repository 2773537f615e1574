"""The meeting-room web page: ``GET /`` serves ``web/index.html`` and its assets.

The page signs in with a bearer token, follows the caller's MeetingSession
over Socket.IO (``/meeting_sessions``) and closes or reopens the meeting with
``PATCH /meeting_sessions/<id>``. Its only third-party asset, the Socket.IO
browser client, comes from ``web/node_modules`` (``npm ci`` in ``web/``) and
is served from ``/web/vendor/socket.io.min.js``: nothing is loaded from a CDN.

Development sign-in (off by default): with ``BOILER_WEB_DEV_SIGN_IN=1`` (or
``MeetingRoomWeb(dev_sign_in=True)``) and development tokens configured,
``POST /web/dev-sign-in`` ``{"uid": "tijuana"}`` answers a token for ANY uid.
Never enable it where strangers can reach the server.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, send_from_directory
from werkzeug.exceptions import NotFound

from boiler.auth import DevTokenVerifier
from boiler.exceptions import ConfigurationError
from boiler.rest import RestResource, RestServices, current_services, error_response
from boiler.rest.errors import BadRequest
from boiler.rest.request import json_object
from boiler.rest.source import Operation, error_responses, json_content

log = logging.getLogger("boiler.examples.web")

WEB_DIR = Path(__file__).parent / "web"
#: The Socket.IO browser client installed by ``npm ci`` in ``web/``.
SOCKET_IO_JS = WEB_DIR / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
#: Served under ``/web/``: the page's own files only (never node_modules wholesale).
ASSETS = ("app.js", "style.css")
DEV_SIGN_IN_ENV = "BOILER_WEB_DEV_SIGN_IN"
DEV_TOKEN_TTL = 3600.0


class MeetingRoomWeb(RestResource):
    """The page, its assets and (when enabled) the development sign-in route.

    ``dev_sign_in=None`` reads ``BOILER_WEB_DEV_SIGN_IN`` when the Flask app is built.
    """

    name = "meeting_room_web"
    tag = "Development"

    def __init__(self, *, dev_sign_in: bool | None = None) -> None:
        self.dev_sign_in = dev_sign_in

    def dev_sign_in_enabled(self) -> bool:
        if self.dev_sign_in is not None:
            return self.dev_sign_in
        return os.environ.get(DEV_SIGN_IN_ENV, "").strip().lower() in ("1", "true", "yes", "on")

    # -- the JSON API (documented in /apidocs) ---------------------------------------------
    def operations(self) -> list[Operation]:
        if not self.dev_sign_in_enabled():
            return []
        doc = {
            "tags": [self.tag],
            "summary": "Issue a development token for a uid (development only)",
            "requestBody": json_content(
                {"type": "object", "properties": {"uid": {"type": "string"}}}, required=True
            ),
            "responses": {
                "200": {"description": "a bearer token for the uid"},
                **error_responses(False, ("400",)),
            },
        }
        return [
            Operation("/web/dev-sign-in", "POST", "dev_sign_in", self.issue, auth=False, doc=doc)
        ]

    def issue(self) -> dict[str, Any]:
        verifier = current_services().verifier
        assert isinstance(verifier, DevTokenVerifier)  # checked in blueprint()
        uid = json_object().get("uid")
        if not isinstance(uid, str) or not uid.strip() or "/" in uid:
            raise BadRequest("uid must be a non-empty string without '/'")
        token = verifier.issue(uid.strip(), DEV_TOKEN_TTL)
        return {"uid": uid.strip(), "token": token, "expiresIn": DEV_TOKEN_TTL}

    # -- the static files --------------------------------------------------------------------
    def blueprint(self, services: RestServices) -> Blueprint:
        if self.dev_sign_in_enabled():
            if not isinstance(services.verifier, DevTokenVerifier):
                raise ConfigurationError(
                    f"{DEV_SIGN_IN_ENV} needs development tokens (the embedded store, "
                    "BOILER_SECRET_KEY); this server verifies Firebase ID tokens"
                )
            log.warning("development sign-in is ON: /web/dev-sign-in issues tokens for any uid")
        if not SOCKET_IO_JS.is_file():
            log.warning(
                "%s is missing: run `npm ci` in %s (the page needs the Socket.IO client)",
                SOCKET_IO_JS,
                WEB_DIR,
            )
        bp = super().blueprint(services)
        if not self.dev_sign_in_enabled():
            bp.add_url_rule("/web/dev-sign-in", "dev_sign_in_off", _off, methods=["POST"])
        bp.add_url_rule("/", "index", _index, methods=["GET"])
        bp.add_url_rule("/web/<name>", "asset", _asset)
        bp.add_url_rule("/web/vendor/socket.io.min.js", "socket_io", _socket_io)
        return bp


def _index() -> Response:
    return _no_store(send_from_directory(WEB_DIR, "index.html"))


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound(name)
    return _no_store(send_from_directory(WEB_DIR, name))


def _socket_io() -> Response:
    return send_from_directory(SOCKET_IO_JS.parent, SOCKET_IO_JS.name, max_age=3600)


def _off() -> Response:
    return error_response(404, "not_found", f"development sign-in is off ({DEV_SIGN_IN_ENV})")


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-cache"  # the page changes with the app
    return response


meeting_room_web = MeetingRoomWeb()

__all__ = ["DEV_SIGN_IN_ENV", "SOCKET_IO_JS", "MeetingRoomWeb", "meeting_room_web"]
