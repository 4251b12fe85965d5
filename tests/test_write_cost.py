"""What one write loads: the parts a write that wins its first try never needs stay out.

Each check runs in a fresh interpreter (``sys.modules`` of the test process holds
whatever earlier tests imported), against a real repository.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

IDENTITY = {
    "GIT_AUTHOR_NAME": "Cost Test",
    "GIT_AUTHOR_EMAIL": "cost@example.com",
    "GIT_COMMITTER_NAME": "Cost Test",
    "GIT_COMMITTER_EMAIL": "cost@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}

# Writes to a bare repository whose main another writer (plain objects and
# ``git update-ref``, not proctor) moves inside ``build`` on the first ``lose`` tries.
WRITER = textwrap.dedent(
    """
    import json, subprocess, sys
    from proctor.core.errors import ConcurrencyError
    from proctor.store import Change, GitStore, format_ident

    repo, lose, max_attempts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ref = "refs/heads/main"
    author = format_ident("Cost Test", "cost@example.com")
    before = "tenacity" in sys.modules
    with GitStore(repo) as mine, GitStore(repo) as other:
        calls = [0]

        def build(tip):
            calls[0] += 1
            if calls[0] <= lose:
                old = other.read_ref(ref)
                tree = other.apply_edits(
                    other.commit_tree(old), {f"o{calls[0]}.txt": b"x\\n"}
                )
                new = other.write_commit(tree, [old], "other\\n", author, author)
                subprocess.run(["git", "update-ref", ref, new, old], cwd=repo, check=True)
            return Change(edits={"a.txt": f"mine {calls[0]}\\n".encode()}, message="mine")

        out = {"before": before, "builds": 0}
        try:
            result = mine.write(ref, build, author=author, max_attempts=max_attempts)
            out.update(attempts=result.attempts, backoff=result.backoff, exhausted=False)
        except ConcurrencyError as exc:
            out.update(attempts=exc.attempts, backoff=exc.backoff, exhausted=exc.exhausted)
        out["builds"] = calls[0]
        out["tenacity"] = "tenacity" in sys.modules
    print(json.dumps(out))
    """
)


def _repo(tmp_path: Path) -> Path:
    path = tmp_path / "bare.git"
    env = {**os.environ, **IDENTITY}
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True, env=env)
    script = textwrap.dedent(
        """
        import sys
        from proctor.store import Change, GitStore, format_ident
        author = format_ident("Cost Test", "cost@example.com")
        with GitStore(sys.argv[1]) as s:
            s.write("refs/heads/main", lambda _t: Change(edits={"a.txt": b"a0\\n"},
                    message="base"), author=author)
        """
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, env=env)
    return path


def _write(repo: Path, lose: int, max_attempts: int = 8) -> dict[str, object]:
    env = {**os.environ, **IDENTITY}
    proc = subprocess.run(
        [sys.executable, "-c", WRITER, str(repo), str(lose), str(max_attempts)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def test_a_write_won_on_its_first_try_never_imports_the_retry_loop(tmp_path: Path) -> None:
    out = _write(_repo(tmp_path), lose=0)
    assert out == {
        "before": False,
        "builds": 1,
        "attempts": 1,
        "backoff": 0.0,
        "exhausted": False,
        "tenacity": False,
    }


def test_a_lost_first_try_is_retried_after_a_backoff(tmp_path: Path) -> None:
    out = _write(_repo(tmp_path), lose=1)
    assert out["tenacity"] is True
    assert out["attempts"] == 2 and out["builds"] == 2 and out["exhausted"] is False
    # One wait, drawn from the first step of the jittered exponential backoff (<= 5 ms).
    assert isinstance(out["backoff"], float) and 0.0 < out["backoff"] <= 0.005


def test_the_attempts_stay_bounded_counting_the_first_try(tmp_path: Path) -> None:
    out = _write(_repo(tmp_path), lose=10, max_attempts=3)
    assert out["attempts"] == 3 and out["builds"] == 3 and out["exhausted"] is True
    # Two waits: the first two steps of the backoff (5 ms, then 10 ms at most).
    assert isinstance(out["backoff"], float) and 0.0 < out["backoff"] <= 0.015


def test_one_try_allowed_and_lost_is_exhausted_without_a_wait(tmp_path: Path) -> None:
    out = _write(_repo(tmp_path), lose=1, max_attempts=1)
    assert out["attempts"] == 1 and out["builds"] == 1 and out["exhausted"] is True
    assert out["backoff"] == 0.0


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **IDENTITY}
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _symbolic_ref(cwd: Path) -> str | None:
    proc = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=cwd, capture_output=True)
    return proc.stdout.decode().strip() if proc.returncode == 0 else None


def test_head_is_read_from_its_file_as_git_symbolic_ref_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unborn, on a branch, in a linked work tree, detached: the store's answer is git's,
    read without starting git (no ``git`` on PATH while it reads)."""
    from proctor.store import GitStore

    main = tmp_path / "main"
    _git(tmp_path, "init", "-q", "-b", "trunk", str(main))
    seen: list[tuple[str | None, str | None]] = []

    def check(path: Path) -> None:
        with GitStore(path) as store:
            expected = _symbolic_ref(path)
            with monkeypatch.context() as m:
                m.setenv("PATH", str(tmp_path / "no-git-here"))
                got = store.head_ref()
            seen.append((got, expected))

    check(main)
    (main / "f.txt").write_text("f\n")
    _git(main, "add", "f.txt")
    _git(main, "commit", "-q", "-m", "one")
    check(main)
    linked = tmp_path / "linked"
    _git(main, "worktree", "add", "-q", "-b", "side", str(linked))
    check(linked)
    _git(main, "checkout", "-q", "--detach")
    check(main)
    assert seen == [
        ("refs/heads/trunk", "refs/heads/trunk"),
        ("refs/heads/trunk", "refs/heads/trunk"),
        ("refs/heads/side", "refs/heads/side"),
        (None, None),
    ]


