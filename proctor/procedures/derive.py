"""metadata.json from ``run()``'s signature, and the checks that keep the two in step.

The signature is the truth about names, types, defaults, ``required`` and kind; the
metadata adds what code cannot say (descriptions, category, examples, owners,
capabilities). So a spec is derived from the signature, an update without metadata
merges the stored spec with a fresh derivation, a metadata file that leaves a field out
gets it from the signature, and one that contradicts the signature is refused naming
the parameter and the field.
"""

from __future__ import annotations

import ast
import functools
import json
from typing import Any

from proctor.procedures.signature import Param, Signature
from proctor.procedures.spec import Parameter, ProcedureSpec


def _facts(p: Param) -> dict[str, Any]:
    """The fields of a metadata parameter that the signature decides."""
    facts: dict[str, Any] = {
        "required": not p.has_default,
        "kind": p.kind,
        "default": p.default if p.default_is_json else None,
        "default_repr": p.default_source if p.has_default and not p.default_is_json else None,
    }
    if p.annotation is not None:
        facts["type"] = p.annotation
    return facts


def derive_parameters(signature: Signature | None) -> list[Parameter]:
    """One Parameter per named parameter of ``run``, described from its docstring."""
    if signature is None:
        return []
    return [
        Parameter(name=p.name, description=signature.doc.params.get(p.name, ""), **_facts(p))
        for p in signature.named()
    ]


def derive_spec(name: str, signature: Signature | None, description: str | None) -> ProcedureSpec:
    """A new procedure's spec: ``description`` if given, else the docstring's summary."""
    return ProcedureSpec(
        name=name,
        description=description if description is not None else _summary(signature),
        parameters=derive_parameters(signature),
        returns=_returns(signature),
    )


def _summary(signature: Signature | None) -> str:
    return signature.doc.summary if signature else ""


def _returns(signature: Signature | None) -> str:
    return signature.returns if signature and signature.returns else "Any"


def merge_spec(stored: ProcedureSpec, signature: Signature | None) -> ProcedureSpec:
    """The stored spec brought in step with new code.

    Kept from the stored spec: every field the signature does not decide (descriptions,
    category, examples, owners, capabilities...), and a parameter's type when the code
    has no annotation. Taken from the signature: the parameters and their order, types
    where annotated, defaults, ``required``, kind, and the return annotation. New
    parameters are added (described from the docstring), removed ones dropped, except
    that with ``**kwargs`` a declared parameter the code reaches through it stays.
    """
    old = {p.name: p for p in stored.parameters}
    params: list[Parameter] = []
    for fresh in derive_parameters(signature):
        before = old.get(fresh.name)
        if before is None:
            params.append(fresh)
            continue
        update = _facts_of(fresh)
        if not before.description:
            update["description"] = fresh.description
        params.append(before.model_copy(update=update))
    if signature is not None and signature.takes_kwargs:
        named = set(signature.names())
        params += [p for p in stored.parameters if p.name not in named]
    changes: dict[str, Any] = {"parameters": params}
    if signature is not None and signature.returns:
        changes["returns"] = signature.returns
    if not stored.description:
        changes["description"] = _summary(signature)
    return stored.model_copy(update=changes)


def _facts_of(fresh: Parameter) -> dict[str, Any]:
    update = {
        "required": fresh.required,
        "kind": fresh.kind,
        "default": fresh.default,
        "default_repr": fresh.default_repr,
    }
    if fresh.type != "Any":
        update["type"] = fresh.type
    return update


def fill_metadata(
    metadata: dict[str, Any], signature: Signature | None, description: str | None
) -> dict[str, Any]:
    """A metadata file with what it leaves out taken from the signature.

    ``parameters`` absent: all derived. A listed parameter without ``type``, ``default``,
    ``required``, ``kind``, ``default_repr`` or ``description``: that field derived. A
    field that is given is kept as given, for :func:`spec_mismatches` to judge.
    """
    data = dict(metadata)
    if description is not None:
        data["description"] = description
    elif "description" not in data:
        data["description"] = _summary(signature)
    if signature is None:
        return data
    derived = {p.name: p.model_dump(mode="json") for p in derive_parameters(signature)}
    if "parameters" not in data:
        data["parameters"] = list(derived.values())
    elif isinstance(data["parameters"], list):
        filled = []
        for item in data["parameters"]:
            if isinstance(item, dict) and item.get("name") in derived:
                item = {**derived[str(item["name"])], **item}
            filled.append(item)
        data["parameters"] = filled
    if "returns" not in data:
        data["returns"] = _returns(signature)
    return data


