"""The shared resolver: scopes, aliases, folding and the events a check receives."""

from __future__ import annotations

import ast
import textwrap
from typing import Any

import pytest

from proctor.checks.resolve import (
    ABSENT,
    CallArgs,
    Const,
    MapValue,
    Qual,
    Resolver,
    SeqValue,
    canonical_module,
    const_value,
    is_const,
)


class Recorder(Resolver):
    """Watches a few names and records every event as plain tuples."""

    builtin_names = frozenset({"eval", "exec"})
    watch_refs = frozenset({"builtins.eval", "builtins.exec", "os.system", "pickle.loads"})
    watch_calls = frozenset({"subprocess.run", "os.system"})
    watch_attrs = frozenset({"__globals__", "__code__"})
    call_results = frozenset({"logging.getLogger"})
    extra_known = frozenset({"logging.getLogger().info"})

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, int, bool]] = []
        self.calls: list[tuple[str, int, CallArgs]] = []
        self.attrs: list[tuple[str, int, bool]] = []
        self.imports: list[tuple[str | None, tuple[str, ...], bool]] = []

    def on_ref(self, node: ast.expr, value: Qual, called: bool) -> None:
        self.refs.append((value.name, node.lineno, called))

    def on_call(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        self.calls.append((func.name, getattr(node, "lineno", 0), args))
        return None

    def on_attr(self, node: ast.AST, base: Any, attr: str, result: Any, store: bool) -> Any:
        self.attrs.append((attr, getattr(node, "lineno", 0), store))
        return result

    def on_import(
        self, node: ast.AST, module: str | None, names: tuple[str, ...], dynamic: bool
    ) -> None:
        self.imports.append((module, names, dynamic))


def run(code: str) -> Recorder:
    r = Recorder()
    r.run(ast.parse(textwrap.dedent(code)))
    return r


def refs(code: str) -> set[tuple[str, int]]:
    return {(name, line) for name, line, _ in run(code).refs}


def value_of(code: str, expr: str) -> Any:
    """Evaluate ``expr`` after running ``code`` at module level."""
    r = Recorder()
    r.run(ast.parse(textwrap.dedent(code)))
    return r.ev(ast.parse(expr, mode="eval").body)


# -- values -------------------------------------------------------------------------------


def test_canonical_module() -> None:
    assert canonical_module("posix") == "os"
    assert canonical_module("ntpath") == "os.path"
    assert canonical_module("_pickle") == "pickle"
    assert canonical_module("cPickle.x") == "pickle.x"
    assert canonical_module("json") == "json"


def test_const_helpers() -> None:
    node = ast.Constant("x")
    assert is_const(node) and is_const(Const(1))
    assert const_value(node) == "x" and const_value(Const(2)) == 2
    assert const_value(Qual("os"), "default") == "default"
    assert Qual("os") == Qual("os") and hash(Qual("os")) == hash(Qual("os"))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("'sys' + 'tem'", "system"),
        ("f\"{'sys'}tem\"", "system"),
        ("f'{1!r}'", "1"),
        ("'%s%s' % ('sys', 'tem')", "system"),
        ("'%stem' % 'sys'", "system"),
        ("'{}{}'.format('sys', 'tem')", "system"),
        ("''.join(['sy', 'st', 'em'])", "system"),
        ("'-'.join('abc')", "a-b-c"),
        ("'metsys'[::-1]", "system"),
        ("'xsystemx'[1:-1]", "system"),
        ("'SYSTEM'.lower()", "system"),
        ("chr(101) + chr(118)", "ev"),
        ("''.join(reversed('lave'))", "eval"),
        ("NAME", "system"),
        ("b'ab' + b'c'", b"abc"),
    ],
)
def test_constant_folding(expr: str, expected: object) -> None:
    value = value_of("NAME = 'sys' + 'tem'", expr)
    assert is_const(value)
    assert const_value(value) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "'%999999999s' % 'x'",  # widths are not folded
        "'{:>999999999}'.format(1)",  # nor format specs
        "'a' * 1000000",  # nor repetition
        "f'{x}'",
        "'a' + x",
        "x.join(['a'])",
    ],
)
def test_folding_refuses(expr: str) -> None:
    assert value_of("", expr) is None


