"""parse_structured over the shipped corpus of replies, and the rules around it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from proctor.llm.errors import StructuredOutputError, TruncatedReply
from proctor.llm.extract import candidates, ends_inside_string, light_repair
from proctor.llm.structured import parse_structured

CORPUS = Path(__file__).parent / "data" / "llm_replies.jsonl"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


class GeneratedCode(BaseModel):
    code: str
    confidence: float = Field(ge=0, le=1)
    explanation: str


def test_corpus_covers_every_shape() -> None:
    kinds = {row["kind"] for row in ROWS}
    for kind in (
        "fence-json",
        "fence-bare",
        "xml-tag",
        "prose-around",
        "double-encoded",
        "wrapper",
        "one-element-list",
        "bom",
        "smart-quotes",
        "truncated",
        "example-first",
    ):
        assert kind in kinds


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['kind']}-{i % 3}" for i, r in enumerate(ROWS)])
def test_corpus_reply(row: dict[str, Any]) -> None:
    if row["expect"] == "ok":
        value = parse_structured(row["text"], GeneratedCode, finish_reason=row["finish_reason"])
        assert value.code == row["code"]  # byte for byte, final newline included
        assert 0 <= value.confidence <= 1
    elif row["expect"] == "truncated":
        with pytest.raises(TruncatedReply):
            parse_structured(row["text"], GeneratedCode, finish_reason=row["finish_reason"])
    else:
        with pytest.raises(StructuredOutputError) as info:
            parse_structured(row["text"], GeneratedCode, finish_reason=row["finish_reason"])
        assert info.value.errors


VALID = '{"code": "x = 1\\n", "confidence": 0.9, "explanation": "ok"}'


def test_length_is_refused_even_when_the_json_is_complete() -> None:
    with pytest.raises(TruncatedReply, match="token limit"):
        parse_structured(VALID, GeneratedCode, finish_reason="length")
    assert parse_structured(VALID, GeneratedCode, finish_reason="stop").code == "x = 1\n"


def test_cut_off_reply_without_a_length_flag_is_not_repaired_into_code() -> None:
    cut = '{"code": "def run():\\n    return compute(1, 2'
    with pytest.raises(StructuredOutputError):
        parse_structured(cut, GeneratedCode, finish_reason="stop")
    assert ends_inside_string(cut)
    assert light_repair(cut) is None


def test_validation_errors_come_first_and_name_the_field() -> None:
    text = 'Here: {"code": "x", "confidence": 7, "explanation": "e"}'
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(text, GeneratedCode)
    assert "confidence" in info.value.errors[0]
    assert "less than or equal to 1" in info.value.errors[0]


def test_empty_and_prose_replies_raise() -> None:
    with pytest.raises(StructuredOutputError, match="empty"):
        parse_structured("   \n", GeneratedCode)
    with pytest.raises(StructuredOutputError) as info:
        parse_structured("I would rather not.", GeneratedCode)
    assert info.value.text == "I would rather not."


class Wrapped(BaseModel):
    result: dict[str, int]


def test_a_single_key_is_unwrapped_only_when_the_schema_does_not_want_it() -> None:
    assert parse_structured('{"result": {"a": 1}}', Wrapped).result == {"a": 1}
    inner = parse_structured('{"result": ' + VALID + "}", GeneratedCode)
    assert inner.explanation == "ok"


def test_first_candidate_that_validates_wins() -> None:
    text = (
        'An example: {"code": "", "confidence": 2}\n'
        "```json\n" + VALID + "\n```\n"
        'and later {"code": "other", "confidence": 0.1, "explanation": "late"}'
    )
    assert parse_structured(text, GeneratedCode).explanation == "ok"
    sources = [c.source for c in candidates(text)]
    assert sources[:2] == ["whole reply", "fence 1 (json)"]


def test_braces_and_quotes_inside_strings_do_not_break_the_object_scan() -> None:
    code = 'print("{not a brace}") ; d = {"k": "]"}\n'
    text = (
        "Result follows "
        + json.dumps(
            {"code": code, "confidence": 0.5, "explanation": 'has "quotes" and \\ slashes'}
        )
        + " -- end"
    )
    assert parse_structured(text, GeneratedCode).code == code


def test_repair_that_invents_keys_is_refused() -> None:
    # json-repair reads the bare value up to the comma and makes its tail a key "limit":
    # the model would validate (extra keys are ignored) with the code cut short.
    text = '{"code": def run(path, limit: int), "confidence": 0.5, "explanation": "x"}'
    with pytest.raises(StructuredOutputError) as info:
        parse_structured(text, GeneratedCode)
    assert "keys the schema lacks (limit)" in info.value.errors[0]


def test_python_literal_reply() -> None:
    text = "{'code': 'x = None\\n', 'confidence': 1, 'explanation': \"it's fine\"}"
    assert parse_structured(text, GeneratedCode).explanation == "it's fine"
