"""File permissions in a shared repository (``core.sharedRepository``), as git sets them.

Several users (or a service and its operators) may write to one repository: git then
makes every file and folder it creates in the git dir group- or world-writable and its
folders set-gid, whatever the writer's umask. proctor writes beside git (loose objects,
the index, and its own state under ``.git/proctor/``: the writer lock, the sync journal,
metrics, the outbox, the run log, caches); each of those must be shared the same way, or
the first user's proctor locks every other user out of the store.

The rule is git's ``adjust_shared_perm``: after creating a file or folder, add the
repository's bits (or set its exact mode), copy read bits to search bits on folders and
executables, keep a read-only file read-only, and set the set-gid bit on folders. Only the
owner can change a mode, so a file another user made is left as it is (theirs to share);
a file this user made before it was shared is fixed the next time it is opened.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from proctor.core.errors import UsageError
from proctor.store.errors import UnsafePathError
from proctor.store.fs import write_all
from proctor.store.git import read_config

__all__ = [
    "adjust",
    "denied",
    "make_folder",
    "make_folders",
    "open_file",
    "refuse_link",
    "remember",
    "share_database",
    "shared_mode",
    "shared_permission",
    "state_folder",
    "state_setting",
    "write_file",
]

_KEY = "core.sharedrepository"

# The setting of each repository this process opened, by common dir: every ObjectStore
# reads it at open (in the one ``git config`` it runs), and the state files of that
# repository are made by code that knows only its folder.
_SETTINGS: dict[str, int] = {}


def shared_permission(setting: str | None) -> int:
    """``core.sharedRepository`` as git reads it: 0 (the umask decides), a set of
    permission bits to add (``group`` 0660, ``all`` 0664), or an exact mode given in
    octal, returned negated. UsageError for a value git refuses too."""
    value = (setting or "").strip().lower()
    if value in ("", "umask", "false", "no", "off", "0"):
        return 0
    if value in ("group", "true", "yes", "on", "1"):
        return 0o660
    if value in ("all", "world", "everybody", "2"):
        return 0o664
    try:
        mode = int(value, 8)
    except ValueError:
        raise UsageError(
            f"core.sharedRepository = {setting!r} is not a value git accepts"
        ) from None
    if mode & 0o600 != 0o600:
        raise UsageError(f"core.sharedRepository = {setting!r} leaves the owner without rw")
    return -(mode & 0o666)


def remember(common_dir: str, shared: int) -> None:
    """Record the setting of the repository at ``common_dir`` (read by its store)."""
    _SETTINGS[os.path.abspath(common_dir)] = shared


def state_setting(common_dir: str) -> int:
    """The setting of the repository at ``common_dir``: the one its store read, or read
    now (one ``git config``) for a caller that opened no store."""
    key = os.path.abspath(common_dir)  # callers spell the folder their own way
    try:
        return _SETTINGS[key]
    except KeyError:
        pass
    shared = shared_permission(read_config(common_dir, (_KEY,)).get(_KEY))
    _SETTINGS[key] = shared
    return shared


def shared_mode(mode: int, shared: int, *, folder: bool = False) -> int:
    """The permission bits git gives a file (or folder) of ``mode`` in a repository whose
    setting is ``shared``."""
    if not shared:
        return stat.S_IMODE(mode)
    tweak = -shared if shared < 0 else shared
    if not mode & stat.S_IWUSR:  # read-only (a loose object, a lock seed) stays so
        tweak &= ~0o222
    if mode & stat.S_IXUSR:
        tweak |= (tweak & 0o444) >> 2
    new = (mode & ~0o777) | tweak if shared < 0 else mode | tweak
    if folder:
        new |= (new & 0o444) >> 2
        new |= stat.S_ISGID  # new files take the folder's group, as git's do
    return stat.S_IMODE(new)


def adjust(path: str | os.PathLike[str] | int, shared: int) -> None:
    """Give the file or folder at ``path`` (or open descriptor) the shared bits, if this
    user may: nothing when the repository is not shared, the bits are there already,
    another user owns it, or it is a symbolic link (whatever it points to is not ours
    to open up)."""
    if not shared:
        return
    st = os.fstat(path) if isinstance(path, int) else os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    if st.st_uid != os.geteuid() and os.geteuid() != 0:
        return
    mode = shared_mode(st.st_mode, shared, folder=stat.S_ISDIR(st.st_mode))
    if mode != stat.S_IMODE(st.st_mode):
        if isinstance(path, int):
            os.fchmod(path, mode)
        else:
            os.chmod(path, mode)


def make_folder(path: str | os.PathLike[str], shared: int) -> None:
    """``mkdir`` that leaves the folder shared as git shares its own (an existing one
    this user made is fixed too)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not shared or not os.path.isdir(path):
            return
    adjust(path, shared)