def test_literals() -> None:
    seq = value_of("", "['sh', '-c', x]")
    assert isinstance(seq, SeqValue)
    assert [const_value(i) for i in seq.items] == ["sh", "-c", None]
    mapping = value_of("", "{'shell': True, **{'cwd': '/'}}")
    assert isinstance(mapping, MapValue) and mapping.complete
    assert {k: const_value(v) for k, v in mapping.items.items()} == {"shell": True, "cwd": "/"}
    assert value_of("", "{k: 1}").complete is False
    assert value_of("d = dict(a=1)\nd['b'] = 2", "d").items.keys() == {"a", "b"}


@pytest.mark.parametrize(
    ("code", "expr", "expected"),
    [
        ("import os", "os", "os"),
        ("import os.path", "os", "os"),
        ("import os.path as p", "p", "os.path"),
        ("import posix as p", "p.system", "os.system"),
        ("from os import system as s", "s", "os.system"),
        ("from os import path", "path.os.system", "os.system"),
        ("import shutil", "shutil.os.system", "os.system"),
        ("import sys", "sys.modules['os'].system", "os.system"),
        ("import sys", "sys.modules.get('subprocess').run", "subprocess.run"),
        ("import os", "os.__dict__['system']", "os.system"),
        ("import os", "vars(os)['system']", "os.system"),
        ("import os", "globals()['os'].system", "os.system"),
        ("", "__builtins__", "builtins"),
        ("", "__builtins__['eval']", "builtins.eval"),
        ("", "len.__self__.exec", "builtins.exec"),
        ("", "__import__('os')", "os"),
        ("", "__import__('os.path')", "os"),
        ("", "__import__('os.path', fromlist=['x'])", "os.path"),
        ("import importlib", "importlib.import_module('os.path')", "os.path"),
        ("import importlib", "importlib.__import__('pickle').loads", "pickle.loads"),
        ("import operator, os", "operator.attrgetter('system')(os)", "os.system"),
        ("import os", "getattr(os, 'sys' + 'tem')", "os.system"),
        ("import os\nfns = {'run': os.system}", "fns['run']", "os.system"),
        ("import os\nfns = (print, os.system)", "fns[1]", "os.system"),
        ("import os\na, b = 1, os.system", "b", "os.system"),
        ("import os\nx = os.system if c else print", "x", "os.system"),
        ("from subprocess import *", "run", "subprocess.run"),
        ("import logging\nlog = logging.getLogger(__name__)", "log", "logging.getLogger()"),
        (
            "import logging\nlog = logging.getLogger(__name__)",
            "log.info",
            "logging.getLogger().info",
        ),
    ],
)
def test_resolves_to(code: str, expr: str, expected: str) -> None:
    value = value_of(code, expr)
    assert value == Qual(expected), value


@pytest.mark.parametrize(
    ("code", "expr"),
    [
        ("", "model.eval"),
        ("import json", "json.dumps"),  # unknown names are not materialised
        ("def eval(x): pass", "eval"),
        ("class eval: pass", "eval"),
        ("import mylib as os", "os.system"),
        ("from os import system\ndef system(): pass", "system"),
        ("d = {'exec': 1}", "d['exec']"),
        ("", "getattr(obj, 'system')"),
        ("import os", "getattr(os, name)"),
        ("", "__import__(name)"),
        ("", "importlib.import_module('os')"),  # importlib itself never imported
    ],
)
def test_does_not_resolve(code: str, expr: str) -> None:
    value = value_of(code, expr)
    assert not isinstance(value, Qual) or value.name not in {
        "os.system",
        "builtins.eval",
        "builtins.exec",
        "os",
    }, value


# -- scopes -------------------------------------------------------------------------------


def test_parameter_shadows_builtin() -> None:
    assert refs("def f(eval):\n    return eval(1)") == set()


def test_local_def_shadows_in_same_scope_only() -> None:
    code = """\
        def outer():
            def exec(x):
                return x
            exec(1)
        def other():
            exec(2)
        """
    assert refs(code) == {("builtins.exec", 6)}


def test_class_scope_is_not_visible_from_methods() -> None:
    code = """\
        class A:
            eval = staticmethod(len)
            x = eval('1')
            def m(self):
                return eval('2')
        """
    assert refs(code) == {("builtins.eval", 5)}


