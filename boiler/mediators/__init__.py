"""Mediators wire a Source to a Sink.

- :class:`Mediator` — the seed's style: trigger methods on source changes;
- :class:`ViewMediator` — declares which live views exist for each source
  document; boiler keeps them fresh and removes them with their root;
- :class:`PatchMediator` — the Query+Task mode: command documents applied
  through view-model setters, exactly once in effect.
"""

from __future__ import annotations

from .base import Mediator as Mediator
from .patch import PATCH_FIELD as PATCH_FIELD
from .patch import PatchMediator as PatchMediator
from .view import ViewMediator as ViewMediator

__all__ = ["PATCH_FIELD", "Mediator", "PatchMediator", "ViewMediator"]
