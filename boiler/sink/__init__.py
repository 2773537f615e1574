"""Sinks: where mediators put their output.

``sink.firestore()`` writes view documents through the runtime's versioned,
deduplicating writer; ``sink.callback(fn)`` hands views to a function.
"""

from __future__ import annotations

from .base import CallbackSink as CallbackSink
from .base import FirestoreSink as FirestoreSink
from .base import Sink as Sink
from .base import callback as callback
from .base import firestore as firestore

__all__ = ["CallbackSink", "FirestoreSink", "Sink", "callback", "firestore"]
