"""The check runner: files in, sorted findings out, for ``proctor check``, the pre-commit
hooks and the action pipeline alike.

This module is on the pre-commit hot path. It imports the standard library and
``proctor.core`` only (never pydantic, GitPython or an LLM client), and it keeps the
per-file work close to one ``ast.parse``: comments are tokenized only in files that
mention ``noqa``, statement spans are computed only when a suppression could need them,
and the process pool, SARIF metadata and tokenizer are imported on first use.

Decisions worth knowing (docs/checks.md explains them to users):

* A file that does not parse yields one ``PC001`` finding; a file that is not text
  (NUL bytes, undecodable) yields ``PC003``; a validator that raises yields ``PC004``
  naming it. None of them stops the run.
* ``# noqa`` must name codes or prefixes; a bare one suppresses nothing and is reported
  as ``PC002``. In procedure mode (code an LLM may have written) inline suppressions and
  per-file ignores are not read at all.
* Any finding, warnings included, makes the exit status 1: a hook that prints something
  and still passes teaches people to ignore it.
"""

from __future__ import annotations

import ast
import codecs
import fnmatch
import os
import re
import sys
from collections.abc import Collection, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from proctor.checks.validation import (
    BARE_NOQA,
    SYNTAX_ERROR,
    UNREADABLE,
    Capabilities,
    CheckContext,
    Finding,
    Mode,
    Rule,
    SourceFile,
    Validator,
)
from proctor.core.config import CheckSettings, find_config
from proctor.core.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, ProctorError, UsageError

if TYPE_CHECKING:
    from typing import IO, Any

__all__ = [
    "BARE_NOQA",
    "DEFAULT_EXCLUDES",
    "FORMATS",
    "RUNNER_RULES",
    "SYNTAX_ERROR",
    "UNREADABLE",
    "VALIDATOR_ERROR",
    "Selection",
    "all_rules",
    "check_file",
    "check_paths",
    "check_text",
    "collect_files",
    "format_findings",
    "load_validators",
    "procedure_capabilities",
    "resolve_selection",
    "run_checks",
    "run_cli",
    "to_sarif",
]

# A validator raised while checking a file. Reported instead of crashing the run.
VALIDATOR_ERROR = "PC004"

RUNNER_RULES: tuple[Rule, ...] = (
    Rule(
        SYNTAX_ERROR,
        "syntax-error",
        "error",
        "The file does not parse as Python, so no other check could look at it.",
        "Fix the syntax error, or exclude the file if it is not meant to be Python.",
    ),
    Rule(
        BARE_NOQA,
        "bare-noqa",
        "warning",
        "A `# noqa` comment without codes suppresses nothing here; a blanket "
        "suppression would also hide every future finding on that line.",
        "Name the codes it is meant to silence: `# noqa: PS101` or a prefix `# noqa: PS1`.",
    ),
    Rule(
        UNREADABLE,
        "unreadable-file",
        "error",
        "The file could not be read as Python source text: it contains NUL bytes, is not "
        "valid UTF-8 (or its declared coding), or could not be opened.",
        "Save it as UTF-8, or exclude it if it is not Python source.",
    ),
    Rule(
        VALIDATOR_ERROR,
        "validator-error",
        "error",
        "A validator failed unexpectedly on this file, so the file was not fully checked.",
        "Report the message to the validator's authors; meanwhile the other checks still ran.",
    ),
)

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

FORMATS = ("text", "json", "sarif")

_NOQA_HINT = re.compile(r"#\s*noqa", re.IGNORECASE)
# A noqa comment, optionally followed by `: CODE[, CODE ...]`. Codes are upper-case letters with
# optional digits (PS101, PS1, PS); anything else after the colon makes it a bare noqa.
_NOQA = re.compile(r"#\s*noqa\b(?P<rest>[^#]*)", re.IGNORECASE)
_NOQA_CODES = re.compile(r"\s*:\s*(?P<codes>[A-Z]+[0-9]*(?:(?:\s*,\s*|\s+)[A-Z]+[0-9]*)*)")
_CODE = re.compile(r"[A-Z]+[0-9]*")
_CODING = re.compile(rb"coding[:=]")


