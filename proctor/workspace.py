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
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.core.config import ProctorConfig, load_config, parse_config_text
from proctor.core.errors import ConfigError, NotARepositoryError, StoreError, UsageError
from proctor.core.plugins import PluginManager
from proctor.procedures.repository import (
    ProcedureRepository,
    ProcedureSummary,
    ProcedureView,
    ReleaseTags,
    VersionInfo,
)
from proctor.store.errors import WORK_TREE_BACK, MissingWorkTreeError
from proctor.store.gitstore import Change, GitStore, Recovery

if TYPE_CHECKING:
    from proctor.engine.actions import ActionResult, ActionType
    from proctor.engine.explain import PolicyExplanation
    from proctor.engine.pipeline import ActionEngine
    from proctor.llm.backends import Backend
    from proctor.llm.batch import BatchReport, BatchState, ItemResult
    from proctor.llm.cache import ResponseCache
    from proctor.llm.generate import GenerationOutcome, GenerationSettings, Generator
    from proctor.plugins.side_effects.outbox import Delivery
    from proctor.proposals.model import Proposal
    from proctor.proposals.views import ProposalListing, ProposalOutcome, ProposalView
    from proctor.runs.model import RunRecord, TestReport
    from proctor.runs.service import RunService
    from proctor.sync.model import SyncResult, SyncStatus

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
#   [policy]    "<action or glob>" = "ALLOW_IMMEDIATE" | "REQUIRE_PROPOSAL" | "DENY";
#               [policy.roles], [policy.owners], [[policy.rules]]: roles, owners, rules.
#               REQUIRE_PROPOSAL records proposals/<id>.json; `proctor proposal approve ID`
#               by someone else applies it. `proctor policy explain ACTION` says why.
#   [runs]      min-level, timeout, run-log, [runs.limits], [runs.rollback]: how runs run
#
# `proctor action list` names the actions; `proctor --help` the commands.
entry-point = "run"

[check]
exclude = []

