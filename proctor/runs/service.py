"""``RunService``: from ``NAME[@VERSION]`` and params to a sandboxed, recorded run.

The steps of one run, each of which can end it:

1. resolve the version and read its code and metadata from git objects (``resolve``);
2. convert and check the params against the metadata and ``run()`` (``params``): a bad
   call is a ParamsError (exit 2), nothing runs and nothing is recorded;
3. check the code in procedure mode with the capabilities it declares (``checked``,
   cached by blob id); findings make the run ``denied``;
4. resolve the ``filesystem_write`` paths against the repository, refusing the git
   directory itself (a procedure granted ``.git/hooks`` would run code on the host);
5. run ``run(**params)`` in the sandbox at the best level the machine offers, never
   below ``[runs] min-level``;
6. record the run (one row), announce a ``run.<status>`` event, and, for the current
   release, judge the auto-rollback window (``rollback``).

The workspace hands in what lives above this layer as plain callables: the plugin
manager (for validators and events) and ``execute`` (``Workspace.execute``, so an
auto-rollback goes through the engine and its policy like any other action).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.core.config import ProctorConfig
from proctor.core.errors import NotFoundError, UsageError
from proctor.core.events import RunEvent
from proctor.procedures.repository import ProcedureRepository, code_path
from proctor.runs.bridge import run_async
from proctor.runs.model import LoggedRun, RunLogError, RunRecord, TestReport, VersionStats
from proctor.runs.params import check_params
from proctor.runs.resolve import ProcedureVersion, resolve_version, valid_name
from proctor.runs.settings import RunsSettings, default_log_missing, runs_settings

if TYPE_CHECKING:
    from proctor.core.plugins import PluginManager
    from proctor.runs.log.store import RunLog
    from proctor.store.gitstore import GitStore

Execute = Callable[..., Any]
TEST_FIELDS = ("id", "version", "commit", "examples", "passed", "failed", "actor", "started")


def new_run_id() -> str:
    """32 hex characters that sort by time: milliseconds, then 80 random bits."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def params_hash(params: Mapping[str, Any]) -> str:
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def run_row(record: RunRecord) -> dict[str, Any]:
    """The run log's row of a record."""
    error = record.error
    return {
        "id": record.run_id,
        "procedure": record.procedure,
        "version": record.version,
        "commit": record.commit,
        "purpose": record.purpose,
        "params_hash": record.params_hash,
        "actor": record.actor,
        "machine": record.machine,
        "status": record.status,
        "duration": record.duration,
        "error": " ".join(error.split())[:2000] if error else None,
        "level": record.level,
        "started": record.started,
    }


