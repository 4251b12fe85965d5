"""Params of a run: declared types read without evaluating them, command-line text
converted by type, values checked, every problem of a call named at once, and the
JSON Schema MCP tools are offered with."""

from __future__ import annotations

from typing import Any

import pytest

from proctor.core.errors import EXIT_USAGE
from proctor.procedures.signature import code_signature
from proctor.procedures.spec import ProcedureSpec
from proctor.runs.params import ParamsError, check_params, check_value, json_schema, parse_type

CODE = """
def run(name: str, count: int = 1, *, ratio: float = 0.5, tags: list[str] | None = None,
        mode: "Literal['fast', 'slow']" = "fast", extra: dict[str, int] | None = None,
        flag: bool = False):
    return name
"""

PARAMS = [
    {"name": "name", "type": "str", "required": True},
    {"name": "count", "type": "int", "default": 1, "required": False},
    {"name": "ratio", "type": "float", "default": 0.5, "required": False, "kind": "keyword"},
    {"name": "tags", "type": "list[str] | None", "required": False, "kind": "keyword"},
    {"name": "mode", "type": "Literal['fast', 'slow']", "required": False, "kind": "keyword"},
    {"name": "extra", "type": "dict[str, int] | None", "required": False, "kind": "keyword"},
    {"name": "flag", "type": "bool", "default": False, "required": False, "kind": "keyword"},
]


def spec(params: list[dict[str, Any]] | None = None) -> ProcedureSpec:
    return ProcedureSpec.model_validate(
        {"name": "demo", "parameters": PARAMS if params is None else params}
    )


def call(values: dict[str, Any], from_text: bool = False, code: str = CODE) -> dict[str, Any]:
    return check_params("demo", spec(), code_signature(code), values, from_text=from_text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("str", "str"),
        ("int", "int"),
        ("Optional[int]", "union"),
        ("int | None", "union"),
        ("typing.List[int]", "list"),
        ("Sequence[str]", "list"),
        ("Mapping[str, float]", "dict"),
        ("tuple[int, str]", "tuple"),
        ("tuple[int, ...]", "list"),
        ("Literal['a', 'b']", "literal"),
        ("Annotated[int, 'doc']", "int"),
        ("MyOwnClass", "any"),
        ("Any", "any"),
        ("int | Any", "any"),
        ("not a type (", "any"),
        ("__import__('os').system('x')", "any"),  # never evaluated
    ],
)
def test_types_are_read_not_evaluated(text: str, kind: str) -> None:
    assert parse_type(text).kind == kind


def test_text_from_the_command_line_is_converted_by_the_declared_type() -> None:
    got = call(
        {
            "name": "007",
            "count": "7",
            "ratio": "2",
            "tags": '["a", "b"]',
            "mode": "slow",
            "extra": '{"k": 1}',
            "flag": "yes",
        },
        from_text=True,
    )
    assert got == {
        "name": "007",  # a str stays a str, however numeric it looks
        "count": 7,
        "ratio": 2.0,
        "tags": ["a", "b"],
        "mode": "slow",
        "extra": {"k": 1},
        "flag": True,
    }
    assert call({"name": "x", "tags": "null"}, from_text=True)["tags"] is None


def test_values_from_the_api_are_checked_not_converted() -> None:
    assert call({"name": "x", "count": 3, "ratio": 1}) == {"name": "x", "count": 3, "ratio": 1}
    with pytest.raises(ParamsError) as info:
        call({"name": 5, "count": "3", "flag": 1, "tags": ["a", 2], "mode": "medium"})
    problems = info.value.problems
    assert problems == [
        "parameter 'name': expected str, got 5",
        "parameter 'count': expected int, got \"3\"",
        "parameter 'flag': expected bool, got 1",
        "parameter 'tags': expected list[str] | None, got [\"a\", 2]",
        "parameter 'mode': expected Literal['fast', 'slow'], got \"medium\"",
    ]
    assert info.value.exit_code == EXIT_USAGE


def test_unknown_and_missing_params_are_usage_errors_named_together() -> None:
    with pytest.raises(ParamsError) as info:
        call({"nmae": "x", "count": "many"}, from_text=True)
    assert info.value.problems == [
        "unknown parameter 'nmae' (takes name, count, ratio, tags, mode, extra, flag)",
        "parameter 'count': expected int, got \"many\"",
        "missing required parameter 'name' (str)",
    ]
    assert str(info.value).startswith("demo: unknown parameter 'nmae'")


def test_kwargs_accept_undeclared_params_and_positional_only_cannot_be_passed() -> None:
    code = "def run(name, /, other=1, **rest):\n    return rest\n"
    declared = [
        {"name": "name", "type": "str", "required": False, "kind": "positional_only"},
        {"name": "other", "type": "int", "required": False},
    ]
    sig = code_signature(code)
    assert check_params("demo", spec(declared), sig, {"anything": [1]}) == {"anything": [1]}
    with pytest.raises(ParamsError, match="positional-only"):
        check_params("demo", spec(declared), sig, {"name": "x"})


def test_non_json_values_and_non_finite_numbers_are_refused() -> None:
    loose = code_signature("def run(**kw):\n    return kw\n")
    with pytest.raises(ParamsError) as info:
        check_params("demo", spec([]), loose, {"thing": object(), "nan": float("nan")})
    assert [p.split(":")[0] for p in info.value.problems] == [
        "parameter 'thing'",
        "parameter 'nan'",
    ]
    assert all("is not a JSON value" in p for p in info.value.problems)
    assert check_value(float("nan"), parse_type("float")) is not None
    with pytest.raises(ParamsError, match="parameter 'ratio': expected float"):
        call({"name": "x", "ratio": "inf"}, from_text=True)


def test_json_schema_of_the_metadata() -> None:
    schema = json_schema(spec(), code_signature(CODE))
    assert schema["required"] == ["name"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["count"] == {"type": "integer", "default": 1}
    assert props["tags"] == {
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]
    }
    assert props["mode"] == {"enum": ["fast", "slow"]}
    assert props["extra"]["anyOf"][0] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }
    kwargs_schema = json_schema(spec([]), code_signature("def run(**kw):\n    pass\n"))
    assert "additionalProperties" not in kwargs_schema
