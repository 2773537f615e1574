"""One exception tree for everything boiler raises on purpose.

Every error a user can cause or observe derives from :class:`BoilerError`, so
``except BoilerError`` catches them all. Messages name the document path, field
or argument at fault.
"""

from __future__ import annotations

from typing import Any


class BoilerError(Exception):
    """Root of every error boiler raises on purpose."""


class ConfigurationError(BoilerError):
    """The configuration is incomplete or inconsistent (e.g. a missing certificate)."""


class InvalidPath(BoilerError, ValueError):
    """A document or collection path is malformed."""


class NotFound(BoilerError, LookupError):
    """A document that must exist does not."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class AlreadyExists(BoilerError):
    """A create-only write hit a document that already exists."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class Conflict(BoilerError):
    """A concurrent change prevented the operation."""


class FailedPrecondition(Conflict):
    """A write precondition (exists / last update time) did not hold."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class TransactionConflict(Conflict):
    """A transaction kept conflicting with concurrent writes past its retries."""


class InvalidTransaction(BoilerError):
    """A transaction was misused (e.g. a read after a write, use after commit)."""


class InvalidQuery(BoilerError, ValueError):
    """A query uses an unsupported operator, an unknown field or a bad value."""


class ValidationError(BoilerError, ValueError):
    """Data does not fit a declared field or schema.

    ``messages`` maps field names to lists of problems, like marshmallow's.
    """

    def __init__(self, message: str | dict[str, Any], *, field: str | None = None) -> None:
        if isinstance(message, dict):
            self.messages: dict[str, Any] = message
            text = "; ".join(f"{k}: {v}" for k, v in message.items())
        else:
            self.messages = {field: [message]} if field else {"_schema": [message]}
            text = f"{field}: {message}" if field else message
        super().__init__(text)
        self.field = field


class Unauthorized(BoilerError):
    """No valid credentials were presented (HTTP 401)."""


class Forbidden(BoilerError):
    """The caller is authenticated but may not access this resource (HTTP 403)."""


class Unavailable(BoilerError):
    """The database did not answer (unreachable, overloaded or timed out).

    Transient: the same request may succeed when retried.
    """


class DatabaseClosed(BoilerError):
    """The database was closed; no further operations are possible."""


class RuntimeFailure(BoilerError):
    """One or more runtime workers failed; ``errors`` holds what they raised."""

    def __init__(self, message: str, errors: list[BaseException]) -> None:
        super().__init__(message)
        self.errors = errors


class DatabaseLocked(ConfigurationError):
    """The embedded store's file is in use by another store (this process or another).

    The embedded store keeps every document in its process's memory: two stores
    on one file would each miss the other's writes and overwrite them, so a file
    is opened by one store at a time. Also raised by writes to a store opened
    with ``read_only=True``, which does not hold the file.
    """

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


__all__ = [
    "AlreadyExists",
    "BoilerError",
    "ConfigurationError",
    "Conflict",
    "DatabaseClosed",
    "DatabaseLocked",
    "FailedPrecondition",
    "Forbidden",
    "InvalidPath",
    "InvalidQuery",
    "InvalidTransaction",
    "NotFound",
    "RuntimeFailure",
    "TransactionConflict",
    "Unauthorized",
    "ValidationError",
]
