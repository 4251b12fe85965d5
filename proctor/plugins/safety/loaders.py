"""The yaml part of the ``safety`` check (PS302): which loaders are safe.

A loader is judged by what the file can see: yaml's own loaders by name, a local class
by its bases (a safe constructor or loader and no unsafe one), a Loader parameter as
whatever the caller passes (unsafe), and a loader imported from another module as safe
unless it bears the name of one of yaml's unsafe loaders: that module is checked where
it defines the class, and a loader class built on an unsafe loader or constructor is
reported there (see docs/checks-safety.md, "yaml loaders from other modules").

A mixin of :class:`~proctor.plugins.safety.checker.SafetyChecker`.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from proctor.checks.values import ABSENT, CallArgs, LocalClass, Qual
from proctor.plugins.safety.watch import (
    SAFE_YAML_BASES,
    SAFE_YAML_LOADERS,
    UNSAFE_YAML,
    UNSAFE_YAML_NAMES,
)

if TYPE_CHECKING:
    from proctor.checks.resolve import Scope
    from proctor.checks.validation import SourceFile

__all__ = ["LoaderChecks", "safe_yaml_loader"]


class LoaderChecks:
    """``yaml.load``'s Loader argument, judged (a mixin of the safety checker)."""

    if TYPE_CHECKING:  # provided by the checker and its resolver
        scope: Scope
        source: SourceFile

        def emit(
            self, node: ast.AST, code: str, subject: str, detail: str = "", with_fix: bool = True
        ) -> None: ...

        def resolve_name(self, name: str) -> Any: ...

        def _qual_attr(self, base: Qual, attr: str) -> Any: ...

        def _function_node(self) -> ast.AST | None: ...

    def _call_yaml_load(self, node: ast.AST, func: Qual, args: CallArgs) -> None:
        loader = args.get(1, "Loader")
        if loader is ABSENT:
            self.emit(node, "PS302", f"`{func.name}` without a Loader")
            return
        loader_node = args.node(1, "Loader")
        if type(loader_node) is ast.Name and self._is_parameter(loader_node.id):
            self.emit(
                node,
                "PS302",
                f"`{func.name}` with the Loader parameter `{loader_node.id}`",
                "lets the caller pass any loader, whatever the default; an unsafe one "
                "constructs arbitrary Python objects",
            )
            return
        if safe_yaml_loader(loader):
            return
        if loader is None and loader_node is not None and self._trusted_loader(loader_node, 0):
            return
        shown = (
            loader.name.removeprefix("builtins.")
            if type(loader) is Qual
            else "a Loader that is not known to be safe"
        )
        self.emit(node, "PS302", f"`{func.name}` with {shown}")

    def _is_parameter(self, name: str) -> bool:
        """Whether ``name`` is a parameter of the function being walked."""
        fn = self.scope.node
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        a = fn.args
        params = [*a.posonlyargs, *a.args, *a.kwonlyargs]
        return any(p.arg == name for p in params)

    def _trusted_loader(self, node: ast.AST, depth: int) -> bool:
        """A loader this file takes from another module (not yaml's own names, such as
        ``yamlordereddictloader.Loader``): checked where that module defines it, where a
        loader class on an unsafe base is reported. Followed through plain assignments."""
        if depth > 3:
            return False
        tree = self.source.tree
        if type(node) is ast.Attribute:
            root: ast.AST = node
            while type(root) is ast.Attribute:
                root = root.value
            return (
                type(root) is ast.Name
                and node.attr not in UNSAFE_YAML_NAMES
                and self._imported_module(root.id, tree) not in (None, "yaml")
            )
        if type(node) is not ast.Name:
            return False
        name = node.id
        imported = self._imported_name(name, tree)
        if imported is not None:
            module, original = imported
            return module.partition(".")[0] not in ("yaml", "ruamel") and (
                original not in UNSAFE_YAML_NAMES
            )
        values: list[ast.AST] = []
        for sub in ast.walk(self._function_node() or tree):
            if type(sub) is ast.Assign and any(
                type(t) is ast.Name and t.id == name for t in sub.targets
            ):
                values.append(sub.value)
        return bool(values) and all(
            safe_yaml_loader(self._quiet_value(v)) or self._trusted_loader(v, depth + 1)
            for v in values
        )

    def _quiet_value(self, node: ast.AST) -> Any:
        if type(node) is ast.Name:
            return self.resolve_name(node.id)
        if type(node) is ast.Attribute:
            base = self._quiet_value(node.value)
            return self._qual_attr(base, node.attr) if type(base) is Qual else None
        return None

    @staticmethod
    def _imported_name(name: str, tree: ast.AST) -> tuple[str, str] | None:
        for sub in ast.walk(tree):
            if type(sub) is ast.ImportFrom:
                for alias in sub.names:
                    if (alias.asname or alias.name) == name:
                        return ("." * sub.level + (sub.module or ""), alias.name)
        return None

    @staticmethod
    def _imported_module(name: str, tree: ast.AST) -> str | None:
        for sub in ast.walk(tree):
            if type(sub) is ast.Import:
                for alias in sub.names:
                    if (alias.asname or alias.name.partition(".")[0]) == name:
                        return alias.name.partition(".")[0]
            elif type(sub) is ast.ImportFrom:
                for alias in sub.names:
                    if (alias.asname or alias.name) == name:
                        return (sub.module or ".").partition(".")[0]
        return None


def safe_yaml_loader(loader: Any) -> bool:
    def safe(q: Qual) -> bool:
        return q.name.startswith("yaml.") and q.name.rpartition(".")[2] in SAFE_YAML_LOADERS

    def safe_base(q: Qual) -> bool:
        return safe(q) or q.name in SAFE_YAML_BASES

    def unsafe(q: Qual) -> bool:
        return q.name in UNSAFE_YAML

    if type(loader) is Qual:
        return safe(loader)
    if type(loader) is LocalClass:
        return not loader.derives_from(unsafe) and loader.derives_from(safe_base)
    return False
