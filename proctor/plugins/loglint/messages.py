"""The text of a log message as far as it is known before run time.

A message is read into segments: constant text with the node it came from, and gaps for
what only run time knows (variables, placeholders). Constant parts of f-strings, ``%`` and
``+`` operands, ``.format`` receivers and module-level string constants all count; the
placeholders of a constant format string are checked against the arguments.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

__all__ = [
    "GAP",
    "Segment",
    "all_literal",
    "join_segments",
    "message_segments",
    "module_constants",
    "placeholder_problem",
]

GAP = "\x00"  # stands for text unknown until run time (a variable, a placeholder)

# printf-style conversion specifiers, as ``str % args`` parses them.
_PERCENT_SPEC = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<prec>\*|\d+))?[hlL]?(?P<conv>.?)",
    re.DOTALL,
)
_CONVERSIONS = frozenset("diouxXeEfFgGcrsa")
# Placeholders are filled at run time: they are gaps in the wording, and the names inside
# ``%(name)s`` or ``{name}`` are variable names, not words of the message.
_PLACEHOLDER = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?:\*|\d+)?(?:\.(?:\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]"
    r"|\{[^{}]*\}"
)

# The ``name=`` that ``f"{name=}"`` writes before the value.
_SELF_DOCUMENTING = re.compile(r"[\w.\[\]()'\"]+\s*=\s*$")
# Calls that hand their text argument (or receiver) through with the words intact.
_TEXT_METHODS = frozenset(
    {"upper", "lower", "title", "capitalize", "casefold", "strip", "lstrip", "rstrip"}
)
_TEXT_WRAPPERS = frozenset(
    {
        "_",
        "gettext",
        "gettext_lazy",
        "ugettext",
        "ugettext_lazy",
        "gettext_noop",
        "N_",
        "str",
        "dedent",
    }
)


# --- message text ------------------------------------------------------------------------

Segment = tuple[str, ast.AST] | None  # a piece of known text and where it is, or a gap


def message_segments(
    node: ast.expr,
    out: list[Segment],
    constants: dict[str, ast.expr] | None,
    anchor: ast.AST | None,
) -> None:
    """Flatten the parts of a message expression that are text known before run time.

    Adjacent pieces are joined as Python would (``"try " + "again"`` reads "try again");
    anything computed at run time becomes a gap, so words never run across it. Names and
    other arguments never contribute text; constant operands of ``%`` and ``.format`` do,
    since they end up inside the message. ``constants`` resolves module-level string
    constants used in the message; their findings are placed at ``anchor``, the use.
    """
    if isinstance(node, ast.Constant):
        out.append((node.value, anchor or node) if isinstance(node.value, str) else None)
    elif isinstance(node, ast.JoinedStr):
        values = node.values
        for index, part in enumerate(values):
            if isinstance(part, ast.Constant) and isinstance(part.value, str):
                text = part.value
                if (
                    text.rstrip().endswith("=")
                    and index + 1 < len(values)
                    and isinstance(values[index + 1], ast.FormattedValue)
                ):
                    # f"{retry_count=}" spells the expression out: code, not wording.
                    text = _SELF_DOCUMENTING.sub("", text)
                out.append((text, anchor or node))
            elif (
                isinstance(part, ast.FormattedValue)
                and isinstance(part.value, ast.Constant)
                and isinstance(part.value.value, str)
                and part.format_spec is None
            ):
                out.append((part.value.value, anchor or node))  # f"{'literal'}"
            else:
                out.append(None)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        for operand in _add_operands(node):
            message_segments(operand, out, constants, anchor)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        message_segments(node.left, out, constants, anchor)
        right = node.right
        operands: list[ast.expr]
        if isinstance(right, ast.Tuple):
            operands = right.elts
        elif isinstance(right, ast.Dict):
            operands = [v for v in right.values if v is not None]
        else:
            operands = [right]
        for value in operands:
            out.append(None)
            message_segments(value, out, None, anchor)
        out.append(None)
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        func = node.func
        if func.attr == "format":
            message_segments(func.value, out, constants, anchor)
            for arg in [*node.args, *(kw.value for kw in node.keywords)]:
                out.append(None)
                message_segments(arg, out, None, anchor)
            out.append(None)
        elif (
            func.attr == "join"
            and len(node.args) == 1
            and isinstance(node.args[0], (ast.List, ast.Tuple))
        ):
            out.append(None)
            for index, item in enumerate(node.args[0].elts):
                if index:
                    message_segments(func.value, out, None, anchor)
                message_segments(item, out, None, anchor)
            out.append(None)
        elif func.attr in _TEXT_METHODS and not node.args and not node.keywords:
            message_segments(func.value, out, constants, anchor)
        elif func.attr in _TEXT_WRAPPERS and len(node.args) == 1:
            message_segments(node.args[0], out, constants, anchor)
        else:
            out.append(None)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _TEXT_WRAPPERS
        and len(node.args) == 1
    ):
        message_segments(node.args[0], out, constants, anchor)
    elif isinstance(node, ast.NamedExpr):
        message_segments(node.value, out, constants, anchor)
    elif isinstance(node, ast.IfExp):
        message_segments(node.body, out, constants, anchor)
        out.append(None)
        message_segments(node.orelse, out, constants, anchor)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            out.append(None)
            message_segments(value, out, constants, anchor)
        out.append(None)
    elif isinstance(node, ast.Name) and constants is not None and node.id in constants:
        message_segments(constants[node.id], out, None, anchor or node)
    else:
        out.append(None)


def _add_operands(node: ast.BinOp) -> list[ast.expr]:
    """The operands of ``a + b + c`` in order, without recursion: generated code can chain
    thousands of them, deeper than the interpreter's recursion limit."""
    operands: list[ast.expr] = []
    current: ast.expr = node
    while isinstance(current, ast.BinOp) and isinstance(current.op, ast.Add):
        operands.append(current.right)
        current = current.left
    operands.append(current)
    operands.reverse()
    return operands


