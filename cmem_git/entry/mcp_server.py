"""`cmem mcp`: the memory's history as tools Claude can call, over stdio.

Claude Code starts the server as a child process when a session starts and, in print mode,
waits for it before the first request: so the server answers `initialize` and `tools/list` from
the standard library alone, and loads the repository code (mcp_tools.py) at the first tool
call. MCP's stdio transport is JSON-RPC 2.0, one message per line; this module speaks the part
a tools-only server needs (initialize, ping, tools/list, tools/call). The `mcp` SDK did it
before, but importing it (pydantic, anyio, ...) took 0.9 s of every session's start-up;
tests/test_mcp.py checks this server with the SDK's own client.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

# The protocol versions this server speaks, newest first; a client asking for another one gets
# the newest, and decides whether to go on (MCP's version negotiation).
VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
MAX_CHARS = 8000  # per answer (Claude Code warns above 10,000 tokens of tool output)
MAX_HITS = 30
MAX_RECORDS = 40
_MAX_LINE = 16 * 1024 * 1024

INSTRUCTIONS = """\
This project's Claude Code history, versioned by cmem: every session (including ones Claude
Code has since deleted), every session document and every version of the memory files.
Before re-deriving a decision, re-investigating a bug or asking the user something they may
already have said, `search` whether it happened before; `show` reads the records around a hit;
`log` lists recent sessions and documents; `resume` gives the last session document and what
happened since."""

_TEXT = {"type": ["string", "null"], "default": None}


def _schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required,
            "additionalProperties": False}


TOOLS: list[dict[str, Any]] = [
    {"name": "search", "description": (
        "Search everything ever said in this project's Claude Code sessions (user prompts, "
        "Claude's replies, tool calls and results, subagents, compaction summaries), session "
        "documents and memory files, across all history. `query` is an exact phrase "
        "(case-insensitive unless ignore_case is false). Filters: session (id prefix), kind "
        "(user, assistant, tool, summary, doc, memory), since/until ('2 days ago', "
        "'2026-11-20'). Best hits first."),
     "inputSchema": _schema(["query"], query={"type": "string"}, session=_TEXT, kind=_TEXT,
                            since=_TEXT, until=_TEXT,
                            limit={"type": "integer", "default": 10},
                            ignore_case={"type": "boolean", "default": True})},
    {"name": "show", "description": (
        "Read records of a session's transcript, e.g. around a search hit: session (id "
        f"prefix), line (the hit's record number), count (at most {MAX_RECORDS}), file "
        "(main.jsonl, or subagents/<name>.jsonl), commit (a search hit's commit, for a version "
        "since rewritten)."),
     "inputSchema": _schema(["session"], session={"type": "string"},
                            line={"type": "integer", "default": 1},
                            count={"type": "integer", "default": 5},
                            file={"type": "string", "default": "main.jsonl"}, commit=_TEXT)},
    {"name": "log", "description": (
        "Recent commits of the memory, newest first: session backups (with their session ids) "
        "and session documents. Filter by session or event (session-end, pre-compact, "
        "document, ...)."),
     "inputSchema": _schema([], limit={"type": "integer", "default": 20}, session=_TEXT,
                            event=_TEXT)},
    {"name": "resume", "description": (
        "The last session document and what happened since it: what a new session needs to "
        "pick up where the last one left off."),
     "inputSchema": _schema([], max_chars={"type": "integer", "default": MAX_CHARS})},
]


class _Invalid(Exception):
    """A request this server cannot take: a JSON-RPC error answer, never the end of the loop."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def serve(project: Path, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """Answer requests until the client closes stdin (or stops the process)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Claude Code stops its servers with SIGINT
    reader = stdin or sys.stdin.buffer
    writer = stdout or sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers may reach the protocol channel
    while True:
        line = reader.readline(_MAX_LINE + 1)
        if not line:
            return
        if line.strip():
            answer = handle(project, line)
            if answer is not None:
                writer.write(json.dumps(answer).encode() + b"\n")
                writer.flush()


def handle(project: Path, line: bytes) -> dict[str, Any] | None:
    """The answer to one line, or None for a notification (or a client's own answer)."""
    try:
        message = json.loads(line) if len(line) <= _MAX_LINE else None
    except ValueError as error:
        return _error(None, -32700, f"parse error: {error}")
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _error(None, -32600, "not a JSON-RPC 2.0 message (one object per line)")
    method, ident = message.get("method"), message.get("id")
    if not isinstance(method, str):
        return None if "id" in message and ("result" in message or "error" in message) \
            else _error(ident, -32600, "no method")
    try:
        result = _dispatch(project, method, message.get("params") or {})
    except _Invalid as error:
        return None if "id" not in message else _error(ident, error.code, str(error))
    return None if "id" not in message else {"jsonrpc": "2.0", "id": ident, "result": result}


def _dispatch(project: Path, method: str, params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise _Invalid(-32602, "params must be an object")
    if method == "initialize":
        from .. import __version__
        asked = params.get("protocolVersion")
        return {"protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "cmem", "version": __version__},
                "instructions": INSTRUCTIONS}
    if method == "tools/list":
        return {"tools": TOOLS}
    if method == "tools/call":
        return _call(project, params)
    if method == "ping" or method.startswith("notifications/"):
        return {}
    raise _Invalid(-32601, f"method not found: {method}")


def _call(project: Path, params: dict[str, Any]) -> dict[str, Any]:
    name, arguments = params.get("name"), params.get("arguments") or {}
    tool = next((t for t in TOOLS if t["name"] == name), None)
    if tool is None:
        raise _Invalid(-32602, f"unknown tool {name!r}; the tools: "
                               f"{', '.join(t['name'] for t in TOOLS)}")
    try:
        return _text(_run(project, tool, arguments), False)
    except _Invalid:
        raise
    except Exception as error:  # an answer Claude can act on, never the end of the server
        from ..errors import CmemError
        hint = f" (hint: {error.hint})" if isinstance(error, CmemError) and error.hint else ""
        kind = "" if isinstance(error, CmemError) else f"{type(error).__name__}: "
        return _text(f"{kind}{error}{hint}", True)


def _run(project: Path, tool: dict[str, Any], arguments: Any) -> str:
    schema = tool["inputSchema"]
    if not isinstance(arguments, dict):
        raise _Invalid(-32602, "arguments must be an object")
    wrong = [key for key, value in arguments.items()
             if key not in schema["properties"] or not _fits(value, schema["properties"][key])]
    missing = [key for key in schema["required"] if key not in arguments]
    if wrong or missing:
        raise _Invalid(-32602, f"invalid arguments for {tool['name']}: "
                               f"{', '.join(wrong + missing)} (see its inputSchema)")
    from . import mcp_tools
    function: Callable[..., str] = getattr(mcp_tools, tool["name"])
    return function(project, **arguments)


def _fits(value: Any, schema: dict[str, Any]) -> bool:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    checks = {"string": lambda v: isinstance(v, str), "null": lambda v: v is None,
              "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "boolean": lambda v: isinstance(v, bool)}
    return any(checks[kind](value) for kind in kinds)


def _text(text: str, error: bool) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": error}


def _error(ident: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}
