"""What SessionStart asks of history, remembered from one call to the next, keyed by the tip.

"Backups since the last session document" and "when did active-context.md last change" each
walk history, up to thousands of commits, and SessionStart asks both every time: its cost grew
with history (331 ms at 10,000 commits). The answers are kept in `.git/cmem/recent/` with the
tip they were computed at, one small file per question. The next call walks only the commits that tip does not have
(libgit2's walk with the old tip hidden) and combines them with what was kept, so the cost
follows the commits made since, not the length of history. Anything unexpected (no file, a
rewritten branch, too many new commits) falls back to the full walk; the file only ever saves
work and is rewritten atomically.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pygit2

from ..atomic import write_atomic
from ..git.lock import state_dir
from .history import BOUNDARIES, ORDER, Entry, entry

_FOLDER = "recent"
_MAX_NEW = 500  # more new commits than this: a full walk is as cheap

Content = Callable[[pygit2.Tree, str], "bytes | None"]


def since_document(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int,
                   full: Callable[[], tuple[Entry | None, list[Entry]]]
                   ) -> tuple[Entry | None, list[Entry]]:
    """history.since_document, from the kept answer plus the commits made since."""
    key = f"since-{limit}"
    kept = _load(repo, key)
    new = _new_commits(repo, tip, kept.get("tip") if isinstance(kept, dict) else None)
    found = _combined(new, kept, limit) if new is not None and isinstance(kept, dict) else None
    if found is None:
        found = full()
    if tip is not None:
        _save(repo, key, {"tip": str(tip), "boundary": _json(found[0]) if found[0] else None,
                              "after": [_json(e) for e in found[1]]})
    return found


def _combined(new: list[Entry], kept: dict[str, Any], limit: int
              ) -> tuple[Entry | None, list[Entry]] | None:
    boundary = next((i for i, item in enumerate(new) if item.event in BOUNDARIES), None)
    if boundary is not None:
        return new[boundary], new[:boundary]
    try:
        old = _entry(kept["boundary"]) if kept.get("boundary") else None
        return old, (new + [_entry(e) for e in kept["after"]])[:limit]
    except (KeyError, TypeError, ValueError, IndexError):
        return None  # a damaged file: walk again


def content_change(repo: pygit2.Repository, tip: pygit2.Oid | None, name: str,
                   content: Content, full: Callable[[], float | None]) -> float | None:
    """Commit time of the newest change to `name`'s content (as `content` reads it), from the
    kept answer plus the commits made since."""
    key = "changed-" + "".join(c if c.isalnum() else "-" for c in name)
    kept = _load(repo, key)
    new = _new_commits(repo, tip, kept.get("tip") if isinstance(kept, dict) else None)
    changed = full() if new is None or not isinstance(kept, dict) else \
        _changed_since(repo, new, name, content, kept)
    if tip is not None and new != []:
        commit = repo[tip]
        assert isinstance(commit, pygit2.Commit)
        _save(repo, key, {"tip": str(tip), "time": changed,
                          "digest": _digest(content(commit.tree, name))})
    return changed


def same_content(repo: pygit2.Repository, items: Iterable[Entry], name: str, content: Content
                 ) -> tuple[bool, tuple[bytes, float] | None]:
    """Walk commits newest first while `name`'s content stays the same: (whether the commits
    ran out first, (that content, time of the oldest commit with it) or None once absent)."""
    newer: tuple[bytes, float] | None = None
    for item in items:
        commit = repo[item.id]
        assert isinstance(commit, pygit2.Commit)
        found = content(commit.tree, name)
        if newer is not None and found != newer[0]:
            return False, newer
        newer = (found, item.time) if found is not None else None
        if newer is None:
            return False, None
    return True, newer


def _changed_since(repo: pygit2.Repository, new: list[Entry], name: str, content: Content,
                   kept: dict[str, Any]) -> float | None:
    """The new commits, then the kept answer if the content is still the same at the kept tip."""
    ran_out, newer = same_content(repo, new, name, content)
    if ran_out and (newer is None or _digest(newer[0]) == kept.get("digest")):
        time = kept.get("time")
        return float(time) if isinstance(time, (int, float)) else None
    return newer[1] if newer else None


def _new_commits(repo: pygit2.Repository, tip: pygit2.Oid | None,
                 old: object) -> list[Entry] | None:
    """Commits `tip` has and the kept tip has not, newest first; None when the kept tip is
    unusable (absent, not an ancestor) or too far behind."""
    if tip is None or not isinstance(old, str):
        return None
    try:
        base = pygit2.Oid(hex=old)
        if base != tip and not repo.descendant_of(tip, base):
            return None
        walker = repo.walk(tip, ORDER)
        walker.hide(base)
        found: list[Entry] = []
        for commit in walker:
            if len(found) >= _MAX_NEW:
                return None
            found.append(entry(commit))
        return found
    except (ValueError, KeyError, pygit2.GitError):
        return None


def _digest(data: bytes | None) -> str | None:
    return str(pygit2.hash(data)) if data is not None else None


def _json(item: Entry) -> list[Any]:
    return [str(item.id), item.time, item.subject, dict(item.trailers)]


def _entry(value: list[Any]) -> Entry:
    return Entry(pygit2.Oid(hex=value[0]), int(value[1]), str(value[2]), dict(value[3]))


def _load(repo: pygit2.Repository, key: str) -> dict[str, Any] | None:
    try:
        cached = state_dir(Path(repo.path), create=False) / _FOLDER / f"{key}.json"
        value = json.loads(cached.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _save(repo: pygit2.Repository, key: str, value: dict[str, Any]) -> None:
    try:
        folder = state_dir(Path(repo.path)) / _FOLDER
        folder.mkdir(mode=0o700, exist_ok=True)
        write_atomic(folder / f"{key}.json", json.dumps(value))
    except OSError:
        pass  # a read-only or full disk: the next call walks again
