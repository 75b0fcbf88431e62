"""claude-memory folders: the raw/ backups, their markers, session documents and the rest.

claude-memory (the bash system cmem replaces) kept `cp` copies of transcripts in raw/, named by
time and reason (`20260115_143000Z_prompt_input_exit.jsonl`), one marker file per kind of backup
holding the path of the newest (`.pending-backup-exit`, `.pending-backup-compact`; older
versions `.last-exit-backup` ...) and session documents in sessions/. A backup belongs to the
session its records name (`sessionId` of the last record that has one: a resumed file starts
with older sessions' records); importer.py places it there.

Everything else is kept as it is. In another folder, documents go to sessions/ (one already
stored under any name is not added again; a different one with a taken name gets `-imported`)
and every other file (memory files, markers, logs, backups without a session id) to
imported/claude-memory/<its path>, where a later import replaces it and history keeps the
earlier version. The folder `cmem init` adopted (.claude/memory itself) was committed by init
(adoption.py), all but raw/ and the pending markers: there documents and other markers written
since are committed where they are, and backups without a session id and the pending markers'
text under imported/claude-memory/, because raw/ and the markers stay out of the working tree
that cmem keeps in step (raw/ is ignored there, the markers are removed once imported).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pygit2

from ..errors import CmemError
from ..git.trees import subtree
from ..repo.store import Store
from . import backup

LEGACY = "imported/claude-memory"
RAW = "raw"
SESSIONS = "sessions"
PENDING = ".pending-backup-*"  # claude-memory's "not yet documented" markers


@dataclass(frozen=True)
class Backup:
    """One claude-memory copy of a transcript, and the session its records name."""

    path: Path
    session: str | None
    sidechain: bool  # a subagent's records: never a session's main transcript
    mtime: float


def default_folder(memory: Path) -> Path | None:
    """The folder `cmem init` adopted, when claude-memory left backups in it."""
    return memory if (memory / RAW).is_dir() else None


def valid_session(session_id: str) -> bool:
    try:
        backup.check_session_id(session_id)
    except CmemError:
        return False
    return True


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def backups(folder: Path, problems: list[str]) -> list[Backup]:
    """Every backup in the folder's raw/ (or in the folder, given raw/ itself), and those its
    markers name."""
    if not folder.is_dir():
        problems.append(f"{folder} is not a folder: no claude-memory backups imported")
        return []
    raw = folder / RAW
    found = raw.rglob("*.jsonl") if raw.is_dir() else folder.glob("*.jsonl")
    paths = {path.resolve() for path in found if _regular(path)}
    paths |= set(marked(folder, problems))
    return [_backup(p) for p in sorted(paths) if p.is_file()]


def markers(folder: Path, pattern: str = ".*backup*") -> list[Path]:
    return [path for path in sorted(folder.glob(pattern))
            if _regular(path) and path.name != ".backup-log"]


def marked(folder: Path, problems: list[str], pattern: str = ".*backup*") -> Iterable[Path]:
    """Backups that claude-memory's marker files name (they hold the backup's path)."""
    for marker in markers(folder, pattern):
        named = marker.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if not named or not named[0].strip().endswith(".jsonl"):
            continue
        target = _resolve_marked(folder, Path(named[0].strip()))
        if target is None:
            problems.append(f"{marker} names {named[0].strip()}, which is gone")
            continue
        yield target.resolve()


def _resolve_marked(folder: Path, named: Path) -> Path | None:
    """The path as written, or the same file name in raw/ (the folder may have moved)."""
    for candidate in (named if named.is_absolute() else folder / named, folder / RAW / named.name):
        if candidate.is_file():
            return candidate
    return None


def _backup(path: Path) -> Backup:
    session, sidechain = owner(path.read_bytes())
    return Backup(path.resolve(), session, sidechain, mtime(path))


def owner(data: bytes) -> tuple[str | None, bool]:
    """The session of the last record naming one, and whether that record is a subagent's."""
    for line in reversed(data.splitlines()):
        if b'"sessionId"' not in line:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        sid = record.get("sessionId") if isinstance(record, dict) else None
        if isinstance(sid, str) and valid_session(sid):
            return sid, record.get("isSidechain") is True
    return None, False


