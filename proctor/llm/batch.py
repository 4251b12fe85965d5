"""Batch migration: generate code for every procedure that has metadata and no code.

A fixed number of workers (``concurrency``) take names from one queue; each generates
(:class:`~proctor.llm.generate.Generator`), then commits through the caller's
``commit`` (the ``procedure.generate`` action) and records the outcome in the state
file, ``.git/proctor/generate-state.json``, before it takes the next name. The commit
and the state write happen with no ``await`` between them, so a signal (handled on the
event loop) never falls between the two.

SIGINT or SIGTERM stops the batch: no new item starts, the items in flight are
cancelled (nothing of theirs was committed), and the state is left ``interrupted``.
``resume`` continues with the names not done; it refuses when the settings or the input
(the metadata-only procedures not done, with their metadata) differ from the state's.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import tempfile
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proctor.core.errors import ProctorError, UsageError

if TYPE_CHECKING:
    from proctor.engine.actions import ActionResult
    from proctor.llm.generate import GenerationOutcome, Generator
    from proctor.store.gitstore import GitStore

STATE_FILE = "generate-state.json"
STATE_FORMAT = 1
EXIT_INTERRUPTED = 130


def metadata_only(store: GitStore, tip: str | None) -> dict[str, str]:
    """Every procedure at ``tip`` with a metadata.json and no main.py: name -> the
    metadata blob's id."""
    from proctor.store.gitstore import Snapshot

    if tip is None:
        return {}
    snap = Snapshot(store, tip)
    out: dict[str, str] = {}
    for name, (mode, _sha) in sorted(snap.listdir("procedures").items()):
        if mode != "40000":
            continue
        files = snap.listdir(f"procedures/{name}")
        if "metadata.json" in files and "main.py" not in files:
            out[name] = files["metadata.json"][1]
    return out


