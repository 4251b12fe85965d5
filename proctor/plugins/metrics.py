"""Built-in plugin: Prometheus metrics of what this clone did, from the events.

A CLI process lives for one command, so counters kept in its memory would die with it
and every scrape would see zeros. The plugin appends each event's increments to a log
of the clone instead (``<git dir>/proctor/metrics/increments.jsonl``, one line per
event, shared by every process), ``proctor metrics`` folds the log into the totals
(``totals.json``, exactly once even across crashes) and renders them as the
Prometheus text exposition, or writes it to a file for node_exporter's textfile
collector (``--textfile``). A long-running service embedding proctor registers
:func:`collector` with its own ``prometheus_client`` registry instead.

Recording needs only the standard library; rendering needs ``prometheus_client`` (the
``metrics`` extra), imported when it renders and never on ``proctor --help``.
:data:`METRICS` is the one list of what is exported; docs/metrics.md lists the same
(a test compares them).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proctor.core.errors import UsageError
from proctor.core.hookspecs import hookimpl


@dataclass(frozen=True)
class Metric:
    name: str  # as exposed (counters end in _total)
    type: str  # counter | histogram | gauge
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()


SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COUNTS = (1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)

METRICS: tuple[Metric, ...] = (
    Metric(
        "proctor_actions_total",
        "counter",
        ("action", "outcome"),
        "Actions by api_name and outcome (applied, proposed, denied, failed).",
    ),
    Metric(
        "proctor_cas_retries_total",
        "counter",
        ("action",),
        "Builds repeated after a lost compare-and-swap of the store ref.",
    ),
    Metric(
        "proctor_cas_backoff_seconds",
        "histogram",
        ("action",),
        "Seconds a write slept between compare-and-swap attempts.",
        SECONDS,
    ),
    Metric(
        "proctor_cas_retries_exhausted_total",
        "counter",
        ("action",),
        "Writes that gave up after the last compare-and-swap attempt (exit code 3).",
    ),
    Metric(
        "proctor_version_conflict_delta",
        "histogram",
        ("action",),
        "On a conflict, how far the store had moved past the expected version.",
        COUNTS,
    ),
    Metric(
        "proctor_proposals_total",
        "counter",
        ("status",),
        "Proposal transitions by the status they lead to.",
    ),
    Metric(
        "proctor_side_effects_total",
        "counter",
        ("effect", "type", "outcome"),
        "Side-effect deliveries by effect and outcome (delivered, pending, failed).",
    ),
    Metric(
        "proctor_side_effect_seconds",
        "histogram",
        ("effect", "type"),
        "Wall time of one side-effect delivery, its retries included.",
        SECONDS,
    ),
    Metric(
        "proctor_runs_total",
        "counter",
        ("procedure", "status"),
        "Procedure runs by status (ok, error, timeout, killed, denied).",
    ),
    Metric(
        "proctor_rollbacks_total",
        "counter",
        ("procedure", "outcome"),
        "Automatic rollbacks by the outcome of the rollback action.",
    ),
    Metric(
        "proctor_llm_submitted_total",
        "counter",
        (),
        "Procedures queued by a batch (`proctor generate --all`).",
    ),
    Metric(
        "proctor_llm_queue_inflight",
        "gauge",
        (),
        "Generations being worked on now, over every running batch of this clone.",
    ),
    Metric(
        "proctor_llm_completed_total",
        "counter",
        ("outcome",),
        "Generations finished, by the action's outcome (applied, proposed, denied, failed).",
    ),
    Metric(
        "proctor_llm_stage_seconds",
        "histogram",
        ("stage",),
        "Seconds one stage of one generation took (generate, check, examples, commit).",
        SECONDS,
    ),
    Metric(
        "proctor_llm_cache_total",
        "counter",
        ("result",),
        "Model calls the response cache answered (hit) or passed on (miss).",
    ),
    Metric(
        "proctor_llm_breaker_transitions_total",
        "counter",
        ("state",),
        "Circuit-breaker changes by the state entered (open, half_open, closed).",
    ),
    Metric(
        "proctor_llm_attempts_failed_total",
        "counter",
        ("status",),
        "Model calls that failed, by HTTP status (0: no response); the transport may retry.",
    ),
)
BY_NAME = {m.name: m for m in METRICS}

# The status a proposal reaches when a proposal.<verb> action is applied.
PROPOSAL_STATUS = {
    "approve": "approved",
    "reject": "rejected",
    "withdraw": "withdrawn",
    "apply": "applied",
}

Increment = tuple[str, dict[str, str], float]  # metric, labels, value (observed for histograms)

# A batch's queue events carry its running counts; what was already counted, per batch
# (correlation id), so each event adds only what is new.
_SUBMITTED_SEEN: dict[str, int] = {}


def metrics_dir(git_dir: str | os.PathLike[str]) -> Path:
    return Path(git_dir) / "proctor" / "metrics"


def _shared(git_dir: str | os.PathLike[str]) -> int:
    """The repository's ``core.sharedRepository``: several users' processes add to one
    clone's metrics, so what one creates the others must be able to write."""
    from proctor.store.perms import state_setting

    return state_setting(str(git_dir))


