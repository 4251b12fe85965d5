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
(``logging.config.listen``, debuggers, bidirectional characters), PS7xx transport and
cryptography, PS8xx data, files and templates, PS9xx procedure-mode imports and
capabilities.

Severity: ``error`` when the code can run arbitrary code or commands as written;
``warning`` for weaker signals that are fine when reviewed (a subprocess with a fixed
argument list, importing ``ctypes``, an import by computed name, ``getattr`` on ``os``
with a computed name).

The package: this module is the plugin (the validator, its ``[safety]`` options and the
hook); :mod:`.checker` is the walk, with the checks of the PS7xx/PS8xx families in
:mod:`.families` and of yaml loaders in :mod:`.loaders` (mixins of the checker),
:mod:`.syntax` the helpers that read argument lists and what an expression is used for,
and :mod:`.rules`, :mod:`.watch` and :mod:`.modules` the tables it reads.

Standard library only, and nothing heavy at import: this runs on the pre-commit path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from proctor.checks.validation import CheckContext, Finding, SourceFile, Validator
from proctor.core.hookspecs import hookimpl
from proctor.plugins.safety.checker import SafetyChecker
from proctor.plugins.safety.modules import CAPABILITY_MODULES, DEFAULT_ALLOWED_IMPORTS
from proctor.plugins.safety.rules import RULES
from proctor.plugins.safety.watch import BIDI_CHARACTERS

if TYPE_CHECKING:
    from proctor.checks.settings import CheckSettings
    from proctor.core.config import Table

__all__ = [
    "CAPABILITY_MODULES",
    "DEFAULT_ALLOWED_IMPORTS",
    "RULES",
    "SAFETY_KEYS",
    "SafetyOptions",
    "SafetyValidator",
    "parse_options",
    "proctor_register_validators",
]


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
        checker = SafetyChecker(self, source, context)
        checker.run(tree)
        text = source.text
        if not text.isascii():
            for char in BIDI_CHARACTERS:
                index = text.find(char)
                if index != -1:
                    line = text.count("\n", 0, index) + 1
                    col = index - (text.rfind("\n", 0, index) + 1) + 1
                    checker.findings.append(
                        self.finding(
                            source,
                            (line, col),
                            "PS604",
                            f"U+{ord(char):04X}, a bidirectional control character, makes "
                            f"the code display in another order than it runs. "
                            f"{self.rule('PS604').fix}",
                        )
                    )
                    break
        return checker.findings


@hookimpl
def proctor_register_validators(register: Any) -> None:
    register(SafetyValidator())
