"""Releases proctor trusts: only annotated tags proctor wrote, on the store branch's history,
on a commit that changed the procedure. Every other tag under ``procedures/<name>/`` is
foreign: listed by ``history``, ignored by auto-bump, rollback and run resolution.

The hostile tags are made with plain git, as anyone with push rights could make them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GREET, git, repo_state, run_cli

from proctor import Workspace

V2 = 'def run(name: str, punct: str = "!") -> str:\n    return "hello " + name + punct\n'
EVIL = 'import os\n\n\ndef run(name: str) -> str:\n    os.system("echo pwned")\n    return name\n'


def open_ws(repo: Path) -> Workspace:
    return Workspace.open(repo, actor="tester@example.com")


@pytest.fixture
def released(repo: Path) -> Iterator[Path]:
    """After a root commit of plain git holding no procedure, ``greet`` created, released
    as 0.1.0, updated and released as 0.2.0, through proctor."""
    (repo / "README").write_text("a store\n")
    git(repo, "add", "README")
    git(repo, "commit", "-q", "-m", "root")
    with open_ws(repo) as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET, "description": "Greets"})
        assert ws.execute("procedure.release", {"name": "greet"}).status == "applied"
        ws.execute("procedure.update", {"name": "greet", "code": V2})
        assert ws.execute("procedure.release", {"name": "greet"}).status == "applied"
    yield repo


def side_branch_commit(repo: Path, code: str) -> str:
    """A commit off main that puts ``code`` in greet's main.py, made with plain git; main
    stays checked out and unchanged."""
    git(repo, "switch", "-q", "-c", "side")
    (repo / "procedures/greet/main.py").write_text(code)
    git(repo, "commit", "-q", "-am", "side change")
    sha = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    return sha


def tag_message(repo: Path, tag: str) -> str:
    """The message of an annotated tag proctor wrote (to copy into a forged one)."""
    return git(repo, "for-each-ref", "--format=%(contents)", f"refs/tags/{tag}")


def trusted(repo: Path) -> list[str]:
    with open_ws(repo) as ws:
        return [r.label for r in ws.procedures.trusted_releases("greet")]


def foreign(repo: Path) -> dict[str, str]:
    with open_ws(repo) as ws:
        return {f.tag: f.reason for f in ws.procedures.release_tags("greet").foreign}


# -- what is trusted ------------------------------------------------------------------------


def test_releases_proctor_wrote_carry_the_release_trailer_and_are_trusted(released: Path) -> None:
    message = tag_message(released, "procedures/greet/v0.2.0")
    assert "Proctor-Release: greet@0.2.0" in message
    assert git(released, "cat-file", "-t", "procedures/greet/v0.2.0").strip() == "tag"
    assert trusted(released) == ["0.1.0", "0.2.0"]
    assert foreign(released) == {}


def test_a_handmade_tag_on_a_side_branch_is_foreign_even_with_a_copied_trailer(
    released: Path,
) -> None:
    evil = side_branch_commit(released, EVIL)
    git(released, "tag", "-a", "procedures/greet/v0.0.5", "-m", "hand made", evil)
    forged = (
        "Release greet 0.0.6\n\nProctor-Action: procedure.release\nProctor-Release: greet@0.0.6\n"
    )
    git(released, "tag", "-a", "procedures/greet/v0.0.6", "-m", forged, evil)
    assert trusted(released) == ["0.1.0", "0.2.0"]
    reasons = foreign(released)
    assert "not a release proctor wrote" in reasons["procedures/greet/v0.0.5"]
    assert "not on the history of refs/heads/main" in reasons["procedures/greet/v0.0.6"]


def test_a_lightweight_tag_is_foreign(released: Path) -> None:
    git(released, "tag", "procedures/greet/v0.3.0", "main")
    assert "not an annotated tag" in foreign(released)["procedures/greet/v0.3.0"]
    assert trusted(released) == ["0.1.0", "0.2.0"]


def test_a_proctor_tag_message_copied_under_another_version_is_foreign(released: Path) -> None:
    message = tag_message(released, "procedures/greet/v0.2.0")
    git(released, "tag", "-a", "procedures/greet/v5.0.0", "-m", message, "main")
    assert "names greet@0.2.0" in foreign(released)["procedures/greet/v5.0.0"]
    assert trusted(released) == ["0.1.0", "0.2.0"]


def test_a_tag_on_a_commit_that_did_not_change_the_procedure_is_foreign(released: Path) -> None:
    root = git(released, "rev-list", "--max-parents=0", "main").strip()
    message = "Release greet 0.0.1\n\nProctor-Release: greet@0.0.1\n"
    git(released, "tag", "-a", "procedures/greet/v0.0.1", "-m", message, root)
    with open_ws(released) as ws:
        ws.execute("procedure.create", {"name": "other", "code": GREET, "description": "x"})
    other = git(released, "rev-parse", "main").strip()
    message = "Release greet 0.2.5\n\nProctor-Release: greet@0.2.5\n"
    git(released, "tag", "-a", "procedures/greet/v0.2.5", "-m", message, other)
    reasons = foreign(released)
    assert "did not change procedures/greet" in reasons["procedures/greet/v0.0.1"]
    assert "did not change procedures/greet" in reasons["procedures/greet/v0.2.5"]
    assert trusted(released) == ["0.1.0", "0.2.0"]


def test_a_tag_on_a_blob_is_foreign_named_and_blocks_nothing(released: Path) -> None:
    blob = git(released, "rev-parse", "main:procedures/greet/main.py").strip()
    git(released, "tag", "procedures/greet/v0.9.0", blob)
    assert "points at a blob" in foreign(released)["procedures/greet/v0.9.0"]
    with open_ws(released) as ws:
        ws.execute("procedure.update", {"name": "greet", "description": "Greets politely"})
        result = ws.execute("procedure.release", {"name": "greet"})
    assert result.status == "applied" and result.tags == ["procedures/greet/v0.2.1"]


def test_a_stray_high_tag_does_not_drive_auto_bump(released: Path) -> None:
    git(released, "tag", "procedures/greet/v9.9.9", "main")
    git(released, "tag", "-a", "procedures/greet/v8.0.0", "-m", "by hand", "main")
    with open_ws(released) as ws:
        ws.execute("procedure.update", {"name": "greet", "description": "Greets politely"})
        result = ws.execute("procedure.release", {"name": "greet"})
    assert result.tags == ["procedures/greet/v0.2.1"]


def test_a_foreign_tag_in_the_way_of_the_next_version_is_named(released: Path) -> None:
    git(released, "tag", "procedures/greet/v0.2.1", "main")
    with open_ws(released) as ws:
        ws.execute("procedure.update", {"name": "greet", "description": "Greets politely"})
    before = repo_state(released)
    r = run_cli("--repo", str(released), "procedure", "release", "greet")
    assert r.code == 2
    assert "procedures/greet/v0.2.1" in r.err and "foreign" in r.err
    assert "Traceback" not in r.err
    assert repo_state(released) == before


# -- history lists the foreign tags ----------------------------------------------------------


def test_history_lists_foreign_tags_in_text_and_json(released: Path) -> None:
    evil = side_branch_commit(released, EVIL)
    git(released, "tag", "-a", "procedures/greet/v0.0.5", "-m", "hand made", evil)
    tip = git(released, "rev-parse", "main").strip()
    git(released, "tag", "procedures/greet/v9.9.9", tip)

    r = run_cli("--repo", str(released), "--json", "procedure", "history", "greet")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [v["tags"] for v in data["versions"]] == [["v0.2.0"], ["v0.1.0"]]
    by_tag = {f["tag"]: f for f in data["foreign"]}
    assert set(by_tag) == {"procedures/greet/v0.0.5", "procedures/greet/v9.9.9"}
    assert by_tag["procedures/greet/v0.0.5"]["target"] == evil
    assert by_tag["procedures/greet/v9.9.9"]["target"] == tip
    assert all(f["reason"] for f in data["foreign"])

    r = run_cli("--repo", str(released), "procedure", "history", "greet")
    assert r.code == 0, r.err
    assert "foreign" in r.out
    assert "procedures/greet/v0.0.5" in r.out and "procedures/greet/v9.9.9" in r.out


# -- rollback --------------------------------------------------------------------------------


def test_rollback_to_a_handmade_tag_on_a_side_branch_is_refused(released: Path) -> None:
    evil = side_branch_commit(released, EVIL)
    git(released, "tag", "-a", "procedures/greet/v0.0.5", "-m", "hand made", evil)
    before = repo_state(released)
    r = run_cli("--repo", str(released), "procedure", "rollback", "greet", "--to", "0.0.5")
    assert r.code == 2
    assert "procedures/greet/v0.0.5" in r.err and "foreign" in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert repo_state(released) == before
    assert "os.system" not in git(released, "show", "main:procedures/greet/main.py")


def test_rollback_to_a_tag_on_the_root_commit_is_refused(released: Path) -> None:
    root = git(released, "rev-list", "--max-parents=0", "main").strip()
    git(released, "tag", "-a", "procedures/greet/v0.0.1", "-m", "by hand", root)
    before = repo_state(released)
    r = run_cli("--repo", str(released), "procedure", "rollback", "greet", "--to", "0.0.1")
    assert r.code == 2 and "foreign" in r.err
    assert repo_state(released) == before
    assert git(released, "ls-tree", "--name-only", "main", "procedures/").strip() == (
        "procedures/greet"
    )


def _forge_release_of(repo: Path, commit: str, version: str) -> None:
    """An annotated tag with proctor's release trailer, on a commit of main's history: as
    trusted as a tag can be made without proctor."""
    message = f"Release greet {version}\n\nProctor-Release: greet@{version}\n"
    git(repo, "tag", "-a", f"procedures/greet/v{version}", "-m", message, commit)


def _commit_policy(repo: Path, table: str) -> None:
    """Commit a policy on main with plain git (the store's committed config)."""
    text = (repo / "proctor.toml").read_text() if (repo / "proctor.toml").exists() else ""
    (repo / "proctor.toml").write_text(text + f"\n[policy]\n{table}\n")
    git(repo, "add", "proctor.toml")
    git(repo, "commit", "-q", "-m", "policy")


def test_a_rollback_that_restores_nothing_is_governed_as_a_delete(released: Path) -> None:
    with open_ws(released) as ws:
        ws.execute("procedure.delete", {"name": "greet"})
    deleted = git(released, "rev-parse", "main").strip()
    _forge_release_of(released, deleted, "0.3.0")
    with open_ws(released) as ws:
        ws.execute("procedure.create", {"name": "greet", "code": GREET, "description": "Again"})
    _commit_policy(released, '"procedure.delete" = "DENY"')
    assert "0.3.0" in trusted(released)
    before = repo_state(released)
    r = run_cli(
        "--repo", str(released), "--json", "procedure", "rollback", "greet", "--to", "0.3.0"
    )
    assert r.code == 1, r.err
    data = json.loads(r.out)
    assert data["status"] == "denied" and data["decision"] == "DENY"
    assert "procedure.delete" in " ".join(data["errors"])
    assert repo_state(released) == before
    assert git(released, "ls-tree", "--name-only", "main", "procedures/").strip()


def test_a_rollback_is_governed_as_the_update_it_amounts_to(released: Path) -> None:
    _commit_policy(released, '"procedure.update" = "DENY"')
    before = repo_state(released)
    with open_ws(released) as ws:
        result = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert result.status == "denied"
    assert "procedure.update" in " ".join(result.errors)
    assert repo_state(released) == before


def test_a_rollback_is_governed_as_the_release_it_makes(released: Path) -> None:
    """A rollback tags a new release: where releases are denied, so is the rollback."""
    _commit_policy(released, '"procedure.release" = "DENY"')
    before = repo_state(released)
    with open_ws(released) as ws:
        result = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert result.status == "denied"
    assert "procedure.release" in " ".join(result.errors)
    assert repo_state(released) == before
    assert trusted(released) == ["0.1.0", "0.2.0"]


def test_a_rollback_is_allowed_when_rollback_and_update_are(released: Path) -> None:
    with open_ws(released) as ws:
        result = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert result.status == "applied"
    assert git(released, "show", "main:procedures/greet/main.py") == GREET
    assert "Proctor-Release: greet@1.0.0" in tag_message(released, "procedures/greet/v1.0.0")
    assert trusted(released)[-1] == "1.0.0"


def test_a_rollback_reruns_the_code_checks(released: Path) -> None:
    # Code that never went through proctor's checks, committed on main with plain git and
    # tagged with proctor's trailer: the rollback must check it as any new code.
    (released / "procedures/greet/main.py").write_text(EVIL)
    git(released, "commit", "-q", "-am", "by hand")
    _forge_release_of(released, git(released, "rev-parse", "main").strip(), "0.2.5")
    with open_ws(released) as ws:
        ws.execute("procedure.update", {"name": "greet", "code": V2})
    before = repo_state(released)
    r = run_cli("--repo", str(released), "procedure", "rollback", "greet", "--to", "0.2.5")
    assert r.code == 2, r.err
    assert "does not pass the checks" in r.err and "os.system" in r.err
    assert repo_state(released) == before


def test_rollback_to_an_unknown_version_names_the_trusted_releases(released: Path) -> None:
    r = run_cli("--repo", str(released), "procedure", "rollback", "greet", "--to", "3.0.0")
    assert r.code == 2
    assert "0.1.0, 0.2.0" in r.err


# -- runs --------------------------------------------------------------------------------------


def test_runs_resolve_to_the_latest_trusted_release(released: Path) -> None:
    from proctor.runs.resolve import resolve_version

    evil = side_branch_commit(released, EVIL)
    message = "Release greet 0.3.0\n\nProctor-Release: greet@0.3.0\n"
    git(released, "tag", "-a", "procedures/greet/v0.3.0", "-m", message, evil)
    with open_ws(released) as ws:
        latest = resolve_version(ws.procedures, "greet")
        assert latest.release == "0.2.0"
        assert b"os.system" not in latest.code
        assert [r.label for r in latest.releases] == ["0.1.0", "0.2.0"]
        assert latest.previous_release() is not None
        assert latest.previous_release().label == "0.1.0"  # type: ignore[union-attr]
        with pytest.raises(Exception, match="foreign"):
            resolve_version(ws.procedures, "greet@0.3.0")
        with pytest.raises(Exception, match="foreign"):
            ws.get_procedure("greet", "0.3.0")


def test_run_cli_refuses_a_foreign_release(released: Path) -> None:
    evil = side_branch_commit(released, EVIL)
    git(released, "tag", "-a", "procedures/greet/v0.3.0", "-m", "by hand", evil)
    r = run_cli("--repo", str(released), "run", "greet@0.3.0", "-p", "name=x")
    assert r.code == 2, (r.out, r.err)
    assert "foreign" in r.err and "Traceback" not in r.err


# -- release output ------------------------------------------------------------------------------


def test_release_reports_the_commit_the_tag_points_at(released: Path) -> None:
    with open_ws(released) as ws:
        ws.execute("procedure.update", {"name": "greet", "description": "Greets politely"})
        version = git(released, "rev-parse", "main").strip()
        ws.execute("procedure.create", {"name": "other", "code": GREET, "description": "x"})
    tip = git(released, "rev-parse", "main").strip()
    assert tip != version
    r = run_cli("--repo", str(released), "--json", "procedure", "release", "greet")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert git(released, "rev-parse", "procedures/greet/v0.2.1^{commit}").strip() == version
    assert data["commit"] == version
    git(released, "tag", "-d", "procedures/greet/v0.2.1")
    r = run_cli("--repo", str(released), "procedure", "release", "greet")
    assert r.code == 0, r.err
    assert version[:10] in r.out and tip[:10] not in r.out


def test_a_rollback_of_a_deleted_procedure_is_governed_as_a_create(released: Path) -> None:
    with open_ws(released) as ws:
        ws.execute("procedure.delete", {"name": "greet"})
    _commit_policy(released, '"procedure.create" = "DENY"')
    before = repo_state(released)
    with open_ws(released) as ws:
        result = ws.execute("procedure.rollback", {"name": "greet", "to": "0.1.0"})
    assert result.status == "denied"
    assert "procedure.create" in " ".join(result.errors)
    assert repo_state(released) == before


def test_a_rollback_that_would_amount_to_another_action_than_decided_stops(
    released: Path,
) -> None:
    # Policy decided on one tip; the change is built on a newer one where the rollback
    # is something else (the procedure was deleted in between): no commit policy did
    # not see.
    from proctor.core.errors import ConcurrencyError
    from proctor.engine.actions import ActionContext
    from proctor.procedures.actions import RollbackParams, RollbackProcedure
    from proctor.store.gitstore import Snapshot

    with open_ws(released) as ws:
        action = RollbackProcedure()
        params = RollbackParams(name="greet", to="0.1.0")
        context = ActionContext(actor="t", snapshot=Snapshot(ws.store, ws.store.read_ref(ws.ref)))
        (kind, _), *_ = action.governed_as(params, context)
        assert kind.api_name == "procedure.update"
        ws.execute("procedure.delete", {"name": "greet"})
        context.snapshot = Snapshot(ws.store, ws.store.read_ref(ws.ref))
        with pytest.raises(ConcurrencyError, match="procedure.create"):
            action.apply(params, context)
