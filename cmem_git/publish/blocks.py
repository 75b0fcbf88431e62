"""A stored transcript read as a conversation, one record at a time.

Exports must handle a 100 MiB session in memory the size of a chunk, so nothing here holds a
whole file: `lines` reads the stored chunks one after another, `blocks` turns each record into
what a person reads (a prompt, a reply, thinking, a tool call with its result, a compaction), and
`paired` joins each tool call to its result. Claude Code writes a tool call and, a few records
later, its result (parallel calls: all calls, then all results); only those few calls wait in
memory, never more than `PENDING_LIMIT` bytes of them.

Records come from Claude Code, which adds types and shapes from version to version, or from a
remote: nothing is trusted and nothing fails. What this module does not know, render.py's
placeholder names (`[xyz record]`), exactly as `cmem diff` shows it.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pygit2

from ..git import chunks
from ..read import render

PENDING_LIMIT = 4 << 20  # tool calls waiting for their result, in bytes of input and result
_TAG = re.compile(r"<[^>]{1,80}>")
_COMMAND = re.compile(r"<command-name>([^<]{1,200})</command-name>")
_ARGS = re.compile(r"<command-args>(.{0,2000}?)</command-args>", re.DOTALL)
_TITLES = ("custom-title", "ai-title")


@dataclass(frozen=True)
class Said:
    """A user prompt or Claude's text."""
    who: str  # "user" or "claude" ("document" for a session document's page)
    text: str
    time: str | None


@dataclass(frozen=True)
class Thinking:
    text: str
    time: str | None


@dataclass(frozen=True)
class Result:
    text: str
    error: bool
    agent: str | None  # the subagent this tool call started (toolUseResult.agentId)
    time: str | None


@dataclass(frozen=True)
class Call:
    id: str
    name: str
    summary: str  # the one-line form `cmem diff` shows
    input: str  # pretty JSON
    time: str | None
    result: Result | None = None


@dataclass(frozen=True)
class Compaction:
    trigger: str
    tokens: int | None
    time: str | None


@dataclass(frozen=True)
class Summary:
    """Text Claude was given in place of earlier context: after a compaction, or an old
    `summary` record."""
    text: str
    time: str | None


@dataclass(frozen=True)
class Note:
    """Anything else, as render.py's placeholder."""
    text: str
    time: str | None


@dataclass(frozen=True)
class Line:
    """Where a record starts: 1-based line of the stored file (checkpoints link here)."""
    number: int


@dataclass(frozen=True)
class _Orphan:
    """A tool result whose call is not in the file (an excerpt, or a call flushed early)."""
    id: str
    result: Result


Block = Said | Thinking | Call | Compaction | Summary | Note | Line
_Item = Block | _Orphan


# --- reading stored files ----------------------------------------------------------------

