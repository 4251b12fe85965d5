"""The CLI's happy paths and output contracts, run as a real subprocess."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import GREET, git, run_cli

V2 = 'def run(name: str, punct: str = "!") -> str:\n    return "hello " + name + punct\n'


def test_procedure_lifecycle_through_the_cli(repo: Path, tmp_path: Path) -> None:
    code = tmp_path / "main.py"
    code.write_text(GREET)
    r = run_cli(
        "--repo",
        str(repo),
        "--actor",
        "cli@example.com",
        "procedure",
        "create",
        "greet",
        "--code",
        str(code),
        "--description",
        "Says hello",
    )
    assert r.code == 0, r.err
    assert r.out.startswith("procedure.create applied: commit ")
    assert "Proctor-Actor: cli@example.com" in git(repo, "log", "-1", "--format=%B")

    r = run_cli("--repo", str(repo), "--json", "procedure", "release", "greet")
    data = json.loads(r.out)
    assert r.code == 0
    assert data["status"] == "applied" and data["tags"] == ["procedures/greet/v0.1.0"]
    assert set(data) >= {"status", "action", "commit", "proposal", "errors"}

    meta = json.loads((repo / "procedures/greet/metadata.json").read_text())
    meta["parameters"].append({"name": "punct", "type": "str", "required": False, "default": "!"})
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    code.write_text(V2)
    head = git(repo, "rev-parse", "HEAD").strip()
    r = run_cli(
        "--repo",
        str(repo),
        "procedure",
        "update",
        "greet",
        "--code",
        str(code),
        "--metadata",
        str(tmp_path / "metadata.json"),
        "--expected-version",
        head,
    )
    assert r.code == 0, r.err

    r = run_cli(
        "--repo",
        str(repo),
        "procedure",
        "release",
        "greet",
        "--bump",
        "auto",
        "-m",
        "Adds punctuation",
    )
    assert r.code == 0 and "procedures/greet/v0.2.0" in r.out
    assert "Adds punctuation" in git(repo, "tag", "-l", "-n5", "procedures/greet/v0.2.0")

    r = run_cli("--repo", str(repo), "procedure", "list")
    assert r.out == "name\tcategory\tdescription\ngreet\tgeneral\tSays hello\n"

    r = run_cli("--repo", str(repo), "--json", "procedure", "history", "greet")
    data = json.loads(r.out)
    assert data["name"] == "greet" and data["foreign"] == []
    history = data["versions"]
    assert [h["tags"] for h in history] == [["v0.2.0"], ["v0.1.0"]]
    assert history[0]["breaking"] is False

    r = run_cli("--repo", str(repo), "procedure", "history", "greet")
    header, *rows = [line.split("\t") for line in r.out.splitlines()]
    assert header == ["commit", "date", "author", "+/-", "breaking", "tags", "message"]
    assert len(rows) == 2 and rows[0][5] == "v0.2.0" and rows[1][6] == "Create procedure greet"
    assert rows[0][0] == history[0]["commit"] and rows[0][1] == history[0]["date"]

    r = run_cli("--repo", str(repo), "procedure", "show", "greet@0.1.0", "--code")
    assert r.out == GREET
    r = run_cli("--repo", str(repo), "procedure", "show", "greet")
    assert "run(name: str, punct: str = '!') -> str" in r.out
    assert "releases:    0.1.0, 0.2.0" in r.out

    r = run_cli("--repo", str(repo), "procedure", "diff", "greet", "0.1.0", "0.2.0")
    assert '+def run(name: str, punct: str = "!") -> str:' in r.out

    r = run_cli("--repo", str(repo), "procedure", "rollback", "greet", "--to", "0.1.0")
    assert r.code == 0 and "procedures/greet/v1.0.0" in r.out  # drops punct: major
    assert (repo / "procedures/greet/main.py").read_text() == GREET

    r = run_cli("--repo", str(repo), "procedure", "delete", "greet")
    assert r.code == 0
    assert run_cli("--repo", str(repo), "procedure", "list").out == "name\tcategory\tdescription\n"
    assert git(repo, "status", "--porcelain") == ""


def test_action_list_and_run(repo: Path) -> None:
    r = run_cli("--repo", str(repo), "action", "list")
    names = [line.split("\t")[0] for line in r.out.splitlines()[1:]]
    assert names == [
        "config.update",
        "procedure.create",
        "procedure.delete",
        "procedure.generate",
        "procedure.import",
        "procedure.release",
        "procedure.rollback",
        "procedure.update",
        "proposal.apply",
        "proposal.approve",
        "proposal.edit",
        "proposal.reject",
        "proposal.withdraw",
    ]
    r = run_cli("--repo", str(repo), "--json", "action", "list")
    schema = {a["api_name"]: a for a in json.loads(r.out)}
    assert "code" in schema["procedure.create"]["params"]["properties"]

    r = run_cli(
        "--repo",
        str(repo),
        "action",
        "run",
        "procedure.create",
        "-p",
        "name=greet",
        "-p",
        "code=" + json.dumps(GREET),
        "-p",
        "description=plain words",
    )
    assert r.code == 0, r.err
    assert (
        json.loads((repo / "procedures/greet/metadata.json").read_text())["description"]
        == "plain words"
    )
    assert "Proctor-Action: procedure.create" in git(repo, "log", "-1", "--format=%B")


def test_action_run_reads_files_with_at(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text(GREET)
    r = run_cli(
        "--repo",
        str(repo),
        "action",
        "run",
        "procedure.create",
        "-p",
        "name=greet",
        "-p",
        f"code=@{tmp_path / 'code.py'}",
    )
    assert r.code == 0, r.err
    assert (repo / "procedures/greet/main.py").read_text() == GREET


def test_repo_defaults_to_the_cwd(store: Path) -> None:
    sub = store / "procedures" / "greet"
    r = run_cli("procedure", "list", cwd=sub)
    assert r.out.splitlines()[1].startswith("greet\t")


def test_actor_from_environment(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(GREET)
    r = run_cli(
        "--repo",
        str(repo),
        "procedure",
        "create",
        "greet",
        "--code",
        str(tmp_path / "main.py"),
        env={"PROCTOR_ACTOR": "bot-7"},
    )
    assert r.code == 0
    assert "Proctor-Actor: bot-7" in git(repo, "log", "-1", "--format=%B")


def test_denied_exit_code_is_1(repo: Path, tmp_path: Path) -> None:
    (repo / "proctor.toml").write_text('[policy]\n"procedure.create" = "DENY"\n')
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "deny creates")
    (tmp_path / "main.py").write_text(GREET)
    r = run_cli(
        "--repo",
        str(repo),
        "--json",
        "procedure",
        "create",
        "greet",
        "--code",
        str(tmp_path / "main.py"),
    )
    assert r.code == 1
    assert json.loads(r.out)["status"] == "denied"


def test_init_and_quickstart(tmp_path: Path) -> None:
    r = run_cli("init", str(tmp_path / "store"))
    assert r.code == 0 and "Initialised proctor store" in r.out
    r = run_cli("init", str(tmp_path / "store"))
    assert r.code == 0 and "already a proctor store" in r.out

    target = tmp_path / "qs"
    r = run_cli("quickstart", str(target))
    assert r.code == 0, r.err
    assert "[1] Create a git repository" in r.out
    assert "refused:" in r.out  # the unsafe update is shown being refused
    assert "procedures/greet/v0.1.0" in r.out and "procedures/greet/v0.2.0" in r.out
    assert "parameter punctuation: str = '!'  (What ends the greeting.)" in r.out
    tags = git(target, "tag").split()
    assert tags == [f"procedures/greet/v0.{m}" for m in ("1.0", "2.0", "2.1", "2.2")]
    assert git(target, "status", "--porcelain") == ""
    assert git(target, "fsck", "--strict", "--no-dangling") == ""
    subjects = git(target, "log", "--format=%s").splitlines()
    proposal = json.loads(
        git(target, "show", "HEAD:" + git(target, "ls-files", "proposals").strip())
    )
    assert subjects == [
        "Update procedure greet",  # the proposal applied, with its new status
        "Propose: Update procedure greet",
        "Update proctor.toml",
        "Generate procedure slugify (confidence 0.95)",
        "Import 1 procedure (metadata only)",
        "Roll back procedure greet to v0.2.0",
        "Update procedure greet",
        "Update procedure greet",
        "Create procedure greet",
        "Initialise proctor store",
    ]

    # Proposed by the quickstart's actor, approved by another, applied in one commit.
    assert (proposal["status"], proposal["created_by"]) == ("applied", "quickstart@proctor")
    assert [(r["actor"], r["decision"]) for r in proposal["reviews"]] == [
        ("reviewer@proctor", "approve")
    ]
    meta = json.loads(git(target, "show", "HEAD:procedures/greet/metadata.json"))
    assert meta["description"] == "Greets anyone, politely"
    applied = git(target, "log", "-1", "--format=%B", "--grep=^Proctor-Proposal-Status: applied")
    assert applied.startswith("Update procedure greet\n")  # the edit and the status, one commit
    assert "applied: commit" in r.out and "proposed: proposal" in r.out

    again = run_cli("quickstart", str(target))
    assert again.code == 2 and "not empty" in again.err


def test_quickstart_without_directory_uses_a_new_temp_dir(tmp_path: Path) -> None:
    r = run_cli("quickstart", env={"TMPDIR": str(tmp_path)})
    assert r.code == 0, r.err
    made = [p for p in tmp_path.iterdir() if p.name.startswith("proctor-quickstart-")]
    assert len(made) == 1
    assert (made[0] / "procedures/greet/main.py").exists()


def test_help_lists_the_commands() -> None:
    r = run_cli("--help")
    assert r.code == 0
    for command in ("check", "init", "procedure", "action", "plugins", "quickstart"):
        assert f"  {command} " in r.out
    r = run_cli("procedure", "--help")
    for command in (
        "create",
        "update",
        "delete",
        "release",
        "rollback",
        "list",
        "show",
        "history",
        "diff",
    ):
        assert f"  {command} " in r.out


def test_usage_error_exit_2() -> None:
    r = run_cli("procedure", "release")
    assert r.code == 2
    assert "Missing argument 'NAME'" in r.err


def test_edit_in_place_then_update(store: Path) -> None:
    """The tour's workflow: edit the checked-out files, hand them to proctor."""
    code = store / "procedures/greet/main.py"
    meta_path = store / "procedures/greet/metadata.json"
    code.write_text(V2)
    meta = json.loads(meta_path.read_text())
    meta["parameters"].append({"name": "punct", "type": "str", "required": False, "default": "!"})
    meta_path.write_text(json.dumps(meta))  # formatted differently from what proctor writes
    r = run_cli(
        "--repo",
        str(store),
        "procedure",
        "update",
        "greet",
        "--code",
        str(code),
        "--metadata",
        str(meta_path),
    )
    assert r.code == 0, r.err
    assert git(store, "status", "--porcelain") == ""
    assert git(store, "show", "HEAD:procedures/greet/main.py") == V2
    # Edited again and handed over again: still nothing lost, so accepted.
    meta_path.write_text(meta_path.read_text().replace('"Greets"', '"Says hello"'))
    code.write_text(V2 + "# tweak\n")
    r = run_cli(
        "--repo",
        str(store),
        "procedure",
        "update",
        "greet",
        "--code",
        str(code),
        "--metadata",
        str(meta_path),
    )
    assert r.code == 0, r.err
    assert (
        json.loads(git(store, "show", "HEAD:procedures/greet/metadata.json"))["description"]
        == "Says hello"
    )
    # An edit that is not handed over is protected: the update stops, the edit stays.
    meta_path.write_text('{"edited": "but not handed over"}')
    r = run_cli("--repo", str(store), "procedure", "update", "greet", "--description", "x")
    assert r.code == 2 and "uncommitted changes in procedures/greet/metadata.json" in r.err
    assert meta_path.read_text() == '{"edited": "but not handed over"}'


