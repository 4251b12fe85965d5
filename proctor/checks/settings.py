"""The ``[check]`` table, and the other tables of the config handed on to the checks.

``[check]`` (select, ignore, exclude, per-file ignores) is the runner's own. A check that
has a table of its own (``[safety]``, ``[log-lint]``, a third party's) reads it raw from
:meth:`CheckSettings.table` and parses it once per run through
:meth:`CheckSettings.options`; the runner knows none of those tables.

A plain class, not a dataclass: it is built on every pre-commit hook start.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from proctor.core.config import ProctorConfig, Table, str_list
from proctor.core.errors import ConfigError

__all__ = ["CHECK_KEYS", "FAIL_ON", "CheckSettings", "check_settings"]

CHECK_KEYS = frozenset({"select", "ignore", "exclude", "per-file-ignores", "fail-on"})
# The lowest severity that makes a run fail, most severe first; "info": any finding.
FAIL_ON = ("error", "warning", "info")

T = TypeVar("T")


class CheckSettings:
    """What the runner needs from the configuration of the files being checked.

    ``root`` is the directory exclude and per-file-ignore patterns are relative to;
    ``tables`` and ``source`` are the config's other tables as written and the file they
    came from, so a check can validate its own table and name the file in its errors.
    """

    def __init__(
        self,
        select: list[str] | None = None,
        ignore: list[str] | None = None,
        exclude: list[str] | None = None,
        per_file_ignores: dict[str, list[str]] | None = None,
        root: str = ".",
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        source: str | None = None,
        fail_on: str | None = None,
    ) -> None:
        self.select = list(select or [])
        self.ignore = list(ignore or [])
        self.exclude = list(exclude or [])
        self.per_file_ignores = dict(per_file_ignores or {})
        self.root = root
        self.tables: dict[str, Mapping[str, Any]] = dict(tables or {})
        self.source = source
        # `[check] fail-on`, None when not configured (the runner's default applies).
        self.fail_on = fail_on
        # Parsed options of the checks' own tables, by (table, parser): parsed once per
        # run, not once per file. Not part of equality, and not pickled (a worker
        # process parses again rather than unpickle compiled patterns).
        self._options: dict[tuple[str, Callable[[Table], Any]], Any] = {}

    def _state(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if k != "_options"}

    def __eq__(self, other: object) -> bool:
        return type(other) is CheckSettings and self._state() == other._state()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CheckSettings({', '.join(f'{k}={v!r}' for k, v in self._state().items())})"

    def __getstate__(self) -> dict[str, Any]:
        return self._state()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._options = {}

    def table(self, name: str) -> Table:
        """The config's ``[name]`` table as written (empty when absent)."""
        return Table(name, self.tables.get(name, {}), self.source)

    def options(self, name: str, parse: Callable[[Table], T]) -> T:
        """``parse(table)`` for the ``[name]`` table, computed once per settings object.

        A check calls this from ``options``/``check`` with its own parser; the parser
        raises ConfigError for a bad table, which stops the run with exit status 2.
        """
        key = (name, parse)
        try:
            return self._options[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._options[key] = parse(self.table(name))
            return value


def check_settings(config: ProctorConfig) -> CheckSettings:
    """Read ``[check]`` of ``config``, refusing unknown keys and bad types."""
    table = config.table("check")
    table.check_keys(CHECK_KEYS)
    per_file: dict[str, list[str]] = {}
    pfi = table.table("per-file-ignores")
    if pfi is not None:
        per_file = {
            pattern: str_list(codes, f"{table.where('per-file-ignores')}.{pattern}")
            for pattern, codes in pfi.items()
        }
    fail_on = table.values.get("fail-on")
    if fail_on is not None and fail_on not in FAIL_ON:
        raise ConfigError(
            f"{table.where('fail-on')}: expected one of {', '.join(FAIL_ON)}, got {fail_on!r}"
        )
    return CheckSettings(
        fail_on=fail_on,
        select=table.str_list("select"),
        ignore=table.str_list("ignore"),
        exclude=table.str_list("exclude"),
        per_file_ignores=per_file,
        root=config.root,
        tables={name: values for name, values in config.tables.items() if name != "check"},
        source=config.source,
    )
