"""The examples in the docs run as written."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest
from conftest import git

from proctor import Workspace
from proctor.core.errors import UsageError, ValidationFailed
from proctor.core.plugins import PluginInfo, PluginManager

DOCS = Path(__file__).resolve().parents[1] / "docs"
README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.fixture
def notes_manager() -> PluginManager:
    code = python_blocks((DOCS / "actions.md").read_text())[0]
    module = types.ModuleType("notes_plugin")
    exec(compile(code, "docs/actions.md", "exec"), module.__dict__)
    manager = PluginManager()
    manager.load_builtins(set())
    manager.register("notes", module, PluginInfo(name="notes", module="notes_plugin"))
    manager.check_pending()
    return manager


def test_actions_doc_example(repo: Path, notes_manager: PluginManager) -> None:
    with Workspace.open(repo, actor="ana@example.com", plugins=notes_manager) as ws:
        assert "note.add" in ws.actions()
        result = ws.execute("note.add", {"name": "standup", "text": "Ship it on Friday"})
        assert result.status == "applied"
        assert (repo / "notes/standup.md").read_text() == "# standup\n\nShip it on Friday\n"
        body = git(repo, "log", "-1", "--format=%B")
        assert body.startswith("Add note standup\n")
        assert "Proctor-Action: note.add" in body
        head = git(repo, "rev-parse", "HEAD")
        with pytest.raises(ValidationFailed, match="do not write the whole note in capitals"):
            ws.execute("note.add", {"name": "loud", "text": "SHIP IT"})
        with pytest.raises(ValidationFailed, match="tone must be one of"):
            ws.execute("note.add", {"name": "x", "text": "ok", "tone": "grumpy"})
        with pytest.raises(ValidationFailed, match="text is required"):
            ws.execute("note.add", {"name": "x", "text": ""})
        with pytest.raises(ValidationFailed, match="invalid params for note.add"):
            ws.execute("note.add", {"name": "x"})
        with pytest.raises(UsageError, match="already exists"):
            ws.execute("note.add", {"name": "standup", "text": "again"})
        assert git(repo, "rev-parse", "HEAD") == head


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    blocks = re.findall(r"```(?:console|sh|bash)\n(.*?)```", text, flags=re.DOTALL)
    assert "proctor quickstart" in blocks[0]
    assert "pytest" in blocks[1]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    test_line = [line for line in blocks[1].splitlines() if "pytest" in line][0]
    assert test_line.split("&&")[-1].strip() in ci


# -- the README as pasted ------------------------------------------------------------------


def readme_section(title: str) -> str:
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def console_commands(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ `` command of the console blocks (with its heredoc), and the lines shown
    as its output."""
    out: list[tuple[str, list[str]]] = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.DOTALL):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            line = lines[i]
            i += 1
            if not line.startswith("$ "):
                if line.strip():
                    out[-1][1].append(line)
                continue
            command = [line[2:]]
            while command[-1].endswith("\\"):
                command.append(lines[i])
                i += 1
            if "<<'EOF'" in command[0]:
                while lines[i] != "EOF":
                    command.append(lines[i])
                    i += 1
                command.append(lines[i])
                i += 1
            out.append(("\n".join(command), []))
    return out


def expected_pattern(line: str, replacements: dict[str, str]) -> re.Pattern[str]:
    """A README output line as a pattern: any commit id where it shows one, the real paths,
    and ``...`` at the end meaning the rest of the line is not shown."""
    prefix = line.endswith("...")
    text = line[:-3] if prefix else line
    pattern = re.escape(text)
    for shown, real in replacements.items():
        pattern = pattern.replace(re.escape(shown), re.escape(real))
    pattern = re.sub(r"\b[0-9a-f]{12}\b", "[0-9a-f]{12}", pattern)
    return re.compile("^" + pattern + (".*" if prefix else "$"))


