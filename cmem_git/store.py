"""The memory repository: git objects, commits and the branch.

A commit is real when, and only when, the branch moves. Everything is built in memory first
(blobs, trees, the commit object), outside any lock, so concurrent hooks do their expensive part in
parallel. The branch then moves by compare-and-swap on the tip the commit was built on. A hook
that loses the race rebuilds on the new tip while holding the repository lock, where nobody else
can move the branch, so it needs one retry at most and can never starve. Only after the move are
the index and working files brought up to date (worktree.py); a process killed anywhere leaves the
old commit or the new one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import pygit2

from . import worktree
from .errors import ConcurrentUpdate, LockTimeout, NotInitialized, StorageError
from .lock import RepoLock, interrupted, unsynced

BLOB = pygit2.GIT_FILEMODE_BLOB
TREE = pygit2.GIT_FILEMODE_TREE
_COMPRESSION = 6
# Someone outside cmem (a user's `git commit`) may move the branch even while we hold our lock.
_LOCKED_ATTEMPTS = 3


@dataclass(frozen=True)
class Draft:
    """A commit ready to be written: its tree and message, and the working-file content it read
    (path -> blob id), which the working-file update may safely replace."""

    tree: pygit2.Oid
    message: str
    read: Mapping[str, pygit2.Oid] = field(default_factory=dict)
    merged: tuple[pygit2.Oid, ...] = ()  # further parents, for a merge
    target: pygit2.Oid | None = None  # move the branch to this existing commit (fast-forward)


Builder = Callable[["pygit2.Commit | None"], "Draft | None"]


class Store:
    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.workdir = Path(repo.workdir)
        self.gitdir = Path(repo.path)
        self.warnings: list[str] = []
        # What every transcript byte passes through before it is written (redaction). It
        # lives here, beside the object writes, so that no write path can skip it.
        self.filter: Callable[[bytes], tuple[bytes, int]] | None = None
        # libgit2 writes loose objects at zlib level 1 whatever core.compression says; level 6
        # (git's own default) keeps the repository near gzip size at ~12 ms per MiB written.
        objects = str(self.gitdir / "objects")
        repo.odb.add_backend(pygit2.OdbBackendLoose(objects, _COMPRESSION, False, 0o700, 0o600),
                             1000)

    @classmethod
    def open(cls, memory: Path) -> Store:
        if not (memory / ".git").is_dir():
            raise NotInitialized(f"no memory repository at {memory}")
        store = cls(pygit2.Repository(str(memory)))
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
        worktree.hide_transcripts(repo)
        return cls(repo)

    @property
    def branch(self) -> str:
        head = self.repo.references["HEAD"]
        target = head.target
        if not isinstance(target, str):
            raise ConcurrentUpdate("HEAD of the memory repository is detached",
                                   hint="run `git -C .claude/memory switch main`")
        return target

    def tip(self) -> pygit2.Commit | None:
        ref = self.repo.references.get(self.branch)
        if ref is None:
            return None
        commit = self.repo[ref.target]
        assert isinstance(commit, pygit2.Commit)
        return commit

    def lock(self, wait: float | None = None) -> RepoLock:
        return RepoLock(self.gitdir) if wait is None else RepoLock(self.gitdir, wait)

    def commit(self, build: Builder, wait: float | None = None) -> pygit2.Oid | None:
        """Build on the tip and move the branch; None when `build` finds nothing to commit.
        Problems met after the branch moved (the commit stands) go to `self.warnings`."""
        tip = self.tip()
        prepared = self._prepare(build, tip)
        if prepared is None:
            return None
        with self.lock(wait):
            for _ in range(_LOCKED_ATTEMPTS):
                if self._swap(tip, prepared[1]):
                    self._sync(prepared)
                    return prepared[1]
                tip = self.tip()
                prepared = self._prepare(build, tip)
                if prepared is None:
                    return None
        raise ConcurrentUpdate(f"{self.branch} kept moving while cmem held its lock",
                               hint="is another program committing to .claude/memory?")

    def _prepare(self, build: Builder, tip: pygit2.Commit | None
                 ) -> tuple[Draft, pygit2.Oid] | None:
        """The draft and its commit object, written but not yet on the branch."""
        try:
            draft = build(tip)
            if draft is None:
                return None
            if draft.target is not None:
                return draft, draft.target
            sig = self.signature()
            parents = ([tip.id] if tip is not None else []) + list(draft.merged)
            return draft, self.repo.create_commit(None, sig, sig, draft.message, draft.tree,
                                                  parents)
        except pygit2.GitError as error:
            # libgit2 sets no message of its own when an object write fails, so pygit2 can
            # show a stale one from an earlier lookup: say what was being done.
            raise StorageError(f"could not write to {self.gitdir}: {error}",
                               hint="is the disk full or a file-size limit reached? Nothing "
                               "was committed; earlier history is intact") from error

    def _sync(self, prepared: tuple[Draft, pygit2.Oid]) -> None:
        try:
            self._sync_files(prepared[0].read)
        except (pygit2.GitError, OSError) as error:
            # The commit stands; the flag makes the next cmem finish the files.
            unsynced(self.gitdir).touch()
            self.warnings.append(f"committed {str(prepared[1])[:8]}, but the index and working "
                                 f"files are not updated yet ({error}); the next cmem command "
                                 "finishes them")
        except BaseException:  # Ctrl-C halfway through the files: the next cmem finishes them
            unsynced(self.gitdir).touch()
            raise

    def _swap(self, old: pygit2.Commit | None, new: pygit2.Oid) -> bool:
        """Compare-and-swap: move the branch to `new` only if it still points at `old`."""
        refs = self.repo.references
        message = f"cmem: {self.repo[new].peel(pygit2.Commit).message.splitlines()[0]}"
        try:
            if old is None:
                refs.create(self.branch, new)
                return True
            ref = refs[self.branch]
            if ref.target != old.id:
                return False
            ref.set_target(new, message)  # libgit2 checks the value read above: a true CAS
            return True
        except (pygit2.AlreadyExistsError, pygit2.GitError, KeyError):
            return False

    def signature(self) -> pygit2.Signature:
        try:
            return self.repo.default_signature
        except (KeyError, pygit2.GitError):
            host = socket.gethostname() or "localhost"
            return pygit2.Signature(os.environ.get("USER") or "cmem", f"cmem@{host}")

    def build_tree(self, base: pygit2.Tree | None,
                   changes: Mapping[str, pygit2.Oid | None]) -> pygit2.Oid:
        """A new root tree: `base` with blobs set (or removed, for None) at the given paths.
        Only the trees along changed paths are rewritten."""
        nested = {tuple(path.split("/")): oid for path, oid in changes.items()}
        return _update(self.repo, base, nested) or self.repo.TreeBuilder().write()

    def blob_at(self, tree: pygit2.Tree | None, path: str) -> pygit2.Blob | None:
        obj = lookup(tree, path)
        return obj if isinstance(obj, pygit2.Blob) else None


def tree_diff(old: pygit2.Tree | None, new: pygit2.Tree) -> pygit2.Diff:
    """What changed from `old` (None: nothing) to `new`."""
    return old.diff_to_tree(new) if old is not None else new.diff_to_tree(swap=True)


def lookup(tree: pygit2.Tree | None, path: str) -> pygit2.Object | None:
    if tree is None:
        return None
    try:
        return tree[path]
    except KeyError:
        return None


def file_bytes(tree: pygit2.Tree | None, path: str) -> bytes | None:
    """The content of the file at `path` in `tree`; None when there is no such file."""
    obj = lookup(tree, path)
    return bytes(obj.data) if isinstance(obj, pygit2.Blob) else None


def subtree(tree: pygit2.Tree | None, path: str) -> pygit2.Tree | None:
    obj = lookup(tree, path)
    return obj if isinstance(obj, pygit2.Tree) else None


def _update(repo: pygit2.Repository, tree: pygit2.Tree | None,
            changes: dict[tuple[str, ...], pygit2.Oid | None]) -> pygit2.Oid | None:
    builder = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    below: dict[str, dict[tuple[str, ...], pygit2.Oid | None]] = {}
    for parts, oid in changes.items():
        if len(parts) > 1:
            below.setdefault(parts[0], {})[parts[1:]] = oid
        elif oid is not None:
            builder.insert(parts[0], oid, BLOB)
        elif builder.get(parts[0]) is not None:
            builder.remove(parts[0])
    for name, inner in below.items():
        current = builder.get(name)
        child = _update(repo, current if isinstance(current, pygit2.Tree) else None, inner)
        if child is not None:
            builder.insert(name, child, TREE)
        elif current is not None:
            builder.remove(name)
    return builder.write() if len(builder) else None