def test_function_bodies_see_final_module_bindings() -> None:
    code = """\
        def f():
            return run('x')
        import os
        run = os.system
        """
    assert refs(code) == {("os.system", 2), ("os.system", 4)}


def test_straight_line_rebinding_replaces() -> None:
    assert refs("import os\nrun = os.system\nrun = print\nrun(1)") == {("os.system", 2)}


def test_branch_rebinding_merges() -> None:
    code = "import os\nrun = os.system\nif c:\n    run = print\nrun(1)"
    assert refs(code) == {("os.system", 2), ("os.system", 5)}


def test_comprehension_scope() -> None:
    assert refs("[eval for eval in xs]\neval(1)") == {("builtins.eval", 2)}


def test_walrus_binds_outside_comprehension() -> None:
    assert refs("[(e := eval) for _ in xs]\ne(1)") == {("builtins.eval", 1), ("builtins.eval", 2)}


def test_global_and_nonlocal() -> None:
    code = """\
        def setup():
            global handler
            handler = exec
        def use():
            handler('1')
        def outer():
            fn = print
            def inner():
                nonlocal fn
                fn = eval
            return fn
        """
    assert refs(code) == {("builtins.exec", 3), ("builtins.exec", 5), ("builtins.eval", 10)}


def test_parameter_default_is_seen_in_body() -> None:
    assert refs("def f(s, run=exec):\n    run(s)") == {("builtins.exec", 1), ("builtins.exec", 2)}


def test_called_flag() -> None:
    r = run("import os\nos.system('x')\nf = os.system")
    assert sorted(r.refs) == [("os.system", 2, True), ("os.system", 3, False)]


# -- events -------------------------------------------------------------------------------


def test_call_args_with_kwargs_mapping() -> None:
    r = run("import subprocess\nopts = {'shell': True}\nsubprocess.run(['ls'], 1, **opts)")
    ((name, line, args),) = r.calls
    assert (name, line) == ("subprocess.run", 3)
    assert const_value(args.get(None, "shell")) is True
    assert const_value(args.get(1, "bufsize")) == 1
    assert args.get(5, "cwd") is ABSENT
    assert isinstance(args.get(0, "args"), SeqValue)


def test_call_args_unknown_kwargs_and_star() -> None:
    r = run("import subprocess\nsubprocess.run(*a, **kw)")
    ((_, _, args),) = r.calls
    assert args.star and args.open_kw
    assert args.get(8, "shell") is None  # might be passed, value unknown


def test_partial_and_methodcaller_calls() -> None:
    r = run("""\
        import functools, operator, os, subprocess
        p = functools.partial(subprocess.run, shell=True)
        p('ls')
        operator.methodcaller('system', 'id')(os)
        """)
    lines = [(name, line) for name, line, _ in r.calls]
    assert lines == [("subprocess.run", 2), ("subprocess.run", 3), ("os.system", 4)]
    assert const_value(r.calls[1][2].get(None, "shell")) is True
    assert const_value(r.calls[1][2].get(0, "args")) == "ls"


def test_attr_events() -> None:
    r = run("f.__globals__\nf.__code__ = g.__code__\nsetattr(f, '__code__', c)")
    assert sorted(r.attrs) == [
        ("__code__", 2, False),
        ("__code__", 2, True),
        ("__code__", 3, True),
        ("__globals__", 1, False),
    ]


def test_import_events() -> None:
    r = run("""\
        import os.path, json as j
        from collections import abc, OrderedDict
        from . import sibling
        __import__('pickle')
        __import__(name)
        import importlib
        importlib.import_module('xml.dom')
        """)
    assert r.imports == [
        ("os.path", (), False),
        ("json", (), False),
        ("collections", ("abc", "OrderedDict"), False),
        (None, ("sibling",), False),
        ("pickle", (), True),
        (None, (), True),
        ("importlib", (), False),
        ("xml.dom", (), True),
    ]


def test_deep_nesting_and_odd_syntax_do_not_crash() -> None:
    code = """\
        async def f():
            async with a as (b, c):
                async for x in y:
                    await z
            try:
                pass
            except* E:
                pass
            match v:
                case Point(x=0, y=yy) if yy > 0:
                    pass
                case {'k': kk, **rest}:
                    pass
            del q
            assert a, b
            yield from g
            return [*(yield)]
        x: int = 1
        y = lambda: (yield)
        """
    run(code)