def test_a_head_file_in_no_plain_form_is_asked_of_git(tmp_path: Path) -> None:
    """A HEAD that is neither ``ref: refs/...`` nor an object id: git answers."""
    from proctor.store import GitStore

    main = tmp_path / "main"
    _git(tmp_path, "init", "-q", "-b", "trunk", str(main))
    head = main / ".git" / "HEAD"
    head.write_text("ref: refs/heads/.invalid\n")  # what a reftable repository holds
    with GitStore(main) as store:
        assert store.head_ref() == _symbolic_ref(main)
    head.write_text("ref: refs/heads/trunk\n")  # a whole repository again, for fsck


LOADED = """
import json, sys
from proctor.cli import main
rc = main(["--repo", sys.argv[1], "procedure", "update", "greet", "--code", sys.argv[2]])
print(json.dumps([rc, "proctor.plugins.side_effects.outbox" in sys.modules]))
"""


def test_a_write_with_no_side_effect_configured_never_loads_the_outbox(tmp_path: Path) -> None:
    """No ``[side-effects.*]`` table and no outbox file: the write asks whether the file
    exists and loads nothing more; once an outbox exists, the write opens it."""
    from conftest import add_greet, init_repo, python_json

    repo = add_greet(init_repo(tmp_path / "repo"))
    code = tmp_path / "new.py"
    env = {**os.environ, **IDENTITY}

    def write(greeting: str) -> list[object]:
        code.write_text(f'def run(name: str) -> str:\n    return "{greeting} " + name\n')
        out: list[object] = python_json(LOADED, str(repo), str(code), env=env)
        return out

    outbox = repo / ".git" / "proctor" / "outbox.sqlite"
    assert write("hi") == [0, False]
    assert not outbox.exists()
    from proctor.plugins.side_effects.outbox import Outbox

    Outbox(str(repo / ".git")).prepare(
        effect="log",
        kind="action.applied",
        correlation_id="c1",
        ref="",
        base=None,
        payload={},
        settings={},
    )
    assert outbox.exists()
    assert write("hey") == [0, True]


def test_a_cli_write_lists_work_trees_only_when_there_are_linked_ones(tmp_path: Path) -> None:
    """In the main work tree of a repository with no linked work tree, that work tree is
    the whole list: the write starts no ``git worktree list``. Once one is added, the
    write asks git, and the branch checked out there is still found."""
    from conftest import add_greet, init_repo

    repo = add_greet(init_repo(tmp_path / "repo"))
    code = tmp_path / "new.py"
    trace = tmp_path / "trace.txt"
    env = {**os.environ, **IDENTITY, "GIT_TRACE": str(trace)}

    def write(cwd: Path, greeting: str) -> str:
        code.write_text(f'def run(name: str) -> str:\n    return "{greeting} " + name\n')
        trace.write_text("")
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "proctor"), "procedure", "update", "greet"]
            + ["--code", str(code)],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return trace.read_text()

    assert "worktree" not in write(repo, "hi")
    linked = tmp_path / "linked"
    _git(repo, "worktree", "add", "-q", "-b", "side", str(linked))
    assert "git worktree list" in write(linked, "hey")
    assert "hey " in (linked / "procedures" / "greet" / "main.py").read_text()
    assert _git(linked, "status", "--porcelain") == ""