@contextmanager
def _locked(directory: str | os.PathLike[str], mode: int) -> Iterator[None]:
    """Writers append under a shared lock; folding takes it exclusively."""
    import fcntl

    from proctor.store.perms import open_file, state_folder

    common_dir = os.path.dirname(os.path.dirname(directory))
    folder = state_folder(common_dir, os.path.basename(directory))
    fd = open_file(os.path.join(folder, "lock"), os.O_RDWR | os.O_CREAT, _shared(common_dir))
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)


def increments(event: Any) -> list[Increment]:
    """What one event adds, by metric. Unknown events add nothing."""
    from proctor.core.events import (
        ActionEvent,
        LlmEvent,
        RollbackEvent,
        RunEvent,
        SideEffectEvent,
    )

    out: list[Increment] = []
    if isinstance(event, ActionEvent):
        action = {"action": event.action}
        out.append(("proctor_actions_total", {**action, "outcome": event.status}, 1))
        if event.attempts > 1:
            out.append(("proctor_cas_retries_total", action, event.attempts - 1))
        if event.attempts > 0:
            out.append(("proctor_cas_backoff_seconds", action, event.backoff))
        if event.retries_exhausted:
            out.append(("proctor_cas_retries_exhausted_total", action, 1))
        if event.conflict_delta is not None:
            out.append(("proctor_version_conflict_delta", action, event.conflict_delta))
        status = None
        if event.status == "proposed":
            status = "pending"
        elif event.action.startswith("proposal."):
            verb = event.action.removeprefix("proposal.")
            if event.status == "applied":
                status = PROPOSAL_STATUS.get(verb, verb)
            elif event.status == "failed" and verb == "apply":
                status = "failed"
        if status is not None:
            out.append(("proctor_proposals_total", {"status": status}, 1))
    elif isinstance(event, SideEffectEvent):
        effect = {"effect": event.effect, "type": event.effect_type}
        out.append(("proctor_side_effects_total", {**effect, "outcome": event.outcome}, 1))
        out.append(("proctor_side_effect_seconds", effect, event.seconds))
    elif isinstance(event, RollbackEvent):
        labels = {"procedure": event.procedure, "outcome": event.outcome}
        out.append(("proctor_rollbacks_total", labels, 1))
    elif isinstance(event, RunEvent):
        labels = {"procedure": event.procedure, "status": event.status}
        out.append(("proctor_runs_total", labels, 1))
    elif isinstance(event, LlmEvent):
        out.extend(_llm_increments(event))
    return out


def _llm_increments(event: Any) -> list[Increment]:
    """Generation metrics that add up. The queue's in-flight count is a level, not an
    increment: :func:`set_inflight` keeps it."""
    what = event.what
    if what == "queue" and event.submitted is not None:
        seen = _SUBMITTED_SEEN.get(event.correlation_id, 0)
        _SUBMITTED_SEEN[event.correlation_id] = max(seen, event.submitted)
        if event.submitted > seen:
            return [("proctor_llm_submitted_total", {}, event.submitted - seen)]
    elif what == "generated":
        return [("proctor_llm_completed_total", {"outcome": event.outcome or "failed"}, 1)]
    elif what == "stage" and event.stage and event.seconds is not None:
        return [("proctor_llm_stage_seconds", {"stage": event.stage}, event.seconds)]
    elif what in ("cache_hit", "cache_miss"):
        return [("proctor_llm_cache_total", {"result": what.removeprefix("cache_")}, 1)]
    elif what == "breaker" and event.state:
        return [("proctor_llm_breaker_transitions_total", {"state": event.state}, 1)]
    elif what == "attempt_failed":
        return [("proctor_llm_attempts_failed_total", {"status": str(event.status or 0)}, 1)]
    return []


