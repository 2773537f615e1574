"""Test helpers users get too: a real Cloud Firestore emulator process, a real
Firebase Auth emulator process and poll-with-deadline waiting (never fixed sleeps)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

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


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group led by ``proc`` (started with
    ``start_new_session=True``), then SIGKILL it if it outlives ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) != 0


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

    @property
    def pid(self) -> int | None:
        """The started process (it leads the emulator's process group); None if not started."""
        return None if self._proc is None else self._proc.pid

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
        stop_process_group(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        # java can hold the port a moment after the wrapper exits: wait, so a new
        # emulator on the same port never talks to the old one
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _port_free(self.port):
            time.sleep(0.05)

    def restart(self) -> FirestoreEmulator:
        """Stop and start again on the same port: an empty emulator that clients
        already pointed at it reconnect to (a server restart, for fault tests)."""
        self.stop()
        return self.start()

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Where ``npm ci`` installs the pinned Firebase CLI in a source checkout.
FIREBASE_TOOLS_DIR = Path(__file__).resolve().parent.parent / "tools" / "firebase"
#: The API key the Auth emulator accepts for its project (any key works).
AUTH_EMULATOR_API_KEY = "fake-api-key"
_IDENTITY = "identitytoolkit.googleapis.com/v1"


class AuthEmulatorError(EmulatorError):
    """The Firebase Auth emulator could not be found or started, or refused a request."""


def _firebase_cli() -> str:
    local = FIREBASE_TOOLS_DIR / "node_modules" / ".bin" / "firebase"
    if local.exists():
        return str(local)
    return shutil.which("firebase") or str(local)


class AuthEmulator:
    """The real Firebase Auth emulator (``firebase emulators:start --only auth``)
    in its own process group, serving one ``demo-`` project.

    It runs offline: the ``demo-`` project keeps the CLI away from Google, ``CI``
    skips its message-of-the-day fetch and ``NO_UPDATE_NOTIFIER`` its update
    check; a private config and temp directory keep it away from the user's
    Firebase login, usage-statistics opt-in and other emulators' hub files.
    Point firebase-admin at it with ``FIREBASE_AUTH_EMULATOR_HOST=emulator.host``.

    Users and tokens go through the emulator's REST API: ``create_user``,
    ``sign_in`` (a real emulator ID token), ``set_claims``, ``disable_user``,
    ``revoke_tokens``, ``delete_user``, ``reset``.
    """

    def __init__(
        self,
        *,
        project_id: str = "demo-boiler",
        port: int | None = None,
        cli: str | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        if not project_id.startswith("demo-"):
            raise ValueError(
                f"AuthEmulator needs a 'demo-' project id (got {project_id!r}): "
                "any other makes the Firebase CLI try to reach Google"
            )
        self.project_id = project_id
        self.port = port or free_port()
        self.cli = cli or os.environ.get("BOILER_FIREBASE_CLI") or _firebase_cli()
        self.start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the value for ``FIREBASE_AUTH_EMULATOR_HOST``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _write_config(self, directory: str) -> None:
        ports = {self.port}
        while len(ports) < 3:  # the hub and logging emulators want ports of their own
            ports.add(free_port())
        hub, logging = sorted(ports - {self.port})
        config = {
            "emulators": {
                "auth": {"host": "127.0.0.1", "port": self.port},
                "hub": {"host": "127.0.0.1", "port": hub},
                "logging": {"host": "127.0.0.1", "port": logging},
                "ui": {"enabled": False},
                "singleProjectMode": True,
            }
        }
        with open(os.path.join(directory, "firebase.json"), "w") as fh:
            json.dump(config, fh)

    def start(self) -> AuthEmulator:
        if self._proc is not None:
            return self
        if not os.path.exists(self.cli):
            raise AuthEmulatorError(
                f"Firebase CLI not found at {self.cli!r}: run `npm ci` in {FIREBASE_TOOLS_DIR} "
                "(pinned firebase-tools) or set BOILER_FIREBASE_CLI"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="firebase-auth-emulator-")
        directory = self._dir.name
        self._write_config(directory)
        os.mkdir(os.path.join(directory, "config"))
        env = {
            **os.environ,
            "CI": "true",
            "NO_UPDATE_NOTIFIER": "1",
            "XDG_CONFIG_HOME": os.path.join(directory, "config"),
            "TMPDIR": directory,
        }
        with open(os.path.join(directory, "emulator.log"), "wb") as log:
            self._proc = subprocess.Popen(
                [self.cli, "emulators:start", "--only", "auth", "--project", self.project_id],
                cwd=directory,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        atexit.register(self.stop)  # never leave node running after the interpreter exits
        try:
            wait_for(
                self._ready,
                timeout=self.start_timeout,
                interval=0.05,
                message=f"the Auth emulator on {self.host}",
            )
        except TimeoutError as e:
            tail = self.log_tail()
            self.stop()
            raise AuthEmulatorError(f"{e}; its log ends with: {tail}") from e
        except BaseException:
            self.stop()
            raise
        return self

    def _ready(self) -> bool:
        proc = self._proc
        if proc is not None and proc.poll() is not None:
            raise AuthEmulatorError(
                f"Auth emulator exited with {proc.returncode}: {self.log_tail()}"
            )
        return self.is_ready()

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=1) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return bool(isinstance(body, dict) and body.get("authEmulator", {}).get("ready"))

    def log_tail(self, size: int = 2000) -> str:
        if self._dir is None:
            return ""
        try:
            with open(os.path.join(self._dir.name, "emulator.log"), "rb") as fh:
                return fh.read()[-size:].decode("utf-8", "replace")
        except OSError:
            return ""

    def _call(
        self, path: str, body: Mapping[str, Any] | None = None, *, method: str = "POST"
    ) -> dict[str, Any]:
        """One emulator REST call; admin calls carry ``Bearer owner`` like the SDKs."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "Authorization": "Bearer owner"},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise AuthEmulatorError(
                f"Auth emulator refused {method} {path.split('?')[0]}: {e.code} {detail}"
            ) from e
        except (urllib.error.URLError, OSError) as e:
            raise AuthEmulatorError(f"Auth emulator unreachable at {self.host}: {e}") from e
        result: dict[str, Any] = json.loads(raw) if raw else {}
        return result

    def _admin(self, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call(f"{_IDENTITY}/projects/{self.project_id}/{operation}", body)

    def create_user(
        self, uid: str, email: str, password: str, claims: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Create an email/password user with this ``uid`` (and custom ``claims``)."""
        user = self._admin("accounts", {"localId": uid, "email": email, "password": password})
        if claims:
            self.set_claims(uid, claims)
        return user

    def set_claims(self, uid: str, claims: Mapping[str, Any]) -> None:
        """Set ``uid``'s custom claims; tokens issued from now on carry them."""
        self._admin("accounts:update", {"localId": uid, "customAttributes": json.dumps(claims)})

    def sign_in(self, email: str, password: str) -> str:
        """Sign in with email and password; returns the emulator's ID token."""
        result = self._call(
            f"{_IDENTITY}/accounts:signInWithPassword?key={AUTH_EMULATOR_API_KEY}",
            {"email": email, "password": password, "returnSecureToken": True},
        )
        return str(result["idToken"])

    def disable_user(self, uid: str, disabled: bool = True) -> None:
        self._admin("accounts:update", {"localId": uid, "disableUser": disabled})

    def revoke_tokens(self, uid: str) -> None:
        """Revoke ``uid``'s tokens issued before the current second (Firebase's granularity)."""
        self._admin("accounts:update", {"localId": uid, "validSince": str(int(time.time()))})

    def delete_user(self, uid: str) -> None:
        self._admin("accounts:delete", {"localId": uid})

    def reset(self) -> None:
        """Delete every user of the project."""
        self._call(f"emulator/v1/projects/{self.project_id}/accounts", method="DELETE")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            atexit.unregister(self.stop)
            stop_process_group(proc)
        directory, self._dir = self._dir, None
        if directory is not None:
            directory.cleanup()

    def __enter__(self) -> AuthEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = [
    "AuthEmulator",
    "AuthEmulatorError",
    "EmulatorError",
    "FirestoreEmulator",
    "free_port",
    "stop_process_group",
    "wait_for",
]
