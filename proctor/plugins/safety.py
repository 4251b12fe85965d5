"""The built-in code-safety validator (``safety``, rule codes ``PS``).

It looks for code that can run other code, start processes, unpickle data, load native
libraries or climb out of Python's object model, and, for procedures (code an LLM may
have written), for imports outside an allowlist. Matching by spelling is what makes other
checkers easy to evade (``getattr(os, "sys" + "tem")``, ``__import__("os").system``,
``run = os.system``), so every expression goes through :mod:`proctor.checks.resolve`, which
follows imports, aliases, assignments, ``getattr`` with folded constant names,
``sys.modules``, ``vars()``/``__dict__``/``globals()`` look-ups, ``partial`` and
``methodcaller``, and knows when a name is the user's own and not the builtin.

Families (see ``docs/checks-safety.md``): PS1xx dynamic code, PS2xx process execution,
PS3xx deserialisation, PS4xx native code, PS5xx introspection escapes, PS6xx leftovers
(``logging.config.listen``, debuggers), PS9xx procedure-mode imports and capabilities.

Severity: ``error`` when the code can run arbitrary code or commands as written;
``warning`` for weaker signals that are fine when reviewed (a subprocess with a fixed
argument list, importing ``ctypes``, an import by computed name, ``getattr`` on ``os``
with a computed name).

Standard library only, and nothing heavy at import: this runs on the pre-commit path.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from proctor.checks.resolve import (
    ABSENT,
    CallArgs,
    LocalClass,
    MapValue,
    Qual,
    Resolver,
    SeqValue,
    canonical_module,
    const_value,
    is_const,
)
from proctor.checks.validation import CheckContext, Finding, Rule, SourceFile, Validator
from proctor.core.hookspecs import hookimpl

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings
    from proctor.core.config import Table

__all__ = [
    "CAPABILITY_MODULES",
    "DEFAULT_ALLOWED_IMPORTS",
    "RULES",
    "SafetyValidator",
    "proctor_register_validators",
]

RULES: tuple[Rule, ...] = (
    # -- PS1xx dynamic code -------------------------------------------------------------
    Rule(
        "PS101",
        "eval-exec",
        "error",
        "eval() and exec() run arbitrary Python built from strings, whatever name or "
        "container they are reached through.",
        "Parse data with json or ast.literal_eval; dispatch on names with a dict of functions.",
    ),
    Rule(
        "PS102",
        "compile-code",
        "error",
        "compile() in 'exec', 'eval' or 'single' mode builds a code object that is only "
        "useful to run.",
        "Use ast.parse (or compile with ast.PyCF_ONLY_AST) to inspect code; "
        "ast.literal_eval for literals.",
    ),
    Rule(
        "PS103",
        "timeit-string",
        "error",
        "timeit runs its stmt and setup strings with exec.",
        "Pass a callable: timeit.timeit(lambda: f(x), number=...).",
    ),
    Rule(
        "PS104",
        "code-runner",
        "error",
        "Runs code from a file or string: code.interact/InteractiveConsole, runpy, "
        "importlib file loaders (SourceFileLoader, spec_from_file_location), "
        "imp.load_source, cProfile.run/profile.run.",
        "Import modules with an import statement and call their functions.",
    ),
    Rule(
        "PS105",
        "hidden-import",
        "error",
        "__import__/importlib with a constant name of a sensitive module (os, sys, "
        "subprocess, builtins, pickle, ctypes...) hides the import from review and tools.",
        "Write a plain import statement.",
    ),
    Rule(
        "PS106",
        "computed-import",
        "warning",
        "An import by computed name (__import__(x), importlib.import_module(x)) can load "
        "any module.",
        "Map the allowed names to modules explicitly, or validate the name against a fixed "
        "set first.",
    ),
    Rule(
        "PS107",
        "code-object-function",
        "error",
        "types.FunctionType/CodeType/LambdaType calls build functions from code objects, "
        "a way to run code that never appears as source.",
        "Define functions with def; pass callables around instead of code objects.",
    ),
    Rule(
        "PS108",
        "dynamic-attribute-of-sensitive-module",
        "warning",
        "getattr() with a computed name on os, subprocess, builtins, sys, importlib, "
        "pickle or ctypes can reach any function in them.",
        "Call the function you need by name, or look it up in a dict of allowed functions.",
    ),
    # -- PS2xx process execution --------------------------------------------------------
    Rule(
        "PS201",
        "shell-command",
        "error",
        "Runs a command line through the shell (os.system, os.popen, subprocess.getoutput/"
        "getstatusoutput, asyncio.create_subprocess_shell, loop.subprocess_shell, "
        "commands.*): any unquoted input becomes shell code.",
        "Use subprocess.run([...argv...], shell=False, check=True) with an argument list.",
    ),
    Rule(
        "PS202",
        "subprocess-shell-true",
        "error",
        "A subprocess call with shell=True (also through **kwargs or functools.partial) "
        "passes the command to /bin/sh.",
        "Pass an argument list with shell=False; use shlex.split only on fixed strings.",
    ),
    Rule(
        "PS203",
        "shell-c-argv",
        "error",
        "An argument list that starts a shell or interpreter with an inline command "
        "(['sh', '-c', cmd], ['bash', '-lc', ...], [python, '-c', code]) is shell=True or "
        "exec in disguise.",
        "Run the program itself with its arguments as a list.",
    ),
    Rule(
        "PS204",
        "exec-spawn",
        "error",
        "os.exec*/os.spawn*/os.posix_spawn*/pty.spawn/os.startfile start or replace "
        "programs directly, outside subprocess's safer defaults.",
        "Use subprocess.run([...], check=True) with a fixed argument list.",
    ),
    Rule(
        "PS205",
        "subprocess",
        "warning",
        "Starts a child process (subprocess without a shell, create_subprocess_exec, "
        "os.fork, pexpect): review that the program and arguments are not "
        "user-controlled.",
        "Keep argv a literal list with a fixed program; never build it from input.",
    ),
    # -- PS3xx deserialisation ----------------------------------------------------------
    Rule(
        "PS301",
        "unsafe-deserialisation",
        "error",
        "pickle/_pickle/cPickle/dill/cloudpickle/shelve/marshal/jsonpickle/joblib loads, "
        "pandas.read_pickle, numpy.load(allow_pickle=True) and torch.load(weights_only="
        "False) can run arbitrary code while loading.",
        "Store data as JSON (or another data-only format) and load it with json.load.",
    ),
    Rule(
        "PS302",
        "unsafe-yaml",
        "error",
        "yaml.load without a safe Loader, yaml.unsafe_load/full_load, UnsafeLoader and "
        "ruamel YAML(typ='unsafe') construct arbitrary Python objects.",
        "Use yaml.safe_load, or yaml.load(f, Loader=yaml.SafeLoader) (CSafeLoader, BaseLoader).",
    ),
    # -- PS4xx native code --------------------------------------------------------------
    Rule(
        "PS401",
        "native-import",
        "warning",
        "Imports ctypes or cffi: native code bypasses every Python-level safeguard.",
        "Use a reviewed extension module or a pure-Python alternative.",
    ),
    Rule(
        "PS402",
        "native-call",
        "error",
        "Loads a native library or touches raw memory (ctypes.CDLL/cdll/pythonapi/"
        "CFUNCTYPE/cast/memmove/string_at, cffi.FFI).",
        "Use a reviewed extension module or a pure-Python alternative.",
    ),
    # -- PS5xx introspection escapes ----------------------------------------------------
    Rule(
        "PS501",
        "subclasses-walk",
        "error",
        "__subclasses__() reaches every class loaded in the process (the classic sandbox "
        "escape, e.g. ().__class__.__base__.__subclasses__()).",
        "Refer to the classes you need by importing them.",
    ),
    Rule(
        "PS502",
        "globals-builtins-access",
        "error",
        "__globals__, __builtins__ and frame f_globals/f_builtins reach a module's "
        "namespace and the builtins (eval, exec, __import__) from any function or frame.",
        "Import what you need; do not reach through function or frame internals.",
    ),
    Rule(
        "PS503",
        "code-swap",
        "error",
        "Assigning __code__ replaces what a function runs without changing its name or source.",
        "Define a new function, or wrap it with a decorator.",
    ),
    Rule(
        "PS504",
        "literal-class-walk",
        "error",
        "Walking __class__/__base__/__bases__/__mro__ from a literal ((), '', []) is "
        "only ever a way to reach object and its subclasses.",
        "Refer to types by name.",
    ),
    Rule(
        "PS505",
        "procedure-introspection",
        "error",
        "Procedure code may not use introspection dunders (__mro__, __bases__, __base__, "
        "__code__, __closure__, __func__, __self__, __getattribute__, __reduce__...).",
        "Write plain code; procedures have no need to inspect interpreter internals.",
    ),
    # -- PS6xx leftovers ----------------------------------------------------------------
    Rule(
        "PS601",
        "logging-config-listen",
        "error",
        "logging.config.listen() accepts logging configuration over a socket, and "
        "configuration can name arbitrary callables to build.",
        "Load logging configuration from a trusted file with dictConfig at start-up.",
    ),
    Rule(
        "PS602",
        "debugger-call",
        "error",
        "A debugger entry point (breakpoint(), pdb.set_trace(), ipdb/pudb/remote_pdb/"
        "debugpy) was left in: it stops the program or opens a remote shell.",
        "Remove it before committing.",
    ),
    Rule(
        "PS603",
        "debugger-import",
        "error",
        "A debugger module (pdb, ipdb, pudb, remote_pdb, rpdb, web_pdb, debugpy, wdb) is "
        "imported: usually a leftover from debugging.",
        "Remove the import before committing.",
    ),
    # -- PS9xx procedure mode -----------------------------------------------------------
    Rule(
        "PS901",
        "import-not-allowed",
        "error",
        "Procedure code may import only allowlisted modules; capabilities unlock network, "
        "subprocess and filesystem-write modules.",
        "Declare the capability in the procedure's metadata, or add the module to "
        "[safety] extra-allowed-imports (allowed-imports replaces the default list).",
    ),
    Rule(
        "PS902",
        "procedure-computed-import",
        "error",
        "Procedure code imports a module by computed name, which cannot be checked "
        "against the allowlist.",
        "Write a plain import statement of an allowed module.",
    ),
    Rule(
        "PS903",
        "procedure-file-write",
        "error",
        "Procedure code opens a file for writing without the filesystem_write capability.",
        "Declare capabilities.filesystem_write with the paths it writes, or return the "
        "data instead of writing it.",
    ),
)

# Short reasons for finding messages, read after the subject ("`os.system` runs ...").
_REASONS: dict[str, str] = {
    "PS101": "runs arbitrary Python built from a string",
    "PS102": "builds a code object that is only useful to run",
    "PS103": "runs its stmt/setup string with exec",
    "PS104": "runs code from a file or string",
    "PS105": "hides the import of a sensitive module from review",
    "PS106": "can load any module",
    "PS107": "builds a function from a code object",
    "PS108": "can reach any function of the module",
    "PS201": "runs a command line through the shell, where unquoted input becomes code",
    "PS202": "passes the command to the shell, where unquoted input becomes code",
    "PS203": "is shell=True or exec in disguise",
    "PS204": "starts or replaces a program directly",
    "PS205": "starts a child process; make sure program and arguments are not user-controlled",
    "PS301": "can run arbitrary code while loading data",
    "PS302": "can construct arbitrary Python objects",
    "PS401": "brings in native code, which bypasses Python-level safeguards",
    "PS402": "loads native code or touches raw memory",
    "PS501": "reaches every class loaded in the process",
    "PS502": "reaches a module's globals or the builtins (eval, exec, __import__)",
    "PS503": "replaces what a function runs",
    "PS504": "is a walk towards object.__subclasses__()",
    "PS505": "inspects interpreter internals, which procedure code may not do",
    "PS601": "accepts logging configuration, which can name callables, over a socket",
    "PS602": "is a leftover debugger entry point",
    "PS603": "is a leftover debugger import",
    "PS901": "is not allowed in procedure code",
    "PS902": "cannot be checked against the procedure import allowlist",
    "PS903": "writes files without the filesystem_write capability",
}

# -- procedure-mode allowlist ------------------------------------------------------------

DEFAULT_ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "__future__",
        "abc",
        "array",
        "base64",
        "binascii",
        "bisect",
        "calendar",
        "cmath",
        "collections",
        "colorsys",
        "contextlib",
        "copy",
        "csv",
        "dataclasses",
        "datetime",
        "decimal",
        "difflib",
        "enum",
        "fractions",
        "functools",
        "graphlib",
        "hashlib",
        "heapq",
        "hmac",
        "html",
        "io",
        "ipaddress",
        "itertools",
        "json",
        "logging",
        "math",
        "numbers",
        "operator",
        "pprint",
        "random",
        "re",
        "secrets",
        "statistics",
        "string",
        "struct",
        "textwrap",
        "time",
        "typing",
        "typing_extensions",
        "unicodedata",
        "urllib.parse",
        "uuid",
        "warnings",
        "zoneinfo",
        "zlib",
    }
)

CAPABILITY_MODULES: dict[str, frozenset[str]] = {
    "network": frozenset(
        {
            "aiohttp",
            "asyncio",
            "email",
            "ftplib",
            "grpc",
            "http",
            "httpx",
            "imaplib",
            "mimetypes",
            "poplib",
            "requests",
            "select",
            "selectors",
            "smtplib",
            "socket",
            "socketserver",
            "ssl",
            "urllib",
            "urllib3",
            "websocket",
            "websockets",
            "xmlrpc",
        }
    ),
    "subprocess": frozenset({"multiprocessing", "shlex", "signal", "subprocess"}),
    "filesystem_write": frozenset(
        {
            "bz2",
            "filecmp",
            "fileinput",
            "glob",
            "gzip",
            "lzma",
            "os.path",
            "pathlib",
            "shutil",
            "sqlite3",
            "tarfile",
            "tempfile",
            "zipfile",
        }
    ),
}

# -- what the resolver watches -----------------------------------------------------------

# canonical name -> (code, kind). "always": flagged wherever it is reached, called or not;
# "uncalled": flagged when passed around as a value (calls are checked by _CALLS).
_REFS: dict[str, tuple[str, str]] = {}


def _refs(code: str, kind: str, *names: str) -> None:
    for name in names:
        _REFS[name] = (code, kind)


_refs("PS101", "always", "builtins.eval", "builtins.exec", "builtins.execfile")
_refs("PS102", "uncalled", "builtins.compile")
_refs(
    "PS104",
    "always",
    "code.interact",
    "code.InteractiveInterpreter",
    "code.InteractiveConsole",
    "runpy.run_path",
    "runpy.run_module",
    "runpy._run_module_as_main",
    "runpy._run_code",
    "runpy._run_module_code",
    "importlib.machinery.SourceFileLoader",
    "importlib.machinery.SourcelessFileLoader",
    "importlib.machinery.ExtensionFileLoader",
    "importlib.util.spec_from_file_location",
    "importlib._bootstrap_external.SourceFileLoader",
    "imp.load_source",
    "imp.load_compiled",
    "imp.load_dynamic",
    "imp.load_module",
    "imp.load_package",
    "cProfile.run",
    "cProfile.runctx",
    "profile.run",
    "profile.runctx",
)
_refs(
    "PS201",
    "always",
    "os.system",
    "os.popen",
    "os.popen2",
    "os.popen3",
    "os.popen4",
    "subprocess.getoutput",
    "subprocess.getstatusoutput",
    "commands.getoutput",
    "commands.getstatusoutput",
    "commands.getstatus",
    "popen2.popen2",
    "popen2.popen3",
    "popen2.popen4",
    "popen2.Popen3",
    "popen2.Popen4",
    "platform.popen",
    "asyncio.create_subprocess_shell",
    "asyncio.subprocess.create_subprocess_shell",
)
_OS_EXEC_L = ("execl", "execle", "execlp", "execlpe")
_OS_EXEC_V = ("execv", "execve", "execvp", "execvpe")
_OS_SPAWN_L = ("spawnl", "spawnle", "spawnlp", "spawnlpe")
_OS_SPAWN_V = ("spawnv", "spawnve", "spawnvp", "spawnvpe")
_refs(
    "PS204",
    "uncalled",
    *(f"os.{n}" for n in _OS_EXEC_L + _OS_EXEC_V + _OS_SPAWN_L + _OS_SPAWN_V),
    "os.posix_spawn",
    "os.posix_spawnp",
    "pty.spawn",
)
_refs("PS204", "always", "os.startfile")
_refs(
    "PS205",
    "always",
    "os.fork",
    "os.forkpty",
    "pty.fork",
    "pexpect.spawn",
    "pexpect.run",
    "pexpect.popen_spawn.PopenSpawn",
)
_refs(
    "PS301",
    "always",
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "pickle._load",
    "pickle._loads",
    "pickle._Unpickler",
    "dill.load",
    "dill.loads",
    "dill.Unpickler",
    "cloudpickle.load",
    "cloudpickle.loads",
    "shelve.open",
    "shelve.Shelf",
    "shelve.DbfilenameShelf",
    "shelve.BsdDbShelf",
    "marshal.load",
    "marshal.loads",
    "jsonpickle.decode",
    "jsonpickle.unpickler.decode",
    "pandas.read_pickle",
    "joblib.load",
)
_refs(
    "PS302",
    "always",
    "yaml.unsafe_load",
    "yaml.unsafe_load_all",
    "yaml.full_load",
    "yaml.full_load_all",
    "yaml.UnsafeLoader",
    "yaml.CUnsafeLoader",
)
_refs(
    "PS402",
    "always",
    "ctypes.CDLL",
    "ctypes.PyDLL",
    "ctypes.WinDLL",
    "ctypes.OleDLL",
    "ctypes.cdll",
    "ctypes.pydll",
    "ctypes.windll",
    "ctypes.oledll",
    "ctypes.pythonapi",
    "ctypes.LibraryLoader",
    "ctypes.CFUNCTYPE",
    "ctypes.PYFUNCTYPE",
    "ctypes.WINFUNCTYPE",
    "ctypes.cast",
    "ctypes.memmove",
    "ctypes.memset",
    "ctypes.string_at",
    "ctypes.wstring_at",
    "ctypes._dlopen",
    "_ctypes.dlopen",
    "_ctypes.LoadLibrary",
    "_ctypes.call_function",
    "_ctypes.call_cdeclfunction",
    "cffi.FFI",
)
_refs("PS601", "always", "logging.config.listen")
_refs(
    "PS602",
    "always",
    "builtins.breakpoint",
    "sys.breakpointhook",
    "pdb.set_trace",
    "pdb.post_mortem",
    "pdb.pm",
    "pdb.run",
    "pdb.runeval",
    "pdb.runcall",
    "pdb.runctx",
    "pdb.Pdb",
    "bdb.set_trace",
    "ipdb.set_trace",
    "ipdb.post_mortem",
    "ipdb.pm",
    "ipdb.launch_ipdb_on_exception",
    "ipdb.sset_trace",
    "ipdb.runcall",
    "ipdb.run",
    "pudb.set_trace",
    "pudb.post_mortem",
    "pudb.pm",
    "pudb.start",
    "pudb.runcall",
    "pudb.run",
    "remote_pdb.set_trace",
    "remote_pdb.RemotePdb",
    "rpdb.set_trace",
    "rpdb.Rpdb",
    "web_pdb.set_trace",
    "web_pdb.WebPdb",
    "wdb.set_trace",
    "debugpy.listen",
    "debugpy.breakpoint",
    "debugpy.wait_for_client",
    "IPython.embed",
    "IPython.terminal.embed.embed",
)

_SUBPROCESS_CALLS = (
    "subprocess.Popen",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
)

# canonical name -> name of the SafetyChecker method checking the call's arguments.
_CALLS: dict[str, str] = {
    "builtins.compile": "_call_compile",
    "builtins.type": "_call_type",
    "timeit.timeit": "_call_timeit",
    "timeit.repeat": "_call_timeit",
    "timeit.Timer": "_call_timeit",
    "types.FunctionType": "_call_code_object",
    "types.CodeType": "_call_code_object",
    "types.LambdaType": "_call_code_object",
    "asyncio.create_subprocess_exec": "_call_subprocess_exec",
    "asyncio.subprocess.create_subprocess_exec": "_call_subprocess_exec",
    "pty.spawn": "_call_pty_spawn",
    "os.posix_spawn": "_call_posix_spawn",
    "os.posix_spawnp": "_call_posix_spawn",
    "yaml.load": "_call_yaml_load",
    "yaml.load_all": "_call_yaml_load",
    "ruamel.yaml.YAML": "_call_ruamel",
    "numpy.load": "_call_numpy_load",
    "torch.load": "_call_torch_load",
    "builtins.open": "_call_open",
    "io.open": "_call_open",
    "codecs.open": "_call_open",
}
for _name in _SUBPROCESS_CALLS:
    _CALLS[_name] = "_call_subprocess"
for _name in _OS_EXEC_L:
    _CALLS[f"os.{_name}"] = "_call_exec_l"
for _name in _OS_EXEC_V:
    _CALLS[f"os.{_name}"] = "_call_exec_v"
for _name in _OS_SPAWN_L:
    _CALLS[f"os.{_name}"] = "_call_spawn_l"
for _name in _OS_SPAWN_V:
    _CALLS[f"os.{_name}"] = "_call_spawn_v"

_GLOBALS_ATTRS = frozenset(
    {"__globals__", "func_globals", "f_globals", "f_builtins", "__builtins__"}
)
_WALK_ATTRS = frozenset({"__mro__", "__bases__", "__base__"})
_PROCEDURE_DUNDERS = frozenset(
    {
        "__mro__",
        "__bases__",
        "__base__",
        "__code__",
        "__closure__",
        "__func__",
        "__self__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__subclasshook__",
    }
)
_WATCH_ATTRS = (
    frozenset({"__subclasses__", "__class__", "subprocess_shell"})
    | _GLOBALS_ATTRS
    | _WALK_ATTRS
    | _PROCEDURE_DUNDERS
)

# Modules whose import by a hidden spelling (PS105) or whose getattr by computed name
# (PS108) is worth an alarm.
_SENSITIVE_MODULES = frozenset(
    {
        "os",
        "sys",
        "subprocess",
        "builtins",
        "importlib",
        "ctypes",
        "_ctypes",
        "cffi",
        "pickle",
        "marshal",
        "shelve",
        "dill",
        "cloudpickle",
        "pty",
        "runpy",
        "code",
        "codeop",
        "socket",
        "shutil",
        "pdb",
        "commands",
        "popen2",
        "gc",
        "types",
        "timeit",
        "imp",
        "multiprocessing",
        "_posixsubprocess",
        "jsonpickle",
    }
)
_GETATTR_SENSITIVE = frozenset(
    {
        "os",
        "subprocess",
        "builtins",
        "sys",
        "importlib",
        "pickle",
        "ctypes",
        "marshal",
        "pty",
        "runpy",
        "code",
    }
)
_NATIVE_MODULES = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend"})
_DEBUG_MODULES = frozenset(
    {"pdb", "ipdb", "pudb", "remote_pdb", "rpdb", "web_pdb", "debugpy", "wdb", "pdbpp"}
)

_SHELLS = frozenset(
    {
        "sh",
        "bash",
        "zsh",
        "dash",
        "ksh",
        "mksh",
        "csh",
        "tcsh",
        "fish",
        "ash",
        "cmd",
        "powershell",
        "pwsh",
    }
)
_INTERPRETER_FLAGS = {"python": "c", "perl": "e", "ruby": "e", "node": "e", "php": "r"}
_SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})


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
    if program in _SHELLS:
        letter = "c"
    else:
        for interpreter, flag in _INTERPRETER_FLAGS.items():
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


class _SafetyChecker(Resolver):
    """One file's walk: the resolver's events turned into findings."""

    builtin_names = frozenset(
        {"eval", "exec", "execfile", "compile", "breakpoint", "open", "type", "object"}
    )
    watch_refs = _REFS
    watch_calls = _CALLS
    watch_attrs = _WATCH_ATTRS
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
        text = f"{subject} {detail or _REASONS[code]}."
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
        code, kind = _REFS[value.name]
        if kind == "uncalled" and called:
            return
        detail = ""
        if kind == "uncalled":
            detail = (
                "is passed around as a value, which hides where it is called; the "
                f"call {_REASONS[code]}"
            )
        self.emit(node, code, self.subject(node, value.name), detail)

    def on_call(self, node: ast.AST, func: Qual, args: CallArgs) -> Any:
        return getattr(self, _CALLS[func.name])(node, func, args)

    def on_attr(self, node: ast.AST, base: Any, attr: str, result: Any, store: bool) -> Any:
        if store:
            if attr == "__code__":
                self.emit(node, "PS503", "assigning `__code__`")
            return result
        if attr == "__subclasses__":
            self.emit(node, "PS501", "`__subclasses__`")
            return result
        if attr in _GLOBALS_ATTRS:
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
        if attr in _WALK_ATTRS and (
            literal or (type(base) is Qual and base.name in ("builtins.object", "builtins.type"))
        ):
            self.emit(node, "PS504", f"`{attr}` walked from a literal")
            return _WALK
        if self.procedure and attr in _PROCEDURE_DUNDERS:
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
        if top in _NATIVE_MODULES:
            self.emit(node, "PS401", f"the import of `{module}`")
        if top in _DEBUG_MODULES:
            self.emit(node, "PS603", f"the import of `{module}`")
        if dynamic:
            if canonical_module(top) in _SENSITIVE_MODULES or top in _SENSITIVE_MODULES:
                self.emit(node, "PS105", f"the dynamic import of `{module}`")
        if self.procedure:
            self._check_allowed(node, module, names)

    def on_dynamic_getattr(self, node: ast.Call, base: Any) -> None:
        if type(base) is Qual and base.name in _GETATTR_SENSITIVE:
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
                if _capability_for(f"{module}.{n}") is not None and not self._is_allowed(
                    f"{module}.{n}"
                ):
                    wanted = f"{module}.{n}"
                    break
        capability = _capability_for(wanted)
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
        return q.name.startswith("yaml.") and q.name.rpartition(".")[2] in _SAFE_YAML_LOADERS

    if type(loader) is Qual:
        return safe(loader)
    if type(loader) is LocalClass:
        return loader.derives_from(safe)
    return False


def _capability_for(module: str) -> str | None:
    for capability, modules in CAPABILITY_MODULES.items():
        name = module
        while True:
            if name in modules:
                return capability
            if "." not in name:
                break
            name = name.rpartition(".")[0]
    return None


class SafetyOptions:
    """``[safety]``, validated: the procedure-mode import allowlist it makes."""

    __slots__ = ("allowed_imports",)

    def __init__(self, allowed_imports: Iterable[str]) -> None:
        self.allowed_imports = frozenset(allowed_imports)


SAFETY_KEYS = frozenset({"allowed-imports", "extra-allowed-imports"})
_DEFAULT_OPTIONS = SafetyOptions(DEFAULT_ALLOWED_IMPORTS)


def parse_options(table: Table) -> SafetyOptions:
    """Read ``[safety]``: ``allowed-imports`` replaces the default allowlist,
    ``extra-allowed-imports`` adds to it; anything else is a ConfigError naming the file
    and the table."""
    table.check_keys(SAFETY_KEYS)
    base = table.str_list("allowed-imports")
    extra = table.str_list("extra-allowed-imports") or ()
    return SafetyOptions({*(DEFAULT_ALLOWED_IMPORTS if base is None else base), *extra})


class SafetyValidator(Validator):
    """Finds code that runs code or commands, unpickles, loads native code, escapes
    through introspection, or (in procedure mode) imports outside the allowlist."""

    name = "safety"
    rules = RULES

    def options(self, settings: CheckSettings | None) -> SafetyOptions:
        if settings is None:
            return _DEFAULT_OPTIONS
        return settings.options("safety", parse_options)

    def check(self, source: SourceFile, context: CheckContext) -> Iterable[Finding]:
        tree = source.tree
        checker = _SafetyChecker(self, source, context)
        checker.run(tree)
        return checker.findings


@hookimpl
def proctor_register_validators(register: Any) -> None:
    register(SafetyValidator())
