"""The ``boiler`` command: ``run`` seeds a fresh directory and writes the views,
``rebuild`` repairs tampered and orphaned views, a bad ``MODULE:ATTR`` is a
usage error (exit code 2).

The running process owns the embedded store (and holds its file's lock); this
test reads its SQLite file through ``open_database("embedded", path=...,
read_only=True)`` — a consistent snapshot as of opening, reopened on each poll
(reading across processes works; writing does not, so the test tampers with
views only while nothing runs, and ``boiler rebuild`` against a running
``boiler run`` fails with a clear error).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from boiler.cli import main
from boiler.cli import run as run_command
from boiler.database import Database, open_database
from boiler.testing import wait_for
from examples.meeting_room.tests.helpers import actual_views, divergence, view_path

ROOT = Path(__file__).resolve().parents[1]
APP = "examples.meeting_room:app"


def _env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BOILER_")
        and k not in ("FIRESTORE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT")
    }
    env.update(
        PYTHONPATH=str(ROOT),  # the app's package; the directory itself is fresh
        BOILER_SECRET_KEY="cli-test-secret",
        BOILER_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    return env


RAN_SWITCH_INTERVAL = 0.00075  # not Python's default: shows the setting reaches the process


@contextmanager
def opened(path: Path, *, read_only: bool = False) -> Iterator[Database]:
    db = open_database("embedded", path=str(path), read_only=read_only)
    try:
        yield db
    finally:
        db.close()


def boiler(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "boiler.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def ran(tmp_path: Path) -> Path:
    """``boiler run`` in a fresh directory until the 3 views exist, then SIGTERM."""
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "boiler.cli", "run", APP],
            cwd=tmp_path,
            env={**_env(), "BOILER_SWITCH_INTERVAL": str(RAN_SWITCH_INTERVAL)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            sqlite = tmp_path / "boiler.sqlite3"

            def three_fresh_views() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"boiler run exited: {log.read_text()}")
                if not sqlite.exists() or "serving" not in log.read_text():
                    return False
                with opened(sqlite, read_only=True) as db:
                    return len(actual_views(db)) == 3 and divergence(db) == ""

            wait_for(three_fresh_views, timeout=60, message=lambda: log.read_text())
            url = re.search(r"serving (http://\S+)", log.read_text())
            assert url is not None, log.read_text()
            health = requests.get(f"{url.group(1)}/healthz", timeout=10).json()
            (tmp_path / "health.json").write_text(json.dumps(health))
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    text = log.read_text()
    assert "demo data written" in text and "boiler: stopped" in text, text
    return tmp_path


@pytest.mark.timeout(180)
def test_run_seeds_fresh_directory_and_writes_views(ran: Path) -> None:
    with opened(ran / "boiler.sqlite3") as db:
        assert sorted(actual_views(db)) == sorted(
            view_path(u) for u in ("joshua", "thomasina", "tijuana")
        )
        assert divergence(db) == ""


@pytest.mark.timeout(180)
def test_run_sets_the_gil_switch_interval(ran: Path) -> None:
    health = json.loads((ran / "health.json").read_text())
    assert health["running"] is True
    assert health["switch_interval"] == pytest.approx(RAN_SWITCH_INTERVAL)  # from the env
    option = next(p for p in run_command.params if p.name == "switch_interval")
    assert option.default is None  # by default Python's own interval stays


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", ["0", "-1", "2", "1e-9", "nan", "inf", "fast"])
def test_a_bad_switch_interval_is_a_usage_error(value: str) -> None:
    result = CliRunner().invoke(main, ["run", APP, "--switch-interval", value])
    assert result.exit_code == 2, result.output
    assert "--switch-interval" in result.output, result.output


@pytest.mark.timeout(180)
def test_rebuild_repairs_tampered_and_orphaned_views(ran: Path) -> None:
    sqlite = ran / "boiler.sqlite3"
    with opened(sqlite) as db:
        tampered = db.get(view_path("tijuana")).to_dict()
        assert tampered is not None
        db.set(view_path("tijuana"), {**tampered, "address": "tampered", "extra": 1})
        db.set(view_path("ghost"), {**tampered, "attending": []})
        assert "stale" in divergence(db) and "orphan" in divergence(db)

    result = boiler("rebuild", APP, cwd=ran)
    assert result.returncode == 0, result.stderr
    assert "3 view(s) checked, 1 written, 1 deleted, 2 unchanged" in result.stderr, result.stderr

    with opened(sqlite) as db:
        assert divergence(db) == ""
        assert db.get(view_path("ghost")).exists is False
        fixed = db.get(view_path("tijuana")).to_dict()
        assert fixed is not None and "extra" not in fixed
        assert fixed["address"] == "9500 Gilman Drive, La Jolla, CA"

    again = boiler("rebuild", APP, cwd=ran)
    assert again.returncode == 0, again.stderr
    assert "3 view(s) checked, 0 written, 0 deleted, 3 unchanged" in again.stderr, again.stderr


@pytest.mark.timeout(180)
def test_a_second_process_on_a_running_embedded_store_gets_a_clear_error(tmp_path: Path) -> None:
    """The running ``boiler run`` holds the SQLite file: ``boiler rebuild`` (or
    a second ``boiler run``) would keep its own copy of the data in memory and
    lose writes, so it refuses to start, naming the file and the process."""
    log = tmp_path / "run.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "boiler.cli", "run", APP],
            cwd=tmp_path,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:

            def serving() -> bool:
                if proc.poll() is not None:
                    raise AssertionError(f"boiler run exited: {log.read_text()}")
                return "serving" in log.read_text()

            wait_for(serving, timeout=60, message=lambda: log.read_text())
            sqlite = str(tmp_path / "boiler.sqlite3")
            for args in (("rebuild", APP), ("run", APP, "--web-only")):
                result = boiler(*args, cwd=tmp_path)
                assert result.returncode == 1, result.stderr
                assert f"the embedded database file {sqlite!r} is open in another process " in (
                    result.stderr.replace("\n", " ")
                ), result.stderr
                assert f"(pid {proc.pid})" in result.stderr, result.stderr
                assert "Traceback" not in result.stderr, result.stderr
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(30) == 0, log.read_text()  # the running one was not disturbed
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    assert "recorded error" not in log.read_text(), log.read_text()
    assert boiler("rebuild", APP, cwd=tmp_path).returncode == 0  # stopped: the file is free


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_separator", "expected MODULE:ATTR"),
        ("no_such_module_xyz:app", "cannot import 'no_such_module_xyz'"),
        ("examples.meeting_room:nope", "has no attribute 'nope'"),
        ("examples.meeting_room:Meeting", "not a boiler.application.App"),
    ],
)
@pytest.mark.parametrize("command", ["run", "rebuild"])
def test_bad_target_is_a_usage_error(command: str, target: str, message: str) -> None:
    result = CliRunner().invoke(main, [command, target])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output


def test_bad_target_exit_code_in_a_real_process(tmp_path: Path) -> None:
    result = boiler("run", "no_such_module_xyz:app", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot import 'no_such_module_xyz'" in result.stderr
    assert not (tmp_path / "boiler.sqlite3").exists()  # nothing opened before the check


def test_token_with_an_unusable_database_path_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BOILER_SECRET_KEY", raising=False)
    monkeypatch.setenv("BOILER_DATABASE_PATH", str(tmp_path / "missing" / "x.sqlite3"))
    result = CliRunner().invoke(main, ["token", "--app", APP, "tijuana"])
    assert result.exit_code == 1, result.output
    assert "cannot read or create the development secret file" in result.output
    assert "missing/x.sqlite3.secret" in result.output and "Traceback" not in result.output
