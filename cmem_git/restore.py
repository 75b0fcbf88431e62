"""Putting a session back where Claude Code looks for it, so `claude --resume <id>` works on a
machine where the transcript was deleted (cleanupPeriodDays) or never existed.

A local file is never lost: one that already holds the stored bytes is left as it is, one that
is longer and starts with them is newer than the backup and is never truncated, and any other
difference needs --force. Files are written through a temp file and renamed. Stored files are
compared and written a chunk at a time, so a restore holds one chunk in memory, not a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pygit2

from . import chunks
from .backup import MAIN, session_folder
from .errors import CmemError
from .store import Store, subtree


@dataclass
class Restored:
    session: str
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    newer_locally: list[Path] = field(default_factory=list)


def restore(store: Store, commit: pygit2.Commit, session: str, folder: Path,
            force: bool) -> Restored:
    """Write the session's files under `folder` (Claude Code's folder for the project)."""
    stored = subtree(commit.tree, session_folder(session))
    if stored is None:
        raise CmemError(f"no session {session} in {str(commit.id)[:8]}")
    files = dict(_files(store.repo, stored, ""))
    targets = {name: _target(folder, session, name) for name in files}
    states = {name: _state(store.repo, targets[name], listing) for name, listing in files.items()}
    refused = [str(targets[n]) for n, state in states.items() if state == "different"]
    if refused and not force:
        raise CmemError(f"different files exist: {', '.join(refused)}",
                        hint="move them away, or use --force to replace them")
    result = Restored(session)
    for name, listing in files.items():
        if states[name] == "same":
            result.unchanged.append(targets[name])
        elif states[name] == "newer":
            result.newer_locally.append(targets[name])
        else:
            _write(targets[name], chunks.parts(store.repo, listing))
            result.written.append(targets[name])
    return result


def _files(repo: pygit2.Repository, tree: pygit2.Tree,
           prefix: str) -> list[tuple[str, list[chunks.Chunk]]]:
    """(relative name, chunks) for each stored file: a folder whose entries are chunks."""
    found = []
    for entry in tree:
        if not isinstance(entry, pygit2.Tree):
            continue
        name = f"{prefix}{entry.name}"
        listing = chunks.listing(repo, entry)
        if listing:
            found.append((name, listing))
        else:
            found += _files(repo, entry, name + "/")
    return found


def _target(folder: Path, session: str, name: str) -> Path:
    if name == MAIN:
        return folder / f"{session}.jsonl"
    return folder / session / name


def _state(repo: pygit2.Repository, path: Path, listing: list[chunks.Chunk]) -> str:
    """missing, same, newer (the local file extends the stored one) or different."""
    if not path.exists():
        return "missing"
    size = chunks.stored_size(repo, listing)[0]
    with open(path, "rb") as local:
        if os.fstat(local.fileno()).st_size < size:
            return "different"
        for part in chunks.parts(repo, listing):
            if local.read(len(part)) != part:
                return "different"
        return "same" if not local.read(1) else "newer"


def _write(path: Path, parts: Iterator[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.cmem-{os.getpid()}")
    with open(temp, "wb", opener=lambda p, f: os.open(p, f, 0o600)) as handle:
        for part in parts:
            handle.write(part)
    os.replace(temp, path)


