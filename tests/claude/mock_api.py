"""A stand-in for the Anthropic Messages API on 127.0.0.1, so the real `claude` runs offline.

Claude Code talks to `ANTHROPIC_BASE_URL`: `POST /v1/messages` (streamed as server-sent events
unless the body says `"stream": false`), plus a few start-up calls whose names change between
versions. Every request is logged with its body; unknown paths get an empty JSON object and
status 200, so a new start-up call is seen in the log, never fatal.

Replies are scripted from the prompt, so a test writes what it wants Claude to do in the prompt:

- `MOCK:bash <command>` (up to the end of the line): a Bash tool_use running the command;
  after its result comes back, a text turn saying so;
- `MOCK:tool <name> <JSON arguments>`: a tool_use of any tool the request offers (e.g. an MCP
  server's `mcp__cmem__search`), then a text turn quoting the result;
- `MOCK:agent <prompt>`: an Agent tool_use (the subagent tool; older versions call it Task)
  whose subagent gets the prompt and answers with plain text;
- a compaction request (Claude Code asks for a summary of the conversation): a `<summary>`
  naming every marker it saw, so a test can check what survived;
- anything else: plain text `reply to: <first 60 characters of the prompt>`.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOCALHOST = "127.0.0.1"
_ids = itertools.count(1)
_BASH = re.compile(r"MOCK:bash (.+)")
_AGENT = re.compile(r"MOCK:agent (.+)")
_TOOL = re.compile(r"MOCK:tool (\S+) (\{.*\})")
# Claude Code's compaction prompt; its wording changes, these words have stayed.
_COMPACT = re.compile(r"summary of the conversation|create a detailed summary", re.I)
MARKER = re.compile(r"MARK-[A-Za-z0-9-]+")

Json = dict[str, Any]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Json | None
    reply: str = ""


@dataclass
class MockApi:
    """The server and everything it was sent; `with MockApi() as api:` starts and stops it."""

    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "the mock API is not running"
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"

    def __enter__(self) -> MockApi:
        self._server = ThreadingHTTPServer((LOCALHOST, 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def messages(self) -> list[Request]:
        """The POST /v1/messages requests (the model turns), in order."""
        with self._lock:
            return [r for r in self.requests
                    if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"]

    def unknown(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests if r.reply == "unknown"]

    def sent_text(self, since: int = 0) -> str:
        """Everything Claude Code sent in message requests from index `since`, as one text."""
        return "\n".join(json.dumps(r.body) for r in self.messages()[since:])


def _handler(api: MockApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output quiet
            pass

        def do_GET(self) -> None:
            self._unknown(None)

        def do_HEAD(self) -> None:
            self._unknown(None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = {"unparsed": raw.decode("utf-8", "replace")}
            path = self.path.split("?")[0]
            if path == "/v1/messages" and isinstance(body, dict):
                self._message(body)
            elif path == "/v1/messages/count_tokens":
                self._json({"input_tokens": _estimate_tokens(body)}, "count_tokens", body)
            else:
                self._unknown(body)

        def _message(self, body: Json) -> None:
            kind, content = reply_for(body)
            message = _message_object(content, body.get("model", "claude-mock"))
            if body.get("stream"):
                self._record(body, kind)
                self._stream(message)
            else:
                self._json(message, kind, body)

        def _unknown(self, body: Json | None) -> None:
            self._json({}, "unknown", body)

        def _record(self, body: Json | None, kind: str) -> None:
            api.record(Request(self.command, self.path, dict(self.headers), body, kind))

        def _json(self, data: Json, kind: str, body: Json | None) -> None:
            self._record(body, kind)
            payload = json.dumps(data).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("request-id", f"req_mock_{next(_ids)}")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _stream(self, message: Json) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("request-id", f"req_mock_{next(_ids)}")
            self.end_headers()  # HTTP/1.0: the body ends when the connection closes
            for name, data in sse_events(message):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()

    return Handler


def reply_for(body: Json) -> tuple[str, list[Json]]:
    """(what kind of reply, its content blocks) for a Messages request."""
    messages = body.get("messages") or []
    # Claude Code may put its own messages (e.g. a hook's context as role "system") after the
    # user's turn, so the prompt is the last user message, wherever it is.
    last: Json = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    prompt = _user_text(last)
    # The compaction request appends its instructions to the conversation's last user message,
    # which may also hold a tool result: it is recognised first.
    if _COMPACT.search(prompt):
        seen = sorted(set(MARKER.findall(json.dumps(messages))))
        return "compact", [_text("<analysis>scripted</analysis>\n<summary>\n1. Primary Request "
                                 f"and Intent: the test session. Markers: {' '.join(seen)}\n"
                                 "</summary>")]
    if _has_tool_result(last):
        return "after-tool", [_text(f"the tool ran: {_tool_result_text(last)[:80]!r}")]
    if (match := _BASH.search(prompt)) and _offers(body, "Bash"):
        return "bash", [_tool_use("Bash", {"command": match.group(1).strip(),
                                           "description": "scripted by the mock API"})]
    if (match := _AGENT.search(prompt)) and (tool := _agent_tool(body)):
        return "agent", [_tool_use(tool, {"description": "scripted subagent",
                                          "prompt": match.group(1).strip(),
                                          "subagent_type": "general-purpose",
                                          "run_in_background": False})]
    if (match := _TOOL.search(prompt)) and _offers(body, match.group(1)):
        return "tool", [_tool_use(match.group(1), json.loads(match.group(2)))]
    return "text", [_text(f"reply to: {prompt.strip()[:60]}")]


def _offers(body: Json, name: str) -> bool:
    return any(t.get("name") == name for t in body.get("tools") or [] if isinstance(t, dict))


def _agent_tool(body: Json) -> str | None:
    return next((n for n in ("Agent", "Task") if _offers(body, n)), None)


def _has_tool_result(message: Json) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _tool_result_text(message: Json) -> str:
    return " ".join(json.dumps(b.get("content")) for b in message.get("content") or []
                    if isinstance(b, dict) and b.get("type") == "tool_result")


def _user_text(message: Json) -> str:
    """The text of a user message; Claude Code puts its own <system-reminder> blocks first."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or [] if isinstance(b, dict)
             and b.get("type") == "text"]
    plain = [t for t in texts if not t.lstrip().startswith("<system-reminder>")]
    return "\n".join(plain or texts)


def _text(text: str) -> Json:
    return {"type": "text", "text": text}


def _tool_use(name: str, arguments: Json) -> Json:
    return {"type": "tool_use", "id": f"toolu_mock{next(_ids):06d}", "name": name,
            "input": arguments}


def _estimate_tokens(body: Json | None) -> int:
    return max(1, len(json.dumps(body)) // 4)


def _message_object(content: list[Json], model: str) -> Json:
    stop = "tool_use" if any(b["type"] == "tool_use" for b in content) else "end_turn"
    return {"id": f"msg_mock{next(_ids):06d}", "type": "message", "role": "assistant",
            "model": model, "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 20,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def sse_events(message: Json) -> Iterator[tuple[str, Json]]:
    """The server-sent events of a streamed Messages response for `message`."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        yield from _block_events(index, block)
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": message["stop_reason"],
                                      "stop_sequence": None},
                            "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


def _block_events(index: int, block: Json) -> Iterator[tuple[str, Json]]:
    opening: Json
    delta: Json
    if block["type"] == "text":
        opening, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block["text"]}
    else:
        opening = {**block, "input": {}}
        delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
    yield "content_block_start", {"type": "content_block_start", "index": index,
                                  "content_block": opening}
    yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": index}
