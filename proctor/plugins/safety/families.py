"""The ``safety`` checks of the transport, cryptography, data and template families
(PS7xx, PS8xx): TLS verification, SSH host keys, weak hashes and ciphers, servers on all
interfaces, SQL built by formatting, XML parsers, archive extraction, temporary names,
template escaping and file modes.

A mixin of :class:`~proctor.plugins.safety.checker.SafetyChecker`, apart from the walk
because these checks read call arguments and nothing of the resolver's state beyond the
values it hands them: the checker's ``CALLS`` table names these methods, and its
``on_method``/``on_keyword`` hooks come here for calls on objects it does not know.
"""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

from proctor.checks.values import ABSENT, CallArgs, Qual, SeqValue, const_str, const_value, is_const
from proctor.plugins.safety.watch import (
    ALL_INTERFACES,
    HTML_ESCAPERS,
    HTTP_METHODS,
    HTTP_PACKAGES,
    WEAK_HASH_NAMES,
)

if TYPE_CHECKING:
    from proctor.checks.resolve import Scope

__all__ = ["FamilyChecks", "looks_like_sql"]

_SQL = re.compile(
    r"^\s*(?:select\s.*?\sfrom\s|insert\s+(?:or\s+\w+\s+)?into\s|update\s+\S+\s+set\s|"
    r"delete\s+from\s|replace\s+into\s|merge\s+into\s|with\s+\w+\s+as\s*\(|"
    r"(?:create|drop|alter|truncate)\s+(?:table|index|view|database|schema)\s)",
    re.IGNORECASE | re.DOTALL,
)
_SQL_METHODS = frozenset({"execute", "executemany", "executescript"})


def looks_like_sql(text: str) -> bool:
    """Whether the constant text of a formatted string reads as an SQL statement."""
    return _SQL.match(text) is not None


def _formatted_sql(node: ast.expr | None) -> bool:
    """``node`` builds SQL text by formatting in values that are not constants."""
    if node is None:
        return False
    t = type(node)
    if t is ast.JoinedStr:
        parts: list[str] = []
        dynamic = False
        for value in node.values:  # type: ignore[attr-defined]
            if type(value) is ast.Constant:
                parts.append(str(value.value))
            else:
                dynamic = dynamic or type(value.value) is not ast.Constant
                parts.append(" x ")
        return dynamic and looks_like_sql("".join(parts))
    if t is ast.BinOp:
        op = type(node.op)  # type: ignore[attr-defined]
        left = node.left  # type: ignore[attr-defined]
        if op is ast.Mod:
            text = const_str(left) if type(left) is ast.Constant else None
            right = node.right  # type: ignore[attr-defined]
            return (
                text is not None
                and type(right) is not ast.Constant
                and not (
                    type(right) is ast.Tuple and all(type(e) is ast.Constant for e in right.elts)
                )
                and looks_like_sql(text)
            )
        if op is ast.Add:
            operands: list[ast.expr] = []
            stack: list[ast.expr] = [node]
            while stack:
                item = stack.pop()
                if type(item) is ast.BinOp and type(item.op) is ast.Add:
                    stack.append(item.right)
                    stack.append(item.left)
                else:
                    operands.append(item)
            texts = [str(o.value) if type(o) is ast.Constant else " x " for o in operands]
            dynamic = any(type(o) is not ast.Constant for o in operands)
            return dynamic and looks_like_sql("".join(texts))
        return False
    if t is ast.Call:
        func = node.func  # type: ignore[attr-defined]
        if (
            type(func) is ast.Attribute
            and func.attr == "format"
            and type(func.value) is ast.Constant
        ):
            text = const_str(func.value)
            args = [*node.args, *(k.value for k in node.keywords)]  # type: ignore[attr-defined]
            return (
                text is not None
                and any(type(a) is not ast.Constant for a in args)
                and looks_like_sql(text)
            )
    return False


