"""The ``safety`` checker: one walk of the resolver over a file, its events turned into
findings.

The tables it consults are in :mod:`.watch` (names and attributes) and :mod:`.modules`
(module lists); the rule texts in :mod:`.rules`.
"""

from __future__ import annotations

import ast
import builtins as _builtins
from typing import TYPE_CHECKING, Any

from proctor.checks.resolve import ITERATED, Resolver
from proctor.checks.validation import CheckContext, Finding, SourceFile
from proctor.checks.values import (
    ABSENT,
    CallArgs,
    Computed,
    MapValue,
    Namespace,
    Qual,
    SeqValue,
    canonical_module,
    const_value,
    is_const,
)
from proctor.plugins.safety.families import FamilyChecks
from proctor.plugins.safety.loaders import LoaderChecks
from proctor.plugins.safety.modules import (
    CAPABILITY_MODULES,
    DEBUG_MODULES,
    GETATTR_SENSITIVE,
    NATIVE_MODULES,
    SENSITIVE_MODULES,
    capability_for,
)
from proctor.plugins.safety.rules import REASONS
from proctor.plugins.safety.syntax import (
    argv_items,
    flows_into,
    inline_command_argv,
    literal_argv,
    parents_of,
    patches,
)
from proctor.plugins.safety.watch import (
    CALL_RESULTS,
    CALLS,
    GLOBALS_ATTRS,
    KEYWORDS,
    METHODS,
    PROCEDURE_DUNDERS,
    REFS,
    SAFE_YAML_BASES,
    SESSION_RESULTS,
    UNSAFE_YAML,
    WALK_ATTRS,
    WATCH_ATTRS,
)

if TYPE_CHECKING:
    from proctor.plugins.safety import SafetyValidator

__all__ = ["SafetyChecker"]


class _Walk:
    """The value of ``<literal>.__class__`` and further steps of such a walk."""

    __slots__ = ()


_WALK = _Walk()
_LITERALS = (
    ast.Constant,
    ast.Tuple,
    ast.List,
    ast.Dict,
    ast.Set,
    ast.JoinedStr,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)


_BUILTIN_TYPES = frozenset(n for n, v in vars(_builtins).items() if isinstance(v, type))
_PROCESS_CODES = frozenset({"PS201", "PS202", "PS203", "PS204", "PS205"})


def _display(name: str) -> str:
    return name.removeprefix("builtins.")


