"""The long-lived runtime: live views kept fresh, and the view writer.

- :class:`Engine` rebuilds each live view whenever any document or query it
  read changes (one listener per watched collection, multiplexed in-process).
- :class:`ViewWriter` writes view documents: versioned, deduplicated, batched.
"""

from __future__ import annotations

from .engine import Engine as Engine
from .errors import RecordedError as RecordedError
from .live import LiveHandle as LiveHandle
from .writer import VERSION_FIELD as VERSION_FIELD
from .writer import ViewWriter as ViewWriter

__all__ = ["VERSION_FIELD", "Engine", "LiveHandle", "RecordedError", "ViewWriter"]
