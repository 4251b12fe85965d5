"""Replacing index entries in place: the one index change proctor makes itself.

After a write that updates files already in the index (an update of a procedure, the
common write), the new index differs from the old one only in those entries' stat data
and blob ids, and in the cache-tree extension, whose folders on those paths become
invalid (as ``git update-index`` makes them). Doing that in-process saves starting
``git update-index``, the largest part of a write when the branch is checked out.

Everything else is left to git (``worktree`` then runs ``update-index``): a path that is
new or deleted, an entry with extended flags (skip-worktree, intent-to-add), a path at a
merge stage, index version 4, a split or sparse index (any required extension), entries
out of git's order, or an index larger than ``MAX_ENTRIES``. The entries are walked once
per index (``layout``, which the dirty check's lookup shares, kept by checksum), and a
path's entry is found by a binary search over the entries' names, which git keeps in
byte order: a path's bytes anywhere else (inside a longer name, an id, an extension) are
never taken for its entry. Optional extensions that cache state about entries (untracked
cache, fsmonitor, the offset tables) are dropped, which git allows and rebuilds; the
resolve-undo extension is kept as it is.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from array import array
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["MAX_ENTRIES", "Layout", "entries_named", "layout", "replace_entries"]

# Past this many entries git reads the index. Below it the walk here (0.3 us an entry,
# once per index a process sees; 6 ms for 20,000) costs less than the git process it
# saves, which reads and writes the index too; what bounds it is memory: the old and
# the new index are held whole, and 262,144 entries are an index of about 25 MB.
MAX_ENTRIES = 1 << 18

_FIXED = struct.Struct(">10I20sH")
_FLAGS = struct.Struct(">H")
_SEC_FLAGS = struct.Struct(">8xI48xH")  # an entry's mtime second and its flags
_U32 = struct.Struct(">I")
_M32 = 0xFFFFFFFF
_DROP = (b"UNTR", b"FSMN", b"EOIE", b"IEOT")
_NSEC = 1_000_000_000
_FILE_MODES = (b"\0\0\x81\xa4", b"\0\0\x81\xed")  # 100644, 100755


class Layout(NamedTuple):
    """Where an index's entries are: the offset of each, ascending, where they end (the
    extensions start) and the index's size. For an index this process wrote, also the
    entries changed in second ``since`` or later (with that second), so that finding
    the racily clean ones does not walk every entry again; for an index walked, each
    entry's modification second (``secs``, beside ``starts``) for the same search."""

    starts: array[int]
    end: int
    size: int
    since: int | None = None
    recent: tuple[tuple[int, int], ...] = ()
    secs: array[int] | None = None


# The layouts of the indexes this process read or wrote, by checksum. An index is
# rewritten here with its entries where they were, so the next write of a long-lived
# store knows them without a walk over every entry; a checksum no other index has is
# what says the bytes are the ones walked.
_LAYOUTS: OrderedDict[bytes, Layout] = OrderedDict()
_KEEP = 8
_NO_HASH = b"\0" * 20  # index.skipHash: no checksum to know the bytes by


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


def layout(data: bytes) -> Layout | None:
    """The layout of the entries of a version 2 or 3 index of at most ``MAX_ENTRIES``
    entries in git's order, with only optional extensions; None for anything else (git
    reads those: a split index's ``link`` or a sparse one's ``sdir`` says the entries here
    are not all there is). Walked once per index, then known by its checksum."""
    if len(data) < 32 or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3) or count > MAX_ENTRIES:
        return None
    trailer = data[-20:]
    known = _LAYOUTS.get(trailer) if trailer != _NO_HASH else None
    if known is not None and known.size == len(data):
        return known
    found = _walk(data, count, len(data) - 20)
    if found is not None and trailer != _NO_HASH:
        _remember(trailer, found)
    return found


def _remember(checksum: bytes, found: Layout) -> None:
    _LAYOUTS[checksum] = found
    _LAYOUTS.move_to_end(checksum)
    while len(_LAYOUTS) > _KEEP:
        _LAYOUTS.popitem(last=False)


