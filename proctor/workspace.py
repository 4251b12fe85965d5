"""The facade every face uses: open a repository as a store and act on it.

``Workspace`` wires the git store, the configuration, the plugins and the action engine,
so the CLI, the hooks and Python callers share one behaviour::

    with Workspace.open("path/to/repo", actor="ana@example.com") as ws:
        ws.execute("procedure.create", {"name": "greet", "code": CODE})
        for v in ws.history("greet"):
            print(v.commit, v.message)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.core.config import ProctorConfig, load_config, parse_config_text
from proctor.core.errors import NotARepositoryError, UsageError
from proctor.core.plugins import PluginManager
from proctor.procedures.repository import (
    ProcedureRepository,
    ProcedureSummary,
    ProcedureView,
    VersionInfo,
)
from proctor.store.gitstore import Change, GitStore, format_ident

if TYPE_CHECKING:
    from proctor.engine.actions import ActionResult, ActionType
    from proctor.engine.pipeline import ActionEngine
    from proctor.llm.backends import Backend
    from proctor.llm.batch import BatchReport, BatchState, ItemResult
    from proctor.llm.cache import ResponseCache
    from proctor.llm.generate import GenerationOutcome, GenerationSettings, Generator
    from proctor.runs.model import RunRecord, TestReport
    from proctor.runs.service import RunService

logger = logging.getLogger("proctor.workspace")

DEFAULT_CONFIG = """\
# proctor configuration. Policy is read from the committed copy on the store branch.
# Every key is optional; unknown keys are errors.
#
#   store-ref = "refs/heads/<branch>"  where procedures live (default: the checked-out branch)
#   entry-point = "run"                the function each procedures/<name>/main.py defines
#   [check]     select, ignore, exclude, per-file-ignores: what `proctor check` runs on
#   [safety]    allowed-imports, extra-allowed-imports: the imports procedure code may use
#   [log-lint]  disallowed, logger-objects: log-message wording to refuse, and where
#   [policy]    "<action>" = "ALLOW_IMMEDIATE" | "REQUIRE_PROPOSAL" | "DENY"
#   [runs]      min-level, timeout, run-log, [runs.limits], [runs.rollback]: how runs run
#
# `proctor action list` names the actions; `proctor --help` the commands.
entry-point = "run"

[check]
exclude = []

