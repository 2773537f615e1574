"""Validating written values and applying set / merge / update to document data.

Pure functions shared by the embedded store's writes, batches and transactions.
Semantics follow Firestore (checked on the emulator): ``set(merge=True)``
deep-merges maps (an empty map replaces), ``update`` keys are field paths whose
map values replace, ``SERVER_TIMESTAMP`` becomes the commit time and
``DELETE_FIELD`` removes a field.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from typing import Any

from ..exceptions import ValidationError
from .base import DELETE_FIELD, SERVER_TIMESTAMP, clone
from .evaluate import split_field_path
from .paths import is_utf8, not_utf8

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_UTC = _dt.UTC


class Prepared:
    """Normalized write data and whether it still holds sentinels."""

    __slots__ = ("data", "has_sentinels")

    def __init__(self, data: dict[str, Any], has_sentinels: bool) -> None:
        self.data = data
        self.has_sentinels = has_sentinels


def prepare(path: str, data: Mapping[str, Any], *, kind: str, merge: bool = False) -> Prepared:
    """Validate and deep-copy written data (tuples become lists, datetimes UTC).

    ``kind`` is ``set``, ``create`` or ``update``; sentinels are checked
    against where Firestore allows them.
    """
    if kind == "update" and not data:
        raise ValidationError(f"update of {path!r} needs at least one field")
    flags = [False]
    allow_delete = kind == "update" or (kind == "set" and merge)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(
                f"document {path!r}: field names must be non-empty strings, got {key!r}"
            )
        if kind == "update":
            for part in split_field_path(key):
                _check_name(path, part)
            if value is DELETE_FIELD:
                flags[0] = True
                out[key] = value
                continue
            out[key] = _value(path, key, value, flags, in_array=False, allow_delete=False)
        else:
            _check_name(path, key)
            out[key] = _value(path, key, value, flags, in_array=False, allow_delete=allow_delete)
    if kind == "update":
        _check_update_paths(path, out)
    return Prepared(out, flags[0])


def _check_name(path: str, name: str) -> None:
    if not name:
        raise ValidationError(f"document {path!r}: empty field name")
    if len(name) > 4 and name.startswith("__") and name.endswith("__"):
        raise ValidationError(f"document {path!r}: field name {name!r} is reserved (__*__)")
    if not is_utf8(name):
        raise ValidationError(
            f"document {path!r}: {not_utf8('field name', name)}",
            field=name.encode("utf-8", "backslashreplace").decode(),  # printable
        )


def _text(path: str, field: str, value: str) -> str:
    if not is_utf8(value):
        raise ValidationError(f"document {path!r}: {not_utf8('string', value)}", field=field)
    return value


def _check_update_paths(path: str, data: dict[str, Any]) -> None:
    seen = sorted(tuple(split_field_path(k)) for k in data)
    for a, b in zip(seen, seen[1:], strict=False):
        if b[: len(a)] == a:
            raise ValidationError(
                f"update of {path!r}: field path {'.'.join(a)!r} is a prefix of {'.'.join(b)!r}"
            )


_PLAIN = frozenset({bool, float, type(None)})


def _value(
    path: str, field: str, value: Any, flags: list[bool], *, in_array: bool, allow_delete: bool
) -> Any:
    kind = type(value)
    if kind is str:
        return _text(path, field, value)
    if kind in _PLAIN:  # exact types first: the common case, cheap
        return value
    if isinstance(value, str):
        return _text(path, field, value)
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValidationError(
                f"document {path!r}: integer {value} does not fit in 64 bits", field=field
            )
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if not isinstance(k, str) or not k:
                raise ValidationError(
                    f"document {path!r}: map keys must be non-empty strings, got {k!r}",
                    field=field,
                )
            _check_name(path, k)
            out[k] = _value(
                path, f"{field}.{k}", v, flags, in_array=False, allow_delete=allow_delete
            )
        return out
    if isinstance(value, list | tuple):
        if in_array:
            raise ValidationError(
                f"document {path!r}: an array cannot directly contain an array", field=field
            )
        return [_value(path, field, v, flags, in_array=True, allow_delete=False) for v in value]
    if isinstance(value, _dt.datetime):
        return value.replace(tzinfo=_UTC) if value.tzinfo is None else value.astimezone(_UTC)
    if isinstance(value, bytes):
        return value
    if value is SERVER_TIMESTAMP:
        if in_array:
            raise ValidationError(
                f"document {path!r}: SERVER_TIMESTAMP cannot be used inside an array",
                field=field,
            )
        flags[0] = True
        return value
    if value is DELETE_FIELD:
        if not allow_delete:
            raise ValidationError(
                f"document {path!r}: DELETE_FIELD is only allowed in update() and "
                "set(merge=True), at a field (not inside an array or a nested update value)",
                field=field,
            )
        flags[0] = True
        return value
    raise ValidationError(
        f"document {path!r}: unsupported value type {type(value).__name__}", field=field
    )


def _resolve(value: Any, now: _dt.datetime) -> Any:
    """Replace SERVER_TIMESTAMP (anywhere in maps) by ``now``; drop DELETE_FIELD."""
    if value is SERVER_TIMESTAMP:
        return now
    if isinstance(value, dict):
        return {k: _resolve(v, now) for k, v in value.items() if v is not DELETE_FIELD}
    return value


def apply_set(
    old: dict[str, Any] | None, prepared: Prepared, *, merge: bool, now: _dt.datetime
) -> dict[str, Any]:
    """The document data after ``set`` (``merge``: deep merge into ``old``)."""
    if not merge or old is None:
        return _resolve(prepared.data, now) if prepared.has_sentinels else prepared.data
    return _merge(old, prepared.data, now)


def _merge(old: dict[str, Any], new: dict[str, Any], now: _dt.datetime) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        if value is DELETE_FIELD:
            out.pop(key, None)
        elif isinstance(value, dict) and value:
            base = out.get(key)
            out[key] = _merge(base if isinstance(base, dict) else {}, value, now)
        else:
            out[key] = _resolve(value, now)
    return out


def apply_update(old: dict[str, Any], prepared: Prepared, *, now: _dt.datetime) -> dict[str, Any]:
    """The document data after ``update`` of the dotted field paths in ``prepared``."""
    out = dict(old)
    for field_path, value in prepared.data.items():
        parts = split_field_path(field_path)
        node = out
        if value is DELETE_FIELD:
            for part in parts[:-1]:
                child = node.get(part)
                if not isinstance(child, dict):
                    break
                node[part] = child = dict(child)
                node = child
            else:
                node.pop(parts[-1], None)
            continue
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[parts[-1]] = _resolve(value, now)
    return out


def same_data(a: Any, b: Any) -> bool:
    """Type-strict equality (``1 != 1.0``, ``True != 1``, NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_data(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


#: A deep copy of stored data (immutable leaves are shared).
copy_value = clone
