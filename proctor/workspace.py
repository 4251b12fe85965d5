"""The facade every face uses: open a repository as a store and act on it.

``Workspace`` wires the git store, the configuration, the plugins and the action engine,
so the CLI, the hooks and Python callers share one behaviour::

    with Workspace.open("path/to/repo", actor="ana@example.com") as ws:
        ws.execute("procedure.create", {"name": "greet", "code": CODE})
        for v in ws.history("greet"):
            print(v.commit, v.message)
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.core.config import ProctorConfig, load_config, parse_config_text
from proctor.core.errors import NotARepositoryError, UsageError
from proctor.core.plugins import PluginManager, get_plugin_manager
from proctor.procedures.repository import (
    ProcedureRepository,
    ProcedureSummary,
    ProcedureView,
    VersionInfo,
)
from proctor.store.gitstore import Change, GitStore, format_ident

if TYPE_CHECKING:
    from proctor.engine.actions import ActionEngine, ActionResult, ActionType

DEFAULT_CONFIG = """\
# proctor configuration. See docs/ for every key.
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
    """A repository opened as a proctor store. Close it, or use it as a context manager."""

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
        """The plugin manager, loaded on first need: reads do not load plugins."""
        if self._plugins is None:
            self._plugins = get_plugin_manager()
        return self._plugins

    @cached_property
    def engine(self) -> ActionEngine:
        """The action pipeline; built on first write, as reads need none of it."""
        from proctor.engine.actions import ActionEngine

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

        Returns the workspace and whether anything was created.
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
        self.store.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads -----------------------------------------------------------------------------

    def list_procedures(self) -> list[ProcedureSummary]:
        return self.procedures.summaries()

    def get_procedure(self, name: str, version: str | None = None) -> ProcedureView:
        return self.procedures.get(name, version)

    def history(self, name: str) -> list[VersionInfo]:
        return self.procedures.history(name)

    def diff(self, name: str, from_version: str, to_version: str | None = None) -> str:
        return self.procedures.diff(name, from_version, to_version)

    def actions(self) -> dict[str, type[ActionType]]:
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
        """Run an action through the pipeline; the result says applied/denied/failed.

        Bad params raise ValidationFailed, a lost race ConcurrencyError: they leave the
        store untouched. ``inputs`` maps local files the params were read from to the
        bytes read, so a procedure file edited in place can be handed over as it is.
        """
        from proctor.engine.actions import ActionContext

        context = ActionContext(
            actor=actor or self.actor,
            metadata=dict(metadata or {}),
            config=self.config,
            inputs=dict(inputs or {}),
        )
        return self.engine.run(api_name, params or {}, context)
