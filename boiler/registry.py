"""Model classes by name, for ``dm_cls="User"`` and ``obj_type`` look-ups.

Classes register themselves (``__init_subclass__``) and are held weakly, so a
class defined inside a test function disappears with it. A name look-up
prefers the class declared next to the one asking (same enclosing scope -- the
latest definition there, as with any rebinding -- then same module); a name
that is still ambiguous or unknown raises
:class:`~boiler.exceptions.ConfigurationError`. Passing class objects avoids
look-ups altogether.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from .exceptions import ConfigurationError

_lock = threading.Lock()
_classes: dict[str, list[weakref.ref[type]]] = {}


def register(cls: type) -> None:
    """Make ``cls`` findable by its ``__name__``."""
    with _lock:
        refs = _classes.setdefault(cls.__name__, [])
        refs[:] = [r for r in refs if r() is not None]
        refs.append(weakref.ref(cls))


def candidates(name: str) -> list[type]:
    """Live registered classes called ``name``."""
    with _lock:
        return [c for c in (r() for r in _classes.get(name, [])) if c is not None]


def _scope(cls: type) -> str:
    return cls.__qualname__.rpartition(".")[0]


def resolve(name: str, *, near: type | None = None, base: type | None = None) -> Any:
    """The one registered class called ``name`` (a subclass of ``base`` if given).

    ``near`` is the class whose declaration mentions ``name``; classes in its
    scope, then in its module, win over others.
    """
    found = candidates(name)
    if base is not None:
        found = [c for c in found if issubclass(c, base)]
    if not found:
        raise ConfigurationError(
            f"no model class named {name!r} is defined; pass the class object instead of its name"
        )
    if len(found) > 1 and near is not None:
        same_scope = [
            c for c in found if c.__module__ == near.__module__ and _scope(c) == _scope(near)
        ]
        if same_scope:
            return same_scope[-1]  # redefined in one scope: the latest binding wins
        same_module = [c for c in found if c.__module__ == near.__module__]
        if len(same_module) == 1:
            return same_module[0]
        found = same_module or found
    if len(found) > 1:
        where = ", ".join(f"{c.__module__}.{c.__qualname__}" for c in found)
        raise ConfigurationError(
            f"model class name {name!r} is ambiguous ({where}); pass the class object instead"
        )
    return found[0]


__all__ = ["candidates", "register", "resolve"]