def test_quickstart_on_a_machine_without_git_identity(tmp_path: Path) -> None:
    """A fresh machine has no user.name/user.email: the quickstart still works."""
    import os
    import subprocess

    from conftest import BIN

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(
        [str(BIN / "proctor"), "quickstart", str(tmp_path / "qs")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert git(tmp_path / "qs", "log", "-1", "--format=%an <%ae>").strip() == (
        "quickstart@proctor <quickstart@proctor>"
    )


def test_tables_on_a_terminal(store: Path) -> None:
    """On a TTY the reads print rich tables; piped, they print tab-separated lines."""
    import os
    import pty
    import subprocess

    from conftest import BIN, IDENTITY

    primary, secondary = pty.openpty()
    env = {**os.environ, **IDENTITY, "COLUMNS": "120", "TERM": "dumb"}
    proc = subprocess.Popen(
        [str(BIN / "proctor"), "--repo", str(store), "procedure", "list"],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            data = os.read(primary, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(primary)
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0
    assert "procedures" in screen and "description" in screen  # title and header
    assert "greet" in screen and "Greets" in screen
    assert "\t" not in screen
    piped = run_cli("--repo", str(store), "procedure", "list").out
    assert piped == "name\tcategory\tdescription\ngreet\tgeneral\tGreets\n"


# -- the Python API's one error path -------------------------------------------------------


def test_typed_errors_come_from_proctor_with_the_cli_exit_codes(
    tmp_path: Path, store: Path
) -> None:
    import proctor
    from proctor import (
        ConcurrencyError,
        ConfigError,
        DirtyWorkTreeError,
        NotARepositoryError,
        NotFoundError,
        PluginError,
        ProctorError,
        StoreError,
        UsageError,
        ValidationFailed,
        Workspace,
    )
    from proctor.core import errors

    expected = {
        UsageError: proctor.EXIT_USAGE,
        ConfigError: proctor.EXIT_USAGE,
        NotFoundError: proctor.EXIT_USAGE,
        NotARepositoryError: proctor.EXIT_USAGE,
        ValidationFailed: proctor.EXIT_USAGE,
        DirtyWorkTreeError: proctor.EXIT_USAGE,
        ConcurrencyError: proctor.EXIT_CONFLICT,
        StoreError: proctor.EXIT_FINDINGS,
        PluginError: proctor.EXIT_FINDINGS,
    }
    assert (proctor.EXIT_OK, proctor.EXIT_FINDINGS, proctor.EXIT_USAGE) == (0, 1, 2)
    assert proctor.EXIT_CONFLICT == 3
    for cls, code in expected.items():
        assert cls is getattr(errors, cls.__name__)  # the very classes the library raises
        assert issubclass(cls, ProctorError) and cls.exit_code == code, cls
        assert cls.__name__ in proctor.__all__

    # The exit code on the exception is the one the CLI exits with for the same mistake.
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    try:
        Workspace.open(outside)
    except ProctorError as exc:
        assert isinstance(exc, NotARepositoryError)
        api_code = exc.exit_code
    cli = run_cli("--repo", str(outside), "procedure", "list")
    assert cli.code == api_code == 2

    with Workspace.open(store) as ws:
        try:
            ws.get_procedure("nobody")
        except ProctorError as exc:
            assert isinstance(exc, NotFoundError)
            api_code = exc.exit_code
    cli = run_cli("--repo", str(store), "procedure", "show", "nobody")
    assert cli.code == api_code == 2 and "nobody" in cli.err


def test_every_public_workspace_method_says_what_it_raises() -> None:
    import inspect

    from proctor import Workspace

    members = [
        (name, member)
        for name, member in vars(Workspace).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, (classmethod, property)))
    ]
    members += [("engine", Workspace.__dict__["engine"])]
    assert {"open", "init", "execute", "history", "plugins", "engine"} <= {n for n, _ in members}
    for name, member in members:
        func = getattr(member, "__func__", None) or getattr(member, "fget", None) or member
        doc = inspect.getdoc(func) or ""
        assert "raise" in doc.lower(), f"Workspace.{name} does not say what it raises"
    execute = inspect.getdoc(Workspace.execute) or ""
    for outcome in ("applied", "proposed", "denied", "failed", "results", "exceptions"):
        assert outcome in execute, outcome


# -- dependencies ---------------------------------------------------------------------------


def test_runtime_imports_match_the_declared_dependencies() -> None:
    """Every third-party module proctor imports is a declared runtime dependency or
    belongs to the optional extra that enables it, and GitPython (a benchmark's
    contender) is not imported at all."""
    import ast
    import re
    import sys
    import tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]

    def names(deps: list[str]) -> set[str]:
        return {re.split(r"[<>=!~\[; ]", d, maxsplit=1)[0].lower() for d in deps}

    declared = {n.replace("-", "_") for n in names(project["dependencies"])}
    assert "gitpython" not in declared
    assert any(d.startswith("GitPython") for d in project["optional-dependencies"]["bench"])
    # Optional extras, imported lazily where they are used; plus the import names that
    # differ from a distribution's (litellm brings openai; the distribution's own seccomp
    # bindings are the fallback for pyseccomp).
    optional = {
        n.replace("-", "_") for e in project["optional-dependencies"].values() for n in names(e)
    }
    optional |= {"openai", "seccomp"}

    imported: set[str] = set()
    for path in (root / "proctor").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported if m not in sys.stdlib_module_names and m != "proctor"}
    assert third_party <= declared | optional | {"pydantic_core"}, third_party - declared
    assert not {"git", "gitdb"} & imported
    assert declared <= third_party, f"declared but never imported: {declared - third_party}"


def test_init_takes_its_folder_from_repo_and_refuses_two_different_ones(tmp_path: Path) -> None:
    """``proctor --repo A init`` makes A the store, not the current folder; ``--repo A
    init B`` names two folders and is refused (exit 2) before anything is made."""
    here, there, other = tmp_path / "here", tmp_path / "there", tmp_path / "other"
    here.mkdir()
    result = run_cli("--repo", str(there), "init", cwd=here)
    assert result.code == 0, result.err
    assert (there / "proctor.toml").is_file() and not (here / ".git").exists()
    refused = run_cli("--repo", str(there), "init", str(other), cwd=here)
    assert refused.code == 2 and "different folders" in refused.err
    assert not other.exists()
    same = run_cli("--repo", str(there), "init", str(there), cwd=here)
    assert same.code == 0 and "already a proctor store" in same.out
