"""The check runner (proctor.checks.runner) with a small validator of the tests' own,
registered through a real pluggy plugin on the real plugin manager or passed directly.

Tests with the built-in safety and log-lint validators live further down and in
tests/test_hooks.py.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from conftest import write_file as write

from proctor.checks import files, formats, noqa, runner, selection
from proctor.checks import settings as settings_module
from proctor.checks.files import collect_files
from proctor.checks.formats import format_findings, to_sarif
from proctor.checks.runner import check_paths, check_text, run_cli
from proctor.checks.selection import all_rules, resolve_selection
from proctor.checks.settings import CheckSettings, check_settings
from proctor.checks.validation import (
    BARE_NOQA,
    SYNTAX_ERROR,
    UNREADABLE,
    VALIDATOR_ERROR,
    Capabilities,
    CheckContext,
    Finding,
    Rule,
    SourceFile,
    Validator,
)
from proctor.core.config import Table, find_config
from proctor.core.errors import ConfigError, UsageError
from proctor.core.hookspecs import hookimpl
from proctor.core.plugins import PluginInfo, get_plugin_manager, reset_plugin_manager
from proctor.procedures.capabilities import capabilities_for

PROCTOR = str(Path(sys.executable).with_name("proctor"))


class DemoValidator(Validator):
    """Flags ``danger(...)`` calls (DM101), the name ``shady`` (DM102, a warning) and,
    unless the procedure declared network access, ``urlopen(...)`` (DM201)."""

    name = "demo"
    rules = (
        Rule("DM101", "danger-call", "error", "call to danger()", "Call safe() instead."),
        Rule("DM102", "shady-name", "warning", "shady name", "Rename it."),
        Rule("DM201", "undeclared-network", "error", "network use without the capability"),
    )

    def check(self, source: SourceFile, context: CheckContext) -> Iterator[Finding]:
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                if node.func.id == "danger":
                    yield self.finding(source, node, "DM101")
                elif node.func.id == "urlopen" and not context.capabilities.network:
                    yield self.finding(source, node, "DM201")
            elif isinstance(node, ast.Name) and node.id == "shady":
                yield self.finding(source, node, "DM102")


class OtherValidator(Validator):
    """A second check so that selecting by name can be told apart from running all."""

    name = "other"
    rules = (Rule("OT1", "print-call", "info", "print() call"),)

    def check(self, source: SourceFile, context: CheckContext) -> Iterable[Finding]:
        return [
            self.finding(source, node, "OT1")
            for node in ast.walk(source.tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print"
        ]


class BrokenValidator(Validator):
    name = "broken"
    rules = (Rule("BR1", "never", "error", "never reported"),)

    def check(self, source: SourceFile, context: CheckContext) -> Iterable[Finding]:
        raise RuntimeError("boom on purpose")


class CodesFormat(formats.OutputFormat):
    """A third party's output format: the codes found, one per line."""

    name = "codes"

    def render(self, findings: object, validators: object) -> str:
        return "".join(f"{f.code}\n" for f in findings)  # type: ignore[attr-defined]


class DemoPlugin:
    """A plugin object exactly as a third party would write one."""

    @hookimpl
    def proctor_register_validators(self, register):  # type: ignore[no-untyped-def]
        register(DemoValidator())
        register(OtherValidator())

    @hookimpl
    def proctor_register_formats(self, register):  # type: ignore[no-untyped-def]
        register(CodesFormat())


def demo() -> dict[str, Validator]:
    return {"demo": DemoValidator(), "other": OtherValidator()}


@pytest.fixture
def with_demo_plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide plugin manager with the demo plugin registered next to the
    built-ins, so the CLI and run_cli see it."""
    monkeypatch.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    reset_plugin_manager()
    manager = get_plugin_manager(reload=True)
    manager.register("demo-plugin", DemoPlugin(), PluginInfo(name="demo-plugin", module="tests"))
    yield
    reset_plugin_manager()


def codes(findings: Iterable[Finding]) -> list[str]:
    return [f.code for f in findings]


# -- check_text ------------------------------------------------------------------------------


def test_clean_text_has_no_findings() -> None:
    assert check_text("a.py", "x = safe(1)\n", validators=demo()) == []


def test_empty_text_is_clean() -> None:
    assert check_text("a.py", "", validators=demo()) == []


def test_findings_carry_location_code_severity_and_message() -> None:
    found = check_text("pkg/a.py", "x = 1\ny = danger(shady)\n", validators=demo())
    assert found == [
        Finding("pkg/a.py", 2, 5, "DM101", "error", "call to danger()"),
        Finding("pkg/a.py", 2, 12, "DM102", "warning", "shady name"),
    ]


def test_syntax_error_is_one_pc001_finding_with_its_location() -> None:
    found = check_text("bad.py", "x = 1\ndef f(:\n    danger()\n", validators=demo())
    assert len(found) == 1
    (f,) = found
    assert (f.code, f.severity, f.line, f.col) == (SYNTAX_ERROR, "error", 2, 7)
    assert f.message.startswith("syntax error: ")


def test_unterminated_string_is_a_syntax_error_not_a_crash() -> None:
    found = check_text("bad.py", 'x = """never closed\n# noqa\n', validators=demo())
    assert codes(found) == [SYNTAX_ERROR]


def test_deeply_nested_code_is_reported_not_raised() -> None:
    found = check_text("deep.py", "x = " + "[" * 5000 + "]" * 5000 + "\n", validators=demo())
    assert codes(found) == [SYNTAX_ERROR]


def test_a_validator_that_raises_becomes_a_finding_naming_it() -> None:
    validators = {**demo(), "broken": BrokenValidator()}
    found = check_text("a.py", "danger()\n", validators=validators)
    assert codes(found) == ["DM101", VALIDATOR_ERROR]
    assert "'broken'" in found[1].message and "boom on purpose" in found[1].message
    assert (found[1].severity, found[1].line, found[1].col) == ("error", 1, 1)


def test_strict_plugins_reraises_validator_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_STRICT_PLUGINS", "1")
    with pytest.raises(RuntimeError, match="boom"):
        check_text("a.py", "x = 1\n", validators={"broken": BrokenValidator()})


class TableValidator(DemoValidator):
    """A check with a config table of its own, ``[demo]``, with one key ``words``."""

    def options(self, settings: CheckSettings | None) -> object:
        if settings is None:
            return ()
        return settings.options("demo", self._parse)

    @staticmethod
    def _parse(table: Table) -> object:
        table.check_keys({"words"})
        return tuple(table.str_list("words") or ())


