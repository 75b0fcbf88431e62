"""Index and working files follow the branch; transcripts stay out of the working tree.

Transcripts live in git objects only (SPEC: the folder on disk is not a second uncompressed copy
of every transcript). Their index entries carry git's skip-worktree bit, and the repository is a
sparse checkout (`core.sparseCheckout`, patterns in `.git/info/sparse-checkout`: everything but
`/transcripts/`), so plain `git status` stays empty and `git checkout`, `git reset --hard` or a
pull leave them in objects too. The entries are written from the ids cmem just committed: nothing
re-hashes a chunk. libgit2 knows the bit but not sparse checkouts, so its status would call the
missing files deleted; `status` below is cmem's view, which agrees with git's.

Runs under the repository lock, after the branch moved, and always syncs to the branch as it is
now rather than to the commit this process made: whichever process syncs last leaves the files
at the newest commit. A working file is replaced only when it holds what the index recorded (an
untouched checkout) or what the commit read from it; anything else is an edit made since, by the
user or by Claude, and is left for the next commit to take in. Files are written to a temp file
and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pygit2
from pygit2.ffi import C  # pygit2's own binding: IndexEntry has no flags, libgit2's entry does

from ..git import sandbox
from ..git.lock import temp_dir
from . import automemory, memory

_TRANSCRIPTS = "transcripts/"  # kept out of the working tree: index entries marked skip-worktree
# Nobody edits these copies but cmem (auto-memory's working copy is Claude Code's own folder).
_CMEM_ONLY = (_TRANSCRIPTS, memory.AUTO + "/")
# libgit2's git_index_entry_extended_flag_t: GIT_INDEX_ENTRY_SKIP_WORKTREE.
_SKIP_WORKTREE = 1 << 14
SPARSE_PATTERNS = "/*\n!/transcripts/\n"


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
    if path.startswith(_TRANSCRIPTS):
        _set_hidden(index, path, want)
        return True
    try:
        file = sandbox.target(Path(repo.workdir), path)
    except sandbox.OutsideFolder:
        return False  # never written, never indexed: a path intake.check would have refused
    current = _hash(file)
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


def _set_hidden(index: pygit2.Index, path: str, want: pygit2.Oid | None) -> None:
    """Index entry for a transcript chunk, marked skip-worktree; no working file."""
    if want is None:
        index.remove(path)
        return
    entry, _name = pygit2.IndexEntry(path, want, pygit2.enums.FileMode.BLOB)._to_c()
    entry.flags_extended |= _SKIP_WORKTREE
    if C.git_index_add(index._index, entry) != 0:
        raise pygit2.GitError(f"could not add {path} to the index")


def _hidden(index: pygit2.Index, path: str) -> bool:
    entry = C.git_index_get_bypath(index._index, path.encode(), 0)
    return bool(entry) and bool(entry.flags_extended & _SKIP_WORKTREE)


def hides_transcripts(repo: pygit2.Repository) -> bool:
    """Whether the repository is already set up to keep transcripts out of the working tree."""
    try:
        return bool(repo.config.get_bool("core.sparseCheckout"))
    except (KeyError, pygit2.GitError):
        return False


def hide_transcripts(repo: pygit2.Repository) -> list[str]:
    """Make the repository a sparse checkout without transcripts, and take out the transcript
    files an older cmem (or a clone) checked out: each only once its exact content is a git
    object, so nothing is lost. Runs under the repository lock; returns the files kept."""
    info = Path(repo.path) / "info"
    info.mkdir(mode=0o700, exist_ok=True)
    (info / "sparse-checkout").write_text(SPARSE_PATTERNS)
    index = repo.index
    index.read(True)
    kept = []
    for entry in list(index):
        if entry.path.startswith(_TRANSCRIPTS) and not _hidden(index, entry.path):
            _set_hidden(index, entry.path, entry.id)
    index.write()
    folder = Path(repo.workdir) / _TRANSCRIPTS
    for file in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if file.is_file() and not file.is_symlink():
            if repo.odb.exists(pygit2.hashfile(str(file))):
                file.unlink()
            else:
                kept.append(file.relative_to(repo.workdir).as_posix())
    _remove_empty(folder)
    repo.config["core.sparseCheckout"] = True  # last: the marker that this is done
    return kept


def _remove_empty(folder: Path) -> None:
    if not folder.is_dir() or folder.is_symlink():
        return
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            _remove_empty(child)
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: something cmem did not write


def status(repo: pygit2.Repository, untracked: str = "normal") -> dict[str, int]:
    """libgit2's status without the transcripts that are hidden on purpose (git's view)."""
    flags = repo.status(untracked_files=untracked)
    index = repo.index
    return {path: flag for path, flag in flags.items()
            if not (path.startswith(_TRANSCRIPTS) and flag == pygit2.GIT_STATUS_WT_DELETED
                    and _hidden(index, path))}