def _assigned_sql(name: str, scope_node: ast.AST | None, tree: ast.AST) -> ast.AST | None:
    """An assignment of formatted SQL to ``name`` in the function (or module) around it."""
    body = scope_node if scope_node is not None else tree
    for sub in ast.walk(body):
        t = type(sub)
        if t is ast.Assign:
            value = sub.value  # type: ignore[attr-defined]
            for target in sub.targets:  # type: ignore[attr-defined]
                if type(target) is ast.Name and target.id == name and _formatted_sql(value):
                    return sub
        elif t is ast.AugAssign or t is ast.AnnAssign:
            target = sub.target  # type: ignore[attr-defined]
            value = sub.value  # type: ignore[attr-defined]
            if type(target) is ast.Name and target.id == name and value is not None:
                if _formatted_sql(value):
                    return sub
                if t is ast.AugAssign and type(value) is not ast.Constant:
                    # `sql += ...` onto SQL text assigned earlier
                    for earlier in ast.walk(body):
                        if (
                            type(earlier) is ast.Assign
                            and any(
                                type(tg) is ast.Name and tg.id == name for tg in earlier.targets
                            )
                            and type(earlier.value) is ast.Constant
                            and looks_like_sql(str(earlier.value.value))
                        ):
                            return sub
    return None


def _address_host(value: Any) -> str | None:
    """The host of an ``(host, port)`` address value, when it is a constant."""
    if type(value) is SeqValue and value.items:
        return const_str(value.items[0])
    return None


def _int(value: Any) -> int | None:
    v = const_value(value, None)
    return v if type(v) is int else None


