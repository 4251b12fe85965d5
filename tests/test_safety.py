"""The code-safety validator: every rule, its evasions, and what it must leave alone.

Cases are tables of (snippet, expected findings as (code, line)); findings are compared
as a set, so each case states exactly what the validator reports.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proctor.checks.settings import CheckSettings
from proctor.checks.validation import Capabilities, CheckContext, Finding, SourceFile
from proctor.plugins.safety import RULES, SafetyValidator

CORPORA = Path(__file__).resolve().parents[1].parent / "shared" / "corpora" / "safety"


def check(code: str, mode: str = "generic", **context: object) -> list[Finding]:
    source = SourceFile("x.py", textwrap.dedent(code))
    ctx = CheckContext(mode=mode, **context)  # type: ignore[arg-type]
    return list(SafetyValidator().check(source, ctx))


def codes(code: str, mode: str = "generic", **context: object) -> set[tuple[str, int]]:
    return {(f.code, f.line) for f in check(code, mode, **context)}


# -- corpora ------------------------------------------------------------------------------


def _corpus(kind: str) -> list[Path]:
    directory = CORPORA / kind
    return sorted(directory.glob("*.py")) if directory.is_dir() else []


@pytest.mark.skipif(
    not (CORPORA / "dangerous").is_dir(),
    reason=f"safety corpus not found at {CORPORA / 'dangerous'}",
)
@pytest.mark.parametrize("path", _corpus("dangerous"), ids=lambda p: p.name)
def test_dangerous_corpus_gives_an_error(path: Path) -> None:
    findings = list(
        SafetyValidator().check(
            SourceFile(str(path), path.read_text()), CheckContext(mode="generic")
        )
    )
    assert any(f.severity == "error" for f in findings), findings


@pytest.mark.skipif(
    not (CORPORA / "benign").is_dir(), reason=f"safety corpus not found at {CORPORA / 'benign'}"
)
@pytest.mark.parametrize("path", _corpus("benign"), ids=lambda p: p.name)
def test_benign_corpus_gives_nothing(path: Path) -> None:
    findings = list(
        SafetyValidator().check(
            SourceFile(str(path), path.read_text()), CheckContext(mode="generic")
        )
    )
    assert findings == []


# -- positive cases, generic mode ---------------------------------------------------------

DANGEROUS: list[tuple[str, str, set[tuple[str, int]]]] = [
    # PS101 eval / exec, through every door
    ("eval-call", "eval(x)", {("PS101", 1)}),
    ("exec-call", "exec(code)", {("PS101", 1)}),
    ("execfile", "execfile('a.py')", {("PS101", 1)}),
    ("builtins-attr", "import builtins\nbuiltins.exec(s)", {("PS101", 2)}),
    ("builtins-alias", "import builtins as b\nb.eval(s)", {("PS101", 2)}),
    ("from-builtins", "from builtins import eval as e\ne(s)", {("PS101", 2)}),
    ("from-builtins-star", "from builtins import *\nexec(s)", {("PS101", 2)}),
    ("dunder-builtins-subscript", "__builtins__['eval'](s)", {("PS101", 1)}),
    ("dunder-builtins-attr", "__builtins__.exec(s)", {("PS101", 1)}),
    ("builtins-dict", "import builtins\nbuiltins.__dict__['exec'](s)", {("PS101", 2)}),
    ("builtins-dict-get", "import builtins\nbuiltins.__dict__.get('eval')(s)", {("PS101", 2)}),
    ("vars-builtins", "vars(__builtins__)['eval'](s)", {("PS101", 1)}),
    ("globals-builtins", "globals()['__builtins__']['exec'](s)", {("PS101", 1)}),
    ("getattr-builtins", "import builtins\ngetattr(builtins, 'eval')(s)", {("PS101", 2)}),
    ("getattr-concat", "import builtins\ngetattr(builtins, 'ev' + 'al')(s)", {("PS101", 2)}),
    ("getattr-fstring", "getattr(__builtins__, f\"{'ex'}ec\")(s)", {("PS101", 1)}),
    ("getattr-percent", "getattr(__builtins__, '%s%s' % ('ex', 'ec'))(s)", {("PS101", 1)}),
    ("getattr-format", "getattr(__builtins__, '{}{}'.format('ev', 'al'))(s)", {("PS101", 1)}),
    ("getattr-join", "getattr(__builtins__, ''.join(['e', 'v', 'a', 'l']))(s)", {("PS101", 1)}),
    (
        "getattr-join-chr",
        "getattr(__builtins__, ''.join([chr(101), chr(118), chr(97), chr(108)]))(s)",
        {("PS101", 1)},
    ),
    ("getattr-reversed", "getattr(__builtins__, 'lave'[::-1])(s)", {("PS101", 1)}),
    (
        "getattr-reversed-join",
        "getattr(__builtins__, ''.join(reversed('cexe')))(s)",
        {("PS101", 1)},
    ),
    ("getattr-const-name", "name = 'ev' + 'al'\nf = getattr(__builtins__, name)", {("PS101", 2)}),
    ("builtin-self", "len.__self__.eval(s)", {("PS101", 1)}),
    (
        "globals-of-function",
        "def f(): pass\nf.__globals__['__builtins__']['eval'](s)",
        {("PS101", 2), ("PS502", 2)},
    ),
    ("map-eval", "results = list(map(eval, lines))", {("PS101", 1)}),
    ("default-arg", "def f(x, ev=eval):\n    return ev(x)", {("PS101", 1), ("PS101", 2)}),
    ("alias-then-call", "e = eval\nvalue = e(text)", {("PS101", 1), ("PS101", 2)}),
    ("tuple-unpack", "a, b = eval, exec\nb(s)", {("PS101", 1), ("PS101", 2)}),
    ("dict-store", "table = {'run': exec}\ntable['run'](s)", {("PS101", 1), ("PS101", 2)}),
    ("list-store", "fns = [len, eval]\nfns[1](s)", {("PS101", 1), ("PS101", 2)}),
    ("lambda-wrapper", "run = lambda s: exec(s)", {("PS101", 1)}),
    ("lambda-default", "f = lambda s, e=eval: e(s)", {("PS101", 1)}),
    ("comprehension", "[eval(x) for x in xs]", {("PS101", 1)}),
    ("comprehension-element", "[f(s) for f in (eval, exec)]", {("PS101", 1)}),
    ("for-loop-element", "for f in (eval, exec):\n    f(s)", {("PS101", 1), ("PS101", 2)}),
    (
        "nested-function",
        "def outer():\n    def inner():\n        return exec(s)\n    return inner",
        {("PS101", 3)},
    ),
    ("class-body", "class A:\n    run = staticmethod(exec)", {("PS101", 2)}),
    (
        "method-uses-builtin",
        "class A:\n    def exec(self):\n        pass\n    def run(self, s):\n        exec(s)",
        {("PS101", 5)},
    ),
    ("decorator", "@eval\ndef f(): pass", {("PS101", 1)}),
    ("walrus", "if (e := eval):\n    e(s)", {("PS101", 1), ("PS101", 2)}),
    ("use-before-shadow", "exec(s)\ndef exec(x):\n    pass", {("PS101", 1)}),
    (
        "conditional-alias",
        "if cond:\n    run = exec\nelse:\n    run = print\nrun(s)",
        {("PS101", 2), ("PS101", 5)},
    ),
    ("sys-modules-builtins", "import sys\nsys.modules['builtins'].exec(s)", {("PS101", 2)}),
    ("dunder-import-builtins", "__import__('builtins').eval(s)", {("PS101", 1), ("PS105", 1)}),
    (
        "attrgetter",
        "import operator, builtins\noperator.attrgetter('eval')(builtins)(s)",
        {("PS101", 2)},
    ),
    (
        "global-decl",
        "def f():\n    global run\n    run = exec\ndef g():\n    run(s)",
        {("PS101", 3), ("PS101", 5)},
    ),
    # PS102 compile
    ("compile-exec", "code = compile(src, 'f', 'exec')", {("PS102", 1)}),
    ("compile-single", "compile(src, 'f', mode='single')", {("PS102", 1)}),
    ("compile-computed-mode", "compile(src, 'f', mode)", {("PS102", 1)}),
    ("compile-as-value", "c = compile", {("PS102", 1)}),
    ("eval-of-compile", "eval(compile(src, 'f', 'eval'))", {("PS101", 1), ("PS102", 1)}),
    # PS103 timeit
    ("timeit-string", "import timeit\ntimeit.timeit('os.system(1)', number=1)", {("PS103", 2)}),
    (
        "timeit-setup",
        "from timeit import timeit\ntimeit(lambda: 1, setup='import os')",
        {("PS103", 2)},
    ),
    ("timeit-timer", "import timeit\ntimeit.Timer(stmt=f'x{y}')", {("PS103", 2)}),
    ("timeit-repeat", "import timeit as t\nt.repeat('a' + b)", {("PS103", 2)}),
    # PS104 code runners
    ("code-interact", "import code\ncode.interact(local=locals())", {("PS104", 2)}),
    (
        "code-console",
        "from code import InteractiveConsole\nInteractiveConsole().push(s)",
        {("PS104", 2)},
    ),
    ("code-interpreter", "import code\ncode.InteractiveInterpreter().runsource(s)", {("PS104", 2)}),
    ("runpy-path", "import runpy\nrunpy.run_path('x.py')", {("PS104", 2)}),
    ("runpy-module", "from runpy import run_module\nrun_module('pkg')", {("PS104", 2)}),
    (
        "source-file-loader",
        "from importlib.machinery import SourceFileLoader\nSourceFileLoader('m', p).load_module()",
        {("PS104", 2)},
    ),
    (
        "spec-from-file",
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('m', p)\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)",
        {("PS104", 2)},
    ),
    ("imp-load-source", "import imp\nimp.load_source('m', 'm.py')", {("PS104", 2)}),
    ("cprofile-run", "import cProfile\ncProfile.run('main()')", {("PS104", 2)}),
    # PS105 / PS106 dynamic imports
    ("dunder-import-os", "__import__('os').system(c)", {("PS105", 1), ("PS201", 1)}),
    (
        "import-module-subprocess",
        "import importlib\nimportlib.import_module('subprocess').getoutput(c)",
        {("PS105", 2), ("PS201", 2)},
    ),
    ("importlib-dunder-import", "import importlib\nm = importlib.__import__('os')", {("PS105", 2)}),
    (
        "import-module-alias",
        "from importlib import import_module as im\nm = im('pickle')\nm.loads(b)",
        {("PS105", 2), ("PS301", 3)},
    ),
    ("dunder-import-dotted", "__import__('os.path').system(c)", {("PS105", 1), ("PS201", 1)}),
    (
        "import-module-dotted",
        "import importlib\nimportlib.import_module('os.path').os.system(c)",
        {("PS105", 2), ("PS201", 2)},
    ),
    ("computed-import", "__import__(name)", {("PS106", 1)}),
    ("computed-import-module", "import importlib\nimportlib.import_module(name)", {("PS106", 2)}),
    # PS107 code objects
    ("function-type", "import types\nf = types.FunctionType(code, {})", {("PS107", 2)}),
    ("code-type", "from types import CodeType\nCodeType(*args)", {("PS107", 2)}),
    # PS108 computed getattr on sensitive modules
    ("getattr-os-computed", "import os\nf = getattr(os, name)", {("PS108", 2)}),
    # PS201 shell commands
    ("os-system", "import os\nos.system(cmd)", {("PS201", 2)}),
    ("os-system-alias", "import os as o\no.system(cmd)", {("PS201", 2)}),
    ("from-os-import-alias", "from os import system as s\ns(cmd)", {("PS201", 2)}),
    ("os-star", "from os import *\npopen(cmd)", {("PS201", 2)}),
    ("posix-system", "import posix\nposix.system(cmd)", {("PS201", 2)}),
    ("os-path-os", "import os.path\nos.path.os.system(cmd)", {("PS201", 2)}),
    ("from-os-path", "from os import path\npath.os.system(cmd)", {("PS201", 2)}),
    ("shutil-os", "import shutil\nshutil.os.system(cmd)", {("PS201", 2)}),
    ("sys-modules-os", "import sys\nsys.modules['os'].system(cmd)", {("PS201", 2)}),
    ("sys-modules-get", "import sys\nsys.modules.get('os').popen(cmd)", {("PS201", 2)}),
    ("os-dict", "import os\nos.__dict__['system'](cmd)", {("PS201", 2)}),
    ("vars-os", "import os\nvars(os)['system'](cmd)", {("PS201", 2)}),
    ("globals-os", "import os\nglobals()['os'].system(cmd)", {("PS201", 2)}),
    ("getattr-os", "import os\ngetattr(os, 'sys' + 'tem')(cmd)", {("PS201", 2)}),
    ("getattribute-os", "import os\nos.__getattribute__('system')(cmd)", {("PS201", 2)}),
    (
        "import-module-folded",
        "import importlib\nimportlib.import_module('o' + 's').system(c)",
        {("PS105", 2), ("PS201", 2)},
    ),
    (
        "subclasses-filter",
        "[c for c in ().__class__.__base__.__subclasses__()\n if c.__name__ == 'Popen']",
        {("PS501", 1), ("PS504", 1)},
    ),
    ("eval-dunder-call", "eval.__call__('1')", {("PS101", 1)}),
    ("globals-imported-name", "from os import system\nglobals()['system']('x')", {("PS201", 2)}),
    ("run-alias", "import os\nrun = os.system\nrun(cmd)", {("PS201", 2), ("PS201", 3)}),
    ("walrus-system", "import os\n(run := os.system)('id')", {("PS201", 2)}),
    (
        "methodcaller",
        "import operator, os\noperator.methodcaller('system', 'id')(os)",
        {("PS201", 2)},
    ),
    (
        "partial-system",
        "import functools, os\nf = functools.partial(os.system, 'id')",
        {("PS201", 2)},
    ),
    ("getoutput", "import subprocess\nsubprocess.getoutput(cmd)", {("PS201", 2)}),
    ("getstatusoutput", "from subprocess import *\ngetstatusoutput(cmd)", {("PS201", 2)}),
    ("commands-module", "import commands\ncommands.getoutput(cmd)", {("PS201", 2)}),
    (
        "asyncio-shell",
        "import asyncio\nasync def f():\n    await asyncio.create_subprocess_shell(cmd)",
        {("PS201", 3)},
    ),
    (
        "loop-subprocess-shell",
        "async def f(loop):\n    await loop.subprocess_shell(P, cmd)",
        {("PS201", 2)},
    ),
    (
        "try-import-alias",
        "try:\n    from os import popen as run\nexcept ImportError:\n    run = None\nrun(cmd)",
        {("PS201", 5)},
    ),
    (
        "conditional-module",
        "import sys\nif sys.platform == 'win32':\n    import nt as osmod\n"
        "else:\n    import posix as osmod\nosmod.system(cmd)",
        {("PS201", 6)},
    ),
    ("imported-in-function", "def f():\n    import os\n    os.system(cmd)", {("PS201", 3)}),
    # PS202 shell=True
    ("popen-shell", "import subprocess\nsubprocess.Popen('make', shell=True)", {("PS202", 2)}),
    ("run-shell-1", "import subprocess as sp\nsp.run(cmd, shell=1)", {("PS202", 2)}),
    (
        "shell-kwargs",
        "import subprocess\nopts = {'shell': True}\nsubprocess.run(c, **opts)",
        {("PS202", 3)},
    ),
    (
        "shell-kwargs-dict-call",
        "import subprocess\nsubprocess.call(c, **dict(shell=True))",
        {("PS202", 2)},
    ),
    (
        "shell-kwargs-literal",
        "import subprocess\nsubprocess.call(c, **{'shell': True})",
        {("PS202", 2)},
    ),
    (
        "shell-kwargs-stored",
        "import subprocess\nkw = {}\nkw['shell'] = True\nsubprocess.check_call(c, **kw)",
        {("PS202", 4)},
    ),
    (
        "shell-name-constant",
        "import subprocess\nUSE = True\nsubprocess.check_output(c, shell=USE)",
        {("PS202", 3)},
    ),
    ("shell-star-import", "from subprocess import *\nPopen(c, shell=True)", {("PS202", 2)}),
    (
        "shell-partial",
        "import subprocess\nfrom functools import partial\n"
        "sh = partial(subprocess.run, shell=True)\nsh('ls')",
        {("PS202", 3), ("PS202", 4)},
    ),
    (
        "shell-dunder-import",
        "getattr(__import__('subprocess'), 'call')('ls', shell=True)",
        {("PS105", 1), ("PS202", 1)},
    ),
    (
        "shell-positional",
        "import subprocess\nsubprocess.Popen(c, -1, None, None, None, None, None, True, True)",
        {("PS202", 2)},
    ),
    # PS203 shell -c argv
    ("sh-c", "import subprocess\nsubprocess.run(['sh', '-c', cmd])", {("PS203", 2)}),
    ("bin-bash-lc", "import subprocess\nsubprocess.run(['/bin/bash', '-lc', cmd])", {("PS203", 2)}),
    (
        "env-zsh",
        "import subprocess\nsubprocess.call(['/usr/bin/env', 'zsh', '-c', c])",
        {("PS203", 2)},
    ),
    (
        "argv-variable",
        "import subprocess\nargv = ['bash', '-c', cmd]\nsubprocess.Popen(argv)",
        {("PS203", 3)},
    ),
    (
        "python-c",
        "import subprocess, sys\nsubprocess.run([sys.executable, '-c', code])",
        {("PS203", 2)},
    ),
    ("cmd-c", "import subprocess\nsubprocess.run(['cmd.exe', '/c', cmd])", {("PS203", 2)}),
    (
        "create-exec-sh",
        "import asyncio\nasync def f():\n    await asyncio.create_subprocess_exec('sh', '-c', cmd)",
        {("PS203", 3)},
    ),
    ("execl-sh-c", "import os\nos.execl('/bin/sh', 'sh', '-c', cmd)", {("PS203", 2)}),
    ("execv-sh-c", "import os\nos.execv('/bin/sh', ['sh', '-c', cmd])", {("PS203", 2)}),
    # PS204 exec / spawn
    ("execl", "import os\nos.execl('/bin/ls', 'ls')", {("PS204", 2)}),
    ("execvpe", "from os import execvpe\nexecvpe('ls', ['ls'], env)", {("PS204", 2)}),
    ("spawnlp", "import os\nos.spawnlp(os.P_WAIT, 'ls', 'ls')", {("PS204", 2)}),
    ("posix-spawn", "import os\nos.posix_spawn('/bin/ls', ['ls'], {})", {("PS204", 2)}),
    ("posix-spawnp-sh", "import os\nos.posix_spawnp('sh', ['sh', '-c', c], {})", {("PS203", 2)}),
    ("pty-spawn", "import pty\npty.spawn('/bin/bash')", {("PS204", 2)}),
    ("startfile", "import os\nos.startfile(path)", {("PS204", 2)}),
    (
        "getattr-execl",
        "import os\nfn = getattr(os, 'exec' + 'l')\nfn('/bin/sh', 'sh')",
        {("PS204", 2), ("PS204", 3)},
    ),
    # PS205 plain subprocess (warning)
    (
        "subprocess-run",
        "import subprocess\nsubprocess.run(['ls', path], check=True)",
        {("PS205", 2)},
    ),
    (
        "subprocess-shell-false",
        "import subprocess\nsubprocess.run(argv, shell=False)",
        {("PS205", 2)},
    ),
    (
        "subprocess-shell-unknown",
        "import subprocess\nsubprocess.run(c, shell=flag)",
        {("PS205", 2)},
    ),
    (
        "create-exec",
        "import asyncio\nasync def f():\n    await asyncio.create_subprocess_exec('ls', d)",
        {("PS205", 3)},
    ),
    ("os-fork", "import os\npid = os.fork()", {("PS205", 2)}),
    # PS301 deserialisation
    ("pickle-loads", "import pickle\npickle.loads(b)", {("PS301", 2)}),
    (
        "pickle-alias-load",
        "import pickle as p\nwith open('f', 'rb') as f:\n    p.load(f)",
        {("PS301", 3)},
    ),
    ("private-pickle", "import _pickle\n_pickle.loads(b)", {("PS301", 2)}),
    ("cpickle", "import cPickle\ncPickle.load(f)", {("PS301", 2)}),
    ("unpickler", "from pickle import Unpickler\nUnpickler(f).load()", {("PS301", 2)}),
    ("unpickler-subclass", "import pickle\nclass U(pickle.Unpickler):\n    pass", {("PS301", 2)}),
    ("dill", "import dill\ndill.loads(b)", {("PS301", 2)}),
    ("shelve", "import shelve\ndb = shelve.open('db')", {("PS301", 2)}),
    ("marshal", "import marshal\ncode = marshal.loads(b)", {("PS301", 2)}),
    ("jsonpickle", "import jsonpickle\njsonpickle.decode(s)", {("PS301", 2)}),
    ("pandas-read-pickle", "import pandas as pd\ndf = pd.read_pickle('x.pkl')", {("PS301", 2)}),
    (
        "numpy-allow-pickle",
        "import numpy as np\nnp.load('a.npy', allow_pickle=True)",
        {("PS301", 2)},
    ),
    ("torch-weights-false", "import torch\ntorch.load(f, weights_only=False)", {("PS301", 2)}),
    ("pickle-loads-as-value", "import pickle\ndecoders = {'pickle': pickle.loads}", {("PS301", 2)}),
    (
        "try-cpickle",
        "try:\n    import cPickle as pickle\nexcept ImportError:\n"
        "    import pickle\npickle.load(f)",
        {("PS301", 5)},
    ),
    # PS302 yaml
    ("yaml-load-no-loader", "import yaml\nyaml.load(f)", {("PS302", 2)}),
    ("yaml-load-loader", "import yaml\nyaml.load(f, Loader=yaml.Loader)", {("PS302", 2)}),
    ("yaml-load-full-loader", "import yaml\nyaml.load(f, yaml.FullLoader)", {("PS302", 2)}),
    (
        "yaml-load-unsafe-loader",
        "from yaml import load, UnsafeLoader\nload(f, UnsafeLoader)",
        {("PS302", 2)},
    ),
    (
        "yaml-load-unknown-loader",
        "import yaml\ndef f(s, L):\n    return yaml.load(s, Loader=L)",
        {("PS302", 3)},
    ),
    ("yaml-unsafe-load", "import yaml\nyaml.unsafe_load(s)", {("PS302", 2)}),
    ("yaml-full-load", "import yaml\nyaml.full_load(s)", {("PS302", 2)}),
    ("yaml-load-all", "import yaml\nlist(yaml.load_all(s))", {("PS302", 2)}),
    ("ruamel-unsafe", "from ruamel.yaml import YAML\nYAML(typ='unsafe').load(s)", {("PS302", 2)}),
    # PS401 / PS402 native code
    ("import-ctypes", "import ctypes", {("PS401", 1)}),
    ("from-ctypes", "from ctypes import c_int", {("PS401", 1)}),
    ("import-cffi", "import cffi", {("PS401", 1)}),
    (
        "ctypes-cdll",
        "import ctypes\nlibc = ctypes.CDLL('libc.so.6')\nlibc.system(b'id')",
        {("PS401", 1), ("PS402", 2)},
    ),
    ("ctypes-star", "from ctypes import *\ncdll.LoadLibrary('x')", {("PS401", 1), ("PS402", 2)}),
    (
        "ctypes-pythonapi",
        "import ctypes\nctypes.pythonapi.PyRun_SimpleString(b'1')",
        {("PS401", 1), ("PS402", 2)},
    ),
    ("ctypes-memmove", "import ctypes as c\nc.memmove(a, b, 8)", {("PS401", 1), ("PS402", 2)}),
    (
        "ctypes-dynamic",
        "ct = __import__('ctypes')\nct.CDLL(None)",
        {("PS105", 1), ("PS401", 1), ("PS402", 2)},
    ),
    ("cffi-ffi", "from cffi import FFI\nffi = FFI()", {("PS401", 1), ("PS402", 2)}),
    # PS5xx introspection escapes
    ("object-subclasses", "for c in object.__subclasses__():\n    pass", {("PS501", 1)}),
    ("tuple-walk", "().__class__.__base__.__subclasses__()", {("PS504", 1), ("PS501", 1)}),
    ("str-mro-walk", "''.__class__.__mro__[1].__subclasses__()", {("PS504", 1), ("PS501", 1)}),
    ("list-bases-walk", "x = [].__class__.__bases__[0]", {("PS504", 1)}),
    ("type-walk", "type(()).__base__", {("PS504", 1)}),
    ("walk-through-variable", "c = ''.__class__\nc.__mro__[1]", {("PS504", 2)}),
    ("getattr-walk", "getattr(getattr((), '__class__'), '__base__')", {("PS504", 1)}),
    ("object-bases", "object.__bases__", {("PS504", 1)}),
    ("func-globals", "def f(): pass\ng = f.__globals__", {("PS502", 2)}),
    ("getattr-globals", "g = getattr(f, '__glob' + 'als__')", {("PS502", 1)}),
    ("frame-globals", "import sys\nsys._getframe(1).f_globals['x']", {("PS502", 2)}),
    ("func-builtins", "b = f.__builtins__", {("PS502", 1)}),
    ("code-swap", "def a(): return 1\ndef b(): return 2\na.__code__ = b.__code__", {("PS503", 3)}),
    ("setattr-code", "setattr(f, '__code__', g.__code__)", {("PS503", 1)}),
    # PS6xx leftovers
    ("logging-listen", "import logging.config\nt = logging.config.listen(9999)", {("PS601", 2)}),
    ("logging-listen-from", "from logging.config import listen\nlisten(9030)", {("PS601", 2)}),
    ("logging-listen-alias", "import logging.config as lc\nlc.listen()", {("PS601", 2)}),
    ("breakpoint", "def f():\n    breakpoint()", {("PS602", 2)}),
    ("pdb-set-trace", "import pdb; pdb.set_trace()", {("PS602", 1), ("PS603", 1)}),
    ("pdb-from", "from pdb import set_trace as st\nst()", {("PS602", 2), ("PS603", 1)}),
    ("ipdb", "import ipdb\nipdb.set_trace()", {("PS602", 2), ("PS603", 1)}),
    ("import-pdb-alone", "import pdb", {("PS603", 1)}),
    (
        "conditional-pdb",
        "if DEBUG:\n    import pdb\n    pdb.post_mortem()",
        {("PS602", 3), ("PS603", 2)},
    ),
    (
        "dunder-import-pdb",
        "__import__('pdb').set_trace()",
        {("PS105", 1), ("PS602", 1), ("PS603", 1)},
    ),
    ("debugpy-listen", "import debugpy\ndebugpy.listen(5678)", {("PS602", 2), ("PS603", 1)}),
]


@pytest.mark.parametrize(
    ("snippet", "expected"), [(c, e) for _, c, e in DANGEROUS], ids=[i for i, _, _ in DANGEROUS]
)
def test_dangerous(snippet: str, expected: set[tuple[str, int]]) -> None:
    assert codes(snippet) == expected


# -- negative cases: none of these may give any finding -----------------------------------

BENIGN: list[tuple[str, str]] = [
    ("model-eval", "model.eval()\nmodel.train()"),
    ("df-eval", "import pandas as pd\ndf = pd.DataFrame()\ndf.eval('a + b')"),
    ("self-eval", "class M:\n    def eval(self):\n        return self.eval()"),
    ("re-compile", "import re\nP = re.compile(r'\\w+')"),
    ("re-compile-from", "from re import compile\nP = compile('x')"),
    ("re-compile-alias", "import re\nc = re.compile\nc('x')"),
    ("literal-eval", "import ast\nast.literal_eval('[1]')"),
    ("literal-eval-from", "from ast import literal_eval\nliteral_eval('1')"),
    ("ast-parse", "import ast\nast.parse(src)"),
    ("compile-only-ast", "import ast\ncompile(src, 'f', 'exec', ast.PyCF_ONLY_AST)"),
    (
        "compile-only-ast-flags",
        "import ast\ncompile(src, 'f', 'exec', flags=ast.PyCF_ONLY_AST | 2)",
    ),
    ("compile-only-ast-int", "compile(src, 'f', 'exec', 1024)"),
    ("yaml-safe-load", "import yaml\nyaml.safe_load(f)"),
    ("yaml-safe-loader", "import yaml\nyaml.load(f, Loader=yaml.SafeLoader)"),
    ("yaml-csafe-loader-pos", "import yaml\nyaml.load(f, yaml.CSafeLoader)"),
    ("yaml-base-loader", "from yaml import load, BaseLoader\nload(f, Loader=BaseLoader)"),
    (
        "yaml-loader-alias",
        "try:\n    from yaml import CSafeLoader as L\nexcept ImportError:\n"
        "    from yaml import SafeLoader as L\nimport yaml\n"
        "yaml.load(f, Loader=L)",
    ),
    (
        "yaml-loader-subclass",
        "import yaml\nclass My(yaml.SafeLoader):\n    pass\nyaml.load(f, Loader=My)",
    ),
    ("yaml-add-constructor", "import yaml\nyaml.add_constructor('!x', c, Loader=yaml.Loader)"),
    ("json-load", "import json\nwith open('d.json') as f:\n    data = json.load(f)"),
    ("json-loads", "import json as j\nj.loads(s)"),
    ("own-exec-function", "def exec(cmd):\n    return cmd\nexec('x')"),
    ("own-eval-param", "def f(eval):\n    return eval(1)"),
    ("own-system", "def system():\n    return 'linux'\nprint(system())"),
    ("shadow-import", "from os import system\ndef system():\n    return 1\nsystem()"),
    (
        "own-system-method",
        "class Host:\n    def system(self, c):\n        return c\nHost().system('x')",
    ),
    ("local-shadows-module", "import os\ndef f(os):\n    os.system('x')"),
    ("comprehension-shadow", "[exec(1) for exec in handlers]"),
    ("lambda-param-shadow", "f = lambda eval: eval(1)"),
    ("class-attr-exec", "class A:\n    exec = None\n    def f(self):\n        return self.exec"),
    ("import-as-shadow", "from mylib import run as exec\nexec('x')"),
    (
        "words-in-strings",
        "A = \"os.system('make')\"\nB = 'eval(x) exec(y) shell=True'\nC = f\"pickle.loads {x}\"",
    ),
    (
        "docstring",
        'def f():\n    """Calls eval() and os.system(); never pickle.loads."""\n    return 1',
    ),
    ("comment", "x = 1  # eval(x); os.system('rm'); import pdb"),
    ("getattr-ordinary", "class S:\n    debug = False\nflag = getattr(S, 'debug', False)"),
    ("getattr-ordinary-computed", "value = getattr(obj, name)"),
    ("getattr-exec-attr", "h = getattr(handler, 'exec')"),
    ("dict-keys", "modes = {'exec': 1, 'eval': 2}\nmodes['exec']\nmodes.get('eval')"),
    ("dict-get-exec", "d = {}\nd.get('exec')\nd['eval'] = 3"),
    (
        "pathlib-shutil",
        "import shutil\nfrom pathlib import Path\nshutil.copy(Path('a'), Path('b'))",
    ),
    ("tempfile", "import tempfile\nwith tempfile.TemporaryDirectory() as d:\n    pass"),
    ("os-path", "import os\np = os.path.join('a', 'b')\nos.makedirs(p, exist_ok=True)"),
    ("os-environ", "import os\nhome = os.environ.get('HOME')"),
    ("shlex", "import shlex\nshlex.quote(s)"),
    ("pickle-dumps", "import pickle\nb = pickle.dumps(obj)"),
    ("numpy-load-plain", "import numpy as np\nnp.load('a.npy')"),
    ("torch-weights-only", "import torch\ntorch.load(f, weights_only=True)"),
    ("isinstance-function-type", "import types\nisinstance(f, types.FunctionType)"),
    ("timeit-callable", "import timeit\ntimeit.timeit(lambda: sum(range(9)), number=10)"),
    ("timeit-function", "import timeit\ndef work():\n    pass\ntimeit.timeit(work)"),
    ("importlib-plain", "import importlib\nm = importlib.import_module('json')"),
    ("dunder-import-benign", "__import__('pkg_resources').declare_namespace(__name__)"),
    ("importlib-reload", "import importlib, json\nimportlib.reload(json)"),
    ("mro-on-class", "class A:\n    pass\nfor k in A.__mro__:\n    print(k.__name__)"),
    ("self-class-name", "class A:\n    def n(self):\n        return self.__class__.__name__"),
    ("type-of-object", "t = type(obj).__name__"),
    ("logging-config", "import logging.config\nlogging.config.dictConfig({'version': 1})"),
    ("logging", "import logging\nlog = logging.getLogger(__name__)\nlog.info('eval done')"),
    ("pdb-in-string", "HELP = 'import pdb; pdb.set_trace()'"),
    ("set-trace-method", "tracer.set_trace()"),
    ("hashlib", "import hashlib\nhashlib.sha256(b'x').hexdigest()"),
    ("asyncio-plain", "import asyncio\nasync def f():\n    await asyncio.sleep(1)"),
    ("subprocess-constants", "import subprocess\nPIPE = subprocess.PIPE"),
    ("exec-attribute", "runner.exec(code)\nconn.execute('select 1')"),
    ("system-attribute", "platform_info.system()\nimport platform\nplatform.system()"),
    ("from-future", "from __future__ import annotations"),
    ("annotations", "def f(x: int, *a: str, **k: bytes) -> list[int]:\n    return [x]"),
    (
        "match",
        "match cmd:\n    case {'exec': x}:\n        pass\n    case [eval, *rest]:\n"
        "        eval(rest)",
    ),
    ("try-star", "try:\n    pass\nexcept* ValueError as e:\n    pass"),
    ("fstring-format-spec", "x = f'{value:>10}'"),
    ("huge-format-not-folded", "s = '%999999999s' % 'x'"),
]


@pytest.mark.parametrize("snippet", [c for _, c in BENIGN], ids=[i for i, _ in BENIGN])
def test_benign(snippet: str) -> None:
    assert check(snippet) == []


# -- shape of findings --------------------------------------------------------------------


def test_finding_fields_and_columns() -> None:
    (finding,) = check("import os\n\nx = 1; os.system(cmd)\n")
    assert (finding.path, finding.line, finding.col, finding.code) == ("x.py", 3, 8, "PS201")
    assert finding.severity == "error"
    assert "`os.system`" in finding.message
    assert "subprocess.run" in finding.message  # says what to use instead


def test_message_names_the_alias() -> None:
    (finding,) = check("from os import system as run_it\nrun_it('x')")
    assert "`os.system` (via `run_it`)" in finding.message


def test_value_message_says_passed_around() -> None:
    (finding,) = check("import os\nfs = [os.execv]")
    assert finding.code == "PS204"
    assert "passed around as a value" in finding.message


def test_one_finding_per_rule_and_line() -> None:
    assert len(check("import os\n(run := os.system)('id')")) == 1


def test_severities() -> None:
    severities = {
        f.code: f.severity
        for f in check(
            "import subprocess, ctypes, os\nsubprocess.run(['ls', d])\nos.system('x')\n"
            "__import__(name)\ngetattr(os, name)"
        )
    }
    assert severities == {
        "PS205": "warning",
        "PS401": "warning",
        "PS201": "error",
        "PS106": "warning",
        "PS108": "warning",
    }


def test_syntax_error_propagates() -> None:
    with pytest.raises(SyntaxError):
        check("def f(:\n")


def test_findings_are_deterministic() -> None:
    code = "import os, pickle\nos.system(a)\npickle.loads(b)\ndef f():\n    eval(c)\n"
    assert check(code) == check(code)


# -- procedure mode -----------------------------------------------------------------------


def test_procedure_allows_default_modules() -> None:
    code = """\
        from __future__ import annotations
        import json, math, re, datetime, collections.abc, itertools, functools
        import dataclasses, typing, decimal, fractions, statistics, string, textwrap
        import enum, uuid, hashlib, base64, logging, random, time, zoneinfo, copy
        import operator, heapq, bisect, csv, io
        from collections import Counter
        from urllib.parse import urlparse

        def run(**params):
            return json.dumps(params)
        """
    assert check(code, "procedure") == []


@pytest.mark.parametrize(
    ("snippet", "expected", "hint"),
    [
        ("import requests", {("PS901", 1)}, "network"),
        ("import urllib.request", {("PS901", 1)}, "network"),
        ("from http import client", {("PS901", 1)}, "network"),
        ("import socket", {("PS901", 1)}, "network"),
        ("import subprocess", {("PS901", 1)}, "subprocess"),
        ("import shlex", {("PS901", 1)}, "subprocess"),
        ("import pathlib", {("PS901", 1)}, "filesystem_write"),
        ("from os import path", {("PS901", 1)}, "filesystem_write"),
        ("import shutil", {("PS901", 1)}, "filesystem_write"),
        ("import tempfile", {("PS901", 1)}, "filesystem_write"),
        ("import numpy as np", {("PS901", 1)}, "extra-allowed-imports"),
        ("import os", {("PS901", 1)}, "extra-allowed-imports"),
        ("from os import getcwd", {("PS901", 1)}, "extra-allowed-imports"),
        (
            "def run():\n    import sys\n    return sys.argv",
            {("PS901", 2)},
            "extra-allowed-imports",
        ),
        (
            "try:\n    import yaml\nexcept ImportError:\n    yaml = None",
            {("PS901", 2)},
            "extra-allowed-imports",
        ),
        ("from . import helpers", {("PS901", 1)}, "single module"),
        ("m = __import__('requests')", {("PS901", 1)}, "network"),
        (
            "import importlib\nm = importlib.import_module('json')",
            {("PS901", 1)},
            "extra-allowed-imports",
        ),
    ],
)
def test_procedure_disallowed_import(
    snippet: str, expected: set[tuple[str, int]], hint: str
) -> None:
    findings = check(snippet, "procedure")
    assert {(f.code, f.line) for f in findings} == expected
    assert all(f.severity == "error" for f in findings)
    assert hint in findings[0].message


def test_procedure_message_names_module_and_capability() -> None:
    (finding,) = check("import requests", "procedure")
    assert "`requests`" in finding.message
    assert "capabilities.network" in finding.message


def test_procedure_flags_still_apply_generic_rules() -> None:
    assert codes("import os\nos.system('x')", "procedure") == {("PS901", 1), ("PS201", 2)}
    assert codes("eval('1')", "procedure") == {("PS101", 1)}


def test_procedure_computed_import() -> None:
    assert codes("m = __import__(name)", "procedure") == {("PS902", 1)}
    assert codes("m = __import__(name)", "generic") == {("PS106", 1)}


@pytest.mark.parametrize(
    ("capabilities", "snippet"),
    [
        (Capabilities(network=True), "import requests\nimport urllib.request\nimport ssl"),
        (Capabilities(network=True), "import httpx\nfrom http.client import HTTPSConnection"),
        (Capabilities(subprocess=True), "import subprocess, shlex"),
        (
            Capabilities(filesystem_write=("out/",)),
            "import pathlib, shutil, tempfile\nfrom os import path\nimport os.path",
        ),
    ],
)
def test_capabilities_unlock_groups(capabilities: Capabilities, snippet: str) -> None:
    assert check(snippet, "procedure", capabilities=capabilities) == []


def test_capability_does_not_unlock_other_groups() -> None:
    assert codes("import subprocess", "procedure", capabilities=Capabilities(network=True)) == {
        ("PS901", 1)
    }


def test_subprocess_capability_keeps_process_rules() -> None:
    code = "import subprocess\nsubprocess.run('x', shell=True)"
    assert codes(code, "procedure", capabilities=Capabilities(subprocess=True)) == {("PS202", 2)}


def test_settings_extend_allowlist() -> None:
    settings = CheckSettings(tables={"safety": {"extra-allowed-imports": ["numpy", "pandas.io"]}})
    assert (
        check("import numpy\nimport pandas.io.json\nimport json", "procedure", settings=settings)
        == []
    )
    assert codes("import pandas", "procedure", settings=settings) == {("PS901", 1)}


def test_settings_replace_allowlist() -> None:
    settings = CheckSettings(tables={"safety": {"allowed-imports": ["math"]}})
    assert check("import math", "procedure", settings=settings) == []
    assert codes("import json", "procedure", settings=settings) == {("PS901", 1)}


def test_settings_replace_and_extend() -> None:
    settings = CheckSettings(
        tables={"safety": {"allowed-imports": ["math"], "extra-allowed-imports": ["json"]}}
    )
    assert check("import math, json", "procedure", settings=settings) == []
    assert codes("import re", "procedure", settings=settings) == {("PS901", 1)}


def test_settings_none_uses_defaults() -> None:
    assert check("import json", "procedure", settings=None) == []


def test_generic_mode_has_no_allowlist() -> None:
    assert check("import requests, numpy, pathlib, shutil") == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("open('out.txt', 'w')", {("PS903", 1)}),
        ("open('out.txt', mode='a')", {("PS903", 1)}),
        ("open(p, 'r+b')", {("PS903", 1)}),
        ("import io\nio.open(p, 'wb')", {("PS903", 2)}),
        ("open(p, mode)", {("PS903", 1)}),
        ("open('in.txt')", set()),
        ("open('in.txt', 'rb')", set()),
    ],
)
def test_procedure_file_writes(snippet: str, expected: set[tuple[str, int]]) -> None:
    assert codes(snippet, "procedure") == expected
    assert (
        codes(snippet, "procedure", capabilities=Capabilities(filesystem_write=("out/",))) == set()
    )
    assert codes(snippet.replace("import io\n", ""), "generic") == set() or "io.open" in snippet


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("class A:\n    pass\nA.__mro__", {("PS505", 3)}),
        ("def f(): pass\nf.__code__", {("PS505", 2)}),
        ("def f(): pass\nf.__closure__", {("PS505", 2)}),
        ("class A: pass\nA.__bases__", {("PS505", 2)}),
        ("m.__self__", {("PS505", 1)}),
        ("().__class__.__base__", {("PS504", 1)}),
    ],
)
def test_procedure_introspection(snippet: str, expected: set[tuple[str, int]]) -> None:
    assert codes(snippet, "procedure") == expected
    assert codes(snippet, "generic") == {e for e in expected if e[0] != "PS505"}


# -- rules, registration, import cost -----------------------------------------------------


def test_rule_codes_are_stable_and_unique() -> None:
    all_codes = [r.code for r in RULES]
    assert len(all_codes) == len(set(all_codes))
    for rule in RULES:
        assert re.fullmatch(r"PS[1-9]\d\d", rule.code), rule.code
        assert rule.severity in ("error", "warning")
        assert rule.summary and rule.fix and rule.name
    assert SafetyValidator.rules is RULES
    assert SafetyValidator.name == "safety"


def test_every_rule_has_a_positive_case() -> None:
    from test_safety_families import EVASIONS, FAMILIES, REAL_CODE_STILL_FLAGGED

    covered = {code for _, _, expected in DANGEROUS for code, _ in expected}
    covered |= {
        code
        for _, _, expected in FAMILIES + EVASIONS + REAL_CODE_STILL_FLAGGED
        for code, _ in expected
    }
    covered |= {"PS505", "PS901", "PS902", "PS903"}  # procedure-mode tests above
    assert covered == {r.code for r in RULES}


def test_registers_through_the_hook() -> None:
    import pluggy

    from proctor.core import hookspecs
    from proctor.plugins import safety

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(safety, name="safety")
    registered: list[object] = []
    pm.hook.proctor_register_validators(register=registered.append)
    assert [type(v) for v in registered] == [SafetyValidator]


def test_import_is_light() -> None:
    script = (
        "import sys, proctor.plugins.safety\n"
        "heavy = {'pydantic', 'git', 'click', 'rich', 'tenacity'} & set(sys.modules)\n"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"


def test_python_312_syntax_is_tolerated() -> None:
    if sys.version_info < (3, 12):
        pytest.skip("type statements need Python 3.12")
    assert check("type Alias = list[int]\ndef f[T](x: T) -> T:\n    return x") == []
