"""Serving a Flask app over real HTTP in tests (and docs)::

with serve(flask_app) as base_url:
    requests.get(f"{base_url}/healthz")
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server


@contextmanager
def serve(flask_app: Flask, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run ``flask_app`` on a threaded Werkzeug server; yields its base URL.

    ``port=0`` picks a free port. The server is shut down on exit.
    """
    server = make_server(host, port, flask_app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.01,), name="boiler-test-http", daemon=True
    )
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


__all__ = ["serve"]
