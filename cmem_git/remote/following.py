"""Another device's purge, followed here: when the remote's new commits include a purge of
history this device holds, the same purge is applied here (remote/purge.py), so the merge that
follows is an ordinary one and the old history goes. Called by sync before it merges.
"""

from __future__ import annotations

import json

import pygit2

from ..capture.backup import SOURCE_MAP
from ..repo.store import Store
from ..repo.trailers import Trailer
from .purge import (
    ATTEMPTS,
    MIN_SECRET,
    PurgeError,
    _cutoff,
    _owe_cleanup,
    _refresh_files,
    _rewrite_other_refs,
    _tip,
    clean,
    finish_cleanup,
)
from .rewriting import MARKER, Rewriter, Selector, digest

# --- the other devices ----------------------------------------------------------------------

def follow(store: Store, theirs: pygit2.Commit) -> bool:
    """When the remote's new commits include a purge of history this device holds: apply the
    same purge here, so that what both had becomes the remote's rewritten commits and this
    device's own newer commits are rewritten on top; the merge that follows is then an
    ordinary one, and the old history goes. True when that happened."""
    finish_cleanup(store)
    tip = store.tip()
    if tip is None:
        return False
    _refuse_stale_remote(store, theirs, tip)
    purges = _purges(store.repo, theirs.id, tip.id)
    if not purges:
        return False
    selectors = [s for commit in purges for s in _selectors(store.repo, commit, tip)]
    rewriter = Rewriter(store.repo, selectors)
    with store.lock():
        for _ in range(ATTEMPTS):
            current = _tip(store)
            new, cutoff = rewriter.history(current.id), _cutoff()
            if store._swap(current, new):
                _owe_cleanup(store, cutoff)
                break
        else:
            raise PurgeError(f"{store.branch} kept moving while following a purge",
                             hint="try `cmem sync` again")
        _rewrite_other_refs(store, rewriter)
        _refresh_files(store)
        clean(store, selectors, cutoff)
    return True


def _refuse_stale_remote(store: Store, theirs: pygit2.Commit, tip: pygit2.Commit) -> None:
    """A purge made here with --no-push: the remote still has the old history, and merging it
    would bring back what was purged."""
    for commit in _purges(store.repo, tip.id, theirs.id):
        old = pygit2.Oid(hex=_trailer(commit, Trailer.PURGE_OF)[0])
        if old == theirs.id or (old in store.repo and
                                store.repo.descendant_of(old, theirs.id)):
            branch = store.branch.removeprefix("refs/heads/")
            raise PurgeError("the remote still has the history purged here (purge --no-push): "
                             "merging it would bring back what was purged",
                             hint=f"overwrite it: `git -C .claude/memory push "
                             f"--force-with-lease={branch}:{theirs.id} REMOTE {branch}`")


