"""git's object formats, written and parsed in-process: no child process per object.

GitPython's object store spawns one ``git hash-object`` per object; a write here is zlib
and sha1 in this process, renamed into place. What the store puts inside objects (tree
entries, identity lines, trailers) is formatted here too, so that every object proctor
writes passes ``git fsck --strict`` from one place. Pure functions: no repository state.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

from proctor.core.errors import UsageError
from proctor.store.fs import write_all
from proctor.store.identity import check_ident_line, check_trailer, validate_identity
from proctor.store.perms import adjust

ZERO_SHA = "0" * 40
LARGE_TREE = 64 * 1024
MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_TREE = "40000"
MODE_LINK = "120000"

# A tree entry: (mode, sha). Trees map a name to an entry.
Entry = tuple[str, str]
Tree = dict[str, Entry]


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_loose_object(objects_dir: Path, kind: str, data: bytes, shared: int = 0) -> str:
    """Write a loose object; atomic by rename, idempotent by content. Returns its id.
    ``shared``: :func:`~proctor.store.perms.shared_permission` of the repository, for a
    new fan-out folder."""
    header = f"{kind} {len(data)}\0".encode()
    sha = hashlib.sha1(header + data).hexdigest()
    directory = os.path.join(objects_dir, sha[:2])
    final = os.path.join(directory, sha[2:])
    if os.path.exists(final):
        return sha
    tmp = os.path.join(directory, f"tmp_obj_{os.getpid()}_{threading.get_ident()}_{sha[2:8]}")
    # Large trees are mostly incompressible ids; storing them uncompressed costs ~1.5x
    # the disk until the next gc packs them, and saves tens of ms per write.
    level = 0 if kind == "tree" and len(data) > LARGE_TREE else 1
    payload = memoryview(zlib.compress(header + data, level))
    # Complete before it is visible: written whole to a temporary name (read-only, as
    # git writes objects), then renamed. On any failure (a full disk, a file size
    # limit) the temporary file goes too.
    try:
        try:
            fd = os.open(tmp, _CREATE, 0o444)
        except FileNotFoundError:  # the first object in this fan-out folder
            try:
                os.mkdir(directory)
            except FileExistsError:  # made meanwhile by another writer, maybe another user
                pass
            else:
                adjust(directory, shared)
            fd = os.open(tmp, _CREATE, 0o444)
        except FileExistsError:  # left by a killed writer that had this pid and thread
            os.unlink(tmp)
            fd = os.open(tmp, _CREATE, 0o444)
        try:
            write_all(fd, payload)
        finally:
            os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return sha


def blob_sha(data: bytes) -> str:
    """The id git gives ``data`` as a blob, without writing it."""
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()


def tree_sort_key(item: tuple[str, Entry]) -> bytes:
    """git orders tree entries by name, with a sub-tree compared as ``name/``."""
    name, (mode, _sha) = item
    key = name.encode()
    return key + b"/" if mode == MODE_TREE else key


def serialize_tree_raw(tree: Tree) -> tuple[bytes, dict[str, int]]:
    """The tree object's bytes, and where each entry's 20-byte id sits in them."""
    parts = []
    offsets: dict[str, int] = {}
    pos = 0
    for name, (mode, sha) in sorted(tree.items(), key=tree_sort_key):
        head = mode.encode() + b" " + name.encode() + b"\0"
        pos += len(head)
        offsets[name] = pos
        pos += 20
        parts.append(head + bytes.fromhex(sha))
    return b"".join(parts), offsets


def parse_tree_raw(data: bytes) -> tuple[Tree, dict[str, int]]:
    """A tree object's entries, and the offsets of their ids (to patch them in place)."""
    tree: Tree = {}
    offsets: dict[str, int] = {}
    i = 0
    n = len(data)
    find = data.index
    while i < n:
        space = find(b" ", i)
        nul = find(b"\0", space)
        mode = data[i:space].decode()
        name = data[space + 1 : nul].decode("utf-8", "surrogateescape")
        tree[name] = (MODE_TREE if mode == "40000" else mode, data[nul + 1 : nul + 21].hex())
        offsets[name] = nul + 1
        i = nul + 21
    return tree, offsets


