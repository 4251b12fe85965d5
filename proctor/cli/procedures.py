"""``init``, ``quickstart`` and the writes: the ``procedure`` and ``action`` groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    pass


from proctor.cli.base import (
    SHORT_SHA,
    ProctorGroup,
    State,
    cli,
    emit_json,
    print_table,
    read_file_arg,
    read_metadata_arg,
    run_action,
    signature_text,
    split_ref,
    write_json,
    writes,
)


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def init(state: State, path: str | None) -> None:
    """Make PATH (default: --repo, else .) a proctor store: git init if needed, commit
    proctor.toml."""
    import os

    from proctor.core.errors import UsageError
    from proctor.engine.actions import ActionResult
    from proctor.workspace import Workspace

    state.action = "init"
    if path is None:
        path = state.repo or "."
    elif state.repo and os.path.realpath(state.repo) != os.path.realpath(path):
        raise UsageError(f"init {path} and --repo {state.repo} name different folders; give one")
    state.write_extra = {"path": None, "ref": None}
    ws, created = Workspace.init(path, actor=state.actor)
    with ws:
        if state.as_json:
            data = ActionResult(
                status="applied", action="init", commit=ws.store.read_ref(ws.ref)
            ).to_json()
            data.update(status="applied" if created else "unchanged", path=ws.store.cwd, ref=ws.ref)
            emit_json(write_json(state, data))
        elif created:
            click.echo(f"Initialised proctor store in {ws.store.cwd} on {ws.ref}")
        else:
            click.echo(f"{ws.store.cwd} is already a proctor store ({ws.ref})")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False))
@click.pass_obj
def quickstart(state: State, directory: str | None) -> None:
    """Walk through a procedure's lifecycle in a new repository (offline).

    Creates DIRECTORY (default: a new temporary directory), then init, create, release,
    a refused unsafe update, update, release, history and rollback, printing each step.
    """
    import tempfile
    from pathlib import Path

    from proctor.core.errors import UsageError
    from proctor.quickstart import run_quickstart

    if directory is None:
        target = Path(tempfile.mkdtemp(prefix="proctor-quickstart-"))
    else:
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise UsageError(f"{directory} exists and is not empty; give a new directory")
    ws = run_quickstart(target, click.echo, actor=state.actor or "quickstart@proctor")
    ws.close()


# -- procedure -----------------------------------------------------------------------------


@cli.group(cls=ProctorGroup)
def procedure() -> None:
    """Create, change, release and inspect procedures."""


@writes("procedure.create")
@procedure.command("create")
@click.argument("name")
@click.option("--code", "code_file", required=True, metavar="FILE", help="The main.py to store.")
@click.option(
    "--metadata",
    "metadata_file",
    metavar="FILE",
    help="metadata.json (default: derived from run()).",
)
@click.option("--description", help="One line saying what the procedure does.")
@click.pass_obj
def procedure_create(
    state: State, name: str, code_file: str, metadata_file: str | None, description: str | None
) -> int:
    """Add procedure NAME from a code file (one commit)."""
    params: dict[str, Any] = {"name": name, "code": read_file_arg(code_file, "code file")}
    if metadata_file:
        params["metadata"] = read_metadata_arg(metadata_file)
    if description is not None:
        params["description"] = description
    return run_action(state, "procedure.create", params)


@writes("procedure.update")
@procedure.command("update")
@click.argument("name")
@click.option("--code", "code_file", metavar="FILE", help="New main.py.")
@click.option("--metadata", "metadata_file", metavar="FILE", help="New metadata.json.")
@click.option("--description", help="New description.")
@click.option(
    "--expected-version",
    metavar="REV",
    help="Refuse (exit 3) if the procedure changed since this version.",
)
@click.pass_obj
def procedure_update(
    state: State,
    name: str,
    code_file: str | None,
    metadata_file: str | None,
    description: str | None,
    expected_version: str | None,
) -> int:
    """Change procedure NAME's code and/or metadata (one commit)."""
    params: dict[str, Any] = {"name": name}
    if code_file:
        params["code"] = read_file_arg(code_file, "code file")
    if metadata_file:
        params["metadata"] = read_metadata_arg(metadata_file)
    if description is not None:
        params["description"] = description
    if expected_version:
        params["expected_version"] = expected_version
    return run_action(state, "procedure.update", params)


