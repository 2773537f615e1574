"""Declarative access rules for view models.

A view model declares who may see it in ``Meta.access``; rules combine with
``|`` (either) and ``&`` (both)::

    from boiler import access

    class MeetingSession(ViewModel):
        class Meta:
            access = access.owner("user_id") | access.role("admin")

:meth:`ViewModel.authorize(uid, claims) <boiler.view_model.ViewModel.authorize>`
applies the declared rule, then the view's own data-dependent
``check_access(uid)``; both raise :class:`~boiler.exceptions.Forbidden`.
:mod:`boiler.rules` turns the same declaration into Firestore security rules
(:meth:`Rule.firestore`), so every transport enforces one policy.

Rules are pure: they look only at the view's ``params`` and the caller's uid
and token claims, never at documents.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .exceptions import ConfigurationError, Forbidden

if TYPE_CHECKING:
    from .view_model import ViewModel


@dataclass(frozen=True)
class Caller:
    """Who is asking: a uid (None when unauthenticated) and the token's claims."""

    uid: str | None
    claims: Mapping[str, Any] = field(default_factory=dict)


class Rule(ABC):
    """An access rule: :meth:`denial` says why ``caller`` may not see a view."""

    @abstractmethod
    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        """None if ``caller`` may see the view with ``params``; else the reason."""

    @abstractmethod
    def firestore(self, variables: Mapping[str, str]) -> str:
        """This rule as a Firestore rules condition.

        ``variables`` maps view params to the wildcard names of the document's
        ``match`` path. Uses the helper functions :mod:`boiler.rules` defines
        (``isUser(uid)``, ``hasRole(names)``).
        """

    def allows(self, params: Mapping[str, Any], caller: Caller) -> bool:
        return self.denial(params, caller) is None

    def __or__(self, other: Rule) -> Rule:
        if not isinstance(other, Rule):
            return NotImplemented
        return AnyOf((*_parts(self, AnyOf), *_parts(other, AnyOf)))

    def __and__(self, other: Rule) -> Rule:
        if not isinstance(other, Rule):
            return NotImplemented
        return AllOf((*_parts(self, AllOf), *_parts(other, AllOf)))


@dataclass(frozen=True)
class Anyone(Rule):
    """Everyone, signed in or not."""

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        return None

    def firestore(self, variables: Mapping[str, str]) -> str:
        return "true"

    def __repr__(self) -> str:
        return "anyone()"


@dataclass(frozen=True)
class Authenticated(Rule):
    """Every signed-in caller."""

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        return None if caller.uid else "authentication required"

    def firestore(self, variables: Mapping[str, str]) -> str:
        return "signedIn()"

    def __repr__(self) -> str:
        return "authenticated()"


@dataclass(frozen=True)
class Owner(Rule):
    """The caller's uid equals the view's ``param`` (its owner)."""

    param: str = "user_id"

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        if not caller.uid:
            return "authentication required"
        owner = params.get(self.param)
        if owner is None:
            return f"the view has no {self.param!r} param to compare with"
        if str(owner) != caller.uid:
            return f"not the owner ({self.param} is {owner!r})"
        return None

    def firestore(self, variables: Mapping[str, str]) -> str:
        name = variables.get(self.param)
        if name is None:
            raise ConfigurationError(
                f"{self!r}: the view path has no {{{self.param}}} segment to compare "
                f"request.auth.uid with (path params: {sorted(variables)})"
            )
        return f"isUser({name})"

    def __repr__(self) -> str:
        return f"owner({self.param!r})"


@dataclass(frozen=True)
class Role(Rule):
    """The caller's ``role`` claim is one of ``names``, or its ``roles`` list holds one."""

    names: tuple[str, ...]

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        if not caller.uid:
            return "authentication required"
        if set(self.names) & caller_roles(caller.claims):
            return None
        wanted = " or ".join(repr(n) for n in self.names)
        return f"no role {wanted}"

    def firestore(self, variables: Mapping[str, str]) -> str:
        return f"hasRole({rules_list(self.names)})"

    def __repr__(self) -> str:
        return f"role({', '.join(repr(n) for n in self.names)})"


@dataclass(frozen=True)
class AnyOf(Rule):
    """Allowed if any part allows (``a | b``)."""

    rules: tuple[Rule, ...]

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        reasons: list[str] = []
        for rule in self.rules:
            reason = rule.denial(params, caller)
            if reason is None:
                return None
            if reason not in reasons:
                reasons.append(reason)
        return " and ".join(reasons)

    def firestore(self, variables: Mapping[str, str]) -> str:
        return " || ".join(_grouped(r, variables) for r in self.rules)

    def __repr__(self) -> str:
        return " | ".join(_repr_grouped(r) for r in self.rules)