def _rows(increment: Increment) -> Iterator[tuple[str, str, str, float]]:
    """The sample rows an increment adds to: a counter's one row; a histogram's
    cumulative buckets, ``+Inf``, sum and count."""
    name, labels, value = increment
    metric = BY_NAME[name]
    key = json.dumps([labels.get(label, "") for label in metric.labels])
    if metric.type == "counter":
        yield name, key, "", value
        return
    for bound in metric.buckets:
        if value <= bound:
            yield name, key, repr(bound), 1.0
    yield name, key, "+Inf", 1.0
    yield name, key, "sum", value


def record(git_dir: str | os.PathLike[str], items: list[Increment]) -> None:
    """Append ``items`` to the clone's log of increments: one ``write`` of one line on a
    file opened for appending, no fsync (a counter may lose the last event to a power
    cut; it must not cost a write tens of milliseconds)."""
    if not items:
        return
    import fcntl

    from proctor.store.perms import open_file

    line = json.dumps([row for item in items for row in _rows(item)]) + "\n"
    directory = os.path.join(git_dir, "proctor", "metrics")  # a string: asked every write
    with _locked(directory, fcntl.LOCK_SH):
        log = os.path.join(directory, LOG)
        fd = open_file(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _shared(git_dir))
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


@hookimpl
def proctor_on_event(event: Any) -> None:
    store = getattr(event, "store", "")
    if store:
        record(store, increments(event))
        if getattr(event, "what", None) == "queue" and event.inflight is not None:
            set_inflight(store, event.correlation_id, event.inflight)


# -- the in-flight gauge: one file per running batch ---------------------------------------
#
# Totals are summed over every process that ever ran; a level cannot be: summed, a batch
# killed with items in flight would count them for ever, and "the last value written" is
# one batch's, not the clone's. So each batch keeps its own level in a file named by its
# process and id, removed when it reaches 0, and the gauge is the sum over the files whose
# process is still running (a file left by a killed batch is removed when read).

INFLIGHT = "inflight"


def _process_start(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot, from /proc), or None where that
    cannot be read: tells a live process from a later one that reuses its number."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat.rpartition(b")")[2].split()[19].decode()


