"""What the ``safety`` checker asks the resolver to watch, and what each name means.

``REFS`` maps canonical names to the rule flagged wherever the name is reached (or only
when it is passed around uncalled: calls are checked by ``CALLS``); ``CALLS`` maps names
to the checker method that inspects a call's arguments; ``WATCH_ATTRS`` are the attribute
names of introspection escapes. The shell and interpreter tables tell an argv that runs
inline code (``["sh", "-c", cmd]``) from one that runs a program.
"""

from __future__ import annotations

__all__ = [
    "ALL_INTERFACES",
    "BIDI_CHARACTERS",
    "CALLS",
    "CALL_RESULTS",
    "GLOBALS_ATTRS",
    "HTTP_METHODS",
    "HTTP_PACKAGES",
    "INTERPRETER_FLAGS",
    "KEYWORDS",
    "METADATA_KEYS",
    "METHODS",
    "OS_EXEC_L",
    "OS_EXEC_V",
    "OS_SPAWN_L",
    "OS_SPAWN_V",
    "PROCEDURE_DUNDERS",
    "REFS",
    "SAFE_YAML_BASES",
    "SAFE_YAML_LOADERS",
    "SESSION_RESULTS",
    "SHELLS",
    "SUBPROCESS_CALLS",
    "TAR_OPENERS",
    "UNSAFE_YAML",
    "UNSAFE_YAML_NAMES",
    "WALK_ATTRS",
    "WATCH_ATTRS",
    "WEAK_HASH_NAMES",
]

# -- what the resolver watches -----------------------------------------------------------

# canonical name -> (code, kind). "always": flagged wherever it is reached, called or not;
# "uncalled": flagged when passed around as a value (calls are checked by CALLS);
# "called": flagged only where it is called (a debugger saved or patched is not a stop).
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
    "profile.main",
    "cProfile.main",
    "trace.main",
    # The debugger, profiler and tracer classes run a code string through exec.
    *(f"{cls}().{meth}" for cls in ("bdb.Bdb", "pdb.Pdb") for meth in ("run", "runeval", "runctx")),
    *(
        f"{cls}().{meth}"
        for cls in ("profile.Profile", "cProfile.Profile", "trace.Trace")
        for meth in ("run", "runctx")
    ),
)
_refs("PS103", "always", "timeit.main")
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
    # multiprocessing.connection pickles every object it sends and unpickles what it receives.
    "multiprocessing.connection.Listener",
    "multiprocessing.connection.Client",
    "multiprocessing.connection.Connection.recv",
    "multiprocessing.connection.SocketListener",
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
    "called",
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

