"""Putting a session back where Claude Code looks for it, so `claude --resume <id>` works on a
machine where the transcript was deleted (cleanupPeriodDays) or never existed.

A local file is never lost: one that already holds the stored bytes is left as it is, one that
is longer and starts with them is newer than the backup and is never truncated, one that the
stored copy extends is behind (the session went on on another machine) and is brought up to
date, and any other difference needs --force. Files are written through sandbox.write, so a
stored name can never lead outside Claude Code's folder; stored files are compared and written
a chunk at a time, so a restore holds one chunk in memory, not a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..atomic import write_atomic
from ..capture.backup import MAIN, covered, session_folder
from ..errors import CmemError
from ..git import chunks, sandbox
from ..git.lock import state_dir
from ..git.trees import subtree
from ..read.delta import changed_files
from ..repo.store import Store


@dataclass
class Restored:
    session: str
    written: list[Path] = field(default_factory=list)
    caught_up: list[Path] = field(default_factory=list)  # were a prefix of the stored copy
    unchanged: list[Path] = field(default_factory=list)
    newer_locally: list[Path] = field(default_factory=list)


def restore(store: Store, commit: pygit2.Commit, session: str, folder: Path,
            force: bool) -> Restored:
    """Write the session's files under `folder` (Claude Code's folder for the project)."""
    stored = subtree(commit.tree, session_folder(session))
    if stored is None:
        raise CmemError(f"no session {session} in {str(commit.id)[:8]}")
    files = dict(_files(store.repo, stored, ""))
    targets = {name: sandbox.target(folder, _relative(session, name)) for name in files}
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
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            sandbox.write(folder, _relative(session, name), chunks.parts(store.repo, listing))
            (result.caught_up if states[name] == "behind" else result.written).append(targets[name])
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


def _relative(session: str, name: str) -> str:
    return f"{session}.jsonl" if name == MAIN else f"{session}/{name}"


def _state(repo: pygit2.Repository, path: Path, listing: list[chunks.Chunk]) -> str:
    """missing, same, newer (the local file extends the stored one), behind (the stored one
    extends the local file) or different."""
    if not path.exists():
        return "missing"
    stored = chunks.parts(repo, listing)
    with open(path, "rb") as local:
        for part in stored:
            mine = local.read(len(part))
            if mine != part:
                # a local file that stops where the stored one goes on is behind, not different
                return "behind" if part.startswith(mine) and not local.read(1) else "different"
        return "same" if not local.read(1) else "newer"


# --- local copies that fell behind ---------------------------------------------------------

# Sessions a merge changed, in .git/cmem: only they can have fallen behind locally, so
# SessionStart checks these few rather than every transcript of the project.
_INCOMING = "incoming-sessions.json"


@dataclass(frozen=True)
class Behind:
    session: str
    missing: int  # bytes the stored copy has beyond the local file


def note_incoming(store: Store, old: pygit2.Tree | None, new: pygit2.Tree) -> None:
    """Remember the sessions whose stored transcript a merge changed."""
    found = {path.split("/")[1] for path in changed_files(store.repo, old, new)
             if path.endswith("/" + MAIN)}
    if found - set(_load(store)):
        _save(store, sorted(found | set(_load(store))))


def behind(store: Store, folder: Path) -> list[Behind]:
    """Local transcripts shorter than what the memory holds of them (the session went on on
    another machine); sessions caught up, or without a local file, are forgotten."""
    tip = store.tip()
    lagging, candidates = [], _load(store)
    for session in candidates:
        local = folder / f"{session}.jsonl"
        size = local.stat().st_size if local.is_file() else None
        stored = covered(store.repo, tip.tree if tip else None, f"{session_folder(session)}/{MAIN}")
        if size is not None and stored > size:
            lagging.append(Behind(session, stored - size))
    if len(lagging) != len(candidates):
        _save(store, [item.session for item in lagging])
    return lagging


def _load(store: Store) -> list[str]:
    try:
        value = json.loads((state_dir(store.gitdir) / _INCOMING).read_text())
    except (OSError, ValueError):
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _save(store: Store, sessions: list[str]) -> None:
    write_atomic(state_dir(store.gitdir) / _INCOMING, json.dumps(sessions))
