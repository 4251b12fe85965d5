"""The plugin system, proven with real installed plugin packages.

The packages under ``tests/fixtures/proctor-plugin-*`` are built and installed once per
session with pip into private target directories; each test composes ``PYTHONPATH`` from
the ones it needs and runs ``proctor`` (or a small Python script) in a subprocess, so
plugins are discovered exactly as in production: from real ``dist-info`` entry points.

* ``good``: implements every hook (action ``demo.note``, validator ``demo``/``DM001``,
  side effect ``demo-record``, LLM backend ``demo``, command ``demo-hello``, a policy).
* ``broken``: raises at import.
* ``misspelt``: a hookimpl named ``proctor_register_validator`` (no such hook).
* ``raising``: its validator hook raises and its action hook (``tryfirst``) claims the
  built-in ``procedure.create``.

The second half drives :class:`proctor.core.plugins.PluginManager` in-process with plain
objects carrying real pluggy hookimpls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from proctor.core import hookspecs
from proctor.core.errors import PluginError
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import (
    HookOutcome,
    PluginInfo,
    PluginManager,
    get_plugin_manager,
    reset_plugin_manager,
)
from proctor.plugins import BUILTIN_PLUGINS

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGES = ("good", "broken", "misspelt", "raising")
ALL_HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("proctor_"))

BROKEN_MESSAGE = "proctor-plugin-broken cannot be imported on purpose"
RAISING_MESSAGE = "proctor-plugin-raising fails in its validator hook on purpose"
ACTOR = "ana@example.com"
DENIED_ACTOR = "mallory@example.com"

# Variables that change plugin loading, identity or which repository git uses (a git hook
# running the suite sets GIT_DIR); every subprocess starts without them.
_SCRUBBED = (
    "PROCTOR_STRICT_PLUGINS",
    "PROCTOR_DISABLE_PLUGINS",
    "PROCTOR_NO_ENTRY_POINTS",
    "PROCTOR_ACTOR",
    "PROCTOR_DEMO_RECORD",
    "PROCTOR_DEMO_EVENTS",
    "PROCTOR_DEMO_EVENTS_FAIL",
    "PYTHONPATH",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
)


# -- installing the fixture packages -----------------------------------------------------------


@pytest.fixture(scope="session")
def plugin_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build and install every fixture package with pip, then give each its own directory.

    One pip run (``--no-build-isolation`` builds with the hatchling already installed,
    ``--no-index`` keeps pip off the network) costs a fraction of four. Each package's
    module and ``dist-info`` are then moved into a directory of their own, so a test puts
    exactly the plugins it wants on ``PYTHONPATH``.
    """
    base = tmp_path_factory.mktemp("plugins")
    staging = base / "_all"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--target",
        str(staging),
        *(str(FIXTURES / f"proctor-plugin-{name}") for name in PACKAGES),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"pip install failed:\n{proc.stdout}\n{proc.stderr}"
    dirs: dict[str, Path] = {}
    for name in PACKAGES:
        module = f"proctor_plugin_{name}"
        dist_infos = list(staging.glob(f"{module}-*.dist-info"))
        assert len(dist_infos) == 1, f"{name}: expected one dist-info, found {dist_infos}"
        dirs[name] = base / name
        dirs[name].mkdir()
        for path in (staging / module, dist_infos[0]):
            path.rename(dirs[name] / path.name)
    return dirs