def _running(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    return start is None or _process_start(pid) in (start, None)


def set_inflight(git_dir: str | os.PathLike[str], batch: str, inflight: int) -> None:
    """Record that batch ``batch`` of this process has ``inflight`` items in flight."""
    directory = metrics_dir(git_dir) / INFLIGHT
    path = directory / f"{os.getpid()}-{batch}.json"
    if inflight <= 0:
        path.unlink(missing_ok=True)
        return
    from proctor.store.perms import state_folder, write_file

    state_folder(str(git_dir), directory.parent.name, INFLIGHT)
    pid = os.getpid()
    temp = directory / f".{path.name}.tmp"
    data = {"pid": pid, "start": _process_start(pid), "inflight": inflight}
    write_file(temp, json.dumps(data).encode("utf-8"), _shared(git_dir))
    os.replace(temp, path)


def inflight(git_dir: str | os.PathLike[str]) -> int:
    """Items in flight now, over every batch of this clone whose process still runs."""
    total = 0
    for path in sorted((metrics_dir(git_dir) / INFLIGHT).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid, start, level = int(data["pid"]), data.get("start"), int(data["inflight"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being replaced right now, or not ours
        if _running(pid, start):
            total += level
        else:
            path.unlink(missing_ok=True)
    return total


#: How each gauge of :data:`METRICS` is read when it is rendered.
GAUGES = {"proctor_llm_queue_inflight": inflight}


LOG = "increments.jsonl"
TOTALS = "totals.json"


def _fold(directory: Path) -> dict[str, Any]:
    """Add the appended increments to the totals, exactly once: the log is renamed to a
    unique name first, the totals (written atomically) name every file they already
    hold, and a file is deleted only after that, so a crash anywhere neither drops nor
    doubles an increment."""
    import fcntl
    import uuid

    from proctor.store.perms import write_file

    shared = _shared(directory.parent.parent)
    with _locked(directory, fcntl.LOCK_EX):
        totals_path = directory / TOTALS
        totals: dict[str, Any] = {"samples": {}, "folded": []}
        if totals_path.is_file():
            totals = json.loads(totals_path.read_text(encoding="utf-8"))
        # Names of files already added but not yet deleted (a crash between the two).
        totals["folded"] = [n for n in totals["folded"] if (directory / n).exists()]
        log = directory / LOG
        if log.is_file():
            log.rename(directory / f"fold-{uuid.uuid4().hex}.jsonl")
        for part in sorted(directory.glob("fold-*.jsonl")):
            if part.name not in totals["folded"]:
                for text in part.read_text(encoding="utf-8").splitlines():
                    try:
                        rows = json.loads(text)
                    except ValueError:
                        continue  # a line cut short by a crash while it was written
                    for name, key, le, value in rows:
                        slot = f"{name}\x00{key}\x00{le}"
                        totals["samples"][slot] = totals["samples"].get(slot, 0.0) + value
                totals["folded"].append(part.name)
                temp = directory / f".{TOTALS}.tmp"
                write_file(temp, json.dumps(totals).encode("utf-8"), shared)
                os.replace(temp, totals_path)
            part.unlink()
        totals["folded"] = []
        return totals


def _samples(git_dir: str | os.PathLike[str]) -> dict[str, dict[str, dict[str, float]]]:
    directory = metrics_dir(git_dir)
    out: dict[str, dict[str, dict[str, float]]] = {}
    if not directory.is_dir():
        return out
    for slot, value in _fold(directory)["samples"].items():
        name, key, le = slot.split("\x00")
        out.setdefault(name, {}).setdefault(key, {})[le] = value
    return out


def collector(git_dir: str | os.PathLike[str]) -> Any:
    """A ``prometheus_client`` collector of the clone's totals, every metric of
    :data:`METRICS` included (empty ones too), for a registry of the caller's."""
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
    )

    class Totals:
        def collect(self) -> Iterator[Any]:
            samples = _samples(git_dir)
            for metric in METRICS:
                rows = samples.get(metric.name, {})
                family: Any
                if metric.type == "gauge":
                    level = GAUGES[metric.name](git_dir)
                    family = GaugeMetricFamily(metric.name, metric.help, value=level)
                elif metric.type == "counter":
                    family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
                    for key, values in sorted(rows.items()):
                        family.add_metric(json.loads(key), values.get("", 0.0))
                else:
                    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
                    for key, values in sorted(rows.items()):
                        buckets = [(repr(b), values.get(repr(b), 0.0)) for b in metric.buckets]
                        buckets.append(("+Inf", values.get("+Inf", 0.0)))
                        family.add_metric(json.loads(key), buckets, values.get("sum", 0.0))
                yield family

    return Totals()


def exposition(git_dir: str | os.PathLike[str]) -> str:
    """The Prometheus text exposition of the clone's totals."""
    try:
        from prometheus_client import CollectorRegistry, generate_latest
    except ImportError:
        from proctor.core.errors import UsageError

        raise UsageError(
            "proctor metrics needs prometheus_client: pip install 'proctor[metrics]'"
        ) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector(git_dir))
    return generate_latest(registry).decode("utf-8")


def write_textfile(git_dir: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Write the exposition to ``path`` atomically (a temporary file in the same
    directory, then a rename), as node_exporter's textfile collector requires."""
    text = exposition(git_dir)
    target = Path(path)
    if not target.name:
        raise UsageError("--textfile: give a file path")
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        pass
    else:  # only a regular file is replaced: never a device, a FIFO, a folder or a link
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{target}: exists and is not a regular file; give a file path")
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write beside it: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"{target}: cannot write it: {exc.strerror}") from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
