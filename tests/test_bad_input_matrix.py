"""Every command and subcommand over every bad name and every bad file.

The commands are read from the click tree of ``proctor.cli.cli`` (plugin commands
included), so a new command is covered the day it is added. Each case asserts: the
documented exit code (2: bad input, nothing written), exactly one ``error:`` line, no
traceback, and the repository exactly as it was (refs, HEAD, ``git status``).

Runs ``proctor.cli.main`` in-process (the console script's own entry point): hundreds
of cases, and a NUL byte, which no argv can carry, can be passed.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from conftest import GREET, IDENTITY, git

from proctor.cli import cli, main
from proctor.cli.base import _load_plugin_commands

BAD_NAMES = {
    "empty": "",
    "dotdot": "../x",
    "slash": "a/b",
    "space": "X Y",
    "dash": "-x",
    "long": "a" * 300,
    "nul": "a\0b",
    "reserved": "con",
}

GLOBAL = {"repo", "actor", "as_json", "no_color", "help"}
#: A value for each required parameter that is not the one under test.
FILLERS = {"to": "0.1.0", "from_version": "HEAD", "code_file": "{good}"}


@dataclass(frozen=True)
class Leaf:
    path: tuple[str, ...]
    command: click.Command

    @property
    def id(self) -> str:
        return "-".join(self.path)

    def params(self) -> list[click.Parameter]:
        return [p for p in self.command.params if p.name not in GLOBAL]

    def first_argument(self) -> click.Argument | None:
        return next((p for p in self.params() if isinstance(p, click.Argument)), None)

    def file_options(self) -> list[click.Option]:
        return [p for p in self.params() if isinstance(p, click.Option) and p.metavar == "FILE"]


def leaves(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from leaves(command.commands[name], (*path, name))
    else:
        yield Leaf(path, command)


_load_plugin_commands()
LEAVES = list(leaves(cli))


def takes_path(leaf: Leaf) -> bool:
    arg = leaf.first_argument()
    return arg is not None and isinstance(arg.type, click.Path)


def required_words(
    leaf: Leaf, skip: click.Parameter | None, good: str
) -> tuple[list[str], list[str]]:
    """(option words, positional words) for the required parameters other than ``skip``."""
    options: list[str] = []
    positional: list[str] = []
    for p in leaf.params():
        if p is skip or not p.required:
            continue
        value = FILLERS.get(p.name or "", "greet").replace("{good}", good)
        if isinstance(p, click.Option):
            options += [p.opts[0], value]
        elif isinstance(p, click.Argument):
            positional.append(value)
    return options, positional


def name_cases() -> list[tuple[Leaf, str]]:
    return [(leaf, key) for leaf in LEAVES if not takes_path(leaf) for key in BAD_NAMES]


@dataclass
class Files:
    good: str
    fifo: str
    device: str
    folder: str
    missing: str
    not_utf8: str
    a_file: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Files, Path]]:
    """One store (with ``greet``), the bad files, and an empty folder to run in."""
    saved = {k: os.environ.get(k) for k in IDENTITY}
    os.environ.update(IDENTITY)
    root = tmp_path_factory.mktemp("matrix")
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (root / "good.py").write_text(GREET)
    assert main(["init", str(repo)]) == 0
    assert (
        main(["--repo", str(repo), "procedure", "create", "greet", "--code", str(root / "good.py")])
        == 0
    )
    os.mkfifo(root / "fifo.py")
    (root / "folder.py").mkdir()
    (root / "latin1.py").write_bytes(b"# caf\xe9\ndef run() -> int:\n    return 1\n")
    (root / "plain.txt").write_text("a file where a folder is needed\n")
    empty = root / "cwd"
    empty.mkdir()
    files = Files(
        good=str(root / "good.py"),
        fifo=str(root / "fifo.py"),
        device="/dev/zero",
        folder=str(root / "folder.py"),
        missing=str(root / "missing.py"),
        not_utf8=str(root / "latin1.py"),
        a_file=str(root / "plain.txt"),
    )
    yield repo, files, empty
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def snapshot(repo: Path, cwd: Path) -> tuple[str, str, str, list[str]]:
    return (
        git(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(repo, "status", "--porcelain", "--untracked-files=all"),
        git(repo, "rev-parse", "HEAD"),
        sorted(os.listdir(cwd)),
    )


def run_main(
    argv: list[str], cwd: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    capsys.readouterr()
    try:
        code = main(argv)
    except BaseException:  # noqa: BLE001 - an escaped exception is the failure under test
        pytest.fail(f"proctor {argv!r} raised:\n{traceback.format_exc()}")
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error(code: int, out: str, err: str, argv: list[str]) -> None:
    assert code == 2, (argv, code, out, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, (argv, err)
    assert "Traceback" not in out + err, (argv, err)


@pytest.mark.parametrize(("leaf", "bad"), name_cases(), ids=lambda v: getattr(v, "id", v))
def test_every_command_refuses_every_bad_name(
    world: tuple[Path, Files, Path],
    leaf: Leaf,
    bad: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, files, cwd = world
    arg = leaf.first_argument()
    options, positional = required_words(leaf, arg, files.good)
    # The bad name first; a command without arguments gets it as one it does not take.
    argv = ["--repo", str(repo), *leaf.path, *options, "--", BAD_NAMES[bad], *positional]
    before = snapshot(repo, cwd)
    code, out, err = run_main(argv, cwd, capsys, monkeypatch)
    assert_one_error(code, out, err, argv)
    assert snapshot(repo, cwd) == before


def file_cases() -> list[tuple[Leaf, str, str]]:
    cases = []
    for leaf in LEAVES:
        for opt in leaf.file_options():
            for kind in ("fifo", "device", "folder", "missing", "not_utf8"):
                cases.append((leaf, opt.opts[0], kind))
        if takes_path(leaf):
            kinds = ("fifo", "device", "missing") if leaf.path == ("check",) else ("a_file",)
            for kind in kinds:
                cases.append((leaf, "", kind))
    return cases


@pytest.mark.parametrize(
    ("leaf", "option", "kind"), file_cases(), ids=lambda v: getattr(v, "id", v) or "arg"
)
def test_every_command_refuses_every_bad_file(
    world: tuple[Path, Files, Path],
    leaf: Leaf,
    option: str,
    kind: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo, files, cwd = world
    bad = getattr(files, kind)
    if option:
        taken = next(p for p in leaf.file_options() if p.opts[0] == option)
        options, positional = required_words(leaf, taken, files.good)
        argv = ["--repo", str(repo), *leaf.path, *options, option, bad, "--", *positional]
    else:
        argv = ["--repo", str(repo), *leaf.path, bad]
    if kind == "not_utf8" and leaf.path[-1] == "update" and option == "--code":
        argv.append("--description=x")
    before = snapshot(repo, cwd)
    code, out, err = run_main(argv, cwd, capsys, monkeypatch)
    assert_one_error(code, out, err, argv)
    assert snapshot(repo, cwd) == before


def test_the_matrix_covers_every_command() -> None:
    """Guard against an empty walk: the known commands are all in it."""
    ids = {leaf.id for leaf in LEAVES}
    for expected in ("procedure-show", "procedure-create", "status", "check", "action-run"):
        assert expected in ids, ids
    assert len(name_cases()) >= 8 * 15
