"""Refs: read from the ref files, moved only by compare-and-swap.

GitPython has no compare-and-swap on refs; here every move is one
``git update-ref --stdin`` transaction in which each ref names the value it must still
have, so a commit and its release tag move together or not at all, and a writer that lost
a race learns it (``CasLost``) instead of overwriting the winner.
"""

from __future__ import annotations

from pathlib import Path

from proctor.core.errors import NotFoundError, StoreError, UsageError
from proctor.store.git import run_git
from proctor.store.objects import ZERO_SHA


class CasLost(Exception):
    """The ref moved between read and publish; the write may be rebuilt on the new tip.

    Internal to the store: ``GitStore.write`` turns it into another attempt, and into a
    ``ConcurrencyError`` once the attempts run out.
    """


def head_ref(cwd: str) -> str | None:
    """The branch HEAD points to (``refs/heads/x``), or None when HEAD is detached."""
    proc = run_git(["symbolic-ref", "-q", "HEAD"], cwd)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def read_ref(common_dir: str, ref: str) -> str | None:
    """The sha a ref points at now, read from the ref files (no process spawned).

    Loose refs are written by rename, so a read sees a whole value; packed refs are
    consulted when there is no loose file.
    """
    loose = Path(common_dir) / ref
    try:
        value = loose.read_text().strip()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        value = ""
    if value.startswith("ref: "):
        return read_ref(common_dir, value[5:])
    if len(value) == 40:
        return value
    packed = Path(common_dir) / "packed-refs"
    try:
        with packed.open() as fh:
            for line in fh:
                if line.endswith(" " + ref + "\n"):
                    return line[:40]
    except FileNotFoundError:
        pass
    return None


def resolve(cwd: str, rev: str) -> str:
    """Resolve any revision expression to a commit sha, or raise NotFoundError."""
    if "\0" in rev or rev.startswith("-"):
        raise UsageError(f"invalid revision {rev!r}")
    proc = run_git(["rev-parse", "--verify", "-q", "--end-of-options", rev + "^{commit}"], cwd)
    if proc.returncode != 0:
        raise NotFoundError(f"unknown revision {rev!r}")
    return proc.stdout.decode().strip()


def update_refs(
    cwd: str, common_dir: str, updates: list[tuple[str, str, str | None]], reason: str
) -> None:
    """Move refs in one transaction: ``(ref, new, expected_old)``.

    ``expected_old`` None means "must not exist" (create-only, used for tags and the
    first commit of a branch). Raises CasLost when any ref is not where expected.
    """
    lines = ["start"]
    for ref, new, old in updates:
        lines.append(f"update {ref} {new} {old or ZERO_SHA}")
    lines += ["prepare", "commit", ""]
    proc = run_git(["update-ref", "-m", reason, "--stdin"], cwd, input="\n".join(lines).encode())
    if proc.returncode == 0:
        return
    for ref, _new, old in updates:
        if read_ref(common_dir, ref) != old:
            raise CasLost(ref)
    raise StoreError(f"git update-ref failed: {proc.stderr.decode(errors='replace').strip()}")