[policy]
# "procedure.delete" = "REQUIRE_PROPOSAL"   # a delete waits for one approval by another actor
# "config.update" = "REQUIRE_PROPOSAL"      # so does a change of this file's policy
"""


def committed_config(store: GitStore, ref: str, tip: str, root: str = ".") -> ProctorConfig:
    """The config committed at ``tip`` of ``ref``: proctor.toml, else ``[tool.proctor]`` in
    pyproject.toml, else the defaults. Errors name the ref and the file
    (``refs/heads/main:proctor.toml: ...``), as ``git show`` would spell it."""
    tree = store.commit_tree(tip)
    for filename in ("proctor.toml", "pyproject.toml"):
        data = store.read_blob(tree, filename)
        if data is None:
            continue
        where = f"{ref}:{filename}"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not UTF-8 text") from None
        cfg = parse_config_text(text, where, root=root)
        if cfg is not None:
            return cfg
    return ProctorConfig(root=root)


def _default_actor(store: GitStore) -> str:
    """Who acts when no one is named: git's email as configured (no process spawned;
    the identity itself is resolved, and refused if missing, only when a write needs it)."""
    for value in (
        os.environ.get("GIT_AUTHOR_EMAIL"),
        store.config.get("author.email"),
        store.config.get("user.email"),
    ):
        if value and value.strip():
            return value.strip()
    return "anonymous"


def check_actor(actor: str, source: str) -> str:
    """The actor is a trailer value: one printable line, bounded. Refused (exit 2) else,
    whatever the command, so no value of it can add a header line or a trailer."""
    from proctor.store.identity import MAX_TRAILER_VALUE, TrailerError

    if (
        not actor
        or actor != actor.strip()
        or not actor.isprintable()
        or len(actor) > MAX_TRAILER_VALUE
    ):
        raise TrailerError(
            f"invalid actor {actor[:80]!r} (from {source}): it must be one printable line of "
            f"1 to {MAX_TRAILER_VALUE} characters, without surrounding spaces"
        )
    return actor


def _check_git_dir_env(store: GitStore) -> None:
    """``GIT_DIR`` naming another repository than the one found around the cwd: refuse.

    proctor never follows ``GIT_DIR`` (its git processes do not inherit it): the
    repository is ``--repo`` (which always wins) or the one around the current directory.
    When the two disagree, writing to either could be the wrong one, so nothing is done.
    """
    value = os.environ.get("GIT_DIR")
    if not value:
        return
    named = os.path.realpath(os.path.join(os.getcwd(), value))
    if named != os.path.realpath(store.git_dir):
        raise UsageError(
            f"GIT_DIR={value} names another repository than the one around the current "
            f"directory ({store.git_dir}); proctor does not follow GIT_DIR: pass --repo PATH "
            "for the repository you mean, or unset GIT_DIR"
        )


@dataclass
class StoreStatus:
    """What ``proctor status`` reports: where the store is and whether it is whole.

    A dataclass so more can be added (a remote's distance, say) without changing what
    is there; ``to_json`` is the ``--json`` shape, every key always present.
    """

    ref: str
    tip: str | None
    work_tree: str | None  # where the store branch is checked out, if it is
    in_sync: bool | None  # None: not checked out, so there is no work tree to be in sync
    out_of_sync: list[str] = field(default_factory=list)  # store paths git shows changed
    operation: str | None = None  # a merge/rebase/... in progress on the store branch
    journal: str | None = None  # an interrupted sync still recorded (or why unreadable)
    recovered: list[str] = field(default_factory=list)  # paths opening finished
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


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
        author: str | None = None,
        plugins: PluginManager | None = None,
    ) -> None:
        self.store = store
        self.ref = ref
        self.config = config
        self.actor = actor
        # None: git's identity, resolved (and validated) by the store at each write.
        self.author = author
        self._plugins = plugins
        self.procedures = ProcedureRepository(store, ref, config.entry_point)
        #: What opening found and the caller has not been told yet (a recovery's).
        self.warnings: list[str] = []
        self.recovery: Recovery | None = None

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

        ``engine.proposals`` is the proposal handler: installed when the proposal actions
        are registered (the ``proposals`` built-in); without them an action that policy
        sends to review fails saying proposals are not enabled.
        Raises what :attr:`plugins` raises.
        """
        from proctor.engine.pipeline import ActionEngine

        engine = ActionEngine(self.store, self.ref, self.plugins, self.config, self.author)
        handler = self._proposal_handler()
        if handler is not None:
            engine.proposals = handler(engine)
        return engine

    def _proposal_handler(self) -> Any:
        """The proposal handler's class when the proposal actions are registered (the
        ``proposals`` built-in), else None: for this engine and for sync's own."""
        if "proposal.approve" not in self.plugins.actions():
            return None
        from proctor.proposals.service import ProposalService

        return ProposalService

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        actor: str | None = None,
        plugins: PluginManager | None = None,
    ) -> Workspace:
        """Open the git repository at (or around) ``path`` as a store.

        ``path`` None means the repository around the current directory; then a
        ``GIT_DIR`` naming another one is refused (a path given always wins, and
        ``GIT_DIR`` is never followed). The store branch is ``store-ref`` from the
        work tree's config, else the checked-out branch (the configuration is the committed
        copy on that branch, see :meth:`_read_config`); the actor is ``actor``, else
        ``$PROCTOR_ACTOR``, else git's user.email. Commits carry git's identity, never
        the actor's. A work-tree sync an interrupted write left is finished here (reads
        included); what it could not do is in :attr:`warnings`.

        Raises NotARepositoryError (no git repository there), UsageError (HEAD detached
        and no ``store-ref``, ``GIT_DIR`` disagreeing), TrailerError (an actor that is
        not one printable line), ConfigError (an invalid proctor.toml or
        ``[tool.proctor]``, the committed one named as ``<ref>:proctor.toml``), StoreError (git failed).
        """
        store = GitStore(os.getcwd() if path is None else path)
        try:
            if path is None:
                _check_git_dir_env(store)
            ref, config = cls._read_config(store)
            if actor is not None:
                who = check_actor(actor, "--actor")
            elif os.environ.get("PROCTOR_ACTOR"):
                who = check_actor(os.environ["PROCTOR_ACTOR"], "PROCTOR_ACTOR")
            else:
                who = _default_actor(store)
            ws = cls(store, ref, config, who, None, plugins)
            ws.recovery = store.recover(ref)
            ws.warnings.extend(ws.recovery.warnings)
            return ws
        except BaseException:
            store.close()
            raise

    @staticmethod
    def _read_config(store: GitStore) -> tuple[str, ProctorConfig]:
        """The store ref, and the configuration actions run under.

        Which ref is the store is the one thing read from where the user stands: the
        work tree's config file as it is on disk (in a bare repository, the committed one
        of the branch HEAD names), else the checked-out branch. Everything else (policy,
        entry point, the checks' tables, ``[runs]``) is the committed copy on that ref,
        whatever is checked out and whatever is uncommitted: a local edit or another
        branch must not loosen the store's policy. An unborn store ref has nothing
        committed yet, and the bootstrap config stands in until its first commit.
        """
        bootstrap = Workspace._bootstrap_config(store)
        ref = bootstrap.store_ref or store.head_ref()
        if ref is None:
            raise UsageError(
                f"{store.cwd}: HEAD is detached; check out a branch or set "
                "store-ref in proctor.toml"
            )
        tip = store.read_ref(ref)
        if tip is None:
            return ref, bootstrap
        config = committed_config(store, ref, tip, root=store.work_tree or ".")
        config.store_ref = ref
        return ref, config

    @staticmethod
    def _bootstrap_config(store: GitStore) -> ProctorConfig:
        """Where ``store-ref`` is read from: the work tree's file, else (bare) HEAD's."""
        if store.work_tree:
            return load_config(store.work_tree)
        head = store.head_ref()
        tip = store.read_ref(head) if head else None
        if head is None or tip is None:
            return ProctorConfig()
        return committed_config(store, head, tip)

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] = ".", *, actor: str | None = None
    ) -> tuple[Workspace, bool]:
        """Create the repository if needed and commit a default proctor.toml.

        Returns the workspace and whether anything was created. Raises what
        :meth:`open` raises, DirtyWorkTreeError (an uncommitted proctor.toml of the
        user's is in the way), ConcurrencyError (the branch kept moving) and StoreError.
        """
        from proctor.store.git import run_git

        target = Path(path)
        missing = [p for p in (target, *target.parents) if not p.exists()]
        target.mkdir(parents=True, exist_ok=True)
        created = made_repo = False
        try:
            GitStore(target).close()
        except NotARepositoryError:
            # As every git proctor runs: GIT_DIR and the like are not inherited, so the
            # repository made is the one at ``target``.
            proc = run_git(["init", "-q", str(target.resolve())], str(target))
            if proc.returncode != 0:
                _undo_init(target, False, missing)
                said = proc.stderr.decode(errors="replace").strip()
                raise StoreError(
                    f"git init {target} failed: {said} (nothing was written)"
                ) from None
            created = made_repo = True
        try:
            ws = cls.open(target, actor=actor)
        except BaseException:
            _undo_init(target, made_repo, missing)
            raise
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
            _undo_init(target, made_repo, missing)
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

    def release_tags(self, name: str) -> ReleaseTags:
        """The procedure's trusted releases and its foreign tags (each with the reason
        it is not trusted); see :meth:`ProcedureRepository.release_tags` for the rule.

        Raises UsageError (a bad name), StoreError.
        """
        return self.procedures.release_tags(name)

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

    def status(self) -> StoreStatus:
        """The store ref, its tip, and whether the checked-out work tree holds it.

        Read-only (a sync an interrupted write left was already finished by
        :meth:`open`, and says so in ``recovered``). "In sync" means no sync is still
        owed (no journal), no operation is in progress, and ``git status`` shows no
        change under ``procedures/`` or the config files. Raises StoreError (git failed).
        """
        from proctor.store import journal
        from proctor.store.errors import JournalError
        from proctor.store.git import run_git

        report = StoreStatus(
            ref=self.ref,
            tip=self.store.read_ref(self.ref),
            work_tree=None,
            in_sync=None,
            recovered=list(self.recovery.fixed) if self.recovery else [],
            warnings=list(self.warnings),
        )
        if journal.pending(self.store.common_dir):
            try:
                record = journal.load(self.store.common_dir, self.ref)
            except JournalError as exc:
                report.journal = exc.message
            else:
                if record is not None:
                    report.journal = (
                        f"a write (pid {record.pid}) still owes the work tree "
                        f"{record.work_tree}: " + ", ".join(record.paths)
                    )
        try:
            checkout = self.store.checkout_of(self.ref)
        except MissingWorkTreeError as exc:  # writes wait for it; a read says why
            checkout = None
            report.work_tree, report.in_sync = exc.work_tree, False
            report.warnings.append(
                f"{self.ref} is checked out in the work tree {exc.work_tree}, which is not "
                f"there, and writes to it wait: {WORK_TREE_BACK}"
            )
        if checkout is not None:
            report.work_tree = checkout.work_tree
            busy = checkout.operation()
            report.operation = busy[0] if busy else None
            proc = run_git(
                [
                    "status",
                    "--porcelain=v1",
                    "-z",
                    "--untracked-files=all",
                    "--",
                    "procedures",
                    "proctor.toml",
                    "pyproject.toml",
                ],
                checkout.work_tree,
            )
            if proc.returncode != 0:
                err = proc.stderr.decode("utf-8", "replace").strip()
                report.warnings.append(f"git status failed: {err}")
            else:
                entries = [e for e in proc.stdout.decode("utf-8", "replace").split("\0") if e]
                report.out_of_sync = [e[3:] for e in entries if len(e) > 3]
            report.in_sync = (
                not report.out_of_sync
                and report.journal is None
                and report.operation is None
                and proc.returncode == 0
            )
        return report

    # -- writes ----------------------------------------------------------------------------

    def execute(
        self,
        api_name: str,
        params: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, bytes] | None = None,
        propose: bool = False,
    ) -> ActionResult:
        """Run an action through the pipeline (plan, decide, apply, publish, emit).

        Outcomes that are **results** (an :class:`~proctor.engine.actions.ActionResult`,
        nothing raised), each announced as an ``action.<status>`` event:

        - ``applied``: the commit (and/or release tags) is published. A side effect or
          event handler that failed afterwards is in ``result.side_effects`` /
          ``result.warnings``; it never undoes the commit.
        - ``proposed``: policy wants review (or ``propose`` asked for it) and
          ``proposals/<id>.json`` was committed (``result.proposal``): nothing else changed
          until the approvals it needs are given (:meth:`approve`).
        - ``denied``: policy refused (``result.errors`` says why; a policy plugin that
          failed also denies). Nothing is written.
        - ``failed``: policy wants a proposal and proposals are not enabled (the
          ``proposals`` built-in is disabled). Nothing is
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
        result = self.engine.run(api_name, params or {}, context, propose=propose)
        if self.warnings:  # what opening found rides on the first result, once
            result.warnings[:0] = self.warnings
            self.warnings = []
        return result

    # -- proposals -------------------------------------------------------------------------

    def propose(
        self,
        api_name: str,
        params: dict[str, Any] | None = None,
        *,
        actor: str | None = None,
        inputs: dict[str, bytes] | None = None,
    ) -> ActionResult:
        """Run an action as a proposal even where policy would apply it at once (one
        approval by anyone else then applies it); a DENY still denies. Raises what
        :meth:`execute` raises."""
        return self.execute(api_name, params, actor=actor, inputs=inputs, propose=True)

    def list_proposals(self, status: str | None = None) -> ProposalListing:
        """The proposals on the store branch's tip, oldest first (``status`` filters);
        files under ``proposals/`` that are not valid proposals are listed apart.

        Raises UsageError (an unknown status) and StoreError.
        """
        from proctor.proposals.model import STATUSES, load_all
        from proctor.proposals.views import ProposalListing
        from proctor.store.gitstore import Snapshot

        if status is not None and status not in STATUSES:
            raise UsageError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        proposals, broken = load_all(Snapshot(self.store, self.store.read_ref(self.ref)))
        if status is not None:
            proposals = [p for p in proposals if p.status == status]
        return ProposalListing(proposals, broken)

    def get_proposal(self, proposal_id: str) -> Proposal:
        """One proposal on the tip. Raises UsageError (not an id), NotFoundError (no such
        proposal), ValidationFailed (its file is not a valid proposal), StoreError."""
        from proctor.proposals.model import check_id, load
        from proctor.store.gitstore import Snapshot

        check_id(proposal_id)
        return load(Snapshot(self.store, self.store.read_ref(self.ref)), proposal_id)

    def show_proposal(self, proposal_id: str) -> ProposalView:
        """A proposal with the diff of its change and the validators' findings on it,
        rebuilt on its base; writes nothing. Raises what :meth:`get_proposal` raises."""
        from proctor.proposals.views import describe

        proposal = self.get_proposal(proposal_id)
        return describe(self.engine, proposal, self.store.read_ref(self.ref))

    def _transition(
        self,
        api_name: str,
        proposal_id: str,
        version: int | None,
        actor: str | None,
        **params: Any,
    ) -> ProposalOutcome:
        from proctor.proposals.views import ProposalOutcome

        if version is None:
            # What the caller acts on is what is there now: a move by someone else between
            # this read and the write is then a ConcurrencyError, never acted on unseen.
            version = self.get_proposal(proposal_id).version
        result = self.execute(
            api_name, {"id": proposal_id, "version": version, **params}, actor=actor
        )
        return ProposalOutcome(self.get_proposal(proposal_id), result)

    def approve(
        self,
        proposal_id: str,
        comment: str = "",
        *,
        version: int | None = None,
        actor: str | None = None,
    ) -> ProposalOutcome:
        """Approve a pending proposal (``version``: the one read; default: the current).
        The last approval it needs applies the change on the current tip in the same
        commit (``outcome.status`` is then ``applied``, or ``failed`` with
        ``proposal.result["error"]`` when the tip no longer takes it).

        Raises UsageError (not pending, your own, approved twice, not an approver),
        NotFoundError, ValidationFailed (a broken file), ConcurrencyError (the proposal
        is no longer at ``version``; exit code 3), DirtyWorkTreeError, StoreError.
        """
        return self._transition("proposal.approve", proposal_id, version, actor, comment=comment)

    def reject(
        self,
        proposal_id: str,
        comment: str,
        *,
        version: int | None = None,
        actor: str | None = None,
    ) -> ProposalOutcome:
        """Reject a pending proposal with a reason (an approver only). Raises what
        :meth:`approve` raises, ValidationFailed for an empty reason."""
        return self._transition("proposal.reject", proposal_id, version, actor, comment=comment)

    def withdraw(
        self, proposal_id: str, *, version: int | None = None, actor: str | None = None
    ) -> ProposalOutcome:
        """Withdraw your own pending proposal. Raises what :meth:`approve` raises."""
        return self._transition("proposal.withdraw", proposal_id, version, actor)

    def apply_proposal(
        self, proposal_id: str, *, version: int | None = None, actor: str | None = None
    ) -> ProposalOutcome:
        """Apply a pending proposal whose approvals are complete (after a policy change
        lowered the count, say). Raises what :meth:`approve` raises."""
        return self._transition("proposal.apply", proposal_id, version, actor)

    def edit_proposal(
        self,
        proposal_id: str,
        params: dict[str, Any],
        comment: str = "",
        *,
        version: int | None = None,
        actor: str | None = None,
    ) -> ProposalOutcome:
        """Replace the params of your pending proposal, rebuilt on the current tip: a new
        content hash, so earlier approvals no longer count. Raises what :meth:`approve`
        raises, and what the proposed action raises for the new params."""
        return self._transition(
            "proposal.edit", proposal_id, version, actor, params=params, comment=comment
        )

    # -- policy ----------------------------------------------------------------------------

    def explain_policy(
        self, api_name: str, params: dict[str, Any] | None = None, *, actor: str | None = None
    ) -> PolicyExplanation:
        """What policy would decide for ``api_name`` with ``params`` as ``actor``, on the
        tip, and which rule (or plugin) made it; runs plan and decide only, writes
        nothing. Raises UsageError (unknown action), ValidationFailed (bad params or
        failed criteria), ConfigError (a broken committed config)."""
        from proctor.engine.actions import ActionContext
        from proctor.engine.explain import explain

        context = ActionContext(actor=actor or self.actor, config=self.config)
        return explain(self.engine, api_name, params or {}, context)

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

    # -- side effects and metrics ----------------------------------------------------------

    def side_effects(self, states: tuple[str, ...] | None = None) -> list[Delivery]:
        """The outbox of this clone, oldest first: every delivery of a configured side
        effect (``[side-effects.*]``) and its state (prepared, pending, delivered,
        failed). Reads only; delivers nothing. Raises nothing for an empty outbox."""
        from proctor.plugins.side_effects import listing

        return listing(self.store.common_dir, states)

    def retry_side_effects(self, ids: list[int] | None = None) -> list[tuple[Delivery, str]]:
        """Deliver every pending or failed side effect now (or only the rows ``ids``),
        with the full retry policy and the effects as configured now; first settles rows
        a killed process left. Returns each row with its new state (``delivered``,
        ``pending: ...``, ``failed: ...``). Raises ConfigError (a bad table)."""
        from proctor.plugins.side_effects import retry

        self.plugins  # noqa: B018 - the observers of the deliveries (metrics) are loaded
        return retry(self.store.common_dir, self.config, ids)

    def metrics_text(self) -> str:
        """The Prometheus exposition of this clone's counters (every process's).

        Raises UsageError when prometheus_client (the ``metrics`` extra) is missing."""
        from proctor.plugins.metrics import exposition

        return exposition(self.store.common_dir)

    # -- sync ------------------------------------------------------------------------------

    def sync(self, remote: str | None = None, *, attempts: int | None = None) -> SyncResult:
        """Exchange the store branch and its releases with a git remote (``remote``,
        else ``[sync] remote``, else ``origin``): fetch, replay the local proctor commits
        on the remote's tip when it moved, settle the releases, push (docs/sync.md).

        Conflicts are in the result (``result.conflicts``, ``exit_code`` 3) and leave the
        branch and the remote as they were. Raises UsageError (an unknown remote: nothing
        fetched or changed), ConfigError (a bad ``[sync]`` table), StoreError (git cannot
        reach the remote, or the server refused for another reason than a race).
        """
        from proctor.sync import sync_settings
        from proctor.sync.service import sync

        default_remote, default_attempts = sync_settings(self.config)
        return sync(
            self.store,
            self.ref,
            remote or default_remote,
            self.plugins,
            attempts=attempts or default_attempts,
            actor=self.actor,
            proposals=self._proposal_handler(),
        )

    def sync_status(self, remote: str | None = None) -> SyncStatus:
        """How far the store branch is from ``remote``'s tip as last fetched (no network):
        ahead and behind counts and the releases not pushed yet. Raises UsageError for an
        unknown remote, ConfigError for a bad ``[sync]`` table."""
        from proctor.sync import sync_settings
        from proctor.sync.service import sync_status

        default_remote, _attempts = sync_settings(self.config)
        return sync_status(self.store, self.ref, remote or default_remote)

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
                LlmEvent(
                    actor=self.actor,
                    correlation_id=correlation_id,
                    store=self.store.common_dir,
                    **fields,
                )
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
            cache=ResponseCache(default_cache_dir(self.store.common_dir), self.store.shared),
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

        return ResponseCache(default_cache_dir(self.store.common_dir), self.store.shared)


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


def _undo_init(target: Path, made_repo: bool, made_dirs: list[Path]) -> None:
    """An init that failed (no git identity, say) leaves nothing behind: the repository
    it created and the folders it made go again; nothing that was there before is
    touched."""
    import shutil

    if made_repo:
        shutil.rmtree(target / ".git", ignore_errors=True)
    for folder in made_dirs:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            break