def test_readme_tour_runs_as_pasted(tmp_path: Path) -> None:
    """Every command of the tour, in one fresh shell, on a machine with no git config;
    every output line the README shows is what the command prints."""
    import os
    import subprocess

    from conftest import BIN, IDENTITY

    commands = console_commands(readme_section("A five-minute tour"))
    assert len(commands) > 15
    assert not any("metadata.json" in c and ("$EDITOR" in c or "vi " in c) for c, _ in commands)
    script = []
    for i, (command, _) in enumerate(commands):
        script += [f"printf '@@cmd {i}\\n'", command, f"printf '@@rc {i} %d\\n' $?"]
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
        **IDENTITY,
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc"],
        input="\n".join(script) + "\n",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    outputs = re.split(r"^@@cmd \d+\n", done.stdout, flags=re.MULTILINE)[1:]
    assert len(outputs) == len(commands), done.stdout
    demo = tmp_path / "demo"
    for (command, shown), output in zip(commands, outputs):
        body, _, rc = output.rpartition("@@rc ")
        assert rc.split()[1] == "0", (command, body)
        actual = body.splitlines()
        at = 0
        for line in shown:
            pattern = expected_pattern(line, {"/home/ana/demo": str(demo)})
            while at < len(actual) and not pattern.match(actual[at]):
                at += 1
            assert at < len(actual), (command, line, body)
            at += 1
    assert git(demo, "status", "--porcelain") == "?? evil.py\n?? greet.py\n?? results.sarif\n"
    assert git(demo, "tag").split() == [
        "procedures/greet/v0.1.0",
        "procedures/greet/v0.2.0",
        "procedures/greet/v1.0.0",
    ]

    # The Python example runs in the same store afterwards.
    code = python_blocks(readme_section("A five-minute tour"))[0]
    ran = subprocess.run(
        [str(BIN / "python"), "-c", code],
        cwd=demo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith("applied ")


def readme_precommit_config() -> str:
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_readme_precommit_hooks_match_the_manifest() -> None:
    """The local hooks the README gives are the ones this repository ships."""
    import yaml

    config = yaml.safe_load(readme_precommit_config())
    (repo,) = config["repos"]
    assert repo["repo"] == "local" and "rev" not in repo
    manifest = yaml.safe_load((README.parent / ".pre-commit-hooks.yaml").read_text())
    shipped = {h["id"]: h for h in manifest}
    assert [h["id"] for h in repo["hooks"]] == list(shipped)
    for hook in repo["hooks"]:
        assert hook["language"] == "system"
        same = {
            k: v for k, v in shipped[hook["id"]].items() if k not in ("language", "description")
        }
        assert {k: v for k, v in hook.items() if k != "language"} == same


@pytest.mark.slow
def test_readme_precommit_config_works_when_pasted(tmp_path: Path) -> None:
    """Real pre-commit, the README's config as it is, the proctor of this environment."""
    import os
    import subprocess

    from conftest import BIN

    def project(name: str, files: dict[str, str]) -> Path:
        root = tmp_path / name
        for path, text in {**files, ".pre-commit-config.yaml": readme_precommit_config()}.items():
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text)
        git(root, "init", "-q")
        git(root, "add", ".")
        return root

    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "PRE_COMMIT_COLOR": "never",
    }

    def pre_commit(root: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "pre-commit"), "run", "--all-files", "--color", "never"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    clean = "def add(a: int, b: int) -> int:\n    return a + b\n"
    ok = pre_commit(project("clean", {"lib/add.py": clean, "procedures/add/main.py": clean}))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for name in ("proctor safety", "proctor log lint", "proctor procedures"):
        assert re.search(rf"^{name}\.+Passed$", ok.stdout, flags=re.MULTILINE), ok.stdout

    bad = pre_commit(
        project(
            "bad",
            {
                "lib/clean.py": "import os\n\n\ndef clean(p):\n    os.system('rm -rf ' + p)\n",
                "lib/log.py": "import logging\n\nlogging.warning('will retry')\n",
            },
        )
    )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(r"^proctor safety\.+Failed$", bad.stdout, flags=re.MULTILINE), bad.stdout
    assert re.search(r"^proctor log lint\.+Failed$", bad.stdout, flags=re.MULTILINE), bad.stdout
    assert "lib/clean.py:5:5: PS" in bad.stdout and "lib/log.py:3:" in bad.stdout
    assert re.search(
        r"^proctor procedures\.+\(no files to check\)Skipped$", bad.stdout, re.MULTILINE
    )


def fresh_copy(dest: Path) -> Path:
    """The project as a fresh clone of this tree would have it: tracked and new files,
    nothing ignored (no .venv, no caches)."""
    import shutil
    import subprocess

    root = README.parent
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = root / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.mark.slow
@pytest.mark.parametrize("which", ["install", "test"])
def test_readme_commands_in_a_fresh_shell(tmp_path: Path, which: str) -> None:
    """Each of the README's first two commands, pasted into a new shell on a new copy:
    no virtualenv active, only the system's python3 on PATH."""
    import os
    import subprocess

    from conftest import BIN, IDENTITY

    blocks = re.findall(r"```console\n(.*?)```", README.read_text(), flags=re.DOTALL)
    command = blocks[0 if which == "install" else 1].strip()
    project = fresh_copy(tmp_path / "clone")
    home = tmp_path / "home"
    home.mkdir()
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if Path(p) != BIN)
    env = {
        "PATH": path,
        "HOME": str(home),
        "TMPDIR": str(tmp_path),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        **IDENTITY,
    }
    if which == "test":
        # The command as pasted; only what pytest collects is narrowed, by its own variable:
        # to this file (collecting every test file costs each process ~10 s) and one test.
        env["PYTEST_ADDOPTS"] = (
            "-q -p no:cacheprovider -k test_readme_starts_with_the_two_commands tests/test_docs.py"
        )
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (project / ".venv" / "bin" / "python").exists()  # installed there, not globally
    if which == "install":
        assert "[1] Create a git repository" in done.stdout
        assert (project / ".venv" / "bin" / "proctor").exists()
    else:
        assert re.search(r"^1 passed", done.stdout, flags=re.MULTILINE), done.stdout
        assert (project / ".venv" / "bin" / "pytest").exists()


