"""Line endings and other clean filters: content committed as ``git add`` would commit it.

With ``core.autocrlf`` or a ``text``/``eol``/``filter`` attribute, git stores a file with
CRLF line endings as LF. A commit made of the raw bytes would hold CRLF, and the index
git then builds from the work-tree file would hold LF: ``git status`` would show a
change nobody made, and the check for uncommitted work would see every file git checked
out with CRLF as edited. So when a conversion can apply, content is hashed by git itself
(``git hash-object --path``, which also honours the index's "already has CRLF" rule)
and work-tree files are compared as git would stage them. When none can apply (no
autocrlf, no attributes file anywhere), nothing is spawned: the common case stays free.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from proctor.core.errors import StoreError
from proctor.store.git import run_git
from proctor.store.odb import ObjectStore

__all__ = ["applies", "clean_blob_ids", "staged_ids_of"]

_TRUE = ("true", "yes", "on", "1", "input")


def _global_attributes(store: ObjectStore) -> str:
    configured = store.config.get("core.attributesfile")
    if configured:
        return os.path.expanduser(configured)
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(xdg, "git", "attributes")


def applies(
    store: ObjectStore,
    root_tree: str | None,
    paths: list[str],
    edits: Mapping[str, bytes | None],
    work_tree: str | None,
) -> bool:
    """Whether git could convert any of ``paths`` on the way in (autocrlf or attributes)."""
    if store.config.get("core.autocrlf", "false").strip().lower() in _TRUE:
        return True
    candidates = (os.path.join(store.common_dir, "info", "attributes"), _global_attributes(store))
    if any(os.path.isfile(p) for p in candidates):
        return True
    dirs = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
    for folder in dirs:
        attrs = f"{folder}/.gitattributes" if folder else ".gitattributes"
        if edits.get(attrs) is not None or store.entry_at(root_tree, attrs) is not None:
            return True
        if work_tree is not None and os.path.lexists(os.path.join(work_tree, attrs)):
            return True
    return False


def clean_blob_ids(
    store: ObjectStore, edits: Mapping[str, bytes | None], cwd: str
) -> dict[str, str]:
    """Write each edited file's content as git would stage it at its path (in the work
    tree ``cwd``: its attributes and index); their ids."""
    ids: dict[str, str] = {}
    for path, data in edits.items():
        if data is None:
            continue
        proc = run_git(["hash-object", "-w", "--path", path, "--stdin"], cwd, input=data)
        if proc.returncode != 0:
            raise StoreError(
                f"git hash-object failed for {path}: {proc.stderr.decode(errors='replace').strip()}"
            )
        ids[path] = proc.stdout.decode().strip()
    return ids


def staged_ids_of(cwd: str) -> Callable[[dict[str, bytes]], dict[str, str]]:
    """A function giving the ids git would stage work-tree contents as, at their paths."""

    def ids(contents: dict[str, bytes]) -> dict[str, str]:
        out: dict[str, str] = {}
        for path, data in contents.items():
            proc = run_git(["hash-object", "--path", path, "--stdin"], cwd, input=data)
            if proc.returncode != 0:
                raise StoreError(
                    f"git hash-object failed for {path}: "
                    f"{proc.stderr.decode(errors='replace').strip()}"
                )
            out[path] = proc.stdout.decode().strip()
        return out

    return ids
