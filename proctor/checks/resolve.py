"""Scope-aware name resolution over one module AST, in a single walk.

A checker that looks for ``os.system`` by spelling alone is blind to ``import os as o``,
``run = os.system``, ``getattr(os, "sys" + "tem")``, ``sys.modules["os"]`` or a user's own
function that happens to be called ``system``. :class:`Resolver` walks a module once and
evaluates every expression to a small abstract :data:`Value`: a :class:`Qual` names a
known object by its canonical dotted name (``"os.system"``, ``"builtins.eval"``), a
constant, a list or dict literal, a module namespace, and so on. Subclasses watch the
names they care about and receive events (:meth:`Resolver.on_ref`,
:meth:`Resolver.on_call`, :meth:`Resolver.on_attr`, :meth:`Resolver.on_import`).

Design choices, and why:

* **One walk, deferred function bodies** (as pyflakes and ruff do). Module and class
  bodies run top to bottom; function and lambda bodies are visited after the code that
  encloses them, so they see the final bindings of enclosing scopes, which is what a
  closure sees at call time. Within one body, bindings take effect in order: using a
  local before its assignment is an ``UnboundLocalError`` in Python anyway.
* **Branches merge, straight-line code replaces.** A rebinding inside ``if``/``try``/loops
  keeps an earlier known value when the new one is unknown (``try: from cPickle import
  loads`` / ``except: loads = None`` still resolves), while a plain ``def system(): ...``
  at the top level really shadows an earlier import.
* **Only live names are looked up.** A name is live when it is an interesting builtin or
  was ever bound to a known value; every other ``Name`` costs one set lookup. Unknown
  bindings of names that are not live are not even recorded. This keeps the walk close to
  the cost of ``ast.parse`` on large trees.
* **Known names only.** Attribute chains off a module produce a :class:`Qual` only when
  the dotted name is, or leads to, something a subclass watches (``known_names``), so
  ``json.dumps`` or ``typing.Optional`` do not allocate anything.

The values themselves are defined in :mod:`proctor.checks.values` (re-exported here);
this module is the walk. It is long on purpose: docs/architecture.md says why.

Everything here is standard library and cheap to import: it runs in pre-commit hooks.
"""

from __future__ import annotations

import ast
import builtins as _builtins_module
from collections.abc import Callable
from collections.abc import Mapping as _MappingABC
from typing import Any, Final

from proctor.checks.decoding import DECODERS, decoder
from proctor.checks.values import (
    ABSENT,
    CANONICAL_MODULES,
    AttrGetter,
    CallArgs,
    Computed,
    Const,
    LocalClass,
    MapValue,
    MethodCaller,
    Namespace,
    Partial,
    Qual,
    Sentinel,
    SeqValue,
    Spec,
    Value,
    canonical_module,
    const_str,
    const_value,
    is_const,
)

__all__ = [
    "ABSENT",
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
    "Resolver",
    "Scope",
    "SeqValue",
    "Spec",
    "Value",
    "canonical_module",
    "const_value",
    "is_const",
]


_MISSING: Final = Sentinel("MISSING")

# Attribute names that, off any known module, almost always mean that module re-exported:
# ``os.path.os``, ``shutil.os``, ``subprocess.os``, ``importlib.sys``...
_REEXPORTED: dict[str, str] = {
    "os": "os",
    "_os": "os",
    "sys": "sys",
    "_sys": "sys",
    "subprocess": "subprocess",
    "builtins": "builtins",
    "__builtin__": "builtins",
    "importlib": "importlib",
    "_imp": "_imp",
    "pickle": "pickle",
    "marshal": "marshal",
    "ctypes": "ctypes",
    "posix": "os",
    "nt": "os",
}

_MAX_FOLD = 10_000
_BUILTIN_CALLABLES = frozenset(n for n, v in vars(_builtins_module).items() if callable(v))


MODULE, CLASS, FUNCTION, COMPREHENSION = 0, 1, 2, 3


class Scope:
    """One Python scope: its bindings, ``global``/``nonlocal`` declarations, star imports."""

    __slots__ = ("kind", "parent", "names", "declared", "stars", "node", "defaults")

    def __init__(self, kind: int, parent: Scope | None, node: ast.AST | None = None) -> None:
        self.kind = kind
        self.parent = parent
        self.names: dict[str, Value | None] = {}
        # name -> "global" | "nonlocal"; None until a declaration is seen.
        self.declared: dict[str, str] | None = None
        self.stars: list[str] | None = None
        self.node = node
        # Known parameter defaults of a function scope, bound when its body is visited.
        self.defaults: dict[str, Value | None] | None = None


# Names the resolver itself gives meaning to, whatever the subclass watches.
_CORE_BUILTINS = frozenset(
    {
        "getattr",
        "setattr",
        "__import__",
        "vars",
        "globals",
        "locals",
        "dict",
        "chr",
        "reversed",
        "bytes",
        "object",
        "type",
        "__builtins__",
    }
)
_CORE_SPECIAL = frozenset(
    {
        "builtins.getattr",
        "builtins.setattr",
        "builtins.__import__",
        "builtins.vars",
        "builtins.globals",
        "builtins.locals",
        "builtins.dict",
        "builtins.chr",
        "builtins.reversed",
        "importlib.import_module",
        "importlib.__import__",
        "operator.attrgetter",
        "operator.methodcaller",
        "functools.partial",
        "sys.modules",
        "sys.modules.get",
        "sys.modules.__getitem__",
        "_operator.attrgetter",
        "_operator.methodcaller",
        "_functools.partial",
        "functools.reduce",
        "_functools.reduce",
        "builtins.object.__getattribute__",
        "builtins.type.__getattribute__",
        "inspect.getmembers",
        "importlib.util.find_spec",
        "importlib.util.module_from_spec",
        "importlib._bootstrap.module_from_spec",
        "os.path",  # a module people import by from-import and walk back to os through
    }
)

_CORE_SPECIAL = _CORE_SPECIAL | frozenset(DECODERS)

#: What a module namespace's methods give: views that iterate every member, and lookups.
_NS_VIEWS = frozenset({"items", "values"})
_NS_METHODS = _NS_VIEWS | frozenset({"get", "pop", "setdefault", "__getitem__", "copy"})

#: The ``name`` of :meth:`Resolver.on_namespace_access` when the namespace is iterated.
ITERATED = Computed("iterated")


_STR_METHODS = frozenset(
    {
        "join",
        "format",
        "replace",
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "title",
        "capitalize",
        "swapcase",
        "casefold",
        "removeprefix",
        "removesuffix",
        "decode",
        "encode",
    }
)
_MAPPING_GETTERS = frozenset({"get", "__getitem__", "pop", "setdefault"})


def _safe_percent(fmt: str) -> bool:
    """A %-format with only plain conversions (no width that could blow up memory)."""
    i = fmt.find("%")
    while i != -1:
        if i + 1 >= len(fmt) or fmt[i + 1] not in "srda%":
            return False
        i = fmt.find("%", i + 2)
    return True


def _first_known(it: Any) -> Any:
    """What a loop over ``it`` binds, as far as we can tell: the first known item.

    Enough to see ``for f in (eval, exec): f(code)``; anything else binds nothing known.
    """
    if type(it) is SeqValue:
        for item in it.items:
            if item is not None:
                return item
    return None


