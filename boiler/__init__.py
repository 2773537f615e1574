"""boiler: a reactive MVVM backend framework.

Importing ``boiler`` has no side effects: nothing is read, connected or started.
"""

from __future__ import annotations

from . import attrs as attrs
from . import config as config
from . import context as context
from . import exceptions as exceptions
from . import fields as fields
from . import schema as schema
from .config import Config as Config
from .context import CTX as CTX
from .context import AppContext as AppContext
from .context import Context as Context
from .context import run_transaction as run_transaction
from .domain_model import DomainModel as DomainModel
from .domain_model import PrimaryObject as PrimaryObject
from .exceptions import BoilerError as BoilerError
from .factory import ClsFactory as ClsFactory
from .model_query import ModelQuery as ModelQuery

__version__ = "0.1.0.dev0"

__all__ = [
    "CTX",
    "AppContext",
    "BoilerError",
    "ClsFactory",
    "Config",
    "Context",
    "DomainModel",
    "ModelQuery",
    "PrimaryObject",
    "__version__",
    "attrs",
    "config",
    "context",
    "exceptions",
    "fields",
    "run_transaction",
    "schema",
]
