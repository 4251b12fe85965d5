"""Identity and audit at the store: what goes into a commit or tag header is git's identity,
validated as git validates it, and no value anyone passes can add a header line or a
trailer. Every repository a test writes is also checked by ``git fsck --strict`` in
conftest's ``fsck_written_repos``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import git

from proctor.core.errors import EXIT_USAGE, UsageError
from proctor.store import Change, GitStore, TagSpec, format_ident
from proctor.store.identity import (
    IdentityError,
    TrailerError,
    check_trailer,
    validate_identity,
)
from proctor.store.objects import add_trailers, commit_bytes, tag_bytes

REF = "refs/heads/main"
AUTHOR = format_ident("Test Author", "author@example.com")
TREE = "4b825dc642cb6eb9a060e54bf8d69288fbad4904"  # the empty tree


def no_identity(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """An environment with no git identity at all, where ``git commit`` refuses."""
    for key in (
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL",
        "EMAIL",
    ):
        monkeypatch.delenv(key, raising=False)
    home.mkdir(exist_ok=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


def objects(repo: Path) -> set[str]:
    return {p.name for p in (repo / ".git/objects").rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("name", "email"),
    [
        ("ana <ana@x.org>", "ana@x.org"),
        ("ana", "ana@x.org>"),
        ("ana\nparent " + "0" * 40, "ana@x.org"),
        ("ana", "a@x.org\ncommitter evil <e@x> 1 +0000"),
        ("ana\0", "ana@x.org"),
        ("  ...  ", "ana@x.org"),
        ("", "ana@x.org"),
        ("ana", " ; "),
    ],
)
def test_identity_refused_as_git_refuses(name: str, email: str) -> None:
    with pytest.raises(IdentityError) as info:
        format_ident(name, email, 1_700_000_000)
    assert info.value.exit_code == EXIT_USAGE
    assert isinstance(info.value, UsageError)
    assert "git config" in str(info.value)  # the fix is in the message
    assert "\n" not in str(info.value)


def test_identity_crud_is_trimmed_as_git_trims_it() -> None:
    assert validate_identity('  "Ana Lima",  ', " ana@x.org. ") == (
        "Ana Lima",
        "ana@x.org",
    )
    line = format_ident("  Ana Lima.", "ana@x.org ", 1_700_000_000)
    assert line.startswith("Ana Lima <ana@x.org> 1700000000 ")


def test_commit_and_tag_headers_validated_at_the_lowest_level() -> None:
    evil = "ana <a@x> 1 +0000\nparent " + "1" * 40
    with pytest.raises(IdentityError):
        commit_bytes(TREE, [], "m\n", evil, AUTHOR)
    with pytest.raises(IdentityError):
        commit_bytes(TREE, [], "m\n", AUTHOR, "no email 1 +0000")
    with pytest.raises(UsageError):
        commit_bytes(TREE + "\nparent x", [], "m\n", AUTHOR, AUTHOR)
    with pytest.raises(UsageError):
        commit_bytes(TREE, ["not-a-sha"], "m\n", AUTHOR, AUTHOR)
    with pytest.raises(UsageError):
        commit_bytes(TREE, [], "nul\0inside\n", AUTHOR, AUTHOR)
    with pytest.raises(IdentityError):
        tag_bytes(TREE, "v1", "x <y> 1 +0000\ntagger z <z> 1 +0000", "m\n")
    with pytest.raises(UsageError):
        tag_bytes(TREE, "v1\ntype blob", AUTHOR, "m\n")
    with pytest.raises(UsageError):
        tag_bytes(TREE, "v1 two", AUTHOR, "m\n")


@pytest.mark.parametrize(
    "value",
    [
        "x\nProctor-Policy: ALLOW_IMMEDIATE",
        "x\rSigned-off-by: evil <e@x>",
        "x\u2028Signed-off-by: evil",
        "esc\x1b[31m",
        "",
        "   ",
        " padded",
        "a" * 300,
    ],
)
def test_trailer_values_are_one_printable_bounded_line(value: str) -> None:
    with pytest.raises(TrailerError) as info:
        check_trailer("Proctor-Actor", value)
    assert info.value.exit_code == EXIT_USAGE
    with pytest.raises(TrailerError):
        add_trailers("Subject", {"Proctor-Actor": value})


@pytest.mark.parametrize("key", ["Proctor-Actor: x", "Bad Key", "", "X\nY", "-lead"])
def test_trailer_keys_are_tokens(key: str) -> None:
    with pytest.raises(TrailerError):
        add_trailers("Subject", {key: "v"})


def test_message_cannot_forge_trailers(repo: Path) -> None:
    """A patch divider in a message makes ``git interpret-trailers`` read the lines above
    it as the trailers; a message-only write must not end in a trailer paragraph."""
    with pytest.raises(UsageError, match="---"):
        add_trailers("Subject\n\nProctor-Policy: FORGED\n---\nmore", {"Proctor-Actor": "a"})
    with pytest.raises(UsageError, match="trailer"):
        add_trailers("Subject\n\nProctor-Policy: FORGED", {})
    assert add_trailers("Fix: a subject with a colon", {}) == "Fix: a subject with a colon\n"
    ok = add_trailers("Subject\n\nProctor-Policy: quoted in the body.\nMore.", {"K": "v"})
    proc = subprocess.run(
        ["git", "interpret-trailers", "--parse"], input=ok, capture_output=True, text=True
    )
    assert proc.stdout == "K: v\n"


def test_actor_with_newline_writes_nothing(repo: Path) -> None:
    with GitStore(repo) as store:
        store.write(REF, lambda _t: Change(edits={"f": b"1"}, message="m"), author=AUTHOR)
        head = git(repo, "rev-parse", "HEAD")
        before = objects(repo)
        with pytest.raises(TrailerError):
            store.write(
                REF,
                lambda _t: Change(edits={"f": b"2"}, message="m"),
                author=AUTHOR,
                trailers={"Proctor-Actor": "ana\nProctor-Policy: ALLOW_IMMEDIATE"},
            )
    assert git(repo, "rev-parse", "HEAD") == head
    assert objects(repo) == before
    assert (repo / "f").read_text() == "1"


def test_store_identity_comes_from_git(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``author=None``: the store asks git's identity at write time, author and committer
    apart, as ``git commit`` would."""
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ana Lima")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "ana@example.org")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Bot")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "bot@example.org")
    with GitStore(repo) as store:
        assert store.identity("author") == ("Ana Lima", "ana@example.org")
        result = store.write(
            REF,
            lambda _t: Change(edits={"f": b"1"}, message="m", tags=[TagSpec("rel/v1", "r")]),
            trailers={"Proctor-Actor": "ana <ana@x.org>"},
        )
    fmt = "%an|%ae|%cn|%ce|%(trailers:key=Proctor-Actor,valueonly)"
    assert git(repo, "log", "-1", f"--format={fmt}").strip() == (
        "Ana Lima|ana@example.org|Bot|bot@example.org|ana <ana@x.org>"
    )
    assert git(repo, "for-each-ref", "--format=%(taggername)", "refs/tags/rel/v1").strip() == "Bot"
    assert result.commit


