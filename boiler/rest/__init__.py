"""REST transport: view models served over Flask with JSON errors and OpenAPI.

- :class:`RestMediator` — GET / PATCH routes generated for a view model;
- :class:`RestResource` + :class:`RestViewModelSource` — hand-written routes
  (the seed's ``@rest.route(...)`` style);
- :class:`ViewAccess` — the transport-neutral read / write of one user's view.

Register them with :func:`boiler.app.create_flask_app` (or ``App(rest=[...])``).
"""

from __future__ import annotations

from .access import ViewAccess as ViewAccess
from .access import ViewRead as ViewRead
from .errors import error_response as error_response
from .mediator import RestMediator as RestMediator
from .request import RestServices as RestServices
from .request import current_principal as current_principal
from .request import current_services as current_services
from .schema import patch_schema as patch_schema
from .schema import view_schema as view_schema
from .source import VIEW_SOURCE_HEADER as VIEW_SOURCE_HEADER
from .source import RestResource as RestResource
from .source import RestViewModelSource as RestViewModelSource

__all__ = [
    "VIEW_SOURCE_HEADER",
    "RestMediator",
    "RestResource",
    "RestServices",
    "RestViewModelSource",
    "ViewAccess",
    "ViewRead",
    "current_principal",
    "current_services",
    "error_response",
    "patch_schema",
    "view_schema",
]
