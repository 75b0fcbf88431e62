"""Index and working files follow the branch.

Runs under the repository lock, after the branch moved, and always syncs to the branch as it is
now rather than to the commit this process made: whichever process syncs last leaves the files
at the newest commit. A working file is replaced only when it holds what the index recorded (an
untouched checkout) or what the commit read from it; anything else is an edit made since, by the
user or by Claude, and is left for the next commit to take in. Files are written to a temp file
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pygit2

from . import automemory, memory, sandbox
from .lock import temp_dir

# Nobody edits these copies but cmem (auto-memory's working copy is Claude Code's own folder).
_CMEM_ONLY = ("transcripts/", memory.AUTO + "/")


def sync(repo: pygit2.Repository, read: Mapping[str, pygit2.Oid] | None = None) -> list[str]:
    """Update index and working files to HEAD; returns the paths left alone because they hold
    edits newer than HEAD."""
    head = repo.head.peel(pygit2.Tree)
    index = repo.index
    index.read(True)
    kept = [path for path, want, have in _differences(index, head)
            if not _apply(repo, index, path, want, have, (read or {}).get(path))]
    index.write()
    return kept


def _differences(index: pygit2.Index, head: pygit2.Tree
                 ) -> list[tuple[str, pygit2.Oid | None, pygit2.Oid | None]]:
    """(path, id in HEAD, id in the index) for every path where they differ."""
    result = []
    for delta in index.diff_to_tree(head).deltas:
        # diff_to_tree compares the tree (old side) with the index (new side).
        want = delta.old_file.id if delta.status != pygit2.GIT_DELTA_ADDED else None
        have = delta.new_file.id if delta.status != pygit2.GIT_DELTA_DELETED else None
        result.append((delta.old_file.path or delta.new_file.path, want, have))
    return result


def _apply(repo: pygit2.Repository, index: pygit2.Index, path: str, want: pygit2.Oid | None,
           have: pygit2.Oid | None, read: pygit2.Oid | None) -> bool:
    try:
        file = sandbox.target(Path(repo.workdir), path)
    except sandbox.OutsideFolder:
        return False  # never written, never indexed: a path intake.check would have refused
    current = _hash(file)
    # Nobody edits transcript chunks but cmem: whatever is there is an unfinished sync.
    replaceable = path.startswith(_CMEM_ONLY) or current in (None, have, read, want)
    if want is None:
        if replaceable:
            sandbox.remove(Path(repo.workdir), path)
        index.remove(path)
        return replaceable
    if replaceable and current != want:
        blob = repo[want]
        assert isinstance(blob, pygit2.Blob)
        write_file(repo, path, blob.data)
    if path.startswith(_CMEM_ONLY[1]):
        automemory.mirror(repo, path, blob_bytes(repo, want) or b"", have, read)
    if replaceable:
        index.add(path)  # stats the file we wrote, so `git status` need not hash it again
    else:
        _carry_managed_lines(repo, file, path, have, want)
        index.add(pygit2.IndexEntry(path, want, pygit2.enums.FileMode.BLOB))
    return replaceable


def _carry_managed_lines(repo: pygit2.Repository, file: Path, path: str,
                         have: pygit2.Oid | None, want: pygit2.Oid) -> None:
    """An edit of active-context.md made on the older copy keeps its text, but takes the
    commit's cmem lines (exit, document pointer) it did not touch itself: otherwise the next
    commit of the edit would undo them."""
    if path != memory.ACTIVE or have is None:
        return
    edited = file.read_bytes()
    merged = memory.keep_managed(edited, blob_bytes(repo, have), blob_bytes(repo, want) or b"")
    if merged != edited:
        write_file(repo, path, merged)


def blob_bytes(repo: pygit2.Repository, oid: pygit2.Oid | None) -> bytes | None:
    blob = repo.get(oid) if oid is not None else None
    return bytes(blob.data) if isinstance(blob, pygit2.Blob) else None


def _hash(file: Path) -> pygit2.Oid | None:
    try:
        return pygit2.hashfile(str(file)) if file.is_file() else None
    except OSError:
        return None


def write_file(repo: pygit2.Repository, path: str, data: bytes) -> None:
    """Write a working file through the one guarded writer. The temp file sits inside .git
    (same file system, and a dead writer's leftovers are cleared by the lock). No fsync: every
    byte written here is also in a commit, from which `cmem` can rebuild it."""
    sandbox.write(Path(repo.workdir), path, data, temp_dir(Path(repo.path)))