@writes("procedure.delete")
@procedure.command("delete")
@click.argument("name")
@click.option("--expected-version", metavar="REV", help="Refuse if changed since this version.")
@click.pass_obj
def procedure_delete(state: State, name: str, expected_version: str | None) -> int:
    """Remove procedure NAME (history and releases stay in git)."""
    params: dict[str, Any] = {"name": name}
    if expected_version:
        params["expected_version"] = expected_version
    return run_action(state, "procedure.delete", params)


@writes("procedure.release")
@procedure.command("release")
@click.argument("name")
@click.option(
    "--bump",
    type=click.Choice(["auto", "major", "minor", "patch"]),
    default=None,
    help="Which part to raise; auto reads run()'s signature. [default: auto]",
)
@click.option(
    "--version", "version", metavar="X.Y.Z", help="An explicit version instead of --bump."
)
@click.option("-m", "--message", help="The release note (tag message).")
@click.pass_obj
def procedure_release(
    state: State, name: str, bump: str | None, version: str | None, message: str | None
) -> int:
    """Tag NAME's latest version as procedures/NAME/vX.Y.Z (never moved)."""
    from proctor.core.errors import UsageError

    if bump and version:
        raise UsageError("give --bump or --version, not both")
    params: dict[str, Any] = {"name": name, "bump": bump or "auto"}
    if version:
        params["version"] = version
    if message:
        params["message"] = message
    return run_action(state, "procedure.release", params)


@writes("procedure.rollback")
@procedure.command("rollback")
@click.argument("name")
@click.option("--to", "to", required=True, metavar="X.Y.Z", help="The release to restore.")
@click.pass_obj
def procedure_rollback(state: State, name: str, to: str) -> int:
    """Restore release X.Y.Z of NAME in a new commit, tagged as a new patch release."""
    return run_action(state, "procedure.rollback", {"name": name, "to": to})


@procedure.command("list")
@click.pass_obj
def procedure_list(state: State) -> None:
    """List the procedures on the store branch."""
    items = state.workspace().list_procedures()
    if state.as_json:
        emit_json([i.__dict__ for i in items])
        return
    print_table(
        state,
        ["name", "category", "description"],
        [[i.name, i.category, i.error or i.description] for i in items],
        title="procedures",
    )


@procedure.command("show")
@click.argument("ref", metavar="NAME[@VERSION|@REV]")
@click.option("--code", "show_code", is_flag=True, help="Print main.py only.")
@click.pass_obj
def procedure_show(state: State, ref: str, show_code: bool) -> None:
    """Show a procedure at the tip, a release (X.Y.Z) or any git revision.

    With the last `proctor test` of the shown version, when the run log has one.
    """
    from proctor.core.errors import ConfigError
    from proctor.runs.model import RunLogError

    name, version = split_ref(ref)
    ws = state.workspace()
    view = ws.get_procedure(name, version)
    if show_code and not state.as_json:
        click.echo(view.code, nl=not view.code.endswith("\n"))
        return
    try:
        from pathlib import Path

        from proctor.runs.settings import default_log_missing

        # Nothing recorded yet: no run log to read, and none of its code is imported.
        missing = default_log_missing(ws.config, Path(ws.store.common_dir) / "proctor")
        last_test = None if missing else ws.runs.last_test(name, version)
    except (RunLogError, ConfigError) as exc:  # the procedure is still worth showing
        click.echo(f"warning: {exc}", err=True)
        last_test = None
    if state.as_json:
        emit_json(view.to_json(include_code=show_code) | {"last_test": last_test})
        return
    spec = view.spec
    click.echo(f"{view.name} @ {view.commit[:12] if view.commit else '-'}")
    click.echo(f"  description: {spec.description}")
    click.echo(f"  category:    {spec.category}")
    click.echo(f"  signature:   run({signature_text(spec)}) -> {spec.returns}")
    for p in spec.parameters:
        if p.description:
            click.echo(f"    {p.name}: {p.description}")
    click.echo(f"  releases:    {', '.join(view.releases) or '-'}")
    if last_test is not None:
        from proctor.runs.report import last_test_line

        click.echo(f"  last test:   {last_test_line(last_test)}")