def _env(dirs: dict[str, Path], plugins: Sequence[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONPATH"] = os.pathsep.join(str(dirs[name]) for name in plugins)
    env.update(
        GIT_AUTHOR_NAME="Ana",
        GIT_AUTHOR_EMAIL=ACTOR,
        GIT_COMMITTER_NAME="Ana",
        GIT_COMMITTER_EMAIL=ACTOR,
        GIT_CONFIG_NOSYSTEM="1",
    )
    env.update(extra)
    return env


def _proctor_cmd() -> list[str]:
    """The installed console script next to the interpreter, else the module."""
    script = Path(sys.executable).with_name("proctor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "proctor.cli"]


def run_proctor(
    dirs: dict[str, Path], plugins: Sequence[str], *args: str, cwd: Path | None = None, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_proctor_cmd(), *args],
        env=_env(dirs, plugins, **extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_python(
    dirs: dict[str, Path],
    plugins: Sequence[str],
    script: str,
    *args: str,
    cwd: Path | None = None,
    **extra: str,
) -> Any:
    """Run a script in a fresh interpreter; it prints one JSON document as its last line."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env=_env(dirs, plugins, **extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"script failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def plugin_rows(proc: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    assert proc.returncode == 0, proc.stderr
    return {row["name"]: row for row in json.loads(proc.stdout)}


@pytest.fixture(scope="session")
def failing_builtins(plugin_dirs: dict[str, Path]) -> list[str]:
    """Built-ins that fail to load in this tree. Strict-mode tests disable them so they
    are about the third-party plugin under test; test_builtins_load_cleanly covers them."""
    rows = plugin_rows(run_proctor(plugin_dirs, [], "--json", "plugins"))
    return sorted(name for name, row in rows.items() if row["builtin"] and row["error"])


def _git(repo: Path, *args: str) -> str:
    env = _env({}, [])
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A real git repository with one commit on ``main``."""
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q", "-b", "main")
    (path / "README.md").write_text("a store\n")
    _git(path, "add", "README.md")
    _git(path, "commit", "-q", "-m", "Initial commit")
    return path


# -- discovery and reporting -------------------------------------------------------------------


def test_plugins_lists_builtins_and_installed_plugins(plugin_dirs: dict[str, Path]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, PACKAGES, "--json", "plugins"))

    for name, module in BUILTIN_PLUGINS.items():
        assert rows[name]["builtin"] is True
        assert rows[name]["module"] == module
    good = rows["good"]
    assert good == {
        "name": "good",
        "module": "proctor_plugin_good",
        "version": "1.2.3",
        "builtin": False,
        "hooks": ALL_HOOKS,
        "status": "ok",
        "error": None,
    }
    broken = rows["broken"]
    assert broken["status"] == "error"
    assert broken["version"] == "0.0.1"
    assert broken["error"] == f"RuntimeError: {BROKEN_MESSAGE}"


def test_plugins_text_output(plugin_dirs: dict[str, Path]) -> None:
    proc = run_proctor(plugin_dirs, ["good", "broken"], "plugins")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "good (1.2.3) ok: " + ", ".join(ALL_HOOKS) in lines
    assert "broken (0.0.1) error" in lines
    assert f"    error: RuntimeError: {BROKEN_MESSAGE}" in lines
    assert any(line.startswith("procedures (built-in) ok") for line in lines)


def test_broken_plugin_leaves_everything_else_working(
    plugin_dirs: dict[str, Path], tmp_path: Path
) -> None:
    hello = run_proctor(plugin_dirs, PACKAGES, "demo-hello", "--name", "Ana")
    assert hello.returncode == 0, hello.stderr
    assert hello.stdout == "hello from demo, Ana\n"

    help_text = run_proctor(plugin_dirs, PACKAGES, "--help")
    assert help_text.returncode == 0
    assert "demo-hello" in help_text.stdout

    source = tmp_path / "flagged.py"
    source.write_text("x = 1  # DEMO-FORBIDDEN\n")
    check = run_proctor(plugin_dirs, PACKAGES, "check", "--select", "demo", str(source))
    assert check.returncode == 1, check.stderr
    assert "DM001" in check.stdout

    if "action" in help_text.stdout.split("Commands:")[-1]:
        listing = run_proctor(plugin_dirs, PACKAGES, "action", "list")
        assert listing.returncode == 0, listing.stderr
        assert "demo.note" in listing.stdout
        assert "procedure.create" in listing.stdout


def test_builtins_load_cleanly(plugin_dirs: dict[str, Path]) -> None:
    import importlib.util

    # A module another change brings may be missing from this tree: it must then be a
    # recorded error of that plugin alone, never a crash.
    absent = {n for n, m in BUILTIN_PLUGINS.items() if importlib.util.find_spec(m) is None}
    rows = plugin_rows(run_proctor(plugin_dirs, [], "--json", "plugins"))
    assert {n: r["error"] for n, r in rows.items() if r["error"] and n not in absent} == {}
    assert all("ModuleNotFoundError" in rows[n]["error"] for n in absent)
    assert set(rows) == set(BUILTIN_PLUGINS)
    assert all(rows[name]["hooks"] for name in set(BUILTIN_PLUGINS) - absent)


# -- the environment switches ------------------------------------------------------------------


def test_strict_mode_fails_on_a_broken_plugin(
    plugin_dirs: dict[str, Path], failing_builtins: list[str]
) -> None:
    disabled = ",".join(failing_builtins)
    for args in (["demo-hello"], ["plugins"]):
        proc = run_proctor(
            plugin_dirs,
            ["good", "broken"],
            *args,
            PROCTOR_STRICT_PLUGINS="1",
            PROCTOR_DISABLE_PLUGINS=disabled,
        )
        assert proc.returncode == PluginError.exit_code != 0
        assert "'broken'" in proc.stderr
        assert BROKEN_MESSAGE in proc.stderr
        assert "hello from demo" not in proc.stdout


def test_strict_mode_passes_with_sound_plugins(
    plugin_dirs: dict[str, Path], failing_builtins: list[str]
) -> None:
    proc = run_proctor(
        plugin_dirs,
        ["good"],
        "demo-hello",
        PROCTOR_STRICT_PLUGINS="1",
        PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from demo, world\n"


def test_disabling_the_broken_plugin_hides_its_error(
    plugin_dirs: dict[str, Path], failing_builtins: list[str]
) -> None:
    rows = plugin_rows(
        run_proctor(
            plugin_dirs, ["good", "broken"], "--json", "plugins", PROCTOR_DISABLE_PLUGINS="broken"
        )
    )
    assert rows["broken"]["status"] == "disabled"
    assert rows["broken"]["error"] is None
    assert rows["good"]["status"] == "ok"

    strict = run_proctor(
        plugin_dirs,
        ["good", "broken"],
        "demo-hello",
        PROCTOR_STRICT_PLUGINS="1",
        PROCTOR_DISABLE_PLUGINS=",".join(["broken", *failing_builtins]),
    )
    assert strict.returncode == 0, strict.stderr


def test_disabling_a_builtin(plugin_dirs: dict[str, Path], tmp_path: Path) -> None:
    env = {"PROCTOR_DISABLE_PLUGINS": " safety , log-lint "}
    rows = plugin_rows(run_proctor(plugin_dirs, ["good"], "--json", "plugins", **env))
    for name in ("safety", "log-lint"):
        assert rows[name]["builtin"] is True
        assert rows[name]["status"] == "disabled"
        assert rows[name]["hooks"] == []
    assert rows["procedures"]["status"] == "ok"

    names = run_python(
        plugin_dirs,
        ["good"],
        """
        import json
        from proctor.core.plugins import get_plugin_manager
        from proctor.plugins import plugin_manager
        # A lower layer asking core directly (the check runner does) gets the same manager.
        assert get_plugin_manager() is plugin_manager()
        print(json.dumps(sorted(get_plugin_manager().validators())))
    """,
        **env,
    )
    assert names == ["demo"]

    source = tmp_path / "ok.py"
    source.write_text("x = 1\n")
    proc = run_proctor(plugin_dirs, ["good"], "check", "--select", "safety", str(source), **env)
    assert proc.returncode == 2
    assert "unknown check or rule 'safety'" in proc.stderr


def test_no_entry_points_switch(plugin_dirs: dict[str, Path]) -> None:
    rows = plugin_rows(
        run_proctor(
            plugin_dirs, ["good", "broken"], "--json", "plugins", PROCTOR_NO_ENTRY_POINTS="1"
        )
    )
    assert set(rows) == set(BUILTIN_PLUGINS)


def test_misspelt_hook_is_reported(
    plugin_dirs: dict[str, Path], failing_builtins: list[str]
) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "misspelt"], "--json", "plugins"))
    misspelt = rows["misspelt"]
    assert misspelt["status"] == "error"
    assert misspelt["error"].startswith(
        "PluginValidationError: unknown hook 'proctor_register_validator'"
    )
    assert rows["good"]["status"] == "ok"

    # Unregistered, so never called: its body raises if it is.
    names = run_python(
        plugin_dirs,
        ["good", "misspelt"],
        """
        import json
        from proctor.plugins import plugin_manager
        m = plugin_manager()
        print(json.dumps([sorted(m.validators()), m.pm.get_plugin("misspelt") is None]))
    """,
    )
    assert "demo" in names[0]
    assert names[1] is True

    strict = run_proctor(
        plugin_dirs,
        ["good", "misspelt"],
        "demo-hello",
        PROCTOR_STRICT_PLUGINS="1",
        PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins),
    )
    assert strict.returncode == PluginError.exit_code
    assert "proctor_register_validator" in strict.stderr


