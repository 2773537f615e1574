"""Live Socket.IO view streams: ``subscribe`` to a view, get it now and every new version.

See ``docs/socketio.md`` for the protocol.
"""

from __future__ import annotations

from .mediator import WsMediator as WsMediator
from .namespace import ViewNamespace as ViewNamespace
from .protocol import SubscribeError as SubscribeError
from .publisher import Publisher as Publisher
from .streams import ViewStreams as ViewStreams

__all__ = ["Publisher", "SubscribeError", "ViewNamespace", "ViewStreams", "WsMediator"]
