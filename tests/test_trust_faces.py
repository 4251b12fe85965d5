"""Trust through the faces: every case here runs the real ``proctor`` console script (or
``proctor.Workspace``) over real git repositories, the way a user or an attacker would.

Identity: commits carry git's identity, never the actor's; the actor is one trailer value.
Outcomes: once the ref moved a write is applied, and what did not follow is a warning
naming the repair; the next command finishes an interrupted sync. Inputs: only regular
files, their size asked before reading; ``GIT_DIR`` never redirects a write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    BIN,
    GREET,
    IDENTITY,
    Run,
    copy_repo,
    fixture_environment,
    git,
    repo_state,
    write_file,
)

#: Variables that would hand proctor an identity or another repository.
IDENTITY_ENV = (
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
    "EMAIL",
    "PROCTOR_ACTOR",
)


def bare_env(home: Path, **extra: str) -> dict[str, str]:
    """No git identity anywhere: an empty HOME, no system config, no GIT_AUTHOR_*."""
    env = {k: v for k, v in os.environ.items() if k not in IDENTITY_ENV and k != "GIT_DIR"}
    home.mkdir(exist_ok=True)
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", XDG_CONFIG_HOME=str(home / ".config"))
    env.update(extra)
    return env


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Run:
    """The installed console script as a subprocess, in exactly ``env`` (default: the
    test identity); a timeout, so a hang is a failure and not a stuck suite."""
    full = env if env is not None else {**os.environ, **IDENTITY}
    proc = subprocess.run(
        [str(BIN / "proctor"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full,
        timeout=60,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def one_error(result: Run, code: int, *needles: str) -> None:
    """The documented exit code, exactly one ``error:`` line, no traceback."""
    assert result.code == code, (result.code, result.out, result.err)
    errors = [line for line in result.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.err
    assert "Traceback" not in result.err + result.out
    for needle in needles:
        assert needle in result.err, (needle, result.err)


def make_store(repo: Path) -> Path:
    """``repo`` with proctor.toml and ``greet``, written through the CLI."""
    assert cli("init", str(repo)).code == 0
    code = write_file(repo.parent / "greet_src.py", GREET)
    result = cli("--repo", str(repo), "procedure", "create", "greet", "--code", str(code))
    assert result.code == 0, result.err
    return repo


@pytest.fixture(scope="module")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store built through the CLI for the whole module (on a repository made as the
    ``repo`` fixture makes it); each test gets its own copy of it."""
    repo = tmp_path_factory.mktemp("trust-faces") / "repo"
    repo.mkdir()
    with fixture_environment():
        git(repo, "init", "-q", "-b", "main")
        return make_store(repo)


@pytest.fixture
def store(tmp_path: Path, store_template: Path) -> Path:
    """A fresh copy of the template store at ``tmp_path / "repo"``, with the source file
    ``make_store`` wrote beside it: the test may change it at will."""
    shutil.copy2(store_template.parent / "greet_src.py", tmp_path / "greet_src.py")
    return copy_repo(store_template, tmp_path / "repo")


