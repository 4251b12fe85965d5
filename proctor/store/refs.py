"""Refs: read from the ref files, moved only by compare-and-swap.

GitPython has no compare-and-swap on refs; here every move names the value each ref must
still have, so a commit and its release tag move together or not at all, and a writer
that lost a race learns it (``CasLost``) instead of overwriting the winner. Moves of
several refs (a commit and its tag), creations and deletions are one
``git update-ref --stdin`` transaction in a long-lived process (``RefUpdater``). The
common move, one branch from one commit to the next under the writer lock, is made
in-process by git's own lock-file protocol (``LocalRefs``), wherever that protocol is
all git would do; everywhere else git makes it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import BinaryIO

from proctor.core.errors import NotFoundError, StoreError, UsageError
from proctor.store.fs import write_all
from proctor.store.git import end_process, git_env, read_head, run_git
from proctor.store.objects import ZERO_SHA, check_ref_name, check_sha
from proctor.store.perms import adjust


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
        value = read_head(os.path.join(git_dir, "HEAD")) or ""
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


_LOCK = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_APPEND = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
# The refs whose reflog git makes when core.logAllRefUpdates is true (should_autocreate_reflog).
_LOGGED = ("refs/heads/", "refs/remotes/", "refs/notes/")
# Room in the writer lock's file for the note of the two locks a move holds.
_NOTE_SIZE = 256


class LocalRefs:
    """One branch moved by compare-and-swap in this process, as git's files backend does.

    A write moves one branch from the commit it built on to the commit it made. Through
    ``update-ref --stdin`` that is a round trip to another process, which waits for a CPU
    like any other: on a busy machine the wait was a fifth of a write. Here the same
    protocol runs in-process: ``<ref>.lock`` taken exclusively (a git writer then fails
    to take it, as it would against another git; made under a draft name and linked into
    place, so a writer killed at any instant leaves only what its note in the writer
    lock names), the value compared under the lock, the
    reflog lines appended (the branch's, and ``HEAD``'s when it points at the branch,
    under ``HEAD.lock`` as git takes it), the lock renamed over the ref.

    Only what this covers exactly is done here; ``move`` returns False, having changed
    nothing, for everything else (git's way applies): a ref store git keeps otherwise
    (reftable), a ``reference-transaction`` hook to run, ``core.fsync`` settings, a
    linked work tree's own ``HEAD``, a symbolic ref, a lock someone else holds, a reflog
    message git would reformat, ``GIT_COMMITTER_DATE``.
    """

    def __init__(
        self,
        common_dir: str,
        git_dir: str,
        work_tree: str | None,
        config: dict[str, str],
        shared: int = 0,
    ) -> None:
        self.common_dir = common_dir
        self.git_dir = git_dir
        self.shared = shared
        log_all = config.get("core.logallrefupdates", "").strip().lower()
        if not log_all:
            log_all = "false" if work_tree is None else "true"  # git's default: bare or not
        self.log_all = {"true": True, "yes": True, "on": True, "1": True}.get(log_all)
        if log_all in ("false", "no", "off", "0"):
            self.log_all = False
        self.log_always = log_all == "always"
        hooks = config.get("core.hookspath")
        if hooks is not None:
            hooks = os.path.join(work_tree or git_dir, os.path.expanduser(hooks))
        self.hook = os.path.join(
            hooks or os.path.join(common_dir, "hooks"), "reference-transaction"
        )
        self.usable = (
            os.path.realpath(git_dir) == os.path.realpath(common_dir)
            and (self.log_all is not None or self.log_always)
            and not any(k in config for k in ("extensions.refstorage", "core.fsync"))
            and config.get("core.fsyncobjectfiles") is None
        )

    def move(self, ref: str, new: str, old: str, reason: str, ident: str, note: int) -> bool:
        """Move ``ref`` from ``old`` to ``new``; False (nothing changed) where git must.

        ``note``: the descriptor of the ref's writer lock, which the caller holds. The
        locks made here are noted in it while they exist: a writer killed holding them
        leaves them behind (as a killed git does), and the next writer, holding the
        writer lock, knows them for a dead writer's and removes them, where a lock it
        cannot account for is left to git (which refuses and says so).

        Raises CasLost when the ref is not at ``old``; StoreError when a file cannot be
        written (the ref has not moved then, as with git).
        """
        if (
            not self.usable
            or not ref.startswith("refs/heads/")
            or not reason
            or reason != " ".join(reason.split())
            or not reason.isprintable()
            or "GIT_COMMITTER_DATE" in os.environ
            or os.access(self.hook, os.X_OK)
        ):
            return False
        path = os.path.join(self.common_dir, ref)
        ref_lock, head_lock = path + ".lock", os.path.join(self.git_dir, "HEAD.lock")
        self.remove_dead_locks(ref, note)  # before this move's own note replaces theirs
        noted: list[str] = []
        held: list[str] = []  # the files to remove if the move stops
        try:
            if not _make_lock("ref", ref_lock, new, note, noted, held):
                return False  # held by someone else, or no such folder: git says which
            raw = _read_small(path)
            if raw and not (len(raw) == len(old) and not raw.strip("0123456789abcdef")):
                return False  # a symbolic or broken ref: git's to say
            if (raw or read_ref(self.common_dir, ref)) != old:
                raise CasLost(ref)
            if self.shared:
                adjust(ref_lock, self.shared)
            line = f"{old} {new} {ident}\t{reason}\n".encode()
            logs_head = refs_head(self.git_dir) == ref
            # HEAD.lock guards only HEAD's line: taken before any line is written (git
            # refuses the whole move when it is held), let go before the ref moves, so
            # that a writer killed once the ref has moved leaves no lock but index.lock
            # (which a recovery looks for).
            if logs_head and not _make_lock("head", head_lock, new, note, noted, held):
                return False
            self._log(ref, line)
            if logs_head:
                self._log("HEAD", line, logs_dir=self.git_dir)
                os.unlink(head_lock)
                held.remove(head_lock)
            os.rename(ref_lock, path)
            held.remove(ref_lock)
            return True
        except OSError as exc:
            raise StoreError(f"cannot move {ref}: {exc.strerror or exc}") from exc
        finally:
            for name in held:
                with contextlib.suppress(OSError):
                    os.unlink(name)
            if noted:  # none of them is there any more
                with contextlib.suppress(OSError):
                    os.pwrite(note, b" " * _NOTE_SIZE, 0)

    def remove_dead_locks(self, ref: str, note: int) -> None:
        """Remove the locks a killed writer noted in ``ref``'s writer lock (``note``,
        which the caller holds: whoever wrote the note is gone). Called before every
        move, in-process or by git, and when a store is opened, so that neither git's
        commands nor proctor's own wait for the next plain write to clear them."""
        if os.pread(note, _NOTE_SIZE, 0).strip():
            path = os.path.join(self.common_dir, ref)
            _remove_noted(note, path + ".lock", os.path.join(self.git_dir, "HEAD.lock"))
            os.pwrite(note, b" " * _NOTE_SIZE, 0)

    def _log(self, ref: str, line: bytes, logs_dir: str | None = None) -> None:
        """Append ``line`` to the ref's reflog: made when git would make it, else only
        added to one that exists (``log_ref_setup``)."""
        path = os.path.join(logs_dir or self.common_dir, "logs", ref)
        create = self.log_always or (
            bool(self.log_all) and (ref == "HEAD" or ref.startswith(_LOGGED))
        )
        try:
            fd = os.open(path, _APPEND | (os.O_CREAT if create else 0), 0o666)
        except FileNotFoundError:
            if not create:
                return
            self._make_folders(os.path.dirname(path))
            fd = os.open(path, _APPEND | os.O_CREAT, 0o666)
        try:
            if self.shared:
                adjust(fd, self.shared)
            write_all(fd, line)
        finally:
            os.close(fd)

    def _make_folders(self, folder: str) -> None:
        if os.path.isdir(folder):
            return
        self._make_folders(os.path.dirname(folder))
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
            adjust(folder, self.shared)


