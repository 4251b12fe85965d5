"""The ``disallowed`` phrases of the log lint: the default list, the ``[log-lint]`` table,
and the phrases compiled for matching.

Compiled once per configured list: plain phrases as one alternation on word boundaries,
``re:`` entries each on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from proctor.core.errors import ConfigError

if TYPE_CHECKING:
    from proctor.core.config import Table

__all__ = [
    "DEFAULT_DISALLOWED",
    "LOG_LINT_KEYS",
    "LogLintOptions",
    "Phrases",
    "compile_phrases",
    "default_options",
    "parse_options",
]

# The default ``[log-lint] disallowed`` list: retry language, in every inflection, so
# messages speak of attempts ("attempt 2 of 5 failed"), the words operators search for.
DEFAULT_DISALLOWED: tuple[str, ...] = (
    "retry",
    "retries",
    "retrying",
    "retried",
    "re-try",
    "re-tries",
    "re-trying",
    "re-tried",
    "try again",
    "tries again",
    "trying again",
    "tried again",
    "re-attempt",
    "reattempt",
    "re-attempts",
    "reattempts",
    "re-attempting",
    "reattempting",
    "re-attempted",
    "reattempted",
)


class Phrases:
    """The configured ``disallowed`` list, compiled: plain phrases as one alternation
    (one scan per message whatever the list's length), each ``re:`` entry on its own so
    its flags and back-references keep their meaning.

    A plain class rather than a dataclass: ``dataclasses`` costs the log-lint hook a
    noticeable part of its start-up (it imports ``inspect``).
    """

    __slots__ = ("patterns", "plain", "plain_entries")

    def __init__(
        self,
        plain: re.Pattern[str] | None,
        plain_entries: dict[str, str],
        patterns: tuple[tuple[str, re.Pattern[str]], ...],
    ) -> None:
        self.plain = plain
        self.plain_entries = plain_entries  # group name -> configured entry
        self.patterns = patterns  # (configured entry, compiled)

    def matches(self, text: str) -> Iterator[tuple[str, str, int]]:
        """Yield (matched text, configured entry, offset) for every match in ``text``."""
        if self.plain is not None:
            for m in self.plain.finditer(text):
                group = m.lastgroup or ""
                yield m.group(group), self.plain_entries[group], m.start()
        for entry, pattern in self.patterns:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    yield m.group(0), entry, m.start()


_PHRASE_CACHE: dict[tuple[str, ...], Phrases] = {}


def compile_phrases(entries: Sequence[str], where: str = "log-lint.disallowed") -> Phrases:
    """Compile a ``disallowed`` list once; later calls with the same list reuse it.

    Plain entries match on word boundaries, case-insensitively, with any run of whitespace
    standing for a space. Entries starting with ``re:`` are regular expressions searched
    case-insensitively. A bad entry raises ConfigError naming it: a silently ignored
    pattern would let exactly the wording it was meant to stop through.
    """
    key = tuple(entries)
    cached = _PHRASE_CACHE.get(key)
    if cached is not None:
        return cached
    alternatives: list[tuple[str, str]] = []
    patterns: list[tuple[str, re.Pattern[str]]] = []
    seen: set[str] = set()
    for entry in key:
        if entry in seen:
            continue
        seen.add(entry)
        if entry.startswith("re:"):
            source = entry[3:]
            if not source:
                raise ConfigError(f"{where}: empty regular expression 're:'")
            try:
                compiled = re.compile(source, re.IGNORECASE)
            except re.error as exc:
                raise ConfigError(
                    f"{where}: invalid regular expression {source!r}: {exc}"
                ) from None
            patterns.append((entry, compiled))
            continue
        words = entry.split()
        if not words:
            raise ConfigError(f"{where}: empty phrase {entry!r}")
        alternatives.append((entry, r"\s+".join(re.escape(w) for w in words)))
    plain: re.Pattern[str] | None = None
    names: dict[str, str] = {}
    if alternatives:
        # Longest first, so the most specific entry is the one a finding names.
        alternatives.sort(key=lambda item: -len(item[1]))
        parts = []
        for index, (entry, regex) in enumerate(alternatives):
            names[f"p{index}"] = entry
            parts.append(f"(?P<p{index}>{regex})")
        plain = re.compile(r"(?<!\w)(?:" + "|".join(parts) + r")(?!\w)", re.IGNORECASE)
    phrases = Phrases(plain, names, tuple(patterns))
    if len(_PHRASE_CACHE) > 64:
        _PHRASE_CACHE.clear()
    _PHRASE_CACHE[key] = phrases
    return phrases


class LogLintOptions:
    """``[log-lint]``, validated: the phrases compiled, the configured logger objects."""

    __slots__ = ("disallowed", "logger_objects", "phrases")

    def __init__(
        self, disallowed: Sequence[str], logger_objects: Sequence[str], where: str
    ) -> None:
        self.disallowed = tuple(disallowed)
        self.logger_objects = frozenset(logger_objects)
        self.phrases = compile_phrases(self.disallowed, where)


LOG_LINT_KEYS = frozenset({"disallowed", "logger-objects"})


def parse_options(table: Table) -> LogLintOptions:
    """Read ``[log-lint]``: unknown keys, a value of the wrong type or a bad phrase or
    pattern are ConfigErrors naming the file and the table."""
    table.check_keys(LOG_LINT_KEYS)
    disallowed = table.str_list("disallowed")
    return LogLintOptions(
        DEFAULT_DISALLOWED if disallowed is None else disallowed,
        table.str_list("logger-objects") or (),
        table.where("disallowed"),
    )


_DEFAULTS: list[LogLintOptions] = []


def default_options() -> LogLintOptions:
    """The options without a configuration (built on first use)."""
    if not _DEFAULTS:
        _DEFAULTS.append(LogLintOptions(DEFAULT_DISALLOWED, (), "log-lint.disallowed"))
    return _DEFAULTS[0]
