"""The ``[runs]`` table: how procedures run, where runs are logged, when releases roll back.

::

    [runs]
    min-level = 1            # refuse to run below this isolation level (0, 1, 2)
    timeout = 30             # seconds of wall clock per run
    run-log = "postgresql://proctor@db.example/proctor"   # default: SQLite under .git/proctor
    disable = []             # sandbox layers to leave out: "cgroups", "namespaces"

    [runs.limits]            # proctor.runs.sandbox.Limits, in bytes and seconds
    memory = "512MiB"
    cpu = 60

    [runs.rollback]          # auto-rollback of a release that keeps failing
    enabled = true
    window = 20              # the last N runs of the current release
    min-runs = 10            # judged only once this many runs are in the window
    threshold = 0.9          # success rate below which it rolls back

The run log URL may also come from ``$PROCTOR_RUN_LOG``, which wins over the file: a
database password belongs in the environment, not in a committed file. Parsed here, by
the package that owns the table, as core's config asks; unknown keys are errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from proctor.core.config import ProctorConfig, Table
from proctor.core.errors import ConfigError

RUN_LOG_ENV = "PROCTOR_RUN_LOG"
# The default run log's file under .git/proctor/. Named here, not in the log's own module,
# so whether it exists is asked without importing SQLAlchemy (``procedure show`` does).
LOG_FILE = "runs.sqlite"
# The longest wall-clock limit a run may have (a week): a bound for the clocks and
# timers it is handed to, which NaN, infinity or 1e12 seconds would overflow.
MAX_TIMEOUT = 7 * 24 * 3600

RUNS_KEYS = frozenset({"min-level", "timeout", "run-log", "disable", "limits", "rollback"})
ROLLBACK_KEYS = frozenset({"enabled", "window", "min-runs", "threshold"})
DISABLE = ("cgroups", "namespaces")
SIZES = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2}
SIZES.update({"mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3})
BYTE_LIMITS = frozenset({"memory", "file_size", "output", "output_max", "result"})


@dataclass(frozen=True)
class RollbackSettings:
    """When a release is rolled back: ``min_runs`` of its last ``window`` runs are in,
    and fewer than ``threshold`` of them succeeded."""

    enabled: bool = True
    window: int = 20
    min_runs: int = 10
    threshold: float = 0.9


@dataclass(frozen=True)
class RunsSettings:
    min_level: int = 0
    timeout: float = 30.0
    run_log: str | None = None
    disable: tuple[str, ...] = ()
    limits: dict[str, int] = field(default_factory=dict)
    rollback: RollbackSettings = field(default_factory=RollbackSettings)

    def sandbox_limits(self) -> Any:
        """The ``Limits`` the sandbox takes, from ``[runs.limits]`` over its defaults."""
        from proctor.runs.sandbox import Limits

        return Limits(**self.limits)


def _int(table: Table, key: str, value: Any, low: int, high: int | None = None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"{table.where(key)}: expected an integer ≥ {low}, got {value!r}")
    if high is not None and value > high:
        raise ConfigError(f"{table.where(key)}: expected at most {high}, got {value!r}")
    return value


def _bytes(where: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", value)
        if m and m[2].lower() in SIZES and int(m[1]) > 0:
            return int(m[1]) * SIZES[m[2].lower()]
    raise ConfigError(
        f"{where}: expected a size in bytes (an integer, or e.g. '256MiB'), got {value!r}"
    )


def _limits(table: Table) -> dict[str, int]:
    from proctor.runs.sandbox import Limits, SandboxUsageError

    raw = table.table("limits") or {}
    known = {f.name.replace("_", "-"): f.name for f in fields(Limits)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(
            f"{table.where('limits')}: unknown key(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    out: dict[str, int] = {}
    for key, value in raw.items():
        name = known[key]
        where = f"{table.where('limits')}.{key}"
        if name in BYTE_LIMITS:
            out[name] = _bytes(where, value)
        elif isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[name] = value
        else:
            raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    try:
        Limits(**out)
    except SandboxUsageError as exc:
        raise ConfigError(f"{table.where('limits')}: {exc}") from None
    return out


def _rollback(table: Table) -> RollbackSettings:
    raw = table.table("rollback")
    if raw is None:
        return RollbackSettings()
    sub = Table(f"{table.name}.rollback", raw, table.source)
    sub.check_keys(ROLLBACK_KEYS)
    defaults = RollbackSettings()
    enabled = raw.get("enabled", defaults.enabled)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{sub.where('enabled')}: expected true or false, got {enabled!r}")
    window = _int(sub, "window", raw.get("window", defaults.window), 1)
    min_runs = _int(sub, "min-runs", raw.get("min-runs", defaults.min_runs), 1, window)
    threshold = raw.get("threshold", defaults.threshold)
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or not 0 <= threshold <= 1
    ):
        raise ConfigError(
            f"{sub.where('threshold')}: expected a success rate between 0 and 1, got {threshold!r}"
        )
    return RollbackSettings(enabled, window, min_runs, float(threshold))


def runs_settings(config: ProctorConfig, environ: dict[str, str] | None = None) -> RunsSettings:
    """Read and check ``[runs]`` of ``config``; ``$PROCTOR_RUN_LOG`` overrides ``run-log``.

    Raises ConfigError naming the file and key of anything malformed.
    """
    env = os.environ if environ is None else environ
    table = config.table("runs")
    table.check_keys(RUNS_KEYS)
    values = table.values
    min_level = _int(table, "min-level", values.get("min-level", 0), 0, 2)
    timeout = values.get("timeout", 30.0)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not (0 < timeout <= MAX_TIMEOUT)
    ):
        raise ConfigError(
            f"{table.where('timeout')}: expected seconds > 0 and at most {MAX_TIMEOUT}, "
            f"got {timeout!r}"
        )
    run_log = _run_log(table, env)
    disable = table.str_list("disable") or []
    bad = sorted(set(disable) - set(DISABLE))
    if bad:
        raise ConfigError(
            f"{table.where('disable')}: unknown layer(s) {', '.join(bad)}; known: {', '.join(DISABLE)}"
        )
    return RunsSettings(
        min_level=min_level,
        timeout=float(timeout),
        run_log=run_log,
        disable=tuple(disable),
        limits=_limits(table),
        rollback=_rollback(table),
    )


def _run_log(table: Table, env: Mapping[str, str]) -> str | None:
    run_log = table.values.get("run-log")
    if run_log is not None and (not isinstance(run_log, str) or not run_log.strip()):
        raise ConfigError(f"{table.where('run-log')}: expected a database URL, got {run_log!r}")
    return env.get(RUN_LOG_ENV) or run_log


def default_log_missing(
    config: ProctorConfig,
    state_dir: str | os.PathLike[str],
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether the run log is the default SQLite file under ``state_dir`` and it does not
    exist yet: nothing was ever recorded, so there is nothing to read.

    Reads only ``run-log`` (and ``$PROCTOR_RUN_LOG``) and imports nothing more, so a
    command that only might read the log (``procedure show``) pays a stat for it.
    Raises ConfigError for a malformed ``run-log``.
    """
    url = _run_log(config.table("runs"), os.environ if environ is None else environ)
    return url is None and not os.path.isfile(os.path.join(state_dir, LOG_FILE))