# -- selection ------------------------------------------------------------------------------


class Selection(NamedTuple):
    """Which validators run and which codes survive, built from select and ignore lists.

    ``names`` are whole checks (``safety``); ``prefixes`` are codes or code prefixes.
    ``everything`` means no select list was given. The runner's own ``PC`` codes are
    always selected (a file that could not be checked must not pass silently) but can be
    ignored like any other code. A named tuple rather than a dataclass: it is built on
    every hook start, and it crosses into worker processes.
    """

    everything: bool = True
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    ignore_names: frozenset[str] = frozenset()
    ignore_prefixes: tuple[str, ...] = ()

    def runs(self, validator: Validator) -> bool:
        """Whether any of the validator's findings could be kept."""
        if validator.name in self.ignore_names:
            return False
        if self.everything or validator.name in self.names:
            return True
        return any(rule.code.startswith(self.prefixes) for rule in validator.rules)

    def keeps(self, code: str, owner: str | None) -> bool:
        if owner is not None and owner in self.ignore_names:
            return False
        if self.ignore_prefixes and code.startswith(self.ignore_prefixes):
            return False
        if owner is None or self.everything or owner in self.names:
            return True
        return code.startswith(self.prefixes) if self.prefixes else False


def _split_entries(entries: Iterable[str]) -> list[str]:
    return [part.strip() for entry in entries for part in entry.split(",") if part.strip()]


def _classify(
    entries: Iterable[str], validators: dict[str, Validator], *, strict: bool, where: str
) -> tuple[set[str], list[str]]:
    """Split select/ignore entries into check names and code prefixes.

    An entry is a check name, a code, or a prefix of at least one known code. Unknown
    entries are a usage error when ``strict`` (select: a typo there silently checks
    nothing); ignore lists are lenient so that disabling a plugin does not break them.
    """
    known_codes = [r.code for r in RUNNER_RULES]
    known_codes += [r.code for v in validators.values() for r in v.rules]
    lowered = {name.lower(): name for name in validators}
    names: set[str] = set()
    prefixes: list[str] = []
    for entry in _split_entries(entries):
        if entry.lower() in lowered:
            names.add(lowered[entry.lower()])
            continue
        code = entry.upper()
        if _CODE.fullmatch(code) and any(known.startswith(code) for known in known_codes):
            prefixes.append(code)
            continue
        if strict:
            checks = ", ".join(sorted(validators)) or "none loaded"
            raise UsageError(
                f"{where}: unknown check or rule {entry!r} "
                f"(checks: {checks}; or a rule code or prefix such as PS101, PS1, PL)"
            )
        prefixes.append(code)
    return names, prefixes


def resolve_selection(
    select: Sequence[str] | None,
    validators: dict[str, Validator],
    settings: CheckSettings | None = None,
    *,
    strict_config: bool = True,
) -> Selection:
    """Combine ``--select`` with the config's select/ignore. CLI select replaces the
    config's select; the config's ignore always applies. ``strict_config=False`` lets
    the config's select name checks that are not loaded (the pre-commit hooks load the
    built-in checks only, and a third-party check named there must not break them)."""
    settings = settings or CheckSettings()
    if select:
        chosen: Sequence[str] | None = select
        where = "--select"
    elif settings.select:
        chosen = settings.select
        where = "config check.select"
    else:
        chosen = None
        where = ""
    ignore_names, ignore_prefixes = _classify(
        settings.ignore, validators, strict=False, where="config check.ignore"
    )
    if chosen is None:
        return Selection(
            ignore_names=frozenset(ignore_names), ignore_prefixes=tuple(ignore_prefixes)
        )
    names, prefixes = _classify(
        chosen, validators, strict=bool(select) or strict_config, where=where
    )
    return Selection(
        everything=False,
        names=frozenset(names),
        prefixes=tuple(prefixes),
        ignore_names=frozenset(ignore_names),
        ignore_prefixes=tuple(ignore_prefixes),
    )