@dataclass(frozen=True)
class AllOf(Rule):
    """Allowed if every part allows (``a & b``); the first refusal is the reason."""

    rules: tuple[Rule, ...]

    def denial(self, params: Mapping[str, Any], caller: Caller) -> str | None:
        for rule in self.rules:
            reason = rule.denial(params, caller)
            if reason is not None:
                return reason
        return None

    def firestore(self, variables: Mapping[str, str]) -> str:
        return " && ".join(_grouped(r, variables) for r in self.rules)

    def __repr__(self) -> str:
        return " & ".join(_repr_grouped(r) for r in self.rules)


# -- constructors (the public vocabulary) ------------------------------------------------------
def owner(param: str = "user_id") -> Rule:
    """Only the user whose uid is the view's ``param`` (``user_id`` by default)."""
    if not isinstance(param, str) or not param.isidentifier():
        raise ConfigurationError(f"owner() needs a param name, got {param!r}")
    return Owner(param)


def role(*names: str) -> Rule:
    """Callers whose ``role`` claim (or an entry of their ``roles`` claim) is one of ``names``."""
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ConfigurationError(f"role() needs one or more role names, got {names!r}")
    return Role(tuple(dict.fromkeys(names)))


def authenticated() -> Rule:
    """Every signed-in caller."""
    return Authenticated()


def anyone() -> Rule:
    """Everyone, including unauthenticated callers."""
    return Anyone()


# -- evaluation ------------------------------------------------------------------------------------
def rule_of(view_cls: type[ViewModel]) -> Rule | None:
    """The rule ``view_cls`` declares in ``Meta.access`` (None: no declarative rule)."""
    meta = getattr(view_cls, "Meta", None)
    rule = getattr(meta, "access", None)
    if rule is not None and not isinstance(rule, Rule):
        raise ConfigurationError(
            f"{view_cls.__name__}.Meta.access must be a boiler.access rule "
            f"(owner(), role(), ... combined with | and &), got {rule!r}"
        )
    return rule


def caller_roles(claims: Mapping[str, Any]) -> set[str]:
    """The roles in token ``claims``: the ``role`` claim plus the ``roles`` list."""
    roles: set[str] = set()
    single = claims.get("role")
    if isinstance(single, str):
        roles.add(single)
    many = claims.get("roles")
    if isinstance(many, list | tuple):
        roles.update(r for r in many if isinstance(r, str))
    return roles


def check(
    rule: Rule | None,
    params: Mapping[str, Any],
    uid: str | None,
    claims: Mapping[str, Any] | None = None,
    *,
    view_name: str = "this view",
) -> None:
    """Raise :class:`Forbidden` unless ``rule`` (None: no rule) lets ``uid`` see the view."""
    if rule is None:
        return
    reason = rule.denial(params, Caller(uid, dict(claims or {})))
    if reason is not None:
        who = "an unauthenticated caller" if not uid else f"user {uid!r}"
        raise Forbidden(f"{who} may not access {view_name}: {reason}")


# -- helpers ---------------------------------------------------------------------------------------
def _parts(rule: Rule, kind: type[AnyOf] | type[AllOf]) -> tuple[Rule, ...]:
    if isinstance(rule, kind):
        return rule.rules
    return (rule,)


def _grouped(rule: Rule, variables: Mapping[str, str]) -> str:
    text = rule.firestore(variables)
    return f"({text})" if isinstance(rule, AnyOf | AllOf) else text


def _repr_grouped(rule: Rule) -> str:
    return f"({rule!r})" if isinstance(rule, AnyOf | AllOf) else repr(rule)


def rules_list(values: tuple[str, ...]) -> str:
    """A Firestore rules list literal of strings: ``['a', 'b']``."""
    return "[" + ", ".join(rules_string(v) for v in values) + "]"


def rules_string(value: str) -> str:
    """A single-quoted Firestore rules string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


__all__ = [
    "AllOf",
    "AnyOf",
    "Anyone",
    "Authenticated",
    "Caller",
    "Owner",
    "Role",
    "Rule",
    "anyone",
    "authenticated",
    "caller_roles",
    "check",
    "owner",
    "role",
    "rule_of",
    "rules_list",
    "rules_string",
]