class BrokenOptions(DemoValidator):
    def options(self, settings: CheckSettings | None) -> object:
        raise RuntimeError("options broke on purpose")

    def check(self, source: SourceFile, context: CheckContext) -> Iterator[Finding]:
        self.options(context.settings)
        return iter(())


def test_every_loaded_check_validates_its_table_before_any_file(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "x = 1\n")
    bad = CheckSettings(tables={"demo": {"wrods": []}}, source="proctor.toml")
    for select in (None, ["other"]):  # also when the check is not selected
        with pytest.raises(ConfigError, match=r"proctor.toml \[demo\]: unknown key\(s\) wrods"):
            check_paths(
                [str(tmp_path / "a.py")],
                settings=bad,
                select=select,
                validators={"demo": TableValidator(), "other": OtherValidator()},
            )
    with pytest.raises(ConfigError):
        check_text("a.py", "x = 1\n", settings=bad, validators={"demo": TableValidator()})
    good = CheckSettings(tables={"demo": {"words": ["x"]}})
    assert TableValidator().options(good) == ("x",)
    assert check_text("a.py", "x = 1\n", settings=good, validators={"demo": TableValidator()}) == []


def test_options_that_raise_unexpectedly_become_findings() -> None:
    found = check_text("a.py", "x = 1\n", validators={"broken": BrokenOptions()})
    assert codes(found) == [VALIDATOR_ERROR]
    assert "options broke on purpose" in found[0].message


def test_validator_applies_to_is_honoured() -> None:
    class OnlyTests(DemoValidator):
        def applies_to(self, path: str) -> bool:
            return path.startswith("tests/")

    v = {"demo": OnlyTests()}
    assert check_text("src/a.py", "danger()\n", validators=v) == []
    assert codes(check_text("tests/a.py", "danger()\n", validators=v)) == ["DM101"]


def test_findings_are_sorted_by_line_col_code() -> None:
    text = "shady\ndanger(shady); danger()\nprint(1)\n"
    found = check_text("a.py", text, validators=demo())
    assert [(f.line, f.col, f.code) for f in found] == [
        (1, 1, "DM102"),
        (2, 1, "DM101"),
        (2, 8, "DM102"),
        (2, 16, "DM101"),
        (3, 1, "OT1"),
    ]


# -- selection -------------------------------------------------------------------------------

TEXT = "danger()\nshady\nprint()\n"


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        (None, ["DM101", "DM102", "OT1"]),
        (["demo"], ["DM101", "DM102"]),
        (["other"], ["OT1"]),
        (["DM101"], ["DM101"]),
        (["DM1"], ["DM101", "DM102"]),
        (["DM"], ["DM101", "DM102"]),
        (["dm102"], ["DM102"]),
        (["DM101", "other"], ["DM101", "OT1"]),
        (["DM101,OT1"], ["DM101", "OT1"]),
    ],
)
def test_select_by_name_code_and_prefix(select: list[str] | None, expected: list[str]) -> None:
    assert codes(check_text("a.py", TEXT, select=select, validators=demo())) == expected


@pytest.mark.parametrize("bad", ["safetyy", "XX", "DM9", "demo-lint", "PS1O1"])
def test_unknown_select_entry_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="unknown check or rule"):
        check_text("a.py", TEXT, select=[bad], validators=demo())


def test_config_select_applies_and_cli_select_overrides_it() -> None:
    settings = CheckSettings(select=["other"])
    assert codes(check_text("a.py", TEXT, settings=settings, validators=demo())) == ["OT1"]
    assert codes(
        check_text("a.py", TEXT, settings=settings, select=["DM102"], validators=demo())
    ) == ["DM102"]


def test_config_ignore_applies_even_with_cli_select() -> None:
    settings = CheckSettings(ignore=["DM102", "other"])
    assert codes(check_text("a.py", TEXT, settings=settings, validators=demo())) == ["DM101"]
    assert codes(
        check_text("a.py", TEXT, settings=settings, select=["DM", "OT"], validators=demo())
    ) == ["DM101"]


def test_unknown_config_select_is_a_usage_error_but_unknown_ignore_is_not() -> None:
    with pytest.raises(UsageError, match="config check.select"):
        check_text("a.py", TEXT, settings=CheckSettings(select=["nope"]), validators=demo())
    assert codes(
        check_text("a.py", TEXT, settings=CheckSettings(ignore=["nope", "ZZ9"]), validators=demo())
    ) == ["DM101", "DM102", "OT1"]


def test_runner_codes_are_always_selected_but_can_be_ignored() -> None:
    assert codes(check_text("a.py", "def f(:\n", select=["other"], validators=demo())) == [
        SYNTAX_ERROR
    ]
    text = "danger()  # noqa\n"
    assert codes(check_text("a.py", text, validators=demo())) == ["DM101", BARE_NOQA]
    assert codes(
        check_text("a.py", text, settings=CheckSettings(ignore=["PC002"]), validators=demo())
    ) == ["DM101"]
    sel = resolve_selection(["PC"], demo())
    assert not sel.runs(DemoValidator())


def test_validators_not_selected_do_not_run() -> None:
    validators = {**demo(), "broken": BrokenValidator()}
    assert codes(check_text("a.py", "danger()\n", select=["demo"], validators=validators)) == [
        "DM101"
    ]


# -- inline suppressions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "comment",
    [
        "# noqa: DM101",
        "# noqa:DM101",
        "#noqa: DM101",
        "# NOQA: DM101",
        "# noqa: DM1",
        "# noqa: DM",
        "# noqa: OT1, DM101",
        "# noqa: OT1 DM101",
        "# type: ignore  # noqa: DM101",
        "# some words # noqa: DM101",
    ],
)
def test_noqa_with_codes_or_prefixes_suppresses(comment: str) -> None:
    assert check_text("a.py", f"danger()  {comment}\n", validators=demo()) == []


@pytest.mark.parametrize("comment", ["# noqa: DM102", "# noqa: OT", "# noqa: DM2"])
def test_noqa_for_other_codes_does_not_suppress(comment: str) -> None:
    assert codes(check_text("a.py", f"danger()  {comment}\n", validators=demo())) == ["DM101"]