def load_validators() -> dict[str, Validator]:
    """Every registered validator, from the process-wide plugin manager."""
    from proctor.core.plugins import get_plugin_manager

    return dict(get_plugin_manager().validators())


def all_rules(validators: dict[str, Validator] | None = None) -> list[tuple[str | None, Rule]]:
    """Every rule the runner can report, as ``(owner, rule)``; the runner's own have no owner."""
    validators = load_validators() if validators is None else validators
    rules: list[tuple[str | None, Rule]] = [(None, r) for r in RUNNER_RULES]
    for name in sorted(validators):
        rules.extend((name, r) for r in validators[name].rules)
    return rules


# -- paths and config patterns ----------------------------------------------------------------


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


class _PathRules:
    """Exclude and per-file-ignore patterns bound to an absolute root."""

    __slots__ = ("root_abs", "exclude", "per_file_ignores")

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
    def from_settings(cls, settings: CheckSettings) -> _PathRules:
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
                out.extend(_split_entries(codes))
        return out


def collect_files(paths: Sequence[str], settings: CheckSettings | None = None) -> list[str]:
    """The files to check: explicit files as given, directories searched for ``*.py``.

    Config excludes apply to explicit files too (pre-commit passes every staged file and
    the config should win); the built-in skip list (.git, .venv, __pycache__...) only
    prunes the directory walk. A path that does not exist is a usage error.
    """
    settings = settings or CheckSettings()
    rules = _PathRules.from_settings(settings)
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


def procedure_capabilities(path: str) -> tuple[Capabilities, Finding | None]:
    """Capabilities declared by ``procedures/<name>/metadata.json`` next to a ``main.py``.

    Files elsewhere get none. A metadata file that cannot be read gives no capabilities
    plus a PC003 finding on it, so a broken file never widens what the code may do.
    """
    directory, name = os.path.split(path)
    parent = os.path.basename(os.path.dirname(os.path.abspath(directory or ".")))
    if name != "main.py" or parent != "procedures":
        return Capabilities(), None
    meta_path = os.path.join(directory, "metadata.json")
    if not os.path.exists(meta_path):
        return Capabilities(), None
    import json

    try:
        with open(meta_path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return Capabilities(), Finding(
            meta_path, 1, 1, UNREADABLE, "error", f"metadata.json could not be read: {exc}"
        )
    caps = data.get("capabilities") if isinstance(data, dict) else None
    if not isinstance(caps, dict):
        return Capabilities(), None
    fs = caps.get("filesystem_write") or ()
    if isinstance(fs, str):
        fs = (fs,)
    elif not isinstance(fs, list | tuple):
        fs = ()
    return Capabilities(
        network=caps.get("network") is True,
        subprocess=caps.get("subprocess") is True,
        filesystem_write=tuple(str(p) for p in fs),
    ), None


# -- suppressions ---------------------------------------------------------------------------


class _Noqa:
    """Inline suppressions of one file: codes per physical line and the bare ones."""

    __slots__ = ("codes", "bare")

    def __init__(self) -> None:
        self.codes: dict[int, tuple[str, ...]] = {}
        self.bare: list[tuple[int, int]] = []


# Physical line breaks as the parser counts them (str.splitlines also splits on \f, \x1c...).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CHILD_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def _first_line(node: Any) -> int:
    if isinstance(node, ast.match_case):
        return int(node.pattern.lineno)
    start = int(node.lineno)
    for decorator in getattr(node, "decorator_list", ()):
        start = min(start, decorator.lineno)
    return start


def _last_line(node: Any) -> int:
    if isinstance(node, ast.match_case):
        return _last_line(node.body[-1])
    return int(node.end_lineno or node.lineno)


def _children(node: Any) -> list[Any]:
    """Nested statement-like nodes: statements, except handlers and match cases."""
    kids = [
        child
        for name in _CHILD_LISTS
        for child in getattr(node, name, None) or ()
        if isinstance(child, ast.stmt | ast.excepthandler | ast.match_case)
    ]
    kids.sort(key=_first_line)
    return kids


def _header_fields(node: Any) -> list[ast.AST]:
    """The expressions of a compound statement's header (test, iter, args, decorators...)."""
    out: list[ast.AST] = []
    for name, value in ast.iter_fields(node):
        if name in _CHILD_LISTS:
            continue
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, ast.AST):
                out.append(child)
    return out


