"""Test helpers users get too: a real Cloud Firestore emulator process and
poll-with-deadline waiting (never fixed sleeps)."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from .exceptions import BoilerError

T = TypeVar("T")

_EMULATOR_BINARY = (
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator"
)


class EmulatorError(BoilerError):
    """The Firestore emulator could not be found, started or reset."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 10.0,
    interval: float = 0.005,
    message: str | Callable[[], str] = "condition",
) -> T:
    """Poll ``predicate`` until it returns a truthy value; return that value.

    Raises ``TimeoutError`` naming ``message`` after ``timeout`` seconds. The
    interval grows gently (up to 50 ms) so fast reactions are seen fast.
    """
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {text}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)


class FirestoreEmulator:
    """The real Cloud Firestore emulator (Java) in its own process group.

    ``start()`` waits until it answers; ``stop()`` signals the whole process
    group (signalling only the parent would orphan java); ``reset(project)``
    deletes every document of a project.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        rules_file: str | None = None,
        binary: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.port = port or free_port()
        self.rules_file = rules_file
        self.binary = binary or os.environ.get("BOILER_FIRESTORE_EMULATOR") or _EMULATOR_BINARY
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIRESTORE_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        if os.path.exists(self.binary):
            cmd = [self.binary, "--host=127.0.0.1", f"--port={self.port}"]
        elif shutil.which("gcloud"):
            cmd = ["gcloud", "emulators", "firestore", "start", f"--host-port={self.host}"]
        else:
            raise EmulatorError(
                f"Firestore emulator not found at {self.binary!r} and no gcloud on PATH; "
                "install the Google Cloud CLI with the cloud-firestore-emulator component"
            )
        if self.rules_file:
            cmd.append(f"--rules={self.rules_file}")
        return cmd

    def start(self) -> FirestoreEmulator:
        if self._proc is not None:
            return self
        self._log = tempfile.NamedTemporaryFile(prefix="firestore-emulator-", suffix=".log")
        self._proc = subprocess.Popen(
            self._command(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        atexit.register(self.stop)  # never leave a java orphan behind on interpreter exit
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmulatorError(
                    f"Firestore emulator exited with {self._proc.returncode}: {self.log_tail()}"
                )
            if self.is_ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise EmulatorError(f"Firestore emulator not ready after {self.start_timeout}s")

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, size: int = 2000) -> str:
        if self._log is None:
            return ""
        with open(self._log.name, "rb") as fh:
            return fh.read()[-size:].decode("utf-8", "replace")

    def reset(self, project: str) -> None:
        """Delete every document of ``project`` (listeners see removals)."""
        url = f"http://{self.host}/emulator/v1/projects/{project}/databases/(default)/documents"
        req = urllib.request.Request(url, method="DELETE")
        try:
            with urllib.request.urlopen(req, timeout=10):
                pass
        except (urllib.error.URLError, OSError) as e:
            raise EmulatorError(f"could not reset emulator project {project!r}: {e}") from e

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self.stop)
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["EmulatorError", "FirestoreEmulator", "free_port", "wait_for"]