@pytest.mark.parametrize(
    "comment",
    ["# noqa", "#noqa", "# NOQA", "# noqa:", "# noqa: not codes", "# noqa because reasons"],
)
def test_bare_noqa_suppresses_nothing_and_is_reported(comment: str) -> None:
    found = check_text("a.py", f"danger()  {comment}\n", validators=demo())
    assert [(f.code, f.severity, f.line, f.col) for f in found] == [
        ("DM101", "error", 1, 1),
        (BARE_NOQA, "warning", 1, 11),
    ]


def test_bare_noqa_on_a_clean_line_is_still_reported() -> None:
    assert codes(check_text("a.py", "x = 1  # noqa\n", validators=demo())) == [BARE_NOQA]


def test_noqa_inside_strings_is_not_a_comment() -> None:
    text = (
        'x = danger("# noqa: DM101")\n'
        "y = '# noqa'; danger()\n"
        's = """\n'
        "# noqa: DM101\n"
        '"""; danger()\n'
        'f"{danger()} # noqa: DM101"\n'
    )
    found = check_text("a.py", text, validators=demo())
    assert [(f.code, f.line) for f in found] == [
        ("DM101", 1),
        ("DM101", 2),
        ("DM101", 5),
        ("DM101", 6),
    ]


def test_noqa_on_first_or_last_line_of_a_multiline_statement() -> None:
    text = (
        "a = danger(  # noqa: DM101\n"
        "    1,\n"
        ")\n"
        "b = wrap(\n"
        "    danger(),\n"
        ")  # noqa: DM101\n"
        "c = wrap(\n"
        "    danger(),  # noqa: DM101\n"
        "    danger(),\n"
        ")\n"
    )
    found = check_text("a.py", text, validators=demo())
    assert [(f.code, f.line) for f in found] == [("DM101", 9)]


def test_noqa_on_a_compound_header_does_not_cover_its_body() -> None:
    text = (
        "for x in wrap(\n"
        "    shady,\n"
        "):  # noqa: DM\n"
        "    danger()\n"
        "if shady:  # noqa: DM102\n"
        "    shady\n"
    )
    found = check_text("a.py", text, validators=demo())
    assert [(f.code, f.line) for f in found] == [("DM101", 4), ("DM102", 6)]


def test_procedure_mode_ignores_suppressions_entirely() -> None:
    text = "danger()  # noqa: DM101\nshady  # noqa\n"
    found = check_text("main.py", text, mode="procedure", validators=demo())
    assert codes(found) == ["DM101", "DM102"]


def test_procedure_mode_uses_given_capabilities() -> None:
    text = "urlopen('https://example.org')\n"
    assert codes(check_text("m.py", text, mode="procedure", validators=demo())) == ["DM201"]
    assert (
        check_text(
            "m.py",
            text,
            mode="procedure",
            capabilities=Capabilities(network=True),
            validators=demo(),
        )
        == []
    )


# -- per-file ignores --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "path", "ignored"),
    [
        ("tests/*", "tests/test_a.py", True),
        ("tests/*", "tests/sub/test_a.py", True),
        ("tests/*", "src/tests.py", False),
        ("tests/", "tests/sub/test_a.py", True),
        ("tests", "src/tests/a.py", True),
        ("__init__.py", "pkg/__init__.py", True),
        ("*_gen.py", "pkg/deep/x_gen.py", True),
        ("pkg/*.py", "pkg/a.py", True),
        ("pkg/*.py", "other/pkg/a.py", False),
        ("./pkg/a.py", "pkg/a.py", True),
    ],
)
def test_per_file_ignores_follow_ruff_style_globs(
    tmp_path: Path, pattern: str, path: str, ignored: bool
) -> None:
    settings = CheckSettings(root=str(tmp_path), per_file_ignores={pattern: ["DM1"]})
    found = check_text(
        str(tmp_path / path), "danger()\nprint()\n", settings=settings, validators=demo()
    )
    assert codes(found) == (["OT1"] if ignored else ["DM101", "OT1"])


def test_per_file_ignores_take_names_and_are_off_in_procedure_mode(tmp_path: Path) -> None:
    settings = CheckSettings(root=str(tmp_path), per_file_ignores={"*.py": ["demo", "OT"]})
    path = str(tmp_path / "a.py")
    assert check_text(path, TEXT, settings=settings, validators=demo()) == []
    assert codes(
        check_text(path, TEXT, settings=settings, mode="procedure", validators=demo())
    ) == ["DM101", "DM102", "OT1"]


def test_per_file_ignores_match_paths_relative_to_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "proj/gen/a.py", "danger()\n")
    settings = CheckSettings(root=str(tmp_path / "proj"), per_file_ignores={"gen/*": ["DM"]})
    monkeypatch.chdir(tmp_path)
    assert check_paths(["proj"], settings=settings, validators=demo()) == []
    monkeypatch.chdir(tmp_path / "proj/gen")
    assert check_paths(["a.py"], settings=settings, validators=demo()) == []


# -- files, directories, excludes ------------------------------------------------------------


def make_tree(root: Path) -> None:
    write(root / "a.py", "danger()\n")
    write(root / "pkg/b.py", "shady\n")
    write(root / "pkg/notes.txt", "danger()\n")
    write(root / "pkg/vendor/c.py", "danger()\n")
    write(root / "build/d.py", "danger()\n")
    for skipped in (".git", ".venv", "__pycache__", "node_modules", ".tox", "venv"):
        write(root / skipped / "x.py", "danger()\n")


def test_directories_are_walked_for_py_files_skipping_tool_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert collect_files(["."]) == [
        "./a.py",
        "./build/d.py",
        "./pkg/b.py",
        "./pkg/vendor/c.py",
    ]
    found = check_paths(["pkg", "a.py"], settings=CheckSettings(root="."), validators=demo())
    assert [(f.path, f.code) for f in found] == [
        ("a.py", "DM101"),
        ("pkg/b.py", "DM102"),
        ("pkg/vendor/c.py", "DM101"),
    ]


def test_paths_are_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path / "pkg")
    found = check_paths(
        ["../a.py", "b.py", str(tmp_path / "build")],
        settings=CheckSettings(root=str(tmp_path)),
        validators=demo(),
    )
    assert [f.path for f in found] == sorted(["../a.py", "b.py", str(tmp_path / "build/d.py")])


