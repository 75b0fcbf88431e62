"""The memory repository: the git layer's Repo, plus its index and working files.

The branch moves in git/repo.py; only after the move are the index and working files brought up
to date (worktree.py). Transcripts stay out of the working tree: a repository an older cmem (or a
clone) checked them out in has them taken out once, when it is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pygit2

from ..errors import LockTimeout, NotInitialized, StorageError
from ..git.lock import interrupted, unsynced
from ..git.repo import Repo, open_repository
from . import worktree


class Store(Repo):
    """A project's memory repository, with the working files kept in step."""

    @classmethod
    def open(cls, memory: Path) -> Store:
        if not (memory / ".git").is_dir():
            raise NotInitialized(f"no memory repository at {memory}")
        store = cls(open_repository(str(memory)))
        if store.workdir.resolve() != memory.resolve():
            raise StorageError(f"core.worktree of {memory} points at {store.workdir}: cmem "
                               "would write the memory's files there",
                               hint="run `cmem doctor` for the command that fixes it")
        if interrupted(store.gitdir):
            store.repair()
        if not worktree.hides_transcripts(store.repo):
            store.hide_transcripts()
        return store

    def hide_transcripts(self) -> None:
        """Take transcripts out of the working tree of a repository an older cmem (or a clone)
        checked them out in; once, under the lock (whoever holds it does it otherwise)."""
        try:
            with self.lock(wait=0):
                kept = worktree.hide_transcripts(self.repo)
        except (LockTimeout, pygit2.GitError, OSError):
            return
        if kept:
            self.warnings.append(f"left {len(kept)} files under transcripts/ in the working tree "
                                 f"that are in no commit, e.g. {kept[0]}")

    def _sync_files(self, read: Mapping[str, pygit2.Oid]) -> None:
        worktree.sync(self.repo, read)
        unsynced(self.gitdir).unlink(missing_ok=True)

    def repair(self) -> None:
        """Finish what a killed cmem left undone: its lock files go, and the index and working
        files catch up with the branch it may already have moved."""
        try:
            with self.lock(wait=0):
                if self.tip() is not None:
                    self._sync_files({})
        except (LockTimeout, pygit2.GitError, OSError):
            pass  # a live holder is writing and syncs the files itself, or the next one will

    @classmethod
    def init(cls, memory: Path) -> Store:
        memory.mkdir(parents=True, exist_ok=True, mode=0o700)
        memory.chmod(0o700)  # an adopted folder too: transcripts are private
        repo = pygit2.init_repository(str(memory), initial_head="main")
        # Transcript bytes must come back exactly: no end-of-line conversion from a global config.
        repo.config["core.autocrlf"] = "false"
        store = cls(open_repository(str(memory)))
        worktree.hide_transcripts(store.repo)
        return store
