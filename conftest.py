"""Shared fixtures: every backend-dependent test runs on each backend.

At the repository root so ``tests/`` and ``examples/`` share them (and one
emulator per session).

The Cloud Firestore emulator is started once per test session (never mocked);
if it cannot start, the firestore-parametrized tests error — they are not
skipped. Restrict backends locally with ``BOILER_TEST_BACKENDS=embedded``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from boiler.database import Database, open_database
from boiler.database.firestore import FirestoreDatabase
from boiler.testing import FirestoreEmulator

ALL_BACKENDS = ("embedded", "firestore")


def _selected_backends() -> list[str]:
    raw = os.environ.get("BOILER_TEST_BACKENDS", ",".join(ALL_BACKENDS))
    chosen = [b.strip() for b in raw.split(",") if b.strip()]
    unknown = set(chosen) - set(ALL_BACKENDS)
    if unknown:
        raise pytest.UsageError(f"BOILER_TEST_BACKENDS: unknown backend(s) {sorted(unknown)}")
    return chosen


BACKENDS = _selected_backends()


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[FirestoreEmulator]:
    emulator = FirestoreEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def project_id() -> str:
    """A fresh Firestore project id per test: isolation without global resets."""
    return f"boiler-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(backend: str, request: pytest.FixtureRequest, project_id: str) -> Iterator[Database]:
    """An empty database of each backend kind."""
    if backend == "embedded":
        database = open_database("embedded", path=":memory:")
    else:
        emulator: FirestoreEmulator = request.getfixturevalue("firestore_emulator")
        database = open_database("firestore", project=project_id, emulator_host=emulator.host)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def fdb(firestore_emulator: FirestoreEmulator, project_id: str) -> Iterator[FirestoreDatabase]:
    """A Firestore database on the session's emulator (Firestore-only tests)."""
    database = FirestoreDatabase(project=project_id, emulator_host=firestore_emulator.host)
    try:
        yield database
    finally:
        database.close()


@pytest.fixture
def ctx_db(db: Database) -> Iterator[Database]:
    """``db`` installed as the ``Context`` database for one test (the previous
    context, if any, is restored afterwards)."""
    from boiler.context import Context

    with Context.use(db):
        yield db
