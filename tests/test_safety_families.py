"""The safety check's newer families (PS7xx transport and cryptography, PS8xx data, files
and templates), the evasions the older rules missed, the false positives found on real
code, and the promise that every rule's advice leads to code that passes.

Same shape as test_safety.py: (id, snippet, expected findings as (code, line)).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from proctor.checks.validation import Capabilities, CheckContext, Finding, SourceFile
from proctor.plugins.safety import RULES, SafetyValidator


def check(code: str, mode: str = "generic", **context: object) -> list[Finding]:
    source = SourceFile("x.py", textwrap.dedent(code))
    ctx = CheckContext(mode=mode, **context)  # type: ignore[arg-type]
    return list(SafetyValidator().check(source, ctx))


def codes(code: str, mode: str = "generic", **context: object) -> set[tuple[str, int]]:
    return {(f.code, f.line) for f in check(code, mode, **context)}


# -- new families -------------------------------------------------------------------------

FAMILIES: list[tuple[str, str, set[tuple[str, int]]]] = [
    # PS701 TLS verification off / obsolete protocols
    ("requests-verify", "import requests\nrequests.get(u, verify=False)", {("PS701", 2)}),
    ("requests-alias", "import requests as r\nr.post(u, data=d, verify=False)", {("PS701", 2)}),
    ("session-get-verify", "s.get(u, verify=False)", {("PS701", 1)}),
    ("httpx-client", "import httpx\nc = httpx.Client(verify=False)", {("PS701", 2)}),
    ("verify-constant", "import requests\nV = False\nrequests.get(u, verify=V)", {("PS701", 3)}),
    (
        "session-verify-attr",
        "import requests\ns = requests.Session()\ns.verify = False",
        {("PS701", 3)},
    ),
    (
        "urllib3-cert-none",
        "import urllib3\nurllib3.PoolManager(cert_reqs='CERT_NONE')",
        {("PS701", 2)},
    ),
    (
        "urllib3-ssl-cert-none",
        "import urllib3, ssl\nurllib3.PoolManager(cert_reqs=ssl.CERT_NONE)",
        {("PS701", 2)},
    ),
    ("unverified-context", "import ssl\nctx = ssl._create_unverified_context()", {("PS701", 2)}),
    (
        "default-https-context",
        "import ssl\nssl._create_default_https_context = ssl._create_unverified_context",
        {("PS701", 2)},
    ),
    (
        "check-hostname",
        "import ssl\nctx = ssl.create_default_context()\nctx.check_hostname = False\n"
        "ctx.verify_mode = ssl.CERT_NONE",
        {("PS701", 3), ("PS701", 4)},
    ),
    ("protocol-sslv3", "import ssl\nssl.SSLContext(ssl.PROTOCOL_SSLv3)", {("PS701", 2)}),
    ("wrap-socket", "import ssl\nssl.wrap_socket(sock)", {("PS701", 2)}),
    ("aiohttp-ssl-false", "async def f(s):\n    await s.get(u, ssl=False)", {("PS701", 2)}),
    # PS702 SSH host keys
    (
        "paramiko-autoadd",
        "import paramiko\nc = paramiko.SSHClient()\n"
        "c.set_missing_host_key_policy(paramiko.AutoAddPolicy())",
        {("PS702", 3)},
    ),
    (
        "paramiko-warning-from",
        "from paramiko.client import WarningPolicy\nc.set_missing_host_key_policy(WarningPolicy)",
        {("PS702", 2)},
    ),
    (
        "asyncssh-known-hosts",
        "import asyncssh\nasync def f():\n    await asyncssh.connect(h, known_hosts=None)",
        {("PS702", 3)},
    ),
    # PS703 weak hashes
    ("md5", "import hashlib\nhashlib.md5(data).hexdigest()", {("PS703", 2)}),
    ("sha1-from", "from hashlib import sha1\nsha1(pw)", {("PS703", 2)}),
    ("hashlib-new-md5", "import hashlib\nhashlib.new('MD5', b)", {("PS703", 2)}),
    ("pycryptodome-md5", "from Crypto.Hash import MD5\nMD5.new(b)", {("PS703", 2)}),
    (
        "cryptography-sha1",
        "from cryptography.hazmat.primitives import hashes\nhashes.Hash(hashes.SHA1())",
        {("PS703", 2)},
    ),
    # PS704 weak ciphers and keys
    ("des", "from Crypto.Cipher import DES\nDES.new(k, DES.MODE_CBC)", {("PS704", 2)}),
    ("arc4", "import Cryptodome.Cipher.ARC4 as rc4\nrc4.new(k)", {("PS704", 2)}),
    (
        "ecb",
        "from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes\n"
        "Cipher(algorithms.AES(k), modes.ECB())",
        {("PS704", 2)},
    ),
    ("aes-ecb", "from Crypto.Cipher import AES\nAES.new(k, AES.MODE_ECB)", {("PS704", 2)}),
    (
        "rsa-1024",
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "rsa.generate_private_key(public_exponent=65537, key_size=1024)",
        {("PS704", 2)},
    ),
    # PS705 bind all interfaces
    ("socket-bind", "import socket\ns = socket.socket()\ns.bind(('0.0.0.0', 80))", {("PS705", 3)}),
    ("bind-empty", "sock.bind(('', port))", {("PS705", 1)}),
    ("flask-host", "app.run(host='0.0.0.0', port=8080)", {("PS705", 1)}),
    ("uvicorn-ipv6", "import uvicorn\nuvicorn.run(app, host='::')", {("PS705", 2)}),
    (
        "http-server",
        "from http.server import HTTPServer\nHTTPServer(('', 8000), Handler)",
        {("PS705", 2)},
    ),
    (
        "make-server",
        "from wsgiref.simple_server import make_server\nmake_server('', 8000, app)",
        {("PS705", 2)},
    ),
    (
        "asyncio-start-server",
        "import asyncio\nasync def f():\n    await asyncio.start_server(cb, '0.0.0.0', 8888)",
        {("PS705", 3)},
    ),
    # PS801 SQL by formatting
    ("sql-fstring", "cur.execute(f'SELECT * FROM users WHERE id = {uid}')", {("PS801", 1)}),
    ("sql-percent", "cur.execute('DELETE FROM t WHERE name = %s' % name)", {("PS801", 1)}),
    ("sql-plus", "c.executemany('INSERT INTO t VALUES (' + vals + ')', rows)", {("PS801", 1)}),
    ("sql-format", "db.execute('UPDATE t SET a = {}'.format(a))", {("PS801", 1)}),
    (
        "sql-variable",
        "def f(cur, name):\n    q = f\"select id from users where name = '{name}'\"\n"
        "    cur.execute(q)",
        {("PS801", 3)},
    ),
    (
        "sql-augassign",
        "def f(cur, x):\n    q = 'SELECT a FROM t'\n    q += ' WHERE b = ' + x\n    cur.execute(q)",
        {("PS801", 4)},
    ),
    (
        "sqlite-connect",
        "import sqlite3\nc = sqlite3.connect(':memory:')\nc.executescript(f'DROP TABLE {t}')",
        {("PS801", 3)},
    ),
    (
        "rawsql",
        "from django.db.models.expressions import RawSQL\nRawSQL(f'select x from y where z={v}', ())",
        {("PS801", 2)},
    ),
    # PS802 XML
    ("etree-parse", "import xml.etree.ElementTree as ET\nET.parse(f)", {("PS802", 2)}),
    (
        "etree-fromstring",
        "from xml.etree.ElementTree import fromstring\nfromstring(s)",
        {("PS802", 2)},
    ),
    ("minidom", "from xml.dom import minidom\nminidom.parseString(s)", {("PS802", 2)}),
    ("sax", "import xml.sax\nxml.sax.parseString(s, h)", {("PS802", 2)}),
    ("pulldom", "import xml.dom.pulldom as p\np.parse(f)", {("PS802", 2)}),
    ("lxml-fromstring", "from lxml import etree\netree.fromstring(s)", {("PS802", 2)}),
    ("lxml-parser", "from lxml import etree\netree.XMLParser()", {("PS802", 2)}),
    # PS803 tar extraction
    ("tar-extractall", "import tarfile\ntarfile.open(p).extractall(d)", {("PS803", 2)}),
    (
        "tar-with",
        "import tarfile\nwith tarfile.open(p) as tf:\n    tf.extractall()",
        {("PS803", 3)},
    ),
    (
        "tar-fully-trusted",
        "import tarfile\ntf = tarfile.open(p)\ntf.extract(m, filter='fully_trusted')",
        {("PS803", 3)},
    ),
    (
        "tar-subclass",
        "import tarfile\nclass T(tarfile.TarFile):\n    pass\nT(p).extractall()",
        {("PS803", 4)},
    ),
    ("unpack-archive", "import shutil\nshutil.unpack_archive(p, d)", {("PS803", 2)}),
    # PS804 zip from a computed path
    (
        "zip-computed",
        "import zipfile\nwith zipfile.ZipFile(path) as z:\n    z.extractall(d)",
        {("PS804", 3)},
    ),
    # PS805 mktemp
    ("mktemp", "import tempfile\nname = tempfile.mktemp()", {("PS805", 2)}),
    ("mktemp-from", "from tempfile import mktemp as mk\nopen(mk(), 'w')", {("PS805", 2)}),
    # PS806 templates
    ("jinja-default", "import jinja2\nenv = jinja2.Environment(loader=l)", {("PS806", 2)}),
    (
        "jinja-false",
        "from jinja2 import Environment\nEnvironment(autoescape=False)",
        {("PS806", 2)},
    ),
    ("jinja-template", "from jinja2 import Template\nTemplate(src).render(x=x)", {("PS806", 2)}),
    ("mako", "from mako.template import Template\nTemplate(src)", {("PS806", 2)}),
    (
        "mark-safe",
        "from django.utils.safestring import mark_safe\nmark_safe(f'<b>{x}</b>')",
        {("PS806", 2)},
    ),
    ("markup", "from markupsafe import Markup\nMarkup(user_text)", {("PS806", 2)}),
    # PS807 world-writable modes
    ("chmod-777", "import os\nos.chmod(p, 0o777)", {("PS807", 2)}),
    ("path-chmod", "p.chmod(0o666)", {("PS807", 1)}),
    # PS604 trojan source
    ("bidi", "access = 'user\u202e'\n", {("PS604", 1)}),
    # PS602: Flask's debugger
    (
        "flask-debug",
        "from flask import Flask\napp = Flask(__name__)\napp.run(debug=True)",
        {("PS602", 3)},
    ),
]

FAMILIES_BENIGN: list[tuple[str, str]] = [
    # What PS804 and PS806 advise.
    (
        "zip-members-one-by-one",
        "import zipfile\nwith zipfile.ZipFile(p) as z:\n    for info in z.infolist():\n"
        "        if info.file_size > 10_000_000:\n            raise ValueError(info)\n"
        "        z.extract(info, dest)",
    ),
    ("markup-escaped", "from markupsafe import Markup, escape\nMarkup(escape(x))"),
    ("markup-html-escaped", "import html, markupsafe\nmarkupsafe.Markup(html.escape(x))"),
    (
        "mark-safe-escaped",
        "from django.utils.safestring import mark_safe\n"
        "from django.utils.html import escape\nmark_safe(escape(x))",
    ),
    ("environ-items", "import os\nfor k, v in os.environ.items():\n    print(k, v)"),
    ("vars-of-an-object", "class A:\n    pass\nfor k, v in vars(A()).items():\n    print(k, v)"),
    ("vars-of-json", "import json\nfor k, v in vars(json).items():\n    print(k)"),
    ("vars-get-constant", "import os\nsep = vars(os).get('sep')"),
    ("getmembers-of-a-class", "import inspect\nclass A:\n    pass\ninspect.getmembers(A)"),
    ("requests-default", "import requests\nrequests.get(u, timeout=5)"),
    ("requests-ca-bundle", "import requests\nrequests.get(u, verify='/etc/ca.pem')"),
    ("verify-other-function", "def check(verify=False):\n    pass\ncheck(verify=False)"),
    ("cert-required", "import ssl, urllib3\nurllib3.PoolManager(cert_reqs=ssl.CERT_REQUIRED)"),
    ("check-hostname-true", "ctx.check_hostname = True"),
    ("compare-cert-none", "import ssl\nif ctx.verify_mode == ssl.CERT_NONE:\n    pass"),
    ("paramiko-reject", "import paramiko\nc.set_missing_host_key_policy(paramiko.RejectPolicy())"),
    ("md5-not-security", "import hashlib\nhashlib.md5(b, usedforsecurity=False)"),
    ("sha256", "import hashlib\nhashlib.sha256(b)\nhashlib.new('sha256')"),
    ("aes-gcm", "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\nAESGCM(k)"),
    (
        "rsa-2048",
        "from cryptography.hazmat.primitives.asymmetric import rsa\n"
        "rsa.generate_private_key(public_exponent=65537, key_size=2048)",
    ),
    ("bind-localhost", "sock.bind(('127.0.0.1', 80))\napp.run(host='127.0.0.1')"),
    ("connect-host", "conn.connect(('0.0.0.0', 80)) if False else None"),
    ("tk-bind", "widget.bind('<Return>', callback)"),
    ("sql-params", "cur.execute('SELECT * FROM t WHERE id = ?', (uid,))"),
    ("sql-constant-format", "T = 'users'\ncur.execute('SELECT * FROM %s' % T)"),
    ("sql-constant-fstring", "cur.execute(f'SELECT 1 FROM {\"t\"}')"),
    ("execute-not-sql", "runner.execute(f'echo {x}')\ncur.execute(query)"),
    ("defusedxml", "import defusedxml.ElementTree as ET\nET.fromstring(s)"),
    (
        "lxml-safe",
        "from lxml import etree\np = etree.XMLParser(resolve_entities=False)\n"
        "etree.fromstring(s, p)",
    ),
    ("etree-build", "import xml.etree.ElementTree as ET\nET.Element('a')\nET.tostring(e)"),
    (
        "tar-filter",
        "import tarfile\nwith tarfile.open(p) as tf:\n    tf.extractall(d, filter='data')",
    ),
    ("unpack-filter", "import shutil\nshutil.unpack_archive(p, d, filter='data')"),
    ("zip-literal", "import zipfile\nzipfile.ZipFile('bundle.zip').extractall('out')"),
    ("mkstemp", "import tempfile\nfd, name = tempfile.mkstemp()"),
    (
        "jinja-autoescape",
        "import jinja2\njinja2.Environment(autoescape=jinja2.select_autoescape())",
    ),
    ("jinja-true", "from jinja2 import Environment\nEnvironment(autoescape=True)"),
    ("mako-h", "from mako.template import Template\nTemplate(src, default_filters=['h'])"),
    ("markup-literal", "from markupsafe import Markup\nMarkup('<br>')"),
    ("chmod-644", "import os, stat\nos.chmod(p, 0o644)\np.chmod(0o755)"),
    ("bidi-escape", "s = '\\u202e'"),
    ("flask-run", "from flask import Flask\napp = Flask(__name__)\napp.run(debug=False)"),
    ("pathlib-bind-method", "server.bind(address)"),
    # import machinery: the loader, not the spec, is what runs code
    (
        "spec-from-loader",
        "from importlib.util import spec_from_loader\ns = spec_from_loader('m', self)",
    ),
]


#: A walk over a sensitive module's members that tests no name reaches any of them: a
#: warning (PS108), as ``getattr(os, x)`` is; the same walk picking one by name is PS109.
NAMESPACE_WALKS: list[tuple[str, str, set[tuple[str, int]]]] = [
    (
        "callable-table",
        "import builtins\nC = frozenset(n for n, v in vars(builtins).items() if callable(v))",
        {("PS108", 2)},
    ),
    (
        "picked-by-startswith",
        'import os\nfs = [v for k, v in vars(os).items() if k.startswith("sys")]',
        {("PS109", 2)},
    ),
]

# -- evasions the older rules missed ------------------------------------------------------

EVASIONS: list[tuple[str, str, set[tuple[str, int]]]] = [
    # A sensitive module's members iterated and one picked by a test on its name.
    (
        "vars-items-listcomp",
        'import os\n[v for k, v in vars(os).items() if k == "system"][0]("id")',
        {("PS109", 2)},
    ),
    (
        "dict-items-next",
        'import os\nnext(v for k, v in os.__dict__.items() if k == "system")("id")',
        {("PS109", 2)},
    ),
    (
        "vars-items-dictcomp",
        'import os\nf = {k: v for k, v in vars(os).items() if k == "system"}\nf["system"]("id")',
        {("PS109", 2)},
    ),
    (
        "vars-items-for-loop",
        'import os\nfor k, v in vars(os).items():\n    if k == "system":\n        v("id")',
        {("PS109", 2)},
    ),
    (
        "getmembers-loop",
        'import inspect, os\nfor k, v in inspect.getmembers(os):\n    if k == "system":\n        v("id")',
        {("PS109", 2)},
    ),
    ("vars-values-index", 'import os\nlist(vars(os).values())[5]("id")', {("PS108", 2)}),
    ("vars-computed-key", "import os\ndef f(n):\n    vars(os)[n]('id')", {("PS108", 3)}),
    ("dict-get-computed", "import os\nos.__dict__.get(n)('id')", {("PS108", 2)}),
    (
        "vars-get-decoded",
        "import os, base64\nvars(os).get(base64.b64decode(x).decode())('id')",
        {("PS109", 2)},
    ),
    ("vars-copy-constant", "import os\nb = vars(os).copy()\nb['system']('id')", {("PS201", 3)}),
    ("profile-class", "import profile\nprofile.Profile().run('x')", {("PS104", 2)}),
    ("cprofile-class", "import cProfile\ncProfile.Profile().runctx(s, {}, {})", {("PS104", 2)}),
    ("trace-run", "import trace\ntrace.Trace().run('import os')", {("PS104", 2)}),
    (
        "trace-bound",
        "import trace\nt = trace.Trace(count=False)\nt.runctx(s, {}, {})",
        {("PS104", 3)},
    ),
    ("bdb-run", "import bdb\nbdb.Bdb().run(code)", {("PS104", 2)}),
    ("bdb-runeval", "from bdb import Bdb\nb = Bdb()\nb.runeval(expr)", {("PS104", 3)}),
    ("timeit-main", "import timeit\ntimeit.main(['-s', setup, stmt])", {("PS103", 2)}),
    (
        "find-spec-exec-module",
        "import importlib.util\nspec = importlib.util.find_spec('os')\n"
        "m = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(m)\nm.system(c)",
        {("PS105", 3), ("PS201", 5)},
    ),
    (
        "find-spec-computed",
        "from importlib.util import find_spec, module_from_spec\n"
        "m = module_from_spec(find_spec(name))",
        {("PS106", 2)},
    ),
    ("match-capture", "import os\nmatch os:\n    case x:\n        x.system('id')", {("PS201", 4)}),
    (
        "match-capture-function",
        "import builtins\nmatch builtins.exec:\n    case f:\n        f(code)",
        {("PS101", 2), ("PS101", 4)},
    ),
    (
        "match-sequence",
        "import os\nmatch (os.popen, 1):\n    case (run, _):\n        run(c)",
        {("PS201", 2), ("PS201", 4)},
    ),
    (
        "match-as",
        "import builtins\nmatch builtins:\n    case object() as b:\n        b.eval(s)",
        {("PS101", 4)},
    ),
    (
        "reduce-getattr",
        "import functools, os\nfunctools.reduce(getattr, ['path', 'os', 'system'], os)('id')",
        {("PS201", 2)},
    ),
    (
        "reduce-builtins",
        "from functools import reduce\nimport builtins\nreduce(getattr, ['eval'], builtins)(s)",
        {("PS101", 3)},
    ),
    (
        "vars-in-comprehension",
        "[vars()[n] for n in ['__builtins__']][0]['exec'](s)",
        {("PS101", 1)},
    ),
    (
        "globals-in-comprehension",
        "import os\n[globals()[k] for k in ['os']][0].system(c)",
        {("PS201", 2)},
    ),
    (
        "dict-comprehension",
        "import builtins\n{n: vars(builtins)[n] for n in ['eval']}['eval'](s)",
        {("PS101", 2)},
    ),
    (
        "object-getattribute",
        "import os\nobject.__getattribute__(os, 'system')('id')",
        {("PS201", 2)},
    ),
    (
        "type-getattribute-alias",
        "import os\nga = type.__getattribute__\nga(os, 'popen')(c)",
        {("PS201", 3)},
    ),
    ("function-type-of-lambda", "FT = type(lambda: 0)\nf = FT(code, {})", {("PS107", 2)}),
    ("code-type-of-code", "def g(): pass\nCT = type(g.__code__)\nCT(*parts)", {("PS107", 3)}),
    (
        "mp-listener",
        "from multiprocessing.connection import Listener\n"
        "with Listener(('localhost', 6000)) as l:\n    l.accept().recv()",
        {("PS301", 2)},
    ),
    ("mp-client", "import multiprocessing.connection as mc\nc = mc.Client(addr)", {("PS301", 2)}),
    (
        "mp-connection-recv",
        "from multiprocessing.connection import Connection\nConnection.recv(c)",
        {("PS301", 2)},
    ),
    # names built by decoding, joining or rotating strings
    (
        "b64-constant",
        "import os, base64\ngetattr(os, base64.b64decode('c3lzdGVt').decode())('id')",
        {("PS201", 2)},
    ),
    (
        "rot13-constant",
        "import os, codecs\ngetattr(os, codecs.decode('flfgrz', 'rot13'))('id')",
        {("PS201", 2)},
    ),
    (
        "fromhex-constant",
        "import os\ngetattr(os, bytes.fromhex('73797374656d').decode())('id')",
        {("PS201", 2)},
    ),
    (
        "unhexlify-constant",
        "import builtins, binascii\ngetattr(builtins, binascii.unhexlify(b'6576616c').decode())(s)",
        {("PS101", 2)},
    ),
    (
        "b64-computed",
        "import os, base64\ngetattr(os, base64.b64decode(x).decode())",
        {("PS109", 2)},
    ),
    (
        "rot13-computed",
        "import os, codecs\ngetattr(os, codecs.encode(x, 'rot_13'))",
        {("PS109", 2)},
    ),
    ("reversed-computed", "import os\ngetattr(os, ''.join(reversed(x)))", {("PS109", 2)}),
    ("slice-reversed", "import subprocess\nf = getattr(subprocess, name[::-1])", {("PS109", 2)}),
    (
        "chr-join",
        "import builtins\ngetattr(builtins, ''.join(chr(c) for c in codes))(s)",
        {("PS109", 2)},
    ),
    (
        "decoded-variable",
        "import os, base64\nn = base64.b64decode(blob).decode()\nfn = getattr(os, n + '')",
        {("PS109", 3)},
    ),
    (
        "getattribute-decoded",
        "import os, base64\nobject.__getattribute__(os, base64.b32decode(x).decode())",
        {("PS109", 2)},
    ),
    (
        "reduce-decoded",
        "import functools, os, base64\nfunctools.reduce(getattr, [base64.b64decode(x)], os)",
        {("PS109", 2)},
    ),
]

# -- false positives found on real code ---------------------------------------------------

REAL_CODE_BENIGN: list[tuple[str, str]] = [
    (
        "class-registry",
        "class Base:\n    @classmethod\n    def all(cls):\n        out = set(cls.__subclasses__())\n"
        "        for c in list(out):\n            out |= set(c.__subclasses__())\n        return out",
    ),
    (
        "registry-queue",
        "def subclasses(t):\n    q = [t]\n    while q:\n        p = q.pop()\n"
        "        for c in p.__subclasses__():\n            q.append(c)",
    ),
    ("frame-name", "import sys\nname = sys._getframe(1).f_globals['__name__']"),
    ("frame-get-name", "def f(caller):\n    return caller.f_globals.get('__name__', '')"),
    ("frame-in", "def f(frame):\n    return '__file__' in frame.f_globals"),
    ("func-globals-name", "def f(fn):\n    return fn.__globals__['__name__']"),
    (
        "globals-bound-then-name",
        "import sys\ndef f(globals=None):\n"
        "    glob = globals or sys._getframe(1).f_globals\n"
        "    name = glob and glob.get('__name__') or 'unknown'\n    return name",
    ),
    ("type-of-maybe-none", "x = None\nif cond:\n    x = obj\nbases = type(x).__mro__"),
    ("type-maybe-none-param", "def f(x=None):\n    return type(x).__bases__"),
    (
        "yaml-safe-named-import",
        "import yaml\nfrom salt.utils.yamlloader import SaltYamlSafeLoader\n"
        "yaml.load(s, Loader=SaltYamlSafeLoader)",
    ),
    (
        "yaml-project-loader",
        "import yaml\nfrom ansible.parsing.yaml.loader import AnsibleLoader\n"
        "yaml.load(s, Loader=AnsibleLoader)",
    ),
    (
        "yaml-relative-loader",
        "import yaml\nfrom .loader import ConfigLoader\nyaml.load_all(s, Loader=ConfigLoader)",
    ),
    (
        "yaml-loader-module-attr",
        "import yaml\nfrom myproj import loaders\nyaml.load(s, Loader=loaders.StrictLoader)",
    ),
    (
        "yaml-branch-loaders",
        "import yaml\nfrom ansible.parsing.yaml.loader import AnsibleLoader\n"
        "from ansible.module_utils.common.yaml import SafeLoader\n"
        "def parse(v, ansible=False):\n    if ansible:\n        loader = AnsibleLoader\n"
        "    else:\n        loader = SafeLoader\n    return yaml.load(v, Loader=loader)",
    ),
    (
        "yaml-local-safe-constructor",
        "import yaml\nfrom yaml.constructor import SafeConstructor\nfrom yaml.resolver import Resolver\n"
        "from yaml.cyaml import CParser\n"
        "class C(SafeConstructor):\n    pass\nclass L(CParser, C, Resolver):\n    pass\n"
        "yaml.load_all(s, Loader=L)",
    ),
    (
        "pdb-patched",
        "import pdb\ndef setup(fake):\n    pdb.set_trace = fake\n    pdb.Pdb = fake",
    ),
    (
        "pdb-monkeypatched",
        "import pdb\ndef test_x(monkeypatch, fake):\n    monkeypatch.setattr(pdb, 'set_trace', fake)",
    ),
    (
        "pdb-mock",
        "import pdb\nfrom unittest import mock\n"
        "def test_y():\n    with mock.patch.object(pdb, 'set_trace'):\n        pass",
    ),
    ("pdb-saved", "import pdb\norig = pdb.set_trace\npdb.set_trace = lambda: None"),
]

REAL_CODE_STILL_FLAGGED: list[tuple[str, str, set[tuple[str, int]]]] = [
    (
        "yaml-loader-parameter",
        "import yaml\nfrom yaml import SafeLoader\n"
        "def load(s, Loader=SafeLoader):\n    return yaml.load(s, Loader=Loader)",
        {("PS302", 4)},
    ),
    (
        "yaml-loader-kwonly-parameter",
        "import yaml\ndef load(s, *, loader=yaml.CSafeLoader):\n    return yaml.load(s, loader)",
        {("PS302", 3)},
    ),
    (
        "yaml-third-party-unsafe-name",
        "import yaml, yamlordereddictloader\nyaml.load(s, Loader=yamlordereddictloader.Loader)",
        {("PS302", 2)},
    ),
    (
        "yaml-imported-plain-loader",
        "import yaml\nfrom compat import Loader\nyaml.load(s, Loader=Loader)",
        {("PS302", 3)},
    ),
    (
        "yaml-loader-class-on-unsafe",
        "import yaml\nclass ConfigSafeLoader(yaml.Loader):\n    pass",
        {("PS302", 2)},
    ),
    (
        "yaml-local-class-unsafe-constructor",
        "import yaml\nfrom yaml.constructor import Constructor, SafeConstructor\n"
        "class L(yaml.reader.Reader, Constructor, SafeConstructor):\n    pass\n"
        "yaml.load(s, Loader=L)",
        {("PS302", 3), ("PS302", 5)},
    ),
    ("builtin-type-subclasses", "BaseException.__subclasses__()", {("PS501", 1)}),
    ("int-subclasses", "int.__subclasses__()", {("PS501", 1)}),
    (
        "subclasses-after-walk",
        "x.__class__.__mro__[-1].__subclasses__()",
        {("PS501", 1)},
    ),
    ("none-literal-walk", "None.__class__.__base__", {("PS504", 1)}),
    ("type-none-walk", "type(None).__base__.__subclasses__()", {("PS501", 1), ("PS504", 1)}),
    ("frame-globals-write", "import sys\nsys._getframe(1).f_globals['x'] = 1", {("PS502", 2)}),
    (
        "frame-globals-bound-and-used",
        "import sys\ndef f():\n    ns = sys._getframe(1).f_globals\n    exec(code, ns)",
        {("PS502", 3), ("PS101", 4)},
    ),
    (
        "globals-builtins-key",
        "def f(fn):\n    return fn.__globals__['__builtins__']",
        {("PS502", 2)},
    ),
    ("pdb-used", "import pdb\npdb.Pdb().set_trace()", {("PS602", 2), ("PS603", 1)}),
    ("pdb-unused", "import pdb", {("PS603", 1)}),
    (
        "pdb-patched-and-called",
        "import pdb\npdb.set_trace = f\npdb.set_trace()",
        {("PS602", 3), ("PS603", 1)},
    ),
    ("registry-in-procedure", "def f(cls):\n    return cls.__subclasses__()", set()),
]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [(c, e) for _, c, e in FAMILIES + EVASIONS + NAMESPACE_WALKS + REAL_CODE_STILL_FLAGGED],
    ids=[i for i, _, _ in FAMILIES + EVASIONS + NAMESPACE_WALKS + REAL_CODE_STILL_FLAGGED],
)
def test_flagged(snippet: str, expected: set[tuple[str, int]]) -> None:
    assert codes(snippet) == expected


@pytest.mark.parametrize(
    "snippet",
    [c for _, c in FAMILIES_BENIGN + REAL_CODE_BENIGN],
    ids=[i for i, _ in FAMILIES_BENIGN + REAL_CODE_BENIGN],
)
def test_not_flagged(snippet: str) -> None:
    assert check(snippet) == []


def test_evasions_are_errors() -> None:
    for name, snippet, expected in EVASIONS:
        if {code for code, _ in expected} in ({"PS106"}, {"PS108"}):
            continue  # a computed name stays a warning, as import_module(x), getattr(os, x) are
        assert any(f.severity == "error" for f in check(snippet)), name


def test_decoded_name_is_an_error_and_computed_is_a_warning() -> None:
    (decoded,) = check("import os, base64\ngetattr(os, base64.b64decode(x).decode())")
    (computed,) = check("import os\ngetattr(os, x)")
    assert (decoded.code, decoded.severity) == ("PS109", "error")
    assert (computed.code, computed.severity) == ("PS108", "warning")


def test_subclasses_registry_is_introspection_in_procedure_mode() -> None:
    assert codes("def f(cls):\n    return cls.__subclasses__()", "procedure") == {("PS505", 2)}


def test_new_rule_severities() -> None:
    severity = {r.code: r.severity for r in RULES}
    assert {
        c: severity[c] for c in ("PS109", "PS701", "PS702", "PS704", "PS801", "PS803")
    } == dict.fromkeys(("PS109", "PS701", "PS702", "PS704", "PS801", "PS803"), "error")
    assert {severity[c] for c in ("PS703", "PS705", "PS802", "PS804", "PS806", "PS807")} == {
        "warning"
    }


# -- every rule's advice leads to code that passes ------------------------------------------

# rule -> code written the way the rule's fix says (generic mode).
ADVICE: dict[str, str] = {
    "PS101": "import json, ast\njson.loads(s)\nast.literal_eval(s)",
    "PS102": "import ast\nast.parse(src)\ncompile(src, 'f', 'exec', ast.PyCF_ONLY_AST)",
    "PS103": "import timeit\ntimeit.timeit(lambda: f(x), number=10)",
    "PS104": "import json\njson.dumps({})",
    "PS105": "import os",
    "PS106": "import json, csv\nMODULES = {'json': json, 'csv': csv}\nm = MODULES[name]",
    "PS107": "def f():\n    return 1",
    "PS108": "import os\nfn = {'getcwd': os.getcwd}[name]",
    "PS109": "import os\nos.getcwd()",
    "PS201": "import subprocess\nsubprocess.run(['sleep', '1'], check=True)",
    "PS202": "import subprocess, shlex\nsubprocess.run(shlex.split('ls -l'), check=True)",
    "PS203": "import subprocess\nsubprocess.run(['make', 'test'], check=True)",
    "PS204": "import subprocess, sys\nsubprocess.run([sys.executable, '-m', 'pip', 'list'], check=True)",
    "PS205": "import subprocess\nsubprocess.Popen(['sleep', '1']).wait()",
    "PS301": "import json\nwith open('d.json') as f:\n    json.load(f)",
    "PS302": "import yaml\nyaml.safe_load(s)\nyaml.load(s, Loader=yaml.SafeLoader)",
    "PS401": "import math",
    "PS402": "import math",
    "PS501": "import json\njson.JSONDecoder",
    "PS502": "import json",
    "PS503": "def a():\n    return 1\ndef b():\n    return 2",
    "PS504": "t = tuple",
    "PS601": "import logging.config\nlogging.config.dictConfig({'version': 1})",
    "PS602": "x = 1",
    "PS603": "x = 1",
    "PS604": "s = '\\u202e'",
    "PS701": "import requests, ssl\nrequests.get(u, verify='/etc/ca.pem')\n"
    "ctx = ssl.create_default_context(cafile='ca.pem')",
    "PS702": "import paramiko\nc = paramiko.SSHClient()\nc.load_system_host_keys()",
    "PS703": "import hashlib\nhashlib.sha256(b)\nhashlib.md5(b, usedforsecurity=False)",
    "PS704": "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\nAESGCM(k)",
    "PS705": "sock.bind(('127.0.0.1', 80))\napp.run(host=HOST)",
    "PS801": "cur.execute('SELECT * FROM t WHERE id = ?', (uid,))",
    "PS802": "import defusedxml.ElementTree as ET\nET.fromstring(s)",
    "PS803": "import tarfile\nwith tarfile.open(p) as tf:\n    tf.extractall(d, filter='data')",
    "PS804": "import zipfile\nwith zipfile.ZipFile(p) as z:\n    for info in z.infolist():\n"
    "        z.open(info)",
    "PS805": "import tempfile\nwith tempfile.NamedTemporaryFile() as f:\n    pass",
    "PS806": "import jinja2\njinja2.Environment(autoescape=jinja2.select_autoescape())",
    "PS807": "import os\nos.chmod(p, 0o644)",
}


def test_every_generic_rule_has_advice_that_passes() -> None:
    generic = {r.code for r in RULES if not r.code.startswith("PS9") and r.code != "PS505"}
    assert generic == set(ADVICE)
    for code, snippet in ADVICE.items():
        assert check(snippet) == [], code


def test_procedure_with_subprocess_capability_passes_a_literal_argv() -> None:
    code = "import subprocess\n\ndef run():\n    subprocess.run(['sleep', '1'], check=True)\n"
    assert check(code, "procedure", capabilities=Capabilities(subprocess=True)) == []
    # without the capability, the import is what is missing, and the message says so
    findings = check(code, "procedure")
    assert {(f.code, f.line) for f in findings} == {("PS901", 1)}
    assert "capabilities.subprocess" in findings[0].message


def test_procedure_process_findings_name_the_capability() -> None:
    (shell,) = [f for f in check("import os\nos.system(c)", "procedure") if f.code == "PS201"]
    assert "capabilities.subprocess" in shell.message
    with_cap = check(
        "import subprocess\nsubprocess.run(c, shell=True)",
        "procedure",
        capabilities=Capabilities(subprocess=True),
    )
    assert [f.code for f in with_cap] == ["PS202"]
    assert "capabilities.subprocess" not in with_cap[0].message


def test_computed_argv_still_warns() -> None:
    (finding,) = check("import subprocess\nsubprocess.run(['git', 'log', ref])")
    assert (finding.code, finding.severity) == ("PS205", "warning")
    assert "computed" in finding.message


# -- the same cases as corpus files (tests/data/safety), as the shared corpora are read ----

DATA = Path(__file__).resolve().parent / "data" / "safety"


@pytest.mark.parametrize("path", sorted((DATA / "dangerous").glob("*.py")), ids=lambda p: p.name)
def test_evasion_corpus_gives_an_error(path: Path) -> None:
    findings = SafetyValidator().check(SourceFile(str(path), path.read_text()), CheckContext())
    assert any(f.severity == "error" for f in findings)


@pytest.mark.parametrize("path", sorted((DATA / "benign").glob("*.py")), ids=lambda p: p.name)
def test_real_code_corpus_gives_nothing(path: Path) -> None:
    findings = SafetyValidator().check(SourceFile(str(path), path.read_text()), CheckContext())
    assert list(findings) == []


def test_corpus_files_are_there() -> None:
    assert len(list((DATA / "dangerous").glob("*.py"))) >= 30
    assert len(list((DATA / "benign").glob("*.py"))) >= 15


def _bandit_tests() -> list[str]:
    """The test ids the installed bandit lists in ``bandit --help``."""
    import re
    import shutil
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "bandit"
    found = str(exe) if exe.exists() else shutil.which("bandit")
    if found is None:
        pytest.skip("bandit is not installed (pip install '.[lint]')")
    text = subprocess.run([found, "--help"], capture_output=True, text=True, check=True).stdout
    listed = text.split("The following tests were discovered and loaded:", 1)[1]
    return re.findall(r"^\s+(B\d{3})\s", listed, flags=re.MULTILINE)


def _table_ids() -> set[str]:
    """The bandit ids docs/checks-safety.md's table names, ranges (B313–B319) expanded."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "checks-safety.md").read_text()
    table = doc.split("## Bandit tests and the rules that cover them", 1)[1]
    ids: set[str] = set()
    for first, last in re.findall(r"^\| (B\d{3})(?:[–-](B\d{3}))?", table, flags=re.MULTILINE):
        end = int((last or first)[1:])
        ids.update(f"B{n}" for n in range(int(first[1:]), end + 1))
    return ids


