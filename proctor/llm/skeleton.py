"""The deterministic skeleton of a procedure, from its metadata alone.

:class:`CodeExtractor` turns a :class:`~proctor.procedures.spec.ProcedureSpec` into the
code everything else can be certain of before a model is asked: the entry point's
signature (names, kinds, types, defaults), a docstring (the description, the parameters,
what it returns, the preconditions), checks of the parameters' types, and the steps as
comments over a body that raises ``NotImplementedError``. It is part of the prompt (the
model fills it in rather than inventing a signature) and the fallback stored for review
when no attempt produces usable code. The same metadata always gives the same bytes.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from proctor.procedures.spec import Parameter, ProcedureSpec

# Types a skeleton checks with isinstance: JSON values arrive as these, nothing else.
_CHECKABLE = {
    "int": "int",
    "float": "(int, float)",
    "str": "str",
    "bool": "bool",
    "list": "list",
    "dict": "dict",
}


def _base_type(annotation: str) -> str:
    """``list[int]`` -> ``list``; ``Optional[...]`` and unions are not checked."""
    return annotation.split("[", 1)[0].strip()


def _default_source(param: Parameter) -> str:
    if param.default_repr is not None:
        return param.default_repr
    if param.default is None:
        return "None"
    if isinstance(param.default, bool | int | float | str):
        return repr(param.default)
    # Lists and dicts as defaults are shared between calls; None stands in for them.
    return "None"


def _annotation(param: Parameter) -> str:
    return "" if param.type in ("", "Any") else f": {param.type}"


class CodeExtractor:
    """Builds skeletons for one entry point (``run`` unless configured otherwise)."""

    def __init__(self, entry: str = "run") -> None:
        self.entry = entry

    def signature(self, spec: ProcedureSpec) -> str:
        """``def run(a: int, b: str = "x", *, c: bool = False) -> int:``."""
        positional_only = [p for p in spec.parameters if p.kind == "positional_only"]
        positional = [p for p in spec.parameters if p.kind == "positional"]
        keyword = [p for p in spec.parameters if p.kind == "keyword"]
        parts: list[str] = []
        for group in (positional_only, positional):
            # A required parameter cannot follow one with a default: keep the order valid.
            for p in sorted(group, key=lambda p: not p.required):
                parts.append(self._param(p))
            if group is positional_only and positional_only:
                parts.append("/")
        if keyword:
            parts.append("*")
            parts.extend(self._param(p) for p in keyword)
        returns = "" if spec.returns in ("", "Any") else f" -> {spec.returns}"
        return f"def {self.entry}({', '.join(parts)}){returns}:"

    @staticmethod
    def _param(p: Parameter) -> str:
        text = f"{p.name}{_annotation(p)}"
        if not p.required:
            text += f" = {_default_source(p)}" if _annotation(p) else f"={_default_source(p)}"
        return text

    def docstring(self, spec: ProcedureSpec) -> list[str]:
        lines = [(spec.description or f"The {spec.name} procedure.").strip().replace('"""', "'")]
        if spec.parameters:
            lines += ["", "Args:"]
            for p in spec.parameters:
                lines.append(f"    {p.name}: {p.description or p.type}".rstrip())
        if spec.returns not in ("", "Any"):
            lines += ["", "Returns:", f"    {spec.returns}"]
        if spec.preconditions:
            lines += ["", "Preconditions:"] + [f"    {c}" for c in spec.preconditions]
        return [line.replace("\\", "\\\\").replace('"""', "'''") for line in lines]

    def checks(self, spec: ProcedureSpec) -> list[str]:
        """``if not isinstance(n, int): raise TypeError(...)`` for plainly typed params."""
        out: list[str] = []
        for p in spec.parameters:
            base = _base_type(p.type)
            checked = _CHECKABLE.get(base)
            if checked is None:
                continue
            if base in ("int", "float"):
                # bool is an int subclass; a flag passed as a number is a caller's mistake.
                condition = f"isinstance({p.name}, bool) or not isinstance({p.name}, {checked})"
            else:
                condition = f"not isinstance({p.name}, {checked})"
            if not p.required and _default_source(p) == "None":
                condition = f"{p.name} is not None and ({condition})"
            message = json.dumps(f"{p.name} must be {base}, got ")
            out.append(f"if {condition}:")
            out.append(f"    raise TypeError({message} + type({p.name}).__name__)")
        return out

    def extract(self, spec: ProcedureSpec) -> str:
        """The skeleton's source, ending in a newline."""
        body: list[str] = ['"""' + self.docstring(spec)[0]]
        body += self.docstring(spec)[1:]
        if len(body) > 1:
            body.append('"""')
        else:
            body[0] += '"""'
        body += self.checks(spec)
        for number, step in enumerate(spec.steps, 1):
            for i, line in enumerate(step.strip().splitlines() or [""]):
                prefix = f"# {number}. " if i == 0 else "#    "
                body.append((prefix + line.strip()).rstrip())
        body.append(
            f"raise NotImplementedError({json.dumps(spec.name + ' is not implemented yet')})"
        )
        lines = [self.signature(spec)] + [f"    {line}" if line else "" for line in body]
        return "\n".join(lines) + "\n"