def test_governance_doc_example(repo: Path) -> None:
    """docs/governance.md's example: its last toml block committed as proctor.toml, then
    its python block run against the repository."""
    text = (DOCS / "governance.md").read_text()
    example = text[text.index("### Example") :]
    config = re.findall(r"```toml\n(.*?)```", example, flags=re.DOTALL)[0]
    (repo / "proctor.toml").write_text(config)
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-qm", "policy")
    [code] = python_blocks(example)
    exec(compile(code, "docs/governance.md", "exec"), {"repo": repo})
    log = git(repo, "log", "-1", "--format=%B")
    assert "Proctor-Proposal-Status: applied" in log and "Proctor-Actor: carol@example.com" in log
    # The rule examples parse, and the explain output shown is what the rules say.
    from proctor.core.config import parse_config_text
    from proctor.core.policy import PolicyRequest

    rules = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)[1]
    policy = parse_config_text(rules, "proctor.toml").governance  # type: ignore[union-attr]
    ruling = policy.evaluate(
        PolicyRequest("procedure.delete", "ana@example.com", ("billing_invoice",))
    )
    assert (ruling.rule, ruling.approvals, ruling.approvers) == (
        "policy.rules[0] finance reviews billing",
        2,
        ("role:finance",),
    )
    assert "rule: policy.rules[0] finance reviews billing" in text
    assert policy.evaluate(PolicyRequest("procedure.create", "x@bots.example")).reason == (
        "bots propose through the MCP server"
    )


def test_sync_doc_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/sync.md's python block, run in a clone whose remote is a bare repository on a
    path: the local proctor commit is published, with nothing in conflict."""
    bare = tmp_path / "store.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    ws, _ = Workspace.init(clone)
    with ws:
        ws.execute(
            "procedure.create", {"name": "greet", "code": "def run() -> str:\n    return 'hi'\n"}
        )
    [code] = python_blocks((DOCS / "sync.md").read_text())
    monkeypatch.chdir(clone)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/sync.md", "exec"), namespace)
    result, status = namespace["result"], namespace["status"]
    assert result.conflicts == [] and result.pushed  # type: ignore[attr-defined]
    assert (status.ahead, status.behind) == (0, 0)  # type: ignore[attr-defined]
    assert git(bare, "rev-parse", "main").strip() == git(clone, "rev-parse", "HEAD").strip()


def test_side_effects_doc_example(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/side-effects.md end to end: its ``[side-effects.chat]`` table (the URL pointed
    at a receiver on 127.0.0.1) is committed, a procedure is created, and the request
    that arrives passes the doc's own ``verify`` and carries the doc's body keys and
    headers; a changed body does not pass."""
    import json

    from effects_receiver import Receiver

    text = (DOCS / "side-effects.md").read_text()
    config = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)[0]
    [shown_body] = re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL)
    [code] = python_blocks(text)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/side-effects.md", "exec"), namespace)
    verify = namespace["verify"]
    monkeypatch.setenv("PROCTOR_CHAT_SECRET", "doc-secret")
    with Receiver() as receiver:
        toml = config.replace("https://hooks.example.com/proctor", receiver.url)
        assert toml != config
        (repo / "proctor.toml").write_text(toml)
        git(repo, "add", "proctor.toml")
        git(repo, "commit", "-qm", "effects")
        with Workspace.open(repo, actor="ana@example.com") as ws:
            result = ws.execute(
                "procedure.create", {"name": "greet", "code": "def run():\n    return 1\n"}
            )
    assert result.side_effects == {"chat": "delivered", "log": "delivered"}
    [request] = receiver.requests
    assert verify(b"doc-secret", request.headers, request.body)  # type: ignore[operator]
    assert not verify(b"doc-secret", request.headers, request.body + b" ")  # type: ignore[operator]
    body = json.loads(request.body)
    keys = re.findall(r'"(\w+)":', shown_body)
    assert sorted(body) == sorted(keys)
    assert body["effect"] == "chat" and body["idempotency_key"] == f"{result.commit}:chat"
    headers = re.findall(r"^\| `([A-Z][\w-]+)` \|", text, flags=re.MULTILINE)
    assert len(headers) == 5 and all(h in request.headers for h in headers), headers
    assert request.headers["Proctor-Event"] == "action.applied"
