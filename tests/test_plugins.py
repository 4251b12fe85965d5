"""The plugin system, proven with real installed plugin packages.

The packages under ``tests/fixtures/proctor-plugin-*`` are built and installed once per
session with pip into private target directories; each test composes ``PYTHONPATH`` from
the ones it needs and runs ``proctor`` (or a small Python script) in a subprocess, so
plugins are discovered exactly as in production: from real ``dist-info`` entry points.

* ``good``: implements every hook (action ``demo.note``, validator ``demo``/``DM001``,
  side effect ``demo-record``, LLM backend ``demo``, command ``demo-hello``, a policy).
* ``broken``: raises at import.
* ``misspelt``: a hookimpl named ``proctor_register_validator`` (no such hook).
* ``raising``: its validator hook raises and its side-effect hook claims the built-in
  ``log`` name.

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
    DEFAULT_PLUGINS,
    PluginInfo,
    PluginManager,
    get_plugin_manager,
    reset_plugin_manager,
)

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGES = ("good", "broken", "misspelt", "raising")
ALL_HOOKS = sorted(name for name in vars(hookspecs) if name.startswith("proctor_"))

BROKEN_MESSAGE = "proctor-plugin-broken cannot be imported on purpose"
RAISING_MESSAGE = "proctor-plugin-raising fails in its validator hook on purpose"
ACTOR = "ana@example.com"
DENIED_ACTOR = "mallory@example.com"

# Variables that change plugin loading or identity; every subprocess starts without them.
_SCRUBBED = (
    "PROCTOR_STRICT_PLUGINS",
    "PROCTOR_DISABLE_PLUGINS",
    "PROCTOR_NO_ENTRY_POINTS",
    "PROCTOR_ACTOR",
    "PROCTOR_DEMO_RECORD",
    "PYTHONPATH",
)


# -- installing the fixture packages -----------------------------------------------------------


@pytest.fixture(scope="session")
def plugin_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Install each fixture package into its own target directory, in parallel.

    One directory per package lets a test put exactly the plugins it wants on
    ``PYTHONPATH``. ``--no-build-isolation`` builds with the hatchling already installed
    and ``--no-index`` keeps pip off the network.
    """
    base = tmp_path_factory.mktemp("plugins")
    procs: dict[str, subprocess.Popen[str]] = {}
    for name in PACKAGES:
        cmd = [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-index", "--no-cache-dir",
            "--disable-pip-version-check", "--target", str(base / name),
            str(FIXTURES / f"proctor-plugin-{name}"),
        ]
        procs[name] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, f"pip install of {name} failed:\n{out}\n{err}"
        assert list((base / name).glob("*.dist-info")), f"{name}: no dist-info installed"
    return {name: base / name for name in PACKAGES}


