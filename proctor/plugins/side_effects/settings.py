"""``[side-effects.<name>]`` tables: which effects run on which events.

Each table is one effect; its name is the effect's name (in the outbox, in
``result.side_effects`` and in the idempotency key). ``type`` says what it does
(``webhook`` or ``log``; default: the table's name). Every key is checked: a misspelt
one is a ConfigError naming the file and the key, and a literal ``secret`` is refused so
that a webhook secret never lands in the committed file.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proctor.core.config import ProctorConfig, Table
from proctor.core.errors import ConfigError


def outbox_path(git_dir: str | os.PathLike[str]) -> Path:
    """The clone's outbox database (here, not in ``outbox``: a write with no effect
    configured only asks whether it exists, without loading the outbox code)."""
    return Path(git_dir) / "proctor" / "outbox.sqlite"


TYPES = ("webhook", "log")
COMMON_KEYS = frozenset({"type", "events", "actions"})
WEBHOOK_KEYS = frozenset({"url", "secret-env", "timeout", "max-attempts", "max-retry-after"})
DEFAULT_EVENTS = ("action.applied",)


@dataclass(frozen=True)
class EffectSettings:
    """One configured effect, as plain values (stored with each outbox row)."""

    name: str
    type: str
    events: tuple[str, ...] = DEFAULT_EVENTS
    actions: tuple[str, ...] = ("*",)
    url: str = ""
    secret_env: str = ""
    timeout: float = 5.0
    max_attempts: int = 3
    max_retry_after: float = 10.0

    def wants(self, kind: str, action: str) -> bool:
        """Whether an event of ``kind`` for ``action`` goes to this effect (globs)."""
        return any(fnmatchcase(kind, p) for p in self.events) and any(
            fnmatchcase(action, p) for p in self.actions
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["events"], data["actions"] = list(self.events), list(self.actions)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EffectSettings:
        data = dict(data)
        data["events"] = tuple(data.get("events", DEFAULT_EVENTS))
        data["actions"] = tuple(data.get("actions", ("*",)))
        return cls(**data)


def _number(table: Table, key: str, default: float, *, minimum: float) -> float:
    value = table.values.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{table.where(key)}: expected a number >= {minimum}, got {value!r}")
    return float(value)


def parse_effect(name: str, values: Any, source: str | None) -> EffectSettings:
    table = Table(f"side-effects.{name}", values if isinstance(values, dict) else {}, source)
    if not isinstance(values, dict):
        raise ConfigError(f"{table.where()}: expected a table, got {values!r}")
    if "secret" in table:
        raise ConfigError(
            f"{table.where('secret')}: never commit the secret; name the environment "
            "variable that holds it with secret-env"
        )
    kind = values.get("type", name)
    if kind not in TYPES:
        raise ConfigError(
            f"{table.where('type')}: expected one of {', '.join(TYPES)}, got {kind!r}"
            + ("" if "type" in table else " (set type, or name the table after one)")
        )
    table.check_keys(COMMON_KEYS | (WEBHOOK_KEYS if kind == "webhook" else frozenset()))
    events = tuple(table.str_list("events") or DEFAULT_EVENTS)
    actions = tuple(table.str_list("actions") or ("*",))
    if kind == "log":
        return EffectSettings(name, kind, events, actions)
    url = values.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{table.where('url')}: expected an http(s) URL, got {url!r}")
    secret_env = values.get("secret-env")
    if not isinstance(secret_env, str) or not secret_env.strip():
        raise ConfigError(
            f"{table.where('secret-env')}: name the environment variable holding the signing secret"
        )
    attempts = _number(table, "max-attempts", 3, minimum=1)
    return EffectSettings(
        name,
        kind,
        events,
        actions,
        url=str(url),
        secret_env=secret_env.strip(),
        timeout=_number(table, "timeout", 5.0, minimum=0.1),
        max_attempts=int(attempts),
        max_retry_after=_number(table, "max-retry-after", 10.0, minimum=0),
    )


def effects(config: ProctorConfig | None) -> dict[str, EffectSettings]:
    """Every effect ``[side-effects.*]`` configures, by name."""
    if config is None:
        return {}
    raw = config.tables.get("side-effects", {})
    source = config.source
    if not isinstance(raw, dict):
        raise ConfigError(f"{source or 'config'} [side-effects]: expected a table")
    return {name: parse_effect(name, values, source) for name, values in raw.items()}