[policy]
# "procedure.delete" = "REQUIRE_PROPOSAL"
"""


def _git_identity(store: GitStore) -> tuple[str | None, str | None]:
    name = os.environ.get("GIT_AUTHOR_NAME")
    email = os.environ.get("GIT_AUTHOR_EMAIL")
    if name and email:
        return name, email
    proc = store.git("config", "--get-regexp", r"^user\.(name|email)$", check=False)
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition(" ")
        if key == "user.name" and not name:
            name = value
        elif key == "user.email" and not email:
            email = value
    return name, email


class Workspace:
    """A repository opened as a proctor store. Close it, or use it as a context manager.

    Errors: every method raises only :class:`proctor.ProctorError` subclasses on purpose
    (importable from ``proctor``); each says which below. ``exit_code`` on the error is
    what the CLI exits with for it.
    """

    def __init__(
        self,
        store: GitStore,
        ref: str,
        config: ProctorConfig,
        actor: str,
        author: str,
        plugins: PluginManager | None = None,
    ) -> None:
        self.store = store
        self.ref = ref
        self.config = config
        self.actor = actor
        self.author = author
        self._plugins = plugins
        self.procedures = ProcedureRepository(store, ref, config.entry_point)

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager, loaded on first need: reads do not load plugins.

        The process-wide one, with the built-ins of ``proctor.plugins``, unless one was
        passed in. Raises PluginError only under ``PROCTOR_STRICT_PLUGINS``.
        """
        if self._plugins is None:
            from proctor.plugins import plugin_manager

            self._plugins = plugin_manager()
        return self._plugins

    @cached_property
    def engine(self) -> ActionEngine:
        """The action pipeline; built on first write, as reads need none of it.

        ``engine.proposals`` is where a proposal handler is installed (none yet: an
        action that policy sends to review then fails saying proposals are not enabled).
        Raises what :attr:`plugins` raises.
        """
        from proctor.engine.pipeline import ActionEngine

        return ActionEngine(self.store, self.ref, self.plugins, self.config, self.author)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        actor: str | None = None,
        plugins: PluginManager | None = None,
    ) -> Workspace:
        """Open the git repository at (or around) ``path`` as a store.

        The store branch is ``store-ref`` from the committed config, else the checked-out
        branch; the actor is ``actor``, else ``$PROCTOR_ACTOR``, else git's user.email.

        Raises NotARepositoryError (no git repository there), UsageError (HEAD detached
        and no ``store-ref``), ConfigError (an invalid proctor.toml or
        ``[tool.proctor]``), StoreError (git failed).
        """
        store = GitStore(path)
        try:
            config = cls._read_config(store)
            ref = config.store_ref or store.head_ref()
            if ref is None:
                raise UsageError(
                    f"{store.cwd}: HEAD is detached; check out a branch or set "
                    "store-ref in proctor.toml"
                )
            name, email = _git_identity(store)
            who = actor or os.environ.get("PROCTOR_ACTOR") or email or "anonymous"
            author = format_ident(name or who, email or who)
            return cls(store, ref, config, who, author, plugins)
        except BaseException:
            store.close()
            raise

    @staticmethod
    def _read_config(store: GitStore) -> ProctorConfig:
        """Config from the store branch's committed files, else from the work tree.

        The committed copy wins because policy lives there: a local edit must not loosen it.
        """
        head = store.head_ref()
        tip = store.read_ref(head) if head else None
        if tip is not None:
            tree = store.commit_tree(tip)
            for filename in ("proctor.toml", "pyproject.toml"):
                data = store.read_blob(tree, filename)
                if data is not None:
                    cfg = parse_config_text(data.decode("utf-8"), filename)
                    if cfg is not None:
                        return cfg
            return ProctorConfig()
        if store.work_tree:
            return load_config(store.work_tree)
        return ProctorConfig()

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] = ".", *, actor: str | None = None
    ) -> tuple[Workspace, bool]:
        """Create the repository if needed and commit a default proctor.toml.

        Returns the workspace and whether anything was created. Raises what
        :meth:`open` raises, DirtyWorkTreeError (an uncommitted proctor.toml of the
        user's is in the way), ConcurrencyError (the branch kept moving) and StoreError.
        """
        import subprocess

        target = Path(path)
        target.mkdir(parents=True, exist_ok=True)
        created = False
        try:
            GitStore(target).close()
        except NotARepositoryError:
            subprocess.run(["git", "init", "-q", str(target)], check=True)
            created = True
        ws = cls.open(target, actor=actor)
        try:
            tip = ws.store.read_ref(ws.ref)
            if tip is None or ws.store.read_blob(ws.store.commit_tree(tip), "proctor.toml") is None:
                ws.store.write(
                    ws.ref,
                    lambda _tip: Change(
                        edits={"proctor.toml": DEFAULT_CONFIG.encode()},
                        message="Initialise proctor store",
                    ),
                    author=ws.author,
                    trailers={"Proctor-Action": "init", "Proctor-Actor": ws.actor},
                    reason="proctor: init",
                )
                created = True
        except BaseException:
            ws.close()
            raise
        return ws, created

    def close(self) -> None:
        """Stop the git helper processes. Raises nothing; closing twice is harmless."""
        if "runs" in self.__dict__:
            self.runs.close()
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def list_procedures(self) -> list[ProcedureSummary]:
        """Every procedure on the store branch's tip, by name.

        Raises ValidationFailed (a committed metadata.json is unreadable) and StoreError.
        """
        return self.procedures.summaries()

    def get_procedure(self, name: str, version: str | None = None) -> ProcedureView:
        """One procedure at its tip, at a release ``X.Y.Z`` or at a revision.

        Raises UsageError (a bad name), NotFoundError (no such procedure, release or
        revision), ValidationFailed (its metadata.json is unreadable) and StoreError.
        """
        return self.procedures.get(name, version)

    def history(self, name: str) -> list[VersionInfo]:
        """The commits that changed the procedure, newest first, with breaking flags.

        Raises UsageError (a bad name), NotFoundError (no such procedure), StoreError.
        """
        return self.procedures.history(name)

    def diff(self, name: str, from_version: str, to_version: str | None = None) -> str:
        """A unified diff of the procedure between two versions (``to``: the tip).

        Raises UsageError (a bad name), NotFoundError (an unknown version), StoreError.
        """
        return self.procedures.diff(name, from_version, to_version)

    def actions(self) -> dict[str, type[ActionType]]:
        """Every registered action type by ``api_name``; loads the plugins.

        Raises PluginError only under ``PROCTOR_STRICT_PLUGINS``.
        """
        return self.engine.actions()

    # -- writes ----------------------------------------------------------------------------

    def execute(
        self,
        api_name: str,
        params: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, bytes] | None = None,
    ) -> ActionResult:
        """Run an action through the pipeline (plan, decide, apply, publish, emit).

        Outcomes that are **results** (an :class:`~proctor.engine.actions.ActionResult`,
        nothing raised), each announced as an ``action.<status>`` event:

        - ``applied``: the commit (and/or release tags) is published. A side effect or
          event handler that failed afterwards is in ``result.side_effects`` /
          ``result.warnings``; it never undoes the commit.
        - ``proposed``: policy wants review and a proposal handler recorded it
          (``result.proposal``).
        - ``denied``: policy refused (``result.errors`` says why; a policy plugin that
          failed also denies). Nothing is written.
        - ``failed``: policy wants a proposal and proposals are not enabled. Nothing is
          written.

        Outcomes that are **exceptions** (nothing is written; an ``action.failed`` event
        is announced first):

        - UsageError: an unknown action; NotFoundError: what the params name is not there;
        - ValidationFailed: bad params, failed criteria or code checks (``findings``);
        - DirtyWorkTreeError: a path the write touches has uncommitted changes;
        - ConcurrencyError: a touched path changed under the write (exit code 3);
        - StoreError: git failed; PluginError: only under ``PROCTOR_STRICT_PLUGINS``
          (raised after the commit if an event handler fails: the commit stays).

        ``metadata`` is handed to plugins as ``context.metadata``; the pipeline never
        reads it. ``inputs`` maps local files the params were read from to the bytes
        read, so a procedure file edited in place can be handed over as it is.
        """
        from proctor.engine.actions import ActionContext

        context = ActionContext(
            actor=actor or self.actor,
            metadata=dict(metadata or {}),
            config=self.config,
            inputs=dict(inputs or {}),
        )
        return self.engine.run(api_name, params or {}, context)

    # -- runs ------------------------------------------------------------------------------

    @cached_property
    def runs(self) -> RunService:
        """Runs, example tests and the run log (``history``, ``stats``) of this store.

        Raises nothing itself; its methods raise RunLogError (the log cannot be reached
        or written), ConfigError (a bad ``[runs]`` table) and what :meth:`run` raises.
        The run log is ``[runs] run-log`` (or ``$PROCTOR_RUN_LOG``), else SQLite under
        ``.git/proctor/``; nothing connects to it until the first run or query.
        """
        from proctor.runs.service import RunService

        return RunService(
            self.store,
            self.procedures,
            self.config,
            self.actor,
            lambda: self.plugins,
            self.execute,
        )

    def run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,
        actor: str | None = None,
        unsandboxed: bool = False,
    ) -> RunRecord:
        """Run ``name`` at ``version`` (default: the latest release, else the tip) in the
        sandbox, record it and return its :class:`~proctor.runs.model.RunRecord`.

        ``version`` is ``X.Y.Z``, ``tip`` or any git revision; ``name`` may also carry
        ``@VERSION``. The code comes from git objects, never the work tree. Outcomes of
        the run itself are in ``record.status`` (ok, error, timeout, killed, denied),
        nothing raised. Raises UsageError / NotFoundError / ParamsError (the call is
        wrong: nothing ran or was recorded), ConfigError (a bad ``[runs]`` table).
        Safe to call with or without a running event loop (see ``run_async``).
        """
        return self.runs.run(
            name, params, version=version, timeout=timeout, actor=actor, unsandboxed=unsandboxed
        )

    async def arun(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        version: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the sandbox's wall clock
        actor: str | None = None,
        unsandboxed: bool = False,
    ) -> RunRecord:
        """:meth:`run` for async code: the sandbox waits on a worker thread and the run
        log is written through the async engine, so the event loop keeps running.

        Raises what :meth:`run` raises.
        """
        return await self.runs.arun(
            name, params, version=version, timeout=timeout, actor=actor, unsandboxed=unsandboxed
        )

    def test(self, name: str, version: str | None = None) -> TestReport:
        """Run the examples of ``metadata.json`` as tests and record the outcome.

        Raises what :meth:`run` raises for a bad name or version.
        """
        return self.runs.test(name, version)

    # -- code generation -------------------------------------------------------------------

    def generation_settings(self, **overrides: Any) -> GenerationSettings:
        """``[llm]`` of the committed config with ``overrides`` (backend, model,
        options, max_repairs). Raises ConfigError, UsageError (no backend or model)."""
        from proctor.llm.generate import generation_settings

        return generation_settings(self.config, **overrides)

    def _llm_emit(self, correlation_id: str) -> Callable[..., None]:
        from proctor.core.events import LlmEvent

        def emit(**fields: Any) -> None:
            for failure in self.plugins.emit(
                LlmEvent(actor=self.actor, correlation_id=correlation_id, **fields)
            ):
                logger.warning(
                    "event handler of plugin %s failed on llm.%s: %s",
                    failure.plugin,
                    fields.get("what"),
                    failure.error,
                )

        return emit

    def generator(
        self, settings: GenerationSettings, correlation_id: str, backend: Backend | None = None
    ) -> Generator:
        """A :class:`~proctor.llm.generate.Generator` for ``settings``: the backend from
        the plugins, one transport (breaker, response cache under ``.git/proctor``), the
        run service for the examples, events through ``proctor_on_event``. ``backend``
        replaces the configured one (a fake in tests). Raises UsageError (an unknown
        backend or bad options)."""
        from proctor.llm.backends import build_backend
        from proctor.llm.cache import ResponseCache, default_cache_dir
        from proctor.llm.generate import Generator
        from proctor.llm.transport import Transport, TransportEvent, TransportPolicy

        emit = self._llm_emit(correlation_id)
        if backend is None:
            backend = build_backend(self.plugins.llm_backends(), settings.backend, settings.options)

        def observe(event: TransportEvent) -> None:
            kind = event.kind
            fields: dict[str, Any] = {"backend": event.backend, "model": settings.model}
            if kind.startswith("breaker_"):
                emit(what="breaker", state=kind.removeprefix("breaker_"), **fields)
            elif kind in ("cache_hit", "cache_miss", "attempt_failed", "gave_up"):
                emit(what=kind, status=event.status, error=event.error, **fields)

        transport = Transport(
            backend,
            TransportPolicy(deadline=settings.deadline),
            cache=ResponseCache(default_cache_dir(self.store.common_dir)),
            observer=observe,
        )
        return Generator(
            transport,
            settings,
            config=self.config,
            plugins=self.plugins,
            runs=self.runs,
            actor=self.actor,
            emit=emit,
        )

    def generate(
        self, name: str, settings: GenerationSettings, *, backend: Backend | None = None
    ) -> GenerationResult:
        """Generate code for the metadata-only procedure ``name`` and commit it through
        ``procedure.generate`` (policy decides on the confidence's band).

        Raises UsageError (a bad name, no model configured, it already has code),
        NotFoundError (no such procedure), LLMError (the model could not be reached or
        answered nothing usable: ``exc.attempts``), and what :meth:`execute` raises.
        """
        import uuid

        from proctor.core.errors import NotFoundError
        from proctor.procedures.repository import code_path, metadata_path, parse_spec
        from proctor.runs.bridge import run_async
        from proctor.runs.resolve import valid_name

        valid_name(name)
        from proctor.store.gitstore import Snapshot

        snap = Snapshot(self.store, self.store.read_ref(self.ref))
        meta = snap.read(metadata_path(name))
        if meta is None:
            raise NotFoundError(f"unknown procedure {name!r}: import its metadata first")
        if snap.read(code_path(name)) is not None:
            raise UsageError(
                f"{name} already has code; generation writes only procedures that have "
                "metadata and no code"
            )
        spec = parse_spec(meta, metadata_path(name))
        correlation = uuid.uuid4().hex
        generator = self.generator(settings, correlation, backend)
        outcome = run_async(generator.agenerate(spec))
        result = self.execute("procedure.generate", outcome.params())
        generator.emit(
            what="generated",
            procedure=name,
            outcome=result.status,
            confidence=outcome.confidence,
            band=outcome.band.name,
        )
        return GenerationResult(outcome, result)

    def generate_all(
        self,
        settings: GenerationSettings,
        *,
        concurrency: int = 4,
        resume: bool = False,
        restart: bool = False,
        progress: Callable[[ItemResult, BatchState], None] | None = None,
        started: Callable[[BatchState, int], None] | None = None,
        backend: Backend | None = None,
    ) -> BatchReport:
        """Generate every metadata-only procedure (see :mod:`proctor.llm.batch`).

        SIGINT and SIGTERM stop it cleanly (``report.interrupted``); ``resume``
        continues an interrupted batch. Raises UsageError (nothing to do, nothing to
        resume, or the input or settings changed since the interrupted batch).
        """
        import uuid

        from proctor.llm.batch import STATE_FILE, Batch
        from proctor.runs.bridge import run_async

        correlation = uuid.uuid4().hex
        generator = self.generator(settings, correlation, backend)
        batch = Batch(
            store=self.store,
            ref=self.ref,
            generator=generator,
            commit=lambda outcome: self.execute("procedure.generate", outcome.params()),
            concurrency=concurrency,
            state_path=Path(self.store.common_dir) / "proctor" / STATE_FILE,
            emit=generator.emit,
            progress=progress,
            started=started,
        )
        return run_async(batch.arun(resume=resume, restart=restart))

    def import_procedures(self, items: list[dict[str, Any]]) -> ActionResult:
        """Add metadata-only procedures in one commit (``procedure.import``).

        Raises ValidationFailed (an item is invalid, listed twice, carries a generation
        block, or clashes with an existing procedure: nothing is written), UsageError
        (nothing new to import) and what :meth:`execute` raises.
        """
        return self.execute("procedure.import", {"procedures": items})

    def llm_cache(self) -> ResponseCache:
        """The response cache of this clone, ``.git/proctor/llm-cache``. Raises nothing
        itself; ``validate`` and ``purge`` raise OSError when the directory cannot be
        written."""
        from proctor.llm.cache import ResponseCache, default_cache_dir

        return ResponseCache(default_cache_dir(self.store.common_dir))


class GenerationResult:
    """What :meth:`Workspace.generate` did: the generation and the action's result."""

    def __init__(self, outcome: GenerationOutcome, result: ActionResult) -> None:
        self.outcome = outcome
        self.result = result

    def to_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "confidence": self.outcome.confidence,
            "band": self.outcome.band.name,
            "source": self.outcome.source,
            "required_approvals": self.outcome.band.required_approvals,
            "repairs": len(self.outcome.rounds) - 1,
        }
