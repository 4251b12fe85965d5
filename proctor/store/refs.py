"""Refs: read from the ref files, moved only by compare-and-swap.

GitPython has no compare-and-swap on refs; here every move is one
``git update-ref --stdin`` transaction in which each ref names the value it must still
have, so a commit and its release tag move together or not at all, and a writer that lost
a race learns it (``CasLost``) instead of overwriting the winner.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import BinaryIO

from proctor.core.errors import NotFoundError, StoreError, UsageError
from proctor.store.git import end_process, git_env, run_git
from proctor.store.objects import ZERO_SHA, check_ref_name, check_sha


class CasLost(Exception):
    """The ref moved between read and publish; the write may be rebuilt on the new tip.

    Internal to the store: ``GitStore.write`` turns it into another attempt, and into a
    ``ConcurrencyError`` once the attempts run out.
    """


def head_ref(cwd: str, git_dir: str | None = None) -> str | None:
    """The branch HEAD points to (``refs/heads/x``), or None when HEAD is detached.

    Read from ``<git_dir>/HEAD`` when it is in one of the two plain forms (a symbolic
    ``ref: refs/...`` line, or a detached object id), as git itself writes it; anything
    else (a reftable placeholder, a symlink's odd target) is asked of
    ``git symbolic-ref``, which is what answers without ``git_dir``.
    """
    if git_dir is not None:
        try:
            value = (Path(git_dir) / "HEAD").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            value = ""
        target = value[5:].strip() if value.startswith("ref: ") else ""
        plain = target.isprintable() and " " not in target
        if plain and target.startswith("refs/") and target != "refs/heads/.invalid":
            return target
        if len(value) in (40, 64) and all(c in "0123456789abcdef" for c in value):
            return None
    proc = run_git(["symbolic-ref", "-q", "HEAD"], cwd)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip()


def _read_small(path: str) -> str:
    """A loose ref's text, "" if there is none: one open, one read (a ref is read several
    times a write, and ``open()`` adds two ``fstat`` and an ``isatty`` each time)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return ""
    try:
        data = os.read(fd, 4096)
    except IsADirectoryError:
        return ""
    finally:
        os.close(fd)
    return data.decode(errors="replace").strip()


def read_ref(common_dir: str, ref: str) -> str | None:
    """The sha a ref points at now, read from the ref files (no process spawned).

    Loose refs are written by rename, so a read sees a whole value; packed refs are
    consulted when there is no loose file.
    """
    value = _read_small(os.path.join(common_dir, ref))
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


class RefUpdater:
    """One long-lived ``git update-ref --stdin``: many transactions, no spawn per write.

    Each write sends ``start``, its ``update`` lines (each naming the value the ref must
    still have), ``prepare`` and ``commit``, and reads git's ``<command>: ok`` answers.
    git ends the process on any failure (a ref not where expected), so a failed
    transaction is reported from its stderr and the next one starts a new process. The
    reflog message is fixed per process, so one process is kept per message.
    """

    def __init__(self, cwd: str, reason: str) -> None:
        self.reason = reason
        # A file, not a pipe: warnings over a long life must never fill a pipe and block git.
        self._errors = _scratch_file()
        self._proc = subprocess.Popen(
            ["git", *_UPDATE_REF, "-m", reason, "--stdin"],
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            env=git_env(),
        )

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def transaction(self, lines: list[str]) -> str | None:
        """Run one transaction; None when it committed, else what git said."""
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        payload = "".join(line + "\n" for line in ["start", *lines, "prepare", "commit"])
        try:
            proc.stdin.write(payload.encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._failure()
        for expected in (b"start: ok\n", b"prepare: ok\n", b"commit: ok\n"):
            answer = proc.stdout.readline()
            if answer != expected:
                return self._failure()
        return None

    def _failure(self) -> str:
        self.close()
        self._errors.seek(0)
        said = self._errors.read().decode(errors="replace").strip()
        return said or f"git update-ref exited with {self._proc.returncode}"

    def close(self) -> None:
        proc = self._proc
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            end_process(proc)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()

    def dispose(self) -> None:
        """End the process and drop its error file."""
        self.close()
        self._errors.close()


def transaction_lines(updates: list[tuple[str, str, str | None]]) -> list[str]:
    """The ``update`` lines of a transaction; every name and id is checked first, as a
    newline or space in one would be read as another command or field."""
    lines = []
    for ref, new, old in updates:
        check_ref_name(ref)
        check_sha(new, "new value of " + ref)
        if old is not None:
            check_sha(old, "old value of " + ref)
        if new == ZERO_SHA:  # a delete, verified against the value it must still have
            lines.append(f"delete {ref} {old or ZERO_SHA}")
        else:
            lines.append(f"update {ref} {new} {old or ZERO_SHA}")
    return lines


# The values proctor gives are full object ids; a warning that a ref of that name also
# exists would cost git a look-up in six ref folders for each of them, on every write.
_UPDATE_REF = ("-c", "core.warnAmbiguousRefs=false", "update-ref")


def update_refs(
    cwd: str,
    common_dir: str,
    updates: list[tuple[str, str, str | None]],
    reason: str,
    updater: RefUpdater | None = None,
) -> None:
    """Move refs in one transaction: ``(ref, new, expected_old)``.

    ``expected_old`` None means "must not exist" (create-only, used for tags and the
    first commit of a branch); ``new`` ZERO_SHA deletes the ref. Raises CasLost when any
    ref is not where expected. With ``updater`` the transaction runs in that long-lived
    process.
    """
    lines = transaction_lines(updates)
    if updater is not None:
        failure = updater.transaction(lines)
    else:
        payload = "\n".join(["start", *lines, "prepare", "commit", ""]).encode()
        proc = run_git([*_UPDATE_REF, "-m", reason, "--stdin"], cwd, input=payload)
        failure = None if proc.returncode == 0 else proc.stderr.decode(errors="replace").strip()
    if failure is None:
        return
    if all((read_ref(common_dir, ref) or ZERO_SHA) == new for ref, new, _old in updates):
        return  # it did commit; only the answer was lost
    for ref, _new, old in updates:
        if read_ref(common_dir, ref) != old:
            raise CasLost(ref)
    raise StoreError(f"git update-ref failed: {failure}")


def _scratch_file() -> BinaryIO:
    """An unnamed read-write file that goes away when closed (the caller closes it).

    An in-memory file where the OS has them (Linux: ``memfd_create``), which needs no
    ``tempfile`` (its import, with ``shutil``'s, costs more than the rest of a write's
    ref update); a temporary file elsewhere.
    """
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None:
        try:
            return os.fdopen(memfd("proctor-update-ref", os.MFD_CLOEXEC), "w+b")
        except OSError:
            pass
    import tempfile

    return tempfile.TemporaryFile()