def test_a_write_in_a_shared_repository_reads_the_setting_once(tmp_path: Path) -> None:
    """The state files of a shared repository are made with its setting, which the store
    read at open in its one ``git config``: sharing them starts no git process more."""
    from conftest import GREET

    repo = tmp_path / "repo"
    _git(tmp_path, "init", "-q", "-b", "main", "--shared=group", str(repo))
    code = tmp_path / "greet.py"
    trace = tmp_path / "trace.txt"
    env = {**os.environ, **IDENTITY, "GIT_TRACE": str(trace)}
    configs = []
    for args in (["create", "greet"], ["update", "greet", "--description", "Greets."]):
        code.write_text(GREET.replace("hello", f"hello {len(configs)}"))
        trace.write_text("")
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "proctor"), "procedure", *args]
            + ["--code", str(code)],
            cwd=repo, env=env, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        configs.append(trace.read_text().count("built-in: git config"))
    assert configs == [1, 1]
    assert (repo / ".git" / "proctor").stat().st_mode & 0o2070 == 0o2070


def test_a_write_parses_its_code_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The signature of ``run()`` and the code checks read one parse of the code a write
    commits; the checks still see that code (unsafe code is still refused)."""
    import ast

    from conftest import add_greet, init_repo

    from proctor import Workspace
    from proctor.core.errors import ValidationFailed

    repo = add_greet(init_repo(tmp_path / "repo"))
    parsed: list[str] = []
    real_parse = ast.parse

    def counting(source: Any, *args: Any, **kw: Any) -> Any:
        parsed.append(source if isinstance(source, str) else "")
        return real_parse(source, *args, **kw)

    monkeypatch.setattr(ast, "parse", counting)
    code = 'def run(name: str) -> str:\n    return "hey " + name\n'
    with Workspace.open(repo, actor="ana@example.com") as ws:
        result = ws.execute("procedure.update", {"name": "greet", "code": code})
        assert result.status == "applied"
        assert parsed.count(code) == 1
        unsafe = "import os\n\ndef run(name: str) -> str:\n    return os.popen(name).read()\n"
        with pytest.raises(ValidationFailed, match="PS"):
            ws.execute("procedure.update", {"name": "greet", "code": unsafe})
        assert parsed.count(unsafe) == 1


def test_a_write_walks_to_each_folder_it_touches_once(tmp_path: Path) -> None:
    """An update of main.py and metadata.json reads, backs up and replaces both files in
    one folder; each folder on the way is opened once (without following links) and its
    descriptor is closed when the write ends."""
    from conftest import add_greet, init_repo

    repo = add_greet(init_repo(tmp_path / "repo"))
    script = textwrap.dedent(
        """
        import json, os, sys
        from proctor import Workspace

        opened = []
        counting = [False]

        def hook(event, args):
            if counting[0] and event == "open" and isinstance(args[0], str):
                opened.append(args[0])

        sys.addaudithook(hook)
        def update(word):
            code = f"def run(name: str) -> str:\\n    return {word!r} + name\\n"
            return ws.execute(
                "procedure.update",
                {"name": "greet", "code": code, "description": f"Says {word}"},
            )

        with Workspace.open(sys.argv[1], actor="ana@example.com") as ws:
            update("hi ")  # starts the store's long-lived git processes
            fds = len(os.listdir("/proc/self/fd"))
            counting[0] = True
            result = update("ho ")
            counting[0] = False
            print(json.dumps({
                "status": result.status,
                "procedures": opened.count("procedures"),
                "greet": opened.count("greet"),
                "leaked": len(os.listdir("/proc/self/fd")) - fds,
            }))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(repo)],
        capture_output=True,
        text=True,
        env={**os.environ, **IDENTITY},
        check=True,
    )
    out = json.loads(proc.stdout)
    assert out == {"status": "applied", "procedures": 1, "greet": 1, "leaked": 0}, out
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