class RunService:
    """Runs, tests and the run log of one store. Made by ``Workspace.runs``."""

    def __init__(
        self,
        store: GitStore,
        procedures: ProcedureRepository,
        config: ProctorConfig,
        actor: str,
        plugins: Callable[[], PluginManager],
        execute: Execute,
    ) -> None:
        self.store = store
        self.procedures = procedures
        self.config = config
        self.actor = actor
        self.plugins = plugins
        self.execute_action = execute
        self.machine = socket.gethostname()

    # -- configuration and state -------------------------------------------------------------

    @cached_property
    def settings(self) -> RunsSettings:
        """``[runs]`` of the committed config. Raises ConfigError."""
        return runs_settings(self.config)

    @property
    def state_dir(self) -> Path:
        return Path(self.store.common_dir) / "proctor"

    @cached_property
    def log(self) -> RunLog:
        """The run log: ``[runs] run-log`` / ``$PROCTOR_RUN_LOG``, else SQLite here."""
        from proctor.runs.log.store import RunLog

        return RunLog(self.settings.run_log, self.state_dir, self.store.shared)

    def close(self) -> None:
        if "log" in self.__dict__:
            self.log.close()

    # -- one run -----------------------------------------------------------------------------

    def resolve(self, name: str, version: str | None = None) -> ProcedureVersion:
        return resolve_version(self.procedures, name, version)

    def _write_paths(self, declared: list[str]) -> tuple[list[str], str | None]:
        """Absolute paths for the sandbox, or why one is refused."""
        root = self.store.work_tree or self.store.cwd
        git_dirs = {os.path.realpath(self.store.git_dir), os.path.realpath(self.store.common_dir)}
        out = []
        for path in declared:
            full = os.path.normpath(os.path.join(root, path))
            real = os.path.realpath(full)
            if any(real == g or real.startswith(g + os.sep) for g in git_dirs):
                return [], f"filesystem_write path {path} is inside the repository's git directory"
            if not os.path.exists(real):
                return [], f"filesystem_write path {path} does not exist ({full})"
            out.append(full)
        return out, None

    def _check_inputs(self, pv: ProcedureVersion) -> dict[str, Any]:
        """What the verdict on ``pv``'s code depends on (besides the blob), as
        ``check_procedure`` takes it."""
        from proctor.checks.settings import check_settings
        from proctor.checks.validation import Capabilities

        declared = pv.spec.capabilities
        return {
            "capabilities": Capabilities(
                declared.network, declared.subprocess, tuple(declared.filesystem_write)
            ),
            "settings": check_settings(self.config),
            "validators": self.plugins().validators(),
            "cache_dir": self.state_dir / "checked",
        }

    def verdict_path(self, pv: ProcedureVersion) -> Path:
        """The file the check verdict on ``pv``'s code is kept in (``.git/proctor/checked``).

        A run reads it instead of checking again. The escape corpus writes a passing
        verdict here to send code the checks would refuse through a whole run; anyone who
        can write the git directory can do as much, so it opens nothing new.
        """
        from proctor.runs.checked import cache_key

        inputs = self._check_inputs(pv)
        key = cache_key(pv.blob, inputs["capabilities"], inputs["settings"], inputs["validators"])
        return Path(inputs["cache_dir"]) / f"{key}.json"

    def _denied(self, record: RunRecord, reason: str) -> RunRecord:
        record.status = "denied"
        record.reason = reason
        record.duration = time.time() - record.started
        return record

    async def execute_version(
        self,
        pv: ProcedureVersion,
        params: dict[str, Any],
        *,
        actor: str | None = None,
        purpose: str = "run",
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox's wall clock
        unsandboxed: bool = False,
    ) -> RunRecord:
        """Steps 3-5 for params already checked: the record, not yet logged."""
        from proctor.runs.checked import check_procedure
        from proctor.runs.sandbox import SandboxUsageError, run_in_sandbox_async

        settings = self.settings
        record = RunRecord(
            run_id=new_run_id(),
            procedure=pv.name,
            version=pv.label,
            commit=pv.commit,
            status="denied",
            started=time.time(),
            actor=actor or self.actor,
            machine=self.machine,
            params_hash=params_hash(params),
            purpose=purpose,
        )
        declared = pv.spec.capabilities
        errors, _cached = check_procedure(
            code_path(pv.name), pv.code, pv.blob, **self._check_inputs(pv), shared=self.store.shared
        )
        if errors:
            return self._denied(record, "the code does not pass the checks: " + "; ".join(errors))
        paths, refused = self._write_paths(list(declared.filesystem_write))
        if refused:
            return self._denied(record, refused)
        try:
            result = await run_in_sandbox_async(
                pv.code,
                params,
                entry=self.config.entry_point,
                capabilities={
                    "network": declared.network,
                    "subprocess": declared.subprocess,
                    "filesystem_write": paths,
                },
                limits=settings.sandbox_limits(),
                min_level=settings.min_level,
                timeout=timeout or settings.timeout,
                unsandboxed=unsandboxed,
                disable=settings.disable,
            )
        except SandboxUsageError as exc:
            return self._denied(record, str(exc))
        record.status = result.status
        record.value = result.value
        record.error_type = result.error_type
        record.error_message = result.error_message
        record.traceback = result.traceback
        record.reason = result.reason
        record.stdout, record.stderr = result.stdout, result.stderr
        record.stdout_truncated = result.stdout_truncated
        record.stderr_truncated = result.stderr_truncated
        record.duration = result.duration
        record.level = result.level
        record.layers = dict(result.layers)
        return record

    def announce(self, record: RunRecord) -> None:
        event = RunEvent(
            actor=record.actor,
            correlation_id=record.run_id,
            store=self.store.common_dir,
            run_id=record.run_id,
            procedure=record.procedure,
            version=record.version,
            commit=record.commit,
            status=record.status,  # type: ignore[arg-type]
            purpose=record.purpose,
            duration=record.duration,
            level=record.level,
            error=record.error,
            machine=record.machine,
        )
        for failure in self.plugins().emit(event):
            record.warnings.append(
                f"event handler of plugin {failure.plugin!r} failed: {failure.error}"
            )

    async def arun(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox's wall clock
        actor: str | None = None,
        from_text: bool = False,
        unsandboxed: bool = False,
    ) -> RunRecord:
        """Resolve, check, run in the sandbox, record, announce, judge auto-rollback.

        Raises UsageError / NotFoundError / ParamsError (exit 2) when nothing could
        run; everything that happened to a run is in the record, status included.
        """
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
        pv = self.resolve(name, version)
        checked = check_params(
            pv.name, pv.spec, pv.signature, dict(params or {}), from_text=from_text
        )
        self.settings  # noqa: B018 - a bad [runs] table is a ConfigError before anything runs
        record = await self.execute_version(
            pv, checked, actor=actor, timeout=timeout, unsandboxed=unsandboxed
        )
        try:
            await self.log.arecord([run_row(record)])
            record.recorded = True
        except RunLogError as exc:
            record.warnings.append(str(exc))
        self.announce(record)
        if record.recorded and pv.is_current_release and self.settings.rollback.enabled:
            from proctor.runs.rollback import judge

            record.rollback = await judge(self, pv, record)
        return record

    def run(self, name: str, params: Mapping[str, Any] | None = None, **kwargs: Any) -> RunRecord:
        """:meth:`arun` from synchronous code, through ``run_async``."""
        return run_async(self.arun(name, params, **kwargs))

    # -- examples ----------------------------------------------------------------------------

    async def atest(
        self, name: str, version: str | None = None, *, actor: str | None = None
    ) -> TestReport:
        from proctor.runs.examples import run_examples

        return await run_examples(self, self.resolve(name, version), actor=actor or self.actor)

    def test(self, name: str, version: str | None = None, **kwargs: Any) -> TestReport:
        return run_async(self.atest(name, version, **kwargs))

    # -- the log -----------------------------------------------------------------------------

    def log_exists(self) -> bool:
        """Whether there is a run log to read, without making one: the default SQLite file
        exists once something was recorded; a configured URL is a database to ask."""
        url = self.settings.run_log
        if url is None:
            return not default_log_missing(self.config, self.state_dir)
        if url.partition(":")[0].partition("+")[0] == "sqlite":
            return self.log.path is not None and self.log.path.is_file()
        return True

    def in_store(self, name: str) -> bool:
        """Whether the store branch holds procedure ``name`` now."""
        valid_name(name)
        tip = self.store.read_ref(self.procedures.ref)
        return tip is not None and self.procedures.snapshot(tip).exists(f"procedures/{name}")

    def _unknown(self, name: str) -> NotFoundError:
        return NotFoundError(f"unknown procedure {name!r}: not in the store and no runs recorded")

    def history(self, name: str, limit: int = 20) -> list[LoggedRun]:
        """The most recent runs of ``name``, newest first. Raises RunLogError, and
        NotFoundError for a name neither in the store nor in the log (a deleted
        procedure's runs stay readable)."""
        if limit < 1:
            raise UsageError("the number of runs to show must be at least 1")
        known = self.in_store(name)
        if not known and not self.log_exists():
            raise self._unknown(name)
        rows = self.log.recent(name, limit)
        if not rows and not known:
            raise self._unknown(name)
        return rows

    def stats(self, name: str | None = None) -> list[VersionStats]:
        """Per-version statistics of one procedure, or of all. Raises RunLogError, and
        NotFoundError for a name neither in the store nor in the log."""
        if name is None:
            return self.log.stats(None)
        known = self.in_store(name)
        if not known and not self.log_exists():
            raise self._unknown(name)
        rows = self.log.stats(name)
        if not rows and not known and not self.log.recent(name, 1):
            raise self._unknown(name)
        return rows

    def last_test(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        """The newest ``proctor test`` of one version (default: the tip), or None.

        Reads only a run log that exists (the default SQLite file is never created
        here, and with none nothing is resolved or imported); a log that cannot be read
        raises RunLogError.
        """
        if not self.log_exists():
            return None
        pv = self.resolve(name, "tip" if version is None else version)
        test = self.log.last_tests(pv.name).get((pv.name, pv.label))
        return None if test is None else {k: test[k] for k in TEST_FIELDS}