def test_same_file_twice_is_checked_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    found = check_paths(["a.py", "./a.py", "."], settings=CheckSettings(), validators=demo())
    assert [f.path for f in found if f.path.endswith("a.py")] == ["a.py"]


@pytest.mark.parametrize(
    ("exclude", "expected"),
    [
        ([], ["a.py", "build/d.py", "pkg/b.py", "pkg/vendor/c.py"]),
        (["vendor"], ["a.py", "build/d.py", "pkg/b.py"]),
        (["pkg/vendor"], ["a.py", "build/d.py", "pkg/b.py"]),
        (["pkg/*"], ["a.py", "build/d.py"]),
        (["build", "b.py"], ["a.py", "pkg/vendor/c.py"]),
        (["*.py"], []),
        (["pkg"], ["a.py", "build/d.py"]),
    ],
)
def test_excludes_match_components_and_root_relative_globs(
    tmp_path: Path, exclude: list[str], expected: list[str]
) -> None:
    make_tree(tmp_path)
    settings = CheckSettings(root=str(tmp_path), exclude=exclude)
    files = collect_files([str(tmp_path)], settings)
    assert [os.path.relpath(f, tmp_path).replace(os.sep, "/") for f in files] == expected


def test_excludes_apply_to_explicit_files(tmp_path: Path) -> None:
    make_tree(tmp_path)
    settings = CheckSettings(root=str(tmp_path), exclude=["vendor"])
    assert collect_files([str(tmp_path / "pkg/vendor/c.py")], settings) == []


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file or directory: .*nope.py"):
        check_paths([str(tmp_path / "nope.py")], settings=CheckSettings(), validators=demo())


# -- bad input ---------------------------------------------------------------------------------


def check_one(path: Path) -> list[Finding]:
    return check_paths(
        [str(path)], settings=CheckSettings(root=str(path.parent)), validators=demo()
    )


def test_binary_file_is_pc003(tmp_path: Path) -> None:
    found = check_one(write(tmp_path / "bin.py", b"\x7fELF\x00\x00danger()\n"))
    # Where the first NUL byte is: line 1, column 5.
    assert [(f.code, f.line, f.col, f.severity) for f in found] == [(UNREADABLE, 1, 5, "error")]
    assert "NUL" in found[0].message and "line 1" in found[0].message


def test_nul_byte_is_reported_at_its_line(tmp_path: Path) -> None:
    found = check_one(write(tmp_path / "nul.py", b"x = 1\ny = 2\nz = 'a\x00'\n"))
    assert [(f.code, f.line, f.col) for f in found] == [(UNREADABLE, 3, 7)]
    assert "line 3" in found[0].message


def test_non_utf8_file_is_pc003(tmp_path: Path) -> None:
    found = check_one(write(tmp_path / "latin.py", "x = 'caf\xe9'\n".encode("latin-1")))
    assert codes(found) == [UNREADABLE]
    assert "not valid source text" in found[0].message


def test_declared_coding_and_bom_are_honoured(tmp_path: Path) -> None:
    latin = write(
        tmp_path / "latin.py",
        "# -*- coding: latin-1 -*-\nx = 'caf\xe9'\ndanger()\n".encode("latin-1"),
    )
    assert [(f.code, f.line) for f in check_one(latin)] == [("DM101", 3)]
    bom = write(tmp_path / "bom.py", b"\xef\xbb\xbfdanger()\n")
    assert [(f.code, f.line, f.col) for f in check_one(bom)] == [("DM101", 1, 1)]
    unknown = write(tmp_path / "unknown.py", b"# coding: no-such-codec\nx = 1\n")
    assert codes(check_one(unknown)) == [UNREADABLE]


def test_empty_file_is_clean(tmp_path: Path) -> None:
    assert check_one(write(tmp_path / "empty.py", "")) == []


def test_crlf_file_reports_right_lines(tmp_path: Path) -> None:
    found = check_one(write(tmp_path / "crlf.py", b"x = 1\r\ndanger()  # noqa: DM102\r\n"))
    assert [(f.code, f.line) for f in found] == [("DM101", 2)]


def test_syntax_error_file_is_pc001(tmp_path: Path) -> None:
    found = check_one(write(tmp_path / "bad.py", "def f(:\n"))
    assert [(f.code, f.line) for f in found] == [(SYNTAX_ERROR, 1)]


class TextValidator(DemoValidator):
    """DM101 by a text search: the 5 MB test measures the runner, not an AST walk."""

    def check(self, source: SourceFile, context: CheckContext) -> Iterator[Finding]:
        start = 0
        while (start := source.text.find("\ndanger(", start)) >= 0:
            start += 1
            yield self.finding(source, (source.text.count("\n", 0, start) + 1, 1), "DM101")


def test_five_megabyte_generated_file(tmp_path: Path) -> None:
    lines = [
        f"value_{i} = compute({i}, 'text # not a comment')  # generated\n" for i in range(90_000)
    ]
    lines[45_000] = "danger()  # noqa: DM102\n"
    path = write(tmp_path / "gen.py", "".join(lines))
    assert path.stat().st_size > 5_000_000
    found = check_paths(
        [str(path)],
        settings=CheckSettings(root=str(tmp_path)),
        validators={"demo": TextValidator()},
    )
    assert [(f.code, f.line) for f in found] == [("DM101", 45_001)]


def test_unreadable_file_is_pc003(tmp_path: Path) -> None:
    path = write(tmp_path / "secret.py", "x = 1\n")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as a user who can read anything")
        found = check_one(path)
        assert codes(found) == [UNREADABLE] and "cannot read file" in found[0].message
    finally:
        path.chmod(0o644)


# -- procedure mode and metadata.json ---------------------------------------------------------


def make_procedure(root: Path, name: str, capabilities: object, code: str) -> Path:
    directory = root / "procedures" / name
    write(directory / "main.py", code)
    if capabilities is not None:
        write(directory / "metadata.json", json.dumps({"name": name, "capabilities": capabilities}))
    return directory / "main.py"