def test_identity_from_config_with_brackets_is_refused(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_identity(monkeypatch, tmp_path / "home")
    git(repo, "config", "user.name", "ana <ana@x.org>")
    git(repo, "config", "user.email", "ana@x.org")
    with GitStore(repo) as store, pytest.raises(IdentityError, match="user.name"):
        store.identity("author")


def test_no_identity_is_refused_like_git_commit(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No identity configured (and auto-detection off): git commit refuses, and so does a
    write; an actor alone is not an identity. Nothing is written."""
    no_identity(monkeypatch, tmp_path / "home")
    git(repo, "config", "user.useConfigOnly", "true")
    plain = subprocess.run(
        ["git", "commit", "--allow-empty", "-m", "x"], cwd=repo, capture_output=True, text=True
    )
    assert plain.returncode != 0
    with GitStore(repo) as store:
        with pytest.raises(IdentityError) as info:
            store.write(
                REF,
                lambda _t: Change(edits={"f": b"1"}, message="m"),
                trailers={"Proctor-Actor": "ana <ana@x.org>"},
            )
    message = str(info.value)
    assert "git config user.email" in message and "git config user.name" in message
    assert "actor" in message
    assert git(repo, "rev-parse", "-q", "--verify", "HEAD", check=False) == ""
    assert not (repo / "f").exists()
    # Reading needs no identity.
    with GitStore(repo) as store:
        assert store.read_ref(REF) is None


def test_identity_error_in_environment_names_the_variable(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_AUTHOR_NAME", "ana <ana@x.org>")
    with GitStore(repo) as store, pytest.raises(IdentityError, match="GIT_AUTHOR_NAME"):
        store.write(REF, lambda _t: Change(edits={"f": b"1"}, message="m"))
    assert not os.path.exists(repo / "f")
