"""Sources: where mediators get their input.

- :func:`domain_model` — every document of a domain model's collection;
- :func:`firestore` — the documents matching a query;
- :func:`patch_documents` — command ("patch") documents in a collection group.

A source delivers ``created`` / ``updated`` / ``deleted`` changes to the
mediator's trigger methods, declared with the source's decorators::

    class MeetingSessionGet(Mediator):
        source = source.domain_model(Meeting)

        @source.triggers.on_create
        @source.triggers.on_update
        def materialize(self, obj): ...
"""

from __future__ import annotations

from .base import Source as Source
from .base import Triggers as Triggers
from .base import domain_model as domain_model
from .base import firestore as firestore
from .base import patch_documents as patch_documents

__all__ = ["Source", "Triggers", "domain_model", "firestore", "patch_documents"]
