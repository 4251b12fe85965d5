"""The check runner: files in, sorted findings out, for ``proctor check``, the pre-commit
hooks and the action pipeline alike.

This module is on the pre-commit hot path. It imports the standard library and
``proctor.core`` only (never pydantic, GitPython or an LLM client), and it keeps the
per-file work close to one ``ast.parse``: comments are tokenized only in files that
mention ``noqa`` (:mod:`proctor.checks.noqa`), and the process pool, SARIF metadata and
tokenizer are imported on first use. Selection, file walking and output formats live in
their own modules; this one applies them, in one place, so the CLI, the hooks and the
action pipeline cannot disagree.

Decisions worth knowing (docs/checks.md explains them to users):

* A file that does not parse yields one ``PC001`` finding; a file that is not text
  (NUL bytes, undecodable) yields ``PC003``; a validator that raises yields ``PC004``
  naming it. None of them stops the run.
* ``# noqa`` must name codes or prefixes; a bare one suppresses nothing. It is reported
  as ``PC002`` when the run checks everything, when the selection names PC002 (``PC002``,
  ``PC0``, ``PC``), or when the comment mentions one of the run's codes (``# noqa
  PS101``, a suppression that was meant for us): a run narrowed to ``--select safety``
  or one hook is not the place to police comments written for flake8. In procedure mode (code an LLM may have written) inline suppressions and
  per-file ignores are not read at all.
* By default any finding, warnings included, makes the exit status 1: a hook that prints
  something and still passes teaches people to ignore it. ``--fail-on error`` (or
  ``[check] fail-on``) lowers that to errors only; the text output shows each finding's
  severity and the summary says which of them failed the run.
* The runner does not know where procedures live or what declares their capabilities:
  a caller that does passes ``capabilities_for(path)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from proctor.checks.files import PathRules, collect_files, read_source
from proctor.checks.noqa import Noqa, apply_noqa, matches, scan_noqa
from proctor.checks.selection import (
    Selection,
    classify,
    load_validators,
    owner_of,
    resolve_selection,
)
from proctor.checks.settings import FAIL_ON, CheckSettings, check_settings
from proctor.checks.validation import (
    BARE_NOQA,
    SYNTAX_ERROR,
    VALIDATOR_ERROR,
    Capabilities,
    CheckContext,
    Finding,
    Mode,
    SourceFile,
    Validator,
)
from proctor.core.config import find_config
from proctor.core.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, ProctorError, UsageError

if TYPE_CHECKING:
    import ast
    from typing import IO, Any

    from proctor.checks.formats import OutputFormat

__all__ = [
    "CapabilitiesFor",
    "check_file",
    "check_paths",
    "check_text",
    "configure",
    "run_checks",
    "run_cli",
]

CapabilitiesFor = Callable[[str], "tuple[Capabilities, Finding | None]"]
"""``capabilities_for(path) -> (capabilities, problem)``: what the code at ``path`` has
declared it may do, and a finding when the declaration itself is broken (the file then
gets no capabilities). Must be picklable (a module-level function) for ``jobs > 1``."""


def _strict() -> bool:
    flag = os.environ.get("PROCTOR_STRICT_PLUGINS", "")
    return flag.strip().lower() in {"1", "true", "yes", "on"}


def configure(validators: dict[str, Validator], settings: CheckSettings | None) -> None:
    """Let every loaded check read and validate its own config table now, before any
    file: a bad ``[safety]`` or ``[log-lint]`` table is a ConfigError (exit status 2)
    whatever the run selects, as a bad ``[check]`` is.

    Any other exception is a bug in the check, not a bad configuration: it is left to
    surface again from ``check`` on each file, where it becomes a PC004 finding naming
    the check, as every other failure of a validator does.
    """
    for validator in validators.values():
        try:
            validator.options(settings)
        except UsageError:
            raise
        except Exception:
            if _strict():
                raise


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
    noqa = scan_noqa(source.text, source.tree) if parsed and not procedure else Noqa()
    if noqa.bare:
        wanted = selection.everything or (
            bool(selection.prefixes) and BARE_NOQA.startswith(selection.prefixes)
        )
        for where in noqa.bare:
            if wanted or _mentions_our_codes(noqa.mentioned.get(where, ()), validators):
                findings.append(
                    Finding(
                        path,
                        where[0],
                        where[1],
                        BARE_NOQA,
                        "warning",
                        "bare `# noqa` suppresses nothing; name the codes, e.g. `# noqa: PS101`",
                    )
                )
    findings = [f for f in findings if f.code[:2] != "PC" or selection.keeps(f.code, None)]
    if extra_ignores and not procedure:
        file_names, file_prefixes = classify(extra_ignores, validators, strict=False, where="")
        findings = [
            f
            for f in findings
            if not matches(f.code, file_prefixes) and owner_of(f.code, validators) not in file_names
        ]
    if noqa.codes:
        findings = apply_noqa(findings, noqa, source.tree)
    return sorted(set(findings), key=_sort_key)


def _mentions_our_codes(words: Sequence[str], validators: dict[str, Validator]) -> bool:
    return any(w.startswith("PC") or owner_of(w, validators) is not None for w in words)


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
    tree: ast.Module | None = None,
) -> list[Finding]:
    """Check source text that is already in memory (procedure code an action is about to
    write, an editor buffer). ``path`` is used for messages, ``applies_to`` and per-file
    ignores; nothing is read from disk. ``tree``: ``text`` already parsed (a leading BOM
    left out), which the validators then read instead of parsing it again. Raises
    UsageError for an unknown ``select`` and ConfigError for a bad table of a loaded
    check."""
    settings = settings or CheckSettings()
    validators = load_validators() if validators is None else validators
    selection = resolve_selection(select, validators, settings)
    configure(validators, settings)
    context = CheckContext(
        mode=mode, settings=settings, capabilities=capabilities or Capabilities()
    )
    ignores = PathRules.from_settings(settings).ignores_for(path)
    text = text.removeprefix("\ufeff")  # as Python reads a file that starts with a BOM
    return run_checks(SourceFile(path, text, tree), context, validators, selection, ignores)


def check_file(
    path: str,
    *,
    context: CheckContext,
    validators: dict[str, Validator],
    selection: Selection,
    path_rules: PathRules | None = None,
    capabilities: Capabilities | None = None,
    capabilities_for: CapabilitiesFor | None = None,
) -> list[Finding]:
    """Read and check one file; unreadable content becomes a PC003 finding.

    ``capabilities`` applies to the file as given; otherwise, in procedure mode,
    ``capabilities_for(path)`` says what it declared (nothing when neither is given).
    """
    extra: list[Finding] = []
    if capabilities is not None:
        context = CheckContext(
            mode=context.mode, settings=context.settings, capabilities=capabilities
        )
    elif context.mode == "procedure" and capabilities_for is not None:
        caps, problem = capabilities_for(path)
        context = CheckContext(mode=context.mode, settings=context.settings, capabilities=caps)
        if problem is not None:
            extra.append(problem)
    text = read_source(path)
    if isinstance(text, Finding):
        return [*extra, text]
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
    path_rules: PathRules,
    capabilities: Capabilities | None,
    capabilities_for: CapabilitiesFor | None,
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
        capabilities_for=capabilities_for,
    )


def _check_chunk(paths: list[str]) -> list[Finding]:
    out: list[Finding] = []
    with _FewerCollections():
        _check_each(paths, out)
    return out


def _check_each(paths: list[str], out: list[Finding]) -> None:
    for path in paths:
        out.extend(
            check_file(
                path,
                context=_worker["context"],
                validators=_worker["validators"],
                selection=_worker["selection"],
                path_rules=_worker["path_rules"],
                capabilities=_worker["capabilities"],
                capabilities_for=_worker["capabilities_for"],
            )
        )


class _FewerCollections:
    """Collect garbage less often while checking many files.

    Parsing and walking a file allocates hundreds of thousands of small objects that
    reference counting frees when the file is done; the cyclic collector's default
    threshold (700 allocations) runs it thousands of times per large tree for nothing.
    Raised for the batch and restored afterwards, as type checkers do.
    """

    def __enter__(self) -> None:
        import gc

        self._saved = gc.get_threshold()
        gc.set_threshold(max(self._saved[0], 50_000), *self._saved[1:])

    def __exit__(self, *exc: object) -> None:
        import gc

        gc.set_threshold(*self._saved)


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
    capabilities_for: CapabilitiesFor | None = None,
    jobs: int = 1,
    only: Collection[str] | None = None,
    strict_config: bool = True,
) -> list[Finding]:
    """Check files and directories; findings sorted by (path, line, col, code).

    ``settings`` defaults to the config found from the first path. ``only`` limits the
    run to the named checks after ``select`` has been validated against all of them (the
    pre-commit hooks use it: one hook, one check, the config's select still applying).
    In procedure mode each file gets ``capabilities`` if given, else what
    ``capabilities_for(path)`` returns, else none. ``jobs > 1`` uses a process pool; the
    result is the same as with one job.
    """
    if settings is None:
        settings = check_settings(find_config(paths[0] if paths else os.getcwd()))
    all_validators = load_validators() if validators is None else validators
    selection = resolve_selection(select, all_validators, settings, strict_config=strict_config)
    if only is not None:
        missing = sorted(set(only) - set(all_validators))
        if missing:
            raise UsageError(
                f"check(s) not available: {', '.join(missing)} (see `proctor plugins`)"
            )
        chosen = {name: all_validators[name] for name in only}
        if selection.everything:
            # A hook runs its own checks only: that is a narrowed run, as --select is.
            selection = selection._replace(everything=False, names=frozenset(only))
    else:
        chosen = all_validators
    configure(chosen, settings)
    files = collect_files(paths, settings)
    context = CheckContext(mode=mode, settings=settings)
    path_rules = PathRules.from_settings(settings)
    findings: list[Finding] = []
    if jobs > 1 and len(files) > 1:
        from concurrent.futures import ProcessPoolExecutor

        # Validators from the plugin manager are loaded again in each worker rather than
        # pickled: plugin objects need not be picklable, only explicitly passed ones.
        with ProcessPoolExecutor(
            max_workers=jobs,
            initializer=_init_worker,
            initargs=(
                validators,
                only,
                context,
                selection,
                path_rules,
                capabilities,
                capabilities_for,
            ),
        ) as pool:
            for part in pool.map(_check_chunk, _chunks(files, jobs)):
                findings.extend(part)
    else:
        with _FewerCollections():
            _check_serial(
                files,
                findings,
                context,
                chosen,
                selection,
                path_rules,
                capabilities,
                capabilities_for,
            )
    return sorted(set(findings), key=_sort_key)


def _check_serial(
    files: list[str],
    findings: list[Finding],
    context: CheckContext,
    chosen: dict[str, Validator],
    selection: Selection,
    path_rules: PathRules,
    capabilities: Capabilities | None,
    capabilities_for: CapabilitiesFor | None,
) -> None:
    for path in files:
        findings.extend(
            check_file(
                path,
                context=context,
                validators=chosen,
                selection=selection,
                path_rules=path_rules,
                capabilities=capabilities,
                capabilities_for=capabilities_for,
            )
        )


# -- the face of `proctor check` and the hooks ------------------------------------------------


def run_cli(
    paths: Sequence[str],
    *,
    select: list[str] | None = None,
    mode: str = "generic",
    fmt: str | OutputFormat = "text",
    jobs: int = 1,
    out: IO[str] | None = None,
    only: Collection[str] | None = None,
    summary: bool = True,
    err: IO[str] | None = None,
    validators: dict[str, Validator] | None = None,
    strict_config: bool = True,
    capabilities_for: CapabilitiesFor | None = None,
    fail_on: str | None = None,
    raise_errors: bool = False,
) -> int:
    """Run, print, return the exit status.

    ``fmt`` is a format object, or the name of a registered one (looked up through the
    plugins, so a third-party format works as a built-in one does). 0 no findings at or
    above ``fail_on`` (``error``, ``warning`` or ``info``; None: the config's ``[check]
    fail-on``, else ``info``, i.e. any finding); 1 such a finding; 2 bad usage: a missing
    path, an unknown ``--select`` entry or format or mode or ``fail_on``, an invalid
    config. Findings go to ``out``; the summary and errors go to stderr so stdout stays
    machine-readable. ``raise_errors``: a usage error is raised instead of printed (the
    CLI's ``--json`` reports it in the shape of every other command's error).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        if mode not in ("generic", "procedure"):
            raise UsageError(f"unknown mode {mode!r}; choose generic or procedure")
        if isinstance(fmt, str):
            from proctor.checks.formats import get_format

            output = get_format(fmt)
        else:
            output = fmt
        if not paths:
            raise UsageError("no paths given")
        start = paths[0] if os.path.exists(paths[0]) else os.getcwd()
        settings = check_settings(find_config(start))
        threshold = fail_on or settings.fail_on or "info"
        if threshold not in FAIL_ON:
            raise UsageError(f"unknown --fail-on {threshold!r}; choose {', '.join(FAIL_ON)}")
        known = load_validators() if validators is None else validators
        findings = check_paths(
            paths,
            mode="procedure" if mode == "procedure" else "generic",
            settings=settings,
            select=select,
            validators=validators,
            jobs=jobs,
            only=only,
            strict_config=strict_config,
            capabilities_for=capabilities_for,
        )
        ran = known if only is None else {n: known[n] for n in only}
        text = output.render(findings, ran)
    except ProctorError as exc:
        if raise_errors:
            raise
        print(f"error: {exc.message}", file=err)
        return EXIT_USAGE
    out.write(text)
    out.flush()
    failing = [f for f in findings if _RANK.get(f.severity, 2) <= _RANK[threshold]]
    if summary and output.summary:
        print(_summary(findings, failing, threshold), file=err)
    return EXIT_FINDINGS if failing else EXIT_OK


_RANK = {name: rank for rank, name in enumerate(FAIL_ON)}


def _summary(findings: Sequence[Finding], failing: Sequence[Finding], threshold: str) -> str:
    """``Found 3 findings in 2 files: 1 error, 2 warnings.``, and why the run passes when
    none of them is severe enough to fail it."""
    if not findings:
        return "No findings."
    files = len({f.path for f in findings})
    noun = "finding" if len(findings) == 1 else "findings"
    by_severity = [(name, sum(1 for f in findings if f.severity == name)) for name in FAIL_ON]
    parts = ", ".join(
        f"{count} {name}{'' if count == 1 else 's'}".replace("infos", "info")
        for name, count in by_severity
        if count
    )
    line = f"Found {len(findings)} {noun} in {files} file{'s' if files != 1 else ''}: {parts}."
    if not failing:
        line += f" None is at or above --fail-on {threshold}, so the run passes."
    return line
