"""What happened in a stretch of history, arranged for Claude to pick the work up again.

`cmem resume` (what /resume-latest runs) and `cmem delta` read the records added since the
last session document. Raw records bury the conversation under tool output, so here the user's
requests and Claude's answers come first: a tool call is one line (with how its result went),
a subagent one line (what it was asked, what it answered), output Claude Code spilled to
`tool-results/*.txt` a note on the call that produced it, and compactions are marked. When the
text does not fit its budget the newest is kept, and words before tool calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..repo.history import plural
from . import render
from .delta import ATTACHMENT, FileDelta

TOOL = "tool"
_NOTE_RESERVE = 240  # room for the "left out" line
_MIN_ENTRY = 300  # a cut message keeps at least this many characters


@dataclass
class _Line:
    kind: str  # render.SAID, TOOL or render.MARK
    text: str
    group: int


@dataclass
class Conversation:
    headers: list[str] = field(default_factory=list)  # one per session
    lines: list[_Line] = field(default_factory=list)


def build(deltas: list[FileDelta], thinking: bool = False) -> Conversation:
    """The conversation of `deltas` (from delta.chronological), grouped by session."""
    found = Conversation()
    sessions: dict[str, list[FileDelta]] = {}
    for item in deltas:
        sessions.setdefault(item.session, []).append(item)
    for session, items in sessions.items():
        found.headers.append(_header(session, items))
        before = len(found.lines)
        _session_lines(found, len(found.headers) - 1, items, thinking)
        if len(found.lines) == before:
            found.lines.append(_Line(render.MARK, "[only bookkeeping records]",
                                     len(found.headers) - 1))
    return found


def _header(session: str, items: list[FileDelta]) -> str:
    records = sum(len(item.records) for item in items)
    rewritten = [item.file for item in items if item.rewritten]
    note = f" ({', '.join(rewritten)} rewritten: its whole new version)" if rewritten else ""
    return f"## Session {session}: {plural(records, 'record')} added{note}"


def _session_lines(found: Conversation, group: int, items: list[FileDelta],
                   thinking: bool) -> None:
    attachments = {item.tool_id: item for item in items if item.kind == ATTACHMENT}
    used: set[str] = set()
    for item in items:
        if item.kind == ATTACHMENT:
            continue
        if item.file.startswith("subagents/"):
            found.lines.append(_Line(render.MARK, _subagent(item), group))
        else:
            used |= _transcript_lines(found, group, item, attachments, thinking)
    for tool_id, item in attachments.items():
        if tool_id not in used:
            found.lines.append(_Line(render.MARK, f"- attachment {item.attachment_note()}",
                                     group))


def _transcript_lines(found: Conversation, group: int, item: FileDelta,
                      attachments: dict[str, FileDelta], thinking: bool) -> set[str]:
    """Append the records of one transcript; the ids of the attachments it named."""
    calls: dict[str, _Line] = {}
    used: set[str] = set()
    for record in item.records:
        for piece in render.pieces(record, thinking):
            if piece.kind == render.TOOL_USE:
                calls[piece.tool_id] = _Line(TOOL, piece.text, group)
                found.lines.append(calls[piece.tool_id])
            elif piece.kind == render.TOOL_RESULT:
                spilled = attachments.get(piece.tool_id)
                used |= {piece.tool_id} if spilled else set()
                brief = _brief(piece, spilled)
                call = calls.get(piece.tool_id)
                if call is not None:
                    call.text += " " + brief
                    # A spilled output is worth its line even where tool calls are cut.
                    call.kind = render.MARK if spilled else call.kind
                else:
                    found.lines.append(_Line(render.MARK if spilled else TOOL, brief, group))
            else:
                kind = render.SAID if piece.kind == render.THINKING else piece.kind
                found.lines.append(_Line(kind, piece.text, group))
    return used


def _brief(piece: render.Piece, spilled: FileDelta | None) -> str:
    """How a tool call went, in a few words."""
    if spilled is not None:
        return f"↳ output in {spilled.attachment_note()}"
    text = piece.text.strip().removeprefix("↳ ")
    return "↳ " + render.short(text, 100)


def _subagent(item: FileDelta) -> str:
    name = item.file.removeprefix("subagents/").removesuffix(".jsonl")
    count = plural(len(item.records), "record")
    if "acompact" in name:  # Claude Code runs a compaction as a forked agent of its own
        return f"- compaction run {name} (+{count})"
    said = [p for r in item.records for p in render.pieces(r) if p.kind == render.SAID]
    tools = sum(1 for r in item.records for p in render.pieces(r) if p.kind == render.TOOL_USE)
    asked = next((p.text for p in said if p.text.startswith("**User:**")), "")
    answered = next((p.text for p in reversed(said) if p.text.startswith("**Claude:**")), "")
    parts = [f"- subagent {name} (+{count}, {plural(tools, 'tool call')})"]
    if asked:
        parts.append(f"asked: {render.short(asked.removeprefix('**User:** '), 200)}")
    if answered:
        parts.append(f"answered: {render.short(answered.removeprefix('**Claude:** '), 300)}")
    return "; ".join(parts)


def as_text(found: Conversation, max_chars: int, command: str) -> str:
    """The conversation within `max_chars` (0: no limit), newest kept, words before tool
    calls. `command` is what to run for everything (e.g. `cmem delta --max-chars 0`)."""
    if not found.lines and not found.headers:
        return ""
    lines = found.lines
    if max_chars:
        # One long answer must not take the whole budget (nor can it exceed it).
        cap = max(60, min(max(_MIN_ENTRY, max_chars // 8), (max_chars - _NOTE_RESERVE) // 2))
        lines = [_Line(x.kind, _cut(x.text, cap), x.group) for x in lines]
    keep = _choose(found.headers, lines, max_chars) if max_chars else set(range(len(lines)))
    note = _left_out(lines, keep, max_chars, command)
    return _join(found.headers, lines, keep, note)


def _cut(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return text[:cap].rstrip() + f" … (+{len(text) - cap:,} characters)"


def _choose(headers: list[str], lines: list[_Line], budget: int) -> set[int]:
    """Which lines to keep: the newest words and markers first, then the tool calls among
    them, newest first, while they fit."""
    if _size(headers, lines, set(range(len(lines)))) <= budget:
        return set(range(len(lines)))
    keep: set[int] = set()
    groups: set[int] = set()
    room = budget - _NOTE_RESERVE
    for tools in (False, True):
        oldest = min(keep) if keep else 0
        for index in range(len(lines) - 1, oldest - 1, -1):
            line = lines[index]
            if (line.kind == TOOL) != tools:
                continue
            cost = len(line.text) + 2 + (len(headers[line.group]) + 2
                                         if line.group not in groups else 0)
            if cost > room:
                if line.kind != TOOL:
                    break
                continue
            keep.add(index)
            groups.add(line.group)
            room -= cost
    return keep


def _size(headers: list[str], lines: list[_Line], keep: set[int]) -> int:
    groups = {lines[i].group for i in keep}
    return sum(len(lines[i].text) + 2 for i in keep) + sum(len(headers[g]) + 2 for g in groups)


def _left_out(lines: list[_Line], keep: set[int], max_chars: int, command: str) -> str:
    dropped = [x for i, x in enumerate(lines) if i not in keep]
    if not dropped:
        return ""
    tools = sum(1 for x in dropped if x.kind == TOOL)
    parts = [plural(count, word) for count, word in
             ((len(dropped) - tools, "earlier message"), (tools, "tool call")) if count]
    return (f"… left out to fit {max_chars:,} characters: {' and '.join(parts)}; "
            f"`{command}` shows everything.")


def _join(headers: list[str], lines: list[_Line], keep: set[int], note: str) -> str:
    out: list[str] = [note] if note else []
    group = -1
    previous = ""
    for index, line in enumerate(lines):
        if index not in keep:
            continue
        if line.group != group:
            group = line.group
            out.append(("\n" if out else "") + headers[group])
            previous = ""
        together = line.kind == TOOL and previous == TOOL
        out.append(("" if together else "\n") + line.text)
        previous = line.kind
    return "\n".join(out).lstrip("\n") + "\n"
