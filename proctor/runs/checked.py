"""The procedure-mode checks before a run, cached by the code's blob id.

The code was checked when an action stored it, but config, plugins and proctor itself
may have changed since, and a revision named by sha may never have been through an
action at all: so every run checks what it is about to run. The verdict of the same
blob under the same capabilities, check settings, validators and proctor version does
not change, so it is kept under ``.git/proctor/checked/`` and a second run of a
version pays one small file read instead of a parse and a walk.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from proctor.checks.runner import check_text
from proctor.checks.settings import CheckSettings
from proctor.checks.validation import Capabilities, Validator

CACHE_VERSION = 1


def _proctor_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("proctor")
    except metadata.PackageNotFoundError:
        return "unknown"


def cache_key(
    blob: str,
    capabilities: Capabilities,
    settings: CheckSettings,
    validators: dict[str, Validator],
) -> str:
    """Everything the verdict depends on, hashed."""
    parts: dict[str, Any] = {
        "v": CACHE_VERSION,
        "proctor": _proctor_version(),
        "blob": blob,
        "capabilities": [
            capabilities.network,
            capabilities.subprocess,
            list(capabilities.filesystem_write),
        ],
        "settings": repr(settings),
        "validators": sorted(
            f"{name}:{type(v).__module__}.{type(v).__qualname__}" for name, v in validators.items()
        ),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def check_procedure(
    path: str,
    code: bytes,
    blob: str,
    *,
    capabilities: Capabilities,
    settings: CheckSettings,
    validators: dict[str, Validator],
    cache_dir: Path | None,
    shared: int = 0,
) -> tuple[list[str], bool]:
    """(error findings as text lines, whether the verdict came from the cache).

    ``shared``: the repository's core.sharedRepository, for the verdict file (the
    repository's other users read it too).

    An empty list means the code may run. Code that is not UTF-8 is one finding.
    """
    key = cache_key(blob, capabilities, settings, validators)
    cached = cache_dir / f"{key}.json" if cache_dir is not None else None
    if cached is not None:
        try:
            data = json.loads(cached.read_text(encoding="utf-8"))
            if data.get("blob") == blob and isinstance(data.get("errors"), list):
                return [str(e) for e in data["errors"]], True
        except (OSError, ValueError):
            pass
    try:
        text = code.decode("utf-8")
    except UnicodeDecodeError as exc:
        errors = [f"{path}: not UTF-8 text: {exc}"]
    else:
        findings = check_text(
            path,
            text,
            mode="procedure",
            settings=settings,
            capabilities=capabilities,
            validators=validators,
        )
        errors = [f.format_text() for f in findings if f.severity == "error"]
    if cached is not None:
        _write(cached, {"blob": blob, "errors": errors}, shared)
    return errors, False


def _write(path: Path, data: dict[str, Any], shared: int) -> None:
    """Atomically: a reader in another process sees the old file, the new one or none."""
    from proctor.store.perms import adjust, make_folders

    try:
        make_folders(path.parent, shared)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    except OSError:
        return  # a cache that cannot be written only costs the next run a check
    try:
        adjust(fd, shared)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
