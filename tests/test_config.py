"""Configuration: both file forms, the upward search, and every table validated by its owner
(core: top-level keys and [policy]; the check runner: [check]; the safety and log-lint
checks: their own tables)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from proctor.checks.settings import CheckSettings, check_settings
from proctor.core.config import ProctorConfig, find_config, load_config, parse_config_text
from proctor.core.errors import ConfigError
from proctor.plugins.loglint import DEFAULT_DISALLOWED, LogLintValidator
from proctor.plugins.safety import DEFAULT_ALLOWED_IMPORTS, SafetyValidator

PROCTOR = str(Path(sys.executable).with_name("proctor"))

FULL = (
    'store-ref = "refs/heads/store"\nentry-point = "main"\n'
    '[check]\nselect = ["safety"]\nignore = ["PS1"]\nexclude = ["vendor"]\n'
    'per-file-ignores = { "tests/*" = ["PL"] }\n'
    '[safety]\nextra-allowed-imports = ["numpy"]\n'
    '[log-lint]\ndisallowed = ["oops"]\nlogger-objects = ["app.log"]\n'
    '[policy]\n"procedure.delete" = "require_proposal"\n'
    '[webhook]\nurl = "http://127.0.0.1:1/"\n'
)


def test_proctor_toml_and_pyproject_forms(tmp_path: Path) -> None:
    (tmp_path / "proctor.toml").write_text(FULL)
    cfg = load_config(tmp_path)
    assert cfg.store_ref == "refs/heads/store"
    assert cfg.entry_point == "main"
    assert cfg.policy == {"procedure.delete": "REQUIRE_PROPOSAL"}
    assert cfg.root == str(tmp_path) and cfg.source == str(tmp_path / "proctor.toml")
    # Core keeps every other table as written, for whoever owns it.
    assert dict(cfg.table("webhook").values) == {"url": "http://127.0.0.1:1/"}
    assert dict(cfg.table("nothing-here").values) == {}
    assert not hasattr(cfg, "extra") and not hasattr(cfg, "check")

    check = check_settings(cfg)
    assert check.select == ["safety"] and check.ignore == ["PS1"] and check.exclude == ["vendor"]
    assert check.per_file_ignores == {"tests/*": ["PL"]}
    assert check.root == str(tmp_path)
    safety = SafetyValidator().options(check)
    assert safety.allowed_imports == DEFAULT_ALLOWED_IMPORTS | {"numpy"}
    loglint = LogLintValidator().options(check)
    assert loglint.disallowed == ("oops",) and loglint.logger_objects == {"app.log"}

    other = tmp_path / "py"
    other.mkdir()
    (other / "pyproject.toml").write_text(
        '[project]\nname="x"\n[tool.proctor.check]\nselect=["log-lint"]\n'
    )
    assert check_settings(load_config(other)).select == ["log-lint"]


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.store_ref is None and cfg.entry_point == "run"
    assert cfg.policy == {} and cfg.tables == {} and cfg.root == str(tmp_path)
    check = check_settings(cfg)
    assert check == CheckSettings(root=str(tmp_path))
    assert LogLintValidator().options(check).disallowed == DEFAULT_DISALLOWED
    assert SafetyValidator().options(check).allowed_imports == DEFAULT_ALLOWED_IMPORTS


@pytest.mark.parametrize(
    "text,needle",
    [
        ('store-ref = "main"\n', "refs/heads/<branch>"),
        ('entry-point = "not valid"\n', "Python identifier"),
        ('[policy]\n"procedure.create" = "MAYBE"\n', "expected one of ALLOW_IMMEDIATE"),
        ("mystery = 1\n", "proctor.toml: unknown key 'mystery'"),
        ("[check\n", "not valid TOML"),
    ],
)
def test_invalid_core_config_is_an_error(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "proctor.toml")
    assert needle in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[check]\nselekt = []\n", "proctor.toml [check]: unknown key(s) selekt"),
        ('[check]\nselect = "safety"\n', "proctor.toml check.select: expected a list of strings"),
        (
            '[check]\nper-file-ignores = { "a/*" = "PS1" }\n',
            "proctor.toml check.per-file-ignores.a/*: expected a list of strings",
        ),
        ("[check]\nper-file-ignores = 3\n", "check.per-file-ignores: expected a table"),
    ],
)
def test_invalid_check_table_is_an_error(text: str, needle: str) -> None:
    cfg = parse_config_text(text, "proctor.toml")
    assert cfg is not None  # core does not read [check]
    with pytest.raises(ConfigError) as info:
        check_settings(cfg)
    assert needle in str(info.value)
    assert info.value.exit_code == 2


@pytest.mark.parametrize(
    "text,validator,needle",
    [
        (
            "[log-lint]\ndisalowed = []\n",
            LogLintValidator,
            "proctor.toml [log-lint]: unknown key(s) disalowed; known: disallowed, logger-objects",
        ),
        (
            '[log-lint]\nlogger-objects = "app.log"\n',
            LogLintValidator,
            "proctor.toml log-lint.logger-objects: expected a list of strings",
        ),
        (
            "[log-lint]\ndisallowed = ['re:(']\n",
            LogLintValidator,
            "proctor.toml log-lint.disallowed: invalid regular expression '('",
        ),
        (
            "[safety]\nallowed_imports = []\n",
            SafetyValidator,
            "proctor.toml [safety]: unknown key(s) allowed_imports; "
            "known: allowed-imports, extra-allowed-imports",
        ),
        (
            "[safety]\nextra-allowed-imports = [1]\n",
            SafetyValidator,
            "proctor.toml safety.extra-allowed-imports: expected a list of strings",
        ),
    ],
)
def test_a_check_validates_its_own_table(text: str, validator: type, needle: str) -> None:
    cfg = parse_config_text(text, "proctor.toml")
    assert cfg is not None  # core does not read the checks' tables
    settings = check_settings(cfg)
    with pytest.raises(ConfigError) as info:
        validator().options(settings)
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_options_are_parsed_once_per_settings() -> None:
    calls: list[str] = []

    def parse(table: object) -> str:
        calls.append("parsed")
        return "value"

    settings = CheckSettings(tables={"mine": {"k": 1}})
    assert settings.options("mine", parse) == settings.options("mine", parse) == "value"
    assert calls == ["parsed"]
    assert settings == CheckSettings(tables={"mine": {"k": 1}})  # the cache is not state


def test_a_bad_check_table_stops_proctor_check_whatever_is_selected(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "proctor.toml").write_text("[safety]\nallowed = ['os']\n")
    for args in (["a.py"], ["--select", "log-lint", "a.py"]):
        done = subprocess.run(
            [PROCTOR, "check", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        assert "proctor.toml [safety]: unknown key(s) allowed" in done.stderr


def test_find_config_walks_up_to_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "proctor.toml").write_text('[check]\nselect = ["outer"]\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.proctor.check]\nselect = ["inner"]\n')
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    assert check_settings(find_config(deep)).select == ["inner"]
    # A pyproject without [tool.proctor] is skipped, and the search stops at .git.
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    cfg = find_config(deep)
    assert isinstance(cfg, ProctorConfig) and cfg.source is None
    assert check_settings(cfg).select == [] and cfg.root == str(deep)
