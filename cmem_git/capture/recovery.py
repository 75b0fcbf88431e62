"""SessionStart's catch-up: back up every transcript of the project that changed since its last
backup, because SessionEnd may never have run (killed, timed out, machine slept).

Checking a session means reading the tail of its transcript, so a stat cache in .git/cmem
remembers (size, mtime) of transcripts stored in full, as git's index does for working files.
The cache only ever skips work: losing it or finding it wrong costs a re-check, never a backup.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

from ..atomic import write_atomic
from ..errors import CmemError
from ..git.lock import state_dir
from ..repo.store import Store
from . import backup, checkpoint

BUDGET = 10.0  # seconds; what is left waits for the next SessionStart
_CACHE = "seen.json"


def recover(store: Store, request: checkpoint.Request, folder: Path) -> list[str]:
    """Commit the memory files, then each changed session; returns the problems met."""
    problems = checkpoint.take(store, dataclasses.replace(request, session_id=None)).problems
    seen = _load(store.gitdir)
    deadline = time.monotonic() + BUDGET
    pending = [folder / f"{sid}.jsonl" for sid, stamp in _transcripts(folder)
               if seen.get(sid) != stamp]
    for index, transcript in enumerate(pending):
        if time.monotonic() > deadline:
            problems.append(f"{len(pending) - index} changed transcripts not backed up yet "
                            "(time budget spent); the next SessionStart continues")
            break
        stamp = _stamp(transcript)
        try:
            result = checkpoint.take(store, dataclasses.replace(
                request, session_id=transcript.stem, transcript=transcript,
                deadline=min(deadline, request.deadline or deadline)))
        except (CmemError, OSError) as error:
            problems.append(f"backup of {transcript.name} failed: {error}")
            continue
        problems += result.problems
        if stamp and _stored_size(store, transcript.stem) == stamp[0]:
            seen[transcript.stem] = stamp
    _save(store.gitdir, seen)
    return problems


def remember(store: Store, folder: Path) -> bool:
    """Stamp every transcript in `folder` whose stored copy covers it (after `cmem import`, or
    a hook's commit), so that the next SessionStart finds nothing to check instead of reading
    them all. True when that is every one: SessionStart would find nothing to back up."""
    seen = _load(store.gitdir)
    found = _transcripts(folder)
    stamped = {s: stamp for s, stamp in found if seen.get(s) != stamp
               and _stored_size(store, s) == stamp[0]}
    if stamped:
        _save(store.gitdir, {**seen, **stamped})
    return all({**seen, **stamped}.get(s) == stamp for s, stamp in found)


def _transcripts(folder: Path) -> list[tuple[str, list[int]]]:
    """(session id, stamp) of each transcript: one directory read and one stat per file, the
    cost SessionStart pays per session when there is nothing to do."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    found = []
    for item in entries:
        if not item.name.endswith(".jsonl") or not item.is_file():
            continue
        try:
            session = backup.check_session_id(item.name[:-len(".jsonl")])
            info = item.stat()
        except (CmemError, OSError):
            continue
        found.append((session, [info.st_size, info.st_mtime_ns]))
    return sorted(found)


def _stamp(path: Path) -> list[int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


def _stored_size(store: Store, session_id: str) -> int:
    """How much of the file the stored copy covers (its own size differs when redacted)."""
    tip = store.tip()
    return backup.covered(store.repo, tip.tree if tip else None,
                          f"{backup.session_folder(session_id)}/{backup.MAIN}")


def _load(gitdir: Path) -> dict[str, list[int]]:
    try:
        value = json.loads((state_dir(gitdir, create=False) / _CACHE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _save(gitdir: Path, seen: dict[str, list[int]]) -> None:
    write_atomic(state_dir(gitdir) / _CACHE, json.dumps(seen, sort_keys=True))