class SafetyChecker(LoaderChecks, FamilyChecks, Resolver):
    """One file's walk: the resolver's events turned into findings."""

    builtin_names = frozenset(
        {"eval", "exec", "execfile", "compile", "breakpoint", "open", "type", "object"}
    )
    watch_refs = REFS
    watch_calls = CALLS
    watch_attrs = WATCH_ATTRS
    watch_methods = METHODS
    watch_keywords = KEYWORDS
    call_results = CALL_RESULTS
    extra_known = (
        UNSAFE_YAML
        | SAFE_YAML_BASES
        | frozenset(
            {
                "ssl.CERT_NONE",
                "stat.S_IWOTH",
                "stat.S_IRWXO",
                "os.path",
                "ast.PyCF_ONLY_AST",
                "yaml.SafeLoader",
                "yaml.CSafeLoader",
                "yaml.BaseLoader",
                "yaml.CBaseLoader",
                "yaml.Loader",
                "yaml.FullLoader",
                "yaml.CLoader",
                "yaml.CFullLoader",
                "yaml.loader.SafeLoader",
                "yaml.cyaml.CSafeLoader",
                "sys.executable",
                "logging.config",
            }
        )
    )

    def __init__(
        self, validator: SafetyValidator, source: SourceFile, context: CheckContext
    ) -> None:
        super().__init__()
        self.validator = validator
        self.source = source
        self.context = context
        self.procedure = context.mode == "procedure"
        self.findings: list[Finding] = []
        self._seen: set[tuple[int, str]] = set()
        self._allowed: frozenset[str] | None = None
        # Debugger imports, judged once the whole file has been read (a helper that
        # only patches pdb is not a leftover).
        self._debug_imports: list[tuple[ast.AST, str]] = []

    def _tree(self) -> ast.AST:
        return self.source.tree

    def run(self, tree: ast.Module) -> None:
        super().run(tree)
        if self._debug_imports:
            self._judge_debug_imports(tree)

    # -- output -------------------------------------------------------------------------

    def emit(
        self, node: ast.AST, code: str, subject: str, detail: str = "", with_fix: bool = True
    ) -> None:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        key = (line, code)
        if key in self._seen:
            return  # one finding per rule and line: `(run := os.system)(cmd)` is one problem
        self._seen.add(key)
        rule = self.validator.rule(code)
        text = f"{subject} {detail or REASONS[code]}."
        if with_fix:
            text += f" {rule.fix}"
            if (
                self.procedure
                and code in _PROCESS_CODES
                and not self.context.capabilities.subprocess
            ):
                text += (
                    " Procedure code also needs the `subprocess` capability: declare "
                    "capabilities.subprocess in the procedure's metadata.json."
                )
        self.findings.append(self.validator.finding(self.source, (line, col), code, text))

    @staticmethod
    def subject(node: ast.AST, name: str) -> str:
        shown = _display(name)
        tail = shown.rpartition(".")[2]
        t = type(node)
        if t is ast.Name:
            spelled = node.id  # type: ignore[attr-defined]
            if spelled != tail and spelled != shown:
                return f"`{shown}` (via `{spelled}`)"
        elif t is ast.Attribute:
            if node.attr != tail:  # type: ignore[attr-defined]
                return f"`{shown}` (via `.{node.attr}`)"  # type: ignore[attr-defined]
        elif t in (ast.Call, ast.Subscript):
            return f"`{shown}` (reached dynamically)"
        return f"`{shown}`"

    # -- resolver hooks -----------------------------------------------------------------

    def on_ref(self, node: ast.expr, value: Qual, called: bool) -> None:
        code, kind = REFS[value.name]
        if (kind == "uncalled" and called) or (kind == "called" and not called):
            return
        detail = ""
        if kind == "uncalled":
            detail = (
                "is passed around as a value, which hides where it is called; the "
                f"call {REASONS[code]}"
            )
        self.emit(node, code, self.subject(node, value.name), detail)

    def on_call(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        return getattr(self, CALLS[func.name])(node, func, args)

    def on_attr(self, node: ast.AST, base: Any, attr: str, result: Any, store: bool) -> Any:
        if store:
            if attr == "__code__":
                self.emit(node, "PS503", "assigning `__code__`")
            elif attr == "check_hostname":
                if is_const(result) and const_value(result) is False:
                    self.emit(node, "PS701", "`check_hostname = False`")
            elif attr == "verify_mode":
                if (type(result) is Qual and result.name == "ssl.CERT_NONE") or (
                    is_const(result) and const_value(result) == 0
                ):
                    self.emit(node, "PS701", "`verify_mode = CERT_NONE`")
            elif attr == "verify":
                if (
                    type(base) is Qual
                    and base.name in SESSION_RESULTS
                    and is_const(result)
                    and const_value(result) is False
                ):
                    self.emit(node, "PS701", "`session.verify = False`")
            return result
        if attr == "__subclasses__":
            if self._walk_start(node, base):
                self.emit(node, "PS501", "`__subclasses__`")
            elif self.procedure:
                self.emit(node, "PS505", f"`{attr}`")
            return result
        if attr in GLOBALS_ATTRS:
            if attr == "__builtins__" or attr == "f_builtins" or not self._metadata_read(node):
                self.emit(node, "PS502", f"`{attr}`")
            return result
        if attr == "subprocess_shell":
            self.emit(node, "PS201", "`subprocess_shell`")
            return result
        literal = (
            base is _WALK
            or (is_const(base) and (const_value(base) is not None or self._written(node)))
            or type(base) in (SeqValue, MapValue)
            or (type(node) is ast.Attribute and isinstance(node.value, _LITERALS))
        )
        if attr == "__class__":
            return _WALK if literal else result
        if attr in WALK_ATTRS and (
            literal or (type(base) is Qual and base.name in ("builtins.object", "builtins.type"))
        ):
            self.emit(node, "PS504", f"`{attr}` walked from a literal")
            return _WALK
        if self.procedure and attr in PROCEDURE_DUNDERS:
            self.emit(node, "PS505", f"`{attr}`")
        return result

    @staticmethod
    def _written(node: ast.AST) -> bool:
        """Whether the object of ``node`` (an attribute) is a constant written in place."""
        return type(node) is ast.Attribute and type(node.value) is ast.Constant

    def _walk_start(self, node: ast.AST, base: Any) -> bool:
        """Whether ``base`` is where a walk to every class starts: a literal or a class
        reached from one, ``object``, ``type`` or another builtin type."""
        if base is _WALK or is_const(base) or type(base) in (SeqValue, MapValue):
            return True
        if type(base) is Qual:
            tail = base.name.removeprefix("builtins.")
            return base.name.startswith("builtins.") and tail in _BUILTIN_TYPES
        if type(node) is ast.Attribute:
            value = node.value
            if isinstance(value, _LITERALS):
                return True
            if type(value) is ast.Name and self.is_unbound_builtin(value.id):
                return value.id in _BUILTIN_TYPES
            # `x.__class__.__mro__[1].__subclasses__()`: a walk up the hierarchy first.
            while True:
                t = type(value)
                if t is ast.Attribute:
                    if value.attr in WALK_ATTRS or value.attr == "__class__":  # type: ignore[attr-defined]
                        return True
                    value = value.value  # type: ignore[attr-defined]
                elif t is ast.Subscript:
                    value = value.value  # type: ignore[attr-defined]
                elif t is ast.Call:
                    value = value.func  # type: ignore[attr-defined]
                else:
                    break
        return False

    def _metadata_read(self, node: ast.AST) -> bool:
        """Whether a namespace reached at ``node`` (``frame.f_globals``) is only read for
        module metadata (``["__name__"]``, ``.get("__file__")``, ``"__package__" in``),
        directly or through a plain name it is assigned to."""
        stmt = self.stmt
        if stmt is None:
            return False
        parents = parents_of(stmt)
        flow = flows_into(node, parents)
        if flow is None:
            return True
        if type(flow) is not ast.Assign:
            return False
        targets = flow.targets
        if len(targets) != 1 or type(targets[0]) is not ast.Name:
            return False
        name = targets[0].id
        body = self._function_node() or self.source.tree
        uses = [
            sub
            for sub in ast.walk(body)
            if type(sub) is ast.Name and sub.id == name and type(sub.ctx) is ast.Load
        ]
        if not uses:
            return False
        parents = parents_of(body)
        return all(flows_into(use, parents) is None for use in uses)

    def on_class(self, node: ast.ClassDef, bases: tuple[Any, ...]) -> None:
        for base in bases:
            if type(base) is Qual and base.name in UNSAFE_YAML:
                self.emit(
                    node,
                    "PS302",
                    f"the loader class `{node.name}` built on `{base.name}`",
                    "constructs arbitrary Python objects wherever it is used",
                )
                return

    def on_import(
        self, node: ast.AST, module: str | None, names: tuple[str, ...], dynamic: bool
    ) -> None:
        if module is None:
            if dynamic:
                if self.procedure:
                    self.emit(node, "PS902", "an import by computed name")
                else:
                    self.emit(node, "PS106", "an import by computed name")
            elif self.procedure:
                self.emit(
                    node,
                    "PS901",
                    "a relative import",
                    "is not allowed in procedure code, which is a single module",
                    with_fix=False,
                )
            return
        top = module.partition(".")[0]
        if top in NATIVE_MODULES:
            self.emit(node, "PS401", f"the import of `{module}`")
        if top in DEBUG_MODULES:
            if dynamic or type(node) is not ast.Import:
                self.emit(node, "PS603", f"the import of `{module}`")
            else:
                self._debug_imports.append((node, module))
        if dynamic:
            if canonical_module(top) in SENSITIVE_MODULES or top in SENSITIVE_MODULES:
                self.emit(node, "PS105", f"the dynamic import of `{module}`")
        if self.procedure:
            self._check_allowed(node, module, names)

    def on_dynamic_getattr(self, node: ast.Call, base: Any, name: Any) -> None:
        if type(base) is Qual and base.name in GETATTR_SENSITIVE:
            if type(name) is Computed:
                self.emit(node, "PS109", f"`getattr({base.name}, <{name.how} name>)`")
            else:
                self.emit(node, "PS108", f"`getattr({base.name}, <computed>)`")

    def on_namespace_access(self, node: ast.AST, ns: Namespace, name: Any) -> None:
        module = ns.target
        if module not in GETATTR_SENSITIVE:
            return
        if name is ITERATED:
            # Picking one member by a test on its name is the evasion (an error); a walk
            # that tests no name (a table of every callable) can still reach any member.
            if self._tests_a_name(self.stmt):
                self.emit(node, "PS109", f"`{module}`'s members iterated and one picked by name")
            else:
                self.emit(node, "PS108", f"`{module}`'s members iterated")
        elif type(name) is Computed:
            self.emit(node, "PS109", f"`{module}`'s namespace read by a {name.how} name")
        else:
            self.emit(node, "PS108", f"`{module}`'s namespace read by a computed name")

    @staticmethod
    def _tests_a_name(stmt: ast.AST | None) -> bool:
        """Whether the statement compares something (``k == "system"``, ``k in names``,
        ``k.startswith(...)``): how a member is picked from an iterated namespace."""
        if stmt is None:
            return True
        for sub in ast.walk(stmt):
            if type(sub) is ast.Compare or type(sub) is ast.match_case:
                return True
            if (
                type(sub) is ast.Call
                and type(sub.func) is ast.Attribute
                and sub.func.attr in ("startswith", "endswith", "fullmatch", "match")
            ):
                return True
        return False

    def _judge_debug_imports(self, tree: ast.Module) -> None:
        """Flag each ``import pdb`` unless every use of the name patches the module."""
        parents = parents_of(tree)
        for node, module in self._debug_imports:
            bound = {
                alias.asname or alias.name.partition(".")[0]
                for alias in node.names  # type: ignore[attr-defined]
                if alias.name.partition(".")[0] == module.partition(".")[0]
            }
            uses = [
                sub
                for sub in ast.walk(tree)
                if type(sub) is ast.Name and sub.id in bound and type(sub.ctx) is ast.Load
            ]
            patched = {
                parents[use].attr  # type: ignore[attr-defined]
                for use in uses
                if type(parents.get(use)) is ast.Attribute and type(parents[use].ctx) is ast.Store  # type: ignore[attr-defined]
            }
            if uses and all(patches(use, parents, patched) for use in uses):
                continue
            self.emit(node, "PS603", f"the import of `{module}`")

    # -- procedure allowlist ------------------------------------------------------------

    def allowed(self) -> frozenset[str]:
        if self._allowed is None:
            options = self.validator.options(self.context.settings)
            allowed = set(options.allowed_imports)
            caps = self.context.capabilities
            if caps.network:
                allowed |= CAPABILITY_MODULES["network"]
            if caps.subprocess:
                allowed |= CAPABILITY_MODULES["subprocess"]
            if caps.filesystem_write:
                allowed |= CAPABILITY_MODULES["filesystem_write"]
            self._allowed = frozenset(allowed)
        return self._allowed

    def _is_allowed(self, module: str) -> bool:
        allowed = self.allowed()
        if module in allowed:
            return True
        while "." in module:
            module = module.rpartition(".")[0]
            if module in allowed:
                return True
        return False

    def _check_allowed(self, node: ast.AST, module: str, names: tuple[str, ...]) -> None:
        if self._is_allowed(module):
            return
        if names and "*" not in names and all(self._is_allowed(f"{module}.{n}") for n in names):
            return
        wanted = module
        if names and "*" not in names:
            # `from os import path`: name the most specific module a capability covers.
            for n in names:
                if capability_for(f"{module}.{n}") is not None and not self._is_allowed(
                    f"{module}.{n}"
                ):
                    wanted = f"{module}.{n}"
                    break
        capability = capability_for(wanted)
        if capability is not None:
            how = (
                f"is not allowed in procedure code without the `{capability}` "
                f"capability: declare capabilities.{capability} in the procedure's "
                "metadata.json"
            )
        else:
            how = (
                "is not in the procedure import allowlist: add it to [safety] "
                "extra-allowed-imports in proctor.toml if procedures may use it"
            )
        self.emit(node, "PS901", f"the import of `{wanted}`", how, with_fix=False)

    # -- call checks --------------------------------------------------------------------

    def _call_type(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        """``type(())`` starts a walk just as ``().__class__`` does."""
        if len(args.pos) == 1 and not args.kw:
            value = args.pos[0]
            arg = args.node(0, None)
            if type(arg) is ast.Lambda:
                return Qual("types.FunctionType")
            if type(arg) is ast.Attribute and arg.attr == "__code__":
                return Qual("types.CodeType")
            if is_const(value) and const_value(value) is None and type(arg) is not ast.Constant:
                return None  # `type(x)` of a name that may be None: NoneType, not a walk
            if is_const(value) or type(value) in (SeqValue, MapValue) or value is _WALK:
                return _WALK
        return None

    def _call_compile(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        flags = args.get(3, "flags")
        if flags is not ABSENT:
            fv = const_value(flags)
            if type(fv) is int and fv & ast.PyCF_ONLY_AST:
                return
            if type(flags) is Qual and flags.name == "ast.PyCF_ONLY_AST":
                return
            flags_node = args.node(3, "flags")
            if flags_node is not None:
                for sub in ast.walk(flags_node):
                    if (
                        getattr(sub, "attr", None) == "PyCF_ONLY_AST"
                        or getattr(sub, "id", None) == "PyCF_ONLY_AST"
                    ):
                        return
        mode = const_value(args.get(2, "mode"))
        if type(mode) is str and mode not in ("exec", "eval", "single"):
            return
        self.emit(node, "PS102", f"`compile(..., {mode!r})`" if mode else "`compile`")

    def _call_timeit(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        for index, name in ((0, "stmt"), (1, "setup")):
            value = args.get(index, name)
            if value is ABSENT:
                continue
            text = const_value(value)
            arg_node = args.node(index, name)
            if type(text) is str:
                if text.strip() in ("", "pass"):
                    continue
            elif not isinstance(arg_node, (ast.JoinedStr, ast.BinOp)):
                continue
            self.emit(node, "PS103", f"`{func.name}` with a string `{name}`")
            return

    def _call_code_object(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self.emit(node, "PS107", f"`{func.name}(...)`")

    def _call_subprocess(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        shell = args.get(8, "shell")
        if shell is not ABSENT and is_const(shell):
            if const_value(shell):
                self.emit(node, "PS202", f"`{func.name}` with shell=True")
                return
        program = None
        argv = argv_items(args.get(0, "args"))
        if argv is not None:
            program = inline_command_argv(argv)
        if program is not None:
            self.emit(node, "PS203", f"`{func.name}` running `{program}` with an inline command")
            return
        if shell is not ABSENT and not is_const(shell):
            self.emit(
                node,
                "PS205",
                f"`{func.name}` with a shell= that is not a constant",
                "starts a child process and may pass the command to the shell",
            )
            return
        if literal_argv(args.get(0, "args")):
            return
        self.emit(node, "PS205", f"`{func.name}` with an argument list computed at run time")

    def _call_subprocess_exec(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        program = inline_command_argv(args.pos)
        if program is not None:
            self.emit(node, "PS203", f"`{func.name}` running `{program}` with an inline command")
        elif args.star or not literal_argv(args.pos):
            self.emit(node, "PS205", f"`{func.name}` with an argument list computed at run time")

    def _exec_like(self, node: ast.AST, func: Qual, path: Any, argv: Any) -> None:
        items: list[Any] | None = None
        if type(argv) is SeqValue:
            items = list(argv.items)
        elif isinstance(argv, list):
            items = argv
        program = None
        if items is not None:
            program = inline_command_argv(items)
            path_text = const_value(path)
            if program is None and type(path_text) is str and items:
                program = inline_command_argv([path, *items[1:]])
        if program is not None:
            self.emit(node, "PS203", f"`{func.name}` running `{program}` with an inline command")
        else:
            self.emit(node, "PS204", f"`{func.name}`")

    def _call_exec_l(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self._exec_like(node, func, args.get(0, None), args.pos[1:])

    def _call_exec_v(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self._exec_like(node, func, args.get(0, None), args.get(1, "args"))

    def _call_spawn_l(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self._exec_like(node, func, args.get(1, None), args.pos[2:])

    def _call_spawn_v(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self._exec_like(node, func, args.get(1, None), args.get(2, "args"))

    def _call_posix_spawn(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        self._exec_like(node, func, args.get(0, "path"), args.get(1, "argv"))

    def _call_pty_spawn(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        argv = args.get(0, "argv")
        self._exec_like(node, func, None, argv)

    def _call_ruamel(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        typ = const_value(args.get(None, "typ"))
        if typ in ("unsafe", "full"):
            self.emit(node, "PS302", f"`ruamel.yaml.YAML(typ={typ!r})`")

    def _call_numpy_load(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        allow = args.get(2, "allow_pickle")
        if allow is not ABSENT and (not is_const(allow) or const_value(allow)):
            self.emit(node, "PS301", "`numpy.load` with allow_pickle")

    def _call_torch_load(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        weights_only = args.get(None, "weights_only")
        if args.get(2, "pickle_module") is not ABSENT or (
            weights_only is not ABSENT and is_const(weights_only) and not const_value(weights_only)
        ):
            self.emit(node, "PS301", "`torch.load` without weights_only=True")

    def _call_open(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        if not self.procedure or self.context.capabilities.filesystem_write:
            return
        mode = args.get(1, "mode")
        if mode is ABSENT:
            return
        text = const_value(mode)
        if type(text) is str:
            if not any(c in text for c in "wax+"):
                return
            self.emit(node, "PS903", f"`{_display(func.name)}(..., {text!r})`")
        else:
            self.emit(node, "PS903", f"`{_display(func.name)}` with a computed mode")
