"""The human memory files: active-context.md and project-memory.md.

They keep claude-memory's names and places so `@.claude/memory/active-context.md` imports keep
working. Claude and the user edit them in place; every commit takes in their current content.
cmem itself writes one line, the record of the last session exit, and staleness ignores that
line: a SessionEnd touching the file does not make its content any fresher.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from pathlib import Path

ACTIVE = "active-context.md"
PROJECT = "project-memory.md"
FILES = (ACTIVE, PROJECT)
_EXIT = "> Last Session End:"
_EXIT_LINE = re.compile(r"^> Last Session End:.*\n?", re.MULTILINE)


def template(name: str) -> bytes:
    return (resources.files("cmem_git.templates") / name).read_bytes()


def record_exit(text: bytes, when: dt.datetime, session_id: str, reason: str) -> bytes:
    """`text` with its exit line set: replaced where it was, else after the header's `>` lines."""
    line = f"{_EXIT} {when:%Y-%m-%d %H:%M} UTC · {reason} · session {session_id}\n"
    body = text.decode("utf-8", "surrogateescape") or template(ACTIVE).decode()
    if _EXIT_LINE.search(body):
        body = _EXIT_LINE.sub(lambda _: line, body, count=1)
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


def without_exit(text: bytes) -> bytes:
    """The content that staleness is about: the file without cmem's own exit line."""
    return _EXIT_LINE.sub("", text.decode("utf-8", "surrogateescape")).encode(
        "utf-8", "surrogateescape")


def read(workdir: Path, name: str) -> bytes | None:
    try:
        return (workdir / name).read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
