"""Which modules the ``safety`` check treats specially: the procedure-mode allowlist, the
modules each capability unlocks, and the module families whose use is worth an alarm.

Data only, kept apart from the checker so the lists can be read (and reviewed) as lists.
"""

from __future__ import annotations

__all__ = [
    "CAPABILITY_MODULES",
    "DEBUG_MODULES",
    "DEFAULT_ALLOWED_IMPORTS",
    "GETATTR_SENSITIVE",
    "NATIVE_MODULES",
    "SENSITIVE_MODULES",
    "capability_for",
]

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


# Modules whose import by a hidden spelling (PS105) or whose getattr by computed name
# (PS108) is worth an alarm.
SENSITIVE_MODULES = frozenset(
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
GETATTR_SENSITIVE = frozenset(
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
NATIVE_MODULES = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend"})
DEBUG_MODULES = frozenset(
    {"pdb", "ipdb", "pudb", "remote_pdb", "rpdb", "web_pdb", "debugpy", "wdb", "pdbpp"}
)


def capability_for(module: str) -> str | None:
    for capability, modules in CAPABILITY_MODULES.items():
        name = module
        while True:
            if name in modules:
                return capability
            if "." not in name:
                break
            name = name.rpartition(".")[0]
    return None
