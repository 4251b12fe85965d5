"""Who a commit says wrote it, and what the audit trailers may say.

The author and committer of every commit (and the tagger of every tag) are git's identity,
found where ``git commit`` finds it and validated as git validates it; a value git would
silently mangle (``<``, ``>``, a newline) is refused instead, because in a header it would
forge other header lines. The actor is never an identity: it is a trailer value, one
printable line. The checks here are called again by the object formatters
(``objects``), so no caller can skip them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from proctor.store.errors import IdentityError, TrailerError
from proctor.store.git import run_git

__all__ = [
    "MAX_TRAILER_VALUE",
    "IdentityError",
    "TrailerError",
    "check_ident_line",
    "check_trailer",
    "resolve_identity",
    "strip_crud",
    "validate_identity",
]

#: What git trims from both ends of a name or email (ident.c ``crud``).
_CRUD = frozenset(chr(c) for c in range(33)) | frozenset(".,:;<>\"\\'")
#: What git drops from inside them, because it delimits an identity line; refused here.
_DELIMITERS = {"<": "'<'", ">": "'>'", "\n": "a newline", "\0": "a NUL byte"}

#: An identity line value as proctor writes it: ``Name <email> 1700000000 +0100``.
_IDENT_LINE = re.compile(r"[^<>\n\0]*[^<>\n\0 ] <[^<>\n\0]+> (?:0|[1-9][0-9]{0,15}) [+-][0-9]{4}\Z")

MAX_TRAILER_VALUE = 256
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}\Z")

_FIX = {
    "name": 'git config user.name "Your Name"',
    "email": "git config user.email you@example.com",
}


def strip_crud(value: str) -> str:
    """``value`` without the characters git trims from the ends of a name or email."""
    start, end = 0, len(value)
    while start < end and value[start] in _CRUD:
        start += 1
    while end > start and value[end - 1] in _CRUD:
        end -= 1
    return value[start:end]


def _fix(field: str, source: str | None) -> str:
    if source and source.startswith("GIT_"):
        return f"unset or correct {source}"
    if source and "." in source and source not in ("user.name", "user.email"):
        return f"correct {source} (git config {source} ...)"
    return _FIX[field]


def validate_identity(
    name: str, email: str, *, sources: tuple[str | None, str | None] = (None, None)
) -> tuple[str, str]:
    """The (name, email) git would write, or IdentityError saying how to fix it.

    ``sources`` name where each value came from (an environment variable or a config
    key), so the message points at the thing to change.
    """
    cleaned = []
    for field, value, source in (("name", name, sources[0]), ("email", email, sources[1])):
        where = f" (from {source})" if source else ""
        for char, label in _DELIMITERS.items():
            if char in value:
                raise IdentityError(
                    f"git identity {field} {value!r}{where} contains {label}, which would "
                    f"break the commit header; {_fix(field, source)}"
                )
        trimmed = strip_crud(value)
        if not trimmed:
            raise IdentityError(
                f"git identity {field} {value!r}{where} is empty once trimmed, and git "
                f"refuses an empty {field}; {_fix(field, source)}"
            )
        cleaned.append(trimmed)
    return cleaned[0], cleaned[1]


def check_ident_line(line: str, what: str) -> str:
    """Refuse an identity line value (``Name <email> ts tz``) that is not exactly one."""
    if not isinstance(line, str) or not _IDENT_LINE.match(line):
        raise IdentityError(
            f"{what} {line!r} is not a git identity line (Name <email> time zone); "
            "build it with format_ident from git's identity (git config user.name / user.email)"
        )
    return line


def check_trailer(key: str, value: str) -> None:
    """Refuse a trailer that could be read as more than one ``Key: value`` line."""
    if not isinstance(key, str) or not _TRAILER_KEY.match(key):
        raise TrailerError(f"invalid trailer key {key!r}: letters, digits and '-' only")
    if not isinstance(value, str):
        raise TrailerError(f"{key}: the value must be text, not {type(value).__name__}")
    if (
        not value
        or value != value.strip()
        or not value.isprintable()
        or len(value) > MAX_TRAILER_VALUE
    ):
        raise TrailerError(
            f"invalid {key} {value[:80]!r}: it must be one printable line of 1 to "
            f"{MAX_TRAILER_VALUE} characters, without surrounding spaces"
        )


# -- where git finds the identity ----------------------------------------------------------

#: Config keys the store reads once at open; identity ones are among them.
IDENTITY_KEYS = (
    "user.name",
    "user.email",
    "user.useconfigonly",
    "author.name",
    "author.email",
    "committer.name",
    "committer.email",
)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() in ("true", "yes", "on", "1")


def resolve_identity(
    kind: str, config: Mapping[str, str], cwd: str, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """git's author or committer identity (``kind``), in git's order of precedence.

    Name: ``GIT_<KIND>_NAME``, ``<kind>.name``, ``user.name``; email: ``GIT_<KIND>_EMAIL``,
    ``<kind>.email``, ``user.email``, ``EMAIL``. What is still missing is auto-detected by
    git itself (``git var``), which refuses exactly when ``git commit`` would.
    """
    if kind not in ("author", "committer"):
        raise ValueError(kind)
    env = os.environ if env is None else env
    upper = kind.upper()
    found: dict[str, tuple[str, str]] = {}
    for field in ("name", "email"):
        candidates: list[tuple[str, str | None]] = [
            (f"GIT_{upper}_{field.upper()}", env.get(f"GIT_{upper}_{field.upper()}")),
            (f"{kind}.{field}", config.get(f"{kind}.{field}")),
            (f"user.{field}", config.get(f"user.{field}")),
        ]
        if field == "email":
            candidates.append(("EMAIL", env.get("EMAIL")))
        for source, value in candidates:
            if value is not None:
                found[field] = (source, value)
                break
    if len(found) < 2:
        if _truthy(config.get("user.useconfigonly")):
            missing = " and ".join(f for f in ("name", "email") if f not in found)
            raise IdentityError(
                f"no git identity {missing} is set and user.useConfigOnly forbids guessing; "
                f"{_both_fixes()}"
            )
        name, email = _detect(kind, cwd)
        found.setdefault("name", (f"git's guess for the {kind} name", name))
        found.setdefault("email", (f"git's guess for the {kind} email", email))
    (name_src, name), (email_src, email) = found["name"], found["email"]
    return validate_identity(name, email, sources=(name_src, email_src))


def _both_fixes() -> str:
    return (
        f"set one with {_FIX['email']} and {_FIX['name']} (or GIT_AUTHOR_NAME and "
        "GIT_AUTHOR_EMAIL); the actor (--actor, PROCTOR_ACTOR) says who acts, it is not "
        "an identity"
    )


def _detect(kind: str, cwd: str) -> tuple[str, str]:
    """Ask git to guess the identity as ``git commit`` does (it may refuse)."""
    proc = run_git(["var", f"GIT_{kind.upper()}_IDENT"], cwd)
    line = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode != 0 or " <" not in line:
        said = [
            ln.removeprefix("fatal: ")
            for ln in proc.stderr.decode("utf-8", "replace").splitlines()
            if ln.startswith("fatal:")
        ]
        reason = said[-1] if said else "git has no identity"
        raise IdentityError(f"{kind} identity unknown ({reason}); {_both_fixes()}")
    name, _, rest = line.rpartition(" <")
    return name, rest.partition(">")[0]