def test_a_raising_register_hook_is_isolated(
    plugin_dirs: dict[str, Path], failing_builtins: list[str]
) -> None:
    report = run_python(
        plugin_dirs,
        ["good", "raising"],
        """
        import json
        from proctor.plugins import plugin_manager
        m = plugin_manager()
        validators = sorted(m.validators())
        print(json.dumps({"validators": validators, "error": m.infos["raising"].error}))
    """,
    )
    assert "demo" in report["validators"]
    assert report["error"] == f"proctor_register_validators: RuntimeError: {RAISING_MESSAGE}"

    strict = run_python(
        plugin_dirs,
        ["good", "raising"],
        """
        import json
        from proctor.core.errors import PluginError
        from proctor.plugins import plugin_manager
        try:
            plugin_manager().validators()
        except PluginError as exc:
            print(json.dumps(str(exc)))
        else:
            print(json.dumps(None))
    """,
        PROCTOR_STRICT_PLUGINS="1",
        PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins),
    )
    assert strict == f"plugin 'raising' failed in proctor_register_validators: {RAISING_MESSAGE}"


def test_plugins_command_shows_registration_errors(plugin_dirs: dict[str, Path]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "raising"], "--json", "plugins"))
    assert rows["raising"]["status"] == "error"
    assert RAISING_MESSAGE in rows["raising"]["error"]


def test_a_plugin_cannot_take_a_builtin_name(plugin_dirs: dict[str, Path]) -> None:
    """pluggy calls the tryfirst clash first; the built-in keeps the name anyway."""
    report = run_python(
        plugin_dirs,
        ["raising"],
        """
        import json
        from proctor.plugins import plugin_manager
        m = plugin_manager()
        create = m.actions()["procedure.create"]
        print(json.dumps({"owner": create.__module__, "builtin_error":
                          m.infos["procedures"].error, "error": m.infos["raising"].error}))
    """,
    )
    assert report["owner"] == "proctor.procedures.actions"
    assert report["builtin_error"] is None
    assert (
        "proctor_register_actions: ValueError: 'procedure.create' is already registered by "
        "plugin 'procedures'"
    ) in report["error"]


# -- every hook of the complete plugin, end to end ---------------------------------------------

_EXECUTE = """
    import json, sys
    from proctor.workspace import Workspace

    repo, api_name, params, actor = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    with Workspace.open(repo) as ws:
        result = ws.execute(api_name, params, actor=actor or None)
    print(json.dumps(result.to_json()))
"""


def execute(
    dirs: dict[str, Path],
    repo: Path,
    api_name: str,
    params: dict[str, Any],
    actor: str = "",
    plugins: Sequence[str] = ("good",),
    **extra: str,
) -> dict[str, Any]:
    """``Workspace.open(repo).execute(...)`` in a fresh interpreter with the plugins."""
    return run_python(
        dirs, plugins, _EXECUTE, str(repo), api_name, json.dumps(params), actor, **extra
    )