# -- consistency ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _norm_type(text: str) -> str:
    """A type as ``ast.unparse`` writes it, so ``list[ str ]`` and ``list[str]`` agree.
    Cached: a write compares every parameter's type, and the same few types recur."""
    try:
        return ast.unparse(ast.parse(text.strip(), mode="eval").body)
    except SyntaxError:
        return text.strip()


def _same_value(a: Any, b: Any) -> bool:
    """Equal as JSON: ``1``, ``1.0`` and ``true`` are three different defaults."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _js(value: Any) -> str:
    return json.dumps(value)


_KIND_WORDS = {
    "positional": "positional",
    "keyword": "keyword-only",
    "positional_only": "positional-only",
}


def _param_mismatches(declared: Parameter, actual: Param, entry: str) -> list[str]:
    where = f"parameter {declared.name!r}"
    problems: list[str] = []
    if actual.annotation is not None and declared.type != "Any":
        if _norm_type(declared.type) != _norm_type(actual.annotation):
            problems.append(
                f"{where}: type is {declared.type!r} in metadata.json "
                f"but {actual.annotation!r} in {entry}()"
            )
    if declared.required and actual.has_default:
        problems.append(
            f"{where}: required is true in metadata.json but {entry}() gives it "
            f"the default {actual.default_source}"
        )
    elif not declared.required and not actual.has_default:
        problems.append(
            f"{where}: required is false in metadata.json but {entry}() gives it no default"
        )
    if actual.has_default and actual.default_is_json:
        if not _same_value(declared.default, actual.default) or declared.default_repr:
            problems.append(
                f"{where}: default is {_js(declared.default)} in metadata.json "
                f"but {actual.default_source} in {entry}()"
            )
    elif actual.has_default:
        if declared.default is not None:
            problems.append(
                f"{where}: default is {_js(declared.default)} in metadata.json but "
                f"{actual.default_source} in {entry}(), which is not a JSON value "
                "(leave default null; default_repr holds its source)"
            )
        if declared.default_repr is not None and _norm_type(declared.default_repr) != (
            _norm_type(actual.default_source or "")
        ):
            problems.append(
                f"{where}: default_repr is {declared.default_repr!r} in metadata.json "
                f"but {actual.default_source} in {entry}()"
            )
    elif declared.default is not None or declared.default_repr is not None:
        shown = declared.default_repr or _js(declared.default)
        problems.append(
            f"{where}: default is {shown} in metadata.json but {entry}() gives it no default"
        )
    actual_kind = actual.kind if actual.kind in _KIND_WORDS else "positional"
    if declared.kind != actual_kind:
        problems.append(
            f"{where}: kind is {declared.kind!r} in metadata.json "
            f"but {_KIND_WORDS[actual_kind]} in {entry}()"
        )
    return problems


def spec_mismatches(spec: ProcedureSpec, signature: Signature | None, entry: str) -> list[str]:
    """Every way the spec and the signature disagree, one line each, naming the field.

    Parameters in one and not the other (a declared one is allowed when ``run`` takes
    ``**kwargs``), then per parameter its type (when annotated and the metadata says more
    than ``Any``), ``required``, default and kind, then the return annotation.
    """
    if signature is None:
        return [f"main.py defines no top-level function {entry}()"]
    declared = {p.name: p for p in spec.parameters}
    actual = {p.name: p for p in signature.named()}
    problems = []
    for name in actual:
        if name not in declared:
            problems.append(f"parameter {name!r} is in {entry}() but not in metadata.json")
    for name in declared:
        if name not in actual and not signature.takes_kwargs:
            problems.append(f"parameter {name!r} is in metadata.json but not in {entry}()")
    for name, param in declared.items():
        if name in actual:
            problems += _param_mismatches(param, actual[name], entry)
    if signature.returns is not None and spec.returns != "Any":
        if _norm_type(spec.returns) != _norm_type(signature.returns):
            problems.append(
                f"returns is {spec.returns!r} in metadata.json "
                f"but {signature.returns!r} in {entry}()"
            )
    return problems