def trailers_of(repo: Path, rev: str) -> list[str]:
    out = git(repo, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return [line for line in out.splitlines() if line]


def headers_of(repo: Path, rev: str) -> list[str]:
    raw = git(repo, "cat-file", "-p", rev)
    return [line.split(" ", 1)[0] for line in raw.split("\n\n", 1)[0].splitlines()]


# -- identity ------------------------------------------------------------------------------


def git_commit_refuses(repo: Path, env: dict[str, str]) -> bool:
    """Whether ``git commit`` itself refuses for lack of an identity in ``env``."""
    probe = subprocess.run(
        ["git", "commit", "--allow-empty", "--dry-run", "-q", "-m", "probe"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=env,
    )
    var = subprocess.run(
        ["git", "var", "GIT_AUTHOR_IDENT"], cwd=repo, capture_output=True, text=True, env=env
    )
    return var.returncode != 0 or "unable to auto-detect" in probe.stderr


def test_no_identity_refused_as_git_commit_refuses(repo: Path, tmp_path: Path) -> None:
    """Nothing configured: proctor writes exactly when git would, with git's author."""
    env = bare_env(tmp_path / "home")
    before = repo_state(repo)
    result = cli("init", str(repo), env=env)
    if git_commit_refuses(repo, env):
        one_error(result, 2, "git config user.email", "not an identity")
        assert repo_state(repo) == before
    else:  # git guesses an identity on this machine: so does proctor, the same one
        assert result.code == 0, result.err
        guessed = subprocess.run(
            ["git", "var", "GIT_AUTHOR_IDENT"], cwd=repo, capture_output=True, text=True, env=env
        ).stdout
        assert git(repo, "log", "-1", "--format=%an <%ae>") in guessed


def test_init_without_identity_leaves_no_repository_behind(tmp_path: Path) -> None:
    """``proctor init NEWDIR`` with no identity (git told not to guess) refuses as a
    write does, and leaves neither the folders it made nor the repository it began; in
    a folder of the user's, their files stay and no ``.git`` is left."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tuseConfigOnly = true\n")
    env = bare_env(home)
    result = cli("init", str(tmp_path / "new" / "demo"), env=env)
    one_error(result, 2, "git config user.email")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    one_error(cli("init", str(mine), env=env), 2, "git config user.email")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert (mine / "notes.txt").read_text() == "keep me\n"


@pytest.mark.parametrize("actor", ["ana <ana@x.org>", "ana@x.org"])
def test_actor_alone_is_not_an_identity(repo: Path, tmp_path: Path, actor: str) -> None:
    """With ``user.useConfigOnly`` (git refuses to guess), an actor does not stand in for
    the identity: refused with the fix, and the repository untouched."""
    git(repo, "config", "user.useConfigOnly", "true")
    env = bare_env(tmp_path / "home")
    before = repo_state(repo)
    result = cli("--actor", actor, "init", str(repo), env=env)
    one_error(result, 2, "git config user.email", 'git config user.name "Your Name"')
    assert "not an identity" in result.err
    assert repo_state(repo) == before
    env_actor = cli("init", str(repo), env={**env, "PROCTOR_ACTOR": actor})
    one_error(env_actor, 2, "git config user.email")
    assert repo_state(repo) == before


def test_commit_identity_is_gits_and_the_actor_a_trailer(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "user.name", "Ana Lima")
    git(repo, "config", "user.email", "ana@example.org")
    env = bare_env(tmp_path / "home")
    result = cli("--actor", "bot <bot@x.org>", "init", str(repo), env=env)
    assert result.code == 0, result.err
    assert git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>").strip() == (
        "Ana Lima <ana@example.org>|Ana Lima <ana@example.org>"
    )
    assert "Proctor-Actor: bot <bot@x.org>" in trailers_of(repo, "HEAD")
    # No actor given: git's email is the actor.
    code = write_file(tmp_path / "g.py", GREET)
    assert (
        cli("--repo", str(repo), "procedure", "create", "g", "--code", str(code), env=env).code == 0
    )
    assert "Proctor-Actor: ana@example.org" in trailers_of(repo, "HEAD")


def test_identity_in_config_that_would_break_a_header_is_refused(
    repo: Path, tmp_path: Path
) -> None:
    git(repo, "config", "user.name", "Ana <evil>")
    git(repo, "config", "user.email", "ana@example.org")
    before = repo_state(repo)
    one_error(cli("init", str(repo), env=bare_env(tmp_path / "home")), 2, "user.name")
    assert repo_state(repo) == before


BAD_ACTORS = [
    "ana\nSigned-off-by: evil <e@x>",
    "ana\rcommitter evil <e@x> 0 +0000",
    "ana\tx",
    "a" * 300,
    "",
    " padded ",
    "nul\x01ctl",
]


@pytest.mark.parametrize("actor", BAD_ACTORS, ids=range(len(BAD_ACTORS)))
@pytest.mark.parametrize("via", ["--actor", "PROCTOR_ACTOR"])
def test_actor_is_one_printable_bounded_line(store: Path, actor: str, via: str) -> None:
    before = repo_state(store)
    env = {**os.environ, **IDENTITY}
    words = ["--repo", str(store)]
    if via == "--actor":
        words += ["--actor", actor]
    else:
        env["PROCTOR_ACTOR"] = actor
        if not actor:
            pytest.skip("an empty PROCTOR_ACTOR means no actor given")
    for command in (["procedure", "update", "greet", "--description", "x"], ["procedure", "list"]):
        one_error(cli(*words, *command, env=env), 2, "actor", via)
        assert repo_state(store) == before


def test_user_values_add_no_header_and_no_trailer(store: Path, tmp_path: Path) -> None:
    """Descriptions, messages, metadata and params with newlines and trailer lines: every
    commit and tag proctor writes keeps exactly its own headers and trailers."""
    forged = "x\n\nSigned-off-by: evil <e@x>\nProctor-Policy: DENY\ncommitter evil <e@x> 0 +0000"
    repo = store
    assert (
        cli("--repo", str(repo), "procedure", "update", "greet", "--description", forged).code == 0
    )
    meta = write_file(
        tmp_path / "meta.json", json.dumps({"description": forged, "owners": [forged]})
    )
    assert (
        cli("--repo", str(repo), "procedure", "update", "greet", "--metadata", str(meta)).code == 0
    )
    assert cli("--repo", str(repo), "procedure", "release", "greet", "-m", forged).code == 0
    assert (
        cli(
            "--repo",
            str(repo),
            "action",
            "run",
            "procedure.update",
            "-p",
            "name=greet",
            "-p",
            "description=" + json.dumps(forged + " 2"),
        ).code
        == 0
    )
    own = {
        "Proctor-Action",
        "Proctor-Actor",
        "Proctor-Correlation-Id",
        "Proctor-Policy",
        "Proctor-Policy-Commit",
        "Proctor-Policy-Rule",
    }
    for rev in git(repo, "rev-list", "HEAD").split():
        assert headers_of(repo, rev) in (
            ["tree", "parent", "author", "committer"],
            ["tree", "author", "committer"],
        )
        keys = {line.split(":", 1)[0] for line in trailers_of(repo, rev)}
        assert {"Proctor-Action", "Proctor-Actor"} <= keys <= own, (rev, trailers_of(repo, rev))
    tag = git(repo, "for-each-ref", "--format=%(refname)", "refs/tags").split()[0]
    tag_raw = git(repo, "cat-file", "tag", tag)
    assert [ln.split(" ")[0] for ln in tag_raw.split("\n\n")[0].splitlines()] == [
        "object",
        "type",
        "tag",
        "tagger",
    ]
    tag_trailers = subprocess.run(
        ["git", "interpret-trailers", "--parse"],
        input=tag_raw.split("\n\n", 1)[1],
        capture_output=True,
        text=True,
    ).stdout
    keys = {line.split(":", 1)[0] for line in tag_trailers.splitlines() if line}
    assert "Signed-off-by" not in keys and keys <= own | {"Proctor-Release"}


# -- honest outcomes -----------------------------------------------------------------------

#: At "committed" (the ref moved) put a folder where the write's backup of main.py is,
#: so dropping the backup (the last step of the sync) fails for real.
BLOCK_CLEANUP_HOOK = """#!/bin/sh
if [ "$1" = committed ]; then
  for f in procedures/*/.main.py.proctor-old; do
    [ -e "$f" ] || continue
    rm -f "$f"; mkdir "$f"; : > "$f/keep"
  done
fi
exit 0
"""

KILL_HOOK = """#!/bin/sh
# SIGKILL proctor (the parent of this git update-ref) the instant the ref moved.
if [ "$1" = committed ]; then kill -9 "$(ps -o ppid= -p "$PPID" | tr -d ' ')"; sleep 1; fi
exit 0
"""


def install_hook(repo: Path, text: str) -> Path:
    hook = repo / ".git/hooks/reference-transaction"
    hook.write_text(text)
    hook.chmod(0o755)
    return hook


def updated_code(tmp_path: Path) -> Path:
    return write_file(tmp_path / "new.py", 'def run(name: str) -> str:\n    return "hi " + name\n')


@pytest.mark.parametrize("as_json", [False, True])
def test_sync_failing_after_the_ref_moved_is_applied_with_a_warning(
    store: Path, tmp_path: Path, as_json: bool
) -> None:
    repo = store
    hook = install_hook(repo, BLOCK_CLEANUP_HOOK)
    code = updated_code(tmp_path)
    words = ["--repo", str(repo), "procedure", "update", "greet", "--code", str(code)]
    result = cli(*words, *(["--json"] if as_json else []))
    hook.unlink()
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    tip = git(repo, "rev-parse", "HEAD").strip()
    assert git(repo, "show", "HEAD:procedures/greet/main.py") == code.read_text()
    if as_json:
        data = json.loads(result.out)
        assert data["status"] == "applied" and data["commit"] == tip
        assert any("proctor status" in w for w in data["warnings"]), data
    else:
        assert f"applied: commit {tip[:12]}" in result.out
        warnings = [ln for ln in result.err.splitlines() if ln.startswith("warning:")]
        assert warnings and "proctor status" in warnings[0], result.err
        assert "error:" not in result.err
    # The repair it names: with the obstacle gone, the next command finishes the sync.
    blocked = repo / "procedures/greet/.main.py.proctor-old"
    still = cli("--repo", str(repo), "status", "--json")
    assert still.code == 0 and json.loads(still.out)["in_sync"] is False, still.out
    (blocked / "keep").unlink()
    blocked.rmdir()
    done = cli("--repo", str(repo), "status", "--json")
    assert done.code == 0, done.err
    report = json.loads(done.out)
    assert report["in_sync"] is True and report["journal"] is None, report
    assert not (repo / ".git/index.lock").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


@pytest.mark.parametrize("next_command", [["procedure", "list"], ["status"]])
def test_killed_write_is_finished_by_the_next_command(
    store: Path, tmp_path: Path, next_command: list[str]
) -> None:
    """A proctor killed the instant its ref moved: git refuses to commit (the index lock
    is held), and the next proctor command, a read, finishes the sync."""
    repo = store
    hook = install_hook(repo, KILL_HOOK)
    code = updated_code(tmp_path)
    killed = cli("--repo", str(repo), "procedure", "update", "greet", "--code", str(code))
    hook.unlink()
    assert killed.code == -9, (killed.code, killed.err)
    assert git(repo, "show", "HEAD:procedures/greet/main.py") == code.read_text()
    assert (repo / ".git/index.lock").exists()
    user = subprocess.run(["git", "commit", "-qam", "user"], cwd=repo, capture_output=True)
    assert user.returncode != 0
    result = cli("--repo", str(repo), *next_command)
    assert result.code == 0, result.err
    assert not (repo / ".git/index.lock").exists()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert (repo / "procedures/greet/main.py").read_text() == code.read_text()


def test_killed_write_is_finished_on_workspace_open(store: Path, tmp_path: Path) -> None:
    from proctor import Workspace

    repo = store
    hook = install_hook(repo, KILL_HOOK)
    killed = cli(
        "--repo", str(repo), "procedure", "update", "greet", "--code", str(updated_code(tmp_path))
    )
    hook.unlink()
    assert killed.code == -9
    with Workspace.open(repo) as ws:
        assert ws.recovery is not None and ws.recovery.fixed == ["procedures/greet/main.py"]
        assert ws.status().in_sync is True
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def journal_file(repo: Path, ref: str = "refs/heads/main") -> Path:
    digest = hashlib.sha1(ref.encode()).hexdigest()[:16]
    return repo / ".git/proctor" / f"sync-{digest}.json"


def test_unreadable_journal_is_reported_not_deleted(store: Path) -> None:
    repo = store
    path = journal_file(repo)
    path.write_text("{not json")
    before = repo_state(repo)
    read = cli("--repo", str(repo), "procedure", "list")
    assert read.code == 0, read.err
    assert any(ln.startswith("warning:") and str(path) in ln for ln in read.err.splitlines()), (
        read.err
    )
    status = cli("--repo", str(repo), "status", "--json")
    assert status.code == 0 and str(path) in json.loads(status.out)["journal"]
    write = cli("--repo", str(repo), "procedure", "update", "greet", "--description", "x")
    one_error(write, 1, str(path))
    assert path.read_text() == "{not json"
    assert repo_state(repo) == before


# -- the file system -----------------------------------------------------------------------


@pytest.fixture
def specials(tmp_path: Path) -> dict[str, str]:
    fifo = tmp_path / "fifo.py"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.py"
    folder.mkdir()
    return {"device": "/dev/zero", "FIFO": str(fifo), "directory": str(folder)}


@pytest.mark.parametrize("kind", ["device", "FIFO", "directory"])
@pytest.mark.parametrize(
    "words",
    [
        ["procedure", "create", "x", "--code", "{}"],
        ["procedure", "update", "greet", "--code", "{}"],
        ["procedure", "update", "greet", "--metadata", "{}"],
        ["action", "run", "procedure.update", "-p", "name=greet", "-p", "code=@{}"],
    ],
    ids=["create-code", "update-code", "update-metadata", "param-file"],
)
def test_inputs_must_be_regular_files(
    store: Path, specials: dict[str, str], kind: str, words: list[str]
) -> None:
    before = repo_state(store)
    args = [w.replace("{}", specials[kind]) for w in words]
    result = cli("--repo", str(store), *args)  # a FIFO that hung would hit the timeout
    one_error(result, 2, specials[kind])
    assert kind.lower() in result.err.lower()
    assert repo_state(store) == before


@pytest.mark.parametrize("kind", ["device", "FIFO"])
def test_check_refuses_special_files(store: Path, specials: dict[str, str], kind: str) -> None:
    result = cli("check", specials[kind], cwd=store)
    one_error(result, 2, specials[kind])


def test_oversized_input_refused_before_reading(store: Path, tmp_path: Path) -> None:
    """Size in bytes, asked before reading: a sparse 5 GB file costs nothing to refuse."""
    big = tmp_path / "big.py"
    with open(big, "wb") as fh:
        fh.truncate(5 * 1024**3)
    before = repo_state(store)
    result = cli("--repo", str(store), "procedure", "update", "greet", "--code", str(big))
    one_error(result, 2, "bytes")
    assert repo_state(store) == before


def test_repo_wins_over_git_dir(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    git(other, "commit", "-q", "--allow-empty", "-m", "other")
    before_other = repo_state(other)
    env = {
        **os.environ,
        **IDENTITY,
        "GIT_DIR": str(other / ".git"),
        "GIT_WORK_TREE": str(other),
        "GIT_INDEX_FILE": str(other / ".git/index"),
    }
    result = cli(
        "--repo", str(store), "procedure", "update", "greet", "--description", "x", env=env
    )
    assert result.code == 0, result.err
    assert "x" in git(store, "show", "HEAD:procedures/greet/metadata.json")
    assert git(store, "status", "--porcelain", "--untracked-files=all") == ""
    assert repo_state(other) == before_other


def test_git_dir_disagreeing_with_the_cwd_is_refused(store: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    before = (repo_state(store), repo_state(other))
    env = {**os.environ, **IDENTITY, "GIT_DIR": str(other / ".git")}
    result = cli("procedure", "update", "greet", "--description", "x", cwd=store, env=env)
    one_error(result, 2, "GIT_DIR", "--repo")
    assert (repo_state(store), repo_state(other)) == before
    # GIT_DIR naming the repository around the cwd (as in a hook) is fine.
    same = {**os.environ, **IDENTITY, "GIT_DIR": ".git", "GIT_INDEX_FILE": "/nonexistent/index"}
    ok = cli("procedure", "update", "greet", "--description", "y", cwd=store, env=same)
    assert ok.code == 0, ok.err
    assert git(store, "status", "--porcelain", "--untracked-files=all") == ""


# -- smaller ones --------------------------------------------------------------------------


def test_executable_main_py_keeps_its_mode_on_update(store: Path, tmp_path: Path) -> None:
    repo = store
    (repo / "procedures/greet/main.py").chmod(0o755)
    git(repo, "update-index", "--chmod=+x", "procedures/greet/main.py")
    git(repo, "commit", "-qm", "executable")
    assert cli("--repo", str(repo), "procedure", "update", "greet", "--description", "d").code == 0
    assert (
        cli(
            "--repo",
            str(repo),
            "procedure",
            "update",
            "greet",
            "--code",
            str(updated_code(tmp_path)),
        ).code
        == 0
    )
    assert git(repo, "ls-tree", "HEAD", "procedures/greet/main.py").startswith("100755")
    assert os.access(repo / "procedures/greet/main.py", os.X_OK)
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_autocrlf_files_committed_as_git_normalises_them(store: Path, tmp_path: Path) -> None:
    repo = store
    git(repo, "config", "core.autocrlf", "true")
    crlf = b'def run(name: str) -> str:\r\n    return "crlf " + name\r\n'
    code = write_file(tmp_path / "crlf.py", crlf)
    result = cli("--repo", str(repo), "procedure", "create", "crlf", "--code", str(code))
    assert result.code == 0, result.err
    expected = subprocess.run(
        ["git", "hash-object", "--path", "procedures/crlf/main.py", str(code)],
        cwd=repo,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert git(repo, "rev-parse", "HEAD:procedures/crlf/main.py").strip() == expected
    assert (
        b"\r"
        not in subprocess.run(
            ["git", "cat-file", "blob", expected], cwd=repo, capture_output=True
        ).stdout
    )
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_utf8_bom_in_main_py_is_accepted(store: Path, tmp_path: Path) -> None:
    code = write_file(tmp_path / "bom.py", b"\xef\xbb\xbf" + GREET.encode())
    assert subprocess.run([sys.executable, str(code)]).returncode == 0  # Python runs it
    result = cli("--repo", str(store), "procedure", "create", "bom", "--code", str(code))
    assert result.code == 0, result.err
    shown = cli("--repo", str(store), "procedure", "show", "bom")
    assert "run(name: str) -> str" in shown.out
    checked = cli("check", str(code), cwd=store)
    assert checked.code == 0, checked.out + checked.err


def test_sparse_checkout_outside_the_cone_is_not_uncommitted(store: Path, tmp_path: Path) -> None:
    repo = store
    other = write_file(tmp_path / "other.py", GREET)
    assert cli("--repo", str(repo), "procedure", "create", "other", "--code", str(other)).code == 0
    git(repo, "sparse-checkout", "set", "procedures/greet")
    assert not (repo / "procedures/other").exists()
    result = cli("--repo", str(repo), "procedure", "update", "other", "--description", "far")
    assert result.code == 0, result.err
    assert "far" in git(repo, "show", "HEAD:procedures/other/metadata.json")
    assert not (repo / "procedures/other").exists()
    assert git(repo, "status", "--porcelain") == ""


def test_release_refuses_an_invalid_metadata_json(store: Path) -> None:
    repo = store
    (repo / "procedures/greet/metadata.json").write_text('{"name": "greet", "parameters": 7}')
    git(repo, "commit", "-qam", "broken by hand")
    before = repo_state(repo)
    result = cli("--repo", str(repo), "procedure", "release", "greet")
    one_error(result, 2, "metadata.json")
    assert repo_state(repo) == before


def test_size_limit_counts_bytes(store: Path, tmp_path: Path) -> None:
    """600,000 characters of "é" are 1,200,000 bytes: over the 1 MB limit."""
    text = "# " + "é" * 600_000 + "\n" + GREET
    assert len(text) < 1_000_000 < len(text.encode())
    code = write_file(tmp_path / "wide.py", text)
    before = repo_state(store)
    result = cli("--repo", str(store), "procedure", "create", "wide", "--code", str(code))
    one_error(result, 2, "bytes")
    assert repo_state(store) == before


@pytest.mark.parametrize(
    "ref",
    [
        "refs/heads/a..b",
        "refs/heads/x.lock",
        "refs/heads/a b",
        "refs/heads/.hidden",
        "refs/heads/a@{1}",
    ],
)
def test_store_ref_must_be_a_ref_name(store: Path, ref: str) -> None:
    repo = store
    text = (repo / "proctor.toml").read_text()
    (repo / "proctor.toml").write_text(f"store-ref = {json.dumps(ref)}\n" + text)
    git(repo, "commit", "-qam", "store-ref")
    before = repo_state(repo)
    for words in (["procedure", "list"], ["procedure", "update", "greet", "--description", "x"]):
        one_error(cli("--repo", str(repo), *words), 2, "store-ref", "not a valid ref name")
    assert repo_state(repo) == before


def test_nul_byte_in_code_names_its_line(store: Path, tmp_path: Path) -> None:
    code = write_file(tmp_path / "nul.py", b'def run() -> str:\n    return "a\x00b"\n')
    before = repo_state(store)
    result = cli("--repo", str(store), "procedure", "create", "nulbyte", "--code", str(code))
    one_error(result, 2, "NUL", "line 2")
    assert repo_state(store) == before
    checked = cli("check", str(code), cwd=store)
    assert checked.code == 1 and "line 2" in checked.out, checked.out


def code_in_bucket(bucket: str, count: int) -> list[str]:
    """Procedure codes whose main.py blob ids start with ``bucket`` (the folder
    ``git gc --auto`` samples)."""
    found, i = [], 0
    while len(found) < count:
        text = f"# {i}\n" + GREET
        data = text.encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith(bucket):
            found.append(text)
        i += 1
    return found


def test_gc_auto_runs_from_the_cli(store: Path, tmp_path: Path) -> None:
    """gc.auto=1: git packs once objects/17 holds 2 loose objects; CLI writes get there."""
    repo = store
    git(repo, "config", "gc.auto", "1")
    git(repo, "config", "gc.autoDetach", "false")
    assert not list((repo / ".git/objects/pack").glob("*.pack"))
    for i, text in enumerate(code_in_bucket("17", 3)):
        code = write_file(tmp_path / f"c{i}.py", text)
        assert (
            cli("--repo", str(repo), "procedure", "create", f"p{i}", "--code", str(code)).code == 0
        )
    assert list((repo / ".git/objects/pack").glob("*.pack"))
    stats = dict(
        line.split(": ") for line in git(repo, "count-objects", "-v").splitlines() if ": " in line
    )
    assert int(stats["in-pack"]) > 0, stats
    assert git(repo, "status", "--porcelain") == ""