def _header_end(node: Any) -> int:
    end = _first_line(node) if isinstance(node, ast.match_case) else int(node.lineno)
    for child in _header_fields(node):
        end = max(end, getattr(child, "end_lineno", None) or end)
    return end


def _enclosing(tree: ast.Module, line: int) -> tuple[Any, tuple[int, int] | None]:
    """The innermost statement-like node around ``line`` and the span that counts for it:
    a simple statement's first and last line, or a compound statement's header only (so
    a noqa on ``for ... :`` does not cover the loop body). ``(node, None)`` when the line
    is inside a compound statement but in neither its header nor a child (``else:``,
    comment lines); ``(None, None)`` between top-level statements.

    Only the statements on the way down are visited, never the whole tree.
    """
    from bisect import bisect_right

    nodes: list[Any] = list(tree.body)
    found: Any = None
    while nodes:
        starts = [_first_line(n) for n in nodes]
        index = bisect_right(starts, line) - 1
        if index < 0 or _last_line(nodes[index]) < line:
            return found, None
        found = nodes[index]
        kids = _children(found)
        if not kids:
            return found, (starts[index], _last_line(found))
        header = (starts[index], _header_end(found))
        if header[0] <= line <= header[1]:
            return found, header
        nodes = kids
    return found, None


def _roots_on_line(nodes: list[Any], line: int, roots: list[ast.AST]) -> None:
    """Collect the syntax that can hold string literals on ``line``: every simple
    statement touching it (``a = "#"; b()`` has two) and the headers of compound ones,
    descending only where the line is."""
    from bisect import bisect_right

    index = bisect_right([_first_line(n) for n in nodes], line) - 1
    while index >= 0 and _last_line(nodes[index]) >= line:
        node = nodes[index]
        kids = _children(node)
        if not kids:
            roots.append(node)
        else:
            if _first_line(node) <= line <= _header_end(node):
                roots.extend(_header_fields(node))
            _roots_on_line(kids, line, roots)
        index -= 1


def _comment_start(tree: ast.Module, number: int, line: str) -> int | None:
    """Index of the ``#`` that starts the comment on a physical line, or None if every
    ``#`` on it is inside a string literal (string spans come from the AST, visiting
    only the statements on that line)."""
    hashes = [i for i, ch in enumerate(line) if ch == "#"]
    roots: list[ast.AST] = []
    _roots_on_line(list(tree.body), number, roots)
    strings: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for root in roots:
        for sub in ast.walk(root):
            if isinstance(sub, ast.JoinedStr) or (
                isinstance(sub, ast.Constant) and isinstance(sub.value, str | bytes)
            ):
                if sub.lineno <= number <= (sub.end_lineno or sub.lineno):
                    strings.append(
                        (
                            (sub.lineno, sub.col_offset),
                            (sub.end_lineno or sub.lineno, sub.end_col_offset or 0),
                        )
                    )
    if not strings:
        return hashes[0] if hashes else None
    for index in hashes:
        # AST columns are UTF-8 byte offsets.
        here = (number, len(line[:index].encode("utf-8")))
        if not any(start <= here < end for start, end in strings):
            return index
    return None


def _scan_noqa(text: str, tree: ast.Module) -> _Noqa:
    """Read ``# noqa`` comments. Files that never mention noqa cost one regex search."""
    result = _Noqa()
    if not _NOQA_HINT.search(text):
        return result
    for number, line in enumerate(_LINE_BREAK.split(text), start=1):
        if "#" not in line or not _NOQA_HINT.search(line):
            continue
        start = _comment_start(tree, number, line)
        if start is None:
            continue
        comment = line[start:]
        for match in _NOQA.finditer(comment):
            codes = _NOQA_CODES.match(match.group("rest"))
            if codes is None:
                result.bare.append((number, start + match.start() + 1))
                continue
            found = tuple(_CODE.findall(codes.group("codes")))
            result.codes[number] = result.codes.get(number, ()) + found
    return result