def test_procedure_capabilities_come_from_metadata_json(tmp_path: Path) -> None:
    code = "def run():\n    return urlopen('https://example.org')\n"
    allowed = make_procedure(
        tmp_path,
        "fetch",
        {"network": True, "subprocess": False, "filesystem_write": ["out/"]},
        code,
    )
    denied = make_procedure(tmp_path, "nofetch", {"network": False}, code)
    missing = make_procedure(tmp_path, "nometa", None, code)
    caps, problem = capabilities_for(str(allowed))
    assert caps == Capabilities(network=True, subprocess=False, filesystem_write=("out/",))
    assert problem is None
    found = check_paths(
        [str(tmp_path / "procedures")],
        mode="procedure",
        settings=CheckSettings(root=str(tmp_path)),
        validators=demo(),
        capabilities_for=capabilities_for,
    )
    assert [(Path(f.path).parent.name, f.code) for f in found] == [
        ("nofetch", "DM201"),
        ("nometa", "DM201"),
    ]
    # The runner itself knows no layout: without the callback nothing is granted.
    bare = check_paths(
        [str(tmp_path / "procedures")],
        mode="procedure",
        settings=CheckSettings(root=str(tmp_path)),
        validators=demo(),
    )
    assert codes(bare) == ["DM201"] * 3
    generic = check_paths(
        [str(allowed), str(denied), str(missing)],
        settings=CheckSettings(root=str(tmp_path)),
        validators=demo(),
    )
    assert codes(generic) == ["DM201"] * 3  # generic mode reads no metadata


def test_relative_procedure_path_finds_its_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_procedure(tmp_path, "fetch", {"network": True}, "urlopen('x')\n")
    monkeypatch.chdir(tmp_path / "procedures" / "fetch")
    assert (
        check_paths(
            ["main.py"],
            mode="procedure",
            settings=CheckSettings(),
            validators=demo(),
            capabilities_for=capabilities_for,
        )
        == []
    )


def test_broken_metadata_json_grants_nothing_and_is_reported(tmp_path: Path) -> None:
    main = make_procedure(tmp_path, "broken", None, "urlopen('x')\n")
    write(main.parent / "metadata.json", "{not json")
    found = check_paths(
        [str(main)],
        mode="procedure",
        settings=CheckSettings(root=str(tmp_path)),
        validators=demo(),
        capabilities_for=capabilities_for,
    )
    assert [(Path(f.path).name, f.code) for f in found] == [
        ("main.py", "DM201"),
        ("metadata.json", UNREADABLE),
    ]


# -- parallel ----------------------------------------------------------------------------------


def make_many(root: Path, count: int = 60) -> None:
    for i in range(count):
        body = "danger()\n" if i % 3 == 0 else ("shady  # noqa\n" if i % 3 == 1 else "x = (\n")
        write(root / f"d{i % 7}" / f"m{i}.py", body + "print(1)\n")
    write(root / "bin.py", b"\0\0")


def test_jobs_2_gives_the_same_result_as_jobs_1(tmp_path: Path) -> None:
    make_many(tmp_path)
    settings = CheckSettings(root=str(tmp_path), per_file_ignores={"d1/*": ["OT"]})
    one = check_paths([str(tmp_path)], settings=settings, validators=demo(), jobs=1)
    two = check_paths([str(tmp_path)], settings=settings, validators=demo(), jobs=2)
    assert len(one) > 100
    assert one == two


def test_jobs_2_with_validators_from_the_plugin_manager(
    tmp_path: Path, with_demo_plugin: None
) -> None:
    make_many(tmp_path)
    settings = CheckSettings(root=str(tmp_path))
    select = ["demo", "other", "PC"]
    one = check_paths([str(tmp_path)], settings=settings, select=select, jobs=1)
    two = check_paths([str(tmp_path)], settings=settings, select=select, jobs=3)
    assert one == two and {"DM101", "OT1", SYNTAX_ERROR, BARE_NOQA, UNREADABLE} <= set(codes(one))


# -- output formats ----------------------------------------------------------------------------


SAMPLE = [
    Finding("pkg/a.py", 2, 5, "DM101", "error", "call to danger()"),
    Finding("pkg/a.py", 3, 1, "DM102", "warning", "shady name"),
    Finding("b.py", 1, 1, "OT1", "info", "print() call"),
]


def test_text_format_is_one_line_per_finding() -> None:
    assert format_findings(SAMPLE, "text") == (
        "pkg/a.py:2:5: DM101 [error] call to danger()\n"
        "pkg/a.py:3:1: DM102 [warning] shady name\n"
        "b.py:1:1: OT1 [info] print() call\n"
    )
    assert format_findings([], "text") == ""


def test_json_format_lists_finding_objects() -> None:
    data = json.loads(format_findings(SAMPLE, "json"))
    assert data[0] == {
        "path": "pkg/a.py",
        "line": 2,
        "col": 5,
        "code": "DM101",
        "severity": "error",
        "message": "call to danger()",
    }
    assert [d["code"] for d in data] == ["DM101", "DM102", "OT1"]
    assert json.loads(format_findings([], "json")) == []


def assert_valid_sarif(log: dict) -> None:
    """The parts of SARIF 2.1.0 that GitHub code scanning requires, checked by hand."""
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json") or "sarif-schema-2.1.0" in log["$schema"]
    assert isinstance(log["runs"], list) and len(log["runs"]) == 1
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "proctor"
    assert re.match(r"^https?://", driver["informationUri"])
    assert re.match(r"^\d+\.\d+\.\d+", driver["version"])
    ids = [rule["id"] for rule in driver["rules"]]
    assert len(ids) == len(set(ids)), "rule ids must be unique"
    for rule in driver["rules"]:
        assert re.fullmatch(r"[A-Z]+[0-9]+", rule["id"])
        assert rule["name"] and isinstance(rule["name"], str)
        for key in ("shortDescription", "fullDescription", "help"):
            assert isinstance(rule[key]["text"], str) and rule[key]["text"]
        assert len(rule["shortDescription"]["text"]) <= 1024
        assert rule["defaultConfiguration"]["level"] in {"none", "note", "warning", "error"}
    for result in run["results"]:
        index = result["ruleIndex"]
        assert driver["rules"][index]["id"] == result["ruleId"]
        assert result["level"] in {"none", "note", "warning", "error"}
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        assert len(result["locations"]) == 1
        physical = result["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert "\\" not in uri
        if "uriBaseId" in physical["artifactLocation"]:
            assert not uri.startswith("/") and "://" not in uri
            assert physical["artifactLocation"]["uriBaseId"] in run["originalUriBaseIds"]
        region = physical["region"]
        assert isinstance(region["startLine"], int) and region["startLine"] >= 1
        assert isinstance(region["startColumn"], int) and region["startColumn"] >= 1
    for base in run.get("originalUriBaseIds", {}).values():
        assert base["uri"].startswith("file:///") and base["uri"].endswith("/")


def test_sarif_structure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outside = Finding(str(tmp_path.parent / "elsewhere.py"), 1, 1, "DM101", "error", "x")
    log = to_sarif([*SAMPLE, outside], demo())
    assert_valid_sarif(log)
    run = log["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert {"PC001", "PC002", "PC003", "PC004", "DM101", "DM102", "DM201", "OT1"} <= set(ids)
    first = run["results"][0]
    assert first["ruleId"] == "DM101" and first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "pkg/a.py", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 2, "startColumn": 5},
    }
    assert [r["level"] for r in run["results"]] == ["error", "warning", "note", "error"]
    assert run["results"][3]["locations"][0]["physicalLocation"]["artifactLocation"][
        "uri"
    ].startswith("file:///")


