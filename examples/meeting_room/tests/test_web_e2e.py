"""End to end: the meeting-room page in headless Chromium against the real server.

The server is the one ``boiler run`` starts (runtime + HTTP + Socket.IO in one
process), run in-process here so the test can write domain documents to the
same embedded store (a SQLite file) the runtime watches. Chromium and its
driver come from Debian (``apt-get install chromium chromium-driver``): when
they are missing these tests FAIL, they are not skipped. Selenium gets the
driver path explicitly, so Selenium Manager never downloads anything.

The last state of the page is saved to ``artifacts/meeting_room.png``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from boiler.app import create_flask_app
from boiler.application import App
from boiler.auth import DevTokenVerifier
from boiler.context import Context
from boiler.database import Database, open_database
from boiler.serve import Server
from boiler.testing import wait_for

from .. import app
from ..domain import Ticket
from ..web import SOCKET_IO_JS, MeetingRoomWeb

CHROMIUM = os.environ.get("BOILER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("BOILER_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,900",
)
ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts"
TIMEOUT = 30.0  # generous: Chromium on a loaded 2-core machine

# The whole page state in one script call (no stale elements between reads).
PAGE_STATE_JS = """
const text = (id) => document.getElementById(id).textContent.trim();
return {
  connection: document.getElementById("connection").dataset.state,
  error: document.getElementById("error").hidden ? "" : text("error"),
  attending: [...document.querySelectorAll("#attending li .name")].map((e) => e.textContent),
  hearingAids: [...document.querySelectorAll("#attending li")]
    .filter((li) => li.querySelector(".hearing-aid")).map((li) => li.dataset.name),
  hearingAidCount: text("hearing-aid-count"),
  address: text("address"),
  coordinates: text("coordinates"),
  status: text("status"),
  inSession: document.getElementById("in-session").checked,
  toggleEnabled: !document.getElementById("in-session").disabled,
  url: window.location.href,
  loadMark: window.__e2eLoadMark || null,
};
"""


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Server, Database]]:
    """The example app seeded on a SQLite file, its runtime and its server on a free port."""
    db = open_database("embedded", path=str(tmp_path / "meeting_room.sqlite3"))
    with Context.use(db):
        app.seed_if_empty(db)
    runtime = app.runtime(db).start()
    server = Server(
        app, db, verifier=DevTokenVerifier(secrets.token_urlsafe(16)), runtime=runtime, port=0
    )
    try:
        server.start()
        assert runtime.wait_idle(TIMEOUT), runtime.health()
        yield server, db
        assert server.errors == []
    finally:
        server.stop()
        runtime.stop()  # raises any error the runtime recorded
        db.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Chromium (Debian's) through Selenium, with a fresh profile."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"headless Chromium is required and {', '.join(missing)} is missing: "
            "apt-get update && apt-get install -y chromium chromium-driver",
            pytrace=False,
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service
    except ImportError as e:
        pytest.fail(f"selenium is required: pip install -e '.[dev]' ({e})", pytrace=False)
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager is never run (it would download).
    service = Service(executable_path=CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers --------------------------------------------------------------------------------------


def page_state(driver: Any) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(PAGE_STATE_JS)
    return state


def wait_page(driver: Any, check: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    """Poll the page until ``check(state)`` holds; the timeout names the last state."""
    last: dict[str, Any] = {}

    def ok() -> bool:
        last.update(page_state(driver))
        return check(last)

    wait_for(ok, timeout=TIMEOUT, message=lambda: f"{what}; page state {last}")
    return last


def console_errors(driver: Any) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


# -- the end-to-end test ----------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_page_follows_the_view_live_and_closes_the_meeting(
    served: tuple[Server, Database], browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    server, db = served
    assert SOCKET_IO_JS.is_file(), f"run `npm ci` in {SOCKET_IO_JS.parents[3]}"
    assert isinstance(server.verifier, DevTokenVerifier)
    token = server.verifier.issue("tijuana", 600)
    try:
        browser.get(f"{server.url}/?meeting=meeting_1&token={token}")

        # 1. The current view arrives over Socket.IO and is rendered.
        state = wait_page(
            browser,
            lambda s: s["attending"] == ["Thomasina Manes", "Tijuana Furlong"],
            "Thomasina and Tijuana attending",
        )
        assert state["connection"] == "connected"
        assert state["error"] == ""
        assert state["address"] == "9500 Gilman Drive, La Jolla, CA"
        assert state["coordinates"] == "32.880361° N, 117.242929° W"
        assert state["status"] == "In session" and state["inSession"] and state["toggleEnabled"]
        assert state["hearingAids"] == ["Tijuana Furlong"] and state["hearingAidCount"] == "1"
        assert "token=" not in state["url"]  # dropped from the address bar
        attending = browser.find_element(By.ID, "attending")
        assert attending.get_attribute("aria-live") == "polite"

        # 2. A domain write (another program's) reaches the page without a reload.
        browser.execute_script("window.__e2eLoadMark = 'same page'")
        ticket = Ticket.get(doc_id="ticket_thomasina", db=db)
        ticket.attendance = False
        ticket.save(db=db)
        state = wait_page(
            browser, lambda s: s["attending"] == ["Tijuana Furlong"], "Thomasina dropped"
        )
        assert state["loadMark"] == "same page"
        assert state["hearingAidCount"] == "1"

        # 3. The toggle PATCHes the view; the meeting closes in the database.
        browser.find_element(By.ID, "in-session").click()
        wait_for(
            lambda: db.get("meetings/meeting_1").get("status") == "closed",
            timeout=TIMEOUT,
            message=lambda: f"meeting closed; page state {page_state(browser)}",
        )
        state = wait_page(
            browser,
            lambda s: s["status"] == "Not in session" and not s["inSession"] and s["toggleEnabled"],
            "the page showing the closed meeting",
        )
        assert state["error"] == "" and state["loadMark"] == "same page"
        assert console_errors(browser) == []
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "meeting_room.png"))


@pytest.mark.timeout(240)
def test_page_shows_a_refused_token(served: tuple[Server, Database], browser: Any) -> None:
    server, _ = served
    browser.get(f"{server.url}/?token=not.a-valid-token")
    state = wait_page(browser, lambda s: s["error"] != "", "an error message")
    assert "unauthorized" in state["error"].lower()
    assert browser.find_element("id", "sign-in").is_displayed()


@pytest.mark.timeout(240)
def test_page_signs_out_when_the_token_expires(
    served: tuple[Server, Database], browser: Any
) -> None:
    server, _ = served
    assert isinstance(server.verifier, DevTokenVerifier)
    browser.get(f"{server.url}/?meeting=meeting_1&token={server.verifier.issue('tijuana', 3)}")
    wait_page(browser, lambda s: s["connection"] == "connected", "the live view")
    state = wait_page(browser, lambda s: "expired" in s["error"], "the expiry error")
    assert "(401)" in state["error"]
    assert browser.find_element("id", "sign-in").is_displayed()


# -- serving (no browser) ---------------------------------------------------------------------------


def _client(web: MeetingRoomWeb) -> Any:
    db = open_database("embedded", path=":memory:")
    verifier = DevTokenVerifier("test-secret")
    flask_app = create_flask_app(App("web", rest=[web]), db, verifier=verifier, apidocs=False)
    return flask_app.test_client(), verifier, db


def test_page_and_assets_are_served_locally() -> None:
    client, _, db = _client(MeetingRoomWeb(dev_sign_in=False))
    try:
        page = client.get("/")
        assert page.status_code == 200 and b'src="/web/app.js"' in page.data
        assert b"http" not in page.data  # no third-party host: every asset is local
        for path in ("/web/app.js", "/web/style.css"):
            assert client.get(path).status_code == 200, path
        vendor = client.get("/web/vendor/socket.io.min.js")
        assert vendor.status_code == 200, "run `npm ci` in examples/meeting_room/web"
        assert client.get("/web/package.json").status_code == 404  # only the page's own files
    finally:
        db.close()


def test_dev_sign_in_is_off_unless_enabled() -> None:
    client, _, db = _client(MeetingRoomWeb(dev_sign_in=False))
    try:
        off = client.post("/web/dev-sign-in", json={"uid": "tijuana"})
        assert off.status_code == 404 and "off" in off.json["error"]["message"]
    finally:
        db.close()
    client, verifier, db = _client(MeetingRoomWeb(dev_sign_in=True))
    try:
        issued = client.post("/web/dev-sign-in", json={"uid": "tijuana"})
        assert issued.status_code == 200
        assert verifier.verify(issued.json["token"]).uid == "tijuana"
        assert client.post("/web/dev-sign-in", json={"uid": ""}).status_code == 400
    finally:
        db.close()
