"""Replacing index entries in place: the one index change proctor makes itself.

After a write that updates files already in the index (an update of a procedure, the
common write), the new index differs from the old one only in those entries' stat data
and blob ids, and in the cache-tree extension, whose folders on those paths become
invalid (as ``git update-index`` makes them). Doing that in-process saves starting
``git update-index``, the largest part of a write when the branch is checked out.

Everything else is left to git (``worktree`` then runs ``update-index``): a path that is
new or deleted, an entry with extended flags (skip-worktree, intent-to-add), a path at a
merge stage, index version 4, a split or sparse index, any required extension, or an
index larger than ``MAX_ENTRIES``, where walking the entries here would cost more than
the process it saves. Optional extensions that cache state about entries (untracked
cache, fsmonitor, the offset tables) are dropped, which git allows and rebuilds; the
resolve-undo extension is kept as it is.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections import OrderedDict

__all__ = ["MAX_ENTRIES", "replace_entries"]

MAX_ENTRIES = 4096

_FIXED = struct.Struct(">10I20sH")
_FLAGS = struct.Struct(">H")
_U32 = struct.Struct(">I")
_M32 = 0xFFFFFFFF
_DROP = (b"UNTR", b"FSMN", b"EOIE", b"IEOT")
_NSEC = 1_000_000_000
_FILE_MODES = (b"\0\0\x81\xa4", b"\0\0\x81\xed", b"\0\0\xa0\0")

# Where the entries end in the indexes this process wrote, by checksum. An index is
# rewritten here with its entries where they were, so the next write of a long-lived
# store finds its entries by a search of the bytes instead of a walk over every entry;
# a checksum no other index has is what says the bytes are the ones written.
_ENTRIES_END: OrderedDict[bytes, int] = OrderedDict()
_KEEP = 8


def _fixed(mode: int, sha: str, st: os.stat_result, flags: int) -> bytes:
    return _FIXED.pack(
        (st.st_ctime_ns // _NSEC) & _M32,
        st.st_ctime_ns % _NSEC,
        (st.st_mtime_ns // _NSEC) & _M32,
        st.st_mtime_ns % _NSEC,
        st.st_dev & _M32,
        st.st_ino & _M32,
        mode,
        st.st_uid & _M32,
        st.st_gid & _M32,
        st.st_size & _M32,
        bytes.fromhex(sha),
        flags,
    )


def replace_entries(data: bytes, files: dict[str, tuple[int, str, os.stat_result]]) -> bytes | None:
    """``data`` (an index) with each entry in ``files`` (path -> (mode, blob id, lstat of
    the work-tree file)) replaced; None when that is not such a plain update."""
    if len(data) < 32 or data[:4] != b"DIRC" or not files:
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3) or count > MAX_ENTRIES:
        return None
    trailer = data[-20:]
    body_end = len(data) - 20
    if trailer != b"\0" * 20 and hashlib.sha1(data[:body_end]).digest() != trailer:
        return None  # not an index git would read: let git say so
    wanted = {p.encode("utf-8", "surrogateescape"): p for p in files}
    known_end = _ENTRIES_END.get(trailer) if trailer != b"\0" * 20 else None
    if known_end is not None:
        pos, found = known_end, _search(data, wanted, known_end)
    else:
        pos, found = _walk(data, wanted, count, body_end)
    if found is None or len(found) != len(files):
        return None  # a path git must add
    extensions = _extensions(data, pos, body_end, list(files))
    if extensions is None:
        return None
    out = bytearray(data[:pos])
    for path, (mode, sha, st) in files.items():
        offset, flags = found[path]
        out[offset : offset + 62] = _fixed(mode, sha, st, flags & ~0x8000)
    out += extensions
    if trailer == b"\0" * 20:  # index.skipHash: no checksum to know the bytes by
        return bytes(out) + trailer
    checksum = hashlib.sha1(out).digest()
    _ENTRIES_END[checksum] = pos
    while len(_ENTRIES_END) > _KEEP:
        _ENTRIES_END.popitem(last=False)
    return bytes(out) + checksum


def _walk(
    data: bytes, wanted: dict[bytes, str], count: int, body_end: int
) -> tuple[int, dict[str, tuple[int, int]] | None]:
    """Every entry in turn: where the entries end, and where each wanted one starts
    (with its flags); None for those when an entry is one this module leaves to git."""
    lengths = {len(name) for name in wanted}
    found: dict[str, tuple[int, int]] = {}
    unpack_flags = _FLAGS.unpack_from
    pos = 12
    for _ in range(count):
        if pos + 62 > body_end:
            return pos, None
        flags = unpack_flags(data, pos + 60)[0]
        extended = 2 if flags & 0x4000 else 0
        start = pos + 62 + extended
        size = flags & 0xFFF
        if size == 0xFFF:
            size = data.index(b"\0", start) - start
        if size in lengths:
            name = data[start : start + size]
            if name in wanted:
                if extended or flags & 0x3000:
                    return pos, None
                found[wanted[name]] = (pos, flags)
        pos += (62 + extended + size + 8) & ~7
    return pos, found


def _search(data: bytes, wanted: dict[bytes, str], end: int) -> dict[str, tuple[int, int]] | None:
    """The wanted entries of an index whose entries end at ``end``, found by searching
    for each name: an entry starts 62 bytes before its name, at an offset 4 mod 8, its
    flags hold the name's length and its mode is a file's. A name found twice (a merge
    stage) or in no such place is left to the walk, or to git."""
    found: dict[str, tuple[int, int]] = {}
    unpack_flags = _FLAGS.unpack_from
    for raw, path in wanted.items():
        if len(raw) >= 0xFFF:
            return None
        needle = raw + b"\0"
        at = data.find(needle, 74, end)
        while at != -1:
            start = at - 62
            if (start - 12) % 8 == 0:
                flags = unpack_flags(data, start + 60)[0]
                if flags & 0xFFF == len(raw) and data[start + 24 : start + 28] in _FILE_MODES:
                    if path in found or flags & 0x7000:
                        return None
                    found[path] = (start, flags)
            at = data.find(needle, at + 1, end)
    return found


def _extensions(data: bytes, pos: int, end: int, paths: list[str]) -> bytes | None:
    """The extensions after the entries, as they must be once ``paths`` changed."""
    out = bytearray()
    while pos < end:
        if pos + 8 > end:
            return None
        sig = data[pos : pos + 4]
        size = _U32.unpack_from(data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if pos + 8 + size > end:
            return None
        pos += 8 + size
        if sig == b"TREE":
            tree = _invalidate(body, paths)
            if tree is None:
                return None
            out += sig + _U32.pack(len(tree)) + tree
        elif sig == b"REUC":
            out += sig + _U32.pack(size) + body
        elif sig in _DROP or b"A" <= sig[:1] <= b"Z":
            continue  # optional: git rebuilds it
        else:
            return None  # required (a split or sparse index...): git's job
    return bytes(out) if pos == end else None


def _invalidate(body: bytes, paths: list[str]) -> bytes | None:
    """The cache-tree with the folders holding ``paths`` marked invalid (count -1, no id).

    Nodes come in pre-order, each ``name NUL count SP subtrees LF [id]``; the walk stops
    after the last folder it must change and keeps the rest as it is.
    """
    targets: set[str] = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        targets.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    out = bytearray()
    pos = 0
    kept = 0
    stack: list[tuple[str, int]] = []  # (folder, children still to read)
    try:
        while pos < len(body) and targets:
            nul = body.index(b"\0", pos)
            lf = body.index(b"\n", nul)
            name = body[pos:nul].decode("utf-8", "surrogateescape")
            count_text, subtrees_text = body[nul + 1 : lf].split(b" ")
            count, subtrees = int(count_text), int(subtrees_text)
            end = lf + 1 + (20 if count >= 0 else 0)
            while stack and stack[-1][1] == 0:
                stack.pop()
            if stack:
                folder, left = stack[-1]
                stack[-1] = (folder, left - 1)
                full = f"{folder}/{name}" if folder else name
            else:
                full = ""  # the root
            if full in targets:
                targets.discard(full)
                out += body[kept:pos] + body[pos:nul] + b"\0-1 " + subtrees_text + b"\n"
                kept = end
            stack.append((full, subtrees))
            pos = end
    except ValueError:
        return None
    return bytes(out + body[kept:])
