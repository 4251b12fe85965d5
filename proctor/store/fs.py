"""The work tree's file system, touched as git touches it: never through a symbolic link.

A committed ``procedures -> /elsewhere`` link, or an untracked ``procedures/x`` link a
user (or an attacker) left, would otherwise make a write land outside the repository.
Paths are checked with ``lstat`` along every component before anything is written (so a
refusal leaves nothing behind), and the writes themselves walk directory file
descriptors opened with ``O_NOFOLLOW``, so a link swapped in between is not followed
either. Temporary files are removed on every path, a full disk included.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import threading
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from proctor.store.errors import NameTakenError, UnsafePathError

__all__ = [
    "NOT_REGULAR",
    "check_path",
    "check_work_tree_paths",
    "folders_kept",
    "read_local",
    "remove_file",
    "write_file",
]

#: What ``read_local`` returns for something that is not a regular file (never equal to
#: any content, so the write sees it as not clean).
NOT_REGULAR = b"\0<not a regular file>"

_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def check_path(path: str) -> str:
    """Refuse a path git would refuse in a tree (``verify_path``): empty components,
    ``.`` and ``..``, ``.git``, a leading or trailing slash, NUL."""
    if not isinstance(path, str) or not path or "\0" in path or "\n" in path:
        raise UnsafePathError(f"invalid path {path!r}")
    for part in path.split("/"):
        if part in ("", ".", "..") or part.lower().rstrip(". ") == ".git":
            raise UnsafePathError(f"invalid path {path!r}: git refuses {part or 'an empty'!r}")
    return path


# How much longer than a work-tree file's name its temporary and backup names are
# (``tmp_name``, ``backup_name``).
_SIDE_CAR = len(".") + len(".proctor-tmp")


def _name_room(base: str) -> int:
    """The longest work-tree file name whose temporary and backup names still fit the
    file system's limit on a name."""
    try:
        limit = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    return limit - _SIDE_CAR


def check_work_tree_paths(base: str, paths: Iterable[str]) -> None:
    """Refuse, before anything is written, a path whose components in the work tree
    include a symbolic link, a file where a directory is needed, or a directory (or
    anything but a regular file) where the file goes, and a file name too long for the
    names it is written by."""
    seen: set[str] = set()
    room: int | None = None
    paths = list(paths)
    touched = set(paths)
    for path in paths:
        check_path(path)
        _check_not_a_side_car_of(path, touched)
        parts = path.split("/")
        if room is None:
            room = _name_room(base)
        if len(os.fsencode(parts[-1])) > room:
            raise UnsafePathError(
                f"{path}: its file name is {len(os.fsencode(parts[-1]))} bytes, and is "
                f"written by way of a temporary name {_SIDE_CAR} bytes longer, over the "
                f"limit of the file system of {base} (nothing was written)"
            )
        for i in range(len(parts)):
            prefix = "/".join(parts[: i + 1])
            last = i == len(parts) - 1
            if prefix in seen and not last:
                continue
            seen.add(prefix)
            try:
                st = os.lstat(os.path.join(base, prefix))
            except FileNotFoundError:
                if last:  # a new file in a folder that is there
                    _check_side_cars(base, parts)
                break
            except NotADirectoryError:
                raise UnsafePathError(
                    f"{path}: a file stands where a directory is needed in the work tree "
                    f"{base} (nothing was written)"
                ) from None
            if stat.S_ISLNK(st.st_mode):
                raise UnsafePathError(
                    f"{prefix} is a symbolic link in the work tree {base}; proctor does not "
                    "write through symbolic links (nothing was written)"
                )
            if not last and not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(
                    f"{prefix} is not a directory in the work tree {base}, but {path} needs "
                    "it to be one (nothing was written)"
                )
            if last and not stat.S_ISREG(st.st_mode):
                raise UnsafePathError(
                    f"{path} is not a regular file in the work tree {base} (nothing was written)"
                )
        else:  # the folder is there: the names the file is written by must be free
            _check_side_cars(base, parts)


