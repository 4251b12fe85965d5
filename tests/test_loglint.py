"""The log lint: which calls are logging calls, what their message says, how it is built.

Every case calls the validator directly on a snippet; the tables read as
``snippet -> [(code, line), ...]`` so a new case is one line.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from proctor.checks.settings import CheckSettings
from proctor.checks.validation import CheckContext, Finding, SourceFile
from proctor.core.errors import ConfigError
from proctor.core.plugins import PluginManager
from proctor.plugins.loglint import DEFAULT_DISALLOWED, RULES, LogLintValidator, compile_phrases

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "checks-loglint.md"


def findings(code: str, settings: CheckSettings | None = None) -> list[Finding]:
    source = SourceFile("x.py", textwrap.dedent(code))
    return list(LogLintValidator().check(source, CheckContext(settings=settings)))


def codes(code: str, settings: CheckSettings | None = None) -> list[tuple[str, int]]:
    """(code, line) pairs in line order, codes sorted within a line."""
    return sorted(((f.code, f.line) for f in findings(code, settings)), key=lambda p: (p[1], p[0]))


def settings(
    disallowed: list[str] | None = None, logger_objects: list[str] | None = None
) -> CheckSettings:
    table: dict[str, list[str]] = {}
    if disallowed is not None:
        table["disallowed"] = disallowed
    if logger_objects is not None:
        table["logger-objects"] = logger_objects
    return CheckSettings(tables={"log-lint": table})


# --- corpora -----------------------------------------------------------------------------


def _corpus(kind: str) -> list[Path]:
    directory = CORPORA / "loglint" / kind
    return sorted(directory.glob("*.py")) if directory.is_dir() else []


needs_corpora = pytest.mark.skipif(
    not (CORPORA / "loglint").is_dir(), reason=f"shared corpora not found at {CORPORA}"
)


@needs_corpora
@pytest.mark.parametrize("path", _corpus("flagged"), ids=lambda p: p.name)
def test_flagged_corpus_has_a_disallowed_phrase(path: Path) -> None:
    found = findings(path.read_text(encoding="utf-8"))
    assert any(f.code == "PL101" for f in found), found


@needs_corpora
@pytest.mark.parametrize("path", _corpus("clean"), ids=lambda p: p.name)
def test_clean_corpus_gives_nothing(path: Path) -> None:
    assert findings(path.read_text(encoding="utf-8")) == []


@needs_corpora
def test_corpora_are_not_empty() -> None:
    assert _corpus("flagged") and _corpus("clean")


# --- which calls are logging calls -------------------------------------------------------

LOGGER_FORMS = [
    ("module", 'import logging\nlogging.info("retry")\n', 2),
    ("module alias", 'import logging as lg\nlg.warning("retry")\n', 2),
    ("module alias submodule", 'import logging.handlers\nlogging.error("retry")\n', 2),
    ("from import", 'from logging import info\ninfo("retry")\n', 2),
    ("from import alias", 'from logging import error as err\nerr("retry")\n', 2),
    ("star import", 'from logging import *\ncritical("retry")\n', 2),
    ("from import log", 'from logging import log\nlog(30, "retry")\n', 2),
    (
        "getLogger name",
        'import logging\nout = logging.getLogger(__name__)\nout.error("retry")\n',
        3,
    ),
    (
        "getLogger imported",
        'from logging import getLogger\n_l = getLogger()\n_l.info("retry")\n',
        3,
    ),
    (
        "getLogger alias module",
        'import logging as lg\nsink = lg.getLogger()\nsink.info("retry")\n',
        3,
    ),
    ("inline getLogger", 'import logging\nlogging.getLogger(__name__).warning("retry")\n', 2),
    ("inline getChild", 'import logging\nlogging.getLogger("a").getChild("b").info("retry")\n', 2),
    ("structlog", 'import structlog\nstructlog.get_logger().info("retry")\n', 2),
    ("logging.root", 'import logging\nlogging.root.info("retry")\n', 2),
    ("from logging import root", 'from logging import root\nroot.info("retry")\n', 2),
    (
        "adapter",
        'import logging\nad = logging.LoggerAdapter(logging.getLogger(), {})\nad.info("retry")\n',
        3,
    ),
    (
        "alias of a logger",
        'import logging\nbase = logging.getLogger()\nother = base\nother.info("retry")\n',
        4,
    ),
    (
        "bound after use",
        'def f():\n    out.info("retry")\nimport logging\nout = logging.getLogger()\n',
        2,
    ),
    (
        "self attribute",
        """\
        import logging
        class A:
            def __init__(self):
                self.out = logging.getLogger("a")
            def f(self):
                self.out.info("retry")
        """,
        6,
    ),
    (
        "class attribute",
        """\
        import logging
        class A:
            sink = logging.getLogger("a")
            def f(self):
                self.sink.info("retry")
                A.sink.info("retry")
        """,
        5,
    ),
    (
        "annotated parameter",
        'import logging\ndef f(out: logging.Logger):\n    out.info("retry")\n',
        3,
    ),
    (
        "annotated optional",
        "from typing import Optional\nfrom logging import Logger\n"
        'def f(out: Optional[Logger]):\n    out.info("retry")\n',
        4,
    ),
    (
        "annotated union",
        'import logging\ndef f(out: "logging.Logger | None"):\n    out.info("retry")\n',
        3,
    ),
    (
        "annotated assignment",
        'from logging import Logger\nout: Logger = make()\nout.info("retry")\n',
        3,
    ),
    ("walrus", 'import logging\nif (out := logging.getLogger()):\n    out.info("retry")\n', 3),
    ("log", 'log.info("retry")\n', 1),
    ("logger", 'logger.info("retry")\n', 1),
    ("LOG", 'LOG.info("retry")\n', 1),
    ("LOGGER", 'LOGGER.info("retry")\n', 1),
    ("_logger", '_logger.debug("retry")\n', 1),
    ("app_log", 'app_log.error("retry")\n', 1),
    ("AuditLog", 'AuditLog.error("retry")\n', 1),
    ("self.logger", 'self.logger.critical("retry")\n', 1),
    ("self.log", 'self.log.fatal("retry")\n', 1),
    ("deep attribute", 'self.app.request_logger.info("retry")\n', 1),
    ("loguru", 'from loguru import logger\nlogger.bind(user=1).info("retry")\n', 2),
    (".log method", 'import logging\nlogger.log(logging.INFO, "retry")\n', 2),
    ("logging.log", 'import logging\nlogging.log(20, "retry")\n', 2),
    ("msg keyword", 'logger.info(msg="retry")\n', 1),
    ("msg keyword .log", 'logger.log(20, msg="retry")\n', 1),
    (
        "exception in except",
        'try:\n    pass\nexcept Exception:\n    logger.exception("retry")\n',
        4,
    ),
    ("multi-line call", 'logger.info(\n    "x=%s",\n    x,\n)\nlogger.info(\n    "retry"\n)\n', 6),
    ("receiver on its own line", 'logger\\\n    .info("retry")\n', 2),
]


@pytest.mark.parametrize("name,code,line", LOGGER_FORMS, ids=[c[0] for c in LOGGER_FORMS])
def test_logging_call_forms_are_read(name: str, code: str, line: int) -> None:
    found = [f for f in findings(code) if f.code == "PL101"]
    assert found and found[0].line == line, found


NOT_LOGGING = [
    (
        "comment",
        'import logging\nlogger = logging.getLogger()\n# we never retry\nlogger.info("done")\n',
    ),
    ("trailing comment", 'logger.info("done")  # retry later\n'),
    ("docstring", '"""Retry policy."""\ndef f():\n    """Retrying helpers."""\n'),
    ("print", 'print("retrying")\n'),
    ("exception message", 'raise ValueError("retry budget must be positive")\n'),
    ("plain string", 'x = "retry"\n'),
    ("warnings.warn", 'import warnings\nwarnings.warn("retry")\n'),
    ("parser.error", 'parser.error("retry")\n'),
    ("self.error", 'self.error("retry")\n'),
    ("self.log method", 'self.log("retry")\n'),
    ("console.log", 'console.info("retry")\n'),
    ("own info function", 'def info(m):\n    pass\ninfo("retry")\n'),
    ("info from elsewhere", 'from mylib import info\ninfo("retry")\n'),
    ("math.log", "import math\nmath.log(10)\n"),
    ("logger attr not called", 'cb = logger.info\ncb("retry")\n'),
    ("subscripted loggers", 'loggers["a"].info("retry")\n'),
    ("call result", 'make().info("retry")\n'),
    ("variable arg", 'logger.info("count=%s", retry_count)\n'),
    ("variable message", "logger.info(retry_message)\n"),
    ("other constant arg", 'logger.info("%s", "retrying")\n'),
    ("level arg of .log", 'logger.log("retry", "done")\n'),
    ("extra", 'logger.info("done", extra={"note": "retry"})\n'),
    ("exc_info", 'logger.error("done", exc_info="retry")\n'),
    ("entry", 'logger.info("registry entry created")\n'),
    ("retrieve", 'logger.info("retrieve the value")\n'),
    ("tryst", 'logger.info("a tryst at the entry")\n'),
    ("identifier", 'logger.info("see retrying_policy and max_retries")\n'),
    ("retryable", 'logger.info("not retryable")\n'),
    ("reattempted inside word", 'logger.info("unreattemptedly")\n'),
    ("mapping key", 'logger.info("%(retry)s attempts", {"retry": 3})\n'),
    ("mapping key joined", 'logger.info("%(retry_count)s", {"retry_count": 3})\n'),
    ("words across a placeholder", 'logger.info("try %s again", x)\n'),
    ("module constant reassigned", 'MSG = "retry"\nMSG = "done"\nlogger.info(MSG)\n'),
    ("constant in function", 'def f():\n    MSG = "retry"\n    logger.info(MSG)\n'),
    ("str of a variable", "logger.info(str(retry))\n"),
    ("gettext of a variable", "logger.info(_(retry))\n"),
    ("no logging at all", "def f(x):\n    return x + 1\n"),
]


@pytest.mark.parametrize("name,code", NOT_LOGGING, ids=[c[0] for c in NOT_LOGGING])
def test_no_finding(name: str, code: str) -> None:
    assert findings(code) == []


# --- message text ------------------------------------------------------------------------

MESSAGES = [
    ("f-string", 'logger.info(f"retry #{n}")\n', [("PL101", 1), ("PL201", 1)]),
    ("f-string after field", 'logger.info(f"{n} retries")\n', [("PL101", 1), ("PL201", 1)]),
    ("f-string constant only", 'logger.info(f"retry")\n', [("PL101", 1)]),
    ("percent operand", 'logger.info("retry %s" % n)\n', [("PL101", 1), ("PL203", 1)]),
    (
        "percent right constant",
        'logger.info("%s: failed" % ("retry",))\n',
        [("PL101", 1), ("PL203", 1)],
    ),
    ("concat literals", 'logger.info("will " + "retry")\n', [("PL101", 1)]),
    ("phrase across +", 'logger.info("try " + "again")\n', [("PL101", 1)]),
    ("concat variable", 'logger.info("x " + name + " retrying")\n', [("PL101", 1), ("PL204", 1)]),
    ("format receiver", 'logger.info("{} retries".format(n))\n', [("PL101", 1), ("PL202", 1)]),
    (
        "format constant kwarg",
        'logger.info("{a}".format(a="retrying"))\n',
        [("PL101", 1), ("PL202", 1)],
    ),
    ("format field name", 'logger.info("{retry}".format(retry=n))\n', [("PL202", 1)]),
    ("implicit concatenation", 'logger.info("try "\n            "again")\n', [("PL101", 1)]),
    ("parenthesised", 'logger.info((("retried")))\n', [("PL101", 1)]),
    ("nested", 'logger.info(("a: %s" % x) + " retried")\n', [("PL101", 1), ("PL204", 1)]),
    ("conditional", 'logger.info("retrying" if x else "done")\n', [("PL101", 1)]),
    ("or default", 'logger.info(msg or "retrying")\n', [("PL101", 1)]),
    ("join of literals", 'logger.info(" ".join(["will", "retry"]))\n', [("PL101", 1)]),
    ("upper case", 'logger.info("RETRYING NOW")\n', [("PL101", 1)]),
    ("title case", 'logger.info("Retried.")\n', [("PL101", 1)]),
    ("two spaces", 'logger.info("try  again")\n', [("PL101", 1)]),
    ("newline", 'logger.info("try\\nagain")\n', [("PL101", 1)]),
    ("hyphenated", 'logger.info("re-attempting upload")\n', [("PL101", 1)]),
    ("reattempts", 'logger.info("3 reattempts left")\n', [("PL101", 1)]),
    ("punctuation around", 'logger.info("(retry)")\n', [("PL101", 1)]),
    ("prefix placeholder", 'logger.info("%sretrying", p)\n', [("PL101", 1)]),
    ("two phrases", 'logger.info("retry failed, retrying")\n', [("PL101", 1), ("PL101", 1)]),
    ("same phrase twice", 'logger.info("retry, retry")\n', [("PL101", 1)]),
    ("module constant", 'MSG = "retrying %s"\nlogger.info(MSG, x)\n', [("PL101", 2)]),
    (
        "module constant concat",
        'PREFIX = "job: "\nlogger.info(PREFIX + "retrying")\n',
        [("PL101", 2)],
    ),
    ("f-string literal field", "logger.info(f\"{'retrying'!r}\")\n", [("PL101", 1), ("PL201", 1)]),
    ("self-documenting f-string", 'logger.info(f"{retry=}")\n', [("PL201", 1)]),
    ("self-documenting attribute", 'logger.info(f"{self.retry = }")\n', [("PL201", 1)]),
    ("gettext", 'logger.info(_("Retrying connection"))\n', [("PL101", 1)]),
    ("gettext attribute", 'logger.info(i18n.gettext("try again"))\n', [("PL101", 1)]),
    ("dedent", 'logger.info(textwrap.dedent("""\n    retried\n"""))\n', [("PL101", 1)]),
    ("str()", 'logger.info(str("retried"))\n', [("PL101", 1)]),
    ("upper", 'logger.info("retry".upper())\n', [("PL101", 1)]),
    ("walrus message", 'logger.info(m := "retrying")\n', [("PL101", 1)]),
    ("join with separator", 'logger.info("".join(["re", "try"]))\n', [("PL101", 1)]),
    (
        "message on later line",
        'logger.warning(\n    "count %d",\n    n,\n)\n'
        'logger.warning(\n    "retrying %d",\n    n,\n)\n',
        [("PL101", 6)],
    ),
]


@pytest.mark.parametrize("name,code,expected", MESSAGES, ids=[c[0] for c in MESSAGES])
def test_message_text(name: str, code: str, expected: list[tuple[str, int]]) -> None:
    assert codes(code) == expected


def test_finding_names_the_phrase_and_the_entry() -> None:
    [finding] = findings('logger.info("Upstream timed out, Retrying")\n')
    assert finding.code == "PL101"
    assert finding.severity == "error"
    assert finding.message == (
        "log message contains disallowed phrase 'Retrying' (configured entry 'retrying')"
    )


def test_finding_points_at_the_message() -> None:
    [finding] = findings('logger.info("x=%s", x); logger.debug("will retry")\n')
    assert (finding.line, finding.col) == (1, 38)
    found = findings('logger.info(\n    f"{a}: "\n    "retry")\n')
    assert [(f.code, f.line) for f in found] == [("PL101", 2), ("PL201", 2)]


def test_most_specific_entry_is_named() -> None:
    [finding] = findings('logger.info("re-attempting")\n')
    assert "configured entry 're-attempting'" in finding.message


# --- configuration -----------------------------------------------------------------------


def test_default_settings_match_no_settings() -> None:
    code = 'logger.info("retrying")\nlogger.info("try again")\n'
    assert codes(code) == codes(code, CheckSettings()) == [("PL101", 1), ("PL101", 2)]
    options = LogLintValidator().options(CheckSettings())
    assert options.disallowed == DEFAULT_DISALLOWED
    assert LogLintValidator().options(None).disallowed == DEFAULT_DISALLOWED


def test_custom_phrases_replace_the_defaults() -> None:
    s = settings(["gave up", "fallback"])
    code = (
        'logger.info("retrying")\nlogger.info("Gave  up after 3")\nlogger.info("use fallbacks")\n'
    )
    found = findings(code, s)
    assert [(f.code, f.line) for f in found] == [("PL101", 2)]
    assert "'Gave  up'" in found[0].message and "'gave up'" in found[0].message


def test_empty_list_checks_only_hygiene() -> None:
    assert codes('logger.info("retrying")\nlogger.warn("x")\n', settings([])) == [("PL205", 2)]


REGEXES = [
    (r"re:\bfail(ed|ure)?\b", 'logger.info("FAILED to send")\n', [("PL101", 1)]),
    (r"re:\bfail(ed|ure)?\b", 'logger.info("failover done")\n', []),
    (r"re:(\w+) \1\b", 'logger.info("the the end")\n', [("PL101", 1)]),
    (r"re:^\s*$", 'logger.info("   ")\n', [("PL101", 1)]),
    (r"re:x*", 'logger.info("abc")\n', []),
    (r"re:(?-i:ERROR)", 'logger.info("error")\nlogger.info("ERROR")\n', [("PL101", 2)]),
    (r"re:gave\s+up", 'logger.info("gave up " + reason)\n', [("PL101", 1), ("PL204", 1)]),
    (r"re:attempt #\d+", 'logger.info(f"attempt #{n}")\n', [("PL201", 1)]),
    (r"re:attempt \d+", 'logger.info("attempt 2 of 3")\n', [("PL101", 1)]),
]


@pytest.mark.parametrize("entry,code,expected", REGEXES)
def test_regex_entries(entry: str, code: str, expected: list[tuple[str, int]]) -> None:
    assert codes(code, settings([entry])) == expected


def test_regex_finding_names_the_pattern() -> None:
    [finding] = findings('logger.info("it failed")\n', settings([r"re:fail\w*"]))
    assert finding.message == (
        r"log message contains disallowed pattern 'failed' (configured entry 're:fail\w*')"
    )


def test_regexes_and_phrases_together() -> None:
    s = settings(["retry", r"re:\bgave up\b"])
    code = 'logger.info("retry")\nlogger.info("gave up")\nlogger.info("ok")\n'
    assert codes(code, s) == [("PL101", 1), ("PL101", 2)]


@pytest.mark.parametrize("entry", ["re:(", "re:[a-", "re:*x", "re:", "", "   "])
def test_bad_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError) as info:
        findings('print("no logging here")\n', settings(["retry", entry]))
    assert "log-lint.disallowed" in str(info.value)
    if entry.startswith("re:") and entry != "re:":
        assert repr(entry[3:]) in str(info.value)


def test_phrases_are_compiled_once_per_list() -> None:
    entries = ["alpha", "re:beta+"]
    assert compile_phrases(entries) is compile_phrases(list(entries))
    assert compile_phrases(entries) is not compile_phrases(["alpha"])


LOGGER_OBJECTS = [
    (["app.events"], 'import app\napp.events.info("retry")\n', [("PL101", 2)]),
    ([], 'import app\napp.events.info("retry")\n', []),
    (["mymod.SINK"], 'from mymod import SINK\nSINK.error("retry")\n', [("PL101", 2)]),
    (["mymod.SINK"], 'from mymod import SINK as out\nout.error("retry")\n', [("PL101", 2)]),
    (["mymod.SINK"], 'import mymod as m\nm.SINK.error("retry")\n', [("PL101", 2)]),
    (["mymod.SINK"], 'import mymod\nmymod.SINK.error("retry")\n', [("PL101", 2)]),
    (["mymod.SINK"], 'from pkg import mymod\nmymod.SINK.error("retry")\n', []),
    (["mymod.SINK"], 'SINK.error("retry")\n', []),
    (["pkg.mod.SINK"], 'from .mod import SINK\nSINK.error("retry")\n', []),
    (["mod.SINK"], 'from .mod import SINK\nSINK.error("retry")\n', [("PL101", 2)]),
    (["events"], 'events = Events()\nevents.warning("retry")\n', [("PL101", 2)]),
    (["mymod.LOGGER"], 'from mymod import LOGGER\nLOGGER.info("retry")\n', [("PL101", 2)]),
    (["app.events"], 'import app\napp.events.exception("x")\n', [("PL206", 2)]),
]


@pytest.mark.parametrize("objects,code,expected", LOGGER_OBJECTS)
def test_logger_objects(objects: list[str], code: str, expected: list[tuple[str, int]]) -> None:
    assert codes(code, settings(logger_objects=objects)) == expected


# --- hygiene -----------------------------------------------------------------------------

HYGIENE = [
    # PL201 f-string
    ('logger.info(f"got {x}")', ["PL201"]),
    ('logger.info(f"got {x!r:>10}")', ["PL201"]),
    ('logger.info(f"constant")', []),
    ('logging.info(f"got {x}")', ["PL201"]),
    # PL202 str.format
    ('logger.info("got {}".format(x))', ["PL202"]),
    ("logger.info(TEMPLATE.format(x=x))", ["PL202"]),
    ('logger.info("got {}", x)', ["PL207"]),
    # PL203 %
    ('logger.info("got %s" % x)', ["PL203"]),
    ('logger.info("got %s" % (x,))', ["PL203"]),
    ("logger.info(FMT % x)", ["PL203"]),
    ('logger.info("got %s", x)', []),
    # PL204 +
    ('logger.info("got " + x)', ["PL204"]),
    ('logger.info("got " + str(x) + "!")', ["PL204"]),
    ('logger.info("a" + "b")', []),
    ('logger.info("a" "b")', []),
    ("logger.info(str(x))", []),
    ("logger.info(x)", []),
    # PL205 warn
    ('logger.warn("careful")', ["PL205"]),
    ('logging.warn("careful")', ["PL205"]),
    ('from logging import warn\nwarn("careful")', ["PL205"]),
    ('logger.warning("careful")', []),
    ('import warnings\nwarnings.warn("careful")', []),
    # PL206 exception outside except
    ('logger.exception("failed")', ["PL206"]),
    ('logging.exception("failed")', ["PL206"]),
    ('from logging import exception\nexception("failed")', ["PL206"]),
    ('try:\n    go()\nexcept OSError:\n    logger.exception("failed")', []),
    ('try:\n    go()\nexcept* OSError:\n    logger.exception("failed")', []),
    (
        'try:\n    go()\nexcept OSError:\n    if x:\n        for y in z:\n            logger.exception("failed")',
        [],
    ),
    (
        'try:\n    go()\nexcept OSError:\n    def later():\n        logger.exception("failed")',
        ["PL206"],
    ),
    ('try:\n    go()\nexcept OSError:\n    cb = lambda: logger.exception("failed")', ["PL206"]),
    ('try:\n    go()\nexcept OSError:\n    pass\nelse:\n    logger.exception("failed")', ["PL206"]),
    ('try:\n    go()\nfinally:\n    logger.exception("failed")', ["PL206"]),
    ('def on_error(exc):\n    logger.exception("failed", exc_info=exc)', []),
    ('try:\n    go()\nexcept OSError:\n    class H:\n        logger.exception("failed")', []),
    # PL207 placeholders
    ('logger.info("%s %s", a)', ["PL207"]),
    ('logger.info("%s", a, b)', ["PL207"]),
    ('logger.info("done", a)', ["PL207"]),
    ('logger.info("%s", a)', []),
    ('logger.info("%s")', []),
    ('logger.info("100%")', []),
    ('logger.info("100%% of %s", a)', []),
    ('logger.info("%%s", a)', ["PL207"]),
    ('logger.info("%d%%", a)', []),
    ('logger.info("%.2f %-5s %r %x %5d %+d %#o %05.1e %i %c %a %u %X %G", *["a"] * 14)', []),
    (
        'logger.info("%.2f %-5s %r %x %5d %+d %#o %05.1e %i %c %a %u %X %G", a, b, c, d, e, f, g, h, i, j, k, l, m, n)',
        [],
    ),
    ('logger.info("%.2f %-5s %r", a, b)', ["PL207"]),
    ('logger.info("%*d", width, n)', []),
    ('logger.info("%*.*f", width, prec, n)', []),
    ('logger.info("%*d", n)', ["PL207"]),
    ('logger.info("%ld %hd %Lf", a, b, c)', []),
    ('logger.info("%y", a)', ["PL207"]),
    ('logger.info("50%", a)', ["PL207"]),
    ('logger.info("50% of %s", a)', ["PL207"]),
    ('logger.info("50% done", a)', []),  # '% d' is a valid conversion and takes the argument
    ('logger.info("%(a)s %(b)s", {"a": 1, "b": 2})', []),
    ('logger.info("%(a)s %(a)r", {"a": 1})', []),
    ('logger.info("%(a)s %(b)s", {"a": 1})', ["PL207"]),
    ('logger.info("%(a)s", {**base})', []),
    ('logger.info("%(a)s", mapping)', []),
    ('logger.info("%(a)s", a, b)', ["PL207"]),
    ('logger.info("%(a)s", (a,))', ["PL207"]),
    ('logger.info("%(a)s %s", mapping)', ["PL207"]),
    ('logger.info("%(a)s %%", mapping)', []),
    ('logger.info("done", {"a": 1})', []),
    ('logger.info("%s", {"a": 1})', []),
    ('logger.info("%s %s", *args)', []),
    ('logger.info("%s %s", a, *rest)', []),
    ("logger.info(*parts)", []),
    ('logger.info("%s", a, exc_info=True, extra={"b": 1}, stack_info=True, stacklevel=2)', []),
    ('logger.log(logging.INFO, "%s %s", a)', ["PL207"]),
    ('logger.log(logging.INFO, "%s %s", a, b)', []),
    ('logger.log(level, "%s")', []),
    ('FMT = "%s %s"\nlogger.info(FMT, a)', ["PL207"]),
    ('logger.info("%s %s" % (a,))', ["PL203", "PL207"]),
    ('logger.info("%s" % (a, b))', ["PL203", "PL207"]),
    ('logger.info("%s %s" % pair)', ["PL203"]),
    ('logger.info("%(a)s" % {"b": 1})', ["PL203", "PL207"]),
    ('logger.info("done" % "x")', ["PL203", "PL207"]),
    ('logger.info(f"{a} %s", b)', ["PL201"]),
    # several at once
    ('logger.warn(f"got {x}")', ["PL205", "PL201"]),
    ('logger.exception("%s %s" % (a,))', ["PL206", "PL203", "PL207"]),
]


@pytest.mark.parametrize("code,expected", HYGIENE, ids=[c[0] for c in HYGIENE])
def test_hygiene(code: str, expected: list[str]) -> None:
    found = findings(code + "\n")
    assert sorted(f.code for f in found) == sorted(expected), found
    assert all(f.severity == "warning" for f in found)


def test_placeholder_message_says_what_is_wrong() -> None:
    [finding] = findings('logger.info("%s and %s", a)\n')
    assert finding.message == "logging placeholders: 2 placeholders but 1 argument"
    [finding] = findings('logger.info("%(a)s %(b)s", {"a": 1})\n')
    assert "%(b)s" in finding.message
    [finding] = findings('logger.info("%q", a)\n')
    assert "'%q'" in finding.message and "%%" in finding.message


def test_hygiene_locations() -> None:
    code = 'logger.warn(\n    "a %s" % x)\ntry:\n    pass\nfinally:\n    logger.exception("x")\n'
    assert codes(code) == [("PL205", 1), ("PL203", 2), ("PL206", 6)]


# --- odd but valid Python ----------------------------------------------------------------

ODD = [
    "logger.info()\n",
    "logger.log()\n",
    "logger.log(20)\n",
    "logger.info(**kw)\n",
    "logger.info(1)\n",
    'logger.info(b"retry")\n',
    "logger.info(None)\n",
    'logger.info("%s" % 3 % 4)\n',
    "logger.info(3 % 4)\n",
    "logger.info(-x)\n",
    'logger.info(lambda: "retry")\n',
    'logger.info([m for m in "retry"])\n',
    "x = y = logging.getLogger()\n",
    "(a, b) = logging.getLogger(), 1\n",
    "a[0] = logging.getLogger()\n",
    "import logging\nlogging.getLogger().info\n",
    'match x:\n    case {"a": 1}:\n        logger.info("%s", a)\n',
    'async def f():\n    async with x as log:\n        await log.info("%s", a)\n',
    "@logger.info\ndef f():\n    pass\n",
    'logger.info("%(a", {"a": 1})\n',
]


@pytest.mark.parametrize("code", ODD)
def test_odd_code_does_not_raise(code: str) -> None:
    for finding in findings(code):
        assert finding.code != "PL101"


def test_empty_file() -> None:
    assert findings("") == []


def test_large_file_with_sparse_logging() -> None:
    filler = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(300))
    code = (
        "import logging\nlogger = logging.getLogger(__name__)\n"
        + filler
        + "class A:\n    def g(self):\n        try:\n            pass\n"
        "        except OSError:\n            logger.exception('retrying')\n"
    )
    found = codes(code)
    assert found == [("PL101", code.count("\n"))]


# --- the plugin --------------------------------------------------------------------------


def test_registered_through_the_hook() -> None:
    manager = PluginManager()
    manager.load_builtins(set())
    manager.check_pending()
    assert manager.infos["log-lint"].error is None
    validator = manager.validators()["log-lint"]
    assert isinstance(validator, LogLintValidator)
    assert validator.applies_to("a/b.py") and not validator.applies_to("a/b.txt")


def test_rules_are_stable_and_documented() -> None:
    seen = set()
    for rule in RULES:
        assert re.fullmatch(r"PL[12]\d\d", rule.code), rule.code
        assert rule.code not in seen
        seen.add(rule.code)
        assert rule.summary and rule.fix and rule.name
        assert rule.severity == ("error" if rule.code.startswith("PL1") else "warning")
    assert {r.code for r in LogLintValidator.rules} == seen
    if DOCS.is_file():
        text = DOCS.read_text(encoding="utf-8")
        for code in seen:
            assert f"`{code}`" in text, code


def test_import_stays_light() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, proctor.plugins.loglint\n"
            "print(sorted(m for m in ('pydantic', 'git', 'click', 'rich', 'tenacity')"
            " if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_long_concatenation_chain() -> None:
    code = "logger.info(" + " + ".join(['"a"'] * 2500 + ["x", '"retry"']) + ")\n"
    try:
        compile(code, "x.py", "exec", flags=0x400, dont_inherit=True)  # ast.PyCF_ONLY_AST
    except RecursionError:
        pytest.skip("this interpreter cannot parse a chain that long")
    assert sorted(codes(code)) == [("PL101", 1), ("PL204", 1)]


# -- inflected retry language ------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        "Trying again",
        "Not trying again",
        "Connection refused; sleeping 5s before trying again",
        "tried again after %d seconds",
        "the worker tries again later",
        "try again",
        "TRY  AGAIN",
        "Retrying in 3s",
        "retried twice",
        "will re-try the upload",
        "re-trying",
        "re-tried 3 times",
        "re-attempting",
        "reattempted",
    ],
)
def test_inflected_retry_wording_is_reported(message: str) -> None:
    assert codes(f"logger.warning({message!r})\n") == [("PL101", 1)]


@pytest.mark.parametrize(
    "message",
    [
        "trying the next mirror",
        "again and again",
        "entry again",
        "retrying_count",  # one identifier-like word, not the word retrying
        "attempt 2 of 5 failed",
        "tryagain",
    ],
)
def test_neighbouring_words_are_not_reported(message: str) -> None:
    assert codes(f"logger.warning({message!r})\n") == []


def test_ansible_display_as_a_configured_logger() -> None:
    code = (
        "from ansible.utils.display import Display\n"
        "display = Display()\n"
        "def f():\n"
        '    display.warning("Failed, trying again in 5s")\n'
        '    display.vvv("Not trying again")\n'
    )
    assert codes(code) == []
    assert codes(code, settings(logger_objects=["display"])) == [("PL101", 4)]