def input_hash(items: Mapping[str, str]) -> str:
    text = "".join(f"{name} {blob}\n" for name, blob in sorted(items.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def settings_hash(settings: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


@dataclass
class ItemResult:
    """One procedure of the batch."""

    name: str
    outcome: str  # applied | proposed | failed
    confidence: float | None = None
    band: str | None = None
    commit: str | None = None
    proposal: str | None = None
    error: str | None = None
    request_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "confidence": self.confidence,
            "band": self.band,
            "commit": self.commit,
            "proposal": self.proposal,
            "error": self.error,
            "request_ids": list(self.request_ids),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemResult:
        return cls(
            name=str(data["name"]),
            outcome=str(data["outcome"]),
            confidence=data.get("confidence"),
            band=data.get("band"),
            commit=data.get("commit"),
            proposal=data.get("proposal"),
            error=data.get("error"),
            request_ids=list(data.get("request_ids") or []),
            seconds=float(data.get("seconds") or 0.0),
        )


@dataclass
class BatchState:
    """What ``.git/proctor/generate-state.json`` holds."""

    items: dict[str, str]
    settings: dict[str, Any]
    status: str = "running"  # running | interrupted | finished
    done: dict[str, ItemResult] = field(default_factory=dict)
    failed: dict[str, ItemResult] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @property
    def input_hash(self) -> str:
        return input_hash(self.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "status": self.status,
            "started": self.started,
            "input_hash": self.input_hash,
            "settings_hash": settings_hash(self.settings),
            "settings": self.settings,
            "items": dict(sorted(self.items.items())),
            "done": {n: r.to_dict() for n, r in sorted(self.done.items())},
            "failed": {n: r.to_dict() for n, r in sorted(self.failed.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BatchState:
        return cls(
            items=dict(data["items"]),
            settings=dict(data["settings"]),
            status=str(data.get("status", "interrupted")),
            done={n: ItemResult.from_dict(r) for n, r in (data.get("done") or {}).items()},
            failed={n: ItemResult.from_dict(r) for n, r in (data.get("failed") or {}).items()},
            started=float(data.get("started") or time.time()),
        )


def load_state(path: Path) -> BatchState | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        return BatchState.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UsageError(
            f"{path} is unreadable ({exc}); remove it or start over with --restart"
        ) from None


def save_state(path: Path, state: BatchState, shared: int = 0) -> None:
    """Atomically: a reader (or a resume after a crash) sees the old state or the new.
    ``shared``: the repository's core.sharedRepository (another user may resume it)."""
    from proctor.store.perms import adjust, make_folders

    make_folders(path.parent, shared)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-state-", suffix=".json")
    try:
        adjust(fd, shared)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state.to_dict(), fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class BatchReport:
    """The batch as a whole (earlier runs of a resumed batch included)."""

    total: int
    applied: int
    proposed: int
    failed: int
    pending: int
    resumed_done: int
    interrupted: bool
    items: list[ItemResult]
    seconds: float
    state_path: str

    @property
    def auto_extraction_rate(self) -> float:
        """The share of the batch's procedures whose code was applied without review."""
        return self.applied / self.total if self.total else 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return 1 if self.failed else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "interrupted" if self.interrupted else "finished",
            "total": self.total,
            "applied": self.applied,
            "proposed": self.proposed,
            "failed": self.failed,
            "pending": self.pending,
            "resumed_done": self.resumed_done,
            "auto_extraction_rate": round(self.auto_extraction_rate, 4),
            "seconds": round(self.seconds, 3),
            "state": self.state_path,
            "items": [i.to_dict() for i in self.items],
        }


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            out.append(f"{key} was {json.dumps(old.get(key))}, now {json.dumps(new.get(key))}")
    return out


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


Commit = Callable[["GenerationOutcome"], "ActionResult"]
Progress = Callable[[ItemResult, "BatchState"], None]
Emit = Callable[..., None]


class Batch:
    """One batch over a store branch; :meth:`arun` does the work."""

    def __init__(
        self,
        *,
        store: GitStore,
        ref: str,
        generator: Generator,
        commit: Commit,
        concurrency: int = 4,
        state_path: Path,
        emit: Emit | None = None,
        progress: Progress | None = None,
        started: Callable[[BatchState, int], None] | None = None,
    ) -> None:
        if concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        self.store = store
        self.ref = ref
        self.generator = generator
        self.commit = commit
        self.concurrency = concurrency
        self.state_path = state_path
        self.emit = emit or (lambda **_fields: None)
        self.progress = progress
        self.on_start = started
        self.stopping = False
        self.submitted = 0
        self.completed = 0
        self.inflight = 0

    # -- state -------------------------------------------------------------------------------

    def prepare(self, *, resume: bool, restart: bool) -> BatchState:
        """The state to work from: a new one, or the interrupted one after checking it
        still fits. Raises UsageError (exit 2) saying exactly what does not."""
        from proctor.procedures.repository import metadata_path, parse_spec
        from proctor.store.gitstore import Snapshot

        settings = self.generator.settings.fingerprint()
        current = metadata_only(self.store, self.store.read_ref(self.ref))
        old = load_state(self.state_path)
        if resume and restart:
            raise UsageError("--resume and --restart exclude each other")
        if not resume:
            if old is not None and old.status != "finished" and not restart:
                raise UsageError(
                    f"an unfinished batch ({len(old.done)} of {len(old.items)} done) is "
                    f"recorded in {self.state_path}: continue it with --resume, or start "
                    "over with --restart"
                )
            if not current:
                raise UsageError("nothing to generate: no procedure has metadata and no code")
            return BatchState(items=current, settings=settings)
        if old is None:
            raise UsageError(f"nothing to resume: no batch is recorded in {self.state_path}")
        if old.status == "finished":
            raise UsageError(
                f"nothing to resume: the batch in {self.state_path} finished; "
                "run without --resume to start a new one"
            )
        changed = _differences(old.settings, settings)
        if changed:
            raise UsageError(
                "cannot resume: the settings changed since the interrupted batch ("
                + "; ".join(changed)
                + "); resume with the same settings, or start over with --restart"
            )
        # A name committed just before a crash may be missing from ``done``: its code is
        # there now, with a generation block. It is done; anything else is a change.
        tip = self.store.read_ref(self.ref)
        snap = Snapshot(self.store, tip)
        for name in sorted(set(old.items) - set(old.done) - set(current)):
            meta = snap.read(metadata_path(name))
            if meta is not None and snap.read(f"procedures/{name}/main.py") is not None:
                spec = parse_spec(meta, metadata_path(name))
                if spec.generation is not None:
                    old.done[name] = ItemResult(name, "applied", spec.generation.confidence)
        expected = {n: b for n, b in old.items.items() if n not in old.done}
        now = {n: b for n, b in current.items() if n not in old.done}
        added = sorted(set(now) - set(expected))
        removed = sorted(set(expected) - set(now))
        edited = sorted(n for n in set(now) & set(expected) if now[n] != expected[n])
        if added or removed or edited:
            parts = []
            if added:
                parts.append(f"new metadata-only procedures {_names(added)}")
            if removed:
                parts.append(f"{_names(removed)} no longer metadata-only or gone")
            if edited:
                parts.append(f"metadata of {_names(edited)} edited")
            raise UsageError(
                "cannot resume: the input changed since the interrupted batch ("
                + "; ".join(parts)
                + "); start over with --restart"
            )
        old.status = "running"
        return old

    # -- running -----------------------------------------------------------------------------

    def _queue_event(self) -> None:
        self.emit(
            what="queue",
            inflight=self.inflight,
            submitted=self.submitted,
            completed=self.completed,
        )

    async def _one(self, name: str, state: BatchState) -> None:
        from proctor.llm.errors import LLMError
        from proctor.llm.generate import failed_request_ids
        from proctor.procedures.repository import metadata_path, parse_spec
        from proctor.store.gitstore import Snapshot

        started = time.monotonic()
        self.inflight += 1
        self.submitted += 1
        self._queue_event()
        item: ItemResult | None = None
        try:
            snap = Snapshot(self.store, self.store.read_ref(self.ref))
            spec = parse_spec(snap.read(metadata_path(name)) or b"", metadata_path(name))
            outcome = await self.generator.agenerate(spec)
            commit_started = time.monotonic()
            result = self.commit(outcome)
            self.generator.stage(name, "commit", commit_started)
            status = result.status if result.status in ("applied", "proposed") else "failed"
            item = ItemResult(
                name,
                status,
                outcome.confidence,
                outcome.band.name,
                commit=result.commit,
                proposal=result.proposal,
                error="; ".join(result.errors) or None,
                request_ids=outcome.request_ids if status == "failed" else [],
            )
        except asyncio.CancelledError:
            raise
        except LLMError as exc:
            item = ItemResult(name, "failed", error=str(exc), request_ids=failed_request_ids(exc))
        except ProctorError as exc:
            item = ItemResult(name, "failed", error=exc.message)
        finally:
            self.inflight -= 1
            if item is not None:
                self.completed += 1
                item.seconds = time.monotonic() - started
                if item.outcome == "failed":
                    state.failed[name] = item
                else:
                    state.done[name] = item
                    state.failed.pop(name, None)
                save_state(self.state_path, state, self.store.shared)
            self._queue_event()
        self.emit(
            what="generated",
            procedure=name,
            outcome=item.outcome,
            confidence=item.confidence,
            band=item.band,
            error=item.error,
        )
        if self.progress is not None:
            self.progress(item, state)

    async def arun(self, *, resume: bool = False, restart: bool = False) -> BatchReport:
        started = time.monotonic()
        state = self.prepare(resume=resume, restart=restart)
        resumed_done = len(state.done)
        todo = deque(sorted(n for n in state.items if n not in state.done))
        save_state(self.state_path, state, self.store.shared)
        if self.on_start is not None:
            self.on_start(state, len(todo))
        loop = asyncio.get_running_loop()
        workers: list[asyncio.Task[None]] = []

        def stop() -> None:
            if self.stopping:
                return
            self.stopping = True
            for task in workers:
                task.cancel()

        async def worker() -> None:
            while todo and not self.stopping:
                await self._one(todo.popleft(), state)

        installed: list[signal.Signals] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, stop)
                installed.append(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signals here: no clean stop, still correct
        try:
            workers.extend(
                asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(todo)))
            )
            results = await asyncio.gather(*workers, return_exceptions=True)
            for outcome in results:
                if isinstance(outcome, BaseException) and not isinstance(
                    outcome, asyncio.CancelledError
                ):
                    raise outcome
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            pending = [n for n in state.items if n not in state.done and n not in state.failed]
            state.status = "interrupted" if self.stopping and pending else "finished"
            save_state(self.state_path, state, self.store.shared)
        items = sorted([*state.done.values(), *state.failed.values()], key=lambda i: i.name)
        return BatchReport(
            total=len(state.items),
            applied=sum(1 for i in state.done.values() if i.outcome == "applied"),
            proposed=sum(1 for i in state.done.values() if i.outcome == "proposed"),
            failed=len(state.failed),
            pending=len(pending),
            resumed_done=resumed_done,
            interrupted=state.status == "interrupted",
            items=items,
            seconds=time.monotonic() - started,
            state_path=str(self.state_path),
        )