def test_sarif_describes_an_unregistered_code_too() -> None:
    log = to_sarif([Finding("a.py", 1, 1, "ZZ1", "warning", "from elsewhere")], demo())
    assert_valid_sarif(log)


# -- run_cli -----------------------------------------------------------------------------------


def cli(paths: list[str], **kwargs: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    options: dict = {"select": None, "mode": "generic", "fmt": "text", "jobs": 1}
    options.update(kwargs)
    code = run_cli(paths, out=out, err=err, **options)
    return code, out.getvalue(), err.getvalue()


def test_run_cli_exit_codes(
    tmp_path: Path, with_demo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "clean.py", "x = 1\n")
    write(tmp_path / "bad.py", "danger()\n")
    write(tmp_path / "warn.py", "x = 1  # noqa\n")
    assert cli(["clean.py"]) == (0, "", "No findings.\n")
    assert cli(["bad.py", "clean.py"]) == (
        1,
        "bad.py:1:1: DM101 [error] call to danger()\n",
        "Found 1 finding in 1 file: 1 error.\n",
    )
    code, out, _ = cli(["warn.py"])
    assert code == 1 and out.startswith("warn.py:1:8: PC002 [warning] ")
    assert cli(["bad.py"], select=["other"])[0] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"select": ["nosuchcheck"]}, "unknown check or rule 'nosuchcheck'"),
        ({"fmt": "xml"}, "unknown format 'xml'; known formats: codes, json, sarif, text"),
        ({"mode": "strict"}, "unknown mode"),
    ],
)
def test_run_cli_usage_errors_exit_2(
    tmp_path: Path, with_demo_plugin: None, kwargs: dict, message: str
) -> None:
    write(tmp_path / "a.py", "danger()\n")
    code, out, err = cli([str(tmp_path / "a.py")], **kwargs)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err