# The state folders this process made (or found), by (common dir, parts, setting): a
# write asks for its folder several times (the writer lock, the journal, the lock seed,
# metrics), and the ``mkdir`` is tried once per process. A folder removed meanwhile is
# made again by :func:`open_file`, when a file cannot be created in it.
_FOLDERS: dict[tuple[str, tuple[str, ...], int], Path] = {}


def state_folder(common_dir: str, *parts: str) -> Path:
    """``.git/proctor/<parts>``, each folder made (and shared) on first use.

    Everything proctor keeps per clone lives here, so this is where a shared
    repository's users must all be able to create files."""
    shared = state_setting(common_dir)
    key = (common_dir, parts, shared)
    known = _FOLDERS.get(key)
    if known is not None:
        return known
    path = os.path.join(common_dir, "proctor")
    make_folder(path, shared)
    for part in parts:
        path = os.path.join(path, part)
        make_folder(path, shared)
    _FOLDERS[key] = folder = Path(path)
    return folder


def _remake_folder(path: str | os.PathLike[str]) -> bool:
    """Make again the state folder ``path`` would be created in, if it is one this
    process made and then lost (someone removed ``.git/proctor``); whether it was."""
    parent = Path(os.path.dirname(os.fspath(path)))
    # A copy to look through: another thread may add a folder (or clear the table) as
    # this one looks.
    for (common_dir, parts, _shared), folder in list(_FOLDERS.items()):
        if folder == parent:
            _FOLDERS.clear()  # the folders above it may be gone too
            state_folder(common_dir, *parts)
            return True
    return False


def open_file(path: str | os.PathLike[str], flags: int, shared: int, mode: int = 0o666) -> int:
    """``os.open`` of a file in the git dir, shared if it is created (or was made by this
    user before it was). Never through a symbolic link in its place (UnsafePathError):
    proctor's own state is never one, and following it would write, truncate or chmod
    whatever file it points to."""
    try:
        try:
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
        except FileNotFoundError:
            if not flags & os.O_CREAT or not _remake_folder(path):
                raise
            fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except PermissionError as exc:  # say whose file (or folder) it is and what fixes it
        raise PermissionError(exc.errno, denied(Path(path)), os.fspath(path)) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _linked(path) from None
        raise
    if shared:
        try:
            adjust(fd, shared)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
    return fd


def refuse_link(path: str | os.PathLike[str]) -> None:
    """UnsafePathError if a symbolic link stands at ``path``: for state proctor hands to
    a library that opens it by name (SQLite), which :func:`open_file` cannot guard."""
    if os.path.islink(path):
        raise _linked(path)


def _linked(path: str | os.PathLike[str]) -> UnsafePathError:
    return UnsafePathError(
        f"{os.fspath(path)} is a symbolic link; proctor does not open its own state "
        "through one (remove it: proctor makes the file again); nothing was written"
    )


def share_database(path: str | os.PathLike[str], shared: int) -> None:
    """An SQLite file in the git dir, created shared before SQLite opens it: SQLite makes
    its ``-wal`` and ``-shm`` files with the database's mode, so they are shared too
    (and ones this user made before the repository was shared are fixed)."""
    if not shared:
        return
    os.close(open_file(path, os.O_RDWR | os.O_CREAT, shared))
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            adjust(f"{os.fspath(path)}{suffix}", shared)


def make_folders(path: str | os.PathLike[str], shared: int) -> None:
    """``mkdir -p`` whose every folder is shared as :func:`make_folder` shares one."""
    path = Path(path)
    if not path.is_dir():
        if path.parent != path:
            make_folders(path.parent, shared)
        make_folder(path, shared)
    elif shared:
        adjust(path, shared)


def write_file(path: str | os.PathLike[str], data: bytes, shared: int) -> None:
    """Write ``data`` to a (temporary) file in the git dir: made shared, never through a
    symbolic link in its place."""
    fd = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, shared)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def denied(path: Path) -> str:
    """Why this user may not open ``path``: the file, or the folder it would be made in,
    with its mode and owner, and the fix that fits (a root-owned one was made by a
    command run as root, e.g. with sudo; another user's, in a repository not shared)."""
    where = path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        where = path.parent  # the folder refuses the new file
        try:
            st = os.lstat(where)
        except OSError:
            return "permission denied"
    except OSError:
        return "permission denied"
    folder = f"the folder {where}: " if where != path else ""
    said = f"permission denied ({folder}mode {st.st_mode & 0o7777:04o}, owner uid {st.st_uid})"
    if st.st_uid == 0 and os.geteuid() != 0:
        fix = (
            "it belongs to root: a proctor or git command run as root (with sudo?) made "
            f"it; give proctor's state back to this user: sudo chown -R {os.geteuid()} "
            f"'{where.parent if where == path else where}'"
        )
    else:
        fix = (
            "in a repository several users write to, set `git config "
            "core.sharedRepository group` and let the owner run any proctor command, "
            "or make it group-writable (chmod g+rw)"
        )
    return f"{said}; {fix}"