def _matches(code: str, prefixes: Iterable[str]) -> bool:
    return any(code.startswith(p) for p in prefixes)


def _apply_noqa(findings: list[Finding], noqa: _Noqa, tree: ast.Module) -> list[Finding]:
    """Drop findings whose line, or the first or last line of their statement (the header
    of a compound statement), carries a noqa naming their code or a prefix of it."""
    if not noqa.codes:
        return findings
    kept: list[Finding] = []
    for f in findings:
        if _matches(f.code, noqa.codes.get(f.line, ())):
            continue
        _, span = _enclosing(tree, f.line)
        if span is not None and (
            _matches(f.code, noqa.codes.get(span[0], ()))
            or _matches(f.code, noqa.codes.get(span[1], ()))
        ):
            continue
        kept.append(f)
    return kept


# -- checking one file ------------------------------------------------------------------------


def _owner_of(code: str, validators: dict[str, Validator]) -> str | None:
    for name, validator in validators.items():
        if any(rule.code == code for rule in validator.rules):
            return name
    return None


def _strict() -> bool:
    flag = os.environ.get("PROCTOR_STRICT_PLUGINS", "")
    return flag.strip().lower() in {"1", "true", "yes", "on"}


def run_checks(
    source: SourceFile,
    context: CheckContext,
    validators: dict[str, Validator],
    selection: Selection,
    extra_ignores: Sequence[str] = (),
) -> list[Finding]:
    """Run the selected validators on one parsed-or-not source and filter the findings.

    This is the single place where selection, per-file ignores and inline suppressions
    are applied, so the CLI, hooks and the action pipeline cannot disagree.
    """
    path = source.path
    findings: list[Finding] = []
    procedure = context.mode == "procedure"
    try:
        _ = source.tree  # parse once here; every validator reuses the tree
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = exc.offset or 1
        findings.append(
            Finding(path, line, max(col, 1), SYNTAX_ERROR, "error", f"syntax error: {exc.msg}")
        )
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "too deeply nested to parse" if isinstance(exc, RecursionError) else str(exc)
        findings.append(Finding(path, 1, 1, SYNTAX_ERROR, "error", f"syntax error: {reason}"))
    else:
        owned: list[tuple[str, Finding]] = []
        for name, validator in validators.items():
            if not selection.runs(validator):
                continue
            try:
                if not validator.applies_to(path):
                    continue
                produced = list(validator.check(source, context))
            except UsageError:
                raise  # e.g. a bad pattern in the config: the whole run is misconfigured
            except Exception as exc:
                if _strict():
                    raise
                findings.append(
                    Finding(
                        path,
                        1,
                        1,
                        VALIDATOR_ERROR,
                        "error",
                        f"validator {name!r} failed: {type(exc).__name__}: {exc}",
                    )
                )
                continue
            owned.extend((name, f) for f in produced)
        for name, f in owned:
            if selection.keeps(f.code, name):
                findings.append(f)
    # Comments of a file that does not parse are not trusted: the tokenizer cannot tell
    # a `#` inside a broken string from a real comment.
    parsed = not findings or findings[0].code != SYNTAX_ERROR
    noqa = _scan_noqa(source.text, source.tree) if parsed and not procedure else _Noqa()
    findings.extend(
        Finding(
            path,
            line,
            col,
            BARE_NOQA,
            "warning",
            "bare `# noqa` suppresses nothing; name the codes, e.g. `# noqa: PS101`",
        )
        for line, col in noqa.bare
    )
    findings = [f for f in findings if f.code[:2] != "PC" or selection.keeps(f.code, None)]
    if extra_ignores and not procedure:
        file_names, file_prefixes = _classify(extra_ignores, validators, strict=False, where="")
        findings = [
            f
            for f in findings
            if not _matches(f.code, file_prefixes)
            and _owner_of(f.code, validators) not in file_names
        ]
    if noqa.codes:
        findings = _apply_noqa(findings, noqa, source.tree)
    return sorted(set(findings), key=_sort_key)