def _walk(data: bytes, count: int, body_end: int) -> Layout | None:
    """Every entry in turn (each one's length is in its flags, or up to its name's NUL
    for a long name), then the extensions' headers; None when the entries do not fit in
    the index, are out of git's order (names ascending, a name's stages together), or an
    extension is one git requires to be understood (its name starts with no capital)."""
    starts = array("I")
    secs = array("I")
    add = starts.append
    add_sec = secs.append
    unpack = _SEC_FLAGS.unpack_from
    pos = 12
    previous = b""
    for _ in range(count):
        if pos + 62 > body_end:
            return None
        sec, flags = unpack(data, pos)
        fixed = 64 if flags & 0x4000 else 62
        size = flags & 0xFFF
        if size == 0xFFF:
            nul = data.find(b"\0", pos + fixed, body_end)
            if nul == -1:
                return None
            size = nul - pos - fixed
        name = data[pos + fixed : pos + fixed + size]
        if name < previous:
            return None
        previous = name
        add(pos)
        add_sec(sec)
        pos += (fixed + size + 8) & ~7
    end = pos
    while pos + 8 <= body_end:
        if not b"A" <= data[pos : pos + 1] <= b"Z":
            return None
        pos += 8 + _U32.unpack_from(data, pos + 4)[0]
    if pos != body_end:
        return None
    return Layout(starts, end, len(data), secs=secs)


def _name_at(data: bytes, start: int) -> bytes:
    flags = _FLAGS.unpack_from(data, start + 60)[0]
    fixed = 64 if flags & 0x4000 else 62
    size = flags & 0xFFF
    if size == 0xFFF:
        size = data.index(b"\0", start + fixed) - start - fixed
    return data[start + fixed : start + fixed + size]


def entries_named(data: bytes, found: Layout, raw: bytes) -> list[tuple[int, int]]:
    """The entries of ``data`` named ``raw``, in index order: (offset, flags) of each.

    A binary search over the entries' names (``layout`` saw them in order), so only an
    entry's own name is ever compared: the same bytes inside another entry's name or id,
    or in an extension, are not one."""
    starts = found.starts
    lo, hi = 0, len(starts)
    while lo < hi:
        mid = (lo + hi) // 2
        if _name_at(data, starts[mid]) < raw:
            lo = mid + 1
        else:
            hi = mid
    hits: list[tuple[int, int]] = []
    while lo < len(starts) and _name_at(data, starts[lo]) == raw:
        hits.append((starts[lo], _FLAGS.unpack_from(data, starts[lo] + 60)[0]))
        lo += 1
    return hits