def _draft_name(lock: str, pid: str) -> str:
    """Where a lock is made before it is linked into place, one per writer: beside it,
    under a name no ref and no ref's lock can have (no part of a ref's name starts with
    a dot), which git passes over."""
    folder, name = os.path.split(lock)
    return os.path.join(folder, f".{name.removesuffix('.lock')}.proctor-{pid}.lock")


def _make_lock(
    kind: str, lock: str, new: str, note: int, noted: list[str], held: list[str]
) -> bool:
    """Take ``lock`` holding ``new``, noted in the writer lock's file at every instant.

    The lock is made under a draft name, noted with its (device, inode), its value
    written, and only then linked into place, which fails if the lock exists (as an
    exclusive create does). So a writer killed at any point leaves no lock the next
    holder of the writer lock cannot tell for its own (by its inode and value); at most
    a draft it never noted, which git passes over. False when the lock is taken.
    """
    pid = str(os.getpid())
    draft = _draft_name(lock, pid)
    try:
        fd = os.open(draft, _LOCK, 0o666)
    except OSError:
        return False  # no such folder, say: git's to tell
    held.append(draft)
    try:
        st = os.fstat(fd)
        entries = [*noted, f"{kind} {pid} {st.st_dev} {st.st_ino} {new}"]
        os.pwrite(note, "\n".join(entries).encode().ljust(_NOTE_SIZE), 0)
        noted[:] = entries
        write_all(fd, (new + "\n").encode())
    finally:
        os.close(fd)
    try:
        os.link(draft, lock)
    except OSError:  # taken; or a file system without hard links, where git's way works
        return False
    held.append(lock)
    os.unlink(draft)
    held.remove(draft)
    return True


def _remove_noted(note: int, ref_lock: str, head_lock: str) -> None:
    """Remove what a dead writer noted in the writer lock's file that is still the very
    file it made: a draft of the same inode, a lock of the same inode holding its value.
    A lock git made since, in a reused inode, holds git's value and is left, for git to
    refuse on, as is anything else."""
    for entry in os.pread(note, _NOTE_SIZE, 0).decode(errors="replace").split("\n"):
        kind, pid, dev, ino, new = (entry.split() + [""] * 5)[:5]
        name = {"ref": ref_lock, "head": head_lock}.get(kind)
        if name is None or not pid.isdigit():
            continue
        for path, whole in ((_draft_name(name, pid), False), (name, True)):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                content = os.read(fd, 128)
            finally:
                os.close(fd)
            # A draft is that writer's while it is the file it noted (a writer killed
            # before it could note one leaves it: git passes over it); the lock, while it
            # also holds that writer's value.
            if (str(st.st_dev), str(st.st_ino)) != (dev, ino):
                continue
            if whole and content != (new + "\n").encode():
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def refs_head(git_dir: str) -> str | None:
    """The ref ``<git_dir>/HEAD`` names, if it is a symbolic ref git wrote plainly (a
    line, or a symbolic link as git once made them)."""
    value = read_head(os.path.join(git_dir, "HEAD")) or ""
    return value[5:].strip() if value.startswith("ref: ") else None


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
