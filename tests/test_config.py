"""Configuration: both file forms, validation of every key, and the upward search."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.core.config import DEFAULT_DISALLOWED, find_config, load_config, parse_config_text
from proctor.core.errors import ConfigError


def test_proctor_toml_and_pyproject_forms(tmp_path: Path) -> None:
    (tmp_path / "proctor.toml").write_text(
        'store-ref = "refs/heads/store"\nentry-point = "main"\n'
        '[check]\nselect = ["safety"]\nignore = ["PS1"]\nexclude = ["vendor"]\n'
        'per-file-ignores = { "tests/*" = ["PL"] }\n'
        '[safety]\nextra-allowed-imports = ["numpy"]\n'
        '[log-lint]\ndisallowed = ["oops"]\nlogger-objects = ["app.log"]\n'
        '[policy]\n"procedure.delete" = "require_proposal"\n'
        '[webhook]\nurl = "http://127.0.0.1:1/"\n'
    )
    cfg = load_config(tmp_path)
    assert cfg.store_ref == "refs/heads/store"
    assert cfg.entry_point == "main"
    assert cfg.check.select == ["safety"] and cfg.check.ignore == ["PS1"]
    assert cfg.check.per_file_ignores == {"tests/*": ["PL"]}
    assert cfg.check.extra_allowed_imports == ["numpy"]
    assert cfg.check.disallowed == ["oops"] and cfg.check.logger_objects == ["app.log"]
    assert cfg.policy == {"procedure.delete": "REQUIRE_PROPOSAL"}
    assert cfg.extra == {"webhook": {"url": "http://127.0.0.1:1/"}}

    other = tmp_path / "py"
    other.mkdir()
    (other / "pyproject.toml").write_text(
        '[project]\nname="x"\n[tool.proctor.check]\nselect=["log-lint"]\n'
    )
    assert load_config(other).check.select == ["log-lint"]


def test_defaults_without_a_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg.store_ref is None and cfg.entry_point == "run"
    assert cfg.check.disallowed == list(DEFAULT_DISALLOWED)
    assert cfg.policy == {}


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[check]\nselekt = []\n", "unknown key(s) selekt"),
        ('[check]\nselect = "safety"\n', "expected a list of strings"),
        ("[log-lint]\ndisalowed = []\n", "unknown key(s) disalowed"),
        ('store-ref = "main"\n', "refs/heads/<branch>"),
        ('entry-point = "not valid"\n', "Python identifier"),
        ('[policy]\n"procedure.create" = "MAYBE"\n', "expected one of ALLOW_IMMEDIATE"),
        ("mystery = 1\n", "unknown key 'mystery'"),
        ("[check\n", "not valid TOML"),
    ],
)
def test_invalid_config_is_an_error(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "proctor.toml")
    assert needle in str(info.value)
    assert info.value.exit_code == 2


def test_find_config_walks_up_to_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "proctor.toml").write_text('[check]\nselect = ["outer"]\n')
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "pyproject.toml").write_text('[tool.proctor.check]\nselect = ["inner"]\n')
    deep = repo / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(deep).check.select == ["inner"]
    # A pyproject without [tool.proctor] is skipped, and the search stops at .git.
    (repo / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert find_config(deep).check.select == []
