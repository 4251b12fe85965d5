"""git's object formats, written and parsed in-process: no child process per object.

GitPython's object store spawns one ``git hash-object`` per object; a write here is zlib
and sha1 in this process, renamed into place. What the store puts inside objects (tree
entries, identity lines, trailers) is formatted here too, so that every object proctor
writes passes ``git fsck --strict`` from one place. Pure functions: no repository state.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zlib
from collections.abc import Mapping
from pathlib import Path

ZERO_SHA = "0" * 40
LARGE_TREE = 64 * 1024
MODE_FILE = "100644"
MODE_EXEC = "100755"
MODE_TREE = "40000"

# A tree entry: (mode, sha). Trees map a name to an entry.
Entry = tuple[str, str]
Tree = dict[str, Entry]


def write_loose_object(objects_dir: Path, kind: str, data: bytes) -> str:
    """Write a loose object; atomic by rename, idempotent by content. Returns its id."""
    header = f"{kind} {len(data)}\0".encode()
    sha = hashlib.sha1(header + data).hexdigest()
    directory = objects_dir / sha[:2]
    final = directory / sha[2:]
    if final.exists():
        return sha
    directory.mkdir(exist_ok=True)
    tmp = directory / f"tmp_obj_{os.getpid()}_{threading.get_ident()}_{sha[2:8]}"
    # Large trees are mostly incompressible ids; storing them uncompressed costs ~1.5x
    # the disk until the next gc packs them, and saves tens of ms per write.
    level = 0 if kind == "tree" and len(data) > LARGE_TREE else 1
    with open(tmp, "wb") as fh:
        fh.write(zlib.compress(header + data, level))
    os.chmod(tmp, 0o444)
    os.replace(tmp, final)
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


def commit_bytes(tree: str, parents: list[str], message: str, author: str, committer: str) -> bytes:
    """The body of a commit object; ``author`` and ``committer`` are identity lines."""
    lines = [f"tree {tree}"] + [f"parent {p}" for p in parents]
    lines += [f"author {author}", f"committer {committer}", "", message]
    body = "\n".join(lines)
    if not body.endswith("\n"):
        body += "\n"
    return body.encode()


def tag_bytes(target: str, name: str, tagger: str, message: str) -> bytes:
    """The body of an annotated tag object naming the commit ``target``."""
    body = f"object {target}\ntype commit\ntag {name}\ntagger {tagger}\n\n{message}"
    if not body.endswith("\n"):
        body += "\n"
    return body.encode()


def format_ident(name: str, email: str, when: float | None = None) -> str:
    """A git identity line value: ``Name <email> 1700000000 +0100``."""
    ts = int(when if when is not None else time.time())
    offset = time.localtime(ts).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return f"{name} <{email}> {ts} {sign}{offset // 60:02d}{offset % 60:02d}"


def add_trailers(message: str, trailers: Mapping[str, str]) -> str:
    """Append ``Key: value`` trailers after a blank line, as ``git interpret-trailers`` reads them."""
    message = message.rstrip("\n")
    if not trailers:
        return message + "\n"
    block = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return f"{message}\n\n{block}\n"


def short(sha: str | None) -> str:
    """An abbreviated id for messages; ``(none)`` for an unborn branch."""
    return sha[:12] if sha else "(none)"