_refs(
    "PS701",
    "always",
    "ssl._create_unverified_context",
    "ssl._create_stdlib_context",
    "ssl.PROTOCOL_SSLv2",
    "ssl.PROTOCOL_SSLv3",
    "ssl.PROTOCOL_TLSv1",
    "ssl.PROTOCOL_TLSv1_1",
    "ssl.TLSVersion.SSLv3",
    "ssl.TLSVersion.TLSv1",
    "ssl.TLSVersion.TLSv1_1",
    "OpenSSL.SSL.SSLv2_METHOD",
    "OpenSSL.SSL.SSLv3_METHOD",
    "OpenSSL.SSL.TLSv1_METHOD",
    "OpenSSL.SSL.TLSv1_1_METHOD",
)
_refs(
    "PS702",
    "always",
    "paramiko.AutoAddPolicy",
    "paramiko.WarningPolicy",
    "paramiko.client.AutoAddPolicy",
    "paramiko.client.WarningPolicy",
)
_CRYPTOGRAPHY_ALGORITHMS = "cryptography.hazmat.primitives.ciphers.algorithms"
_refs(
    "PS704",
    "always",
    *(
        f"{package}.Cipher.{name}"
        for package in ("Crypto", "Cryptodome")
        for name in ("DES", "DES3", "ARC2", "ARC4", "Blowfish", "CAST", "XOR")
    ),
    *(f"{package}.Cipher.AES.MODE_ECB" for package in ("Crypto", "Cryptodome")),
    *(
        f"{_CRYPTOGRAPHY_ALGORITHMS}.{name}"
        for name in ("ARC4", "TripleDES", "Blowfish", "IDEA", "CAST5", "SEED")
    ),
    "cryptography.hazmat.primitives.ciphers.modes.ECB",
    "pyDes.des",
    "pyDes.triple_des",
)
_refs("PS805", "always", "tempfile.mktemp", "os.tempnam", "os.tmpnam")
_XML_PARSERS = {
    "xml.etree.ElementTree": (
        "parse",
        "iterparse",
        "fromstring",
        "fromstringlist",
        "XML",
        "XMLParser",
        "XMLPullParser",
        "XMLID",
    ),
    "xml.etree.cElementTree": ("parse", "iterparse", "fromstring", "XML", "XMLParser"),
    "xml.dom.minidom": ("parse", "parseString"),
    "xml.dom.pulldom": ("parse", "parseString"),
    "xml.dom.expatbuilder": ("parse", "parseString"),
    "xml.sax": ("parse", "parseString", "make_parser"),
    "xml.sax.expatreader": ("create_parser",),
}
_refs("PS802", "always", *(f"{m}.{f}" for m, fs in _XML_PARSERS.items() for f in fs))

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
    "shlex.split": "_call_shlex_split",
    "flask.Flask().run": "_call_flask_run",
    # PS7xx
    "ssl.wrap_socket": "_call_wrap_socket",
    "hashlib.md5": "_call_weak_hash",
    "hashlib.sha1": "_call_weak_hash",
    "hashlib.new": "_call_hash_new",
    "cryptography.hazmat.primitives.hashes.MD5": "_call_weak_hash",
    "cryptography.hazmat.primitives.hashes.SHA1": "_call_weak_hash",
    "cryptography.hazmat.primitives.asymmetric.rsa.generate_private_key": "_call_key_size",
    "cryptography.hazmat.primitives.asymmetric.dsa.generate_private_key": "_call_key_size",
    "socketserver.TCPServer": "_call_server",
    "socketserver.UDPServer": "_call_server",
    "socketserver.ThreadingTCPServer": "_call_server",
    "socketserver.ThreadingUDPServer": "_call_server",
    "socketserver.ForkingTCPServer": "_call_server",
    "socketserver.ForkingUDPServer": "_call_server",
    "http.server.HTTPServer": "_call_server",
    "http.server.ThreadingHTTPServer": "_call_server",
    "xmlrpc.server.SimpleXMLRPCServer": "_call_server",
    "xmlrpc.server.DocXMLRPCServer": "_call_server",
    "socket.create_server": "_call_server",
    "wsgiref.simple_server.make_server": "_call_server_host_first",
    "asyncio.start_server": "_call_server_host_second",
    # PS8xx
    "django.db.models.RawSQL": "_call_rawsql",
    "django.db.models.expressions.RawSQL": "_call_rawsql",
    "shutil.unpack_archive": "_call_unpack_archive",
    "tarfile.TarFile.extractall": "_call_tar_extract_unbound",
    "tarfile.TarFile.extract": "_call_tar_extract_unbound",
    "zipfile.ZipFile": "_call_zipfile",
    "zipfile.ZipFile().extractall": "_call_zip_extract",
    "lxml.etree.XMLParser": "_call_lxml_parser",
    "lxml.etree.parse": "_call_lxml",
    "lxml.etree.fromstring": "_call_lxml",
    "lxml.etree.XML": "_call_lxml",
    "lxml.etree.iterparse": "_call_lxml",
    "jinja2.Environment": "_call_jinja",
    "jinja2.environment.Environment": "_call_jinja",
    "jinja2.sandbox.SandboxedEnvironment": "_call_jinja",
    "jinja2.Template": "_call_jinja",
    "jinja2.environment.Template": "_call_jinja",
    "mako.template.Template": "_call_mako",
    "mako.lookup.TemplateLookup": "_call_mako",
    "django.utils.safestring.mark_safe": "_call_mark_safe",
    "django.utils.html.mark_safe": "_call_mark_safe",
    "markupsafe.Markup": "_call_mark_safe",
    "jinja2.Markup": "_call_mark_safe",
    "flask.Markup": "_call_mark_safe",
    "os.chmod": "_call_chmod",
    "os.lchmod": "_call_chmod",
    "os.fchmod": "_call_chmod",
}
for _package in ("Crypto", "Cryptodome"):
    for _hash in ("MD5", "MD4", "MD2", "SHA", "SHA1"):
        CALLS[f"{_package}.Hash.{_hash}.new"] = "_call_weak_hash"
    CALLS[f"{_package}.PublicKey.RSA.generate"] = "_call_key_size"
    CALLS[f"{_package}.PublicKey.DSA.generate"] = "_call_key_size"