def join_segments(segments: list[Segment]) -> tuple[str, list[tuple[int, ast.AST]]]:
    """Join segments into one string with gaps as NUL; return where each piece starts."""
    parts: list[str] = []
    starts: list[tuple[int, ast.AST]] = []
    offset = 0
    for segment in segments:
        if segment is None:
            parts.append(GAP)
            offset += 1
            continue
        text, node = segment
        if "%" in text or "{" in text:
            text = _PLACEHOLDER.sub(GAP, text)
        starts.append((offset, node))
        parts.append(text)
        offset += len(text)
    return "".join(parts), starts


# --- placeholders ------------------------------------------------------------------------


def placeholder_problem(fmt: str, args: Sequence[ast.expr]) -> str | None:
    """Why ``fmt % args`` fails at run time, or None when it works (or cannot be known).

    Follows logging's rule: a single non-empty dict argument is used as the mapping, so
    ``%(name)s`` placeholders take exactly one dict argument.
    """
    positional = 0
    keys: list[str] = []
    for m in _PERCENT_SPEC.finditer(fmt):
        conv = m.group("conv")
        if conv == "%":
            continue
        if not conv:
            return "the message ends in an incomplete '%' placeholder"
        if conv not in _CONVERSIONS:
            return f"unsupported placeholder '{m.group(0)}' (write '%%' for a percent sign)"
        if m.group("key") is not None:
            keys.append(m.group("key"))
        else:
            positional += 1
        positional += (m.group("width") == "*") + (m.group("prec") == "*")
    count = len(args)
    if keys:
        if positional:
            return "the message mixes '%(name)s' and positional placeholders"
        if count != 1:
            return f"'%(name)s' placeholders take a single dict argument, got {count} arguments"
        arg = args[0]
        if type(arg) is ast.Dict:
            literal_keys = {
                k.value for k in arg.keys if type(k) is ast.Constant and isinstance(k.value, str)
            }
            if len(literal_keys) == len(arg.keys):
                missing = [k for k in dict.fromkeys(keys) if k not in literal_keys]
                if missing:
                    return "no value for placeholder(s) " + ", ".join(f"%({k})s" for k in missing)
        elif type(arg) in (ast.Tuple, ast.List, ast.Constant, ast.JoinedStr):
            return "'%(name)s' placeholders need a dict argument"
        return None
    if positional == count:
        return None
    if count == 1 and positional == 0 and type(args[0]) is ast.Dict:
        return None  # a dict argument with no placeholders formats to the message itself
    return (
        f"{positional} placeholder{'s' if positional != 1 else ''} but "
        f"{count} argument{'s' if count != 1 else ''}"
    )


def module_constants(tree: ast.Module) -> dict[str, ast.expr]:
    """Module-level names assigned text exactly once: a message kept in a constant
    (``MSG = "..."; log.info(MSG)``) is still read."""
    found: dict[str, ast.expr] = {}
    twice: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        if target.id in found:
            twice.add(target.id)
        if isinstance(value, (ast.Constant, ast.JoinedStr, ast.BinOp)):
            found[target.id] = value
    for name in twice:
        found.pop(name, None)
    return found


def all_literal(node: ast.expr, constants: dict[str, ast.expr] | None) -> bool:
    """Whether a ``+`` chain is made of string literals and module-level string constants
    only: nothing is formatted, so nothing is wasted when the level is disabled."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return all(all_literal(operand, constants) for operand in _add_operands(node))
    if isinstance(node, ast.Name) and constants and node.id in constants:
        return all_literal(constants[node.id], None)
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return not any(isinstance(v, ast.FormattedValue) for v in node.values)
    return False
