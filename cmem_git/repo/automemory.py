"""Claude Code's own auto-memory travels with the memory repository.

Claude Code keeps per-project notes at `~/.claude/projects/<encoded project>/memory/` (MEMORY.md
and topic files) and nothing carries them to another machine. cmem commits them as
`auto-memory/` with every checkpoint and writes them back after a sync or restore, by the rules
of the human files: Claude's folder is the working copy, the index records what was last in
step with it, so a file that differs from the index is a local edit and is committed (a sync
then merges it three-way with the other machine's), and a file is replaced only while it still
holds what the index or the commit read from it. A file deleted locally is not deleted
elsewhere (memory is never thrown away by a sync); it comes back when it next changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from .. import paths
from ..git import intake, sandbox
from .memory import AUTO

if TYPE_CHECKING:  # store -> worktree -> this module at run time
    from .store import Store

MAX_FILES = 500  # Claude Code keeps a handful; more is not auto-memory


def local_folder(workdir: Path) -> Path:
    """Claude Code's auto-memory folder for the project whose memory repository is `workdir`
    (`<project>/.claude/memory`)."""
    return paths.transcripts_dir(workdir.parent.parent) / "memory"


def local_files(folder: Path) -> dict[str, Path]:
    """Regular files under `folder` by relative name; links and odd names are skipped (they
    could not travel: intake.check refuses them on the other side)."""
    if not folder.is_dir() or folder.is_symlink():
        return {}
    found = {}
    for file in sorted(folder.rglob("*"))[:MAX_FILES]:
        relative = file.relative_to(folder).as_posix()
        if (file.is_file() and not file.is_symlink() and not intake.path_problem(relative)
                and file.stat().st_size <= intake.MAX_BLOB and _plain_folders(folder, file)):
            found[relative] = file
    return found


def _plain_folders(folder: Path, file: Path) -> bool:
    """No folder between `folder` and `file` is a symlink (rglob does not follow them, but a
    link may be swapped in meanwhile)."""
    return not any(parent.is_symlink() for parent in file.parents
                   if parent != folder and folder in parent.parents)


def changes(store: Store, base: pygit2.Tree | None
            ) -> tuple[dict[str, pygit2.Oid | None], dict[str, pygit2.Oid]]:
    """Blob changes for auto-memory files edited locally since the last sync, and the ids of
    everything read (which the working-file update may then replace)."""
    index = store.repo.index  # read afresh by the caller
    found: dict[str, pygit2.Oid | None] = {}
    read: dict[str, pygit2.Oid] = {}
    for relative, file in local_files(local_folder(store.workdir)).items():
        path = f"{AUTO}/{relative}"
        try:
            data = file.read_bytes()
        except OSError:
            continue  # Claude Code is rewriting it: the next checkpoint takes it
        read[path] = pygit2.hash(data)
        synced = index[path].id if path in index else None
        stored = store.blob_at(base, path)
        if read[path] != synced and (stored is None or stored.id != read[path]):
            found[path] = store.repo.create_blob(data)
    return found, read


def mirror(repo: pygit2.Repository, path: str, data: bytes, have: pygit2.Oid | None,
           read: pygit2.Oid | None) -> None:
    """Write the committed `data` of `auto-memory/<name>` into Claude Code's folder, unless the
    file there holds an edit not yet committed."""
    folder = local_folder(Path(repo.workdir))
    relative = path.removeprefix(AUTO + "/")
    try:
        target = sandbox.target(folder, relative)
        current = pygit2.hashfile(str(target)) if target.is_file() else None
    except (sandbox.OutsideFolder, OSError):
        return
    if current in (None, have, read) and current != pygit2.hash(data):
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        sandbox.write(folder, relative, data)


def write_missing(store: Store) -> list[Path]:
    """Put back the committed auto-memory files Claude Code's folder lacks (a new machine, a
    deleted folder); files that are there are left as they are."""
    tip = store.tip()
    stored = tip.tree[AUTO] if tip is not None and AUTO in tip.tree else None
    if not isinstance(stored, pygit2.Tree):
        return []
    folder, written = local_folder(store.workdir), []
    for relative, data in _blobs(store.repo, stored, ""):
        try:
            if not sandbox.target(folder, relative).exists():
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                written.append(sandbox.write(folder, relative, data))
        except sandbox.OutsideFolder:
            continue
    return written


def _blobs(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str) -> list[tuple[str, bytes]]:
    found = []
    for entry in tree:
        if isinstance(entry, pygit2.Tree):
            found += _blobs(repo, entry, f"{prefix}{entry.name}/")
        elif isinstance(entry, pygit2.Blob):
            found.append((f"{prefix}{entry.name}", bytes(entry.data)))
    return found
