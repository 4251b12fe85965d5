"""Which files a run reads, and how their bytes become source text.

Directories are walked for ``*.py`` files, pruning the usual tool and environment
directories; ``[check] exclude`` and ``per-file-ignores`` patterns match as ruff's do,
relative to the directory the config was found in. Bytes are decoded as Python itself
would (BOM, PEP 263 coding line); a file that is not text becomes a ``PC003`` finding
rather than an exception, so one odd file never stops a run.
"""

from __future__ import annotations

import codecs
import fnmatch
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from proctor.checks.selection import split_entries
from proctor.checks.validation import UNREADABLE, Finding
from proctor.core.errors import UsageError

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings

__all__ = ["DEFAULT_EXCLUDES", "PathRules", "collect_files", "decode_source", "read_source"]

# Directories never descended into while walking, whatever the config says (as ruff).
DEFAULT_EXCLUDES: frozenset[str] = frozenset(
    {
        ".bzr",
        ".direnv",
        ".eggs",
        ".git",
        ".git-rewrite",
        ".hg",
        ".ipynb_checkpoints",
        ".mypy_cache",
        ".nox",
        ".pants.d",
        ".pyenv",
        ".pytest_cache",
        ".pytype",
        ".ruff_cache",
        ".svn",
        ".tox",
        ".venv",
        ".vscode",
        "__pycache__",
        "__pypackages__",
        "_build",
        "buck-out",
        "node_modules",
        "site-packages",
        "venv",
    }
)

_CODING = re.compile(rb"coding[:=]")


def _relative_to_root(path: str, root_abs: str) -> str | None:
    """``path`` relative to the config root with forward slashes, or None if outside it."""
    rel = os.path.relpath(os.path.abspath(path), root_abs)
    if rel == os.curdir:
        return ""
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return None
    return rel.replace(os.sep, "/")


def _pattern_matches(pattern: str, rel: str | None, path: str) -> bool:
    """ruff-style matching: a pattern without ``/`` matches any path component (or the
    basename); one with ``/`` is a glob relative to the root that also matches everything
    below a matching directory."""
    pattern = pattern.replace(os.sep, "/").rstrip("/")
    if not pattern:
        return False
    pattern = pattern.removeprefix("./")
    if "/" not in pattern:
        parts = (rel if rel is not None else path.replace(os.sep, "/")).split("/")
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts if part)
    if rel is None:
        return False
    if fnmatch.fnmatchcase(rel, pattern):
        return True
    # Everything under a matching directory: test each leading part of the path.
    parts = rel.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern) for i in range(1, len(parts)))


class PathRules:
    """Exclude and per-file-ignore patterns bound to an absolute root.

    Built once per run and sent to worker processes, hence the explicit pickle state.
    """

    __slots__ = ("exclude", "per_file_ignores", "root_abs")

    def __init__(
        self, root_abs: str, exclude: list[str], per_file_ignores: dict[str, list[str]]
    ) -> None:
        self.root_abs = root_abs
        self.exclude = exclude
        self.per_file_ignores = per_file_ignores

    def __getstate__(self) -> tuple[str, list[str], dict[str, list[str]]]:
        return self.root_abs, self.exclude, self.per_file_ignores

    def __setstate__(self, state: tuple[str, list[str], dict[str, list[str]]]) -> None:
        self.root_abs, self.exclude, self.per_file_ignores = state

    @classmethod
    def from_settings(cls, settings: CheckSettings | None) -> PathRules:
        if settings is None:
            return cls(os.path.abspath("."), [], {})
        return cls(
            os.path.abspath(settings.root or "."),
            list(settings.exclude),
            dict(settings.per_file_ignores),
        )

    def excluded(self, path: str) -> bool:
        if not self.exclude:
            return False
        rel = _relative_to_root(path, self.root_abs)
        return any(_pattern_matches(p, rel, path) for p in self.exclude)

    def ignores_for(self, path: str) -> list[str]:
        if not self.per_file_ignores:
            return []
        rel = _relative_to_root(path, self.root_abs)
        out: list[str] = []
        for pattern, codes in self.per_file_ignores.items():
            if _pattern_matches(pattern, rel, path):
                out.extend(split_entries(codes))
        return out


def collect_files(paths: Sequence[str], settings: CheckSettings | None = None) -> list[str]:
    """The files to check: explicit files as given, directories searched for ``*.py``.

    Config excludes apply to explicit files too (pre-commit passes every staged file and
    the config should win); the built-in skip list (.git, .venv, __pycache__...) only
    prunes the directory walk. A path that does not exist is a usage error.
    """
    rules = PathRules.from_settings(settings)
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise UsageError("no such file or directory: " + ", ".join(missing))
    files: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.normcase(os.path.abspath(path))
        if key not in seen:
            seen.add(key)
            files.append(path)

    for path in paths:
        if not os.path.isdir(path):
            _refuse_special(path)
            if not rules.excluded(path):
                add(path)
            continue
        if rules.excluded(path):
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in DEFAULT_EXCLUDES and not rules.excluded(os.path.join(dirpath, d))
            )
            for name in sorted(filenames):
                if name.endswith(".py"):
                    full = os.path.join(dirpath, name)
                    if not rules.excluded(full):
                        add(full)
    return files


def _refuse_special(path: str) -> None:
    """A path given on the command line must be a folder or a regular file: a FIFO or a
    device would hang the reader or never end (UsageError, exit 2)."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # the reader reports it as unreadable
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a device or special file"
        raise UsageError(f"{path} is {kind}, not a regular file or a folder")


def decode_source(data: bytes) -> str:
    """Source bytes to text as Python would read them: UTF-8 unless a BOM or a PEP 263
    coding line says otherwise. Raises ValueError (UnicodeDecodeError, or SyntaxError
    for an unknown declared encoding) or LookupError when that is impossible."""
    if data.startswith(codecs.BOM_UTF8) or _CODING.search(data, 0, _second_line_end(data)):
        import io
        import tokenize

        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding)
    return data.decode("utf-8")


def _second_line_end(data: bytes) -> int:
    first = data.find(b"\n")
    if first < 0:
        return len(data)
    second = data.find(b"\n", first + 1)
    return len(data) if second < 0 else second


#: The largest file ``proctor check`` reads; its size is asked before reading.
MAX_SOURCE_BYTES = 20_000_000


def read_source(path: str) -> str | Finding:
    """The text of the file at ``path``, or the PC003 finding saying why there is none.

    Opened without blocking and judged by ``fstat`` before a byte is read: a FIFO, a
    device or a file over :data:`MAX_SOURCE_BYTES` is a finding, never a hang.
    """
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Finding(path, 1, 1, UNREADABLE, "error", f"cannot read file: {reason}")
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Finding(path, 1, 1, UNREADABLE, "error", "not a regular file")
        if info.st_size > MAX_SOURCE_BYTES:
            return Finding(
                path,
                1,
                1,
                UNREADABLE,
                "error",
                f"{info.st_size} bytes, over the limit of {MAX_SOURCE_BYTES} bytes",
            )
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return Finding(path, 1, 1, UNREADABLE, "error", f"cannot read file: {reason}")
    finally:
        os.close(fd)
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        return Finding(
            path,
            line,
            nul - (data.rfind(b"\n", 0, nul) + 1) + 1,
            UNREADABLE,
            "error",
            f"binary file (a NUL byte at line {line}), not Python source",
        )
    try:
        return decode_source(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        return Finding(path, 1, 1, UNREADABLE, "error", f"not valid source text: {reason}")
