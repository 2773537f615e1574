"""Lossless JSON encoding of document data for the SQLite file.

JSON keeps ``int`` vs ``float`` (including NaN, infinities and -0.0), ``bool``,
strings, lists and maps. Other values become one-key tagged maps:
``{"$b": base64}`` for bytes, ``{"$t": microseconds since the epoch}`` for
UTC datetimes, and ``{"$m": {...}}`` wraps a map that has a key starting with
``$`` so it can never be mistaken for a tag.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from typing import Any

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_ONE_US = _dt.timedelta(microseconds=1)


def to_micros(value: _dt.datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime."""
    return (value - _EPOCH) // _ONE_US


def from_micros(micros: int) -> _dt.datetime:
    """The UTC datetime ``micros`` microseconds after the Unix epoch."""
    return _EPOCH + _dt.timedelta(microseconds=micros)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _encode(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case, by exact type: cheap
        return value
    if isinstance(value, dict):
        out = {k: _encode(v) for k, v in value.items()}
        if any(k.startswith("$") for k in value):
            return {"$m": out}
        return out
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    if isinstance(value, _dt.datetime):
        return {"$t": to_micros(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1:
            tag, inner = next(iter(value.items()))
            if tag == "$b":
                return base64.b64decode(inner)
            if tag == "$t":
                return from_micros(inner)
            if tag == "$m":
                return {k: _decode(v) for k, v in inner.items()}
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def encode(data: dict[str, Any]) -> str:
    """Document data as a JSON string."""
    return json.dumps(_encode(data), separators=(",", ":"), ensure_ascii=False)


def decode(text: str) -> dict[str, Any]:
    """The document data encoded by :func:`encode`."""
    value = _decode(json.loads(text))
    if not isinstance(value, dict):
        raise ValueError("stored document data is not a map")
    return value