def _check_not_a_side_car_of(path: str, touched: set[str]) -> None:
    """Refuse a change that touches a file and, with it, the name that file is written
    by or backed up under: writing the one would remove or replace the other."""
    folder, _, name = path.rpartition("/")
    for side in (tmp_name(name), backup_name(name)):
        other = f"{folder}/{side}" if folder else side
        if other in touched:
            raise UnsafePathError(
                f"{other} and {path} are in one change, and proctor writes the second by "
                f"way of the first's name; rename {other} with git (`git mv`) first "
                "(nothing was written)"
            )


def _check_side_cars(base: str, parts: list[str]) -> None:
    """Refuse a write whose temporary or backup name beside the file is taken (by the
    time a write checks, the leftovers of an interrupted one are cleared: what is there
    is someone's file, which the write would remove)."""
    folder = os.path.join(base, *parts[:-1])
    for side in (tmp_name(parts[-1]), backup_name(parts[-1])):
        if os.path.lexists(os.path.join(folder, side)):
            where = "/".join([*parts[:-1], side])
            raise NameTakenError(
                f"{where} is in the work tree {base}: proctor writes {'/'.join(parts)} by "
                "way of that name; move it away (`git mv` if it is committed) first "
                "(nothing was written)"
            )


# The folders a write walked to, while it runs (``folders_kept``): (base, parts) -> kept.
_KEPT = threading.local()


# At most so many descriptors are kept open by one write (a folder's, and those of the
# folders above it): a write touches one procedure's folder, and a process has a limit
# on open files.
_KEEP_DESCRIPTORS = 48


class _Kept(NamedTuple):
    fd: int
    parents: list[int]  # open descriptors of the base and each folder above ``fd``
    ids: list[tuple[int, int]]  # (device, inode) of each component the walk opened

    def close(self) -> None:
        for fd in (self.fd, *self.parents):
            os.close(fd)


@contextlib.contextmanager
def folders_kept() -> Iterator[None]:
    """Within the block, each work-tree folder is walked to once and its descriptor kept.

    A write touches a procedure's folder six times (read, back up and replace each of two
    files), and each walk opens every component without following links. A kept
    descriptor is used again only while each component of its path, looked at without
    following links, is still the folder the walk opened: a folder moved away (out of
    the work tree, say) and a link put in its place is walked to again, and the link
    refused, as a first write would. Folders proctor removes (``prune_empty_parents``)
    are forgotten first; past ``_KEEP_DESCRIPTORS`` descriptors, the others are walked
    each time (a write to hundreds of folders would otherwise run out of descriptors). The
    descriptors are closed when the block ends; a block inside another adds nothing.
    """
    if getattr(_KEPT, "fds", None) is not None:
        yield
        return
    _KEPT.fds = {}
    try:
        yield
    finally:
        _forget()
        _KEPT.fds = None


def _forget() -> None:
    kept: dict[tuple[str, tuple[str, ...]], _Kept] | None = getattr(_KEPT, "fds", None)
    if kept:
        for held in kept.values():
            held.close()
        kept.clear()


def _open_dir(base: str, parts: list[str], create: bool) -> int:
    """A descriptor of ``base/parts...``, each component opened without following links;
    give it back with ``_close_dir`` (a kept one stays open)."""
    kept: dict[tuple[str, tuple[str, ...]], _Kept] | None = getattr(_KEPT, "fds", None)
    if kept is None:
        return _walk(base, parts, create)
    key = (base, tuple(parts))
    held = kept.get(key)
    if held is not None and not _still_there(parts, held):
        # Moved or replaced since it was walked to: walk again, as a first write would
        # (a link in its place is refused there).
        del kept[key]
        held.close()
        held = None
    if held is None:
        open_now = sum(1 + len(other.parents) for other in kept.values())
        if open_now + 1 + len(parts) > _KEEP_DESCRIPTORS:  # many folders: walk the rest
            return _walk(base, parts, create)
        parents: list[int] = []
        ids: list[tuple[int, int]] = []
        held = kept[key] = _Kept(_walk(base, parts, create, parents, ids), parents, ids)
    return held.fd


