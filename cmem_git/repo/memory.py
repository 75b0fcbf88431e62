"""The human memory files: active-context.md and project-memory.md.

They keep claude-memory's names and places so `@.claude/memory/active-context.md` imports keep
working. Claude and the user edit them in place; every commit takes in their current content.
cmem itself keeps three header lines (the last exit, the last session document and when that was
saved) and staleness ignores them: cmem touching the file does not make its content fresher.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pygit2

from .. import paths

ACTIVE = "active-context.md"
PROJECT = "project-memory.md"
FILES = (ACTIVE, PROJECT)
END = "Last Session End"
DOC = "Last Session Doc"
UPDATED = "Last Updated"
_MANAGED = re.compile(rf"^> (?:{END}|{DOC}|{UPDATED}):.*\n?", re.MULTILINE)


def template(name: str) -> bytes:
    return (paths.templates() / name).read_bytes()


def initial(name: str) -> bytes | None:
    """What `cmem init` wrote at `name` on every machine (None: nothing)."""
    return template(name) if name in FILES else None


AUTO = "auto-memory"  # Claude Code's own per-project memory, kept beside the human files


def merged_paths(*trees: pygit2.Tree) -> list[str]:
    """The files a sync merges as text: the human files and Claude Code's auto-memory."""
    found = set(FILES)
    for tree in trees:
        folder = tree[AUTO] if AUTO in tree else None
        if isinstance(folder, pygit2.Tree):
            found |= {f"{AUTO}/{e.name}" for e in folder if e.type_str == "blob"}
    return sorted(found)


def record_exit(text: bytes, when: dt.datetime, session_id: str, reason: str) -> bytes:
    return set_line(text, END, f"{when:%Y-%m-%d %H:%M} UTC · {reason} · session {session_id}")


def set_line(text: bytes, label: str, value: str) -> bytes:
    """`text` with its `> label: value` line set: replaced where it was, else added after the
    header's other `>` lines (an empty file starts from the template)."""
    line = f"> {label}: {value}\n"
    body = text.decode("utf-8", "surrogateescape") or template(ACTIVE).decode()
    pattern = re.compile(rf"^> {re.escape(label)}:.*\n?", re.MULTILINE)
    if pattern.search(body):
        body = pattern.sub(lambda _: line, body, count=1)
    else:
        body = _insert_after_header(body, line)
    return body.encode("utf-8", "surrogateescape")


def _insert_after_header(body: str, line: str) -> str:
    lines = body.splitlines(keepends=True)
    at = 0
    for index, current in enumerate(lines):
        if current.startswith("> "):
            at = index + 1
        elif at or (current.strip() and not current.startswith("#")):
            break
    if at == 0:
        at = 1 if lines and lines[0].startswith("#") else 0
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join(lines[:at] + [line] + lines[at:])


MANAGED = (END, DOC, UPDATED)


def keep_managed(edited: bytes, synced: bytes | None, tip: bytes) -> bytes:
    """An edit made on a copy older than the tip keeps the tip's cmem lines where the edit left
    them as they were: otherwise committing the edit would silently undo, say, the pointer a
    `cmem doc save` set meanwhile."""
    for label in MANAGED:
        mine, before, newest = (value(text, label) for text in (edited, synced, tip))
        if mine == before and newest is not None and newest != before:
            edited = set_line(edited, label, newest)
    return edited


def value(text: bytes | None, label: str) -> str | None:
    if text is None:
        return None
    match = re.search(rf"^> {re.escape(label)}: (.*)$",
                      text.decode("utf-8", "surrogateescape"), re.MULTILINE)
    return match[1] if match else None


def without_managed(text: bytes) -> bytes:
    """The content that staleness is about: the file without the lines cmem itself keeps."""
    return _MANAGED.sub("", text.decode("utf-8", "surrogateescape")).encode(
        "utf-8", "surrogateescape")


def read(workdir: Path, name: str) -> bytes | None:
    try:
        return (workdir / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


# --- merging the lines cmem keeps -------------------------------------------------------------

_EMPTY = (None, "none", "never")
_MASK = "(kept by cmem)"


def masked(text: bytes) -> bytes:
    """`text` with the value of each cmem line replaced by the same placeholder, so that a text
    merge keeps the lines where they are and only their meaning is left to `merged_value`."""
    body = text.decode("utf-8", "surrogateescape")
    body = re.sub(rf"^> ({END}|{DOC}|{UPDATED}):.*$", lambda m: f"> {m[1]}: {_MASK}", body,
                  flags=re.MULTILINE)
    return body.encode("utf-8", "surrogateescape")


def merged_value(old: str | None, one: str | None, two: str | None) -> str | None:
    """Three-way by meaning: the side that changed the value wins; when both did, the newest
    (every value starts with a UTC time or a document name that sorts by time), and `none` or
    `never` never wins over a real value."""
    if one == two or two == old:
        return one if one not in _EMPTY or two in _EMPTY else two
    if one == old:
        return two if two not in _EMPTY or one in _EMPTY else one
    real = [v for v in (one, two) if v not in _EMPTY]
    return max(real) if real else one or two


def unmasked(body: bytes, values: dict[str, str | None]) -> bytes:
    """Put the merged values back on the placeholder lines (one line per label, the first
    where a merge left two); a value with no line is added to the header."""
    text = body.decode("utf-8", "surrogateescape")
    for label, value in values.items():
        seen = [False]

        def fill(match: re.Match[str], value: str | None = value) -> str:
            if seen[0] or value is None:
                return ""
            seen[0] = True
            return f"> {label}: {value}\n"

        text = re.sub(rf"^> {re.escape(label)}: {re.escape(_MASK)}\n?", fill, text,
                      flags=re.MULTILINE)
        if value is not None and not seen[0]:
            text = set_line(text.encode("utf-8", "surrogateescape"), label,
                            value).decode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")