TAR_OPENERS = (
    "tarfile.open",
    "tarfile.TarFile",
    "tarfile.TarFile.open",
    "tarfile.TarFile.taropen",
    "tarfile.TarFile.gzopen",
    "tarfile.TarFile.bz2open",
    "tarfile.TarFile.xzopen",
)
for _opener in TAR_OPENERS:
    CALLS[f"{_opener}().extractall"] = "_call_tar_extract"
    CALLS[f"{_opener}().extract"] = "_call_tar_extract"

#: Functions that escape text for HTML: markup made from what they return is escaped (the
#: advice of PS806), so marking it safe is not reported.
HTML_ESCAPERS = frozenset(
    {
        "markupsafe.escape",
        "markupsafe.Markup.escape",
        "jinja2.escape",
        "flask.escape",
        "html.escape",
        "django.utils.html.escape",
        "django.utils.html.conditional_escape",
        "django.utils.html.format_html",
        "bleach.clean",
    }
)
# Calls whose result the checker follows (``tf = tarfile.open(p); tf.extractall()``).
CALL_RESULTS = frozenset(
    {
        "bdb.Bdb",
        "pdb.Pdb",
        "profile.Profile",
        "cProfile.Profile",
        "trace.Trace",
        "flask.Flask",
        "requests.Session",
        "requests.session",
        "requests.sessions.Session",
        "httpx.Client",
        "httpx.AsyncClient",
        *TAR_OPENERS,
        *HTML_ESCAPERS,
    }
)
# Method names checked on objects the resolver does not know (``cursor.execute``).
METHODS = frozenset({"execute", "executemany", "executescript", "bind", "create_server", "chmod"})
# Keyword arguments checked at every call that passes them.
KEYWORDS = frozenset(
    {"verify", "verify_ssl", "ssl", "cert_reqs", "assert_hostname", "known_hosts", "host"}
)
ALL_INTERFACES = frozenset({"0.0.0.0", "::", ""})
HTTP_METHODS = frozenset(
    {
        "get",
        "post",
        "put",
        "patch",
        "delete",
        "head",
        "options",
        "request",
        "send",
        "stream",
        "Session",
        "Client",
        "AsyncClient",
        "ClientSession",
        "TCPConnector",
        "ws_connect",
        "urlopen",
    }
)
HTTP_PACKAGES = ("requests.", "httpx.", "aiohttp.", "urllib3.")
SESSION_RESULTS = frozenset(
    {
        "requests.Session()",
        "requests.session()",
        "requests.sessions.Session()",
        "httpx.Client()",
        "httpx.AsyncClient()",
    }
)
WEAK_HASH_NAMES = frozenset({"md5", "sha1", "md4", "md2", "sha", "ripemd160"})
UNSAFE_YAML = frozenset(
    {
        "yaml.Loader",
        "yaml.CLoader",
        "yaml.FullLoader",
        "yaml.CFullLoader",
        "yaml.UnsafeLoader",
        "yaml.CUnsafeLoader",
        "yaml.loader.Loader",
        "yaml.loader.FullLoader",
        "yaml.loader.UnsafeLoader",
        "yaml.Constructor",
        "yaml.FullConstructor",
        "yaml.UnsafeConstructor",
        "yaml.constructor.Constructor",
        "yaml.constructor.FullConstructor",
        "yaml.constructor.UnsafeConstructor",
    }
)
SAFE_YAML_BASES = frozenset(
    {
        "yaml.SafeConstructor",
        "yaml.BaseConstructor",
        "yaml.constructor.SafeConstructor",
        "yaml.constructor.BaseConstructor",
    }
)
# Names of yaml's own unsafe loaders: a loader by one of these names is unsafe wherever it
# is imported from (``yamlordereddictloader.Loader`` is built on ``yaml.Loader``).
UNSAFE_YAML_NAMES = frozenset(
    {"Loader", "CLoader", "FullLoader", "CFullLoader", "UnsafeLoader", "CUnsafeLoader"}
)
# Module metadata: reading these from another namespace reaches nothing that runs code.
METADATA_KEYS = frozenset(
    {
        "__name__",
        "__file__",
        "__package__",
        "__spec__",
        "__doc__",
        "__path__",
        "__qualname__",
        "__module__",
        "__version__",
        "__all__",
        "__annotations__",
        "__cached__",
    }
)
BIDI_CHARACTERS = (
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
)
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
        "__subclasses__",
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
    frozenset(
        {
            "__subclasses__",
            "__class__",
            "subprocess_shell",
            "check_hostname",
            "verify_mode",
            "verify",
        }
    )
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