def test_action_hook_commits_through_the_pipeline(plugin_dirs: dict[str, Path], repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    result = execute(plugin_dirs, repo, "demo.note", {"name": "hello", "text": "hi there"})

    assert result["status"] == "applied", result
    assert result["decision"] == "ALLOW_IMMEDIATE"
    head = _git(repo, "rev-parse", "HEAD")
    assert result["commit"] == head != before
    assert _git(repo, "rev-parse", "HEAD~1") == before
    assert _git(repo, "show", "HEAD:notes/hello.txt") == "hi there"
    assert (repo / "notes" / "hello.txt").read_text() == "hi there\n"
    assert _git(repo, "status", "--porcelain") == ""

    message = _git(repo, "log", "-1", "--format=%B")
    assert message.splitlines()[0] == "Write note hello"
    trailers = _git(repo, "log", "-1", "--format=%(trailers:only,unfold)").splitlines()
    assert "Proctor-Action: demo.note" in trailers
    assert f"Proctor-Actor: {ACTOR}" in trailers
    assert f"Proctor-Correlation-Id: {result['correlation_id']}" in trailers
    assert "Proctor-Policy: ALLOW_IMMEDIATE" in trailers


def test_action_hook_from_the_cli(plugin_dirs: dict[str, Path], repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    denied = run_proctor(
        plugin_dirs,
        ["good"],
        "--repo",
        str(repo),
        "--json",
        "--actor",
        DENIED_ACTOR,
        "action",
        "run",
        "demo.note",
        "-p",
        "name=cli",
        "-p",
        "text=from the command line",
    )
    assert denied.returncode == 1, denied.stderr
    assert json.loads(denied.stdout)["status"] == "denied"
    assert _git(repo, "rev-parse", "HEAD") == before

    applied = run_proctor(
        plugin_dirs,
        ["good"],
        "--repo",
        str(repo),
        "--json",
        "action",
        "run",
        "demo.note",
        "-p",
        "name=cli",
        "-p",
        "text=from the command line",
    )
    assert applied.returncode == 0, applied.stderr
    result = json.loads(applied.stdout)
    assert result["status"] == "applied"
    assert result["commit"] == _git(repo, "rev-parse", "HEAD")
    assert _git(repo, "show", "HEAD:notes/cli.txt") == "from the command line"
    assert "Proctor-Action: demo.note" in _git(repo, "log", "-1", "--format=%B")


def test_action_params_and_criteria_are_enforced(plugin_dirs: dict[str, Path], repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    report = run_python(
        plugin_dirs,
        ["good"],
        """
        import json, sys
        from proctor.core.errors import ValidationFailed
        from proctor.workspace import Workspace

        out = []
        with Workspace.open(sys.argv[1]) as ws:
            for params in ({"name": "a", "text": ""}, {"name": "../x", "text": "t"},
                           {"name": "a", "text": "t", "extra": 1}):
                try:
                    ws.execute("demo.note", params)
                except ValidationFailed as exc:
                    out.append(exc.message)
                else:
                    out.append(None)
        print(json.dumps(out))
    """,
        str(repo),
    )
    assert "text is required" in report[0]
    assert "note name" in report[1]
    assert "extra" in report[2]
    assert _git(repo, "rev-parse", "HEAD") == before


def test_side_effect_hook_runs_after_the_commit(
    plugin_dirs: dict[str, Path], repo: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    first = execute(
        plugin_dirs,
        repo,
        "demo.note",
        {"name": "one", "text": "1"},
        PROCTOR_DEMO_RECORD=str(record),
    )
    second = execute(
        plugin_dirs,
        repo,
        "demo.note",
        {"name": "two", "text": "2"},
        actor="bob@example.com",
        PROCTOR_DEMO_RECORD=str(record),
    )

    assert first["side_effects"] == {"demo-record": "ok"}
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [
        {
            "action": "demo.note",
            "status": "applied",
            "commit": first["commit"],
            "actor": ACTOR,
            "correlation_id": first["correlation_id"],
        },
        {
            "action": "demo.note",
            "status": "applied",
            "commit": second["commit"],
            "actor": "bob@example.com",
            "correlation_id": second["correlation_id"],
        },
    ]
    assert _git(repo, "rev-parse", "HEAD") == second["commit"]


_EVERY_OUTCOME = """
    import json, sys
    from proctor import ValidationFailed, Workspace
    from proctor.engine.pipeline import ProposalReceipt

    class Proposals:
        def propose(self, request):
            return ProposalReceipt(proposal=f"p-{request.params.name}")

    code = "def run():\\n    return 1\\n"
    out = []
    with Workspace.open(sys.argv[1]) as ws:
        for params in ({"name": "one", "text": "1"}, {"name": "forbidden", "text": "x"},
                       {"name": "needs_review", "text": "x"}, {"name": "empty", "text": ""}):
            try:
                out.append(ws.execute("demo.note", params).to_json())
            except ValidationFailed as exc:
                out.append({"status": "raised", "errors": [exc.message]})
        out.append(ws.execute("procedure.create", {"name": "greet", "code": code}).to_json())
        ws.engine.proposals = Proposals()
        out.append(ws.execute("demo.note", {"name": "needs_review", "text": "x"}).to_json())
    print(json.dumps(out))
"""


def test_one_event_handler_observes_every_outcome(
    plugin_dirs: dict[str, Path], repo: Path, tmp_path: Path
) -> None:
    events_file = tmp_path / "events.jsonl"
    # With the built-in proposals off, so that "proposals are not enabled" is an outcome.
    results = run_python(
        plugin_dirs,
        ["good"],
        _EVERY_OUTCOME,
        str(repo),
        PROCTOR_DEMO_EVENTS=str(events_file),
        PROCTOR_DISABLE_PLUGINS="proposals",
    )
    events = [json.loads(line) for line in events_file.read_text().splitlines()]

    assert [e["kind"] for e in events] == [
        "action.applied",
        "action.denied",
        "action.failed",  # a proposal is needed and proposals are not enabled
        "action.failed",  # the criteria refused it: ValidationFailed was raised
        "action.applied",  # a built-in action: no action has to ask for the handler
        "action.proposed",
    ]
    assert {e["type"] for e in events} == {"ActionEvent"}
    assert all(e["actor"] == ACTOR for e in events)
    applied, denied, no_proposals, refused, builtin, proposed = events
    assert [r["status"] for r in results] == [
        "applied",
        "denied",
        "failed",
        "raised",
        "applied",
        "proposed",
    ]
    assert applied["commit"] == results[0]["commit"]
    assert applied["correlation_id"] == results[0]["correlation_id"]
    assert (applied["action"], applied["decision"]) == ("demo.note", "ALLOW_IMMEDIATE")
    assert applied["message"] == "Write note one"
    assert denied["errors"] == results[1]["errors"] and denied["commit"] is None
    assert denied["decision"] == "DENY"
    assert no_proposals["errors"] == results[2]["errors"]
    assert no_proposals["decision"] == "REQUIRE_PROPOSAL"
    assert refused["errors"] == ["text is required"]
    assert refused["decision"] is None  # refused before policy was asked
    assert (builtin["action"], builtin["commit"]) == ("procedure.create", results[4]["commit"])
    assert builtin["commit"] == _git(repo, "rev-parse", "HEAD")
    assert (proposed["proposal"], proposed["commit"]) == ("p-needs_review", None)
    assert results[5]["proposal"] == "p-needs_review"
    assert "T" in applied["time"] and applied["time"].endswith("+00:00")


def test_a_failing_event_handler_never_undoes_the_commit(
    plugin_dirs: dict[str, Path], repo: Path, tmp_path: Path
) -> None:
    events_file = tmp_path / "events.jsonl"
    env = {"PROCTOR_DEMO_EVENTS": str(events_file), "PROCTOR_DEMO_EVENTS_FAIL": "1"}
    result = execute(plugin_dirs, repo, "demo.note", {"name": "kept", "text": "k"}, **env)
    assert result["status"] == "applied"
    assert result["commit"] == _git(repo, "rev-parse", "HEAD")
    assert result["warnings"] == [
        "event handler of plugin 'good' failed: RuntimeError: "
        "the demo event handler fails on purpose"
    ]
    assert _git(repo, "show", "HEAD:notes/kept.txt") == "k"

    cli = run_proctor(
        plugin_dirs,
        ["good"],
        "--repo",
        str(repo),
        "action",
        "run",
        "demo.note",
        "-p",
        "name=again",
        "-p",
        "text=a",
        **env,
    )
    assert cli.returncode == 0, cli.stderr
    assert "applied: commit" in cli.stdout
    assert "warning: event handler of plugin 'good' failed" in cli.stderr
    assert _git(repo, "show", "HEAD:notes/again.txt") == "a"
    assert len(events_file.read_text().splitlines()) == 2  # written, then it raised


@pytest.mark.parametrize(
    ("params", "actor"),
    [({"name": "forbidden", "text": "x"}, ""), ({"name": "fine", "text": "x"}, DENIED_ACTOR)],
    ids=["by-params", "by-actor"],
)
def test_policy_hook_deny_leaves_the_repo_unchanged(
    plugin_dirs: dict[str, Path], repo: Path, tmp_path: Path, params: dict[str, str], actor: str
) -> None:
    record = tmp_path / "record.jsonl"
    before = _git(repo, "rev-parse", "HEAD")
    result = execute(
        plugin_dirs, repo, "demo.note", params, actor=actor, PROCTOR_DEMO_RECORD=str(record)
    )

    assert result["status"] == "denied"
    assert result["decision"] == "DENY"
    assert result["commit"] is None
    assert result["errors"] == [f"policy denies demo.note for {actor or ACTOR}"]
    assert _git(repo, "rev-parse", "HEAD") == before
    assert not (repo / "notes").exists()
    assert not record.exists()


def test_policy_hook_applies_to_every_action(plugin_dirs: dict[str, Path], repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    code = "def run():\n    return 1\n"
    denied = execute(
        plugin_dirs, repo, "procedure.create", {"name": "greet", "code": code}, actor=DENIED_ACTOR
    )
    assert denied["status"] == "denied"
    assert _git(repo, "rev-parse", "HEAD") == before

    allowed = execute(plugin_dirs, repo, "procedure.create", {"name": "greet", "code": code})
    assert allowed["status"] == "applied", allowed


def test_policy_hook_require_proposal(plugin_dirs: dict[str, Path], repo: Path) -> None:
    params = {"name": "needs_review", "text": "x"}
    off = execute(plugin_dirs, repo, "demo.note", params, PROCTOR_DISABLE_PLUGINS="proposals")

    assert off["decision"] == "REQUIRE_PROPOSAL"
    assert off["status"] == "failed"
    assert off["errors"] == [
        "policy requires a proposal for demo.note, and proposals are not enabled in this store"
    ]
    assert "notes/needs_review.txt" not in _git(repo, "ls-tree", "-r", "--name-only", "HEAD")

    # With the built-in proposals on (the default) a third party's action is held the same
    # way as a built-in one: one commit adding the proposal file.
    held = execute(plugin_dirs, repo, "demo.note", params)
    assert (held["status"], held["decision"]) == ("proposed", "REQUIRE_PROPOSAL")
    tree = _git(repo, "ls-tree", "-r", "--name-only", "HEAD").split()
    assert f"proposals/{held['proposal']}.json" in tree and "notes/needs_review.txt" not in tree


def test_before_commit_hook_vetoes_with_its_reason_and_writes_nothing(
    plugin_dirs: dict[str, Path], repo: Path, tmp_path: Path
) -> None:
    record = tmp_path / "record.jsonl"
    before = _git(repo, "rev-parse", "HEAD")
    result = execute(
        plugin_dirs,
        repo,
        "demo.note",
        {"name": "unapproved", "text": "x"},
        PROCTOR_DEMO_RECORD=str(record),
    )

    assert result["status"] == "denied"
    assert result["commit"] is None
    assert result["errors"] == [
        "demo.note vetoed by plugin 'good': the approval service has no approval for note "
        "'unapproved'"
    ]
    assert _git(repo, "rev-parse", "HEAD") == before
    assert not record.exists()
    allowed = execute(plugin_dirs, repo, "demo.note", {"name": "approved", "text": "x"})
    assert allowed["status"] == "applied", allowed


def test_validator_hook_in_proctor_check(plugin_dirs: dict[str, Path], tmp_path: Path) -> None:
    flagged = tmp_path / "flagged.py"
    flagged.write_text("import os\nx = 'DEMO-FORBIDDEN'\n")
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")
    noqa = tmp_path / "noqa.py"
    noqa.write_text("x = 'DEMO-FORBIDDEN'  # noqa: DM001\n")

    proc = run_proctor(
        plugin_dirs,
        ["good"],
        "check",
        "--select",
        "demo",
        str(flagged),
        str(clean),
        str(noqa),
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{flagged}:2:6: DM001 [error] the DEMO-FORBIDDEN marker must not be committed"
    ]

    js = run_proctor(
        plugin_dirs,
        ["good"],
        "check",
        "--select",
        "DM001",
        "--format",
        "json",
        str(clean),
        str(noqa),
        str(flagged),
        cwd=tmp_path,
    )
    assert js.returncode == 1, js.stderr
    assert [
        (f["path"], f["line"], f["col"], f["code"], f["severity"]) for f in json.loads(js.stdout)
    ] == [(str(flagged), 2, 6, "DM001", "error")]

    gone = run_proctor(plugin_dirs, [], "check", "--select", "demo", str(clean), cwd=tmp_path)
    assert gone.returncode == 2
    assert "unknown check or rule 'demo'" in gone.stderr


def test_validator_hook_guards_code_written_by_actions(
    plugin_dirs: dict[str, Path], repo: Path
) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    report = run_python(
        plugin_dirs,
        ["good"],
        """
        import json, sys
        from proctor.core.errors import ValidationFailed
        from proctor.workspace import Workspace

        code = "def run():\\n    return 'DEMO-FORBIDDEN'\\n"
        with Workspace.open(sys.argv[1]) as ws:
            try:
                ws.execute("procedure.create", {"name": "greet", "code": code})
            except ValidationFailed as exc:
                print(json.dumps([getattr(f, "code", str(f)) for f in exc.findings]))
            else:
                print(json.dumps(None))
    """,
        str(repo),
    )
    assert report == ["DM001"]
    assert _git(repo, "rev-parse", "HEAD") == before


def test_llm_backend_hook(plugin_dirs: dict[str, Path]) -> None:
    report = run_python(
        plugin_dirs,
        ["good"],
        """
        import asyncio, json
        from proctor.plugins import plugin_manager

        backends = plugin_manager().llm_backends()
        demo = backends["demo"]
        messages = [{"role": "user", "content": "write a procedure"}]
        print(json.dumps({"names": sorted(backends), "complete": demo.complete(messages),
                          "acomplete": asyncio.run(demo.acomplete(messages))}))
    """,
    )
    assert "demo" in report["names"]
    assert report["complete"] == report["acomplete"] == "demo completion"


def test_command_hook(plugin_dirs: dict[str, Path]) -> None:
    proc = run_proctor(plugin_dirs, ["good"], "demo-hello", "--name", "Ana")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from demo, Ana\n"

    helped = run_proctor(plugin_dirs, ["good"], "demo-hello", "--help")
    assert "Say hello from the demo plugin." in helped.stdout

    missing = run_proctor(plugin_dirs, [], "demo-hello")
    assert missing.returncode == 2
    assert "No such command 'demo-hello'" in missing.stderr


# -- what --help pays for ----------------------------------------------------------------------

HEAVY = ("litellm", "openai", "git", "gitdb", "pydantic", "rich")

_IMPORTED = """
    import json, sys
    import proctor.cli
    if sys.argv[1] == "main":
        try:
            proctor.cli.main(["--help"])
        except SystemExit:
            pass
    heavy = sys.argv[2].split(",")
    print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


@pytest.mark.parametrize("how", ["import", "main"])
@pytest.mark.parametrize("plugins", [(), ("good",)], ids=["builtins", "with-good-plugin"])
def test_help_imports_nothing_heavy(
    plugin_dirs: dict[str, Path], how: str, plugins: tuple[str, ...]
) -> None:
    # Without a third-party plugin nothing can add a command, so not even pluggy loads.
    heavy = HEAVY if plugins else (*HEAVY, "pluggy")
    assert run_python(plugin_dirs, plugins, _IMPORTED, how, ",".join(heavy)) == []


# -- PluginManager in-process, with plain objects carrying real hookimpls ----------------------


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No plugin switches set, a git identity, and a fresh process-wide manager after."""
    for name in _SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for key, value in _env({}, []).items():
        if key.startswith("GIT_"):
            monkeypatch.setenv(key, value)
    reset_plugin_manager()
    yield monkeypatch
    reset_plugin_manager()


def make_manager(*plugins: tuple[str, object]) -> PluginManager:
    manager = PluginManager()
    for name, plugin in plugins:
        manager.register(name, plugin, PluginInfo(name=name, module=f"tests.{name}"))
    return manager


class Registers:
    """A plugin registering the given items through one ``register`` hook.

    The hookimpl is a plain function stored on the instance: pluggy finds it by attribute
    name, exactly as it finds a module-level function in a plugin module.
    """

    def __init__(self, hook: str, *items: object) -> None:
        def register_all(register: Any) -> None:
            for item in items:
                register(item)

        setattr(self, hook, hookimpl(register_all))


class RaisesIn:
    """A plugin whose ``register`` hook raises."""

    def __init__(self, hook: str, message: str) -> None:
        def register_none(register: Any) -> None:
            raise RuntimeError(message)

        setattr(self, hook, hookimpl(register_none))


class Policy:
    """A policy plugin with a fixed answer (an exception instance is raised instead)."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def proctor_policy(self, action: Any) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def touch_action(api_name: str, *, requires_proposal: bool = False) -> type:
    """An action writing ``touched/<path>``; built here because ActionType needs pydantic."""
    from proctor.engine.actions import ActionContext, ActionType, Params
    from proctor.store.gitstore import Change

    class TouchParams(Params):
        path: str

    class Touch(ActionType):
        description = "Write one file."
        side_effects = ()

        def apply(self, params: Any, context: ActionContext) -> Change:
            return Change(edits={f"touched/{params.path}": b"touched\n"})

    Touch.api_name = api_name
    Touch.Params = TouchParams
    Touch.requires_proposal = requires_proposal
    return Touch


def test_hooks_of_plain_objects_are_recorded(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(
        ("v", Registers("proctor_register_validators", Named("unit"))), ("p", Policy(None))
    )
    assert manager.infos["v"].hooks == ["proctor_register_validators"]
    assert manager.infos["p"].hooks == ["proctor_policy"]
    assert list(manager.validators()) == ["unit"]
    assert manager.validators() is manager.validators()  # collected once per manager


def test_duplicate_name_is_reported_never_silent(env: pytest.MonkeyPatch) -> None:
    first, second = touch_action("unit.same"), touch_action("unit.same")
    manager = make_manager(
        ("first", Registers("proctor_register_actions", first)),
        ("second", Registers("proctor_register_actions", second)),
    )
    actions = manager.actions()
    assert list(actions) == ["unit.same"]
    errors = {name: manager.infos[name].error for name in ("first", "second")}
    flagged = [name for name, error in errors.items() if error]
    assert len(flagged) == 1
    assert "'unit.same' is already registered by plugin" in errors[flagged[0]]


def test_duplicate_action_is_an_error_on_the_later_plugin(env: pytest.MonkeyPatch) -> None:
    first, second = touch_action("unit.same"), touch_action("unit.same")
    manager = make_manager(
        ("first", Registers("proctor_register_actions", first)),
        ("second", Registers("proctor_register_actions", second)),
    )
    assert manager.actions()["unit.same"] is first
    assert manager.infos["first"].error is None
    assert manager.infos["second"].error == (
        "proctor_register_actions: ValueError: 'unit.same' is already registered by plugin 'first'"
    )


def test_a_raising_register_hook_is_isolated_in_process(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(
        ("ok", Registers("proctor_register_side_effects", Named("unit-effect"))),
        ("bad", RaisesIn("proctor_register_side_effects", "boom")),
        ("nameless", Registers("proctor_register_side_effects", Named(""))),
    )
    assert list(manager.side_effects()) == ["unit-effect"]
    assert manager.infos["ok"].error is None
    assert manager.infos["bad"].error == "proctor_register_side_effects: RuntimeError: boom"
    assert "has no name" in (manager.infos["nameless"].error or "")


def test_strict_mode_reraises_from_a_register_hook(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROCTOR_STRICT_PLUGINS", "1")
    manager = make_manager(("bad", RaisesIn("proctor_register_llm_backends", "boom")))
    with pytest.raises(
        PluginError, match="plugin 'bad' failed in proctor_register_llm_backends: boom"
    ) as info:
        manager.llm_backends()
    assert isinstance(info.value.__cause__, RuntimeError)


def ask_policy(manager: PluginManager) -> HookOutcome:
    return manager.call("proctor_policy", action=None, params=None, context=None)


def test_a_raising_policy_is_recorded_and_strict_mode_reraises(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(("deny", Policy("DENY")), ("bad", Policy(RuntimeError("boom"))))
    outcome = ask_policy(manager)
    assert outcome.value == ["DENY"]
    assert outcome.failed_plugins == ["bad"]
    assert [f.describe() for f in outcome.failures] == [
        "plugin 'bad' failed in proctor_policy: RuntimeError: boom"
    ]
    assert manager.infos["bad"].error == "proctor_policy: RuntimeError: boom"

    env.setenv("PROCTOR_STRICT_PLUGINS", "true")
    with pytest.raises(PluginError, match="plugin 'bad' failed in proctor_policy: boom"):
        ask_policy(manager)


GHOST = {"ghost": "proctor.plugins.no_such_module", "policy": "proctor.plugins.policy"}


def test_a_builtin_that_fails_to_import(env: pytest.MonkeyPatch) -> None:
    manager = PluginManager()
    manager.load_builtins(set(), GHOST)
    assert manager.infos["ghost"].error == (
        "ModuleNotFoundError: No module named 'proctor.plugins.no_such_module'"
    )
    assert manager.infos["ghost"].builtin is True
    assert manager.infos["policy"].hooks == ["proctor_policy"]

    disabled = PluginManager()
    disabled.load_builtins({"ghost"}, GHOST)
    assert disabled.infos["ghost"].disabled is True
    assert disabled.infos["ghost"].error is None

    env.setenv("PROCTOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'ghost' failed: ModuleNotFoundError"):
        PluginManager().load_builtins(set(), GHOST)


def test_core_loads_the_table_it_is_handed(env: pytest.MonkeyPatch) -> None:
    """Core names no built-in: it loads whatever table the layer above handed over."""
    import proctor.core.plugins as core_plugins

    assert core_plugins.builtin_plugins() == BUILTIN_PLUGINS  # proctor/__init__.py did
    env.setattr(core_plugins, "_builtin_plugins", {})
    core_plugins.set_builtin_plugins(GHOST)
    env.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    manager = get_plugin_manager(reload=True)
    assert list(manager.infos) == ["ghost", "policy"]
    assert "ModuleNotFoundError" in (manager.infos["ghost"].error or "")
    import ast

    for path in Path(core_plugins.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.append(node.value)
            assert not [n for n in names if n.startswith("proctor.plugins")], path


class Misspelt:
    @hookimpl
    def proctor_register_validator(self, register: Any) -> None:
        raise AssertionError("a misspelt hook must not be called")


class AlsoMisspelt:
    @hookimpl
    def proctor_policies(self, action: Any) -> Any:
        raise AssertionError("a misspelt hook must not be called")


def test_check_pending_rejects_every_misspelt_plugin(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(("ok", Policy("DENY")), ("m1", Misspelt()), ("m2", AlsoMisspelt()))
    manager.check_pending()
    assert "unknown hook 'proctor_register_validator'" in (manager.infos["m1"].error or "")
    assert "unknown hook 'proctor_policies'" in (manager.infos["m2"].error or "")
    assert manager.pm.get_plugin("m1") is None
    assert manager.pm.get_plugin("m2") is None
    assert manager.infos["ok"].error is None
    assert ask_policy(manager).value == ["DENY"]
    assert manager.validators() == {}

    env.setenv("PROCTOR_STRICT_PLUGINS", "1")
    strict = make_manager(("m1", Misspelt()))
    with pytest.raises(PluginError, match="proctor_register_validator"):
        strict.check_pending()


def test_a_misspelt_hook_registered_behind_the_managers_back_ends(
    env: pytest.MonkeyPatch,
) -> None:
    """A plugin registered straight into pluggy has no record of ours: check_pending still
    finds it by pluggy's name for it, records it and unregisters it, instead of asking
    pluggy again and again (unbounded recursion before)."""
    manager = make_manager(("ok", Policy("DENY")))
    stray = Misspelt()
    manager.pm.register(stray, name="stray")
    manager.check_pending()
    assert manager.pm.get_plugin("stray") is None
    assert "unknown hook 'proctor_register_validator'" in (manager.infos["stray"].error or "")
    assert ask_policy(manager).value == ["DENY"]


def test_get_plugin_manager_reload_follows_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    env.setenv("PROCTOR_DISABLE_PLUGINS", "policy,procedures")
    first = get_plugin_manager(reload=True)
    assert first.infos["policy"].disabled and first.infos["procedures"].disabled
    assert "procedure.create" not in first.actions()

    env.delenv("PROCTOR_DISABLE_PLUGINS")
    assert get_plugin_manager() is first  # loaded once per process
    second = get_plugin_manager(reload=True)
    assert second is not first
    assert second.infos["policy"].disabled is False
    assert second.infos["policy"].hooks == ["proctor_policy"]
    assert "procedure.create" in second.actions()
    assert get_plugin_manager() is second

    reset_plugin_manager()
    assert get_plugin_manager() is not second


@pytest.mark.parametrize(
    ("answers", "requires_proposal", "decision"),
    [
        ([], False, "ALLOW_IMMEDIATE"),
        ([None, None], False, "ALLOW_IMMEDIATE"),
        (["ALLOW_IMMEDIATE", None], False, "ALLOW_IMMEDIATE"),
        (["ALLOW_IMMEDIATE", "REQUIRE_PROPOSAL", None], False, "REQUIRE_PROPOSAL"),
        (["require_proposal", "DENY", "ALLOW_IMMEDIATE"], False, "DENY"),
        (["deny"], False, "DENY"),
        (["ALLOW_IMMEDIATE"], True, "REQUIRE_PROPOSAL"),
    ],
)
def test_the_strictest_policy_wins(
    env: pytest.MonkeyPatch, repo: Path, answers: list[Any], requires_proposal: bool, decision: str
) -> None:
    from proctor.workspace import Workspace

    action = touch_action("unit.touch", requires_proposal=requires_proposal)
    manager = make_manager(
        ("actions", Registers("proctor_register_actions", action)),
        *((f"policy{i}", Policy(a)) for i, a in enumerate(answers)),
    )
    before = _git(repo, "rev-parse", "HEAD")
    with Workspace.open(repo, plugins=manager) as ws:
        result = ws.execute("unit.touch", {"path": "a.txt"})

    assert result.decision == decision
    files = _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    if decision == "ALLOW_IMMEDIATE":
        assert result.status == "applied"
        assert result.commit == _git(repo, "rev-parse", "HEAD") != before
        assert "touched/a.txt" in files
        assert "Proctor-Policy: ALLOW_IMMEDIATE" in _git(repo, "log", "-1", "--format=%B")
        return
    assert "touched/a.txt" not in files
    if decision == "DENY":
        assert result.status == "denied"
        assert result.errors == [f"policy denies unit.touch for {ACTOR}"]
        assert _git(repo, "rev-parse", "HEAD") == before
    else:
        assert result.status == "failed"
        assert result.errors == [
            "policy requires a proposal for unit.touch, and proposals are not enabled in this store"
        ]
        assert _git(repo, "rev-parse", "HEAD") == before


class WrongArgument:
    @hookimpl
    def proctor_policy(self, action: Any, verdict: Any) -> Any:
        return "DENY"


def test_pluggy_refusing_a_registration_is_isolated(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(("wrong", WrongArgument()), ("ok", Policy("DENY")))
    assert (manager.infos["wrong"].error or "").startswith("PluginValidationError")
    assert "verdict" in (manager.infos["wrong"].error or "")
    assert manager.infos["wrong"].hooks == []
    assert ask_policy(manager).value == ["DENY"]

    env.setenv("PROCTOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'wrong' failed: PluginValidationError"):
        make_manager(("wrong", WrongArgument()))


# -- pluggy's own calling: ordering, wrappers, firstresult -------------------------------------


def an_event() -> Any:
    from proctor.core.events import ActionEvent

    return ActionEvent(actor=ACTOR, correlation_id="c-1", action="unit.touch", status="applied")


class Observer:
    """An event handler that notes its name when called, with pluggy's ordering options."""

    def __init__(self, name: str, calls: list[str], **opts: bool) -> None:
        def proctor_on_event(event: Any) -> None:
            calls.append(name)

        self.proctor_on_event = hookimpl(**opts)(proctor_on_event)


def test_tryfirst_and_trylast_decide_the_calling_order(env: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    manager = make_manager(
        ("early", Observer("early", calls, tryfirst=True)),
        ("late", Observer("late", calls, trylast=True)),
        ("plain1", Observer("plain1", calls)),
        ("plain2", Observer("plain2", calls)),
    )
    assert manager.emit(an_event()) == ()
    # pluggy calls the last registered first; tryfirst and trylast override that.
    assert calls == ["early", "plain2", "plain1", "late"]


class TightenForContractors:
    """A policy wrapper: sees every other policy's answers and may add a stricter one."""

    def __init__(self) -> None:
        self.seen: list[list[Any]] = []

    @hookimpl(wrapper=True)
    def proctor_policy(self, action: Any, context: Any) -> Any:
        answers = yield
        self.seen.append(list(answers))
        if context.actor.endswith("@contractor.example"):
            return [*answers, "REQUIRE_PROPOSAL"]
        return answers


def test_a_policy_wrapper_sees_every_answer_and_tightens_only_what_it_means_to(
    env: pytest.MonkeyPatch, repo: Path
) -> None:
    from proctor.workspace import Workspace

    wrapper = TightenForContractors()
    manager = make_manager(
        ("actions", Registers("proctor_register_actions", touch_action("unit.touch"))),
        ("wrapper", wrapper),
        ("allow", Policy("ALLOW_IMMEDIATE")),
        ("abstain", Policy(None)),
    )
    with Workspace.open(repo, plugins=manager) as ws:
        staff = ws.execute("unit.touch", {"path": "a.txt"})
        contractor = ws.execute("unit.touch", {"path": "b.txt"}, actor="cy@contractor.example")

    assert staff.status == "applied" and staff.decision == "ALLOW_IMMEDIATE"
    assert (contractor.status, contractor.decision) == ("failed", "REQUIRE_PROPOSAL")
    assert "proposals are not enabled" in contractor.errors[0]
    assert wrapper.seen == [["ALLOW_IMMEDIATE"], ["ALLOW_IMMEDIATE"]]  # None abstains
    files = _git(repo, "ls-tree", "-r", "--name-only", "HEAD").splitlines()
    assert "touched/a.txt" in files and "touched/b.txt" not in files
    assert manager.infos["wrapper"].error is None


class RaisingWrapper:
    def __init__(self, when: str) -> None:
        self.when = when

    @hookimpl(wrapper=True)
    def proctor_policy(self, action: Any) -> Any:
        if self.when == "before":
            raise RuntimeError("policy wrapper broke before")
        answers = yield
        if self.when == "after":
            raise RuntimeError("policy wrapper broke after")
        return answers


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_raising_policy_wrapper_denies(env: pytest.MonkeyPatch, repo: Path, when: str) -> None:
    from proctor.workspace import Workspace

    manager = make_manager(
        ("actions", Registers("proctor_register_actions", touch_action("unit.touch"))),
        ("allow", Policy("ALLOW_IMMEDIATE")),
        ("wrapper", RaisingWrapper(when)),
    )
    before = _git(repo, "rev-parse", "HEAD")
    with Workspace.open(repo, plugins=manager) as ws:
        result = ws.execute("unit.touch", {"path": "a.txt"})
    assert (result.status, result.decision) == ("denied", "DENY")
    assert result.errors == ["policy plugin(s) wrapper failed, so unit.touch is denied"]
    assert manager.infos["wrapper"].error == (
        f"proctor_policy: RuntimeError: policy wrapper broke {when}"
    )
    assert manager.infos["allow"].error is None
    assert _git(repo, "rev-parse", "HEAD") == before

    env.setenv("PROCTOR_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=f"plugin 'wrapper' failed in proctor_policy: .*{when}"):
        ask_policy(manager)


class PickSpecs:
    """A firstresult hook added for this test: pluggy stops at the first answer."""

    @hookspecs.hookspec(firstresult=True)
    def proctor_test_pick(self, value: Any) -> Any:
        """The first non-None answer wins."""


class Picks:
    def __init__(self, answer: object) -> None:
        self.answer = answer

    @hookimpl
    def proctor_test_pick(self, value: Any) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_firstresult_holds_and_a_failure_lets_the_next_answer(env: pytest.MonkeyPatch) -> None:
    manager = PluginManager()
    manager.pm.add_hookspecs(PickSpecs)
    for name, answer in (("a", "from a"), ("b", "from b"), ("c", RuntimeError("c broke"))):
        manager.register(name, Picks(answer), PluginInfo(name=name, module="tests"))
    outcome = manager.call("proctor_test_pick", value=1)
    # c is asked first (last registered), fails; b answers; a is never asked.
    assert outcome.value == "from b"
    assert outcome.failed_plugins == ["c"]
    assert manager.infos["c"].error == "proctor_test_pick: RuntimeError: c broke"


def test_an_unknown_hook_name_is_an_error_not_a_silent_no_op(env: pytest.MonkeyPatch) -> None:
    manager = make_manager(("p", Policy("DENY")))
    with pytest.raises(AttributeError, match="proctor_polcy"):
        manager.call("proctor_polcy", action=None)


# -- the plugin guide --------------------------------------------------------------------------


def test_the_guide_documents_every_hook_with_its_signature() -> None:
    import inspect

    guide = (Path(__file__).parent.parent / "docs" / "plugins.md").read_text()
    for name in ALL_HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        assert f"### `{name}({params})`" in guide, name
    for switch in ("PROCTOR_STRICT_PLUGINS", "PROCTOR_DISABLE_PLUGINS", "PROCTOR_NO_ENTRY_POINTS"):
        assert f"`{switch}`" in guide
    for name in BUILTIN_PLUGINS:
        assert f"`{name}`" in guide
    assert "tests/fixtures/proctor-plugin-good/" in guide
