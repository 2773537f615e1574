"""App: what ``boiler run module:attr`` loads — mediators, optional demo seed."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from .database import Database

if TYPE_CHECKING:
    from .config import Config
    from .mediators.base import Mediator
    from .rest.source import RestResource
    from .runtime.process import Runtime
    from .ws import WsMediator

log = logging.getLogger("boiler.app")


class App:
    """A boiler application: its mediators and how to seed an empty database.

    ``rest`` lists REST resources (e.g. :class:`~boiler.rest.RestMediator`)
    that :func:`boiler.app.create_flask_app` serves.

    ``seed(db)`` runs on start only when ``is_empty(db)`` says the database
    holds none of the app's data. ``ws`` lists the Socket.IO view streams
    ``boiler run`` serves (:class:`~boiler.ws.WsMediator`).
    """

    def __init__(
        self,
        name: str,
        *,
        mediators: Iterable[type[Mediator]] = (),
        seed: Callable[[Database], None] | None = None,
        is_empty: Callable[[Database], bool] | None = None,
        config: Config | None = None,
        rest: Iterable[RestResource] = (),
        ws: Iterable[WsMediator] = (),
    ) -> None:
        if seed is not None and is_empty is None:
            raise TypeError("seed= needs is_empty= (seeding must never overwrite data)")
        self.name = name
        self.mediators = list(mediators)
        self.seed = seed
        self.is_empty = is_empty
        self.config = config
        self.ws = list(ws)
        self.rest = list(rest)

    def seed_if_empty(self, db: Database) -> bool:
        """Seed ``db`` if it is empty; True if it seeded."""
        if self.seed is None or self.is_empty is None or not self.is_empty(db):
            return False
        log.info("%s: empty database, writing the demo data", self.name)
        self.seed(db)
        return True

    def runtime(self, db: Database, *, workers: int = 4) -> Runtime:
        """A (not yet started) runtime with this app's mediators on ``db``."""
        from .runtime.process import Runtime

        return Runtime(db, mediators=self.mediators, workers=workers)

    def __repr__(self) -> str:
        return f"<App {self.name!r} mediators={[m.__name__ for m in self.mediators]}>"
