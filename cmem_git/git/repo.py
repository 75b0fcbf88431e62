"""The git layer's repository: objects, commits and the branch.

A commit is real when, and only when, the branch moves. Everything is built in memory first
(blobs, trees, the commit object), outside any lock, so concurrent hooks do their expensive part in
parallel. The branch then moves by compare-and-swap on the tip the commit was built on. A hook
that loses the race rebuilds on the new tip while holding the repository lock, where nobody else
can move the branch, so it needs one retry at most and can never starve. Only after the move are
files outside git brought up to date (`_sync_files`, which repo/store.py fills in with the index
and working files); a process killed anywhere leaves the old commit or the new one.

Secrets: the commit is also the one place every blob cmem writes passes through, whichever command
built it (a hook's transcript chunks, memory files, documents, imports, an adopted folder, a
merge), so redaction happens here (`_cleaned`) and a new write path cannot skip it: every blob of
the new tree that the tip does not have, every path and the message go through the filter before
the commit object is written. Blobs that already came out of the filter (backup.py redacts a
transcript piece by piece, to keep its source map) are known by identity and not read again.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..errors import ConcurrentUpdate, StorageError
from .lock import RepoLock, unsynced
from .trees import lookup, new_blobs, update_tree

# The zlib level of loose objects (also loose.py's). libgit2 writes them at level 1 whatever
# core.compression says: on transcript chunks 22% larger than level 6. Level 4 is 5% larger than
# 6 at ~half its cost (~13 against ~24 ms per MiB), and is temporary: the background repack
# (packing.py) compresses them again at git's level. Row 4 of bench/bench_hooks.py measures it.
LOOSE_LEVEL = 4
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
Filter = Callable[[bytes], "tuple[bytes, int]"]


class _Repository(pygit2.Repository):
    """A repository whose blob writes pass the filter before any byte reaches the object
    database (an unreachable object is still on disk, in a backup of the folder, in a pack).
    Bytes the filter already produced (backup.py redacts a transcript piece by piece, to keep
    its source map) are known by identity, the same object rather than an equal one, a check
    that costs nothing, and are not redacted twice."""

    transform: Filter | None
    filtering: Filter | None  # the store's filter: `transform` that remembers what it made
    filtered: dict[int, bytes]  # id -> the filter's output, kept alive so the id stays its own
    clean: set[pygit2.Oid]  # blobs written through here
    redacted: dict[pygit2.Oid, int]  # of those, the ones that held secrets, and how many

    def create_blob(self, data: bytes | str) -> pygit2.Oid:
        raw, count = self.cleaned(data)
        oid = super().create_blob(raw)
        self.written(oid, count)
        return oid

    def remember(self, clean: bytes) -> None:
        """`clean` came out of the filter (here, or in a helper process running the same one)."""
        self.filtered[id(clean)] = clean

    def cleaned(self, data: bytes | str) -> tuple[bytes, int]:
        """The bytes to store for `data`, and the secrets replaced in them. Bytes the filter
        produced are taken as they are, once: their entry goes, so that a first backup's
        hundreds of chunks are not all kept in memory until the commit."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if self.transform is None or self.filtered.pop(id(data), None) is data:
            return raw, 0
        return self.transform(raw)

    def written(self, oid: pygit2.Oid, count: int) -> None:
        """Record a blob that came out of `cleaned` (whoever writes it: libgit2 here, or pack.py
        and loose.py through `admitted`), so that the commit does not read and redact it again."""
        self.clean.add(oid)
        if count:
            self.redacted[oid] = count

    def create_blob_fromdisk(self, path: str) -> pygit2.Oid:
        return self.create_blob(Path(path).read_bytes())


def admitted(repo: pygit2.Repository, data: bytes) -> tuple[bytes, pygit2.Oid]:
    """For a writer of blobs other than libgit2 (pack.py, loose.py): the bytes to store for
    `data`, through the repository's filter as `create_blob` would, and their blob id, recorded
    as written so that the commit does not redact them again."""
    if not isinstance(repo, _Repository):
        return data, pygit2.hash(data)
    data, count = repo.cleaned(data)
    oid = pygit2.hash(data)
    repo.written(oid, count)
    return data, oid


def open_repository(path: str) -> _Repository:
    repo = _Repository(path)
    repo.transform, repo.filtering, repo.filtered, repo.clean, repo.redacted = \
        None, None, {}, set(), {}
    return repo


