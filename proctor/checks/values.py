"""The values the resolver computes: what an expression is known to be, as far as one
file can tell.

A :class:`Qual` names a known object by its canonical dotted name (``"os.system"``,
``"builtins.eval"``); constants are literal ``ast.Constant`` nodes or folded
:class:`Const` values; list, tuple and dict literals, module namespaces, local classes and
the callables of ``operator`` and ``functools`` have a class each; ``None`` means
unknown. :class:`CallArgs` holds the evaluated arguments of one call. Checks built on
:class:`proctor.checks.resolve.Resolver` receive these in its events and match on them,
which is why they live apart from the walk that produces them.

Standard library only: this runs in pre-commit hooks.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any, Final

__all__ = [
    "ABSENT",
    "CANONICAL_MODULES",
    "AttrGetter",
    "CallArgs",
    "Computed",
    "Const",
    "LocalClass",
    "MapValue",
    "MethodCaller",
    "Namespace",
    "Partial",
    "Qual",
    "Sentinel",
    "SeqValue",
    "Spec",
    "Value",
    "canonical_module",
    "const_str",
    "const_value",
    "is_const",
]


class Sentinel:
    """A marker value that is none of the values above (``ABSENT``: not passed)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Returned by :meth:`CallArgs.get` when an argument was not passed at all.
ABSENT: Final = Sentinel("ABSENT")


class Qual:
    """A known object, by canonical dotted name: a module, function, class or constant."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Qual({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is Qual and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Const:
    """A constant computed by folding (``"sys" + "tem"``, f-strings of constants...).

    Literal constants are represented by their own ``ast.Constant`` node, which has the
    same ``value`` attribute; :func:`const_value` reads either.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"Const({self.value!r})"


class Computed:
    """A string computed by decoding, rotating, reversing or joining something the file
    does not spell out (``base64.b64decode(x)``, ``codecs.decode(x, "rot13")``,
    ``"".join(reversed(x))``, ``x[::-1]``): not a name anyone reads in review.

    ``how`` says which operation made it, for messages.
    """

    __slots__ = ("how",)

    def __init__(self, how: str) -> None:
        self.how = how

    def __repr__(self) -> str:
        return f"Computed({self.how!r})"


class Spec:
    """A module spec from ``importlib.util.find_spec(name)``; ``name`` is None when computed.

    ``module_from_spec`` of it is an import of that module (its loader runs the module).
    """

    __slots__ = ("name",)

    def __init__(self, name: str | None) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Spec({self.name!r})"


class SeqValue:
    """A list or tuple literal; unknown elements are None. ``open`` means a ``*x`` was seen."""

    __slots__ = ("items", "open")

    def __init__(self, items: tuple[Value | None, ...], open: bool = False) -> None:
        self.items = items
        self.open = open

    def __repr__(self) -> str:
        return f"SeqValue({self.items!r})"


class MapValue:
    """A dict with constant string keys (a literal, ``dict(k=v)``, or built up by stores).

    ``complete`` is False when some keys could not be read (``**unknown``, computed keys).
    """

    __slots__ = ("items", "complete")

    def __init__(self, items: dict[str, Value | None], complete: bool = True) -> None:
        self.items = items
        self.complete = complete

    def __repr__(self) -> str:
        return f"MapValue({self.items!r})"


class Namespace:
    """A mapping view of names: ``module.__dict__``, ``vars(module)``, ``globals()``...

    ``kind`` is ``"module"`` (``target`` is the module's canonical name), ``"scope"``
    (``target`` is a :class:`Scope` of this file: ``globals()``, ``locals()``) or
    ``"foreign"`` (another function's globals, e.g. ``f.__globals__``).
    """

    __slots__ = ("kind", "target")

    def __init__(self, kind: str, target: Any) -> None:
        self.kind = kind
        self.target = target

    def __repr__(self) -> str:
        return f"Namespace({self.kind!r}, {self.target!r})"


class LocalClass:
    """A class defined in this file, with the values of its bases (for subclass checks)."""

    __slots__ = ("name", "bases")

    def __init__(self, name: str, bases: tuple[Value | None, ...]) -> None:
        self.name = name
        self.bases = bases

    def derives_from(self, pred: Callable[[Qual], bool], depth: int = 0) -> bool:
        """Whether some base, followed through local classes, is a Qual matching ``pred``."""
        if depth > 20:
            return False
        for base in self.bases:
            if type(base) is Qual and pred(base):
                return True
            if type(base) is LocalClass and base.derives_from(pred, depth + 1):
                return True
        return False