def test_the_bandit_table_names_every_test_bandit_lists() -> None:
    """A bandit user looks up each test they know: every id the installed bandit lists has
    its row (what covers it, or why nothing does)."""
    listed = _bandit_tests()
    assert len(listed) > 50
    missing = sorted(set(listed) - _table_ids())
    assert not missing, f"docs/checks-safety.md has no row for {missing}"


def _documented_examples() -> dict[str, tuple[list[str], list[str], str]]:
    """docs/checks-safety.md, rule by rule: its ``# flagged`` blocks, its fixes (``# instead``
    or ``# not flagged`` blocks) and the mode they are read in (a fix headed ``(procedure
    mode...)`` is checked in procedure mode, with the capabilities it names)."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "checks-safety.md").read_text()
    out = {}
    for section in re.split(r"^#### ", doc, flags=re.MULTILINE)[1:]:
        code = section.split()[0]
        blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
        flagged = [b for b in blocks if b.startswith("# flagged")]
        fixes = [b for b in blocks if b.startswith(("# instead", "# not flagged"))]
        out[code] = (flagged, fixes, section)
    return out


def _imports_for(snippet: str) -> str:
    """The documented snippets leave out their imports: each module the snippet names
    (``os.system`` names ``os``) among those the rules watch, and the few more the
    examples use (``base64``, ``inspect``...), is imported first, as the reader's file
    would."""
    import re

    from proctor.plugins.safety import watch

    watched = {n.split(".")[0] for n in (*watch.CALLS, *watch.REFS, *watch.CALL_RESULTS)}
    names = watched | {
        *("base64", "inspect", "operator", "functools", "urllib3", "sqlite3"),
        *("defusedxml", "json", "csv"),
    }
    used = {m for m in re.findall(r"\b([A-Za-z_]\w*)[.,)]", snippet) if m in names}
    return "".join(f"import {m}\n" for m in sorted(used))


def _mode_of(fix: str) -> tuple[str, dict[str, object]]:
    head = fix.splitlines()[0]
    if "procedure mode" not in head:
        return "generic", {}
    caps = Capabilities(
        network="network" in head, subprocess="subprocess" in head.split("mode", 1)[1]
    )
    return "procedure", {"capabilities": caps}


@pytest.mark.parametrize("code", sorted(r.code for r in RULES))
def test_each_rules_documented_fix_passes(code: str) -> None:
    """Every rule's doc gives the fix as code, and following it passes: the rule does not
    fire on that code (checked with the imports its names need), while it does on the
    section's flagged example where the example can stand alone."""
    flagged, fixes, _section = _documented_examples()[code]
    assert fixes, f"{code}: docs/checks-safety.md gives no `# instead` example"
    for fix in fixes:
        mode, context = _mode_of(fix)
        found = [f for f in check(_imports_for(fix) + fix, mode, **context) if f.code == code]
        assert not found, f"{code}: the documented fix is still flagged: {found}"
    if code in _EXAMPLES_NEEDING_MORE:
        return
    mode = "procedure" if code.startswith("PS9") or code == "PS505" else "generic"
    for example in flagged:
        found = [f for f in check(_imports_for(example) + example, mode) if f.code == code]
        assert found, f"{code}: the documented flagged example is not flagged"


#: Flagged examples that cannot stand alone with their imports: raw bidi characters the
#: doc shows escaped (PS604), names imported from packages (PS704: ``from Crypto.Cipher
#: import DES``).
_EXAMPLES_NEEDING_MORE = {"PS604", "PS704"}