class Resolver:
    """Walks a module once, tracking scopes and evaluating expressions to Values.

    Configure a subclass with class attributes, then override the ``on_*`` hooks:

    * ``builtin_names``: builtins worth resolving (``eval``, ``exec``...); a name not
      listed here and never bound to a known value resolves to nothing, cheaply.
    * ``watch_refs``: canonical names for which :meth:`on_ref` fires at every place an
      expression evaluates to them (call or not).
    * ``watch_calls``: canonical names for which :meth:`on_call` fires with the call's
      evaluated arguments, including calls through ``partial`` and ``methodcaller``.
    * ``watch_attrs``: attribute names for which :meth:`on_attr` fires whatever the
      object (dunders such as ``__globals__``), on reads and on stores.
    * ``extra_known``: further canonical names that should resolve (e.g. constants
      such as ``ast.PyCF_ONLY_AST`` that a check compares against).
    * ``call_results``: canonical names whose call result should resolve to
      ``Qual(name + "()")`` (``logging.getLogger`` -> ``logging.getLogger()``).
    * ``watch_methods``: method names for which :meth:`on_method` fires when they are
      called on an object the resolver does not know (``cursor.execute(...)``,
      ``sock.bind(...)``): checks that can only go by the method's name.
    * ``watch_keywords``: keyword-argument names for which :meth:`on_keyword` fires at
      every call that passes them (``verify=False``, ``host="0.0.0.0"``).

    :meth:`run` walks the tree; :meth:`resolve_name` and friends can be used from hooks.
    """

    builtin_names: frozenset[str] = frozenset()
    watch_refs: _MappingABC[str, Any] | frozenset[str] = frozenset()
    watch_calls: _MappingABC[str, Any] | frozenset[str] = frozenset()
    watch_attrs: frozenset[str] = frozenset()
    extra_known: frozenset[str] = frozenset()
    call_results: frozenset[str] = frozenset()
    watch_methods: frozenset[str] = frozenset()
    watch_keywords: frozenset[str] = frozenset()

    # Computed once per subclass by _prepare().
    _known: frozenset[str]
    _stars: dict[str, frozenset[str]]
    _builtin_quals: dict[str, Qual]
    # Attribute names that mean something even on an unknown object.
    _slow_attrs: frozenset[str]
    # Dispatch tables of unbound methods, by node type or canonical name.
    _expr_table: dict[type, Callable[[Any, Any], Any]]
    _stmt_table: dict[type, Callable[[Any, Any], None]]
    _special_table: dict[str, Callable[[Any, ast.Call, CallArgs], Any]]
    _prepared_for: type | None = None

    @classmethod
    def _prepare(cls) -> None:
        """Derive the lookup tables from the class configuration (once per subclass)."""
        if cls.__dict__.get("_prepared_for") is cls:
            return
        names = (
            set(cls.watch_refs)
            | set(cls.watch_calls)
            | set(cls.extra_known)
            | set(cls.call_results)
            | _CORE_SPECIAL
        )
        known: set[str] = set()
        stars: dict[str, set[str]] = {}
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                known.add(".".join(parts[:i]))
            if len(parts) > 1:
                stars.setdefault(".".join(parts[:-1]), set()).add(parts[-1])
        for result in cls.call_results:
            known.add(result + "()")
        cls._known = frozenset(known)
        cls._stars = {k: frozenset(v) for k, v in stars.items()}
        builtin = cls.builtin_names | _CORE_BUILTINS
        cls._builtin_quals = {n: Qual("builtins." + n) for n in builtin}
        cls._builtin_quals["__builtins__"] = Qual("builtins")
        cls._slow_attrs = (
            frozenset(cls.watch_attrs)
            | frozenset(cls.watch_methods)
            | {"__self__", "__globals__", "func_globals", "__builtins__"}
        )
        cls._expr_table = {
            ast.Name: cls._name,
            ast.Attribute: cls._attribute,
            ast.Call: cls._call,
            ast.Subscript: cls._subscript,
            ast.BinOp: cls._binop,
            ast.JoinedStr: cls._joinedstr,
            ast.List: cls._sequence,
            ast.Tuple: cls._sequence,
            ast.Dict: cls._dict,
            ast.Lambda: cls._lambda,
            ast.ListComp: cls._comprehension,
            ast.SetComp: cls._comprehension,
            ast.GeneratorExp: cls._comprehension,
            ast.DictComp: cls._comprehension,
            ast.NamedExpr: cls._namedexpr,
            ast.IfExp: cls._ifexp,
            ast.BoolOp: cls._boolop,
            ast.Compare: cls._compare,
            ast.UnaryOp: cls._unaryop,
            ast.Starred: cls._starred,
            ast.Await: cls._single_value,
            ast.FormattedValue: cls._single_value,
            ast.YieldFrom: cls._single_value,
        }
        cls._stmt_table = {
            ast.Expr: cls._s_expr,
            ast.Assign: cls._s_assign,
            ast.AugAssign: cls._s_augassign,
            ast.AnnAssign: cls._s_annassign,
            ast.Return: cls._s_return,
            ast.If: cls._s_if,
            ast.For: cls._s_for,
            ast.AsyncFor: cls._s_for,
            ast.While: cls._s_while,
            ast.With: cls._s_with,
            ast.AsyncWith: cls._s_with,
            ast.Try: cls._s_try,
            ast.FunctionDef: cls._s_def,
            ast.AsyncFunctionDef: cls._s_def,
            ast.ClassDef: cls._s_class,
            ast.Import: cls._s_import,
            ast.ImportFrom: cls._s_importfrom,
            ast.Raise: cls._s_raise,
            ast.Global: cls._s_global,
            ast.Nonlocal: cls._s_nonlocal,
            ast.Pass: cls._s_nothing,
            ast.Break: cls._s_nothing,
            ast.Continue: cls._s_nothing,
            ast.Delete: cls._s_nothing,
            ast.Match: cls._s_match,
        }
        try_star = getattr(ast, "TryStar", None)
        if try_star is not None:
            cls._stmt_table[try_star] = cls._s_try
        cls._special_table = {
            "builtins.getattr": cls._sp_getattr,
            "builtins.setattr": cls._sp_setattr,
            "builtins.__import__": cls._sp_dunder_import,
            "importlib.__import__": cls._sp_dunder_import,
            "importlib.import_module": cls._sp_import_module,
            "builtins.vars": cls._sp_vars,
            "builtins.globals": cls._sp_globals,
            "builtins.locals": cls._sp_locals,
            "builtins.dict": cls._sp_dict,
            "builtins.chr": cls._sp_chr,
            "builtins.reversed": cls._sp_reversed,
            "operator.attrgetter": cls._sp_attrgetter,
            "_operator.attrgetter": cls._sp_attrgetter,
            "operator.methodcaller": cls._sp_methodcaller,
            "_operator.methodcaller": cls._sp_methodcaller,
            "functools.partial": cls._sp_partial,
            "_functools.partial": cls._sp_partial,
            "sys.modules.get": cls._sp_modules_get,
            "sys.modules.__getitem__": cls._sp_modules_get,
            "functools.reduce": cls._sp_reduce,
            "_functools.reduce": cls._sp_reduce,
            "builtins.object.__getattribute__": cls._sp_getattr,
            "builtins.type.__getattribute__": cls._sp_getattr,
            "inspect.getmembers": cls._sp_getmembers,
            "importlib.util.find_spec": cls._sp_find_spec,
            "importlib.util.module_from_spec": cls._sp_module_from_spec,
            "importlib._bootstrap.module_from_spec": cls._sp_module_from_spec,
        }
        for name in DECODERS:
            cls._special_table[name] = decoder(name)
        cls._prepared_for = cls

    def __init__(self) -> None:
        cls = type(self)
        cls._prepare()
        self.module_scope = Scope(MODULE, None)
        self.scope = self.module_scope
        self.branch = 0
        self.live: set[str] = set(self._builtin_quals)
        self._deferred: list[tuple[ast.AST, Scope]] = []
        self._watch_refs = self.watch_refs
        self._watch_calls = self.watch_calls
        self._watch_attrs = self.watch_attrs
        self._watch_methods = self.watch_methods
        self._watch_keywords = self.watch_keywords
        # The statement being walked: hooks that need the context of an expression
        # (what a namespace read is used for) look inside it, on the rare paths only.
        self.stmt: ast.stmt | None = None
        self._expr = cls._expr_table
        self._stmt = cls._stmt_table
        self._special = cls._special_table

    # -- hooks (override) -------------------------------------------------------------

    def on_ref(self, node: ast.expr, value: Qual, called: bool) -> None:
        """``node`` evaluates to a watched object; ``called`` when it is being called."""

    def on_call(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        """A watched object is called (directly, through an alias, partial, methodcaller).

        A value other than None becomes the value of the call expression.
        """
        return None

    def on_attr(self, node: ast.AST, base: Any, attr: str, result: Any, store: bool) -> Any:
        """A watched attribute name is read or stored; return the value the read yields.

        For a store, ``result`` is the value stored (None when unknown)."""
        return result

    def on_import(
        self, node: ast.AST, module: str | None, names: tuple[str, ...], dynamic: bool
    ) -> None:
        """An import. ``module`` is the absolute dotted name as written (None when computed
        or relative), ``names`` the imported names of a ``from`` import, ``dynamic`` True for
        ``__import__``/``importlib`` calls."""

    def on_dynamic_getattr(self, node: ast.Call, base: Any, name: Any) -> None:
        """``getattr(base, <computed name>)`` on a known object; ``name`` is the name's
        value (a :class:`Computed` when it was decoded or rotated, else None)."""

    def on_namespace_access(self, node: ast.AST, ns: Namespace, name: Any) -> None:
        """A module's namespace read by a name the file does not spell out: indexed or
        ``.get`` by a computed key (``name`` is its value, a :class:`Computed` when decoded),
        or iterated (``.items()``, ``.values()``, ``inspect.getmembers``; ``name`` is
        :data:`ITERATED`), which lets code pick a member by a test on its name."""

    def on_method(self, node: ast.Call, base: Any, method: str, args: CallArgs) -> Any:
        """A ``watch_methods`` method called on an object the resolver does not know."""
        return None

    def on_keyword(self, node: ast.Call, keyword: ast.keyword) -> None:
        """A call passes a ``watch_keywords`` keyword (the value is not evaluated yet)."""

    def on_class(self, node: ast.ClassDef, bases: tuple[Any, ...]) -> None:
        """A class statement, with the values of its bases."""

    # -- driving ------------------------------------------------------------------------

    def run(self, tree: ast.Module) -> None:
        """Walk the module: top-level code in order, then function bodies (deferred)."""
        self._body(tree.body)
        deferred = self._deferred
        i = 0
        while i < len(deferred):
            node, scope = deferred[i]
            i += 1
            self._run_function(node, scope)
        deferred.clear()

    def _run_function(self, node: Any, scope: Scope) -> None:
        saved_scope, saved_branch = self.scope, self.branch
        self.scope, self.branch = scope, 0
        args = node.args
        defaults = scope.defaults
        live = self.live
        names = scope.names
        # A fresh scope, not in a branch: a parameter is its default when one is known,
        # and otherwise recorded only when it shadows a live name (as bind() would).
        for group in (args.posonlyargs, args.args, args.kwonlyargs):
            for a in group:
                name = a.arg
                value = defaults.get(name) if defaults else None
                if value is not None:
                    live.add(name)
                    names[name] = value
                elif name in live:
                    names[name] = None
        for extra in (args.vararg, args.kwarg):
            if extra is not None and extra.arg in live:
                names[extra.arg] = None
        if type(node) is ast.Lambda:
            self.ev(node.body)
        else:
            self._body(node.body)
        self.scope, self.branch = saved_scope, saved_branch

    # -- scopes -------------------------------------------------------------------------

    def bind(self, name: str, value: Any) -> None:
        """Bind ``name`` in the current scope (honouring ``global``/``nonlocal``)."""
        if value is None:
            if name not in self.live:
                return
        else:
            self.live.add(name)
        scope = self.scope
        if scope.declared is not None and name in scope.declared:
            scope = self._declared_scope(scope, name)
        names = scope.names
        if self.branch:
            existing = names.get(name)
            # A branch may not run: keep a known value over an unknown one, and a known
            # object over a constant (`try: from os import popen` / `except: popen = None`).
            if existing is not None and (
                value is None or (type(existing) is Qual and type(value) is not Qual)
            ):
                return
        names[name] = value

    def _declared_scope(self, scope: Scope, name: str) -> Scope:
        assert scope.declared is not None
        if scope.declared[name] == "global":
            return self.module_scope
        parent = scope.parent
        while parent is not None and parent.kind != MODULE:
            if parent.kind == FUNCTION and name in parent.names:
                return parent
            parent = parent.parent
        return scope

    def resolve_name(self, name: str) -> Any:
        """What ``name`` means at the current point: a Value, or None when unknown/local."""
        if name not in self.live:
            return None
        scope: Scope | None = self.scope
        first = True
        while scope is not None:
            if first or scope.kind != CLASS:
                declared = scope.declared
                if declared is not None and name in declared:
                    if declared[name] == "global":
                        scope = self.module_scope
                        continue
                else:
                    value = scope.names.get(name, _MISSING)
                    if value is not _MISSING:
                        return value
                if scope.stars is not None:
                    for module in scope.stars:
                        exported = self._stars.get(module)
                        if exported is not None and name in exported:
                            return Qual(f"{module}.{name}")
            first = False
            scope = scope.parent
        return self._builtin_quals.get(name)

    def is_unbound_builtin(self, name: str) -> bool:
        """Whether ``name`` is a builtin function no scope of this file is known to bind."""
        if name not in _BUILTIN_CALLABLES:
            return False
        scope: Scope | None = self.scope
        while scope is not None:
            if name in scope.names:
                return False
            scope = scope.parent
        return True

    def _binding_scope(self) -> Scope:
        scope = self.scope
        while scope.kind == COMPREHENSION and scope.parent is not None:
            scope = scope.parent
        return scope

    # -- statements ---------------------------------------------------------------------

    def _body(self, stmts: list[ast.stmt]) -> None:
        table = self._stmt
        saved = self.stmt
        for stmt in stmts:
            self.stmt = stmt
            handler = table.get(type(stmt))
            if handler is None:
                self._generic(stmt)
            else:
                handler(self, stmt)
        self.stmt = saved

    def _branch(self, stmts: list[ast.stmt]) -> None:
        if stmts:
            self.branch += 1
            self._body(stmts)
            self.branch -= 1

    def _generic(self, node: ast.AST) -> None:
        """Visit children of a node without a dedicated handler."""
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    self._generic_child(item)
            elif isinstance(value, ast.AST):
                self._generic_child(value)

    def _generic_child(self, node: Any) -> None:
        if isinstance(node, ast.expr):
            self.ev(node)
        elif isinstance(node, ast.stmt):
            self._body([node])
        elif isinstance(node, ast.match_case):
            self._match_case(node)
        elif isinstance(node, ast.AST) and not isinstance(node, (ast.expr_context, ast.pattern)):
            self._generic(node)

    def _s_match(self, node: ast.Match) -> None:
        subject = self.ev(node.subject)
        for case in node.cases:
            self._match_case(case, subject)

    def _bind_pattern(self, pattern: ast.pattern, value: Any) -> None:
        """Bind the captures of a ``case`` pattern; a capture of the whole subject (or of
        an element of a known sequence or mapping) gets that value."""
        t = type(pattern)
        if t is ast.MatchAs:
            inner = pattern.pattern  # type: ignore[attr-defined]
            if inner is not None:
                self._bind_pattern(inner, value)
            if pattern.name is not None:  # type: ignore[attr-defined]
                self.bind(pattern.name, value)  # type: ignore[attr-defined]
        elif t is ast.MatchOr:
            for alt in pattern.patterns:  # type: ignore[attr-defined]
                self._bind_pattern(alt, value)
        elif t is ast.MatchSequence:
            items = value.items if type(value) is SeqValue and not value.open else None
            subs = pattern.patterns  # type: ignore[attr-defined]
            starred = any(type(p) is ast.MatchStar for p in subs)
            for i, sub in enumerate(subs):
                item = items[i] if items is not None and not starred and i < len(items) else None
                if type(sub) is ast.MatchStar:
                    if sub.name is not None:
                        self.bind(sub.name, None)
                else:
                    self._bind_pattern(sub, item)
        elif t is ast.MatchMapping:
            for key, sub in zip(pattern.keys, pattern.patterns):  # type: ignore[attr-defined]
                k = const_str(self.ev(key))
                item = value.items.get(k) if type(value) is MapValue and k is not None else None
                self._bind_pattern(sub, item)
            if pattern.rest is not None:  # type: ignore[attr-defined]
                self.bind(pattern.rest, None)  # type: ignore[attr-defined]
        elif t is ast.MatchClass:
            self.ev(pattern.cls)  # type: ignore[attr-defined]
            for sub in (*pattern.patterns, *pattern.kwd_patterns):  # type: ignore[attr-defined]
                self._bind_pattern(sub, None)
        elif t is ast.MatchValue:
            self.ev(pattern.value)  # type: ignore[attr-defined]
        elif t is ast.MatchStar:
            if pattern.name is not None:  # type: ignore[attr-defined]
                self.bind(pattern.name, None)  # type: ignore[attr-defined]

    def _match_case(self, case: ast.match_case, subject: Any = None) -> None:
        self.branch += 1
        self._bind_pattern(case.pattern, subject)
        self.branch -= 1
        if case.guard is not None:
            self.ev(case.guard)
        self._branch(case.body)

    def _s_nothing(self, node: ast.stmt) -> None:
        pass

    def _s_expr(self, node: ast.Expr) -> None:
        value = node.value
        if type(value) is not ast.Constant:  # docstrings and bare constants
            self.ev(value)

    def _s_return(self, node: ast.Return) -> None:
        if node.value is not None:
            self.ev(node.value)

    def _s_raise(self, node: ast.Raise) -> None:
        if node.exc is not None:
            self.ev(node.exc)
        if node.cause is not None:
            self.ev(node.cause)

    def _s_assign(self, node: ast.Assign) -> None:
        value = self.ev(node.value)
        live = self.live
        for target in node.targets:
            if value is None and type(target) is ast.Name and target.id not in live:
                continue  # an unknown value for a name nothing watches: nothing to record
            self.bind_target(target, value)

    def _s_augassign(self, node: ast.AugAssign) -> None:
        self.ev(node.value)
        target = node.target
        if type(target) is ast.Name:
            self.bind(target.id, None)
        else:
            self.bind_target(target, None)

    def _s_annassign(self, node: ast.AnnAssign) -> None:
        self.ev(node.annotation)
        if node.value is not None:
            self.bind_target(node.target, self.ev(node.value))

    def _s_if(self, node: ast.If) -> None:
        self.ev(node.test)
        self._branch(node.body)
        self._branch(node.orelse)

    def _s_for(self, node: ast.For | ast.AsyncFor) -> None:
        element = _first_known(self.ev(node.iter))
        self.branch += 1
        self.bind_target(node.target, element)
        self._body(node.body)
        self._body(node.orelse)
        self.branch -= 1

    def _s_while(self, node: ast.While) -> None:
        self.ev(node.test)
        self._branch(node.body)
        self._branch(node.orelse)

    def _s_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            value = self.ev(item.context_expr)
            if item.optional_vars is not None:
                # `with tarfile.open(p) as tf`: a watched call result is its own context
                # (file-like objects return themselves from __enter__).
                if type(value) is not Qual or not value.name.endswith("()"):
                    value = None
                self.bind_target(item.optional_vars, value)
        self._body(node.body)

    def _s_try(self, node: Any) -> None:
        self._branch(node.body)
        for handler in node.handlers:
            if handler.type is not None:
                self.ev(handler.type)
            self.branch += 1
            if handler.name:
                self.bind(handler.name, None)
            self._body(handler.body)
            self.branch -= 1
        self._branch(node.orelse)
        self._branch(node.finalbody)

    def _s_global(self, node: ast.Global) -> None:
        scope = self.scope
        if scope.declared is None:
            scope.declared = {}
        for name in node.names:
            scope.declared[name] = "global"

    def _s_nonlocal(self, node: ast.Nonlocal) -> None:
        scope = self.scope
        if scope.declared is None:
            scope.declared = {}
        for name in node.names:
            scope.declared[name] = "nonlocal"

    def _annotations(self, args: ast.arguments, returns: ast.expr | None) -> None:
        ev = self.ev
        for group in (args.posonlyargs, args.args, args.kwonlyargs):
            for a in group:
                if a.annotation is not None:
                    ev(a.annotation)
        for extra in (args.vararg, args.kwarg):
            if extra is not None and extra.annotation is not None:
                ev(extra.annotation)
        if returns is not None:
            ev(returns)

    def _s_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        ev = self.ev
        for d in node.decorator_list:
            ev(d)
        defaults = self._defaults(node.args)
        self._annotations(node.args, node.returns)
        self.bind(node.name, None)
        self._deferred.append((node, self._function_scope(node, defaults)))

    def _defaults(self, args: ast.arguments) -> dict[str, Any] | None:
        """Default values by parameter name, evaluated now, where any is known.

        A parameter whose default is ``eval`` is ``eval`` unless a caller passes something
        else, so the function body sees the default.
        """
        values: dict[str, Any] | None = None
        positional = args.posonlyargs + args.args
        offset = len(positional) - len(args.defaults)
        ev = self.ev
        for i, d in enumerate(args.defaults):
            v = ev(d)
            if v is not None and not is_const(v):
                if values is None:
                    values = {}
                values[positional[offset + i].arg] = v
        for a, kw_default in zip(args.kwonlyargs, args.kw_defaults):
            if kw_default is not None:
                v = ev(kw_default)
                if v is not None and not is_const(v):
                    if values is None:
                        values = {}
                    values[a.arg] = v
        return values

    def _s_class(self, node: ast.ClassDef) -> None:
        ev = self.ev
        for d in node.decorator_list:
            ev(d)
        bases = tuple([ev(b) for b in node.bases])
        for k in node.keywords:
            ev(k.value)
        saved_scope, saved_branch = self.scope, self.branch
        self.scope, self.branch = Scope(CLASS, saved_scope, node), 0
        self._body(node.body)
        self.scope, self.branch = saved_scope, saved_branch
        self.on_class(node, bases)
        known = False
        for b in bases:
            if b is not None:
                known = True
                break
        self.bind(node.name, LocalClass(node.name, bases) if known else None)

    def _s_import(self, node: ast.Import) -> None:
        for alias in node.names:
            name = alias.name
            self.on_import(node, name, (), False)
            if alias.asname is not None:
                self.bind(alias.asname, self._module_value(canonical_module(name)))
            else:
                top = name.partition(".")[0]
                self.bind(top, self._module_value(canonical_module(top)))

    def _module_value(self, name: str) -> Qual:
        return Qual(name)

    def _s_importfrom(self, node: ast.ImportFrom) -> None:
        names = tuple(alias.name for alias in node.names)
        if node.level or not node.module:
            self.on_import(node, None if node.level else node.module, names, False)
            for alias in node.names:
                if alias.name != "*":
                    self.bind(alias.asname or alias.name, None)
            return
        self.on_import(node, node.module, names, False)
        module = canonical_module(node.module)
        for alias in node.names:
            if alias.name == "*":
                exported = self._stars.get(module)
                if exported is not None:
                    scope = self.scope
                    if scope.stars is None:
                        scope.stars = []
                    scope.stars.append(module)
                    self.live.update(exported)
                continue
            full = canonical_module(f"{module}.{alias.name}")
            if full in self._known:
                value: Any = Qual(full)
            else:
                reexported = _REEXPORTED.get(alias.name)
                value = Qual(reexported) if reexported is not None else None
            self.bind(alias.asname or alias.name, value)

    # -- binding targets ----------------------------------------------------------------

    def bind_target(self, target: ast.expr, value: Any) -> None:
        """Bind an assignment target to ``value`` (unpacking tuples of known values)."""
        t = type(target)
        if t is ast.Name:
            self.bind(target.id, value)  # type: ignore[attr-defined]
        elif t is ast.Tuple or t is ast.List:
            elts = target.elts  # type: ignore[attr-defined]
            items: tuple[Any, ...] | None = None
            if type(value) is SeqValue and not value.open and len(value.items) == len(elts):
                items = value.items
            for i, elt in enumerate(elts):
                self.bind_target(elt, items[i] if items is not None else None)
        elif t is ast.Starred:
            self.bind_target(target.value, None)  # type: ignore[attr-defined]
        elif t is ast.Attribute:
            base = self.ev(target.value)  # type: ignore[attr-defined]
            attr = target.attr  # type: ignore[attr-defined]
            if attr in self._watch_attrs:
                self.on_attr(target, base, attr, value, True)
        elif t is ast.Subscript:
            self._store_subscript(target, value)  # type: ignore[arg-type]
        else:
            self.ev(target)

    def _store_subscript(self, target: ast.Subscript, value: Any) -> None:
        base_node = target.value
        key = self.ev(target.slice)
        base = self.ev(base_node)
        if type(base) is MapValue and type(base_node) is ast.Name:
            skey = const_str(key)
            items = dict(base.items)
            if skey is not None:
                items[skey] = value
                self.bind(base_node.id, MapValue(items, base.complete))
            else:
                self.bind(base_node.id, MapValue(items, False))

    # -- expressions --------------------------------------------------------------------

    def ev(self, node: ast.expr) -> Any:
        """Evaluate an expression to a Value (None when unknown), firing watch events."""
        t = type(node)
        if t is ast.Name:
            name = node.id  # type: ignore[attr-defined]
            if name not in self.live:
                return None
            value = self.resolve_name(name)
        elif t is ast.Constant:
            return node
        else:
            handler = self._expr.get(t)
            if handler is None:
                self._generic(node)
                return None
            value = handler(self, node)
        if type(value) is Qual and value.name in self._watch_refs:
            self.on_ref(node, value, False)
        return value

    def _raw(self, node: ast.expr) -> Any:
        """Evaluate like :meth:`ev` but without the ``on_ref`` for ``node`` itself."""
        t = type(node)
        if t is ast.Name:
            return self.resolve_name(node.id)  # type: ignore[attr-defined]
        handler = self._expr.get(t)
        if handler is None:
            return self.ev(node)
        return handler(self, node)

    def _name(self, node: ast.Name) -> Any:
        return self.resolve_name(node.id)

    def attribute_of(self, node: ast.AST, base: Any, attr: str) -> Any:
        """The value of ``base.attr`` (firing ``on_attr`` for watched names)."""
        result: Any = None
        if base is not None:
            tb = type(base)
            if tb is Qual:
                result = self._qual_attr(base, attr)
            elif tb is Namespace and attr == "__builtins__":
                result = Qual("builtins")
        elif (
            attr == "__self__"
            and type(node) is ast.Attribute
            and type(node.value) is ast.Name
            and self.is_unbound_builtin(node.value.id)
        ):
            result = Qual("builtins")  # len.__self__ is the builtins module
        if attr == "__globals__" or attr == "func_globals":
            result = Namespace("foreign", None)
        elif attr == "__builtins__":
            result = Qual("builtins")
        if attr in self._watch_attrs:
            result = self.on_attr(node, base, attr, result, False)
        return result

    def _qual_attr(self, base: Qual, attr: str) -> Any:
        bname = base.name
        full = f"{bname}.{attr}"
        if full in self._known:
            return Qual(full)
        reexported = _REEXPORTED.get(attr)
        if reexported is not None:
            return Qual(reexported)
        if attr == "__dict__":
            return Namespace("module", bname)
        if attr == "__self__" and bname.startswith("builtins."):
            return Qual("builtins")
        canon = CANONICAL_MODULES.get(attr)
        if canon is not None:
            return Qual(canon)
        return None

    def _attribute(self, node: ast.Attribute) -> Any:
        base = self.ev(node.value)
        if base is None and node.attr not in self._slow_attrs:
            return None  # `obj.attr` of an object nothing is known about
        return self.attribute_of(node, base, node.attr)

    def subscript_of(self, base: Any, key: Any) -> Any:
        """The value of ``base[key]`` for the namespaces and literals the resolver knows."""
        tb = type(base)
        if tb is Qual:
            skey = const_str(key)
            if skey is None:
                return None
            if base.name == "sys.modules":
                name = canonical_module(skey)
                return Qual(name)
            if base.name == "builtins":
                return self._builtin_quals.get(skey) or (
                    Qual("builtins." + skey) if f"builtins.{skey}" in self._known else None
                )
            return None
        if tb is Namespace:
            skey = const_str(key)
            return None if skey is None else self.namespace_get(base, skey)
        if tb is MapValue:
            skey = const_str(key)
            return None if skey is None else base.items.get(skey)
        if tb is SeqValue:
            index = const_value(key)
            if type(index) is int and not base.open and -len(base.items) <= index < len(base.items):
                return base.items[index]
            return None
        if tb is ast.Constant or tb is Const:
            return self._fold_index(base.value, key)
        return None

    def namespace_get(self, ns: Namespace, key: str) -> Any:
        """Look ``key`` up in a namespace value (``module.__dict__``, ``globals()``...)."""
        if ns.kind == "module":
            if ns.target == "builtins":
                return self._builtin_quals.get(key) or Qual("builtins." + key)
            return self._qual_attr(Qual(ns.target), key)
        if key == "__builtins__":
            return Qual("builtins")
        if ns.kind == "scope":
            scope: Scope = ns.target
            value = scope.names.get(key, _MISSING)
            if value is not _MISSING:
                return value
            if scope.kind == MODULE:
                return self._builtin_quals.get(key)
            return None
        reexported = _REEXPORTED.get(key)
        return Qual(reexported) if reexported is not None else None

    def _subscript(self, node: ast.Subscript) -> Any:
        base = self.ev(node.value)
        index = node.slice
        if type(index) is ast.Slice:
            bounds = [
                None if part is None else self.ev(part)
                for part in (index.lower, index.upper, index.step)
            ]
            value = const_value(base, None)
            if type(value) is str or type(value) is bytes:
                numbers = [None if b is None else const_value(b, _MISSING) for b in bounds]
                if all(n is None or type(n) is int for n in numbers):
                    try:
                        return Const(value[slice(*numbers)])  # type: ignore[arg-type]
                    except ValueError:
                        return None
            if type(base) is Computed or const_value(bounds[2], None) == -1:
                return Computed("reversed")
            return None
        key = self.ev(index)
        if base is None:
            return None
        if type(base) is Namespace and base.kind == "module" and const_str(key) is None:
            self.on_namespace_access(node, base, key)
        return self.subscript_of(base, key)

    def _fold_index(self, value: object, key: Any) -> Any:
        if type(value) is not str:
            return None
        if type(key) is ast.Constant or type(key) is Const:
            index = key.value
            if type(index) is int and -len(value) <= index < len(value):
                return Const(value[index])
        return None

    def _binop(self, node: ast.BinOp) -> Any:
        left = self.ev(node.left)
        right = self.ev(node.right)
        if type(left) is Computed or type(right) is Computed:
            op = type(node.op)
            if op is ast.Add or op is ast.Mod:
                return left if type(left) is Computed else right
            return None
        if left is None:
            return None
        lv = const_value(left, _MISSING)
        if type(lv) is not str and type(lv) is not bytes:
            return None
        op = type(node.op)
        if op is ast.Add:
            rv = const_value(right, _MISSING)
            if type(rv) is type(lv) and len(lv) + len(rv) <= _MAX_FOLD:
                return Const(lv + rv)  # type: ignore[operator]
        elif op is ast.Mod and type(lv) is str and _safe_percent(lv):
            if type(right) is SeqValue:
                parts = tuple(const_value(i, _MISSING) for i in right.items)
                if right.open or _MISSING in parts:
                    return None
                operand: object = parts
            else:
                operand = const_value(right, _MISSING)
                if operand is _MISSING:
                    return None
            try:
                out = lv % operand
            except (TypeError, ValueError, KeyError, OverflowError):
                return None
            return Const(out) if len(out) <= _MAX_FOLD else None
        return None

    def _joinedstr(self, node: ast.JoinedStr) -> Any:
        parts: list[str] = []
        ok = True
        for value in node.values:
            if type(value) is ast.Constant:
                parts.append(str(value.value))
                continue
            if type(value) is ast.FormattedValue:
                inner = self.ev(value.value)
                if value.format_spec is not None:
                    self.ev(value.format_spec)
                    ok = False
                    continue
                iv = const_value(inner, _MISSING)
                if iv is _MISSING:
                    ok = False
                    continue
                conv = value.conversion
                if conv == 114:
                    parts.append(repr(iv))
                elif conv == 97:
                    parts.append(ascii(iv))
                else:
                    parts.append(str(iv))
            else:
                self.ev(value)
                ok = False
        if not ok:
            return None
        out = "".join(parts)
        return Const(out) if len(out) <= _MAX_FOLD else None

    def _sequence(self, node: ast.List | ast.Tuple) -> Any:
        ev = self.ev
        items: list[Any] = []
        open_ = False
        for elt in node.elts:
            if type(elt) is ast.Starred:
                inner = ev(elt.value)
                if type(inner) is SeqValue and not inner.open:
                    items.extend(inner.items)
                else:
                    open_ = True
            else:
                items.append(ev(elt))
        return SeqValue(tuple(items), open_)

    def _dict(self, node: ast.Dict) -> Any:
        ev = self.ev
        items: dict[str, Any] = {}
        complete = True
        for key, value in zip(node.keys, node.values):
            v = ev(value)
            if key is None:
                if type(v) is MapValue:
                    items.update(v.items)
                    complete = complete and v.complete
                else:
                    complete = False
                continue
            k = const_str(ev(key))
            if k is None:
                complete = False
            else:
                items[k] = v
        return MapValue(items, complete)

    def _lambda(self, node: ast.Lambda) -> Any:
        defaults = self._defaults(node.args)
        self._deferred.append((node, self._function_scope(node, defaults)))
        return None

    def _function_scope(self, node: ast.AST, defaults: dict[str, Any] | None) -> Scope:
        scope = Scope(FUNCTION, self.scope, node)
        scope.defaults = defaults
        return scope

    def _comprehension(self, node: Any) -> Any:
        generators = node.generators
        # The first iterable is evaluated in the enclosing scope.
        first_iter = self.ev(generators[0].iter)
        saved = self.scope
        self.scope = Scope(COMPREHENSION, saved, node)
        self.branch += 1
        for i, gen in enumerate(generators):
            element = _first_known(first_iter if i == 0 else self.ev(gen.iter))
            self.bind_target(gen.target, element)
            for cond in gen.ifs:
                self.ev(cond)
        dict_comp = type(node) is ast.DictComp
        if dict_comp:
            key = self.ev(node.key)
            elt = self.ev(node.value)
        else:
            key = None
            elt = self.ev(node.elt)
        result: Any = None
        if elt is not None or key is not None:
            result = self._comprehension_value(node, first_iter, key, elt)
        self.branch -= 1
        self.scope = saved
        return result

    def _comprehension_value(self, node: Any, first_iter: Any, key: Any, elt: Any) -> Any:
        """What a comprehension builds, when one element was known: over a short literal
        sequence with a single ``for`` and no ``if``, every element (so
        ``[globals()[n] for n in ["os"]][0]`` is ``os``); otherwise an open list holding
        the known element (a ``"".join`` of it is still a computed string)."""
        gens = node.generators
        seq = first_iter if type(first_iter) is SeqValue and not first_iter.open else None
        if (
            seq is not None
            and len(gens) == 1
            and not gens[0].ifs
            and 0 < len(seq.items) <= 32
            and type(node) is not ast.GeneratorExp
        ):
            keys: list[Any] = [key]
            elts: list[Any] = [elt]
            target = gens[0].target
            for item in seq.items[1:]:
                self.bind_target(target, item)
                if type(node) is ast.DictComp:
                    keys.append(self.ev(node.key))
                    elts.append(self.ev(node.value))
                else:
                    elts.append(self.ev(node.elt))
            if type(node) is ast.DictComp:
                items: dict[str, Any] = {}
                for k, v in zip(keys, elts):
                    ks = const_str(k)
                    if ks is None:
                        return MapValue(items, False)
                    items[ks] = v
                return MapValue(items, True)
            return SeqValue(tuple(elts))
        if type(node) is ast.DictComp:
            return None
        return SeqValue((elt,), True)

    def _namedexpr(self, node: ast.NamedExpr) -> Any:
        value = self.ev(node.value)
        saved = self.scope
        self.scope = self._binding_scope()
        self.bind(node.target.id, value)
        self.scope = saved
        return value

    def _ifexp(self, node: ast.IfExp) -> Any:
        self.ev(node.test)
        a = self.ev(node.body)
        b = self.ev(node.orelse)
        return a if a is not None and not is_const(a) else (b if b is not None else a)

    def _boolop(self, node: ast.BoolOp) -> Any:
        found = None
        for v in node.values:
            value = self.ev(v)
            if found is None and value is not None and not is_const(value):
                found = value
        return found

    def _compare(self, node: ast.Compare) -> Any:
        self.ev(node.left)
        for c in node.comparators:
            self.ev(c)
        return None

    def _unaryop(self, node: ast.UnaryOp) -> Any:
        value = self.ev(node.operand)
        if not is_const(value):
            return None
        inner = const_value(value)
        op = type(node.op)
        if op is ast.Not:
            return Const(not inner)
        if type(inner) is int:
            if op is ast.USub:
                return Const(-inner)
            if op is ast.UAdd:
                return Const(inner)
            if op is ast.Invert:
                return Const(~inner)
        return None

    def _starred(self, node: ast.Starred) -> Any:
        self.ev(node.value)
        return None

    def _single_value(self, node: Any) -> Any:
        if node.value is not None:
            self.ev(node.value)
        return None

    # -- calls --------------------------------------------------------------------------

    def _call(self, node: ast.Call) -> Any:
        func = node.func
        if node.keywords and self._watch_keywords:
            watched = self._watch_keywords
            for k in node.keywords:
                if k.arg in watched:
                    self.on_keyword(node, k)
        base: Any = None
        if type(func) is ast.Attribute:
            base = self.ev(func.value)
            if base is None and func.attr not in self._slow_attrs:
                # `obj.method(...)` on an object nothing is known about: the common case.
                ev = self.ev
                for a in node.args:
                    ev(a)
                for k in node.keywords:
                    ev(k.value)
                return None
            if type(base) is Namespace and base.kind == "module" and func.attr in _NS_METHODS:
                return self._namespace_method(node, base, func.attr)
            fv = self.attribute_of(func, base, func.attr)
            if fv is None and func.attr in self._watch_methods:
                margs = self.call_args(node)
                hooked = self.on_method(node, base, func.attr, margs)
                if hooked is not None:
                    return hooked
                return self._method_on_value(base, func.attr, margs)
        else:
            fv = self._raw(func)
        if fv is None and (base is None or not self._may_fold(base, func)):
            ev = self.ev
            for a in node.args:
                ev(a)
            for k in node.keywords:
                ev(k.value)
            return None
        tf = type(fv)
        if tf is Qual:
            name = fv.name
            special = self._special.get(name)
            if name in self._watch_refs:
                self.on_ref(func, fv, True)
            if special is None and name not in self._watch_calls:
                ev = self.ev
                for a in node.args:
                    ev(a)
                for k in node.keywords:
                    ev(k.value)
                if name in self.call_results:
                    return Qual(name + "()")
                return None
            args = self.call_args(node)
            return self.dispatch_call(node, fv, args)
        args = self.call_args(node)
        if fv is None:
            if type(func) is ast.Attribute:
                if func.attr == "__getattribute__":
                    # os.__getattribute__("system") is getattr(os, "system").
                    name = const_str(args.get(0, None))
                    return None if name is None else self.attribute_of(node, base, name)
                return self._method_on_value(base, func.attr, args)
            return None
        if tf is AttrGetter:
            value = args.get(0, None)
            for part in fv.path:
                value = self.attribute_of(node, value, part)
            return value
        if tf is MethodCaller:
            target = self.attribute_of(node, args.get(0, None), fv.name)
            if type(target) is Qual:
                if target.name in self._watch_refs:
                    self.on_ref(node, target, True)
                return self.dispatch_call(node, target, fv.args)
            return None
        if tf is Partial:
            return self.dispatch_call(node, fv.func, fv.args.merged(args))
        if tf is LocalClass and self.call_results:
            # An instance of a local subclass of a followed class: `class T(tarfile.TarFile)`.
            results = self.call_results
            found: list[str] = []

            def followed(q: Qual) -> bool:
                if q.name in results:
                    found.append(q.name)
                    return True
                return False

            if fv.derives_from(followed):
                return Qual(found[0] + "()")
        return None

    def _may_fold(self, base: Any, func: ast.expr) -> bool:
        """Whether a method call on ``base`` is one the resolver evaluates."""
        tb = type(base)
        if tb is ast.Constant or tb is Const or tb is Computed:
            return type(func) is ast.Attribute and func.attr in _STR_METHODS
        if tb is Namespace or tb is MapValue or tb is Qual:
            return type(func) is ast.Attribute and (
                func.attr in _MAPPING_GETTERS or func.attr == "__getattribute__"
            )
        return False

    def dispatch_call(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        """Apply the resolver's own semantics and the ``on_call`` hook to a known call."""
        name = func.name
        result = None
        special = self._special.get(name)
        if special is not None:
            result = special(self, node, args)  # type: ignore[arg-type]
        if name in self._watch_calls:
            hooked = self.on_call(node, func, args)
            if hooked is not None:
                result = hooked
        if result is None and name in self.call_results:
            result = Qual(name + "()")
        return result

    def call_args(self, node: ast.Call) -> CallArgs:
        """Evaluate a call's arguments into a :class:`CallArgs`."""
        ev = self.ev
        out = CallArgs()
        for a in node.args:
            if type(a) is ast.Starred:
                inner = ev(a.value)
                if not out.star and type(inner) is SeqValue and not inner.open:
                    out.pos.extend(inner.items)
                    out.pos_nodes.extend([a] * len(inner.items))
                else:
                    out.star = True
                continue
            value = ev(a)
            if not out.star:
                out.pos.append(value)
                out.pos_nodes.append(a)
        for k in node.keywords:
            value = ev(k.value)
            if k.arg is None:
                if type(value) is MapValue:
                    for key, item in value.items.items():
                        out.kw[key] = item
                        out.kw_nodes[key] = k.value
                    if not value.complete:
                        out.open_kw = True
                else:
                    out.open_kw = True
            else:
                out.kw[k.arg] = value
                out.kw_nodes[k.arg] = k.value
        return out

    def _method_on_value(self, base: Any, method: str, args: CallArgs) -> Any:
        """Calls on constants and namespaces: string folding and mapping look-ups."""
        tb = type(base)
        if tb is ast.Constant or tb is Const:
            value = base.value
            if type(value) in (str, bytes) and method in _STR_METHODS:
                return self._fold_str_method(value, method, args)
            return None
        if tb is Computed:
            return base if method in _STR_METHODS else None
        if method in _MAPPING_GETTERS and (tb is Namespace or tb is MapValue or tb is Qual):
            key = const_str(args.get(0, None))
            if key is None:
                return None
            if tb is MapValue:
                return base.items.get(key)
            return self.subscript_of(base, Const(key))
        return None

    def _fold_str_method(self, value: str | bytes, method: str, args: CallArgs) -> Any:
        if args.star or args.open_kw:
            return None
        pos = [const_value(a, _MISSING) for a in args.pos]
        if method == "join":
            if len(pos) != 1 or args.kw:
                return None
            seq = args.pos[0]
            if type(seq) is Computed:
                return Computed("joined")
            if type(seq) is SeqValue:
                for item in seq.items:
                    if type(item) is Computed:
                        return Computed("joined")
                if seq.open:
                    return None
                items = [const_value(i, _MISSING) for i in seq.items]
            elif is_const(seq) and type(const_value(seq)) is type(value):
                items = list(const_value(seq))  # type: ignore[call-overload]
            else:
                return None
            if not all(type(i) is type(value) for i in items):
                return None
            out = value.join(items)  # type: ignore[arg-type]
            return Const(out) if len(out) <= _MAX_FOLD else None
        if _MISSING in pos:
            if method == "format" and any(type(a) is Computed for a in args.pos):
                return Computed("formatted")
            return None
        kw = {k: const_value(v, _MISSING) for k, v in args.kw.items()}
        if _MISSING in kw.values():
            return None
        if method == "format":
            if type(value) is not str or ":" in value or "!" in value:
                return None
        try:
            out = getattr(value, method)(*pos, **kw)
        except (
            TypeError,
            ValueError,
            KeyError,
            IndexError,
            AttributeError,
            UnicodeError,
            LookupError,
        ):
            return None
        if type(out) in (str, bytes) and len(out) <= _MAX_FOLD:
            return Const(out)
        return None

    # -- special functions --------------------------------------------------------------

    def _sp_getattr(self, node: ast.Call, args: CallArgs) -> Any:
        base = args.get(0, None)
        raw = args.get(1, None)
        name = const_str(raw)
        if name is None:
            if base is not None:
                self.on_dynamic_getattr(node, base, raw if type(raw) is Computed else None)
            return None
        return self.attribute_of(node, base, name)

    def _sp_setattr(self, node: ast.Call, args: CallArgs) -> Any:
        name = const_str(args.get(1, None))
        if name is not None and name in self._watch_attrs:
            self.on_attr(node, args.get(0, None), name, args.get(2, None), True)
        return None

    def _import_value(self, node: ast.AST, name: Any, fromlist: Any, top_level: bool) -> Any:
        module = const_str(name)
        if module is None or not module or module.startswith("."):
            self.on_import(node, None, (), True)
            return None
        self.on_import(node, module, (), True)
        if top_level and not fromlist:
            module = module.partition(".")[0]
        return Qual(canonical_module(module))

    def _sp_dunder_import(self, node: ast.Call, args: CallArgs) -> Any:
        fromlist = args.get(3, "fromlist")
        has_fromlist = (
            fromlist is not ABSENT
            and fromlist is not None
            and not (is_const(fromlist) and not const_value(fromlist))
            and not (type(fromlist) is SeqValue and not fromlist.items)
        )
        return self._import_value(node, args.get(0, "name"), has_fromlist, True)

    def _sp_import_module(self, node: ast.Call, args: CallArgs) -> Any:
        return self._import_value(node, args.get(0, "name"), True, False)

    def _sp_vars(self, node: ast.Call, args: CallArgs) -> Any:
        target = args.get(0, None)
        if target is ABSENT:
            return Namespace("scope", self._binding_scope())
        if type(target) is Qual:
            return Namespace("module", target.name)
        return None

    def _sp_globals(self, node: ast.Call, args: CallArgs) -> Any:
        return Namespace("scope", self.module_scope)

    def _sp_locals(self, node: ast.Call, args: CallArgs) -> Any:
        return Namespace("scope", self._binding_scope())

    def _sp_dict(self, node: ast.Call, args: CallArgs) -> Any:
        items: dict[str, Any] = {}
        complete = not args.open_kw and not args.star
        if args.pos:
            first = args.pos[0]
            if type(first) is MapValue:
                items.update(first.items)
                complete = complete and first.complete
            else:
                complete = False
        items.update(args.kw)
        return MapValue(items, complete)

    def _sp_chr(self, node: ast.Call, args: CallArgs) -> Any:
        code = const_value(args.get(0, None))
        if type(code) is int and 0 <= code < 0x110000:
            return Const(chr(code))
        return Computed("chr")

    def _sp_reversed(self, node: ast.Call, args: CallArgs) -> Any:
        value = const_str(args.get(0, None))
        if value is not None:
            return Const(value[::-1])
        seq = args.get(0, None)
        if type(seq) is SeqValue and not seq.open:
            return SeqValue(tuple(reversed(seq.items)))
        return Computed("reversed")

    def _sp_attrgetter(self, node: ast.Call, args: CallArgs) -> Any:
        name = const_str(args.get(0, None))
        if name is None or len(args.pos) != 1:
            return None
        return AttrGetter(tuple(name.split(".")))

    def _sp_methodcaller(self, node: ast.Call, args: CallArgs) -> Any:
        name = const_str(args.get(0, None))
        if name is None:
            return None
        return MethodCaller(name, args.shifted(1))

    def _sp_partial(self, node: ast.Call, args: CallArgs) -> Any:
        func = args.get(0, None)
        if type(func) is not Qual:
            return None
        bound = args.shifted(1)
        # A partial is a call waiting to happen: check what it binds now, where it is
        # written, and again when a call through it adds arguments.
        self.dispatch_call(node, func, bound)
        return Partial(func, bound)

    def _sp_modules_get(self, node: ast.Call, args: CallArgs) -> Any:
        return self.subscript_of(Qual("sys.modules"), args.get(0, None))

    def _sp_reduce(self, node: ast.Call, args: CallArgs) -> Any:
        """``functools.reduce(getattr, ["path", "os", "system"], os)`` walks attributes."""
        func = args.get(0, None)
        seq = args.get(1, None)
        if type(func) is not Qual or type(seq) is not SeqValue or seq.open:
            return None
        if func.name == "builtins.getattr":
            value = args.get(2, None)
            items = list(seq.items)
            if value is ABSENT:
                if not items:
                    return None
                value = items.pop(0)
            for item in items:
                if value is None:
                    return None
                name = const_str(item)
                if name is None:
                    self.on_dynamic_getattr(node, value, item if type(item) is Computed else None)
                    return None
                value = self.attribute_of(node, value, name)
            return value
        return None

    def _namespace_method(self, node: ast.Call, ns: Namespace, method: str) -> Any:
        """``vars(mod).get(k)``, ``mod.__dict__.items()``...: a lookup by a constant key is
        the member; anything else reaches members by names the file does not show."""
        args = self.call_args(node)
        if method in _NS_VIEWS:
            self.on_namespace_access(node, ns, ITERATED)
            return None
        if method == "copy":
            return ns
        key = args.get(0, "key")
        name = const_str(key)
        if name is None:
            self.on_namespace_access(node, ns, None if key is ABSENT else key)
            return None
        return self.namespace_get(ns, name)

    def _sp_getmembers(self, node: ast.Call, args: CallArgs) -> Any:
        target = args.get(0, "object")
        if type(target) is Qual:
            self.on_namespace_access(node, Namespace("module", target.name), ITERATED)
        return None

    def _sp_find_spec(self, node: ast.Call, args: CallArgs) -> Any:
        return Spec(const_str(args.get(0, "name")))

    def _sp_module_from_spec(self, node: ast.Call, args: CallArgs) -> Any:
        """A module built from ``find_spec(name)``: its loader runs it, an import."""
        spec = args.get(0, "spec")
        if type(spec) is not Spec:
            return None
        return self._import_value(node, Const(spec.name) if spec.name else None, True, False)