class AttrGetter:
    """``operator.attrgetter("a.b")``: calling it reads that attribute path."""

    __slots__ = ("path",)

    def __init__(self, path: tuple[str, ...]) -> None:
        self.path = path


class MethodCaller:
    """``operator.methodcaller("name", *args)``: calling it on ``obj`` calls ``obj.name``."""

    __slots__ = ("name", "args")

    def __init__(self, name: str, args: CallArgs) -> None:
        self.name = name
        self.args = args


class Partial:
    """``functools.partial(func, *args, **kw)`` where ``func`` is a known object."""

    __slots__ = ("func", "args")

    def __init__(self, func: Qual, args: CallArgs) -> None:
        self.func = func
        self.args = args


Value = (
    Qual
    | Const
    | ast.Constant
    | SeqValue
    | MapValue
    | Namespace
    | LocalClass
    | AttrGetter
    | MethodCaller
    | Partial
    | Computed
    | Spec
    | object
)


def is_const(value: object) -> bool:
    """Whether ``value`` is a literal or folded constant."""
    t = type(value)
    return t is ast.Constant or t is Const


def const_value(value: object, default: object = None) -> object:
    """The Python value of a constant Value, else ``default``."""
    t = type(value)
    if t is ast.Constant or t is Const:
        return value.value  # type: ignore[attr-defined]
    return default


def const_str(value: object) -> str | None:
    t = type(value)
    if t is ast.Constant or t is Const:
        v = value.value  # type: ignore[attr-defined]
        if type(v) is str:
            return v
    return None


# Modules that are another name for a module whose API they share: findings and tables
# speak of the canonical name.
CANONICAL_MODULES: dict[str, str] = {
    "posix": "os",
    "nt": "os",
    "posixpath": "os.path",
    "ntpath": "os.path",
    "_pickle": "pickle",
    "cPickle": "pickle",
    "__builtin__": "builtins",
    "_subprocess": "subprocess",
    "ruamel_yaml": "ruamel.yaml",
}


def canonical_module(name: str) -> str:
    """The canonical dotted name of a module: ``posix`` -> ``os``, ``_pickle`` -> ``pickle``."""
    canon = CANONICAL_MODULES.get(name)
    if canon is not None:
        return canon
    head, dot, rest = name.partition(".")
    if dot:
        canon = CANONICAL_MODULES.get(head)
        if canon is not None:
            return f"{canon}.{rest}"
    return name


class CallArgs:
    """The evaluated arguments of one call, positional and keyword.

    ``pos`` stops at the first ``*args`` (``star`` is then True). ``kw`` holds explicit
    keywords and the keys of ``**mapping`` arguments the resolver could read; ``open_kw``
    is True when some ``**`` argument could not be read.
    """

    __slots__ = ("pos", "kw", "pos_nodes", "kw_nodes", "star", "open_kw")

    def __init__(self) -> None:
        self.pos: list[Value | None] = []
        self.pos_nodes: list[ast.expr] = []
        self.kw: dict[str, Value | None] = {}
        self.kw_nodes: dict[str, ast.expr] = {}
        self.star = False
        self.open_kw = False

    def get(self, index: int | None, name: str | None) -> Any:
        """The value passed as positional ``index`` or keyword ``name``; ABSENT if neither.

        An argument hidden behind ``*args`` counts as passed with an unknown value.
        """
        if name is not None and name in self.kw:
            return self.kw[name]
        if index is not None:
            if index < len(self.pos):
                return self.pos[index]
            if self.star:
                return None
        if name is not None and self.open_kw:
            return None
        return ABSENT

    def node(self, index: int | None, name: str | None) -> ast.expr | None:
        """The expression node behind ``get(index, name)``, when there is one."""
        if name is not None and name in self.kw_nodes:
            return self.kw_nodes[name]
        if index is not None and index < len(self.pos_nodes):
            return self.pos_nodes[index]
        return None

    def shifted(self, skip: int) -> CallArgs:
        out = CallArgs()
        out.pos = self.pos[skip:]
        out.pos_nodes = self.pos_nodes[skip:]
        out.kw = dict(self.kw)
        out.kw_nodes = dict(self.kw_nodes)
        out.star = self.star
        out.open_kw = self.open_kw
        return out

    def merged(self, later: CallArgs) -> CallArgs:
        """These arguments followed by ``later``'s, as ``partial`` combines them."""
        out = CallArgs()
        out.pos = self.pos + later.pos
        out.pos_nodes = self.pos_nodes + later.pos_nodes
        out.kw = {**self.kw, **later.kw}
        out.kw_nodes = {**self.kw_nodes, **later.kw_nodes}
        out.star = self.star or later.star
        out.open_kw = self.open_kw or later.open_kw
        return out
