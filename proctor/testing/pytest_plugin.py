"""pytest plugin of the testing kit, registered under the ``pytest11`` entry point, so a
package that depends on proctor gets these fixtures with no conftest:

- ``proctor_plugins``: the plugin objects under test (override it; empty by default);
- ``proctor_repo``: a :class:`~proctor.testing.ProctorRepo` in a temporary directory,
  with the built-ins and ``proctor_plugins`` loaded;
- ``fake_llm``: a :class:`~proctor.llm.fake.FakeBackend` with an empty script
  (``fake_llm.push(...)`` replies).

Fixture names start with ``proctor_`` (or are ``fake_llm``) so they do not shadow a
project's own. Importing this module imports nothing heavy: pytest loads it in every
session of an environment where proctor is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from proctor.llm.fake import FakeBackend
    from proctor.testing import ProctorRepo

IDENTITY = {
    "GIT_AUTHOR_NAME": "proctor tests",
    "GIT_AUTHOR_EMAIL": "tests@proctor.invalid",
    "GIT_COMMITTER_NAME": "proctor tests",
    "GIT_COMMITTER_EMAIL": "tests@proctor.invalid",
}


@pytest.fixture
def proctor_plugins() -> list[Any]:
    """The plugins the test drives: override this fixture to return yours."""
    return []


@pytest.fixture
def proctor_repo(
    tmp_path: Path, proctor_plugins: list[Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[ProctorRepo]:
    """A temporary store with a committed proctor.toml and the pipeline over it."""
    import os

    from proctor.testing import make_repo

    for key, value in IDENTITY.items():
        if not os.environ.get(key):
            monkeypatch.setenv(key, value)  # commits need an identity, CI may have none
    repo = make_repo(tmp_path / "proctor-repo", plugins=proctor_plugins)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def fake_llm() -> FakeBackend:
    """A scripted LLM backend: push replies (strings, Reply objects, exceptions)."""
    from proctor.llm.fake import FakeBackend

    return FakeBackend()