def _sort_key(f: Finding) -> tuple[str, int, int, str, str]:
    return (f.path, f.line, f.col, f.code, f.message)


def check_text(
    path: str,
    text: str,
    *,
    mode: Mode = "generic",
    settings: CheckSettings | None = None,
    capabilities: Capabilities | None = None,
    select: list[str] | None = None,
    validators: dict[str, Validator] | None = None,
) -> list[Finding]:
    """Check source text that is already in memory (procedure code an action is about to
    write, an editor buffer). ``path`` is used for messages, ``applies_to`` and per-file
    ignores; nothing is read from disk. Raises UsageError for an unknown ``select``."""
    settings = settings or CheckSettings()
    validators = load_validators() if validators is None else validators
    selection = resolve_selection(select, validators, settings)
    context = CheckContext(
        mode=mode, settings=settings, capabilities=capabilities or Capabilities()
    )
    ignores = _PathRules.from_settings(settings).ignores_for(path)
    return run_checks(SourceFile(path, text), context, validators, selection, ignores)


def _decode(data: bytes) -> str:
    """Source bytes to text as Python would read them: UTF-8 unless a BOM or a PEP 263
    coding line says otherwise. Raises ValueError (UnicodeDecodeError, or SyntaxError
    for an unknown declared encoding) when that is impossible."""
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