class FamilyChecks:
    """Call checks of the PS7xx and PS8xx families (a mixin of the safety checker)."""

    if TYPE_CHECKING:  # provided by the checker and its resolver
        scope: Scope

        def emit(
            self, node: ast.AST, code: str, subject: str, detail: str = "", with_fix: bool = True
        ) -> None: ...

        def resolve_name(self, name: str) -> Any: ...

        def _tree(self) -> ast.AST: ...

    # -- calls on objects the resolver does not know ------------------------------------

    def on_method(self, node: ast.Call, base: Any, method: str, args: CallArgs) -> Any:
        if method in _SQL_METHODS:
            self._check_sql(node, args, f"`.{method}()`")
        elif method == "bind" or method == "create_server":
            index = 0 if method == "bind" else 1
            host = _address_host(args.get(0, None)) if method == "bind" else None
            if method == "create_server":
                host = const_str(args.get(index, "host"))
            if host is not None and host in ALL_INTERFACES:
                self.emit(node, "PS705", f"`.{method}()` on {host or 'the empty host'!r}")
        elif method == "chmod":
            self._check_mode(node, args.get(0, "mode"), "`.chmod()`")
        return None

    def on_keyword(self, node: ast.Call, keyword: ast.keyword) -> None:
        name = keyword.arg
        value = self._light_value(keyword.value)
        if name == "host":
            host = const_str(value)
            if host is not None and host in ("0.0.0.0", "::"):
                self.emit(keyword.value, "PS705", f"host={host!r}")
            return
        if name == "cert_reqs":
            if const_value(value, None) in ("CERT_NONE", "NONE", "none", 0) or (
                type(value) is Qual and value.name == "ssl.CERT_NONE"
            ):
                self.emit(keyword.value, "PS701", "cert_reqs=CERT_NONE")
            return
        if name == "assert_hostname":
            if is_const(value) and const_value(value) is False:
                self.emit(keyword.value, "PS701", "assert_hostname=False")
            return
        if name == "known_hosts":
            if (
                is_const(value)
                and const_value(value) is None
                and self._http_call(node, ("asyncssh.",))
            ):
                self.emit(keyword.value, "PS702", "known_hosts=None")
            return
        # verify, verify_ssl, ssl
        if is_const(value) and const_value(value) is False and self._http_call(node, HTTP_PACKAGES):
            self.emit(keyword.value, "PS701", f"{name}=False")

    def _light_value(self, node: ast.expr) -> Any:
        """A keyword's value as far as a constant, a name or a dotted name tells, without
        evaluating it (the call's own walk does that, and fires its events once)."""
        t = type(node)
        if t is ast.Constant:
            return node
        if t is ast.Name:
            return self.resolve_name(node.id)  # type: ignore[attr-defined]
        if t is ast.Attribute and type(node.value) is ast.Name:  # type: ignore[attr-defined]
            base = self.resolve_name(node.value.id)  # type: ignore[attr-defined]
            if type(base) is Qual:
                return Qual(f"{base.name}.{node.attr}")  # type: ignore[attr-defined]
        return None

    def _http_call(self, node: ast.Call, packages: tuple[str, ...]) -> bool:
        """Whether ``node`` calls an HTTP client: a function of one of ``packages`` or a
        method named like a request (``session.get``), whatever the object."""
        func = node.func
        if type(func) is ast.Attribute:
            if func.attr in HTTP_METHODS:
                return True
            root = func.value
            while type(root) is ast.Attribute:
                root = root.value
            value = self.resolve_name(root.id) if type(root) is ast.Name else None
        elif type(func) is ast.Name:
            value = self.resolve_name(func.id)
        else:
            return False
        return type(value) is Qual and (value.name + ".").startswith(packages)

    # -- PS1xx-PS6xx helpers used by CALLS ----------------------------------------------

    def _call_shlex_split(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        """``shlex.split("ls -l")`` of a fixed string is a literal argument list."""
        text = const_str(args.get(0, "s"))
        if text is None or len(text) > 10_000 or len(args.pos) > 1 or args.kw:
            return None
        import shlex

        try:
            return SeqValue(tuple(ast.Constant(part) for part in shlex.split(text)))
        except ValueError:
            return None

    def _call_flask_run(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        debug = args.get(2, "debug")
        if is_const(debug) and const_value(debug):
            self.emit(
                node,
                "PS602",
                "`app.run(debug=True)`",
                "starts the Werkzeug debugger, which runs Python typed into the browser",
            )
        return None

    # -- PS7xx ----------------------------------------------------------------------------

    def _call_wrap_socket(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        reqs = args.get(4, "cert_reqs")
        if reqs is ABSENT:
            self.emit(
                node,
                "PS701",
                "`ssl.wrap_socket`",
                "does not verify certificates unless cert_reqs is set",
            )
        return None

    def _call_weak_hash(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        flag = args.get(None, "usedforsecurity")
        if is_const(flag) and const_value(flag) is False:
            return None
        self.emit(node, "PS703", f"`{func.name}`")
        return None

    def _call_hash_new(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        name = const_str(args.get(0, "name"))
        if name is not None and name.lower().replace("-", "") in WEAK_HASH_NAMES:
            flag = args.get(None, "usedforsecurity")
            if not (is_const(flag) and const_value(flag) is False):
                self.emit(node, "PS703", f"`hashlib.new({name!r})`")
        return None

    def _call_key_size(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        if func.name.startswith("cryptography."):
            size = args.get(1 if func.name.endswith("rsa.generate_private_key") else 0, "key_size")
        else:
            size = args.get(0, "bits")
        bits = _int(size)
        if bits is not None and bits < 2048:
            self.emit(node, "PS704", f"a {bits}-bit key from `{func.name}`")
        return None

    def _call_server(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        host = _address_host(args.get(0, None))
        if host is not None and host in ALL_INTERFACES:
            self.emit(node, "PS705", f"`{func.name}` on {host!r}")
        return None

    def _call_server_host_first(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        host = const_str(args.get(0, "host"))
        if host is not None and host in ALL_INTERFACES:
            self.emit(node, "PS705", f"`{func.name}` on {host!r}")
        return None

    def _call_server_host_second(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        host = const_str(args.get(1, "host"))
        if host is not None and host in ALL_INTERFACES:
            self.emit(node, "PS705", f"`{func.name}` on {host!r}")
        return None

    # -- PS8xx ----------------------------------------------------------------------------

    def _check_sql(self, node: ast.Call, args: CallArgs, subject: str) -> None:
        if is_const(args.get(0, None)):
            return  # folded to one constant: no value is formatted in
        arg = args.node(0, None)
        if arg is None:
            return
        if _formatted_sql(arg):
            self.emit(node, "PS801", f"{subject} with SQL built by string formatting")
        elif type(arg) is ast.Name:
            scope_node = self._function_node()
            if _assigned_sql(arg.id, scope_node, self._tree()) is not None:
                self.emit(
                    node, "PS801", f"{subject} with SQL built by string formatting (`{arg.id}`)"
                )

    def _function_node(self) -> ast.AST | None:
        scope: Scope | None = self.scope
        while scope is not None:
            if scope.node is not None and type(scope.node) is not ast.ClassDef:
                return scope.node
            scope = scope.parent
        return None

    def _call_rawsql(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        self._check_sql(node, args, "`RawSQL`")  # type: ignore[arg-type]
        return None

    def _call_unpack_archive(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        self._check_filter(node, args.get(3, "filter"), "`shutil.unpack_archive`")
        return None

    def _call_tar_extract(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        method = func.name.rpartition(".")[2]
        index = 3 if method == "extractall" else 4
        self._check_filter(node, args.get(index, "filter"), f"`TarFile.{method}`")
        return None

    def _call_tar_extract_unbound(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        return self._call_tar_extract(node, func, args.shifted(1))

    def _check_filter(self, node: ast.AST, value: Any, subject: str) -> None:
        if value is ABSENT:
            self.emit(node, "PS803", f"{subject} without a filter")
        elif const_value(value, None) == "fully_trusted":
            self.emit(node, "PS803", f"{subject} with filter='fully_trusted'")

    def _call_zipfile(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        """The archive's path decides: a literal path is the project's own archive."""
        if const_str(args.get(0, "file")) is not None:
            return None
        return Qual("zipfile.ZipFile()")

    def _call_zip_extract(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        method = func.name.rpartition(".")[2]
        self.emit(node, "PS804", f"`ZipFile.{method}` of an archive from a computed path")
        return None

    def _call_lxml_parser(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        resolve = args.get(None, "resolve_entities")
        if not (is_const(resolve) and const_value(resolve) is False):
            self.emit(node, "PS802", "`lxml.etree.XMLParser` without resolve_entities=False")
        return None

    def _call_lxml(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        if args.get(1, "parser") is ABSENT:
            self.emit(node, "PS802", f"`{func.name}` with the default parser")
        return None

    def _call_jinja(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        autoescape = args.get(None, "autoescape")
        if autoescape is ABSENT:
            self.emit(node, "PS806", f"`{func.name}` without autoescape")
        elif is_const(autoescape) and not const_value(autoescape):
            self.emit(node, "PS806", f"`{func.name}` with autoescape=False")
        return None

    def _call_mako(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        filters = args.get(None, "default_filters")
        if type(filters) is SeqValue and any(const_str(i) == "h" for i in filters.items):
            return None
        if filters is not ABSENT and type(filters) is not SeqValue:
            return None  # computed: cannot tell
        self.emit(node, "PS806", f"`{func.name}` without default_filters=['h']")
        return None

    def _call_mark_safe(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        value = args.get(0, None)
        if value is ABSENT or is_const(value):
            return None
        if type(value) is Qual and value.name.removesuffix("()") in HTML_ESCAPERS:
            return None  # escaped first, as the advice says
        self.emit(node, "PS806", f"`{func.name}` of computed text", "marks unescaped text as HTML")
        return None

    def _call_chmod(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        index = 1
        self._check_mode(node, args.get(index, "mode"), f"`{func.name}`")
        return None

    def _check_mode(self, node: ast.AST, value: Any, subject: str) -> None:
        mode = _int(value)
        if mode is None and type(value) is Qual and value.name in ("stat.S_IWOTH", "stat.S_IRWXO"):
            mode = 0o002
        if mode is not None and mode & 0o002:
            self.emit(node, "PS807", f"{subject} with mode {oct(mode)}")