_SHA = re.compile(r"[0-9a-f]{40}\Z")
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|\Z)|^[./]|[./]\Z")


def check_sha(value: str, what: str) -> str:
    """Refuse anything but a full lower-case object id where a header names an object."""
    if not isinstance(value, str) or not _SHA.match(value):
        raise UsageError(f"{what} {value!r} is not an object id")
    return value


def check_ref_name(name: str, what: str = "ref") -> str:
    """Refuse a name ``git check-ref-format`` would refuse (and so any name holding a
    space or newline, which would be read as more than one field or line)."""
    if not isinstance(name, str) or not name or name == "@" or _BAD_REF.search(name):
        raise UsageError(f"invalid {what} name {name!r}")
    return name


def _check_message(message: str) -> str:
    if "\0" in message:
        raise UsageError("a commit or tag message cannot contain a NUL byte")
    return message


def commit_bytes(tree: str, parents: list[str], message: str, author: str, committer: str) -> bytes:
    """The body of a commit object; ``author`` and ``committer`` are identity lines.

    Every header value is checked here, the lowest level, so that no value reaching it
    (from any caller) can add a header line.
    """
    check_sha(tree, "tree")
    for parent in parents:
        check_sha(parent, "parent")
    lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
    lines += [
        f"author {check_ident_line(author, 'author')}",
        f"committer {check_ident_line(committer, 'committer')}",
        "",
        _check_message(message),
    ]
    body = "\n".join(lines)
    if not body.endswith("\n"):
        body += "\n"
    return body.encode()


def tag_bytes(target: str, name: str, tagger: str, message: str) -> bytes:
    """The body of an annotated tag object naming the commit ``target`` (checked as
    ``commit_bytes`` checks its headers)."""
    check_sha(target, "tag target")
    check_ref_name(name, "tag")
    check_ident_line(tagger, "tagger")
    body = f"object {target}\ntype commit\ntag {name}\ntagger {tagger}\n\n{_check_message(message)}"
    if not body.endswith("\n"):
        body += "\n"
    return body.encode()


def format_ident(name: str, email: str, when: float | None = None) -> str:
    """A git identity line value: ``Name <email> 1700000000 +0100``.

    ``name`` and ``email`` are validated and trimmed as git does (``validate_identity``):
    IdentityError for anything that would not make exactly one valid header value.
    """
    name, email = validate_identity(name, email)
    ts = int(when if when is not None else time.time())
    offset = time.localtime(ts).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return f"{name} <{email}> {ts} {sign}{offset // 60:02d}{offset % 60:02d}"


#: A line ``git interpret-trailers`` would take for a trailer (``Key: value``).
_TRAILER_LIKE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*[ \t]*:")


def _paragraphs(message: str) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in message.split("\n"):
        if line.strip():
            out[-1].append(line)
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


def add_trailers(message: str, trailers: Mapping[str, str]) -> str:
    """Append ``Key: value`` trailers after a blank line, as ``git interpret-trailers`` reads them.

    Nothing in ``message`` may be read as a trailer either: a line starting with ``---``
    (where git's trailer parser stops, taking the lines above it for the trailers) is
    refused, and a message written without trailers must not end in a paragraph of
    ``Key: value`` lines.
    """
    for key, value in trailers.items():
        check_trailer(key, value)
    _check_message(message)
    for line in message.split("\n"):
        if line.startswith("---"):
            raise UsageError(
                f"a message line may not start with '---' ({line[:40]!r}): git would read "
                "what is above it as the trailers"
            )
    message = message.rstrip("\n")
    if not trailers:
        paragraphs = _paragraphs(message)
        if len(paragraphs) > 1 and any(_TRAILER_LIKE.match(ln) for ln in paragraphs[-1]):
            raise UsageError(
                "the message ends in a paragraph git would read as trailers "
                f"({paragraphs[-1][0][:40]!r}); end it with a sentence"
            )
        return message + "\n"
    block = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return f"{message}\n\n{block}\n"


def short(sha: str | None) -> str:
    """An abbreviated id for messages; ``(none)`` for an unborn branch."""
    return sha[:12] if sha else "(none)"
