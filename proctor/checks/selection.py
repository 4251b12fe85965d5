"""Which checks run and which codes survive: ``--select`` and the config's select/ignore.

Resolved once per run into a :class:`Selection`, which every file then consults; the
per-file ignores of the config go through the same classification (:func:`classify`)
so a name or prefix means the same thing wherever it is written.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from proctor.checks.validation import RUNNER_RULES, Rule, Validator
from proctor.core.errors import UsageError

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings

__all__ = [
    "Selection",
    "all_rules",
    "classify",
    "load_validators",
    "owner_of",
    "resolve_selection",
    "split_entries",
]

_CODE = re.compile(r"[A-Z]+[0-9]*")


class Selection(NamedTuple):
    """Which validators run and which codes survive, built from select and ignore lists.

    ``names`` are whole checks (``safety``); ``prefixes`` are codes or code prefixes.
    ``everything`` means no select list was given. The runner's own ``PC`` codes are
    always selected (a file that could not be checked must not pass silently) but can be
    ignored like any other code. A named tuple rather than a dataclass: it is built on
    every hook start, and it crosses into worker processes.
    """

    everything: bool = True
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    ignore_names: frozenset[str] = frozenset()
    ignore_prefixes: tuple[str, ...] = ()

    def runs(self, validator: Validator) -> bool:
        """Whether any of the validator's findings could be kept."""
        if validator.name in self.ignore_names:
            return False
        if self.everything or validator.name in self.names:
            return True
        return any(rule.code.startswith(self.prefixes) for rule in validator.rules)

    def keeps(self, code: str, owner: str | None) -> bool:
        if owner is not None and owner in self.ignore_names:
            return False
        if self.ignore_prefixes and code.startswith(self.ignore_prefixes):
            return False
        if owner is None or self.everything or owner in self.names:
            return True
        return code.startswith(self.prefixes) if self.prefixes else False


def split_entries(entries: Iterable[str]) -> list[str]:
    """``["a,b", " c "]`` -> ``["a", "b", "c"]``: lists may be comma-separated too."""
    return [part.strip() for entry in entries for part in entry.split(",") if part.strip()]


def classify(
    entries: Iterable[str], validators: dict[str, Validator], *, strict: bool, where: str
) -> tuple[set[str], list[str]]:
    """Split select/ignore entries into check names and code prefixes.

    An entry is a check name, a code, or a prefix of at least one known code. Unknown
    entries are a usage error when ``strict`` (select: a typo there silently checks
    nothing); ignore lists are lenient so that disabling a plugin does not break them.
    """
    known_codes = [r.code for r in RUNNER_RULES]
    known_codes += [r.code for v in validators.values() for r in v.rules]
    lowered = {name.lower(): name for name in validators}
    names: set[str] = set()
    prefixes: list[str] = []
    for entry in split_entries(entries):
        if entry.lower() in lowered:
            names.add(lowered[entry.lower()])
            continue
        code = entry.upper()
        if _CODE.fullmatch(code) and any(known.startswith(code) for known in known_codes):
            prefixes.append(code)
            continue
        if strict:
            checks = ", ".join(sorted(validators)) or "none loaded"
            raise UsageError(
                f"{where}: unknown check or rule {entry!r} "
                f"(checks: {checks}; or a rule code or prefix such as PS101, PS1, PL)"
            )
        prefixes.append(code)
    return names, prefixes


def resolve_selection(
    select: Sequence[str] | None,
    validators: dict[str, Validator],
    settings: CheckSettings | None = None,
    *,
    strict_config: bool = True,
) -> Selection:
    """Combine ``--select`` with the config's select/ignore. CLI select replaces the
    config's select; the config's ignore always applies. ``strict_config=False`` lets
    the config's select name checks that are not loaded (the pre-commit hooks load the
    built-in checks only, and a third-party check named there must not break them)."""
    config_select = settings.select if settings is not None else []
    config_ignore = settings.ignore if settings is not None else []
    if select:
        chosen: Sequence[str] | None = select
        where = "--select"
    elif config_select:
        chosen = config_select
        where = "config check.select"
    else:
        chosen = None
        where = ""
    ignore_names, ignore_prefixes = classify(
        config_ignore, validators, strict=False, where="config check.ignore"
    )
    if chosen is None:
        return Selection(
            ignore_names=frozenset(ignore_names), ignore_prefixes=tuple(ignore_prefixes)
        )
    names, prefixes = classify(
        chosen, validators, strict=bool(select) or strict_config, where=where
    )
    return Selection(
        everything=False,
        names=frozenset(names),
        prefixes=tuple(prefixes),
        ignore_names=frozenset(ignore_names),
        ignore_prefixes=tuple(ignore_prefixes),
    )


def owner_of(code: str, validators: dict[str, Validator]) -> str | None:
    """The name of the validator that declares ``code``, or None (a runner code)."""
    for name, validator in validators.items():
        if any(rule.code == code for rule in validator.rules):
            return name
    return None


def load_validators() -> dict[str, Validator]:
    """Every registered validator, from the process-wide plugin manager."""
    from proctor.core.plugins import get_plugin_manager

    return dict(get_plugin_manager().validators())


def all_rules(validators: dict[str, Validator] | None = None) -> list[tuple[str | None, Rule]]:
    """Every rule the runner can report, as ``(owner, rule)``; the runner's own have no owner."""
    validators = load_validators() if validators is None else validators
    rules: list[tuple[str | None, Rule]] = [(None, r) for r in RUNNER_RULES]
    for name in sorted(validators):
        rules.extend((name, r) for r in validators[name].rules)
    return rules
