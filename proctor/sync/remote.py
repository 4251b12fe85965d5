"""The git side of a sync: which remote, the private ref namespace, fetch and push.

The distributed engine is git itself: any remote git can fetch from and push to. What
proctor adds is where fetched refs land. The remote's branch and its release tags go
under ``refs/proctor/remotes/<remote>/`` (``heads/<branch>``, ``tags/<tag>``), never into
``refs/tags`` directly: a fetched tag can then neither replace a local one nor be
refused against it without the sync seeing both and deciding (``proctor.sync.tags``).
Pushes are never forced; the branch and the new tags go in one ``--atomic`` push where
the server supports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proctor.core.errors import StoreError, UsageError
from proctor.store.git import run_git

__all__ = [
    "PRIVATE",
    "PushOutcome",
    "check_remote",
    "fetch",
    "head_ref",
    "push",
    "read_tags",
    "tag_ref",
]

PRIVATE = "refs/proctor/remotes"
RELEASES = "procedures/"
# What git says when a ref lost a race on the server: worth fetching and trying again.
_RACE_WORDS = (
    "non-fast-forward",
    "fetch first",
    "already exists",
    "stale info",
    "failed to update ref",
    "failed to lock",
    "cannot lock ref",
    "atomic push failed",
    "atomic transaction failed",
)
_NO_ATOMIC = "does not support --atomic"
# A remote is never allowed to ask for a password on the terminal mid-sync.
_ENV = {"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


def head_ref(remote: str, branch_ref: str) -> str:
    """Where the remote's copy of the store branch is kept here."""
    return f"{PRIVATE}/{remote}/heads/{branch_ref.removeprefix('refs/heads/')}"


def tag_ref(remote: str, tag: str) -> str:
    """Where the remote's tag ``tag`` (``procedures/x/v1.0.0``) is kept here."""
    return f"{PRIVATE}/{remote}/tags/{tag}"


def check_remote(cwd: str, remote: str) -> str:
    """The remote's URL; UsageError naming the known remotes when there is no such one."""
    bad = not remote or remote.startswith("-") or any(c in remote for c in " \t\n\0:/\\*?[~^")
    if not bad:
        proc = run_git(["config", "--get", f"remote.{remote}.url"], cwd)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.decode(errors="replace").strip()
    known = run_git(["remote"], cwd).stdout.decode(errors="replace").split()
    raise UsageError(
        f"unknown remote {remote!r}; known remotes: {', '.join(known) or '(none)'}"
        " (add one with `git remote add NAME URL`)"
    )


def _refspecs(remote: str, branch_ref: str, with_branch: bool) -> list[str]:
    specs = [f"+refs/tags/{RELEASES}*:{PRIVATE}/{remote}/tags/{RELEASES}*"]
    if with_branch:
        specs.insert(0, f"+{branch_ref}:{head_ref(remote, branch_ref)}")
    return specs


def fetch(cwd: str, remote: str, branch_ref: str) -> None:
    """Fetch the branch and the release tags into the private namespace (mirrored:
    ``--prune`` drops what the remote no longer has). A remote without the branch yet
    is fetched for its tags alone. StoreError when git cannot reach the remote."""
    base = ["fetch", "--quiet", "--no-tags", "--prune", "--no-write-fetch-head", remote]
    proc = run_git([*base, *_refspecs(remote, branch_ref, True)], cwd, env=_ENV)
    if proc.returncode == 0:
        return
    said = proc.stderr.decode(errors="replace").strip()
    probe = run_git(["ls-remote", "--heads", remote, branch_ref], cwd, env=_ENV)
    if probe.returncode == 0 and not probe.stdout.strip():
        proc = run_git([*base, *_refspecs(remote, branch_ref, False)], cwd, env=_ENV)
        if proc.returncode == 0:
            run_git(["update-ref", "-d", head_ref(remote, branch_ref)], cwd)
            return
        said = proc.stderr.decode(errors="replace").strip()
    raise StoreError(f"git fetch {remote} failed: {said.splitlines()[-1] if said else '?'}")


def read_tags(cwd: str, prefix: str) -> dict[str, tuple[str, str]]:
    """Tags under ``prefix`` (``refs/tags/`` or a private one), by name below it
    (``procedures/x/v1.0.0``): (tag object, commit it peels to)."""
    proc = run_git(
        ["for-each-ref", "--format=%(refname) %(objectname) %(*objectname)", prefix + RELEASES],
        cwd,
    )
    if proc.returncode != 0:
        raise StoreError(f"git for-each-ref failed: {proc.stderr.decode(errors='replace')}")
    out: dict[str, tuple[str, str]] = {}
    for line in proc.stdout.decode().splitlines():
        ref, obj, peeled = (line.split(" ") + ["", ""])[:3]
        out[ref[len(prefix) :]] = (obj, peeled or obj)
    return out


@dataclass
class PushOutcome:
    """What a push did: ``ok``, or the refs the server rejected and why; ``race`` says
    whether fetching and replaying again can help (the remote moved meanwhile)."""

    ok: bool
    rejected: list[tuple[str, str]] = field(default_factory=list)
    race: bool = False
    no_atomic: bool = False
    error: str = ""


def push(cwd: str, remote: str, refspecs: list[str], atomic: bool) -> PushOutcome:
    """``git push --porcelain [--atomic] REMOTE REFSPEC...``, never forced."""
    args = ["push", "--porcelain", "--quiet"]
    if atomic:
        args.append("--atomic")
    proc = run_git([*args, remote, *refspecs], cwd, env=_ENV)
    stderr = proc.stderr.decode(errors="replace")
    if proc.returncode == 0:
        return PushOutcome(True)
    if atomic and _NO_ATOMIC in stderr:
        return PushOutcome(False, no_atomic=True, error=stderr.strip())
    rejected: list[tuple[str, str]] = []
    for line in proc.stdout.decode(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0] == "!":
            rejected.append((parts[1].split(":")[-1], parts[2]))
    text = " ".join(r for _ref, r in rejected) + " " + stderr
    race = bool(rejected) and all(
        any(w in reason for w in _RACE_WORDS) for _ref, reason in rejected
    )
    if not rejected and any(w in text for w in _RACE_WORDS):
        race = True
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    error = "; ".join(f"{ref}: {reason}" for ref, reason in rejected) or (
        lines[-1] if lines else f"git push exited with {proc.returncode}"
    )
    return PushOutcome(False, rejected, race=race, error=error)
