"""Transcript records rendered for a person (or for Claude reading its own past).

Claude Code adds record types and content shapes from version to version, and lines can be
invalid: rendering never fails on a record, it shows a short placeholder for what it does not
know. Bookkeeping records (progress, file-history-snapshot, queue-operation, ...) are left out.

A record is first cut into pieces (what the user said, what Claude said, a tool call, a tool
result, a marker): `record` joins them for reading in full (`cmem diff`), conversation.py
arranges them so that the conversation comes first (`cmem resume`, `cmem delta`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_QUIET = {"progress", "file-history-snapshot", "queue-operation", "last-prompt", "ai-title",
          "custom-title", "attachment"}
RESULT_LINES = 3
LINE_WIDTH = 160
# Piece kinds
SAID = "said"  # the user's words or Claude's
TOOL_USE = "tool_use"
TOOL_RESULT = "tool_result"
THINKING = "thinking"
MARK = "mark"  # compaction boundaries and summaries, placeholders


@dataclass(frozen=True)
class Piece:
    kind: str
    text: str
    tool_id: str = ""  # for tool calls and their results
    error: bool = False


def record(line: bytes, thinking: bool = False) -> str | None:
    """One record as Markdown-ish text, or None when it is bookkeeping."""
    found = pieces(line, thinking)
    return "\n".join(p.text for p in found) or None


def pieces(line: bytes, thinking: bool = False) -> list[Piece]:
    """One record cut into what it says; empty for bookkeeping."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return [Piece(MARK, f"[invalid JSON line, {len(line)} bytes]")]
    if not isinstance(value, dict):
        return [Piece(MARK, f"[not a record: {short(json.dumps(value))}]")]
    kind = value.get("type")
    if not isinstance(kind, str) and kind is not None:
        return [Piece(MARK, f"[{short(json.dumps(kind), 40)} record]")]
    if kind in _QUIET:
        return []
    if kind == "user":
        return _user(value)
    if kind == "assistant":
        return _assistant(value, thinking)
    if kind == "system":
        return _system(value)
    if kind == "summary":
        return [Piece(MARK, f"[summary: {short(str(value.get('summary', '')))}]")]
    return [Piece(MARK, f"[{short(kind, 40) if kind is not None else 'untyped'} record]")]


def _content(value: dict[str, Any]) -> Any:
    message = value.get("message")
    return message.get("content") if isinstance(message, dict) else None


def _user(value: dict[str, Any]) -> list[Piece]:
    if value.get("isCompactSummary"):
        return [Piece(MARK, "[compaction summary for the next context]")]
    content = _content(value)
    if value.get("isMeta") is True:  # Claude Code's own words in the user's turn
        text = content if isinstance(content, str) else result_text(content)
        return [Piece(MARK, f"[added by Claude Code: {short(text, 100)}]")]
    if isinstance(content, str):
        return _said("User", content)
    if not isinstance(content, list):
        return [Piece(MARK, "[user record without content]")]
    return [p for p in (_user_part(part) for part in content) if p]


def _said(who: str, text: object) -> list[Piece]:
    text = str(text).strip()
    return [Piece(SAID, f"**{who}:** {text}")] if text else []


def _user_part(part: Any) -> Piece | None:
    if not isinstance(part, dict):
        return Piece(MARK, f"[{type(part).__name__} content]")
    if part.get("type") == "text":
        return next(iter(_said("User", part.get("text", ""))), None)
    if part.get("type") == "tool_result":
        error = bool(part.get("is_error"))
        return Piece(TOOL_RESULT, "  ↳ " + _result(part.get("content"), error),
                     str(part.get("tool_use_id") or ""), error)
    return Piece(MARK, f"[{short(str(part.get('type', 'unknown')), 40)} content]")


def result_text(content: Any) -> str:
    """A tool result's text, whether Claude Code stored a string or a list of parts."""
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content if content is not None else "").strip()


def _result(content: Any, error: bool) -> str:
    lines = result_text(content).splitlines() or [""]
    head = " / ".join(short(line) for line in lines[:RESULT_LINES])
    more = f" … (+{len(lines) - RESULT_LINES} lines)" if len(lines) > RESULT_LINES else ""
    return ("error: " if error else "") + head + more


def _assistant(value: dict[str, Any], thinking: bool) -> list[Piece]:
    content = _content(value)
    if isinstance(content, str):
        return _said("Claude", content)
    if not isinstance(content, list):
        return [Piece(MARK, "[assistant record without content]")]
    return [p for p in (_assistant_part(part, thinking) for part in content) if p]


def _assistant_part(part: Any, thinking: bool) -> Piece | None:
    if not isinstance(part, dict):
        return Piece(MARK, f"[{type(part).__name__} content]")
    kind = part.get("type")
    if kind == "text":
        return next(iter(_said("Claude", part.get("text", ""))), None)
    if kind == "tool_use":
        return Piece(TOOL_USE, f"→ {part.get('name', '?')}({tool_summary(part.get('input'))})",
                     str(part.get("id") or ""))
    if kind in ("thinking", "redacted_thinking"):
        text = f"_(thinking)_ {str(part.get('thinking', '')).strip()}"
        return Piece(THINKING, text) if thinking else None
    return Piece(MARK, f"[{short(str(kind or 'unknown'), 40)} content]")


def _system(value: dict[str, Any]) -> list[Piece]:
    subtype = value.get("subtype")
    if subtype == "compact_boundary":
        meta = value.get("compactMetadata")
        trigger = meta.get("trigger", "?") if isinstance(meta, dict) else "?"
        return [Piece(MARK, f"──── compaction ({trigger}) ────")]
    if subtype in ("local_command", "stop_hook_summary", "informational"):
        return []
    return [Piece(MARK, f"[system: {short(str(value.get('content', subtype)))}]")]


def tool_summary(value: Any) -> str:
    """A tool call's input on one short line: its command, path or pattern when it has one."""
    return short(_one_line(value))


def _one_line(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, dict):
        for key in ("command", "file_path", "pattern", "path", "url", "description", "prompt"):
            if key in value:
                return str(value[key])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def short(text: str, width: int = LINE_WIDTH) -> str:
    """`text` on one line, cut to `width` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