def check_file(
    path: str,
    *,
    context: CheckContext,
    validators: dict[str, Validator],
    selection: Selection,
    path_rules: _PathRules | None = None,
    capabilities: Capabilities | None = None,
) -> list[Finding]:
    """Read and check one file; unreadable content becomes a PC003 finding."""
    extra: list[Finding] = []
    if context.mode == "procedure" and capabilities is None:
        caps, problem = procedure_capabilities(path)
        context = CheckContext(mode=context.mode, settings=context.settings, capabilities=caps)
        if problem is not None:
            extra.append(problem)
    elif capabilities is not None:
        context = CheckContext(
            mode=context.mode, settings=context.settings, capabilities=capabilities
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return [*extra, Finding(path, 1, 1, UNREADABLE, "error", f"cannot read file: {reason}")]
    if b"\0" in data:
        return [
            *extra,
            Finding(
                path,
                1,
                1,
                UNREADABLE,
                "error",
                "binary file (contains NUL bytes), not Python source",
            ),
        ]
    try:
        text = _decode(data)
    except (UnicodeDecodeError, SyntaxError, LookupError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        return [
            *extra,
            Finding(path, 1, 1, UNREADABLE, "error", f"not valid source text: {reason}"),
        ]
    ignores = path_rules.ignores_for(path) if path_rules is not None else []
    found = run_checks(SourceFile(path, text), context, validators, selection, ignores)
    return [*extra, *found] if extra else found


# -- many files, optionally in parallel -------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(
    validators: dict[str, Validator] | None,
    only: Collection[str] | None,
    context: CheckContext,
    selection: Selection,
    path_rules: _PathRules,
    capabilities: Capabilities | None,
) -> None:
    chosen = load_validators() if validators is None else validators
    if only is not None:
        chosen = {name: chosen[name] for name in only if name in chosen}
    _worker.update(
        validators=chosen,
        context=context,
        selection=selection,
        path_rules=path_rules,
        capabilities=capabilities,
    )


def _check_chunk(paths: list[str]) -> list[Finding]:
    out: list[Finding] = []
    for path in paths:
        out.extend(
            check_file(
                path,
                context=_worker["context"],
                validators=_worker["validators"],
                selection=_worker["selection"],
                path_rules=_worker["path_rules"],
                capabilities=_worker["capabilities"],
            )
        )
    return out


def _chunks(files: list[str], jobs: int) -> list[list[str]]:
    """Interleaved chunks, a few per worker, so one huge directory does not sit on one
    worker while the others idle."""
    count = min(len(files), jobs * 8)
    size = max(1, min(64, len(files) // count))
    count = (len(files) + size - 1) // size
    return [files[i::count] for i in range(count)]


def check_paths(
    paths: Sequence[str],
    *,
    mode: Mode = "generic",
    settings: CheckSettings | None = None,
    select: list[str] | None = None,
    validators: dict[str, Validator] | None = None,
    capabilities: Capabilities | None = None,
    jobs: int = 1,
    only: Collection[str] | None = None,
    strict_config: bool = True,
) -> list[Finding]:
    """Check files and directories; findings sorted by (path, line, col, code).

    ``settings`` defaults to the config found from the first path. ``only`` limits the
    run to the named checks after ``select`` has been validated against all of them (the
    pre-commit hooks use it: one hook, one check, the config's select still applying).
    In procedure mode each ``procedures/<name>/main.py`` gets the capabilities of its
    ``metadata.json`` unless ``capabilities`` is given. ``jobs > 1`` uses a process pool;
    the result is the same as with one job.
    """
    if settings is None:
        settings = find_config(paths[0] if paths else os.getcwd()).check
    all_validators = load_validators() if validators is None else validators
    selection = resolve_selection(select, all_validators, settings, strict_config=strict_config)
    if only is not None:
        missing = sorted(set(only) - set(all_validators))
        if missing:
            raise UsageError(
                f"check(s) not available: {', '.join(missing)} (see `proctor plugins`)"
            )
        chosen = {name: all_validators[name] for name in only}
    else:
        chosen = all_validators
    files = collect_files(paths, settings)
    context = CheckContext(mode=mode, settings=settings)
    path_rules = _PathRules.from_settings(settings)
    findings: list[Finding] = []
    if jobs > 1 and len(files) > 1:
        from concurrent.futures import ProcessPoolExecutor

        # Validators from the plugin manager are loaded again in each worker rather than
        # pickled: plugin objects need not be picklable, only explicitly passed ones.
        with ProcessPoolExecutor(
            max_workers=jobs,
            initializer=_init_worker,
            initargs=(validators, only, context, selection, path_rules, capabilities),
        ) as pool:
            for part in pool.map(_check_chunk, _chunks(files, jobs)):
                findings.extend(part)
    else:
        for path in files:
            findings.extend(
                check_file(
                    path,
                    context=context,
                    validators=chosen,
                    selection=selection,
                    path_rules=path_rules,
                    capabilities=capabilities,
                )
            )
    return sorted(set(findings), key=_sort_key)


# -- output ---------------------------------------------------------------------------------

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _information_uri() -> str:
    from importlib import metadata

    try:
        meta = metadata.metadata("proctor")
    except metadata.PackageNotFoundError:
        meta = None
    if meta is not None:
        for entry in meta.get_all("Project-URL") or []:
            url = str(entry).partition(",")[2].strip()
            if url.startswith("http"):
                return url
        home = meta["Home-page"] if "Home-page" in meta else None  # noqa: SIM401 - the protocol has no get()
        if isinstance(home, str) and home.startswith("http"):
            return home
    return "https://pypi.org/project/proctor/"


def _sarif_uri(path: str) -> tuple[str, bool]:
    """A forward-slash URI relative to the working directory (the checkout root in CI),
    or an absolute file URI for files outside it. Second item: whether it is relative."""
    rel = os.path.relpath(os.path.abspath(path), os.getcwd())
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        from pathlib import Path

        return Path(os.path.abspath(path)).as_uri(), False
    from urllib.parse import quote

    return quote(rel.replace(os.sep, "/")), True


def to_sarif(
    findings: Sequence[Finding], validators: dict[str, Validator] | None = None
) -> dict[str, Any]:
    """A SARIF 2.1.0 log as GitHub code scanning reads it: every known rule in the
    driver, results pointing at them by id and index."""
    import proctor

    rules = all_rules(validators)
    index: dict[str, int] = {}
    descriptors: list[dict[str, Any]] = []

    def describe(rule: Rule) -> None:
        index[rule.code] = len(descriptors)
        full = rule.summary + (f" {rule.fix}" if rule.fix else "")
        descriptors.append(
            {
                "id": rule.code,
                "name": rule.name or rule.code,
                "shortDescription": {"text": rule.summary},
                "fullDescription": {"text": full},
                "help": {
                    "text": rule.fix or rule.summary,
                    "markdown": f"**{rule.code}** ({rule.name}): {rule.summary}\n\n"
                    f"{rule.fix}".rstrip(),
                },
                "defaultConfiguration": {"level": _SARIF_LEVEL.get(rule.severity, "warning")},
                "properties": {"tags": ["security"] if rule.code.startswith("PS") else []},
            }
        )

    for _, rule in rules:
        if rule.code not in index:
            describe(rule)
    results: list[dict[str, Any]] = []
    for f in findings:
        if f.code not in index:
            describe(Rule(f.code, f.code, f.severity, f.message))
        uri, relative = _sarif_uri(f.path)
        artifact: dict[str, Any] = {"uri": uri}
        if relative:
            artifact["uriBaseId"] = "%SRCROOT%"
        results.append(
            {
                "ruleId": f.code,
                "ruleIndex": index[f.code],
                "level": _SARIF_LEVEL.get(f.severity, "warning"),
                "message": {"text": f.message},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": artifact,
                            "region": {"startLine": max(f.line, 1), "startColumn": max(f.col, 1)},
                        }
                    }
                ],
            }
        )
    from pathlib import Path

    root_uri = Path(os.getcwd()).as_uri().rstrip("/") + "/"
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "proctor",
                        "informationUri": _information_uri(),
                        "version": proctor.__version__,
                        "semanticVersion": proctor.__version__,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root_uri}},
                "results": results,
            }
        ],
    }


