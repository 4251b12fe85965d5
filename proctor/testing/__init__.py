"""The testing kit: what a plugin's own tests need to drive proctor for real.

A temporary store (:func:`make_repo`: a git repository with a committed proctor.toml),
a plugin manager holding the built-ins and the plugins under test
(:func:`plugin_manager`), the pipeline run on it (:meth:`ProctorRepo.run_action`), and
assertions on the commit an action wrote (:meth:`ProctorRepo.assert_commit`: the audit
trailers, the files, the subject). The fake LLM backend is
:class:`~proctor.llm.fake.FakeBackend`. The pytest plugin
(:mod:`proctor.testing.pytest_plugin`, registered under ``pytest11``) makes fixtures of
these. Nothing is mocked: real git, the real pipeline and checks.

Layer 8, beside the workspace: it builds the engine itself rather than importing
:class:`proctor.Workspace`, so a test sees the pipeline a plugin plugs into.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.llm.fake import FakeBackend

if TYPE_CHECKING:
    from proctor.core.config import ProctorConfig
    from proctor.core.plugins import PluginManager
    from proctor.engine.actions import ActionResult
    from proctor.engine.pipeline import ActionEngine, ProposalHandler
    from proctor.llm.generate import GenerationOutcome, GenerationSettings
    from proctor.store.gitstore import GitStore

__all__ = [
    "CommitInfo",
    "FakeBackend",
    "ProctorRepo",
    "make_repo",
    "plugin_manager",
]

DEFAULT_TOML = 'entry-point = "run"\n'
ACTOR = "tester@example.com"


def plugin_manager(
    plugins: Iterable[object] | Mapping[str, object] = (), *, entry_points: bool = False
) -> PluginManager:
    """The built-in plugins plus ``plugins`` (objects or modules with ``@hookimpl``
    functions; a mapping names them), and the installed entry points if asked.
    A fresh manager each call: what one test registers does not leak into the next."""
    from proctor.core.plugins import PluginInfo, PluginManager, disabled_plugins
    from proctor.plugins import BUILTIN_PLUGINS

    manager = PluginManager()
    disabled = disabled_plugins()
    manager.load_builtins(disabled, table=BUILTIN_PLUGINS)
    if entry_points:
        manager.load_entry_points(disabled)
    named = (
        plugins.items()
        if isinstance(plugins, Mapping)
        else (
            (getattr(p, "__name__", None) or f"test-plugin-{i}", p) for i, p in enumerate(plugins)
        )
    )
    for name, plugin in named:
        manager.register(name, plugin, PluginInfo(name=name, module=type(plugin).__module__))
    manager.check_pending()
    return manager


@dataclass
class CommitInfo:
    """One commit as a test reads it."""

    sha: str
    subject: str
    body: str
    trailers: dict[str, str]
    files: list[str] = field(default_factory=list)


def _git(path: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


class ProctorRepo:
    """A temporary store and the pipeline on it. Close it (the fixture does)."""

    def __init__(self, path: Path, store: GitStore, plugins: PluginManager, actor: str) -> None:
        self.path = path
        self.store = store
        self.plugins = plugins
        self.actor = actor
        self.ref = store.head_ref() or "refs/heads/main"
        self.proposals: ProposalHandler | None = None

    # -- reading ---------------------------------------------------------------------------

    @property
    def config(self) -> ProctorConfig:
        """The committed proctor.toml, read again on every call (a test may commit one)."""
        from proctor.core.config import ProctorConfig, parse_config_text

        tip = self.store.read_ref(self.ref)
        data = self.store.read_blob(self.store.commit_tree(tip), "proctor.toml") if tip else None
        parsed = parse_config_text(data.decode(), "proctor.toml") if data else None
        return parsed or ProctorConfig()

    def read(self, path: str, commit: str | None = None) -> str | None:
        """A file's text at ``commit`` (the tip by default), None when absent."""
        tip = commit or self.store.read_ref(self.ref)
        if tip is None:
            return None
        data = self.store.read_blob(self.store.commit_tree(tip), path)
        return None if data is None else data.decode("utf-8")

    def commit(self, sha: str | None = None) -> CommitInfo:
        """The commit ``sha`` (the tip by default): message, trailers, files changed."""
        sha = sha or self.store.read_ref(self.ref)
        if sha is None:
            raise AssertionError("the store has no commit yet")
        message = _git(self.path, "log", "-1", "--format=%B", sha)
        trailers: dict[str, str] = {}
        for line in _git(
            self.path, "log", "-1", "--format=%(trailers:only,unfold)", sha
        ).splitlines():
            key, sep, value = line.partition(": ")
            if sep:
                trailers[key] = value
        files = _git(self.path, "diff-tree", "--root", "--no-commit-id", "--name-only", "-r", sha)
        subject, _, body = message.partition("\n")
        return CommitInfo(sha, subject, body.strip(), trailers, sorted(files.split()))

    # -- acting ----------------------------------------------------------------------------

    def engine(self) -> ActionEngine:
        from proctor.engine.pipeline import ActionEngine
        from proctor.store.gitstore import format_ident

        return ActionEngine(
            self.store,
            self.ref,
            self.plugins,
            self.config,
            format_ident(self.actor, self.actor),
            proposals=self.proposals,
        )

    def run_action(
        self, api_name: str, params: Mapping[str, Any] | None = None, *, actor: str | None = None
    ) -> ActionResult:
        """Run one action through the whole pipeline (criteria, policy, checks, commit,
        side effects, events), as ``proctor``'s faces do."""
        from proctor.engine.actions import ActionContext

        context = ActionContext(actor=actor or self.actor, config=self.config)
        return self.engine().run(api_name, dict(params or {}), context)

    def assert_commit(
        self,
        result: ActionResult,
        *,
        action: str | None = None,
        actor: str | None = None,
        decision: str = "ALLOW_IMMEDIATE",
        files: Iterable[str] | None = None,
        subject: str | None = None,
    ) -> CommitInfo:
        """Assert that ``result`` was applied as the tip commit with the audit trailers
        (action, actor, correlation id, policy decision) and, if given, exactly these
        changed files and this subject. Returns the commit for further checks."""
        assert result.status == "applied", f"{result.action} was {result.status}: {result.errors}"
        assert result.commit, f"{result.action} applied without a commit"
        tip = self.store.read_ref(self.ref)
        assert result.commit == tip, f"commit {result.commit} is not the tip {tip}"
        info = self.commit(result.commit)
        expected = {
            "Proctor-Action": action or result.action,
            "Proctor-Actor": actor or self.actor,
            "Proctor-Correlation-Id": result.correlation_id,
            "Proctor-Policy": decision,
        }
        actual = {k: info.trailers.get(k) for k in expected}
        assert actual == expected, f"trailers {actual} are not {expected}"
        if files is not None:
            assert info.files == sorted(files), f"files {info.files} are not {sorted(files)}"
        if subject is not None:
            assert info.subject == subject, f"subject {info.subject!r} is not {subject!r}"
        return info

    def generate(
        self, name: str, backend: Any, *, model: str = "fake-model", max_repairs: int = 2
    ) -> tuple[GenerationOutcome, ActionResult]:
        """Generate code for the metadata-only ``name`` with ``backend`` (a
        :class:`FakeBackend`, say) and commit it through ``procedure.generate``.
        Examples are not run (no run service here): a generation with examples cannot
        reach the applied band through this helper."""
        from proctor.llm.generate import GenerationSettings, Generator
        from proctor.llm.transport import Transport
        from proctor.procedures.repository import metadata_path, parse_spec
        from proctor.runs.bridge import run_async

        settings: GenerationSettings = GenerationSettings(
            backend=getattr(backend, "name", "fake"), model=model, max_repairs=max_repairs
        )
        meta = self.read(metadata_path(name))
        if meta is None:
            raise AssertionError(f"no procedures/{name}/metadata.json to generate from")
        generator = Generator(
            Transport(backend),
            settings,
            config=self.config,
            plugins=self.plugins,
            runs=None,
            actor=self.actor,
        )
        outcome = run_async(generator.agenerate(parse_spec(meta)))
        return outcome, self.run_action("procedure.generate", outcome.params())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> ProctorRepo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_repo(
    path: str | os.PathLike[str],
    *,
    plugins: Iterable[object] | Mapping[str, object] = (),
    config: str = DEFAULT_TOML,
    actor: str = ACTOR,
    entry_points: bool = False,
) -> ProctorRepo:
    """A new git repository at ``path`` (branch ``main``) with ``config`` committed as
    proctor.toml, and the pipeline over it with the built-ins and ``plugins``."""
    from proctor.store.gitstore import Change, GitStore, format_ident

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(target)], check=True)
    store = GitStore(target)
    ident = format_ident(actor, actor)
    store.write(
        "refs/heads/main",
        lambda _tip: Change(edits={"proctor.toml": config.encode()}, message="Initialise store"),
        author=ident,
        committer=ident,
        trailers={"Proctor-Action": "init", "Proctor-Actor": actor},
        reason="proctor: init",
    )
    return ProctorRepo(target, store, plugin_manager(plugins, entry_points=entry_points), actor)