def _purges(repo: pygit2.Repository, theirs: pygit2.Oid, tip: pygit2.Oid
            ) -> list[pygit2.Commit]:
    """Purge commits the remote has and this device does not, oldest first."""
    walker = repo.walk(theirs, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    walker.hide(tip)
    return [c for c in walker if _trailer(c, Trailer.EVENT) == ["purge"]
            and _trailer(c, Trailer.PURGE_OF)]


def _trailer(commit: pygit2.Commit, key: str) -> list[str]:
    """Every value of a trailer (message_trailers keeps only one per key)."""
    prefix = f"{key}: "
    return [line[len(prefix):] for line in commit.message.splitlines()
            if line.startswith(prefix)]


def _selectors(repo: pygit2.Repository, purge_commit: pygit2.Commit,
               tip: pygit2.Commit) -> list[Selector]:
    found = []
    for label in _trailer(purge_commit, Trailer.PURGED):
        kind, _, value = label.partition(" ")
        if kind in ("session", "path"):
            found.append(Selector(kind, value))
        elif kind == "secret":
            secret = _recovered(repo, purge_commit, tip, value)
            found += [Selector("secret", secret)] if secret is not None else []
    return found


def _recovered(repo: pygit2.Repository, purge_commit: pygit2.Commit, tip: pygit2.Commit,
               label: str) -> str | None:
    """The secret, which the trailer names only by a hash: this device holds commits the
    purge rewrote, and a rewritten commit keeps its author, committer and dates, so comparing
    the two shows what became the marker; the hash confirms it. Nothing secret crosses the
    network. None when this device holds none of the rewritten commits (it never had the
    secret: it came in after this device last synced)."""
    want = label.removeprefix("sha256:")
    ours: dict[tuple[object, ...], list[pygit2.Commit]] = {}
    walker = repo.walk(tip.id)
    walker.hide(purge_commit.id)
    for commit in walker:
        ours.setdefault(_identity(commit), []).append(commit)
    walker = repo.walk(purge_commit.id)
    walker.hide(tip.id)
    counterparts = [(old, new) for new in walker for old in ours.get(_identity(new), [])]
    if not counterparts:
        return None
    for old, new in counterparts:
        for before, after in _differing(repo, old, new):
            secret = _secret_in(before, after, want)
            if secret is not None:
                return secret
    raise PurgeError(f"the remote's history was rewritten to remove a secret "
                     f"(sha256:{want}) that this device's history does not show",
                     hint="run `cmem purge --secret - --no-push` here with the same secret, "
                     "then `cmem sync`")


def _identity(commit: pygit2.Commit) -> tuple[object, ...]:
    return (commit.author.time, commit.author.email, commit.committer.time,
            len(commit.parent_ids), commit.message_trailers.get(Trailer.DEVICE))


def _differing(repo: pygit2.Repository, old: pygit2.Commit, new: pygit2.Commit
               ) -> list[tuple[bytes, bytes]]:
    pairs = [(old.message.encode(), new.message.encode())] if old.message != new.message else []
    return pairs + _blob_pairs(repo, old.tree, new.tree)


def _blob_pairs(repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree
                ) -> list[tuple[bytes, bytes]]:
    """Blobs that differ at the same place; chunk folders pair their chunks by position,
    since a purge renames the chunks after a changed one."""
    if old.id == new.id:
        return []
    olds, news = _entries(old), _entries(new)
    if set(olds) != set(news):  # a chunk folder: chunks after a changed one were renamed
        olds, news = dict(enumerate(olds.values())), dict(enumerate(news.values()))
    pairs: list[tuple[bytes, bytes]] = []
    for key, one in olds.items():
        a, b = repo[one], repo[news[key]] if key in news else None
        if isinstance(a, pygit2.Tree) and isinstance(b, pygit2.Tree):
            pairs += _blob_pairs(repo, a, b)
        elif isinstance(a, pygit2.Blob) and isinstance(b, pygit2.Blob) and a.id != b.id:
            pairs.append((bytes(a.data), bytes(b.data)))
    return pairs


def _entries(tree: pygit2.Tree) -> dict[object, pygit2.Oid]:
    """Name -> id, without source maps (a purge adds one beside a changed chunk folder)."""
    return {item.name: item.id for item in sorted(tree, key=lambda e: e.name or "")
            if not (item.name or "").endswith(SOURCE_MAP)}


def _secret_in(before: bytes, after: bytes, want: str) -> str | None:
    """`after` is `before` with the secret replaced by the marker: find where they part, and
    the length at which what `before` holds there hashes to `want`."""
    at = next((i for i, (x, y) in enumerate(zip(before, after)) if x != y), None)
    if at is None:
        return None
    start = after.rfind(MARKER, max(0, at - len(MARKER)), at + len(MARKER))
    if start < 0 or start > at:
        return None
    for end in range(start + MIN_SECRET, min(len(before), start + 4096) + 1):
        candidate = before[start:end].decode("utf-8", "surrogateescape")
        for value in (candidate, _unescaped(candidate)):
            if value is not None and digest(value) == want:
                return value
    return None


def _unescaped(text: str) -> str | None:
    try:
        value = json.loads(f'"{text}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None