@procedure.command("history")
@click.argument("name")
@click.pass_obj
def procedure_history(state: State, name: str) -> None:
    """Versions of NAME, newest first, with line counts and breaking changes.

    Tags under procedures/NAME/ that are not releases proctor wrote are listed after
    them as foreign, with why; nothing else uses them."""
    ws = state.workspace()
    versions = ws.history(name)
    foreign = ws.release_tags(name).foreign
    if state.as_json:
        emit_json(
            {
                "name": name,
                "versions": [v.to_json() for v in versions],
                "foreign": [f.to_json() for f in foreign],
            }
        )
        return
    print_table(
        state,
        ["commit", "date", "author", "+/-", "tags", "message"],
        [
            [
                v.commit[:SHORT_SHA],
                v.date[:10],
                v.author or v.email,
                f"+{v.added}/-{v.removed}",
                " ".join(v.tags),
                v.message + ("\nbreaking: " + "; ".join(v.reasons) if v.breaking else ""),
            ]
            for v in versions
        ],
        title=f"history of {name}",
        fixed=(0, 1, 3),
        narrow=(2, 4),
        piped=(
            ["commit", "date", "author", "+/-", "breaking", "tags", "message"],
            [
                [
                    v.commit,
                    v.date,
                    v.email,
                    f"+{v.added}/-{v.removed}",
                    ("yes: " + "; ".join(v.reasons)) if v.breaking else "",
                    " ".join(v.tags),
                    v.message,
                ]
                for v in versions
            ],
        ),
    )
    if foreign:
        click.echo("foreign tags (not releases; ignored by release, rollback and run):")
        for f in foreign:
            click.echo(f"  {f.tag} -> {f.target[:SHORT_SHA]}: {f.reason}")


@procedure.command("diff")
@click.argument("name")
@click.argument("from_version", metavar="FROM")
@click.argument("to_version", metavar="[TO]", required=False)
@click.pass_obj
def procedure_diff(state: State, name: str, from_version: str, to_version: str | None) -> None:
    """Unified diff of NAME between two versions (X.Y.Z or revisions; TO defaults to the tip)."""
    text = state.workspace().diff(name, from_version, to_version)
    if state.as_json:
        emit_json({"name": name, "from": from_version, "to": to_version, "diff": text})
    else:
        click.echo(text, nl=False)


# -- action --------------------------------------------------------------------------------


@cli.group(cls=ProctorGroup)
def action() -> None:
    """List and run actions (every change to the store is one)."""


@action.command("list")
@click.pass_obj
def action_list(state: State) -> None:
    """The registered action types."""
    actions = state.workspace().actions()
    rows = [
        [name, cls.description, "yes" if cls.requires_proposal else ""]
        for name, cls in sorted(actions.items())
    ]
    if state.as_json:
        emit_json(
            [
                {
                    "api_name": r[0],
                    "description": r[1],
                    "requires_proposal": bool(r[2]),
                    "params": actions[r[0]].Params.model_json_schema(),
                }
                for r in rows
            ]
        )
        return
    print_table(state, ["action", "description", "proposal"], rows, title="actions", fixed=(0,))


def parse_param(item: str) -> tuple[str, Any]:
    """``KEY=VALUE``: VALUE as JSON when it parses, ``@file`` reads a file, else a string."""
    import json

    from proctor.core.errors import UsageError

    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"-p expects KEY=VALUE, got {item!r}")
    if value.startswith("@"):
        return key, read_file_arg(value[1:], f"file for {key}")
    from proctor.core import jsonvalue

    try:
        return key, jsonvalue.loads(value, f"-p {key}")
    except json.JSONDecodeError:
        return key, value


@action.command("run")
@click.argument("api_name")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter; VALUE is JSON if it parses, @FILE reads a file, else a string.",
)
@click.pass_obj
def action_run(state: State, api_name: str, params: tuple[str, ...]) -> int:
    """Run any registered action by its api_name."""
    state.action = api_name
    return run_action(state, api_name, dict(parse_param(p) for p in params))


# -- check ---------------------------------------------------------------------------------
