"""A content-addressed response cache, by default under ``.git/proctor/llm-cache/``.

Layout of the directory::

    manifest                  one line per write: "<cache key> <sha256 of the entry>"
    objects/ab/ab12...json    an entry, named by the SHA-256 of its own bytes
    lock                      taken (flock) around manifest appends and rewrites

The cache key is the SHA-256 of the backend's name and the whole canonical request
(:attr:`proctor.llm.backends.Request.key`). An entry is written to a temporary file and
renamed into place, so readers never see half of one, and since its name is its hash two
processes writing the same bytes write the same file. A manifest line is one ``write`` on
a file opened for append, under the lock; the last line for a key wins.

Every read is checked: the entry's bytes must hash to the manifest's value and name the
key asked for. A corrupt entry is logged, removed and treated as a miss, so the next call
rebuilds it. :meth:`ResponseCache.validate` checks everything (and by default drops what
is broken); :meth:`ResponseCache.purge` empties the cache. Both return counts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proctor.llm.backends import Reply, Request, canonical_json, sha256_hex
from proctor.store.perms import adjust, make_folders, open_file

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: appends stay atomic, rewrites unguarded
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("proctor.llm.cache")

FORMAT = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")


def default_cache_dir(git_dir: str | os.PathLike[str]) -> Path:
    """Where a repository keeps its cache: ``<git dir>/proctor/llm-cache``."""
    return Path(git_dir) / "proctor" / "llm-cache"


@dataclass(frozen=True)
class CacheReport:
    """What :meth:`ResponseCache.validate` found (and, with ``repair``, removed)."""

    entries: int = 0
    valid: int = 0
    corrupt: int = 0
    missing: int = 0
    orphans: int = 0
    bad_lines: int = 0
    removed: int = 0

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing or self.bad_lines)


class CorruptEntry(Exception):
    """An entry that does not match its manifest line (internal: reads turn it into a miss)."""


class ResponseCache:
    """Replies by cache key. Safe to share between threads and between processes."""

    def __init__(self, directory: str | os.PathLike[str], shared: int = 0) -> None:
        self.directory = Path(directory)
        # core.sharedRepository of the repository the cache lives in: its users share it.
        self.shared = shared
        self.objects = self.directory / "objects"
        self.manifest_path = self.directory / "manifest"
        self._index: dict[str, str] = {}
        self._offset = 0
        self._inode: int | None = None
        self._read_lock = threading.Lock()

    @staticmethod
    def key_for(backend: str, request: Request) -> str:
        """Backend name and request together: a fake's replies never answer for litellm."""
        return sha256_hex(f"{backend}\n{request.key}")

    # -- manifest --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        make_folders(self.directory, self.shared)
        fd = open_file(self.directory / "lock", os.O_RDWR | os.O_CREAT, self.shared)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _refresh(self) -> dict[str, str]:
        """Read manifest lines appended since the last look (all of it after a rewrite)."""
        with self._read_lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> dict[str, str]:
        try:
            st = self.manifest_path.stat()
        except FileNotFoundError:
            self._index, self._offset, self._inode = {}, 0, None
            return self._index
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._index, self._offset, self._inode = {}, 0, st.st_ino
        if st.st_size == self._offset:
            return self._index
        with open(self.manifest_path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        complete = chunk.rfind(b"\n") + 1  # a line still being written is read next time
        for line in chunk[:complete].splitlines():
            parsed = _parse_line(line)
            if parsed is not None:
                self._index[parsed[0]] = parsed[1]
        self._offset += complete
        return self._index

    def _append(self, key: str, digest: str) -> None:
        """One line in one ``write`` (callers hold the lock)."""
        line = f"{key} {digest}\n".encode("ascii")
        fd = open_file(self.manifest_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, self.shared)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    # -- entries ---------------------------------------------------------------------------

    def _object_path(self, digest: str) -> Path:
        return self.objects / digest[:2] / f"{digest}.json"

    def _read(self, key: str, digest: str) -> Reply:
        try:
            data = self._object_path(digest).read_bytes()
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise CorruptEntry(f"unreadable: {exc}") from exc
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            raise CorruptEntry(f"content hash {actual[:12]} does not match {digest[:12]}")
        try:
            record = json.loads(data)
            if record.get("key") != key:
                raise CorruptEntry("the entry belongs to another key")
            return Reply.from_dict(record["reply"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptEntry(f"malformed entry: {exc}") from exc

    def get(self, key: str) -> Reply | None:
        """The cached reply, or None on a miss or a corrupt entry (logged and removed)."""
        digest = self._refresh().get(key)
        if digest is None:
            return None
        try:
            reply = self._read(key, digest)
        except FileNotFoundError:
            log.warning("cache entry %s is missing its object; calling the model", key[:12])
            return None
        except CorruptEntry as exc:
            log.warning("cache entry %s is corrupt (%s); removed, calling the model", key[:12], exc)
            with contextlib.suppress(OSError):
                self._object_path(digest).unlink()
            return None
        return Reply(
            text=reply.text,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            request_id=reply.request_id,
            model=reply.model,
            backend=reply.backend,
            cached=True,
        )

    def put(self, key: str, request: Request, reply: Reply) -> str:
        """Store ``reply`` under ``key``; returns the entry's digest."""
        record = {
            "format": FORMAT,
            "key": key,
            "request": request.canonical(),
            "reply": reply.to_dict(),
            "stored_at": round(time.time(), 3),
        }
        data = canonical_json(record).encode("utf-8")
        digest = hashlib.sha256(data).hexdigest()
        path = self._object_path(digest)
        # Object and manifest line under one lock: validate() never sees an object whose
        # line is still to come and takes it for an orphan.
        with self._locked():
            if not _has_bytes(path, digest):
                make_folders(path.parent, self.shared)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
                try:
                    adjust(fd, self.shared)
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            self._append(key, digest)
        return digest

    # -- maintenance -----------------------------------------------------------------------

    def _object_files(self) -> Iterator[Path]:
        if self.objects.is_dir():
            yield from self.objects.glob("??/*.json")

    def validate(self, *, repair: bool = True) -> CacheReport:
        """Check every manifest line and entry. With ``repair``, drop broken entries and
        orphaned objects and rewrite the manifest with the valid lines only."""
        with self._locked():
            latest: dict[str, str] = {}
            bad_lines = 0
            if self.manifest_path.exists():
                for line in self.manifest_path.read_bytes().splitlines():
                    parsed = _parse_line(line)
                    if parsed is None:
                        bad_lines += 1
                    else:
                        latest[parsed[0]] = parsed[1]
            valid: dict[str, str] = {}
            corrupt = missing = removed = 0
            for key, digest in latest.items():
                try:
                    self._read(key, digest)
                except FileNotFoundError:
                    missing += 1
                except CorruptEntry as exc:
                    corrupt += 1
                    log.warning("cache entry %s is corrupt: %s", key[:12], exc)
                    if repair:
                        with contextlib.suppress(OSError):
                            self._object_path(digest).unlink()
                            removed += 1
                else:
                    valid[key] = digest
            wanted = set(latest.values())
            orphans = [p for p in self._object_files() if p.stem not in wanted]
            if repair:
                for path in orphans:
                    with contextlib.suppress(OSError):
                        path.unlink()
                        removed += 1
                if bad_lines or corrupt or missing or len(latest) != len(valid) or orphans:
                    self._rewrite_manifest(valid)
            return CacheReport(
                entries=len(latest),
                valid=len(valid),
                corrupt=corrupt,
                missing=missing,
                orphans=len(orphans),
                bad_lines=bad_lines,
                removed=removed,
            )

    def _rewrite_manifest(self, valid: dict[str, str]) -> None:
        text = "".join(f"{key} {digest}\n" for key, digest in sorted(valid.items()))
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".manifest-")
        adjust(fd, self.shared)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
        os.replace(tmp, self.manifest_path)

    def purge(self) -> int:
        """Remove every entry; returns how many objects were removed."""
        with self._locked():
            count = 0
            for path in list(self._object_files()):
                with contextlib.suppress(OSError):
                    path.unlink()
                    count += 1
            for leftover in self.objects.glob("??/.tmp-*") if self.objects.is_dir() else ():
                with contextlib.suppress(OSError):
                    leftover.unlink()
            self._rewrite_manifest({})
        with self._read_lock:
            self._index, self._offset, self._inode = {}, 0, None
        return count

    def stats(self) -> dict[str, Any]:
        """Counts for a status line: keys in the manifest and objects on disk."""
        return {"keys": len(self._refresh()), "objects": sum(1 for _ in self._object_files())}


def _parse_line(line: bytes) -> tuple[str, str] | None:
    parts = line.split()
    if len(parts) != 2:
        return None
    try:
        key, digest = parts[0].decode("ascii"), parts[1].decode("ascii")
    except UnicodeDecodeError:
        return None
    if _HEX64.fullmatch(key) and _HEX64.fullmatch(digest):
        return key, digest
    return None


def _has_bytes(path: Path, digest: str) -> bool:
    """Whether ``path`` already holds exactly the entry (a rewrite would change nothing)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == digest
    except OSError:
        return False
