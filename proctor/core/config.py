"""Configuration: ``proctor.toml`` or ``[tool.proctor]`` in ``pyproject.toml``, validated.

Plain classes, and ``tomllib`` imported only when a file exists, keep this cheap to
import from pre-commit hooks (no pydantic, no dataclasses). Unknown keys are errors (a misspelt ``disalowed`` silently doing nothing is the
worst kind of config bug); keys use kebab-case as ruff does.

Layout (``proctor.toml`` shown; in ``pyproject.toml`` prefix every table with ``tool.``)::

    [proctor]                       # top level of proctor.toml needs no table
    store-ref = "refs/heads/procedures"
    entry-point = "run"

    [check]
    select = ["safety", "log-lint"]
    ignore = ["PS301"]
    exclude = ["build", "vendor/*"]
    per-file-ignores = { "tests/*" = ["PS1"] }

    [safety]
    allowed-imports = [...]           # replaces the default procedure-mode allowlist
    extra-allowed-imports = ["numpy"] # adds to it

    [log-lint]
    disallowed = ["retry", "re:\\bgave up\\b"]
    logger-objects = ["app.log"]

    [policy]
    "procedure.delete" = "REQUIRE_PROPOSAL"
"""

from __future__ import annotations

import os
from typing import Any

from proctor.core.errors import ConfigError

CONFIG_FILES = ("proctor.toml", "pyproject.toml")
DECISIONS = ("ALLOW_IMMEDIATE", "REQUIRE_PROPOSAL", "DENY")

DEFAULT_DISALLOWED = (
    "retry",
    "retries",
    "retrying",
    "retried",
    "try again",
    "re-attempt",
    "reattempt",
    "re-attempts",
    "reattempts",
    "re-attempting",
    "reattempting",
    "re-attempted",
    "reattempted",
)


class CheckSettings:
    """What ``[check]``, ``[safety]`` and ``[log-lint]`` say (plain class: hook hot path)."""

    def __init__(
        self,
        select: list[str] | None = None,
        ignore: list[str] | None = None,
        exclude: list[str] | None = None,
        per_file_ignores: dict[str, list[str]] | None = None,
        allowed_imports: list[str] | None = None,
        extra_allowed_imports: list[str] | None = None,
        disallowed: list[str] | None = None,
        logger_objects: list[str] | None = None,
        root: str = ".",
    ) -> None:
        self.select = list(select or [])
        self.ignore = list(ignore or [])
        self.exclude = list(exclude or [])
        self.per_file_ignores = dict(per_file_ignores or {})
        self.allowed_imports = allowed_imports
        self.extra_allowed_imports = list(extra_allowed_imports or [])
        self.disallowed = list(DEFAULT_DISALLOWED) if disallowed is None else list(disallowed)
        self.logger_objects = list(logger_objects or [])
        # The directory relative to which exclude / per-file-ignores patterns are matched.
        self.root = root

    def __eq__(self, other: object) -> bool:
        return type(other) is CheckSettings and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CheckSettings({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class ProctorConfig:
    """The whole configuration of a store."""

    def __init__(
        self,
        store_ref: str | None = None,
        entry_point: str = "run",
        check: CheckSettings | None = None,
        policy: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        self.store_ref = store_ref
        self.entry_point = entry_point
        self.check = check if check is not None else CheckSettings()
        self.policy = dict(policy or {})
        # Tables proctor itself does not know, kept for plugins (e.g. ``[webhook]``).
        self.extra = dict(extra or {})
        self.source = source

    def __repr__(self) -> str:
        return f"ProctorConfig({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


def _str_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a table, got {value!r}")
    return value


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


KNOWN_TABLES = {"check", "safety", "log-lint", "policy"}
TOP_KEYS = {"store-ref", "entry-point"}


def parse_config(data: dict[str, Any], source: str | None = None, root: str = ".") -> ProctorConfig:
    """Turn the ``proctor`` table into a ProctorConfig, refusing unknown keys and bad types."""
    where = source or "config"
    cfg = ProctorConfig(source=source)
    cfg.check.root = root
    for key, value in data.items():
        if key in TOP_KEYS:
            continue
        if key in KNOWN_TABLES:
            continue
        if isinstance(value, dict):
            cfg.extra[key] = value  # a plugin's table
            continue
        raise ConfigError(f"{where}: unknown key {key!r}")

    if "store-ref" in data:
        ref = data["store-ref"]
        if not isinstance(ref, str) or not ref.startswith("refs/heads/") or ref.endswith("/"):
            raise ConfigError(
                f"{where}: store-ref must look like 'refs/heads/<branch>', got {ref!r}"
            )
        cfg.store_ref = ref
    if "entry-point" in data:
        ep = data["entry-point"]
        if not isinstance(ep, str) or not ep.isidentifier():
            raise ConfigError(f"{where}: entry-point must be a Python identifier, got {ep!r}")
        cfg.entry_point = ep

    check = _table(data.get("check", {}), f"{where} [check]")
    _check_keys(check, {"select", "ignore", "exclude", "per-file-ignores"}, f"{where} [check]")
    if "select" in check:
        cfg.check.select = _str_list(check["select"], f"{where} check.select")
    if "ignore" in check:
        cfg.check.ignore = _str_list(check["ignore"], f"{where} check.ignore")
    if "exclude" in check:
        cfg.check.exclude = _str_list(check["exclude"], f"{where} check.exclude")
    if "per-file-ignores" in check:
        pfi = _table(check["per-file-ignores"], f"{where} check.per-file-ignores")
        cfg.check.per_file_ignores = {
            pattern: _str_list(codes, f"{where} check.per-file-ignores.{pattern}")
            for pattern, codes in pfi.items()
        }

    safety = _table(data.get("safety", {}), f"{where} [safety]")
    _check_keys(safety, {"allowed-imports", "extra-allowed-imports"}, f"{where} [safety]")
    if "allowed-imports" in safety:
        cfg.check.allowed_imports = _str_list(
            safety["allowed-imports"], f"{where} safety.allowed-imports"
        )
    if "extra-allowed-imports" in safety:
        cfg.check.extra_allowed_imports = _str_list(
            safety["extra-allowed-imports"], f"{where} safety.extra-allowed-imports"
        )

    loglint = _table(data.get("log-lint", {}), f"{where} [log-lint]")
    _check_keys(loglint, {"disallowed", "logger-objects"}, f"{where} [log-lint]")
    if "disallowed" in loglint:
        cfg.check.disallowed = _str_list(loglint["disallowed"], f"{where} log-lint.disallowed")
    if "logger-objects" in loglint:
        cfg.check.logger_objects = _str_list(
            loglint["logger-objects"], f"{where} log-lint.logger-objects"
        )

    policy = _table(data.get("policy", {}), f"{where} [policy]")
    for action, decision in policy.items():
        if not isinstance(decision, str) or decision.upper() not in DECISIONS:
            raise ConfigError(
                f"{where} policy.{action}: expected one of {', '.join(DECISIONS)}, got {decision!r}"
            )
        cfg.policy[action] = decision.upper()
    return cfg


def parse_config_text(text: str, filename: str, root: str = ".") -> ProctorConfig | None:
    """Parse a proctor.toml or pyproject.toml text; None when a pyproject has no proctor table."""
    import tomllib  # only when there is a file: hooks in unconfigured repos skip it

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    if os.path.basename(filename) == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or "proctor" not in tool:
            return None
        data = _table(tool["proctor"], f"{filename} [tool.proctor]")
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
    cfg = ProctorConfig()
    cfg.check.root = directory
    return cfg


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
    cfg = ProctorConfig()
    cfg.check.root = here
    return cfg
