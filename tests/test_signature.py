"""Compatibility of run()'s signature, read from the AST: what decides major/minor/patch."""

from __future__ import annotations

import pytest

from proctor.core.errors import ValidationFailed
from proctor.procedures.signature import code_signature, compare, parse_docstring


def sig(src: str):
    return code_signature(src)


@pytest.mark.parametrize(
    "old,new,bump,reason",
    [
        ("def run(a): pass", "def run(a): return 1", "patch", None),
        ("def run(a): pass", "def run(a, b=1): pass", "minor", "new optional parameter 'b'"),
        ("def run(a): pass", "def run(a, *, b=1): pass", "minor", "new optional parameter 'b'"),
        ("def run(a): pass", "def run(a, b): pass", "major", "new required parameter 'b'"),
        ("def run(a): pass", "def run(b): pass", "major", "parameter 'a' removed or renamed"),
        ("def run(a, b=1): pass", "def run(a): pass", "major", "parameter 'b' removed or renamed"),
        ("def run(a=1): pass", "def run(a): pass", "major", "parameter 'a' lost its default"),
        (
            "def run(a) -> int: pass",
            "def run(a) -> str: pass",
            "major",
            "return annotation changed from int to str",
        ),
        (
            "def run(a) -> int: pass",
            "def run(a): pass",
            "major",
            "return annotation changed from int to None",
        ),
        ("def run(a): pass", "def run(a, **kw): pass", "patch", None),
        ("def run(a, b): pass", "def run(a, **kw): pass", "patch", None),
        ("def run(a): pass", "async def run(a): pass", "patch", None),
        ("def run(a): pass", "def run(a: int): pass", "patch", None),
    ],
)
def test_compare(old: str, new: str, bump: str, reason: str | None) -> None:
    result = compare(sig(old), sig(new))
    assert result.bump == bump
    if reason:
        assert reason in result.reasons
    else:
        assert result.reasons == ()


def test_last_definition_wins_and_nested_ones_do_not_count() -> None:
    s = sig("def run(a): pass\nclass X:\n    def run(self, z): pass\ndef run(b, c=2): pass\n")
    assert s is not None and s.names() == ["b", "c"]
    assert s.get("c") is not None and s.get("c").has_default
    assert sig("def main(): pass") is None


def test_keyword_only_and_varargs() -> None:
    s = sig("def run(a, /, b, *args, c, d=1, **kw) -> dict: pass")
    assert s is not None
    assert [(p.name, p.kind, p.has_default) for p in s.params] == [
        ("a", "positional_only", False),
        ("b", "positional", False),
        ("args", "var_positional", True),
        ("c", "keyword", False),
        ("d", "keyword", True),
        ("kw", "var_keyword", True),
    ]
    assert s.returns == "dict"


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(ValidationFailed, match=r"main.py: syntax error at line 2"):
        code_signature("x = 1\ndef run(:\n")


def test_entry_point_removed_is_breaking() -> None:
    assert compare(sig("def run(): pass"), None).bump == "major"
    assert compare(None, sig("def run(): pass")).bump == "minor"


def test_defaults_are_read_as_literals_only() -> None:
    s = sig("def run(a=0.5, b=False, c='!', d=-1, e=[1, {'k': None}], f=(1,), g=x(), h=1j): pass")
    assert s is not None
    got = {p.name: (p.default_source, p.default, p.default_is_json) for p in s.params}
    assert got == {
        "a": ("0.5", 0.5, True),
        "b": ("False", False, True),
        "c": ("'!'", "!", True),
        "d": ("-1", -1, True),
        "e": ("[1, {'k': None}]", [1, {"k": None}], True),
        "f": ("(1,)", None, False),  # a tuple would come back from JSON as a list
        "g": ("x()", None, False),  # never called
        "h": ("1j", None, False),
    }


def test_google_docstring() -> None:
    doc = parse_docstring(
        """Fetch a page.

        Longer prose.

        Args:
            url (str): Where from,
                continued.
            *args: Ignored.
            timeout: Seconds.

        Returns:
            The body.
        """
    )
    assert doc.summary == "Fetch a page."
    assert doc.params == {
        "url": "Where from, continued.",
        "args": "Ignored.",
        "timeout": "Seconds.",
    }
    assert doc.returns == "The body."


def test_numpy_and_sphinx_docstrings() -> None:
    numpy = parse_docstring(
        """Add numbers
        over two lines.

        Parameters
        ----------
        a, b : int
            The numbers.
        scale : float, optional
            A factor.

        Returns
        -------
        int
            The sum.
        """
    )
    assert numpy.summary == "Add numbers over two lines."
    assert numpy.params == {"a": "The numbers.", "b": "The numbers.", "scale": "A factor."}
    sphinx = parse_docstring("Run.\n\n:param str a: The a,\n    continued.\n:returns: x\n")
    assert (sphinx.summary, sphinx.params, sphinx.returns) == (
        "Run.",
        {"a": "The a, continued."},
        "x",
    )
    assert parse_docstring("Just prose, no sections.").params == {}
    assert parse_docstring(None).summary == ""