def lines(repo: pygit2.Repository, stored: list[chunks.Chunk],
          seen: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The file's lines, one chunk in memory at a time (chunks are cut after a newline; a
    line longer than a chunk is a chunk of its own, so `rest` stays small). `seen` hears the
    size of each chunk read, for a progress bar."""
    rest = b""
    for chunk in stored:
        data = rest + chunks.blob_data(repo, chunk.oid)
        if seen is not None:
            seen(len(data) - len(rest))
        end = data.rfind(b"\n") + 1
        yield from data[:end].splitlines()
        rest = data[end:]
    if rest:
        yield rest


def pieces(repo: pygit2.Repository, stored: list[chunks.Chunk]) -> Iterator[bytes]:
    """A plain-text file (a spilled tool result), chunk by chunk."""
    for chunk in stored:
        yield chunks.blob_data(repo, chunk.oid)


# --- records -> blocks ---------------------------------------------------------------------

def blocks(records: Iterable[bytes]) -> Iterator[_Item]:
    for number, line in enumerate(records, 1):
        yield Line(number)
        yield from record_blocks(line)


def record_blocks(line: bytes) -> list[_Item]:
    value = _load(line)
    if not isinstance(value, dict):
        return _note(line, None)
    time = value.get("timestamp") if isinstance(value.get("timestamp"), str) else None
    kind = value.get("type")
    if kind == "user" and not value.get("isCompactSummary"):
        return _parts(value, "user", time) if not value.get("isMeta") else []
    if kind == "user":
        return [Summary(_text(_content(value)), time)]
    if kind == "assistant":
        return _parts(value, "claude", time)
    if kind == "summary":
        return [Summary(str(value.get("summary", "")), time)]
    if kind == "system" and value.get("subtype") == "compact_boundary":
        return [_compaction(value, time)]
    return _note(line, time)


def _load(line: bytes) -> Any:
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _note(line: bytes, time: str | None) -> list[_Item]:
    text = render.record(line)
    return [Note(text, time)] if text else []  # None: bookkeeping, nothing to show


def _content(value: dict[str, Any]) -> Any:
    message = value.get("message")
    return message.get("content") if isinstance(message, dict) else None


def _parts(value: dict[str, Any], who: str, time: str | None) -> list[_Item]:
    content = _content(value)
    if isinstance(content, str):
        return [Said(who, content.strip(), time)] if content.strip() else []
    if not isinstance(content, list):
        return [Note(f"[{who} record without content]", time)]
    agent = _agent(value.get("toolUseResult"))
    return [b for p in content if (b := _part(p, who, time, agent)) is not None]


def _part(part: Any, who: str, time: str | None, agent: str | None) -> _Item | None:
    if not isinstance(part, dict):
        return Note(f"[{type(part).__name__} content]", time)
    kind = part.get("type")
    if kind == "text":
        text = str(part.get("text", "")).strip()
        return Said(who, text, time) if text else None
    if kind in ("thinking", "redacted_thinking"):
        return Thinking(str(part.get("thinking", "") or "(redacted)").strip(), time)
    if kind == "tool_use":
        return Call(str(part.get("id", "")), str(part.get("name", "?")),
                    render.tool_summary(part.get("input")), _pretty(part.get("input")), time)
    if kind == "tool_result":
        result = Result(_text(part.get("content")), bool(part.get("is_error")), agent, time)
        return _Orphan(str(part.get("tool_use_id", "")), result)
    return Note(f"[{str(kind or 'unknown')[:40]} content]", time)


def _agent(value: Any) -> str | None:
    agent = value.get("agentId") if isinstance(value, dict) else None
    return agent if isinstance(agent, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,80}", agent) \
        else None


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "\n".join(str(p.get("text", "")) if p.get("type") == "text" else
                         f"[{str(p.get('type', 'unknown'))[:40]} content]"
                         for p in content if isinstance(p, dict))
    return str(content if content is not None else "")


def _pretty(value: Any) -> str:
    """A tool's input for reading: one `key: value` per line, a text with newlines shown as
    lines (a Task prompt or a Write's content as JSON is one unreadable line of `\\n`)."""
    if not isinstance(value, dict):
        return json.dumps(value, indent=2, ensure_ascii=False)
    return "\n".join(_field(str(key), item) for key, item in value.items())


def _field(key: str, value: Any) -> str:
    if isinstance(value, str) and "\n" in value:
        return f"{key}:\n" + "\n".join("    " + line for line in value.split("\n"))
    if isinstance(value, str):
        return f"{key}: {value}"
    return f"{key}: {json.dumps(value, ensure_ascii=False)}"


def _compaction(value: dict[str, Any], time: str | None) -> Compaction:
    meta = value.get("compactMetadata")
    meta = meta if isinstance(meta, dict) else {}
    tokens = meta.get("preTokens")
    return Compaction(str(meta.get("trigger", "?")), tokens if isinstance(tokens, int) else None,
                      time)


# --- tool calls joined to their results ------------------------------------------------------

@dataclass
class _Waiting:
    """Tool calls not yet written, in the order they were made, and their size."""

    calls: dict[str, Call] = field(default_factory=dict)
    size: int = 0

    def add(self, call: Call) -> Iterator[Block]:
        if call.id in self.calls:  # the same id again (a copied transcript): the first goes
            yield from self.take()
        self.calls[call.id] = call
        self.size += len(call.input)

    def answer(self, orphan: _Orphan) -> Iterator[Block]:
        call = self.calls.get(orphan.id)
        if call is None:
            yield Call(orphan.id, "?", "(its call is not in this transcript)", "", None,
                       orphan.result)
            return
        self.calls[orphan.id] = dataclasses.replace(call, result=orphan.result)
        self.size += len(orphan.result.text)
        # Calls are answered in any order: a call is written once it and every call made
        # before it have their results.
        while self.calls:
            first = next(iter(self.calls.values()))
            if first.result is None:
                return
            yield self._drop(first)

    def take(self) -> Iterator[Block]:
        while self.calls:
            yield self._drop(next(iter(self.calls.values())))

    def _drop(self, call: Call) -> Call:
        del self.calls[call.id]
        self.size -= len(call.input) + (len(call.result.text) if call.result else 0)
        return call


def paired(source: Iterable[_Item]) -> Iterator[Block]:
    """Blocks in order, each tool call held back until its result arrives (or until something
    else is said or thought, or the calls waiting grow past PENDING_LIMIT): then out with its
    result."""
    waiting = _Waiting()
    for block in source:
        if isinstance(block, Call):
            yield from waiting.add(block)
        elif isinstance(block, _Orphan):
            yield from waiting.answer(block)
        elif isinstance(block, (Line, Note)):
            yield block  # a placeholder between a call and its result does not part them
        else:
            yield from waiting.take()
            yield block
        if waiting.size > PENDING_LIMIT:
            yield from waiting.take()
    yield from waiting.take()


# --- what a session's first and last chunks say -------------------------------------------

@dataclass(frozen=True)
class Outline:
    title: str | None
    start: str | None  # the first record's timestamp
    end: str | None  # the last record's


def outline(head: bytes, tail: bytes) -> Outline:
    """Title and times from the first and last chunk only (an index must not read every
    session whole): a title Claude Code gave the session, else the first prompt."""
    first, last = head.splitlines(), tail.splitlines()
    titles = [_title(line) for line in first + last]
    named = [t for t in titles if t]
    return Outline(named[-1] if named else _first_prompt(first),
                   _stamp(first), _stamp(list(reversed(last))))


def _title(line: bytes) -> str | None:
    if not any(kind.encode() in line for kind in _TITLES):
        return None
    value = _load(line)
    if not isinstance(value, dict) or value.get("type") not in _TITLES:
        return None
    title = value.get("customTitle") or value.get("aiTitle") or value.get("title")
    return _one_line(str(title)) if title else None


def _first_prompt(records: list[bytes]) -> str | None:
    for line in records:
        for block in record_blocks(line):
            if isinstance(block, Said) and block.who == "user":
                text = _one_line(_TAG.sub(" ", _command(block.text)))
                if text:
                    return text
    return None


def _command(text: str) -> str:
    """A slash command's prompt as the user typed it: `/name args`, without Claude Code's
    `<command-message>` wrapping."""
    name = _COMMAND.search(text)
    if name is None:
        return text
    args = _ARGS.search(text)
    return f"{name[1]} {args[1] if args else ''}"


def _stamp(records: list[bytes]) -> str | None:
    for line in records:
        value = _load(line)
        if isinstance(value, dict) and isinstance(value.get("timestamp"), str):
            return str(value["timestamp"])
    return None


def _one_line(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
