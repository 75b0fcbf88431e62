"""What a stored transcript holds: where a blob sits in its file, and what each record says.

Shared by the scanning search (search.py) and the search index (search_index.py), and kept free
of heavy imports: `cmem search` on the index must start fast.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..capture.layout import ROOT

CONTEXT = 70  # characters of context on each side of a match
_CHUNK = re.compile(r"^(\d{12})-(\d{9})$")
_SPACE = re.compile(r"\s+")

# Keys whose values only name a kind; keys a known record's roles already cover.
_KINDS = {"type", "role", "userType", "subtype", "level", "stop_reason", "stop_sequence"}
_SAID = {"message", "toolUseResult", "content", "summary"}



@dataclass(frozen=True)
class Where:
    """What a blob is: the file it belongs to, its session, and its first line number."""

    file: str
    session: str | None
    line: int
    records: bool  # JSONL records, or plain text lines


def place(path: str) -> Where:
    parts = path.split("/")
    if parts[0] == ROOT and len(parts) >= 4 and _CHUNK.match(parts[-1]):
        file = "/".join(parts[:-1])
        return Where(file, parts[1], int(parts[-1][13:]), file.endswith(".jsonl"))
    if parts[0] == ROOT and len(parts) >= 3:
        return Where(path, parts[1], 0, path.endswith(".jsonl"))
    return Where(path, None, 0, path.endswith(".jsonl"))


def snippet(text: str, hit: re.Match[str]) -> tuple[str, tuple[int, int]]:
    """A little of the text either side of the match, on one line."""
    before = _flat(text[max(hit.start() - CONTEXT, 0):hit.start()]).lstrip()
    found = _flat(hit.group(0))
    after = _flat(text[hit.end():hit.end() + CONTEXT]).rstrip()
    before = ("…" if hit.start() > CONTEXT else "") + before
    after += "…" if len(text) > hit.end() + CONTEXT else ""
    return before + found + after, (len(before), len(before) + len(found))


def _flat(text: str) -> str:
    return _SPACE.sub(" ", text)


# --- what a record says, by role -----------------------------------------------------------

def pieces(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, text) for each part of a record; the record's other string values last, as meta,
    so that an id or a path is found too."""
    kind = record.get("type")
    content = record.get("message", {}).get("content") \
        if isinstance(record.get("message"), dict) else None
    if kind == "user":
        yield from _user(record, content)
    elif kind == "assistant":
        yield from _assistant(content)
    elif kind == "system":
        yield "system", str(record.get("content") or "")
    elif kind == "summary":
        yield "summary", str(record.get("summary") or "")
    known = kind in ("user", "assistant", "system", "summary")
    rest = {k: v for k, v in record.items() if not (known and k in _SAID)}
    yield "meta", "\n".join(_strings(rest))


def _user(record: dict[str, Any], content: Any) -> Iterator[tuple[str, str]]:
    role = "summary" if record.get("isCompactSummary") else "user"
    if isinstance(content, str):
        yield role, content
        return
    for part in content if isinstance(content, list) else []:
        if isinstance(part, dict) and part.get("type") == "text":
            yield role, str(part.get("text") or "")
        elif isinstance(part, dict) and part.get("type") == "tool_result":
            yield "tool", "\n".join(_strings(part.get("content")))
    if "toolUseResult" in record:
        yield "tool", "\n".join(_strings(record["toolUseResult"]))


def _assistant(content: Any) -> Iterator[tuple[str, str]]:
    if isinstance(content, str):
        yield "assistant", content
        return
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text":
            yield "assistant", str(part.get("text") or "")
        elif part.get("type") in ("thinking", "redacted_thinking"):
            yield "assistant", str(part.get("thinking") or "")
        elif part.get("type") == "tool_use":
            yield "tool", f"{part.get('name', '?')} " + "\n".join(_strings(part.get("input")))


def _strings(value: Any) -> Iterator[str]:
    """The string values in `value`, leaving out those that only say what kind a thing is (a
    search for "user" would otherwise hit every record)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key not in _KINDS:
                yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)
