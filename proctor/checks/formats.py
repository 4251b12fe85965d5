"""Output formats of ``proctor check``: the contract, and the built-in text, JSON and SARIF.

A format is registered through ``proctor_register_formats`` like any plugin's; the
built-in ones are registered by ``proctor.plugins.formats``, and ``--format NAME``
accepts whatever is registered. The pre-commit hooks use :data:`TEXT` directly: they
print ``path:line:col: CODE message`` and must not pay for loading plugins to do it.

Everything here is standard library; SARIF's metadata look-ups are imported only when
a SARIF log is built.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from proctor.checks.selection import all_rules, load_validators
from proctor.checks.validation import Finding, Rule, Validator
from proctor.core.errors import UsageError

__all__ = [
    "JSON",
    "SARIF",
    "SARIF_SCHEMA",
    "TEXT",
    "JsonFormat",
    "OutputFormat",
    "SarifFormat",
    "TextFormat",
    "format_findings",
    "get_format",
    "load_formats",
    "to_sarif",
]


class OutputFormat:
    """Base class for formats registered through ``proctor_register_formats``.

    Subclasses set ``name`` (what ``--format`` accepts) and implement :meth:`render`.
    ``summary`` asks the runner for the human ``Found N findings`` line on stderr after
    the output; machine formats leave it off so stdout and stderr stay clean to parse.
    """

    name: str = ""
    description: str = ""
    summary: bool = False

    def render(self, findings: Sequence[Finding], validators: Mapping[str, Validator]) -> str:
        """The whole output for ``findings`` (sorted by path, line, column, code).

        ``validators`` are the checks that ran, for formats that describe their rules.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class TextFormat(OutputFormat):
    """One ``path:line:col: CODE [severity] message`` line per finding: what editors and
    pre-commit show. The ``path:line:col: CODE message`` shape is a contract (DESIGN.md,
    section 5); the severity leads the message, so a warning never reads as an error and
    tools that split on the code keep working."""

    name = "text"
    description = "path:line:col: CODE [severity] message, one finding per line"
    summary = True

    def render(self, findings: Sequence[Finding], validators: Mapping[str, Validator]) -> str:
        return "".join(f.format_text() + "\n" for f in findings)


class JsonFormat(OutputFormat):
    """A JSON array of findings with the contract's field names."""

    name = "json"
    description = "a JSON array of findings (path, line, col, code, severity, message)"

    def render(self, findings: Sequence[Finding], validators: Mapping[str, Validator]) -> str:
        import json

        return json.dumps([f.to_dict() for f in findings], indent=2) + "\n"


class SarifFormat(OutputFormat):
    """SARIF 2.1.0, as GitHub code scanning reads it."""

    name = "sarif"
    description = "SARIF 2.1.0 for code scanning, every known rule described"

    def render(self, findings: Sequence[Finding], validators: Mapping[str, Validator]) -> str:
        import json

        return json.dumps(to_sarif(findings, dict(validators)), indent=2) + "\n"


TEXT = TextFormat()
JSON = JsonFormat()
SARIF = SarifFormat()


def load_formats() -> dict[str, OutputFormat]:
    """Every registered format, from the process-wide plugin manager."""
    from proctor.core.plugins import get_plugin_manager

    formats: dict[str, OutputFormat] = get_plugin_manager().formats()
    return formats


def get_format(name: str, formats: Mapping[str, OutputFormat] | None = None) -> OutputFormat:
    """The format registered as ``name``; a UsageError listing the known ones otherwise."""
    formats = load_formats() if formats is None else formats
    found = formats.get(name)
    if found is None:
        known = ", ".join(sorted(formats)) or "none registered"
        raise UsageError(f"unknown format {name!r}; known formats: {known}")
    return found


def format_findings(
    findings: Sequence[Finding], fmt: str, validators: dict[str, Validator] | None = None
) -> str:
    """Render findings in the registered format ``fmt`` (a convenience for callers
    holding a name; the runner renders through :class:`OutputFormat` objects).
    ``validators`` default to every registered one (SARIF describes their rules)."""
    output = get_format(fmt)
    return output.render(findings, load_validators() if validators is None else validators)


# -- SARIF ------------------------------------------------------------------------------------

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


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("proctor")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def to_sarif(
    findings: Sequence[Finding], validators: dict[str, Validator] | None = None
) -> dict[str, Any]:
    """A SARIF 2.1.0 log as GitHub code scanning reads it: every known rule in the
    driver, results pointing at them by id and index."""
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
    version = _version()
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "proctor",
                        "informationUri": _information_uri(),
                        "version": version,
                        "semanticVersion": version,
                        "rules": descriptors,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root_uri}},
                "results": results,
            }
        ],
    }
