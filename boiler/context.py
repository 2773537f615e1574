"""The current application context: which configuration and database are in use.

:class:`AppContext` is the explicit object (config + open database +
``firebase_app``). ``Context`` is the seed-compatible facade over the one
installed for the process::

    CTX = context.Context
    CTX.read(config.Config(app_name="demo", testing=True))
    CTX.db                # the Database in use
    CTX.firebase_app      # firebase_admin app for Firestore, else None

No configuration at all means the embedded store: the first use of
``CTX.db`` before :meth:`ContextFacade.read` or :meth:`ContextFacade.use`
configures from :meth:`Config.from_env` (by default an embedded store in
``boiler.sqlite3`` in the working directory). Tests and apps holding an open
database install it with ``CTX.use(db)`` (also a context manager that restores
what was installed before).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .config import Config
from .database import Database, Transaction, open_database
from .exceptions import DatabaseLocked

_log = logging.getLogger(__name__)
T = TypeVar("T")


class AppContext:
    """A configuration with its open database (and Firebase app for Firestore).

    ``owns_db`` tells whether :meth:`close` closes the database: true when the
    context opened it (:meth:`from_config`), false for a database handed in.
    """

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        firebase_app: Any = None,
        owns_db: bool = False,
    ) -> None:
        self.config = config
        self.db = db
        self.firebase_app = firebase_app
        self.owns_db = owns_db

    @classmethod
    def from_config(cls, config: Config) -> AppContext:
        """Open the backend ``config`` selects."""
        db = open_database(config.backend, **config.database_options())
        return cls(config, db, firebase_app=getattr(db, "firebase_app", None), owns_db=True)

    @property
    def backend(self) -> str:
        """``"embedded"`` or ``"firestore"``."""
        return self.db.backend_name

    def close(self) -> None:
        """Close the database if this context opened it."""
        if self.owns_db:
            self.db.close()

    def __repr__(self) -> str:
        return f"AppContext(backend={self.backend!r}, config={self.config!r})"


class _Restore:
    """Returned by :meth:`ContextFacade.use`; as a context manager, restores the
    previously installed context on exit."""

    def __init__(self, facade: ContextFacade, previous: AppContext | None, ctx: AppContext) -> None:
        self._facade = facade
        self._previous = previous
        self.context = ctx

    def __enter__(self) -> AppContext:
        return self.context

    def __exit__(self, *exc: object) -> None:
        self._facade._swap(self._previous)


class ContextFacade:
    """Process-wide access to the installed :class:`AppContext` (``Context``/``CTX``)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._current: AppContext | None = None

    # -- installing -----------------------------------------------------------
    def read(self, config: Config) -> AppContext:
        """Open the database ``config`` selects and make it current.

        A database previously opened by ``read`` is closed.
        """
        if not isinstance(config, Config):
            raise TypeError(f"Context.read() expects a Config, got {type(config).__name__}")
        try:
            ctx = AppContext.from_config(config)
        except DatabaseLocked:
            # The current context may hold that very file: hand it over.
            with self._lock:
                old = self._current
                if old is None or not _holds_same_file(old, config):
                    raise
                self._current = None
            old.close()
            ctx = AppContext.from_config(config)
            self._swap(ctx)
            return ctx
        old = self._swap(ctx)
        if old is not None:
            old.close()
        return ctx

    def use(
        self, db: Database, *, config: Config | None = None, firebase_app: Any = None
    ) -> _Restore:
        """Install an already-open ``db`` (not closed by this facade).

        ``with Context.use(db): ...`` restores the previous context on exit.
        """
        if not isinstance(db, Database):
            raise TypeError(f"Context.use() expects a Database, got {type(db).__name__}")
        app = firebase_app if firebase_app is not None else getattr(db, "firebase_app", None)
        ctx = AppContext(config or Config(database=db.backend_name), db, firebase_app=app)
        return _Restore(self, self._swap(ctx), ctx)

    def close(self) -> None:
        """Uninstall the current context, closing its database if it opened it."""
        old = self._swap(None)
        if old is not None:
            old.close()

    def _swap(self, ctx: AppContext | None) -> AppContext | None:
        with self._lock:
            old, self._current = self._current, ctx
            return old

    # -- reading --------------------------------------------------------------
    @property
    def current(self) -> AppContext:
        """The installed context, configuring the default one on first use."""
        with self._lock:
            if self._current is None:
                config = Config.from_env()
                _log.info("boiler: no configuration read; using %r", config)
                self._current = AppContext.from_config(config)
            return self._current

    @property
    def is_configured(self) -> bool:
        """Whether a context is installed (no default is created by asking)."""
        return self._current is not None

    @property
    def db(self) -> Database:
        """The database in use."""
        return self.current.db

    @property
    def firebase_app(self) -> Any:
        """The ``firebase_admin`` app when Firestore is in use, else None."""
        return self.current.firebase_app

    @property
    def config(self) -> Config:
        return self.current.config

    @property
    def backend(self) -> str:
        """``"embedded"`` or ``"firestore"``."""
        return self.current.backend

    def __repr__(self) -> str:
        return f"<Context {self._current!r}>"


#: The process-wide facade (seed name). ``CTX = context.Context``.
Context = ContextFacade()
CTX = Context


@overload
def run_transaction(fn: Callable[..., T], /) -> Callable[..., T]: ...
@overload
def run_transaction(
    *, max_attempts: int = 5, db: Database | None = None
) -> Callable[[Callable[..., T]], Callable[..., T]]: ...
def run_transaction(
    fn: Callable[..., T] | None = None, /, *, max_attempts: int = 5, db: Database | None = None
) -> Any:
    """Decorator: calling ``f(*args)`` runs ``f(transaction, *args)`` in a
    transaction of the context database (retried on conflict)::

        @run_transaction
        def transfer(transaction, amount): ...
        transfer(10)
    """

    def decorate(f: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(f)
        def wrapper(*args: Any, **kwargs: Any) -> T:
            database = db if db is not None else Context.db

            def body(tx: Transaction) -> T:
                return f(tx, *args, **kwargs)

            return database.run_transaction(body, max_attempts=max_attempts)

        return wrapper

    return decorate(fn) if fn is not None else decorate


__all__ = ["CTX", "AppContext", "Context", "ContextFacade", "run_transaction"]


def _holds_same_file(ctx: AppContext, config: Config) -> bool:
    """Whether ``ctx`` opened (and so may close) the embedded file ``config`` names."""
    if not ctx.owns_db or ctx.db.backend_name != "embedded" or config.backend != "embedded":
        return False
    held = getattr(ctx.db, "path", None)
    wanted = config.database_path
    if not held or held == ":memory:" or wanted == ":memory:":
        return False
    return os.path.realpath(held) == os.path.realpath(wanted)