def format_findings(
    findings: Sequence[Finding], fmt: str, validators: dict[str, Validator] | None = None
) -> str:
    """Render findings; text is one ``path:line:col: CODE message`` per line."""
    import json

    if fmt == "text":
        return "".join(f.format_text() + "\n" for f in findings)
    if fmt == "json":
        return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(findings, validators), indent=2) + "\n"
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def run_cli(
    paths: Sequence[str],
    *,
    select: list[str] | None = None,
    mode: str = "generic",
    fmt: str = "text",
    jobs: int = 1,
    out: IO[str] | None = None,
    only: Collection[str] | None = None,
    summary: bool = True,
    err: IO[str] | None = None,
    validators: dict[str, Validator] | None = None,
    strict_config: bool = True,
) -> int:
    """The face of ``proctor check`` and the hooks: run, print, return the exit status.

    0 no findings; 1 any finding (warnings too); 2 bad usage: a missing path, an unknown
    ``--select`` entry or format or mode, an invalid config. Findings go to ``out``; the
    summary and errors go to stderr so stdout stays machine-readable.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        if mode not in ("generic", "procedure"):
            raise UsageError(f"unknown mode {mode!r}; choose generic or procedure")
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        if not paths:
            raise UsageError("no paths given")
        settings = (
            find_config(paths[0]).check
            if os.path.exists(paths[0])
            else find_config(os.getcwd()).check
        )
        findings = check_paths(
            paths,
            mode="procedure" if mode == "procedure" else "generic",
            settings=settings,
            select=select,
            validators=validators,
            jobs=jobs,
            only=only,
            strict_config=strict_config,
        )
        if fmt == "sarif":
            known = load_validators() if validators is None else validators
            text = format_findings(
                findings, fmt, known if only is None else {n: known[n] for n in only}
            )
        else:
            text = format_findings(findings, fmt)
    except ProctorError as exc:
        print(f"error: {exc.message}", file=err)
        return EXIT_USAGE
    out.write(text)
    out.flush()
    if summary and fmt == "text":
        files = len({f.path for f in findings})
        if findings:
            noun = "finding" if len(findings) == 1 else "findings"
            print(
                f"Found {len(findings)} {noun} in {files} file{'s' if files != 1 else ''}.",
                file=err,
            )
        else:
            print("No findings.", file=err)
    return EXIT_FINDINGS if findings else EXIT_OK
