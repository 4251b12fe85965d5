"""``proctor quickstart``: the whole lifecycle of a procedure, in one command.

It runs on the embedded defaults only (a local git repository, no network), printing
each step as the equivalent CLI command, so a newcomer can replay any of them by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from proctor.core.errors import ValidationFailed
from proctor.workspace import Workspace

GREET_V1 = '''\
"""Greet someone by name."""


def run(name: str) -> str:
    return f"Hello, {name}"
'''

GREET_V2 = '''\
"""Greet someone by name, with a configurable ending."""


def run(name: str, punctuation: str = "!") -> str:
    return f"Hello, {name}{punctuation}"
'''

GREET_UNSAFE = """\
import os


def run(name: str) -> str:
    os.system("echo " + name)
    return name
"""


def _metadata(with_punctuation: bool) -> dict[str, object]:
    params: list[dict[str, object]] = [
        {"name": "name", "type": "str", "description": "Who to greet", "required": True},
    ]
    if with_punctuation:
        params.append(
            {
                "name": "punctuation",
                "type": "str",
                "description": "Ending",
                "default": "!",
                "required": False,
            }
        )
    return {
        "name": "greet",
        "description": "Greet someone by name",
        "category": "examples",
        "parameters": params,
        "returns": "str",
        "examples": [{"params": {"name": "Ada"}, "expected": "Hello, Ada"}],
    }


def run_quickstart(
    directory: Path, say: Callable[[str], None], actor: str = "quickstart@proctor"
) -> Workspace:
    """Walk through init → create → release → update → release → history → rollback."""
    step = [0]

    def header(command: str, why: str) -> None:
        step[0] += 1
        say("")
        say(f"[{step[0]}] {why}")
        say(f"    $ {command}")

    header(f"proctor init {directory}", "Create a git repository that proctor governs")
    ws, _created = Workspace.init(directory, actor=actor)
    say(f"    store: {ws.store.cwd} on {ws.ref}")

    try:
        header(
            "proctor procedure create greet --code main.py --metadata metadata.json",
            "Add a procedure: one action, one commit with audit trailers",
        )
        r = ws.execute(
            "procedure.create", {"name": "greet", "code": GREET_V1, "metadata": _metadata(False)}
        )
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'}")

        header("proctor procedure release greet", "Release it: an annotated, create-only tag")
        r = ws.execute("procedure.release", {"name": "greet"})
        say(f"    {r.status}: {', '.join(r.tags)}")

        header(
            "proctor procedure update greet --code unsafe.py",
            "Try to store unsafe code: the checks refuse it and nothing is written",
        )
        try:
            ws.execute(
                "procedure.update",
                {"name": "greet", "code": GREET_UNSAFE, "metadata": _metadata(False)},
            )
            say("    unexpectedly accepted")
        except ValidationFailed as exc:
            for finding in exc.findings:
                text = finding.format_text() if hasattr(finding, "format_text") else str(finding)
                say(f"    refused: {text}")

        header(
            "proctor procedure update greet --code main.py --metadata metadata.json",
            "Update it: add an optional parameter",
        )
        r = ws.execute(
            "procedure.update", {"name": "greet", "code": GREET_V2, "metadata": _metadata(True)}
        )
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'}")

        header(
            "proctor procedure release greet --bump auto",
            "Release again: a new optional parameter is a minor bump",
        )
        r = ws.execute("procedure.release", {"name": "greet", "bump": "auto"})
        say(f"    {r.status}: {', '.join(r.tags)}")

        header("proctor procedure history greet", "Every version is a commit")
        for v in ws.history("greet"):
            tags = f" [{', '.join(v.tags)}]" if v.tags else ""
            flag = " BREAKING" if v.breaking else ""
            say(f"    {v.commit[:12]} +{v.added}/-{v.removed}{flag}{tags} {v.message}")

        header(
            "proctor procedure rollback greet --to 0.1.0",
            "Roll back: a new commit restoring v0.1.0, tagged as a new patch release",
        )
        r = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'} {', '.join(r.tags)}")

        view = ws.get_procedure("greet")
        say("")
        say(f"greet now has releases {', '.join(view.releases)}; its code is:")
        for line in view.code.rstrip().splitlines():
            say(f"    {line}")
        say("")
        say(
            f"Explore it: cd {directory} && git log --format='%h %s%n%(trailers)' && proctor procedure list"
        )
    except BaseException:
        ws.close()
        raise
    return ws
