"""Configuration: finding and reading ``proctor.toml`` or ``[tool.proctor]`` in
``pyproject.toml``.

Core reads only what core owns: the top-level keys ``store-ref`` and ``entry-point`` and
the ``[policy]`` table. Every other table belongs to the package or plugin that uses it
(``[check]`` to the check runner, ``[safety]`` and ``[log-lint]`` to those checks, a
third party's ``[webhook]`` to that plugin), which reads it raw through
:meth:`ProctorConfig.table` and validates it itself with the helpers of :class:`Table`.
Unknown keys stay errors everywhere (a misspelt ``disalowed`` silently doing nothing is
the worst kind of config bug); keys use kebab-case as ruff does.

Plain classes, and ``tomllib`` imported only when a file exists, keep this cheap to
import from pre-commit hooks (no pydantic, no dataclasses).

Layout (``proctor.toml`` shown; in ``pyproject.toml`` prefix every table with ``tool.``)::

    store-ref = "refs/heads/procedures"   # top level of proctor.toml needs no table
    entry-point = "run"

    [policy]
    "procedure.delete" = "REQUIRE_PROPOSAL"

    [check]                               # read by proctor.checks
    select = ["safety", "log-lint"]

    [webhook]                             # read by whichever plugin owns it
    url = "https://example.invalid/hook"
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from proctor.core.errors import ConfigError

__all__ = [
    "CONFIG_FILES",
    "DECISIONS",
    "TOP_KEYS",
    "ProctorConfig",
    "Table",
    "as_table",
    "find_config",
    "load_config",
    "parse_config",
    "parse_config_text",
    "str_list",
]

CONFIG_FILES = ("proctor.toml", "pyproject.toml")
DECISIONS = ("ALLOW_IMMEDIATE", "REQUIRE_PROPOSAL", "DENY")
TOP_KEYS = frozenset({"store-ref", "entry-point"})


class Table:
    """One table of the configuration as written, with where it came from.

    The owner of a table validates it through these helpers so that every error names
    the file and the table (``proctor.toml [safety]: unknown key(s) ...``) the same way.
    A table that is not in the file is an empty one.
    """

    __slots__ = ("name", "source", "values")

    def __init__(self, name: str, values: Mapping[str, Any], source: str | None = None) -> None:
        self.name = name
        self.values: Mapping[str, Any] = values
        self.source = source

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {dict(self.values)!r}, source={self.source!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Table):
            return NotImplemented
        return (self.name, dict(self.values), self.source) == (
            other.name,
            dict(other.values),
            other.source,
        )

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __bool__(self) -> bool:
        return bool(self.values)

    def where(self, key: str | None = None) -> str:
        """How messages name this table (``proctor.toml [check]``) or one of its keys
        (``proctor.toml check.select``)."""
        source = self.source or "config"
        return f"{source} [{self.name}]" if key is None else f"{source} {self.name}.{key}"

    def check_keys(self, allowed: Collection[str]) -> None:
        """Refuse any key not in ``allowed``."""
        unknown = sorted(set(self.values) - set(allowed))
        if unknown:
            raise ConfigError(
                f"{self.where()}: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(allowed))}"
            )

    def str_list(self, key: str) -> list[str] | None:
        """The list of strings under ``key``, or None when the key is absent."""
        if key not in self.values:
            return None
        return str_list(self.values[key], self.where(key))

    def table(self, key: str) -> dict[str, Any] | None:
        """The sub-table under ``key``, or None when the key is absent."""
        if key not in self.values:
            return None
        return as_table(self.values[key], self.where(key))


def str_list(value: Any, where: str) -> list[str]:
    """``value`` if it is a list of strings, else a ConfigError naming ``where``."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def as_table(value: Any, where: str) -> dict[str, Any]:
    """``value`` if it is a table, else a ConfigError naming ``where``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


class ProctorConfig:
    """The configuration of a store or a work tree.

    ``root`` is the directory the file was found in (or the directory searched from when
    there is none): patterns in tables are relative to it. ``tables`` holds every table
    except ``[policy]``, as written, for the code that owns each one.
    """

    def __init__(
        self,
        store_ref: str | None = None,
        entry_point: str = "run",
        policy: dict[str, str] | None = None,
        tables: Mapping[str, Mapping[str, Any]] | None = None,
        source: str | None = None,
        root: str = ".",
    ) -> None:
        self.store_ref = store_ref
        self.entry_point = entry_point
        self.policy = dict(policy or {})
        # The whole [policy] table as written (simple entries, roles, owners, rules): the
        # input of proctor.core.policy, parsed (and so validated) once in parse_config.
        self.policy_table: dict[str, Any] = dict(policy or {})
        self._governance: Any = None
        self.tables: dict[str, Mapping[str, Any]] = dict(tables or {})
        self.source = source
        self.root = root

    def __repr__(self) -> str:
        return f"ProctorConfig({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"

    @property
    def governance(self) -> Any:
        """The ``[policy]`` table as a :class:`proctor.core.policy.Policy` (the rule engine)."""
        if self._governance is None:
            from proctor.core.policy import parse_policy

            self._governance = parse_policy(self.policy_table, self.source or "config")
        return self._governance

    def table(self, name: str) -> Table:
        """The raw table ``[name]`` (empty when the file has none), for its owner to
        validate and read."""
        return Table(name, self.tables.get(name, {}), self.source)


def parse_config(data: dict[str, Any], source: str | None = None, root: str = ".") -> ProctorConfig:
    """Turn the ``proctor`` table into a ProctorConfig.

    Validates what core owns (top-level keys, ``[policy]``) and refuses a top-level key
    that is neither one of those nor a table; other tables are kept as written.
    """
    where = source or "config"
    cfg = ProctorConfig(source=source, root=root)
    for key, value in data.items():
        if key in TOP_KEYS or key == "policy":
            continue
        if isinstance(value, dict):
            cfg.tables[key] = value
            continue
        raise ConfigError(f"{where}: unknown key {key!r}")

    if "store-ref" in data:
        ref = data["store-ref"]
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or ref.endswith("/"):
            raise ConfigError(
                f"{where}: store-ref must look like 'refs/heads/<branch>', got {ref!r}"
            )
        from proctor.core.names import ref_format_problem

        problem = ref_format_problem(ref)
        if problem is not None:
            raise ConfigError(f"{where}: store-ref {ref!r} is not a valid ref name: {problem}")
        cfg.store_ref = ref
    if "entry-point" in data:
        ep = data["entry-point"]
        if not isinstance(ep, str) or not ep.isidentifier():
            raise ConfigError(f"{where}: entry-point must be a Python identifier, got {ep!r}")
        cfg.entry_point = ep

    policy = as_table(data.get("policy", {}), f"{where} [policy]")
    if policy:
        from proctor.core.policy import RESERVED_KEYS, parse_policy  # only with a [policy]

        cfg._governance = parse_policy(policy, where)  # validates the whole table
        cfg.policy_table = dict(policy)
        for action, decision in policy.items():
            if action not in RESERVED_KEYS:
                cfg.policy[action] = decision.strip().upper()
    return cfg


def parse_config_text(text: str, filename: str, root: str = ".") -> ProctorConfig | None:
    """Parse a proctor.toml or pyproject.toml text; None when a pyproject has no proctor table."""
    import tomllib  # only when there is a file: hooks in unconfigured repos skip it

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    # ``filename`` may be ``<ref>:pyproject.toml`` for a committed copy.
    if os.path.basename(filename.rsplit(":", 1)[-1]) == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or "proctor" not in tool:
            return None
        data = as_table(tool["proctor"], f"{filename} [tool.proctor]")
    return parse_config(data, source=filename, root=root)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def load_config(directory: str | os.PathLike[str]) -> ProctorConfig:
    """Read the config in ``directory`` itself (no upward search); defaults if none."""
    directory = os.fspath(directory)
    for name in CONFIG_FILES:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            cfg = parse_config_text(_read(path), path, root=directory)
            if cfg is not None:
                return cfg
    return ProctorConfig(root=directory)


def find_config(start: str | os.PathLike[str]) -> ProctorConfig:
    """Find the nearest config walking up from ``start``, as ruff and pytest do.

    Stops at the first directory holding proctor.toml or a pyproject.toml with a
    ``[tool.proctor]`` table, or at a git repository's root.
    """
    here = os.path.realpath(os.fspath(start))
    if os.path.isfile(here):
        here = os.path.dirname(here)
    directory = here
    while True:
        for name in CONFIG_FILES:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                cfg = parse_config_text(_read(path), path, root=directory)
                if cfg is not None:
                    return cfg
        parent = os.path.dirname(directory)
        if os.path.exists(os.path.join(directory, ".git")) or parent == directory:
            break
        directory = parent
    return ProctorConfig(root=here)
