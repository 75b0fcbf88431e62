"""Backing up a session: which files Claude Code keeps for it, and what changed in each.

Claude Code keeps a session as `<id>.jsonl` plus `<id>/subagents/*.jsonl` and
`<id>/tool-results/*` beside it. Each is stored under `transcripts/<id>/` as chunk files
(chunks.py). A transcript normally only grows, so the usual backup reads the file from the start
of its last stored chunk: the cost follows the bytes appended, not the size of the file.

Claude Code writes the transcript asynchronously, so its last line may still be half written: only
whole lines are committed and the rest waits for the next hook. A final line without a newline is
taken when it is already a complete JSON object (some files simply end that way).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pygit2

from . import chunks
from .errors import HookInputError
from .store import subtree

ROOT = "transcripts"
MAIN = "main.jsonl"
_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_HEAD_CHECK = 4096


@dataclass(frozen=True)
class Source:
    """One file Claude Code keeps for a session and the folder its chunks go to."""

    path: Path
    stored: str  # e.g. transcripts/<id>/main.jsonl

    @property
    def jsonl(self) -> bool:
        return self.path.suffix == ".jsonl"


@dataclass(frozen=True)
class FileBackup:
    """The new chunks of one file, and its size before and after, in bytes and lines."""

    source: Source
    changes: dict[str, pygit2.Oid | None]
    before: tuple[int, int]
    after: tuple[int, int]
    rewritten: bool


def check_session_id(session_id: object) -> str:
    """Session ids become folder names: anything path-like is refused, not sanitised."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id) or ".." in session_id:
        raise HookInputError(f"unusable session_id {session_id!r}: expected letters, digits, "
                             "'-', '_' or '.', not a path")
    return session_id


def session_folder(session_id: str) -> str:
    return f"{ROOT}/{session_id}"


def sources(session_id: str, transcript: Path) -> list[Source]:
    """The main transcript first, then subagents and tool results in name order."""
    found = [Source(transcript, f"{session_folder(session_id)}/{MAIN}")]
    extra = transcript.parent / session_id
    for kind in ("subagents", "tool-results"):
        folder = extra / kind
        if folder.is_dir() and not folder.is_symlink():
            found += [Source(p, f"{session_folder(session_id)}/{p.relative_to(extra).as_posix()}")
                      for p in sorted(folder.rglob("*"))
                      if _regular(p) and not any(map(_refused, p.relative_to(extra).parts))]
    return found


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _refused(name: str) -> bool:
    """Names git will not store in a tree (it guards against `.git` in every spelling)."""
    return name.lower().rstrip(". ") == ".git" or name.lower() == "git~1"


def back_up(repo: pygit2.Repository, base: pygit2.Tree | None, source: Source) -> FileBackup | None:
    """The changes that bring the stored copy of `source` up to the file; None when there are
    none, or when the file on disk is only an older read of what is stored."""
    stored = chunks.listing(repo, subtree(base, source.stored))
    with open(source.path, "rb") as handle:
        grown = _grown(repo, handle, stored)
        start = stored[-1].offset if grown else 0
        handle.seek(start)
        data = handle.read()
    if source.jsonl:
        data = whole_lines(data)
    before = chunks.stored_size(repo, stored)
    end = start + len(data)
    if grown and end <= before[0]:
        return None  # nothing new, or an older read of what another hook committed
    if not grown and stored and chunks.read_range(repo, stored, 0, end) == data:
        return None  # the file is an older read of what is stored
    pieces = chunks.cut(data, start, stored[-1].line if grown else 0)
    changes: dict[str, pygit2.Oid | None] = {
        f"{source.stored}/{c.name}": None for c in stored if c.offset >= start}
    for piece in pieces:
        changes[f"{source.stored}/{piece.name}"] = repo.create_blob(piece.data)
    if not changes:
        return None
    after = (end, pieces[-1].line + chunks.count_lines(pieces[-1].data)) if pieces else (0, 0)
    return FileBackup(source, changes, before, after, rewritten=not grown and bool(stored))


def _grown(repo: pygit2.Repository, handle: BinaryIO, stored: list[chunks.Chunk]) -> bool:
    """Whether the file still holds what is stored, so only its tail needs cutting again. The
    last chunk is compared in full; a rewritten transcript almost always also differs in its
    first records, which are cheap to compare as well."""
    if not stored:
        return False
    last = stored[-1]
    old = chunks.blob_data(repo, last.oid)
    if os.fstat(handle.fileno()).st_size < last.offset + len(old):
        return False
    head = chunks.blob_data(repo, stored[0].oid)[:_HEAD_CHECK]
    handle.seek(0)
    if handle.read(len(head)) != head:
        return False
    handle.seek(last.offset)
    return handle.read(len(old)) == old


def whole_lines(data: bytes) -> bytes:
    """`data` up to its last newline, plus a final unterminated line if it is a whole record."""
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    return data if tail and _is_record(tail) else data[:end]


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False
