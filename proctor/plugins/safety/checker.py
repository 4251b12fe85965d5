"""The ``safety`` checker: one walk of the resolver over a file, its events turned into
findings.

The tables it consults are in :mod:`.watch` (names and attributes) and :mod:`.modules`
(module lists); the rule texts in :mod:`.rules`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from proctor.checks.resolve import Resolver
from proctor.checks.validation import CheckContext, Finding, SourceFile
from proctor.checks.values import (
    ABSENT,
    CallArgs,
    LocalClass,
    MapValue,
    Qual,
    SeqValue,
    canonical_module,
    const_value,
    is_const,
)
from proctor.plugins.safety.modules import (
    CAPABILITY_MODULES,
    DEBUG_MODULES,
    GETATTR_SENSITIVE,
    NATIVE_MODULES,
    SENSITIVE_MODULES,
    capability_for,
)
from proctor.plugins.safety.rules import REASONS
from proctor.plugins.safety.watch import (
    CALLS,
    GLOBALS_ATTRS,
    INTERPRETER_FLAGS,
    PROCEDURE_DUNDERS,
    REFS,
    SAFE_YAML_LOADERS,
    SHELLS,
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


def _basename(program: str) -> str:
    name = program.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name.removesuffix(".exe")


def _inline_flag(arg: object, letter: str) -> bool:
    """``-c``, or a short-option cluster containing it (``-lc``, ``-ec``), or ``/c``."""
    if type(arg) is not str or len(arg) < 2:
        return False
    if arg[0] == "-" and arg[1] != "-":
        body = arg[1:]
        if len(body) <= 5 and body.isalpha() and letter in body:
            return True
        return letter == "c" and arg.lower() in ("-command", "-encodedcommand")
    return letter == "c" and arg.lower() in ("/c", "/k")


def _inline_command_argv(items: Iterable[Any]) -> str | None:
    """The program if ``items`` is an argv running a shell/interpreter with inline code."""
    items = list(items)
    values = [const_value(v, None) for v in items]
    if not values:
        return None
    if items and type(items[0]) is Qual and items[0].name == "sys.executable":
        values[0] = "python"
    first = values[0]
    if type(first) is str and _basename(first) == "env" and len(values) > 1:
        values = values[1:]
        first = values[0]
    if type(first) is not str:
        return None
    program = _basename(first)
    letter: str | None = None
    if program in SHELLS:
        letter = "c"
    else:
        for interpreter, flag in INTERPRETER_FLAGS.items():
            if program == interpreter or (
                program.startswith(interpreter)
                and program[len(interpreter) :].replace(".", "").isdigit()
            ):
                letter = flag
                break
    if letter is None:
        return None
    for arg in values[1:]:
        if _inline_flag(arg, letter):
            return program
    return None


def _argv_items(value: Any) -> tuple[Any, ...] | None:
    if type(value) is SeqValue:
        return value.items
    return None


def _display(name: str) -> str:
    return name.removeprefix("builtins.")


class SafetyChecker(Resolver):
    """One file's walk: the resolver's events turned into findings."""

    builtin_names = frozenset(
        {"eval", "exec", "execfile", "compile", "breakpoint", "open", "type", "object"}
    )
    watch_refs = REFS
    watch_calls = CALLS
    watch_attrs = WATCH_ATTRS
    extra_known = frozenset(
        {
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
        if kind == "uncalled" and called:
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
            return result
        if attr == "__subclasses__":
            self.emit(node, "PS501", "`__subclasses__`")
            return result
        if attr in GLOBALS_ATTRS:
            self.emit(node, "PS502", f"`{attr}`")
            return result
        if attr == "subprocess_shell":
            self.emit(node, "PS201", "`subprocess_shell`")
            return result
        literal = (
            base is _WALK
            or is_const(base)
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
            self.emit(node, "PS603", f"the import of `{module}`")
        if dynamic:
            if canonical_module(top) in SENSITIVE_MODULES or top in SENSITIVE_MODULES:
                self.emit(node, "PS105", f"the dynamic import of `{module}`")
        if self.procedure:
            self._check_allowed(node, module, names)

    def on_dynamic_getattr(self, node: ast.Call, base: Any) -> None:
        if type(base) is Qual and base.name in GETATTR_SENSITIVE:
            self.emit(node, "PS108", f"`getattr({base.name}, <computed>)`")

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
        argv = _argv_items(args.get(0, "args"))
        if argv is not None:
            program = _inline_command_argv(argv)
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
        self.emit(node, "PS205", f"`{func.name}`")

    def _call_subprocess_exec(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        program = _inline_command_argv(args.pos)
        if program is not None:
            self.emit(node, "PS203", f"`{func.name}` running `{program}` with an inline command")
        else:
            self.emit(node, "PS205", f"`{func.name}`")

    def _exec_like(self, node: ast.AST, func: Qual, path: Any, argv: Any) -> None:
        items: list[Any] | None = None
        if type(argv) is SeqValue:
            items = list(argv.items)
        elif isinstance(argv, list):
            items = argv
        program = None
        if items is not None:
            program = _inline_command_argv(items)
            path_text = const_value(path)
            if program is None and type(path_text) is str and items:
                program = _inline_command_argv([path, *items[1:]])
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

    def _call_yaml_load(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        loader = args.get(1, "Loader")
        if loader is ABSENT:
            self.emit(node, "PS302", f"`{func.name}` without a Loader")
            return
        if _safe_yaml_loader(loader):
            return
        shown = (
            _display(loader.name)
            if type(loader) is Qual
            else "a Loader that is not known to be safe"
        )
        self.emit(node, "PS302", f"`{func.name}` with {shown}")

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


def _safe_yaml_loader(loader: Any) -> bool:
    def safe(q: Qual) -> bool:
        return q.name.startswith("yaml.") and q.name.rpartition(".")[2] in SAFE_YAML_LOADERS

    if type(loader) is Qual:
        return safe(loader)
    if type(loader) is LocalClass:
        return loader.derives_from(safe)
    return False
