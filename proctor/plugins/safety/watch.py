"""What the ``safety`` checker asks the resolver to watch, and what each name means.

``REFS`` maps canonical names to the rule flagged wherever the name is reached (or only
when it is passed around uncalled: calls are checked by ``CALLS``); ``CALLS`` maps names
to the checker method that inspects a call's arguments; ``WATCH_ATTRS`` are the attribute
names of introspection escapes. The shell and interpreter tables tell an argv that runs
inline code (``["sh", "-c", cmd]``) from one that runs a program.
"""

from __future__ import annotations

__all__ = [
    "CALLS",
    "GLOBALS_ATTRS",
    "INTERPRETER_FLAGS",
    "OS_EXEC_L",
    "OS_EXEC_V",
    "OS_SPAWN_L",
    "OS_SPAWN_V",
    "PROCEDURE_DUNDERS",
    "REFS",
    "SAFE_YAML_LOADERS",
    "SHELLS",
    "SUBPROCESS_CALLS",
    "WALK_ATTRS",
    "WATCH_ATTRS",
]

# -- what the resolver watches -----------------------------------------------------------

# canonical name -> (code, kind). "always": flagged wherever it is reached, called or not;
# "uncalled": flagged when passed around as a value (calls are checked by CALLS).
REFS: dict[str, tuple[str, str]] = {}


def _refs(code: str, kind: str, *names: str) -> None:
    for name in names:
        REFS[name] = (code, kind)


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
OS_EXEC_L = ("execl", "execle", "execlp", "execlpe")
OS_EXEC_V = ("execv", "execve", "execvp", "execvpe")
OS_SPAWN_L = ("spawnl", "spawnle", "spawnlp", "spawnlpe")
OS_SPAWN_V = ("spawnv", "spawnve", "spawnvp", "spawnvpe")
_refs(
    "PS204",
    "uncalled",
    *(f"os.{n}" for n in OS_EXEC_L + OS_EXEC_V + OS_SPAWN_L + OS_SPAWN_V),
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

SUBPROCESS_CALLS = (
    "subprocess.Popen",
    "subprocess.run",
    "subprocess.call",
    "subprocess.check_call",
    "subprocess.check_output",
)

# canonical name -> name of the SafetyChecker method checking the call's arguments.
CALLS: dict[str, str] = {
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
for _name in SUBPROCESS_CALLS:
    CALLS[_name] = "_call_subprocess"
for _name in OS_EXEC_L:
    CALLS[f"os.{_name}"] = "_call_exec_l"
for _name in OS_EXEC_V:
    CALLS[f"os.{_name}"] = "_call_exec_v"
for _name in OS_SPAWN_L:
    CALLS[f"os.{_name}"] = "_call_spawn_l"
for _name in OS_SPAWN_V:
    CALLS[f"os.{_name}"] = "_call_spawn_v"

GLOBALS_ATTRS = frozenset(
    {"__globals__", "func_globals", "f_globals", "f_builtins", "__builtins__"}
)
WALK_ATTRS = frozenset({"__mro__", "__bases__", "__base__"})
PROCEDURE_DUNDERS = frozenset(
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
WATCH_ATTRS = (
    frozenset({"__subclasses__", "__class__", "subprocess_shell"})
    | GLOBALS_ATTRS
    | WALK_ATTRS
    | PROCEDURE_DUNDERS
)


SHELLS = frozenset(
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
INTERPRETER_FLAGS = {"python": "c", "perl": "e", "ruby": "e", "node": "e", "php": "r"}
SAFE_YAML_LOADERS = frozenset({"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"})
