"""Query conditions built from model attributes: ``User.organization == "UCSD"``.

Accessing a field on the model class (``User.age``) gives a :class:`FieldRef`;
comparing it gives a :class:`Condition`. Combine conditions with ``&``, pass
several to ``where()``, or write a chained comparison::

    City.where(0 <= City.pop <= 10)

Python evaluates ``a <= x <= b`` as ``(a <= x) and (x <= b)``: it asks the
first condition for its truth value, then returns only the second. So
``Condition.__bool__`` records the condition (per thread, with the calling
frame and bytecode position) and answers True; the next condition created by
the same frame, further on in its bytecode, absorbs the recorded one. This
makes chained comparisons and inline ``(c1) and (c2)`` keep both parts.

Some code evaluates both comparisons before the truth test (pytest's assertion
rewriting does, inside ``assert``). For that order ``where()`` applies a second
rule (:func:`absorb_pending`): a recorded condition created just before one of
its arguments is combined with it. Prefer ``&`` when combining conditions
built elsewhere: ``c1 and c2`` of two unrelated prebuilt conditions keeps only
``c2``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .exceptions import InvalidQuery

if TYPE_CHECKING:
    from .attrs import Field as FieldDescriptor

_pending = threading.local()


class FieldRef:
    """A model attribute seen from its class; comparisons build conditions.

    Other attribute look-ups fall through to the descriptor (``User.age.data_key``).
    """

    __slots__ = ("descriptor", "model")

    def __init__(self, model: type, descriptor: FieldDescriptor) -> None:
        self.model = model
        self.descriptor = descriptor

    @property
    def name(self) -> str:
        return self.descriptor.name

    @property
    def field_path(self) -> str:
        """The stored key queried."""
        return self.descriptor.data_key

    def __getattr__(self, item: str) -> Any:
        if item in FieldRef.__slots__ or item.startswith("__"):
            raise AttributeError(item)
        return getattr(self.descriptor, item)

    def _compare(self, op: str, value: Any) -> Condition:
        frame = sys._getframe(2)
        made = Condition(((self, op, value),))
        recorded = getattr(_pending, "value", None)
        if recorded is not None:
            _pending.value = None
            previous, code, frame_id, lasti = recorded
            if id(frame) == frame_id and frame.f_code is code and frame.f_lasti > lasti:
                made = Condition(previous.clauses + made.clauses)
        return made

    # A FieldRef compared with a FieldRef is identity (keeps ``in`` on lists sane).
    def __eq__(self, other: object) -> Any:  # type: ignore[override]
        if isinstance(other, FieldRef):
            return self.model is other.model and self.descriptor is other.descriptor
        return self._compare("==", other)

    def __ne__(self, other: object) -> Any:  # type: ignore[override]
        if isinstance(other, FieldRef):
            return not (self.model is other.model and self.descriptor is other.descriptor)
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> Condition:
        return self._compare("<", other)

    def __le__(self, other: Any) -> Condition:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> Condition:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> Condition:
        return self._compare(">=", other)

    def __hash__(self) -> int:
        return hash((self.model, id(self.descriptor)))

    def in_(self, values: Iterable[Any]) -> Condition:
        return Condition(((self, "in", list(values)),))

    def not_in(self, values: Iterable[Any]) -> Condition:
        return Condition(((self, "not-in", list(values)),))

    def contains(self, value: Any) -> Condition:
        """``array-contains``."""
        return Condition(((self, "array-contains", value),))

    def contains_any(self, values: Iterable[Any]) -> Condition:
        """``array-contains-any``."""
        return Condition(((self, "array-contains-any", list(values)),))

    def __repr__(self) -> str:
        return f"{self.model.__name__}.{self.name}"


Clause = tuple[FieldRef | str, str, Any]


class Condition:
    """One or more ``(field, op, value)`` clauses, all of which must hold."""

    __slots__ = ("clauses", "seq")

    def __init__(self, clauses: tuple[Clause, ...]) -> None:
        self.clauses = clauses
        self.seq = _next_seq()

    def __and__(self, other: Condition) -> Condition:
        if not isinstance(other, Condition):
            return NotImplemented
        return Condition(self.clauses + other.clauses)

    def __or__(self, other: object) -> Condition:
        raise InvalidQuery("OR of conditions is not supported; run two queries")

    def __bool__(self) -> bool:
        frame = sys._getframe(1)
        _pending.value = (self, frame.f_code, id(frame), frame.f_lasti)
        return True

    def __repr__(self) -> str:
        return " & ".join(f"{f!r} {op} {v!r}" for f, op, v in self.clauses)


def _next_seq() -> int:
    seq: int = getattr(_pending, "seq", 0) + 1
    _pending.seq = seq
    return seq


def discard_pending() -> None:
    """Forget a condition recorded by ``bool()`` on this thread."""
    _pending.value = None


def absorb_pending(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with a recorded condition joined to the one created right after it.

    Clears the record either way (a stale truth test never leaks into later
    queries).
    """
    recorded = getattr(_pending, "value", None)
    _pending.value = None
    if recorded is None:
        return args
    previous: Condition = recorded[0]
    out = list(args)
    for i, arg in enumerate(out):
        if isinstance(arg, Condition) and arg.seq == previous.seq + 1:
            out[i] = Condition(previous.clauses + arg.clauses)
            break
    return tuple(out)


__all__ = ["Condition", "FieldRef", "absorb_pending", "discard_pending"]
