"""The rules of the ``safety`` check: codes, names, severities, why and what instead.

``RULES`` feeds ``--select``, ``# noqa``, SARIF and docs/checks-safety.md; ``REASONS`` is
the middle of each finding's message (``<what was found> <reason>. <fix>``).
"""

from __future__ import annotations

from proctor.checks.validation import Rule

__all__ = ["REASONS", "RULES"]

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
        "Map the allowed names to modules explicitly ({'json': json}[name]), or import each "
        "allowed module by its literal name.",
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
        "pickle or ctypes (or their namespace read by one: vars(os)[name], "
        "os.__dict__.get(name), or walked: vars(os).items()) can reach any function in them.",
        "Call the function you need by name, or look it up in a dict of allowed functions.",
    ),
    Rule(
        "PS109",
        "decoded-attribute-of-sensitive-module",
        "error",
        "getattr() on os, subprocess, builtins, sys, importlib, pickle or ctypes with a name "
        "built by decoding, rotating, reversing or joining strings (base64, codecs rot13, "
        "bytes.fromhex, ''.join(reversed(...))), or whose members are walked and one picked "
        "by a test on its name (vars(os).items() with k == 'system'): a name written so that "
        "nobody can read it.",
        "Call the function you need by name.",
    ),
    # -- PS2xx process execution --------------------------------------------------------
    Rule(
        "PS201",
        "shell-command",
        "error",
        "Runs a command line through the shell (os.system, os.popen, subprocess.getoutput/"
        "getstatusoutput, asyncio.create_subprocess_shell, loop.subprocess_shell, "
        "commands.*): any unquoted input becomes shell code.",
        'Use subprocess.run(["prog", "arg"], check=True) with a literal argument list '
        "(no shell); arguments computed at run time give a PS205 warning to review.",
    ),
    Rule(
        "PS202",
        "subprocess-shell-true",
        "error",
        "A subprocess call with shell=True (also through **kwargs or functools.partial) "
        "passes the command to /bin/sh.",
        "Pass a literal argument list without shell=True (shlex.split of a fixed string is one).",
    ),
    Rule(
        "PS203",
        "shell-c-argv",
        "error",
        "An argument list that starts a shell or interpreter with an inline command "
        "(['sh', '-c', cmd], ['bash', '-lc', ...], [python, '-c', code]) is shell=True or "
        "exec in disguise.",
        "Run the program itself with a literal argument list (['prog', 'arg']).",
    ),
    Rule(
        "PS204",
        "exec-spawn",
        "error",
        "os.exec*/os.spawn*/os.posix_spawn*/pty.spawn/os.startfile start or replace "
        "programs directly, outside subprocess's safer defaults.",
        "Use subprocess.run(['prog', 'arg'], check=True) with a literal argument list.",
    ),
    Rule(
        "PS205",
        "subprocess",
        "warning",
        "Starts a child process whose argument list is computed at run time (subprocess "
        "without a shell, create_subprocess_exec), or forks (os.fork, pexpect): review that "
        "the program and arguments are not user-controlled. A literal argument list "
        "(['sleep', '1'], sys.executable first included) is not reported.",
        "Keep argv a literal list with a fixed program; never build it from input.",
    ),
    # -- PS3xx deserialisation ----------------------------------------------------------
    Rule(
        "PS301",
        "unsafe-deserialisation",
        "error",
        "pickle/_pickle/cPickle/dill/cloudpickle/shelve/marshal/jsonpickle/joblib loads, "
        "pandas.read_pickle, numpy.load(allow_pickle=True), torch.load(weights_only="
        "False) and multiprocessing.connection (Listener, Client, Connection.recv unpickle "
        "what the peer sends) can run arbitrary code while loading.",
        "Store data as JSON (or another data-only format) and load it with json.load.",
    ),
    Rule(
        "PS302",
        "unsafe-yaml",
        "error",
        "yaml.load without a safe Loader (also a Loader the caller passes in, whatever its "
        "default), yaml.unsafe_load/full_load, UnsafeLoader, a loader class built on an "
        "unsafe loader or constructor, and ruamel YAML(typ='unsafe') construct arbitrary "
        "Python objects.",
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
        "__subclasses__() of object, type or another builtin type, or of a class reached by "
        "walking from a literal, reaches every class loaded in the process (the classic "
        "sandbox escape, e.g. ().__class__.__base__.__subclasses__()). A class registry's "
        "cls.__subclasses__() is not reported.",
        "Refer to the classes you need by importing them.",
    ),
    Rule(
        "PS502",
        "globals-builtins-access",
        "error",
        "__globals__, __builtins__ and frame f_globals/f_builtins reach a module's "
        "namespace and the builtins (eval, exec, __import__) from any function or frame. "
        "Reading only metadata (['__name__'], .get('__file__'), '__package__' in ...) is "
        "not reported.",
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
        "Walking __class__/__base__/__bases__/__mro__ from a literal ((), '', [], None "
        "written in place) is only ever a way to reach object and its subclasses.",
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
        "A debugger entry point is called (breakpoint(), pdb.set_trace(), ipdb/pudb/"
        "remote_pdb/debugpy, Flask's app.run(debug=True)): it stops the program or opens "
        "a remote shell.",
        "Remove it before committing.",
    ),
    Rule(
        "PS603",
        "debugger-import",
        "error",
        "A debugger module (pdb, ipdb, pudb, remote_pdb, rpdb, web_pdb, debugpy, wdb) is "
        "imported: usually a leftover from debugging. Not reported when the module is only "
        "patched (pdb.set_trace = ..., setattr/monkeypatch.setattr/mock.patch.object on it).",
        "Remove the import before committing.",
    ),
    Rule(
        "PS604",
        "bidi-control-character",
        "error",
        "A Unicode bidirectional control character in the source makes code display in an "
        "order other than the one Python runs (trojan source).",
        "Remove the character; write it as an escape (\\u202e) inside strings that need it.",
    ),
    # -- PS7xx transport and cryptography ----------------------------------------------
    Rule(
        "PS701",
        "tls-verification-off",
        "error",
        "TLS certificate or host-name verification is turned off (requests/httpx/aiohttp "
        "verify=False, urllib3 cert_reqs='CERT_NONE', ssl._create_unverified_context, "
        "check_hostname = False, verify_mode = CERT_NONE, ssl.wrap_socket) or an obsolete "
        "protocol is chosen (SSLv2/3, TLS 1.0/1.1): anyone on the path can read and change "
        "the traffic.",
        "Keep verification on (the default); pass verify='/path/to/ca.pem' or "
        "ssl.create_default_context(cafile=...) for a private CA.",
    ),
    Rule(
        "PS702",
        "ssh-unknown-host-key",
        "error",
        "An SSH client that accepts unknown host keys (paramiko AutoAddPolicy/WarningPolicy, "
        "asyncssh known_hosts=None) connects to whoever answers.",
        "Load known hosts (client.load_system_host_keys()) and keep paramiko's default "
        "RejectPolicy.",
    ),
    Rule(
        "PS703",
        "weak-hash",
        "warning",
        "MD5, SHA-1, MD4 or MD2 (hashlib, pycryptodome, cryptography) are broken for "
        "security use: signatures, passwords, integrity against an attacker.",
        "Use hashlib.sha256 (or blake2b); for a checksum or cache key that is not security, "
        "say so with usedforsecurity=False.",
    ),
    Rule(
        "PS704",
        "weak-cipher",
        "error",
        "DES, 3DES, RC2, RC4, Blowfish, IDEA, CAST5, SEED, XOR, ECB mode and RSA/DSA keys "
        "under 2048 bits are broken or leak patterns of the plaintext.",
        "Use AES-GCM or ChaCha20-Poly1305 (cryptography's AEAD classes) and 2048-bit or "
        "larger RSA keys.",
    ),
    Rule(
        "PS705",
        "bind-all-interfaces",
        "warning",
        "A server bound to all interfaces ('0.0.0.0', '::', '' as the host of bind/listen/"
        "run(host=)/create_server/HTTPServer) is reachable from every network the machine "
        "is on.",
        "Bind to 127.0.0.1 (or the one interface it serves) and make the address configurable.",
    ),
    # -- PS8xx data, files and templates -----------------------------------------------
    Rule(
        "PS801",
        "sql-string-formatting",
        "error",
        "SQL built by string formatting (f-string, %, +, .format with values computed at "
        "run time) reaches cursor.execute/executemany/executescript or RawSQL: SQL "
        "injection.",
        "Pass values as parameters: cursor.execute('SELECT ... WHERE id = ?', (id,)).",
    ),
    Rule(
        "PS802",
        "xml-entity-expansion",
        "warning",
        "An XML parser without defusedxml (xml.etree, minidom, pulldom, sax, expatbuilder, "
        "lxml without resolve_entities=False) may expand entities in untrusted input "
        "(billion laughs, external entities).",
        "Parse untrusted XML with defusedxml (defusedxml.ElementTree.fromstring...), or "
        "lxml.etree.XMLParser(resolve_entities=False, no_network=True).",
    ),
    Rule(
        "PS803",
        "archive-extraction",
        "error",
        "tarfile extractall/extract without a filter (or with filter='fully_trusted') and "
        "shutil.unpack_archive without filter= write wherever the archive's member names "
        "point (../, absolute paths, links).",
        "Pass filter='data' (Python 3.12+, and the 3.8-3.11 security releases).",
    ),
    Rule(
        "PS804",
        "zip-extraction",
        "warning",
        "zipfile extractall of an archive from a path computed at run time: zipfile drops "
        "'..' and absolute names but checks no sizes or counts (zip bombs).",
        "Check the members first (infolist(): count, file_size) and extract them one by one "
        "with extract(info, dest).",
    ),
    Rule(
        "PS805",
        "insecure-temp-file",
        "error",
        "tempfile.mktemp (and os.tempnam/tmpnam) return a name another process can create "
        "first: a race that lets it choose what you write to or read.",
        "Use tempfile.NamedTemporaryFile, mkstemp or TemporaryDirectory.",
    ),
    Rule(
        "PS806",
        "template-autoescape-off",
        "warning",
        "Templates that do not escape HTML (jinja2 Environment/Template without autoescape "
        "or with autoescape=False, mako Template/TemplateLookup without default_filters=['h']) "
        "and markup marked safe from computed text (mark_safe, Markup) allow cross-site "
        "scripting.",
        "jinja2.Environment(autoescape=jinja2.select_autoescape()); mako "
        "default_filters=['h']; escape values before marking markup safe.",
    ),
    Rule(
        "PS807",
        "world-writable-permissions",
        "warning",
        "os.chmod/Path.chmod with a mode that lets every user write the file (o+w) lets "
        "any local user change it.",
        "Use 0o644 for files and 0o755 for directories (0o600/0o700 for private ones).",
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
REASONS: dict[str, str] = {
    "PS101": "runs arbitrary Python built from a string",
    "PS102": "builds a code object that is only useful to run",
    "PS103": "runs its stmt/setup string with exec",
    "PS104": "runs code from a file or string",
    "PS105": "hides the import of a sensitive module from review",
    "PS106": "can load any module",
    "PS107": "builds a function from a code object",
    "PS108": "can reach any function of the module",
    "PS109": "hides which function of the module it reaches",
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
    "PS604": "makes the code display in another order than it runs",
    "PS701": "lets anyone on the network path read and change the traffic",
    "PS702": "connects to any host that answers, without checking its key",
    "PS703": "is a broken hash for security use",
    "PS704": "is a broken cipher, mode or key size",
    "PS705": "listens on every network interface",
    "PS801": "puts values into SQL text, which is SQL injection",
    "PS802": "may expand entities of untrusted XML",
    "PS803": "writes wherever the archive's member names point",
    "PS804": "extracts an archive of unchecked size",
    "PS805": "returns a name another process can create first",
    "PS806": "does not escape HTML",
    "PS807": "lets every user write the file",
    "PS901": "is not allowed in procedure code",
    "PS902": "cannot be checked against the procedure import allowlist",
    "PS903": "writes files without the filesystem_write capability",
}