def test_a_registered_format_is_a_format(
    tmp_path: Path, with_demo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.py", "danger()\nshady\n")
    # No summary line: only formats that ask for one get it.
    assert cli(["a.py"], fmt="codes") == (1, "DM101\nDM102\n", "")
    assert set(formats.load_formats()) == {"codes", "json", "sarif", "text"}
    assert formats.get_format("text") is formats.TEXT


def test_the_built_in_formats_are_a_plugin_that_can_be_disabled(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "x = 1\n")
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1"}
    done = subprocess.run(
        [PROCTOR, "check", "--format", "xml", "a.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: unknown format 'xml'; known formats: json, sarif, text\n"
    env["PROCTOR_DISABLE_PLUGINS"] = "formats"
    done = subprocess.run(
        [PROCTOR, "check", "a.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: unknown format 'text'; known formats: none registered\n"


def test_run_cli_missing_path_exits_2(tmp_path: Path, with_demo_plugin: None) -> None:
    write(tmp_path / "a.py", "danger()\n")
    code, out, err = cli([str(tmp_path / "a.py"), str(tmp_path / "missing.py")])
    assert (code, out) == (2, "")
    assert err == f"error: no such file or directory: {tmp_path / 'missing.py'}\n"


def test_run_cli_config_error_exits_2(tmp_path: Path, with_demo_plugin: None) -> None:
    write(tmp_path / "proctor.toml", "[check]\nselct = ['demo']\n")
    write(tmp_path / "a.py", "danger()\n")
    code, out, err = cli([str(tmp_path / "a.py")])
    assert (code, out) == (2, "")
    assert "unknown key(s) selct" in err


def test_run_cli_reads_config_found_from_the_first_path(
    tmp_path: Path, with_demo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "proctor.toml",
        '[check]\nselect = ["demo"]\nignore = ["DM102"]\nexclude = ["gen"]\n'
        'per-file-ignores = { "legacy/*" = ["DM101"] }\n',
    )
    write(tmp_path / "src/a.py", "danger()\nshady\nprint()\n")
    write(tmp_path / "src/gen/b.py", "danger()\n")
    write(tmp_path / "legacy/c.py", "danger()\n")
    monkeypatch.chdir(tmp_path / "src")
    assert cli(["a.py", "gen", "../legacy"])[:2] == (
        1,
        "a.py:1:1: DM101 [error] call to danger()\n",
    )
    assert check_settings(find_config("a.py")).root == str(tmp_path)


def test_run_cli_formats(
    tmp_path: Path, with_demo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "sub/a.py", "danger()\nshady\n")
    code, out, err = cli(["sub"], fmt="json")
    assert code == 1 and err == ""
    assert json.loads(out) == [
        {
            "path": "sub/a.py",
            "line": 1,
            "col": 1,
            "code": "DM101",
            "severity": "error",
            "message": "call to danger()",
        },
        {
            "path": "sub/a.py",
            "line": 2,
            "col": 1,
            "code": "DM102",
            "severity": "warning",
            "message": "shady name",
        },
    ]
    code, out, err = cli(["sub"], fmt="sarif")
    assert code == 1 and err == ""
    log = json.loads(out)
    assert_valid_sarif(log)
    assert [r["ruleId"] for r in log["runs"][0]["results"]] == ["DM101", "DM102"]
    clean = write(tmp_path / "clean.py", "x = 1\n")
    code, out, _ = cli([str(clean)], fmt="sarif")
    assert code == 0 and json.loads(out)["runs"][0]["results"] == []


# -- the proctor CLI (in-process with capsys, and the installed script) -----------------------


def test_proctor_check_in_process(
    tmp_path: Path,
    with_demo_plugin: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from proctor.cli import main

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.py", "danger()\nprint()\n")
    assert main(["check", "--select", "DM1,other", "a.py"]) == 1
    captured = capsys.readouterr()
    assert (
        captured.out
        == "a.py:1:1: DM101 [error] call to danger()\na.py:2:1: OT1 [info] print() call\n"
    )
    assert captured.err == "Found 2 findings in 1 file: 1 error, 1 info.\n"
    assert main(["check", "--select", "demo", "-j", "2", "a.py"]) == 1
    assert capsys.readouterr().out == "a.py:1:1: DM101 [error] call to danger()\n"
    assert main(["check", "--select", "bogus", "a.py"]) == 2
    assert "unknown check or rule 'bogus'" in capsys.readouterr().err
    assert main(["--json", "check", "a.py"]) == 1
    assert [d["code"] for d in json.loads(capsys.readouterr().out)] == ["DM101", "OT1"]


def run_proctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROCTOR_NO_ENTRY_POINTS": "1"}
    return subprocess.run(
        [PROCTOR, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120
    )


def test_installed_proctor_script_exit_codes(tmp_path: Path) -> None:
    write(tmp_path / "clean.py", "x = 1\n")
    write(tmp_path / "broken.py", "def f(:\n")
    write(tmp_path / "bin.py", b"\0")
    write(tmp_path / "noqa.py", "x = 1  # noqa\n")
    done = run_proctor("check", "clean.py", cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "")
    done = run_proctor("check", "--select", "PC", ".", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.splitlines() == [
        "./bin.py:1:1: PC003 [error] binary file (a NUL byte at line 1), not Python source",
        "./broken.py:1:7: PC001 [error] syntax error: invalid syntax",
        "./noqa.py:1:8: PC002 [warning] bare `# noqa` suppresses nothing; name the codes, "
        "e.g. `# noqa: PS101`",
    ]
    assert done.stderr == "Found 3 findings in 3 files: 2 errors, 1 warning.\n"
    done = run_proctor("check", "missing.py", cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert "no such file or directory: missing.py" in done.stderr
    done = run_proctor("check", "--select", "nosuch", "clean.py", cwd=tmp_path)
    assert done.returncode == 2 and "unknown check or rule 'nosuch'" in done.stderr
    done = run_proctor("check", "--format", "sarif", "--select", "PC", "broken.py", cwd=tmp_path)
    assert done.returncode == 1
    assert_valid_sarif(json.loads(done.stdout))


def test_checking_module_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from proctor.checks.runner import check_text\n"
        "check_text('a.py', 'x = 1\\n', validators={})\n"
        "heavy = [m for m in ('pydantic', 'git', 'litellm', 'openai', 'click', 'rich')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_checking_public_api_is_exported() -> None:
    for module in (files, formats, noqa, runner, selection, settings_module):
        for name in module.__all__:
            assert hasattr(module, name), (module.__name__, name)


# -- docs/checks.md ----------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[1] / "docs" / "checks.md"


def builtin_validators() -> dict[str, Validator]:
    from proctor.core.plugins import PluginManager

    manager = PluginManager()
    manager.load_builtins(set())
    manager.check_pending()
    return dict(manager.validators())


def test_docs_list_every_registered_rule_code() -> None:
    text = DOCS.read_text(encoding="utf-8")
    validators = builtin_validators()
    assert {"safety", "log-lint"} <= set(validators)
    missing = [rule.code for _, rule in all_rules(validators) if f"`{rule.code}`" not in text]
    assert not missing, f"rule codes missing from docs/checks.md: {missing}"


def test_docs_links_resolve() -> None:
    text = DOCS.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([\w.-]+\.md)(?:#[\w-]+)?\)", text)
    assert {"checks-safety.md", "checks-loglint.md"} <= set(targets)
    for target in targets:
        assert (DOCS.parent / target).is_file(), target


def test_docs_config_example_is_valid() -> None:
    from proctor.core.config import parse_config_text

    text = DOCS.read_text(encoding="utf-8")
    block = re.search(r"```toml\n(# proctor.toml.*?)```", text, flags=re.DOTALL)
    assert block is not None
    cfg = parse_config_text(block.group(1), "proctor.toml")
    assert cfg is not None and check_settings(cfg).per_file_ignores["tests/*"] == ["PS1"]


def test_docs_pre_commit_example_names_real_hooks() -> None:
    text = DOCS.read_text(encoding="utf-8")
    manifest = (Path(__file__).resolve().parents[1] / ".pre-commit-hooks.yaml").read_text()
    example = re.search(r"# \.pre-commit-config\.yaml\n(.*?)```", text, flags=re.DOTALL)
    assert example is not None
    for hook_id in re.findall(r"- id: (\S+)", example.group(1)):
        assert f"- id: {hook_id}\n" in manifest


# -- with the built-in validators --------------------------------------------------------------

CORPORA = Path("/work/shared/corpora")
if not CORPORA.is_dir():
    CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


def test_cli_safety_over_the_corpora(tmp_path: Path) -> None:
    dangerous = CORPORA / "safety" / "dangerous"
    done = run_proctor(
        "check", "--select", "safety", "--format", "json", str(dangerous), cwd=tmp_path
    )
    assert done.returncode == 1, done.stderr
    found = json.loads(done.stdout)
    flagged = {
        Path(f["path"]).name
        for f in found
        if f["severity"] == "error" and f["code"].startswith("PS")
    }
    assert flagged == {p.name for p in dangerous.glob("*.py")}
    assert all(f["path"].startswith(str(dangerous)) for f in found)
    done = run_proctor(
        "check", "--select", "safety", str(CORPORA / "safety" / "benign"), cwd=tmp_path
    )
    assert (done.returncode, done.stdout) == (0, ""), done.stdout


def test_cli_log_lint_over_the_corpora(tmp_path: Path) -> None:
    done = run_proctor(
        "check", "--select", "PL101", str(CORPORA / "loglint" / "flagged"), cwd=tmp_path
    )
    assert done.returncode == 1
    files = {LINE_RE.match(line)["path"] for line in done.stdout.splitlines()}
    assert {Path(p).name for p in files} == {
        p.name for p in (CORPORA / "loglint" / "flagged").glob("*.py")
    }
    done = run_proctor(
        "check", "--select", "log-lint", str(CORPORA / "loglint" / "clean"), cwd=tmp_path
    )
    assert " PL1" not in done.stdout


LINE_RE = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>[A-Z]+\d+) .+$")


def test_real_validators_jobs_and_sarif(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_NO_ENTRY_POINTS", "1")
    reset_plugin_manager()
    try:
        for sub in ("safety/dangerous", "safety/benign", "loglint/flagged", "loglint/clean"):
            for source in (CORPORA / sub).glob("*.py"):
                write(tmp_path / sub / source.name, source.read_text(encoding="utf-8"))
        monkeypatch.chdir(tmp_path)
        settings = CheckSettings(root=str(tmp_path))
        one = check_paths(["."], settings=settings, jobs=1)
        two = check_paths(["."], settings=settings, jobs=2)
        assert one == two and len(one) > 20
        assert {f.code[:2] for f in one} == {"PS", "PL"}
        log = json.loads(format_findings(one, "sarif", get_plugin_manager().validators()))
        assert_valid_sarif(log)
        uris = {
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            for r in log["runs"][0]["results"]
        }
        assert all(u.startswith(("safety/", "loglint/")) for u in uris)
    finally:
        reset_plugin_manager()


def test_real_safety_noqa_and_procedure_mode() -> None:
    validators = builtin_validators()
    code = "import os\n\n\ndef run(cmd):\n    return os.system(cmd)\n"
    found = check_text("tool.py", code, validators=validators, select=["safety"])
    assert found and all(f.code.startswith("PS") for f in found)
    lines = code.splitlines()
    for f in found:
        codes_here = sorted({g.code for g in found if g.line == f.line})
        lines[f.line - 1] = (
            lines[f.line - 1].split("  # noqa")[0] + "  # noqa: " + ", ".join(codes_here)
        )
    suppressed = "\n".join(lines) + "\n"
    assert check_text("tool.py", suppressed, validators=validators, select=["safety"]) == []
    in_procedure = check_text(
        "procedures/x/main.py",
        suppressed,
        mode="procedure",
        validators=validators,
        select=["safety"],
    )
    assert {f.code for f in found} <= {f.code for f in in_procedure}
    assert any(f.code == "PS901" for f in in_procedure), in_procedure


def test_real_log_lint_config_phrases_through_check_text() -> None:
    settings = CheckSettings(tables={"log-lint": {"disallowed": ["gave up"]}})
    code = "import logging\nlogging.warning('gave up on %s', 'x')\nlogging.info('retry')\n"
    found = check_text(
        "a.py", code, settings=settings, select=["log-lint"], validators=builtin_validators()
    )
    assert [(f.code, f.line) for f in found] == [("PL101", 2)]


# -- bare noqa only when asked; severity in text; --fail-on ------------------------------------


@pytest.mark.parametrize(
    ("select", "comment", "reported"),
    [
        (["demo"], "# noqa", False),  # a narrowed run: another linter's comment
        (["demo", "PC002"], "# noqa", True),
        (["demo", "PC"], "# noqa", True),
        (["demo", "PC0"], "# noqa", True),
        (None, "# noqa", True),  # everything selected
        (["demo"], "# noqa DM101", True),  # meant for us, without the colon
        (["demo"], "# noqa - OT1 is fine here", True),
        (["demo"], "# noqa E501", False),
    ],
)
def test_bare_noqa_is_reported_when_asked_or_meant_for_us(
    select: list[str] | None, comment: str, reported: bool
) -> None:
    found = check_text("a.py", f"x = 1  {comment}\n", select=select, validators=demo())
    assert (codes(found) == [BARE_NOQA]) is reported
    assert reported or found == []


def test_bare_noqa_asked_for_can_still_be_ignored() -> None:
    settings = CheckSettings(ignore=["PC002"])
    text = "x = 1  # noqa DM101\n"
    assert check_text("a.py", text, select=["demo"], settings=settings, validators=demo()) == []


def test_text_lines_show_the_severity() -> None:
    findings = check_text("a.py", "danger()\nshady = 1\nprint(1)\n", validators=demo())
    from proctor.checks.formats import TEXT

    assert TEXT.render(findings, demo()).splitlines() == [
        "a.py:1:1: DM101 [error] call to danger()",
        "a.py:2:1: DM102 [warning] shady name",
        "a.py:3:1: OT1 [info] print() call",
    ]


def test_fail_on_decides_the_exit_status(
    tmp_path: Path, with_demo_plugin: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "warn.py", "shady = 1\n")
    write(tmp_path / "err.py", "danger()\n")
    # default: any finding fails, and the summary counts them by severity
    assert cli(["warn.py"]) == (
        1,
        "warn.py:1:1: DM102 [warning] shady name\n",
        "Found 1 finding in 1 file: 1 warning.\n",
    )
    code, _, err = cli(["warn.py"], fail_on="error")
    assert code == 0
    assert err == (
        "Found 1 finding in 1 file: 1 warning. None is at or above --fail-on error, "
        "so the run passes.\n"
    )
    assert cli(["warn.py"], fail_on="warning")[0] == 1
    assert cli(["err.py", "warn.py"], fail_on="error")[0] == 1
    # the config's [check] fail-on, and the command line over it
    write(tmp_path / "proctor.toml", '[check]\nfail-on = "error"\n')
    assert cli(["warn.py"])[0] == 0
    assert cli(["warn.py"], fail_on="info")[0] == 1
    write(tmp_path / "proctor.toml", '[check]\nfail-on = "sometimes"\n')
    code, out, err = cli(["warn.py"])
    assert (code, out) == (2, "")
    assert "fail-on" in err and "error, warning, info" in err


def test_hook_fails_on_warnings_unless_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from proctor.precommit import safety as safety_hook

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".git").mkdir()
    write(tmp_path / "a.py", "import subprocess\nsubprocess.run(['git', 'log', ref])\n")
    assert safety_hook.main(["a.py"]) == 1
    write(tmp_path / "proctor.toml", '[check]\nfail-on = "error"\n')
    assert safety_hook.main(["a.py"]) == 0


def test_cli_fail_on_option(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "import subprocess\nsubprocess.run(['git', 'log', ref])\n")
    done = run_proctor("check", "--select", "safety", "--fail-on", "error", "a.py", cwd=tmp_path)
    assert done.returncode == 0
    assert done.stdout.startswith("a.py:2:1: PS205 [warning] ")
    assert "None is at or above --fail-on error" in done.stderr
    done = run_proctor("check", "--fail-on", "nope", "a.py", cwd=tmp_path)
    assert done.returncode == 2
