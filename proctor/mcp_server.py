"""``proctor mcp``: the store served to agents over the Model Context Protocol (stdio).

A face, like the CLI: every tool is a call of the workspace, so an agent gets exactly
what a person at the command line gets, no more. Tools:

- ``list_procedures``, ``show_procedure``: reads of the store branch;
- ``run_procedure``: ``Workspace.arun``, the same sandbox, checks, run log and
  auto-rollback as ``proctor run``;
- ``propose_change``: any registered action through ``Workspace.execute`` as the
  server's actor (``--actor``, ``$PROCTOR_ACTOR`` or git's user.email, never a name the
  agent picks), so policy holds, denies or sends it to review as for that person;
- one tool per released procedure (its name; its input schema from the metadata),
  which runs the latest release.

Each tool call opens the workspace afresh, so a long-lived server sees the policy and
``[runs]`` configuration committed since it started, never the one it started with.
The ``mcp`` SDK is an optional extra (``pip install 'proctor[mcp]'``), imported when
the server starts.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from proctor.core.errors import ProctorError, UsageError, describe_error

if TYPE_CHECKING:
    from proctor.workspace import Workspace

OpenWorkspace = Callable[[], "Workspace"]

GENERIC = ("list_procedures", "show_procedure", "run_procedure", "propose_change")

_NAME = {"type": "string", "description": "The procedure's name."}
_VERSION = {
    "type": "string",
    "description": "A release X.Y.Z, 'tip', or a git revision (default: the latest release).",
}
SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "list_procedures": (
        "List the procedures of the store with their description and releases.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    ),
    "show_procedure": (
        "Show one procedure: metadata (parameters, returns, examples, capabilities), "
        "releases and code.",
        {
            "type": "object",
            "properties": {"name": _NAME, "version": _VERSION},
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    "run_procedure": (
        "Run a procedure in the sandbox and return its value; the run is recorded. "
        "status is ok, error, timeout, killed or denied.",
        {
            "type": "object",
            "properties": {
                "name": _NAME,
                "version": _VERSION,
                "params": {"type": "object", "description": "The keyword arguments of run()."},
                "timeout": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["name"],
            "additionalProperties": False,
        },
    ),
    "propose_change": (
        "Change the store through an action (procedure.create, procedure.update, "
        "procedure.release, ...). Policy decides: applied, proposed for review, or denied.",
        {
            "type": "object",
            "properties": {
                "action": {"type": "string", "description": "The action's api_name."},
                "params": {"type": "object", "description": "The action's parameters."},
            },
            "required": ["action"],
            "additionalProperties": False,
        },
    ),
}


def _failure(exc: ProctorError) -> dict[str, Any]:
    status = "invalid" if exc.exit_code == 2 else "failed"
    return {"status": status, "error": type(exc).__name__, "errors": describe_error(exc)}


def _argument(args: dict[str, Any], key: str, kind: type, required: bool = False) -> Any:
    value = args.get(key)
    if value is None:
        if required:
            raise UsageError(f"missing argument {key!r}")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UsageError(f"argument {key!r} must be a {kind.__name__}")
    return value


class StoreTools:
    """The tools, as plain async functions of JSON arguments returning JSON payloads and
    whether the payload is an error; the MCP wiring is in :func:`build_server`."""

    def __init__(self, open_workspace: OpenWorkspace, procedure_tools: bool = True) -> None:
        self.open_workspace = open_workspace
        self.procedure_tools = procedure_tools

    def released(self, ws: Workspace) -> list[tuple[str, str, Any]]:
        """(name, latest release, view) of every released procedure with its own tool."""
        out = []
        for summary in ws.list_procedures():
            if summary.name in GENERIC or summary.error:
                continue
            latest = ws.procedures.latest_release(summary.name)
            if latest is None:
                continue
            try:
                view = ws.get_procedure(summary.name, latest.label)
            except ProctorError:
                continue
            out.append((summary.name, latest.label, view))
        return out

    def tools(self) -> list[dict[str, Any]]:
        """Every tool as ``{name, description, input_schema}``."""
        from proctor.runs.params import json_schema

        out = [
            {"name": name, "description": text, "input_schema": schema}
            for name, (text, schema) in SCHEMAS.items()
        ]
        if not self.procedure_tools:
            return out
        with self.open_workspace() as ws:
            for name, label, view in self.released(ws):
                description = view.spec.description or f"The procedure {name}."
                out.append(
                    {
                        "name": name,
                        "description": f"{description} (release v{label}; runs sandboxed)",
                        "input_schema": json_schema(view.spec, view.signature),
                    }
                )
        return out

    async def call(self, name: str, args: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        try:
            with self.open_workspace() as ws:
                return await self._call(ws, name, args)
        except ProctorError as exc:
            return _failure(exc), True

    async def _call(
        self, ws: Workspace, name: str, args: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        if name == "list_procedures":
            items = []
            for s in ws.list_procedures():
                releases = [r.label for r in ws.procedures.releases(s.name)]
                items.append(
                    {
                        "name": s.name,
                        "description": s.description,
                        "category": s.category,
                        "releases": releases,
                        "error": s.error,
                    }
                )
            return {"procedures": items}, False
        if name == "show_procedure":
            view = ws.get_procedure(
                _argument(args, "name", str, True), _argument(args, "version", str)
            )
            return view.to_json(include_code=True), False
        if name == "run_procedure":
            record = await ws.arun(
                _argument(args, "name", str, True),
                _argument(args, "params", dict) or {},
                version=_argument(args, "version", str),
                timeout=_argument(args, "timeout", float | int),  # type: ignore[arg-type]
            )
            return record.to_json(), not record.ok
        if name == "propose_change":
            result = ws.execute(
                _argument(args, "action", str, True), _argument(args, "params", dict) or {}
            )
            return result.to_json(), result.status in ("denied", "failed")
        if self.procedure_tools and name not in GENERIC:
            latest = ws.procedures.latest_release(name) if _is_name(name) else None
            if latest is not None:
                record = await ws.arun(name, dict(args), version=latest.label)
                return record.to_json(), not record.ok
        raise UsageError(f"unknown tool {name!r}")


def _is_name(name: str) -> bool:
    from proctor.core.names import NAME_PATTERN

    return bool(NAME_PATTERN.fullmatch(name))


def build_server(tools: StoreTools) -> Any:
    """The MCP low-level server over ``tools`` (the SDK's own types on the wire)."""
    try:
        from mcp import types
        from mcp.server.lowlevel import Server
    except ModuleNotFoundError:
        raise UsageError("proctor mcp needs the mcp extra: pip install 'proctor[mcp]'") from None
    from importlib import metadata

    async def list_tools(_ctx: Any, _params: Any) -> Any:
        return types.ListToolsResult(
            tools=[
                types.Tool(
                    name=t["name"], description=t["description"], input_schema=t["input_schema"]
                )
                for t in tools.tools()
            ]
        )

    async def call_tool(_ctx: Any, params: Any) -> Any:
        payload, is_error = await tools.call(params.name, dict(params.arguments or {}))
        text = json.dumps(payload, ensure_ascii=False, default=str)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=text)],
            structured_content=json.loads(text),
            is_error=is_error,
        )

    return Server(
        "proctor",
        version=metadata.version("proctor"),
        instructions=(
            "A git-native store of procedures. list_procedures and show_procedure read it; "
            "run_procedure (or a procedure's own tool) runs one in a sandbox; "
            "propose_change changes it through policy."
        ),
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_stdio(open_workspace: OpenWorkspace, *, procedure_tools: bool = True) -> None:
    """Serve until the client closes stdin."""
    server = build_server(StoreTools(open_workspace, procedure_tools))
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