class Repo:
    """A repository cmem commits to: objects built in memory, the branch moved last by
    compare-and-swap. Subclasses keep files outside git in step after a move (`_sync_files`)."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo if isinstance(repo, _Repository) else open_repository(repo.path)
        self.workdir = Path(repo.workdir)
        self.gitdir = Path(repo.path)
        self.warnings: list[str] = []
        self.notices: list[str] = []  # secrets replaced on the way in: for the user to know
        self._filter: Filter | None = None
        objects = str(self.gitdir / "objects")
        repo.odb.add_backend(pygit2.OdbBackendLoose(objects, LOOSE_LEVEL, False, 0o700, 0o600),
                             1000)

    @property
    def filter(self) -> Filter | None:
        """What every blob, path and message passes through before it is written (redaction,
        when the config has it on): secrets replaced, and how many."""
        return self._filter

    @filter.setter
    def filter(self, transform: Filter | None) -> None:
        self.repo.transform = transform
        self._filter = None if transform is None else self._remembering(transform)
        self.repo.filtering = self._filter

    def _remembering(self, transform: Filter) -> Filter:
        def run(data: bytes) -> tuple[bytes, int]:
            clean, count = transform(data)
            self.repo.remember(clean)
            return clean, count
        return run

    def clean_text(self, text: str) -> str:
        """`text` as it may be stored (a title that becomes a file name, say)."""
        if self._filter is None:
            return text
        return self._filter(text.encode("utf-8", "surrogateescape"))[0].decode(
            "utf-8", "surrogateescape")

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
        try:
            commit = self.repo[ref.target]
        except KeyError:
            raise StorageError(f"the commit {ref.target} that {self.branch} points at is "
                               f"missing from {self.gitdir / 'objects'}",
                               hint="run `cmem doctor`; restore from a remote or a backup"
                               ) from None
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
        try:
            with self.lock(wait):
                for _ in range(_LOCKED_ATTEMPTS):
                    if self._swap(tip, prepared[1]):
                        self._sync(prepared)
                        return prepared[1]
                    tip = self.tip()
                    prepared = self._prepare(build, tip)
                    if prepared is None:
                        return None
            stale = self.gitdir / f"{self.branch}.lock"
            if stale.exists():  # git's lock on the branch, which our flock does not cover
                raise StorageError(f"{stale} exists: a git or cmem process holds the branch, or "
                                   "died holding it", hint="`cmem doctor --fix` removes a lock "
                                   "no process holds; nothing was committed")
        finally:
            self.repo.filtered.clear()
            self.repo.redacted.clear()
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
            draft = self._cleaned(draft, tip)
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

    def _cleaned(self, draft: Draft, tip: pygit2.Commit | None) -> Draft:
        """The draft with every secret replaced, in its new blobs, their paths and its message.
        A memory file that held one is committed redacted; its `read` id stays the one of the
        file on disk, so the working-file update rewrites the file to match (atomically)."""
        if self._filter is None:
            return draft
        tree = self.repo[draft.tree]
        assert isinstance(tree, pygit2.Tree)
        changes: dict[str, pygit2.Oid | None] = {}
        for path, oid in new_blobs(tip.tree if tip is not None else None, tree):
            if oid not in self.repo.clean:  # written by libgit2 itself (a merge) or fetched
                blob = self.repo[oid]
                assert isinstance(blob, pygit2.Blob)
                changes[path] = oid = self.repo.create_blob(bytes(blob.data))
            if self.repo.redacted.get(oid):
                self.notices.append(_redacted_notice(path, self.repo.redacted[oid],
                                                     path in draft.read))
        message = self._filter(draft.message.encode("utf-8", "surrogateescape"))[0]
        return dataclasses.replace(
            draft, tree=self.build_tree(tree, changes) if changes else draft.tree,
            message=message.decode("utf-8", "surrogateescape"))

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
        except (pygit2.AlreadyExistsError, pygit2.GitError, KeyError, OSError) as error:
            if self._lost_race(old):
                return False
            raise StorageError(f"could not move {self.branch} in {self.gitdir}: {error}",
                               hint="is the disk full or the folder read-only? Nothing was "
                               "committed; earlier history is intact") from error

    def _lost_race(self, old: pygit2.Commit | None) -> bool:
        """After a failed branch move: whether another writer moved the branch first or holds
        git's lock on it (OSError from libgit2; see `commit`). A ref write that failed for any
        other reason (a full disk, a read-only folder) is an error, not a race to retry."""
        ref = self.repo.references.get(self.branch)
        moved = (ref.target if ref is not None else None) != (old.id if old is not None else None)
        return moved or (self.gitdir / f"{self.branch}.lock").exists()

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
        nested = {tuple(self._clean_path(path).split("/")): oid for path, oid in changes.items()}
        return update_tree(self.repo, base, nested) or self.repo.TreeBuilder().write()

    def _clean_path(self, path: str) -> str:
        """A path as it may be stored: a name is in a tree object like any content."""
        clean = self.clean_text(path)
        if clean != path:
            self.notices.append(f"a file name held a secret: stored as {clean}")
        return clean

    def blob_at(self, tree: pygit2.Tree | None, path: str) -> pygit2.Blob | None:
        obj = lookup(tree, path)
        return obj if isinstance(obj, pygit2.Blob) else None

    def _sync_files(self, read: Mapping[str, pygit2.Oid]) -> None:
        """Bring files outside git up to the new tip; the plain repository has none."""
        unsynced(self.gitdir).unlink(missing_ok=True)


def default_remote(repo: pygit2.Repository) -> str | None:
    """The remote sync uses when none is named: origin, else the first there is. (Here, not in
    transport.py: every SessionEnd asks, and need not load the network code to know.)"""
    names = [r.name for r in repo.remotes if r.name]
    return "origin" if "origin" in names else (names[0] if names else None)


def _redacted_notice(path: str, count: int, on_disk: bool) -> str:
    where = "; the file on disk was rewritten to match" if on_disk else ""
    return f"{path}: {count} secret{'s' * (count != 1)} replaced before committing{where}"