def replace_entries(
    data: bytes,
    files: dict[str, tuple[int, str, os.stat_result]],
    racy: tuple[int, int] | None = None,
    unchanged: Callable[[str, str, int, int], bool] | None = None,
) -> bytes | None:
    """``data`` (an index) with each entry in ``files`` (path -> (mode, blob id, lstat of
    the work-tree file)) replaced; None when that is not such a plain update.

    ``racy``: when the index in ``data`` was written (nanoseconds) and the second the
    new one is. An entry whose time is not older than its index's is racily clean: only
    that tells git its file may have changed since it was staged, in the same clock tick,
    which the times cannot show. One that is racy in the old index and would not be in
    the new (git compares whole seconds; built with USE_NSEC, nanoseconds) would pass
    for clean there: ``unchanged(path, blob id, size, seconds)`` must find its file as
    the entry has it, or git makes the index (it smudges a changed entry, size 0, and
    knows which files it converts on the way in). Within one second that is only the
    files changed since the old index was written.
    """
    if not files:
        return None
    found = layout(data)
    if found is None:
        return None
    trailer = data[-20:]
    body_end = len(data) - 20
    if trailer != _NO_HASH and hashlib.sha1(memoryview(data)[:body_end]).digest() != trailer:
        return None  # not an index git would read: let git say so
    at: dict[str, tuple[int, int]] = {}
    for path in files:
        hits = entries_named(data, found, path.encode("utf-8", "surrogateescape"))
        if len(hits) != 1 or hits[0][1] & 0x7000:
            return None  # new (git adds it), at a merge stage, or with extended flags
        at[path] = hits[0]
    extensions = _extensions(data, found.end, body_end, list(files))
    if extensions is None:
        return None
    out = bytearray(memoryview(data)[: found.end])
    replaced = {offset for offset, _flags in at.values()}
    recent: list[tuple[int, int]] = []
    since = None
    if racy is not None:
        since = racy[0] // _NSEC
        recent = _recent(data, found, since)
        for start in _racy(data, recent, *racy):
            if start in replaced:
                continue
            flags = _FLAGS.unpack_from(data, start + 60)[0]
            if flags & 0x4000 or data[start + 24 : start + 28] not in _FILE_MODES:
                return None  # skip-worktree, a link, a gitlink: git knows what each needs
            name_end = data.index(b"\0", start + 62)
            path = data[start + 62 : name_end].decode("utf-8", "surrogateescape")
            size, sec = _U32.unpack_from(data, start + 36)[0], _U32.unpack_from(data, start + 8)[0]
            if unchanged is None or not unchanged(
                path, data[start + 40 : start + 60].hex(), size, sec
            ):
                return None
    for path, (mode, sha, st) in files.items():
        offset, flags = at[path]
        out[offset : offset + 62] = _fixed(mode, sha, st, flags & ~0x8000)
    out += extensions
    if trailer == _NO_HASH:
        out += trailer
        return bytes(out)
    checksum = hashlib.sha1(out).digest()
    # Every entry changed in second ``since`` or later, as they are in ``out``: the new
    # index is written after the old, so a later look needs no other.
    kept = [(start, sec) for start, sec in recent if start not in replaced]
    kept += [(at[p][0], (st.st_mtime_ns // _NSEC) & _M32) for p, (_m, _s, st) in files.items()]
    if since is not None:
        kept = [(start, sec) for start, sec in kept if sec >= since]
    _remember(
        checksum,
        Layout(found.starts, found.end, len(out) + 20, since, tuple(kept)),
    )
    out += checksum
    return bytes(out)


def _recent(data: bytes, found: Layout, since: int) -> list[tuple[int, int]]:
    """The entries changed in second ``since`` or later, with that second: from the
    layout when it knows them from that second on, else by a walk over every entry.
    Those whose size is already 0 are left out (git reads their files anyway)."""
    if found.since is not None and found.since <= since:
        return [(start, sec) for start, sec in found.recent if sec >= since]
    if found.secs is not None:
        if not found.secs or max(found.secs) < since:
            return []  # the usual case, found in one pass in C
        pairs = zip(found.starts, found.secs, strict=True)
    else:
        unpack = _U32.unpack_from
        pairs = zip(found.starts, (unpack(data, start + 8)[0] for start in found.starts))
    return [
        (start, sec)
        for start, sec in pairs
        if sec >= since and data[start + 36 : start + 40] != b"\0\0\0\0"
    ]


def _racy(data: bytes, recent: list[tuple[int, int]], old_ns: int, new_sec: int) -> list[int]:
    """Of the ``recent`` entries, those racily clean in an index written at ``old_ns``
    that an index written in second ``new_sec`` would no longer show as racy, by either
    of git's clocks."""
    unpack = _U32.unpack_from
    return [
        start
        for start, sec in recent
        if sec < new_sec or sec * _NSEC + unpack(data, start + 12)[0] >= old_ns
    ]


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

    Nodes come in pre-order, each ``name NUL count SP subtrees LF [id]``. Only the
    folders on the paths are looked at by name: any other folder is passed over whole,
    its nodes counted, not read (``_skip``); the walk stops after the last folder it
    must change and keeps the rest as it is.
    """
    targets: set[bytes] = {b""}
    for path in paths:
        parts = path.encode("utf-8", "surrogateescape").split(b"/")[:-1]
        targets.update(b"/".join(parts[: i + 1]) for i in range(len(parts)))
    out = bytearray()
    pos = 0
    kept = 0
    stack: list[list[Any]] = []  # [folder, children still to read] of the folders changed
    match = _NODE.match
    while pos < len(body) and targets:
        node = match(body, pos)
        if node is None:
            return None
        name, count, subtrees = node[1], int(node[2]), int(node[3])
        end = node.end() + (20 if count >= 0 else 0)
        while stack and stack[-1][1] == 0:
            stack.pop()
        if stack:
            stack[-1][1] -= 1
            folder = stack[-1][0]
            full = folder + b"/" + name if folder else name
        elif pos == 0:
            full = b""  # the root
        else:
            return None  # a second root: not a cache-tree git wrote
        if full in targets:
            targets.discard(full)
            out += body[kept:pos] + name + b"\0-1 " + node[3] + b"\n"
            kept = end
            stack.append([full, subtrees])
            pos = end
        else:
            skipped = _skip(body, end, subtrees)
            if skipped is None:
                return None
            pos = skipped
    return bytes(out + body[kept:])


_NODE = re.compile(rb"([^\0]*)\0(-?[0-9]+) ([0-9]+)\n", re.DOTALL)


def _skip(body: bytes, pos: int, nodes: int) -> int | None:
    """Where the ``nodes`` whole subtrees starting at ``pos`` end (None: malformed)."""
    match = _NODE.match
    while nodes:
        node = match(body, pos)
        if node is None:
            return None
        nodes += int(node[3]) - 1
        pos = node.end() + (0 if node[2][:1] == b"-" else 20)
    return pos
