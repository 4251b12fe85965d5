"""Configuration: ``proctor.toml`` or ``[tool.proctor]`` in ``pyproject.toml``, validated.

Plain dataclasses and ``tomllib`` keep this importable from pre-commit hooks without
pydantic. Unknown keys are errors (a misspelt ``disalowed`` silently doing nothing is the
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

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass
class CheckSettings:
    select: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = field(default_factory=dict)
    allowed_imports: list[str] | None = None
    extra_allowed_imports: list[str] = field(default_factory=list)
    disallowed: list[str] = field(default_factory=lambda: list(DEFAULT_DISALLOWED))
    logger_objects: list[str] = field(default_factory=list)
    # The directory relative to which exclude / per-file-ignores patterns are matched.
    root: str = "."


@dataclass
class ProctorConfig:
    store_ref: str | None = None
    entry_point: str = "run"
    check: CheckSettings = field(default_factory=CheckSettings)
    policy: dict[str, str] = field(default_factory=dict)
    # Tables proctor itself does not know, kept for plugins (e.g. ``[webhook]``).
    extra: dict[str, Any] = field(default_factory=dict)
    source: str | None = None


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
            raise ConfigError(f"{where}: store-ref must look like 'refs/heads/<branch>', got {ref!r}")
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
        cfg.check.allowed_imports = _str_list(safety["allowed-imports"], f"{where} safety.allowed-imports")
    if "extra-allowed-imports" in safety:
        cfg.check.extra_allowed_imports = _str_list(
            safety["extra-allowed-imports"], f"{where} safety.extra-allowed-imports"
        )

    loglint = _table(data.get("log-lint", {}), f"{where} [log-lint]")
    _check_keys(loglint, {"disallowed", "logger-objects"}, f"{where} [log-lint]")
    if "disallowed" in loglint:
        cfg.check.disallowed = _str_list(loglint["disallowed"], f"{where} log-lint.disallowed")
    if "logger-objects" in loglint:
        cfg.check.logger_objects = _str_list(loglint["logger-objects"], f"{where} log-lint.logger-objects")

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
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename}: not valid TOML: {exc}") from None
    if Path(filename).name == "pyproject.toml":
        tool = data.get("tool", {})
        if not isinstance(tool, dict) or "proctor" not in tool:
            return None
        data = _table(tool["proctor"], f"{filename} [tool.proctor]")
    return parse_config(data, source=filename, root=root)


def load_config(directory: str | Path) -> ProctorConfig:
    """Read the config in ``directory`` itself (no upward search); defaults if none."""
    directory = Path(directory)
    for name in CONFIG_FILES:
        path = directory / name
        if path.is_file():
            cfg = parse_config_text(path.read_text(encoding="utf-8"), str(path), root=str(directory))
            if cfg is not None:
                return cfg
    cfg = ProctorConfig()
    cfg.check.root = str(directory)
    return cfg


def find_config(start: str | Path) -> ProctorConfig:
    """Find the nearest config walking up from ``start``, as ruff and pytest do.

    Stops at the first directory holding proctor.toml or a pyproject.toml with a
    ``[tool.proctor]`` table, or at a git repository's root.
    """
    here = Path(start).resolve()
    if here.is_file():
        here = here.parent
    for directory in (here, *here.parents):
        for name in CONFIG_FILES:
            path = directory / name
            if path.is_file():
                cfg = parse_config_text(path.read_text(encoding="utf-8"), str(path), root=str(directory))
                if cfg is not None:
                    return cfg
        if (directory / ".git").exists():
            break
    cfg = ProctorConfig()
    cfg.check.root = str(here)
    return cfg