def _env(dirs: dict[str, Path], plugins: Sequence[str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONPATH"] = os.pathsep.join(str(dirs[name]) for name in plugins)
    env.update(
        GIT_AUTHOR_NAME="Ana", GIT_AUTHOR_EMAIL=ACTOR,
        GIT_COMMITTER_NAME="Ana", GIT_COMMITTER_EMAIL=ACTOR,
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


def run_proctor(dirs: dict[str, Path], plugins: Sequence[str], *args: str,
                cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_proctor_cmd(), *args], env=_env(dirs, plugins, **extra),
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def run_python(dirs: dict[str, Path], plugins: Sequence[str], script: str, *args: str,
               cwd: Path | None = None, **extra: str) -> Any:
    """Run a script in a fresh interpreter; it prints one JSON document as its last line."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          env=_env(dirs, plugins, **extra), cwd=cwd,
                          capture_output=True, text=True, timeout=60)
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
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


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

    for name, module in DEFAULT_PLUGINS.items():
        assert rows[name]["builtin"] is True
        assert rows[name]["module"] == module
    good = rows["good"]
    assert good == {
        "name": "good", "module": "proctor_plugin_good", "version": "1.2.3", "builtin": False,
        "hooks": ALL_HOOKS, "status": "ok", "error": None,
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


def test_broken_plugin_leaves_everything_else_working(plugin_dirs: dict[str, Path],
                                                      tmp_path: Path) -> None:
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
    rows = plugin_rows(run_proctor(plugin_dirs, [], "--json", "plugins"))
    assert {n: r["error"] for n, r in rows.items() if r["error"]} == {}
    assert set(rows) == set(DEFAULT_PLUGINS)
    assert all(rows[name]["hooks"] for name in DEFAULT_PLUGINS)


# -- the environment switches ------------------------------------------------------------------


def test_strict_mode_fails_on_a_broken_plugin(plugin_dirs: dict[str, Path],
                                              failing_builtins: list[str]) -> None:
    disabled = ",".join(failing_builtins)
    for args in (["demo-hello"], ["plugins"]):
        proc = run_proctor(plugin_dirs, ["good", "broken"], *args,
                           PROCTOR_STRICT_PLUGINS="1", PROCTOR_DISABLE_PLUGINS=disabled)
        assert proc.returncode == PluginError.exit_code != 0
        assert "'broken'" in proc.stderr
        assert BROKEN_MESSAGE in proc.stderr
        assert "hello from demo" not in proc.stdout


def test_strict_mode_passes_with_sound_plugins(plugin_dirs: dict[str, Path],
                                               failing_builtins: list[str]) -> None:
    proc = run_proctor(plugin_dirs, ["good"], "demo-hello", PROCTOR_STRICT_PLUGINS="1",
                       PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "hello from demo, world\n"


def test_disabling_the_broken_plugin_hides_its_error(plugin_dirs: dict[str, Path],
                                                      failing_builtins: list[str]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "broken"], "--json", "plugins",
                                   PROCTOR_DISABLE_PLUGINS="broken"))
    assert rows["broken"]["status"] == "disabled"
    assert rows["broken"]["error"] is None
    assert rows["good"]["status"] == "ok"

    strict = run_proctor(plugin_dirs, ["good", "broken"], "demo-hello",
                         PROCTOR_STRICT_PLUGINS="1",
                         PROCTOR_DISABLE_PLUGINS=",".join(["broken", *failing_builtins]))
    assert strict.returncode == 0, strict.stderr


def test_disabling_a_builtin(plugin_dirs: dict[str, Path], tmp_path: Path) -> None:
    env = {"PROCTOR_DISABLE_PLUGINS": " safety , log-lint "}
    rows = plugin_rows(run_proctor(plugin_dirs, ["good"], "--json", "plugins", **env))
    for name in ("safety", "log-lint"):
        assert rows[name]["builtin"] is True
        assert rows[name]["status"] == "disabled"
        assert rows[name]["hooks"] == []
    assert rows["procedures"]["status"] == "ok"

    names = run_python(plugin_dirs, ["good"], """
        import json
        from proctor.core.plugins import get_plugin_manager
        print(json.dumps(sorted(get_plugin_manager().validators())))
    """, **env)
    assert names == ["demo"]

    source = tmp_path / "ok.py"
    source.write_text("x = 1\n")
    proc = run_proctor(plugin_dirs, ["good"], "check", "--select", "safety", str(source), **env)
    assert proc.returncode == 2
    assert "unknown check or rule 'safety'" in proc.stderr


def test_no_entry_points_switch(plugin_dirs: dict[str, Path]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "broken"], "--json", "plugins",
                                   PROCTOR_NO_ENTRY_POINTS="1"))
    assert set(rows) == set(DEFAULT_PLUGINS)


def test_misspelt_hook_is_reported(plugin_dirs: dict[str, Path],
                                   failing_builtins: list[str]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "misspelt"], "--json", "plugins"))
    misspelt = rows["misspelt"]
    assert misspelt["status"] == "error"
    assert misspelt["error"].startswith("PluginValidationError: unknown hook "
                                        "'proctor_register_validator'")
    assert rows["good"]["status"] == "ok"

    # Unregistered, so never called: its body raises if it is.
    names = run_python(plugin_dirs, ["good", "misspelt"], """
        import json
        from proctor.core.plugins import get_plugin_manager
        m = get_plugin_manager()
        print(json.dumps([sorted(m.validators()), m.pm.get_plugin("misspelt") is None]))
    """)
    assert "demo" in names[0]
    assert names[1] is True

    strict = run_proctor(plugin_dirs, ["good", "misspelt"], "demo-hello",
                         PROCTOR_STRICT_PLUGINS="1",
                         PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins))
    assert strict.returncode == PluginError.exit_code
    assert "proctor_register_validator" in strict.stderr


def test_a_raising_register_hook_is_isolated(plugin_dirs: dict[str, Path],
                                            failing_builtins: list[str]) -> None:
    report = run_python(plugin_dirs, ["good", "raising"], """
        import json
        from proctor.core.plugins import get_plugin_manager
        m = get_plugin_manager()
        validators = sorted(m.validators())
        print(json.dumps({"validators": validators, "error": m.infos["raising"].error}))
    """)
    assert "demo" in report["validators"]
    assert report["error"] == f"proctor_register_validators: RuntimeError: {RAISING_MESSAGE}"

    strict = run_python(plugin_dirs, ["good", "raising"], """
        import json
        from proctor.core.errors import PluginError
        from proctor.core.plugins import get_plugin_manager
        try:
            get_plugin_manager().validators()
        except PluginError as exc:
            print(json.dumps(str(exc)))
        else:
            print(json.dumps(None))
    """, PROCTOR_STRICT_PLUGINS="1", PROCTOR_DISABLE_PLUGINS=",".join(failing_builtins))
    assert strict == f"plugin 'raising' failed in proctor_register_validators: {RAISING_MESSAGE}"


@pytest.mark.xfail(strict=True, reason="`proctor plugins` does not run the registration "
                   "hooks, so errors raised inside them are not shown")
def test_plugins_command_shows_registration_errors(plugin_dirs: dict[str, Path]) -> None:
    rows = plugin_rows(run_proctor(plugin_dirs, ["good", "raising"], "--json", "plugins"))
    assert rows["raising"]["status"] == "error"
    assert RAISING_MESSAGE in rows["raising"]["error"]


@pytest.mark.xfail(strict=True, reason="PluginManager.collect calls plugins last-registered "
                   "first, so a third-party plugin takes a built-in's name")
def test_a_plugin_cannot_take_a_builtin_name(plugin_dirs: dict[str, Path]) -> None:
    report = run_python(plugin_dirs, ["raising"], """
        import json
        from proctor.core.plugins import get_plugin_manager
        m = get_plugin_manager()
        log = m.side_effects()["log"]
        print(json.dumps({"owner": type(log).__module__, "builtin_error":
                          m.infos["side-effects"].error, "error": m.infos["raising"].error}))
    """)
    assert report["owner"] == "proctor.plugins.side_effects"
    assert report["builtin_error"] is None
    assert "'log' is already registered by plugin 'side-effects'" in report["error"]


# -- every hook of the complete plugin, end to end ---------------------------------------------

_EXECUTE = """
    import json, sys
    from proctor.workspace import Workspace

    repo, api_name, params, actor = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
    with Workspace.open(repo) as ws:
        result = ws.execute(api_name, params, actor=actor or None)
    print(json.dumps(result.to_json()))
"""


def execute(dirs: dict[str, Path], repo: Path, api_name: str, params: dict[str, Any],
            actor: str = "", plugins: Sequence[str] = ("good",), **extra: str) -> dict[str, Any]:
    """``Workspace.open(repo).execute(...)`` in a fresh interpreter with the plugins."""
    return run_python(dirs, plugins, _EXECUTE, str(repo), api_name, json.dumps(params), actor,
                      **extra)


def test_action_hook_commits_through_the_pipeline(plugin_dirs: dict[str, Path],
                                                   repo: Path) -> None:
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
    assert f"Proctor-Action: demo.note" in trailers
    assert f"Proctor-Actor: {ACTOR}" in trailers
    assert f"Proctor-Correlation-Id: {result['correlation_id']}" in trailers
    assert "Proctor-Policy: ALLOW_IMMEDIATE" in trailers


def test_action_params_and_criteria_are_enforced(plugin_dirs: dict[str, Path],
                                                 repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    report = run_python(plugin_dirs, ["good"], """
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
    """, str(repo))
    assert "text is required" in report[0]
    assert "note name" in report[1]
    assert "extra" in report[2]
    assert _git(repo, "rev-parse", "HEAD") == before


def test_side_effect_hook_runs_after_the_commit(plugin_dirs: dict[str, Path], repo: Path,
                                                tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    first = execute(plugin_dirs, repo, "demo.note", {"name": "one", "text": "1"},
                    PROCTOR_DEMO_RECORD=str(record))
    second = execute(plugin_dirs, repo, "demo.note", {"name": "two", "text": "2"},
                     actor="bob@example.com", PROCTOR_DEMO_RECORD=str(record))

    assert first["side_effects"] == {"log": "ok", "demo-record": "ok"}
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines == [
        {"action": "demo.note", "status": "applied", "commit": first["commit"],
         "actor": ACTOR, "correlation_id": first["correlation_id"]},
        {"action": "demo.note", "status": "applied", "commit": second["commit"],
         "actor": "bob@example.com", "correlation_id": second["correlation_id"]},
    ]
    assert _git(repo, "rev-parse", "HEAD") == second["commit"]


@pytest.mark.parametrize(
    ("params", "actor"),
    [({"name": "forbidden", "text": "x"}, ""), ({"name": "fine", "text": "x"}, DENIED_ACTOR)],
    ids=["by-params", "by-actor"],
)
def test_policy_hook_deny_leaves_the_repo_unchanged(plugin_dirs: dict[str, Path], repo: Path,
                                                    tmp_path: Path, params: dict[str, str],
                                                    actor: str) -> None:
    record = tmp_path / "record.jsonl"
    before = _git(repo, "rev-parse", "HEAD")
    result = execute(plugin_dirs, repo, "demo.note", params, actor=actor,
                     PROCTOR_DEMO_RECORD=str(record))

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
    denied = execute(plugin_dirs, repo, "procedure.create", {"name": "greet", "code": code},
                     actor=DENIED_ACTOR)
    assert denied["status"] == "denied"
    assert _git(repo, "rev-parse", "HEAD") == before

    allowed = execute(plugin_dirs, repo, "procedure.create", {"name": "greet", "code": code})
    assert allowed["status"] == "applied", allowed


def test_policy_hook_require_proposal(plugin_dirs: dict[str, Path], repo: Path) -> None:
    result = execute(plugin_dirs, repo, "demo.note", {"name": "needs_review", "text": "x"})

    assert result["decision"] == "REQUIRE_PROPOSAL"
    assert result["status"] in ("failed", "proposed")
    if result["status"] == "failed":
        assert "proposals are not supported yet" in result["errors"][0]
    assert "notes/needs_review.txt" not in _git(repo, "ls-tree", "-r", "--name-only", "HEAD")


def test_validator_hook_in_proctor_check(plugin_dirs: dict[str, Path], tmp_path: Path) -> None:
    flagged = tmp_path / "flagged.py"
    flagged.write_text("import os\nx = 'DEMO-FORBIDDEN'\n")
    clean = tmp_path / "clean.py"
    clean.write_text("x = 1\n")

    for select in ("demo", "DM001", "DM"):
        proc = run_proctor(plugin_dirs, ["good"], "check", "--select", select, str(flagged),
                           str(clean), cwd=tmp_path)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout.splitlines() == [
            f"{flagged}:2:6: DM001 the DEMO-FORBIDDEN marker must not be committed"
        ]

    ok = run_proctor(plugin_dirs, ["good"], "check", "--select", "demo", str(clean), cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    js = run_proctor(plugin_dirs, ["good"], "check", "--select", "demo", "--format", "json",
                     str(flagged), cwd=tmp_path)
    assert js.returncode == 1
    assert "DM001" in js.stdout

    noqa = tmp_path / "noqa.py"
    noqa.write_text("x = 'DEMO-FORBIDDEN'  # noqa: DM001\n")
    quiet = run_proctor(plugin_dirs, ["good"], "check", "--select", "demo", str(noqa),
                        cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stdout

    gone = run_proctor(plugin_dirs, [], "check", "--select", "demo", str(clean), cwd=tmp_path)
    assert gone.returncode == 2
    assert "unknown check or rule 'demo'" in gone.stderr


def test_validator_hook_guards_code_written_by_actions(plugin_dirs: dict[str, Path],
                                                       repo: Path) -> None:
    before = _git(repo, "rev-parse", "HEAD")
    report = run_python(plugin_dirs, ["good"], """
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
    """, str(repo))
    assert report == ["DM001"]
    assert _git(repo, "rev-parse", "HEAD") == before


def test_llm_backend_hook(plugin_dirs: dict[str, Path]) -> None:
    report = run_python(plugin_dirs, ["good"], """
        import asyncio, json
        from proctor.core.plugins import get_plugin_manager

        backends = get_plugin_manager().llm_backends()
        demo = backends["demo"]
        messages = [{"role": "user", "content": "write a procedure"}]
        print(json.dumps({"names": sorted(backends), "complete": demo.complete(messages),
                          "acomplete": asyncio.run(demo.acomplete(messages))}))
    """)
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
def test_help_imports_nothing_heavy(plugin_dirs: dict[str, Path], how: str,
                                    plugins: tuple[str, ...]) -> None:
    assert run_python(plugin_dirs, plugins, _IMPORTED, how, ",".join(HEAVY)) == []