def _still_there(parts: list[str], held: _Kept) -> bool:
    """Whether each component, looked up in the folder above it and not followed, is
    still the folder the walk opened. A descriptor follows its folder wherever it is
    moved; the path is what the write means."""
    for part, parent, (dev, ino) in zip(parts, held.parents, held.ids, strict=True):
        try:
            st = os.stat(part, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return False
        if st.st_ino != ino or st.st_dev != dev or not stat.S_ISDIR(st.st_mode):
            return False
    return True


def _close_dir(fd: int) -> None:
    kept: dict[tuple[str, tuple[str, ...]], _Kept] | None = getattr(_KEPT, "fds", None)
    if not kept or all(held.fd != fd for held in kept.values()):
        os.close(fd)


def _walk(
    base: str,
    parts: list[str],
    create: bool,
    parents: list[int] | None = None,
    ids: list[tuple[int, int]] | None = None,
) -> int:
    """Open ``base/parts...`` one component at a time, never through a link. With
    ``parents`` and ``ids`` given, the descriptors above the last are kept open in
    ``parents`` (the caller closes them) and each component's (device, inode) is added
    to ``ids``."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    reached: list[str] = []  # the folders down to the one being opened
    try:
        for part in parts:
            reached.append(part)
            try:
                child = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)
                except FileExistsError:
                    pass
                child = os.open(part, _NOFOLLOW_DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePathError(
                        f"{'/'.join(parts)}: {part} is a symbolic link or a file in the work "
                        f"tree {base}; not written through"
                    ) from None
                raise
            if parents is not None and ids is not None:
                try:
                    st = os.fstat(child)
                except BaseException:
                    os.close(child)
                    raise
                parents.append(fd)
                ids.append((st.st_dev, st.st_ino))
            else:
                os.close(fd)
            fd = child
    except PermissionError as exc:  # name the folder: the error has only its last part
        _close_all(fd, parents)
        where = os.path.join(base, *reached)
        raise PermissionError(exc.errno, exc.strerror, where) from None
    except BaseException:
        _close_all(fd, parents)
        raise
    return fd


def _close_all(fd: int, parents: list[int] | None) -> None:
    os.close(fd)
    for parent in parents or ():
        os.close(parent)
    if parents:
        parents.clear()


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` to ``fd``: ``os.write`` may write less than it is given."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def tmp_name(name: str) -> str:
    """The temporary file a work-tree file is written to before it is renamed in place."""
    return f".{name}.proctor-tmp"


def write_file(base: str, path: str, data: bytes, executable: bool) -> os.stat_result:
    """Write ``base/path`` atomically (temporary file, then rename), creating folders;
    returns the new file's ``lstat`` (what the index records).

    The mode is git's: 0666 or 0777 less the umask. The temporary file is removed if
    anything fails, a full disk or a file size limit included.
    """
    parts = path.split("/")
    name = parts[-1]
    tmp = tmp_name(name)
    dfd = _open_dir(base, parts[:-1], create=True)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        perm = 0o777 if executable else 0o666
        try:
            try:
                fd = os.open(tmp, flags, perm, dir_fd=dfd)
            except FileExistsError:  # left by a killed write (O_EXCL: never a link's target)
                os.unlink(tmp, dir_fd=dfd)
                fd = os.open(tmp, flags, perm, dir_fd=dfd)
            try:
                write_all(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
    finally:
        _close_dir(dfd)


def remove_file(base: str, path: str, prune: bool = True) -> None:
    """Remove ``base/path`` if it is there, then (``prune``) the folders it leaves empty,
    as git does."""
    parts = path.split("/")
    try:
        dfd = _open_dir(base, parts[:-1], create=False)
    except (FileNotFoundError, NotADirectoryError, UnsafePathError):
        return
    try:
        os.unlink(parts[-1], dir_fd=dfd)
    except FileNotFoundError:
        pass
    finally:
        _close_dir(dfd)
    if prune:
        prune_empty_parents(base, path)


def prune_empty_parents(base: str, path: str) -> None:
    """Remove the folders above ``path`` that are empty, deepest first."""
    parts = path.split("/")
    _forget()  # a kept descriptor must not outlive the folder it names
    for i in range(len(parts) - 1, 0, -1):
        try:
            os.rmdir(os.path.join(base, *parts[:i]))
        except OSError:
            break


def backup_name(name: str) -> str:
    """Where a work-tree file's previous version is kept (a hard link) until the write
    that replaces it is committed or rolled back."""
    return f".{name}.proctor-old"


def _in_dir(base: str, path: str, action: str) -> bool:
    """Run one of the backup actions on ``path``'s folder; False if the folder is gone."""
    parts = path.split("/")
    name = parts[-1]
    try:
        dfd = _open_dir(base, parts[:-1], create=False)
    except (FileNotFoundError, NotADirectoryError, UnsafePathError):
        return False
    try:
        backup = backup_name(name)
        if action == "link":
            try:
                os.link(name, backup, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
            except FileExistsError:  # left by a killed write: this one's backup replaces it
                os.unlink(backup, dir_fd=dfd)
                os.link(name, backup, src_dir_fd=dfd, dst_dir_fd=dfd, follow_symlinks=False)
        elif action == "restore":
            os.rename(backup, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            with contextlib.suppress(FileNotFoundError):  # it was the same file: rename kept it
                os.unlink(backup, dir_fd=dfd)
        elif action == "drop":
            os.unlink(backup, dir_fd=dfd)
        elif action == "exists":
            os.stat(backup, dir_fd=dfd, follow_symlinks=False)
        elif action == "unchanged":  # the backup is the file itself: nothing was written
            a = os.stat(backup, dir_fd=dfd, follow_symlinks=False)
            b = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
        elif action == "tmp":
            os.unlink(tmp_name(name), dir_fd=dfd)
        elif action == "settle":  # both, in one walk to the folder
            for leftover in (tmp_name(name), backup):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover, dir_fd=dfd)
        return True
    except FileNotFoundError:
        return False
    finally:
        _close_dir(dfd)


def keep_backup(base: str, path: str) -> None:
    """Hard-link the file at ``path`` to its backup name (no data copied)."""
    _in_dir(base, path, "link")


def restore_backup(base: str, path: str) -> bool:
    """Put the backup back in place (a rename: needs no free space)."""
    return _in_dir(base, path, "restore")


def drop_backup(base: str, path: str) -> None:
    _in_dir(base, path, "drop")


def has_backup(base: str, path: str) -> bool:
    return _in_dir(base, path, "exists")


def backup_is_current(base: str, path: str) -> bool:
    return _in_dir(base, path, "unchanged")


def settle(base: str, path: str) -> None:
    """After the ref moved: remove ``path``'s backup and any temporary file a killed
    write left (``remove_tmp`` and ``drop_backup`` together, one folder lookup)."""
    _in_dir(base, path, "settle")


def remove_tmp(base: str, path: str) -> None:
    """Remove a temporary file a killed write may have left for ``path``."""
    _in_dir(base, path, "tmp")


def read_local(base: str, path: str, limit: int | None = None) -> bytes | None:
    """The bytes of the regular file ``base/path``; None if absent; ``NOT_REGULAR`` for a
    link, a folder, a device or a FIFO (never opened for reading), or one over ``limit``."""
    parts = path.split("/")
    try:
        dfd = _open_dir(base, parts[:-1], create=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except UnsafePathError:
        return NOT_REGULAR
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(parts[-1], flags, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError:
            return NOT_REGULAR
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or (limit is not None and st.st_size > limit):
                return NOT_REGULAR
            chunks = []
            while True:
                chunk = os.read(fd, max(st.st_size, 65536))
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)
    finally:
        _close_dir(dfd)
