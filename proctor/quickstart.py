"""``proctor quickstart``: the whole lifecycle of a procedure, in one command.

It runs on the embedded defaults only (a local git repository, no network), printing
each step as the equivalent CLI command, so a newcomer can replay any of them by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from proctor.core.errors import ValidationFailed
from proctor.workspace import Workspace

GREET_V1 = '''\
def run(name: str) -> str:
    """Greet someone by name.

    Args:
        name: Who to greet.
    """
    return f"Hello, {name}"
'''

GREET_V2 = '''\
def run(name: str, punctuation: str = "!") -> str:
    """Greet someone by name.

    Args:
        name: Who to greet.
        punctuation: What ends the greeting.
    """
    return f"Hello, {name}{punctuation}"
'''

GREET_BAD = GREET_V2.replace(
    'f"Hello, {name}{punctuation}"', 'f"HELLO, {name.upper()}{punctuation}"'
)

GREET_UNSAFE = """\
import os


def run(name: str) -> str:
    os.system("echo " + name)
    return name
"""


def _demo_identity(directory: Path, actor: str) -> None:
    """The demo repository is new and the quickstart's own: when git has no identity to
    commit with (a fresh machine), give that repository one in its own config, as a
    user would with ``git config user.email``. Nothing outside it is changed."""
    import subprocess

    from proctor.store.git import git_env

    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / ".git").exists():
        subprocess.run(["git", "init", "-q", str(directory)], check=True, env=git_env())
    probe = subprocess.run(
        ["git", "var", "GIT_COMMITTER_IDENT"],
        cwd=directory,
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if probe.returncode == 0:
        return
    for key in ("user.name", "user.email"):
        subprocess.run(["git", "config", key, actor], cwd=directory, check=True, env=git_env())


# A procedure described by metadata alone, then generated: the model's answer is a
# cassette shipped in the package (proctor/data/quickstart-cassettes), so this runs
# offline and gives the same code every time. bench/make_quickstart_cassette.py writes it.
SLUG_METADATA: dict[str, Any] = {
    "name": "slugify",
    "description": "Turn a title into a URL slug.",
    "parameters": [{"name": "title", "type": "str", "description": "The title."}],
    "returns": "str",
    "examples": [
        {"params": {"title": "Hello World"}, "expected": "hello-world"},
        {"params": {"title": "  Proctor: 1.0 "}, "expected": "proctor-1-0"},
    ],
    "steps": [
        "lower-case the title",
        "replace each run of characters that are not letters or digits with one dash",
        "strip dashes from both ends",
    ],
}

SLUG_CODE = '''\
import re


def run(title: str) -> str:
    """Turn a title into a URL slug.

    Args:
        title: The title.
    """
    if not isinstance(title, str):
        raise TypeError("title must be str, got " + type(title).__name__)
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
'''

QUICKSTART_MODEL = "quickstart-replay"


def quickstart_cassettes() -> Path:
    return Path(__file__).parent / "data" / "quickstart-cassettes"


def run_quickstart(
    directory: Path, say: Callable[[str], None], actor: str = "quickstart@proctor"
) -> Workspace:
    """Walk through init → create → release → run → update → release → history →
    rollback → run → stats → a policy change → a change proposed by one actor and
    approved by another → import → generate."""
    step = [0]

    def ran(ws: Workspace, params: dict[str, object], command: bool = False) -> None:
        """One run of greet and its result; ``command`` prints the run's own command
        line first (for a step that runs more than once, so each run can be replayed)."""
        from proctor.runs.report import seconds

        if command:
            flags = " ".join(f"-p {key}={value}" for key, value in params.items())
            say(f"    $ proctor run greet {flags}")
        record = ws.run("greet", params)
        where = f"v{record.version}" + (
            f", level {record.level}" if record.level is not None else ""
        )
        if record.status == "ok":
            say(f"    ok: {record.value!r} ({where}, {seconds(record.duration)})")
        else:
            say(f"    {record.status}: {record.error} ({where})")

    def header(command: str, why: str) -> None:
        step[0] += 1
        say("")
        say(f"[{step[0]}] {why}")
        say(f"    $ {command}")

    header(f"proctor init {directory}", "Create a git repository that proctor governs")
    _demo_identity(directory, actor)
    ws, _created = Workspace.init(directory, actor=actor)
    say(f"    store: {ws.store.cwd} on {ws.ref}")

    try:
        header(
            "proctor procedure create greet --code greet.py",
            "Add a procedure: one action, one commit; metadata.json is derived from run()",
        )
        r = ws.execute("procedure.create", {"name": "greet", "code": GREET_V1})
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'}")
        spec = ws.get_procedure("greet").spec
        say(f"    description: {spec.description}")

        header("proctor procedure release greet", "Release it: an annotated, create-only tag")
        r = ws.execute("procedure.release", {"name": "greet"})
        say(f"    {r.status}: {', '.join(r.tags)}")

        header(
            "proctor run greet -p name=Ada",
            "Run it in the sandbox: the released code, read from git, in a fresh interpreter",
        )
        ran(ws, {"name": "Ada"})

        header(
            "proctor procedure update greet --code unsafe.py",
            "Try to store unsafe code: the checks refuse it and nothing is written",
        )
        try:
            ws.execute("procedure.update", {"name": "greet", "code": GREET_UNSAFE})
            say("    unexpectedly accepted")
        except ValidationFailed as exc:
            for finding in exc.findings:
                text = finding.format_text() if hasattr(finding, "format_text") else str(finding)
                say(f"    refused: {text}")

        header(
            "proctor procedure update greet --code greet.py",
            "Update it: a new optional parameter; metadata.json follows run() by itself",
        )
        r = ws.execute("procedure.update", {"name": "greet", "code": GREET_V2})
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'}")
        for p in ws.get_procedure("greet").spec.parameters:
            default = "" if p.required else f" = {p.default!r}"
            say(f"    parameter {p.name}: {p.type}{default}  ({p.description})")

        header(
            "proctor procedure release greet --bump auto",
            "Release again: a new optional parameter is a minor bump",
        )
        r = ws.execute("procedure.release", {"name": "greet", "bump": "auto"})
        say(f"    {r.status}: {', '.join(r.tags)}")

        header(
            "proctor procedure update greet --code greet.py && proctor procedure release greet",
            "Release a mistake: it shouts now (same signature, so a patch)",
        )
        ws.execute("procedure.update", {"name": "greet", "code": GREET_BAD})
        r = ws.execute("procedure.release", {"name": "greet"})
        say(f"    {r.status}: {', '.join(r.tags)}")

        header("proctor procedure history greet", "Every version is a commit")
        for v in ws.history("greet"):
            tags = f" [{', '.join(v.tags)}]" if v.tags else ""
            flag = " BREAKING" if v.breaking else ""
            say(f"    {v.commit[:12]} +{v.added}/-{v.removed}{flag}{tags} {v.message}")

        header(
            "proctor procedure rollback greet --to 0.2.0",
            "Roll back: a new commit restoring v0.2.0, released as v0.2.2 (same signature)",
        )
        r = ws.execute("procedure.rollback", {"name": "greet", "to": "0.2.0"})
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'} {', '.join(r.tags)}")

        header(
            "proctor run greet -p name=Ada -p punctuation=?",
            "Run the latest release; every run is one row in .git/proctor/runs.sqlite",
        )
        ran(ws, {"name": "Ada", "punctuation": "?"})
        ran(ws, {"name": "Bo"}, command=True)

        header("proctor stats greet", "Runs, success rate and durations per version")
        from proctor.runs.report import seconds

        for s in ws.runs.stats("greet"):
            say(
                f"    v{s.version}: {s.runs} run{'' if s.runs == 1 else 's'}, "
                f"{s.success_rate:.0%} ok, p50 {seconds(s.p50)}, p95 {seconds(s.p95)}"
            )

        header(
            "proctor import slugify.jsonl && proctor generate slugify --backend replay",
            "Describe a procedure by metadata alone, then generate its code: checked, "
            "its examples run in the sandbox, committed with its confidence",
        )
        from proctor.llm.generate import GenerationSettings

        r = ws.import_procedures([SLUG_METADATA])
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'} (metadata only)")
        settings = GenerationSettings(
            "replay", QUICKSTART_MODEL, options={"cassettes": str(quickstart_cassettes())}
        )
        done = ws.generate("slugify", settings)
        gen = done.outcome
        examples = gen.generation.get("examples") or {}
        say(
            f"    {done.result.status}: commit "
            f"{done.result.commit[:12] if done.result.commit else '-'}, confidence "
            f"{gen.confidence:.2f}, examples {examples.get('passed', 0)}/"
            f"{examples.get('total', 0)} passed, band {gen.band.name}"
        )
        ran_slug = ws.run("slugify", {"title": "Git-native procedures"})
        say(f"    proctor run slugify -p 'title=Git-native procedures': {ran_slug.value!r}")

        reviewer = "reviewer@proctor"
        header(
            "proctor policy update proctor.toml",
            'Govern: policy now says "procedure.update" = "REQUIRE_PROPOSAL" (itself an action)',
        )
        from proctor.store.gitstore import Snapshot

        config = Snapshot(ws.store, ws.store.read_ref(ws.ref)).read("proctor.toml")
        text = (
            (config or b"")
            .decode()
            .replace("[policy]\n", '[policy]\n"procedure.update" = "REQUIRE_PROPOSAL"\n', 1)
        )
        r = ws.execute("config.update", {"text": text})
        say(f"    {r.status}: commit {r.commit[:12] if r.commit else '-'} ({r.decision})")

        header(
            'proctor procedure update greet --description "Greets anyone, politely"',
            f"Propose a change as {actor}: one commit adds proposals/<id>.json, nothing else",
        )
        r = ws.execute(
            "procedure.update", {"name": "greet", "description": "Greets anyone, politely"}
        )
        proposal_id = r.proposal or ""
        say(f"    {r.status}: proposal {proposal_id} (decision {r.decision})")
        say(f"    description is still: {ws.get_procedure('greet').spec.description}")

        header(
            f"proctor proposal approve {proposal_id} --actor {reviewer}",
            "Approve it as another actor: the change and the proposal's status land in one commit",
        )
        outcome = ws.approve(proposal_id, "reads well", actor=reviewer)
        commit = outcome.commit[:12] if outcome.commit else "-"
        say(f"    {outcome.status}: commit {commit} (proposal version {outcome.proposal.version})")
        say(f"    description now: {ws.get_procedure('greet').spec.description}")

        view = ws.get_procedure("greet")
        say("")
        say(f"greet now has releases {', '.join(view.releases)}; its code is:")
        for line in view.code.rstrip().splitlines():
            say(f"    {line}")
        say("")
        say(
            f"Explore it: cd {directory} && git log --format='%h %s%n%(trailers)' && proctor procedure list && proctor runs greet"
        )
    except BaseException:
        ws.close()
        raise
    return ws
