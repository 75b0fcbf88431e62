"""Transcript records rendered for a person (or for Claude reading its own past).

Claude Code adds record types and content shapes from version to version, and lines can be
invalid: rendering never fails on a record, it shows a short placeholder for what it does not
know. Bookkeeping records (progress, file-history-snapshot, queue-operation, ...) are left out.
"""

from __future__ import annotations

import json
from typing import Any

_QUIET = {"progress", "file-history-snapshot", "queue-operation", "last-prompt", "ai-title",
          "custom-title", "attachment"}
RESULT_LINES = 3
LINE_WIDTH = 160


def record(line: bytes, thinking: bool = False) -> str | None:
    """One record as Markdown-ish text, or None when it is bookkeeping."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return f"[invalid JSON line, {len(line)} bytes]"
    if not isinstance(value, dict):
        return f"[not a record: {_short(json.dumps(value))}]"
    kind = value.get("type")
    if not isinstance(kind, str) and kind is not None:
        return f"[{_short(json.dumps(kind), 40)} record]"
    if kind in _QUIET:
        return None
    if kind == "user":
        return _user(value)
    if kind == "assistant":
        return _assistant(value, thinking)
    if kind == "system":
        return _system(value)
    if kind == "summary":
        return f"[summary: {_short(str(value.get('summary', '')))}]"
    return f"[{_short(kind, 40) if kind is not None else 'untyped'} record]"


def _content(value: dict[str, Any]) -> Any:
    message = value.get("message")
    return message.get("content") if isinstance(message, dict) else None


def _user(value: dict[str, Any]) -> str | None:
    if value.get("isCompactSummary"):
        return "[compaction summary for the next context]"
    content = _content(value)
    if isinstance(content, str):
        return f"**User:** {content.strip()}"
    if not isinstance(content, list):
        return "[user record without content]"
    parts = [_user_part(part) for part in content]
    return "\n".join(p for p in parts if p) or None


def _user_part(part: Any) -> str | None:
    if not isinstance(part, dict):
        return f"[{type(part).__name__} content]"
    if part.get("type") == "text":
        return f"**User:** {str(part.get('text', '')).strip()}"
    if part.get("type") == "tool_result":
        return "  ↳ " + _result(part.get("content"), bool(part.get("is_error")))
    return f"[{_short(str(part.get('type', 'unknown')), 40)} content]"


def _result(content: Any, error: bool) -> str:
    if isinstance(content, list):
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    text = str(content if content is not None else "").strip()
    lines = text.splitlines() or [""]
    head = " / ".join(_short(line) for line in lines[:RESULT_LINES])
    more = f" … (+{len(lines) - RESULT_LINES} lines)" if len(lines) > RESULT_LINES else ""
    return ("error: " if error else "") + head + more


def _assistant(value: dict[str, Any], thinking: bool) -> str | None:
    content = _content(value)
    if isinstance(content, str):
        return f"**Claude:** {content.strip()}"
    if not isinstance(content, list):
        return "[assistant record without content]"
    parts = [_assistant_part(part, thinking) for part in content]
    return "\n".join(p for p in parts if p) or None


def _assistant_part(part: Any, thinking: bool) -> str | None:
    if not isinstance(part, dict):
        return f"[{type(part).__name__} content]"
    kind = part.get("type")
    if kind == "text":
        return f"**Claude:** {str(part.get('text', '')).strip()}"
    if kind == "tool_use":
        return f"→ {part.get('name', '?')}({tool_summary(part.get('input'))})"
    if kind in ("thinking", "redacted_thinking"):
        return f"_(thinking)_ {str(part.get('thinking', '')).strip()}" if thinking else None
    return f"[{_short(str(kind or 'unknown'), 40)} content]"


def _system(value: dict[str, Any]) -> str | None:
    subtype = value.get("subtype")
    if subtype == "compact_boundary":
        meta = value.get("compactMetadata")
        trigger = meta.get("trigger", "?") if isinstance(meta, dict) else "?"
        return f"──── compaction ({trigger}) ────"
    if subtype in ("local_command", "stop_hook_summary", "informational"):
        return None
    return f"[system: {_short(str(value.get('content', subtype)))}]"


def tool_summary(value: Any) -> str:
    """A tool call's input on one short line: its command, path or pattern when it has one."""
    return _short(_one_line(value))


def _one_line(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if isinstance(value, dict):
        for key in ("command", "file_path", "pattern", "path", "url", "description", "prompt"):
            if key in value:
                return str(value[key])
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _short(text: str, width: int = LINE_WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
