"""The ``[policy]`` table as rules: a pure function from the table and a request to a ruling.

Nothing here reads a file, a commit or a plugin: the caller hands over the table as
parsed (the committed ``proctor.toml`` on the store ref, read by whoever knows where that
is) and what is being asked (:class:`PolicyRequest`), and gets a :class:`Ruling` back,
with the rule that made it. So ``proctor policy explain``, the built-in policy plugin and
the proposal checks cannot disagree: they call the same function on the same table.

The table (``proctor.toml``)::

    [policy]
    "procedure.delete" = "REQUIRE_PROPOSAL"     # the simple form: action (or glob) -> decision

    [policy.roles]                              # actor (or glob) -> roles
    "ana@example.com" = ["maintainer"]
    "*@finance.example" = ["finance"]

    [policy.owners]                             # procedure-name glob -> owners; last match wins
    "*" = ["role:maintainer"]
    "billing_*" = ["role:finance"]

    [[policy.rules]]                            # later matching rules win over earlier ones
    name = "finance-review"
    actions = ["procedure.*"]
    owners = ["role:finance"]
    decision = "REQUIRE_PROPOSAL"
    approvals = 2
    approvers = ["owners"]

Precedence: the simple form is the base (an exact action name beats a glob, a longer glob a
shorter one); a matching ``[[policy.rules]]`` entry overrides it, and of several matching
rules the last one wins, as the last matching line of a CODEOWNERS file does. Nothing
matching is an abstention (the engine then allows, unless a plugin says otherwise).

A *principal* (in ``owners``, ``approvers`` and a rule's ``owners``) is ``role:NAME`` or an
actor glob; in ``approvers`` the word ``owners`` stands for the owners of the procedures
the action names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from proctor.core.errors import ConfigError
from proctor.core.governance import Decision

__all__ = [
    "DECISIONS",
    "RESERVED_KEYS",
    "Policy",
    "PolicyRequest",
    "PolicyRule",
    "Ruling",
    "evaluate",
    "parse_policy",
]

DECISIONS = tuple(d.value for d in Decision)
RESERVED_KEYS = frozenset({"roles", "owners", "rules"})
RULE_KEYS = frozenset(
    {"name", "actions", "actors", "roles", "owners", "decision", "approvals", "approvers", "reason"}
)
OWNERS_WORD = "owners"
ROLE_PREFIX = "role:"
#: The approvers of a rule whose ``owners`` resolve to no one: a role nobody can hold
#: (roles are non-empty names), so the rule fails closed instead of letting anyone approve.
NOBODY = ROLE_PREFIX


@dataclass(frozen=True)
class PolicyRequest:
    """What is asked: which action, by whom, on which procedures (from its params)."""

    action: str
    actor: str
    procedures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Ruling:
    """A decision and what made it.

    ``rule`` names the entry (``policy."procedure.delete"``, ``policy.rules[0] finance``)
    or the plugin; ``approvals`` and ``approvers`` say what a REQUIRE_PROPOSAL needs (no
    approvers: anyone but the proposer); ``reason`` is shown to the user on DENY.
    A policy plugin may return one instead of a bare decision.
    """

    decision: Decision
    rule: str = ""
    reason: str = ""
    approvals: int = 1
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyRule:
    """One ``[[policy.rules]]`` entry; an empty condition matches everything."""

    name: str
    decision: Decision
    actions: tuple[str, ...] = ("*",)
    actors: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    owners: tuple[str, ...] = ()
    approvals: int = 1
    approvers: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Policy:
    """The parsed ``[policy]`` table; :meth:`evaluate` is the rule engine."""

    simple: Mapping[str, Decision] = field(default_factory=dict)
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    owners: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: tuple[PolicyRule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.simple or self.rules)

    # -- who is who ------------------------------------------------------------------------

    def roles_of(self, actor: str) -> frozenset[str]:
        """Every role of every ``[policy.roles]`` key (an actor glob) the actor matches."""
        out: set[str] = set()
        for pattern, roles in self.roles:
            if fnmatchcase(actor, pattern):
                out.update(roles)
        return frozenset(out)

    def owners_of(self, procedure: str) -> tuple[str, ...]:
        """The owners of the last ``[policy.owners]`` pattern the name matches."""
        found: tuple[str, ...] = ()
        for pattern, owners in self.owners:
            if fnmatchcase(procedure, pattern):
                found = owners
        return found

    def is_principal(self, actor: str, principal: str) -> bool:
        """Whether ``actor`` is ``principal`` (``role:NAME`` or an actor glob)."""
        if principal.startswith(ROLE_PREFIX):
            return principal[len(ROLE_PREFIX) :] in self.roles_of(actor)
        return fnmatchcase(actor, principal)

    def may_approve(self, actor: str, approvers: Sequence[str]) -> bool:
        """Whether ``actor`` is one of ``approvers`` (none listed: anyone)."""
        return not approvers or any(self.is_principal(actor, p) for p in approvers)

    # -- the rule engine -------------------------------------------------------------------

    def evaluate(self, request: PolicyRequest) -> Ruling | None:
        """The ruling for ``request``, or None when no entry matches (abstain)."""
        ruling = self._simple(request.action)
        for index, rule in enumerate(self.rules):
            if self._matches(rule, request):
                ruling = Ruling(
                    rule.decision,
                    rule=f"policy.rules[{index}] {rule.name}".rstrip(),
                    reason=rule.reason,
                    approvals=rule.approvals,
                    approvers=self._resolve(rule.approvers, request.procedures),
                )
        return ruling

    def _simple(self, action: str) -> Ruling | None:
        if action in self.simple:
            return Ruling(self.simple[action], rule=f'policy."{action}"')
        globs = [p for p in self.simple if _is_glob(p) and fnmatchcase(action, p)]
        if not globs:
            return None
        best = max(globs, key=lambda p: (len(p.replace("*", "")), len(p)))
        return Ruling(self.simple[best], rule=f'policy."{best}"')

    def _matches(self, rule: PolicyRule, request: PolicyRequest) -> bool:
        if not any(fnmatchcase(request.action, p) for p in rule.actions):
            return False
        if rule.actors and not any(fnmatchcase(request.actor, p) for p in rule.actors):
            return False
        if rule.roles and not (self.roles_of(request.actor) & set(rule.roles)):
            return False
        if rule.owners:
            owned = {o for name in request.procedures for o in self.owners_of(name)}
            if not owned & set(rule.owners):
                return False
        return True

    def _resolve(self, approvers: Iterable[str], procedures: Sequence[str]) -> tuple[str, ...]:
        out: list[str] = []
        for principal in approvers:
            if principal == OWNERS_WORD:
                out.extend(o for name in procedures for o in self.owners_of(name))
            else:
                out.append(principal)
        resolved = tuple(dict.fromkeys(out))
        if approvers and not resolved:
            # "owners" of procedures nobody owns: fail closed, no one may approve.
            return (NOBODY,)
        return resolved


def evaluate(
    table: Mapping[str, Any], request: PolicyRequest, where: str = "config"
) -> Ruling | None:
    """The pure function: the raw ``[policy]`` table and a request to a ruling (or None)."""
    return parse_policy(table, where).evaluate(request)


# -- parsing -------------------------------------------------------------------------------


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _decision(value: Any, where: str) -> Decision:
    if not isinstance(value, str) or value.strip().upper() not in DECISIONS:
        raise ConfigError(f"{where}: expected one of {', '.join(DECISIONS)}, got {value!r}")
    return Decision(value.strip().upper())


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a string or a list of strings, got {value!r}")
    return tuple(value)


def _mapping(value: Any, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return tuple((str(k), _strings(v, f"{where}.{k}")) for k, v in value.items())


def _rule(index: int, value: Any, where: str) -> PolicyRule:
    here = f"{where}.rules[{index}]"
    if not isinstance(value, dict):
        raise ConfigError(f"{here}: expected a table, got {value!r}")
    unknown = sorted(set(value) - RULE_KEYS)
    if unknown:
        raise ConfigError(
            f"{here}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(RULE_KEYS))}"
        )
    if "decision" not in value:
        raise ConfigError(f"{here}: a rule needs a decision")
    decision = _decision(value["decision"], f"{here}.decision")
    approvals = value.get("approvals", 1)
    if isinstance(approvals, bool) or not isinstance(approvals, int) or not 1 <= approvals <= 100:
        raise ConfigError(f"{here}.approvals: expected a whole number 1..100, got {approvals!r}")
    if decision is not Decision.REQUIRE_PROPOSAL and ("approvals" in value or "approvers" in value):
        raise ConfigError(f"{here}: approvals and approvers apply only to REQUIRE_PROPOSAL")
    name = value.get("name", "")
    reason = value.get("reason", "")
    for key, text in (("name", name), ("reason", reason)):
        if not isinstance(text, str) or "\n" in text or len(text) > 200:
            raise ConfigError(f"{here}.{key}: expected one line of text, got {text!r}")
    return PolicyRule(
        name=name,
        decision=decision,
        actions=_strings(value.get("actions", "*"), f"{here}.actions"),
        actors=_strings(value["actors"], f"{here}.actors") if "actors" in value else (),
        roles=_strings(value["roles"], f"{here}.roles") if "roles" in value else (),
        owners=_strings(value["owners"], f"{here}.owners") if "owners" in value else (),
        approvals=approvals,
        approvers=_strings(value["approvers"], f"{here}.approvers") if "approvers" in value else (),
        reason=reason,
    )


def parse_policy(table: Mapping[str, Any], where: str = "config") -> Policy:
    """Validate and parse a raw ``[policy]`` table; ConfigError names the bad key."""
    simple: dict[str, Decision] = {}
    roles: tuple[tuple[str, tuple[str, ...]], ...] = ()
    owners: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rules: list[PolicyRule] = []
    for key, value in table.items():
        if key == "roles":
            roles = _mapping(value, f"{where} policy.roles")
        elif key == "owners":
            owners = _mapping(value, f"{where} policy.owners")
        elif key == "rules":
            if not isinstance(value, list):
                raise ConfigError(f"{where} policy.rules: expected [[policy.rules]] tables")
            rules = [_rule(i, v, f"{where} policy") for i, v in enumerate(value)]
        else:
            simple[key] = _decision(value, f"{where} policy.{key}")
    return Policy(simple=simple, roles=roles, owners=owners, rules=tuple(rules))