# --- documents and other files -------------------------------------------------------------

def files(store: Store, folder: Path, found: list[Backup]) -> dict[str, bytes]:
    """The documents and other files of `folder` that the tip does not hold yet, by the path
    each is committed at; backups with a session are left to importer.py."""
    tip = store.tip()
    base = tip.tree if tip else None
    placed = {b.path for b in found if b.session is not None}
    loose = [b.path for b in found if b.session is None]
    if folder.resolve() == store.workdir.resolve():
        wanted = _adopted_files(folder, loose)
    else:
        wanted = _foreign_files(folder, base, placed, loose)
    return {path: data for path, data in wanted.items() if not _stored(store, base, path, data)}


def _stored(store: Store, base: pygit2.Tree | None, path: str, data: bytes) -> bool:
    blob = store.blob_at(base, path)
    return blob is not None and blob.id == pygit2.hash(data)


def _adopted_files(folder: Path, loose: list[Path]) -> dict[str, bytes]:
    """In the adopted folder: documents and markers written since `cmem init` where they are;
    backups no session claims and pending markers under imported/claude-memory/."""
    paths = list((folder / SESSIONS).rglob("*.md")) + list(folder.glob("session-*.md"))
    paths += [path for path in markers(folder) if not path.match(PENDING)]
    kept = {_place(p, folder, ""): p.read_bytes() for p in paths if _regular(p)}
    aside = loose + markers(folder, PENDING)
    return kept | {_place(p, folder, LEGACY + "/"): p.read_bytes() for p in aside if _regular(p)}


def _foreign_files(folder: Path, base: pygit2.Tree | None, placed: set[Path],
                   loose: list[Path]) -> dict[str, bytes]:
    """Another claude-memory folder: documents into sessions/, everything else but the backups
    placed with their sessions into imported/claude-memory/."""
    present = _blob_ids(subtree(base, SESSIONS))
    taken = _names(subtree(base, SESSIONS))
    files: dict[str, bytes] = {}
    for path in _walk(folder) + [p for p in loose if not _inside(p, folder)]:
        if path.resolve() in placed:
            continue
        data = path.read_bytes()
        if not _is_document(_place(path, folder, "")):
            files[_place(path, folder, LEGACY + "/")] = data
        elif pygit2.hash(data) not in present:
            present.add(pygit2.hash(data))
            files[f"{SESSIONS}/{_document_name(taken, path.name)}"] = data
    return files


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        found += [Path(root) / n for n in sorted(names) if _regular(Path(root) / n)]
    return found


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _place(path: Path, folder: Path, prefix: str) -> str:
    """Its path in the folder behind `prefix`; a file from outside goes to imported/."""
    if _inside(path, folder):
        return prefix + path.resolve().relative_to(folder.resolve()).as_posix()
    return f"{LEGACY}/{path.name}"


def _is_document(relative: str) -> bool:
    """claude-memory kept documents in sessions/, older versions at the top as session-*.md."""
    return relative.endswith(".md") and (relative.startswith(f"{SESSIONS}/")
                                         or relative.startswith("session-"))


def _document_name(taken: set[str], name: str) -> str:
    stem, candidate, number = name.removesuffix(".md"), name, 1
    while candidate in taken:
        candidate = f"{stem}-imported{'' if number == 1 else f'-{number}'}.md"
        number += 1
    taken.add(candidate)
    return candidate


def _names(tree: pygit2.Tree | None) -> set[str]:
    return {entry.name or "" for entry in tree} if tree is not None else set()


def _blob_ids(tree: pygit2.Tree | None) -> set[pygit2.Oid]:
    return {entry.id for entry in tree if entry.type_str == "blob"} if tree is not None else set()
