"""boiler: a reactive MVVM backend framework.

Importing ``boiler`` has no side effects: nothing is read, connected or started.
"""

from __future__ import annotations

from . import exceptions as exceptions
from .exceptions import BoilerError as BoilerError

__version__ = "0.1.0.dev0"

__all__ = ["BoilerError", "exceptions", "__version__"]
