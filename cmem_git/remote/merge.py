"""Merging two devices' commits without a working tree (see sync.py for the two rules of cmem's
own: transcripts changed on both devices, memory files edited on both). Symmetric: the side
whose commit id sorts first goes first, so both devices reach the same tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pygit2

from ..capture.backup import ROOT, SOURCE_MAP, merge_lines
from ..git import chunks
from ..git.repo import Draft
from ..git.trees import file_bytes, subtree
from ..read.delta import changed_files
from ..repo import memory
from ..repo.history import entry, format_message
from ..repo.store import Store
from ..repo.trailers import Trailer

if TYPE_CHECKING:
    pass


# --- merging --------------------------------------------------------------------------------

def merge(store: Store, theirs: pygit2.Commit, device: str) -> tuple[str | None, list[str]]:
    """Merge `theirs` into the branch; returns (kind, files that conflicted)."""
    conflicts: list[str] = []
    kind: list[str | None] = [None]

    def build(tip: pygit2.Commit | None) -> Draft | None:
        if tip is not None and (tip.id == theirs.id
                                or store.repo.descendant_of(tip.id, theirs.id)):
            kind[0] = None
            return None
        if tip is None or store.repo.descendant_of(theirs.id, tip.id):
            kind[0] = "fast-forward"
            return Draft(theirs.tree.id, "", target=theirs.id)
        kind[0] = "merge"
        tree, found = merged_tree(store, tip, theirs)
        conflicts[:] = found
        return Draft(tree, _message(tip, theirs, device, found), merged=(theirs.id,))

    store.commit(build)
    return kind[0], conflicts


def merged_tree(store: Store, ours: pygit2.Commit,
                theirs: pygit2.Commit) -> tuple[pygit2.Oid, list[str]]:
    repo = store.repo
    base_id = repo.merge_base(ours.id, theirs.id)
    base = repo[base_id].peel(pygit2.Tree) if base_id is not None else None
    first, second = sorted((ours, theirs), key=lambda c: str(c.id))
    ancestor = base if base is not None else repo[repo.TreeBuilder().write()]
    probe = repo.merge_trees(ancestor, first.tree, second.tree)
    conflicted = sorted({_path(c) for c in probe.conflicts or ()})
    union = repo.merge_trees(ancestor, first.tree, second.tree,
                             favor=pygit2.enums.MergeFavor.UNION)
    _settle(union)
    tree = repo[union.write_tree(repo)]
    assert isinstance(tree, pygit2.Tree)
    changes = _transcripts(repo, base, first.tree, second.tree, store.filter)
    files, texts = _memory_files(repo, base, first, second)
    changes.update(files)
    tree_id = store.build_tree(tree, changes) if changes else tree.id
    reported = [p for p in conflicted if not p.startswith(ROOT + "/") and p not in files]
    return tree_id, sorted(reported + texts)


def _memory_files(repo: pygit2.Repository, base: pygit2.Tree | None, first: pygit2.Commit,
                  second: pygit2.Commit) -> tuple[dict[str, pygit2.Oid | None], list[str]]:
    """The human files both sides have and differ in, merged three-way by cmem's own rule
    (the tree merge above cannot know it). Without a common history (a second machine's first
    sync) the ancestor is the template `cmem init` wrote, so a file still equal to it simply
    takes the other side."""
    changes: dict[str, pygit2.Oid | None] = {}
    conflicts = []
    for name in memory.merged_paths(first.tree, second.tree):
        one, two = file_bytes(first.tree, name), file_bytes(second.tree, name)
        if one is None or two is None or one == two:
            continue  # one side lacks it: git's merge (and _settle) keep the other
        old = file_bytes(base, name) if base is not None else memory.initial(name)
        body, conflicted = _merge_file(repo, old, one, two)
        changes[name] = repo.create_blob(body)
        conflicts += [name] if conflicted else []
    return changes, conflicts


def _merge_file(repo: pygit2.Repository, old: bytes | None, one: bytes,
                two: bytes) -> tuple[bytes, bool]:
    """Three-way; cmem's header lines keep their place and are merged by meaning."""
    if old == one or old == two:
        return (two if old == one else one), False
    body, conflicted = _merge_text(repo, *(memory.masked(t) if t is not None else None
                                          for t in (old, one, two)))
    values = {label: memory.merged_value(*(memory.value(t, label) for t in (old, one, two)))
              for label in memory.MANAGED}
    return memory.unmasked(body, values), conflicted


def _merge_text(repo: pygit2.Repository, old: bytes | None, one: bytes | None,
                two: bytes | None) -> tuple[bytes, bool]:
    """A three-way merge of one text; where both changed the same lines, both versions are
    kept one after the other (union), and the flag says that happened."""
    trees = [_single(repo, data) for data in (old, one, two)]
    probe = repo.merge_trees(trees[0], trees[1], trees[2])
    union = repo.merge_trees(trees[0], trees[1], trees[2], favor=pygit2.enums.MergeFavor.UNION)
    _settle(union)
    merged = repo[union["text"].id]
    assert isinstance(merged, pygit2.Blob)
    return bytes(merged.data), bool(list(probe.conflicts or ()))


def _single(repo: pygit2.Repository, data: bytes | None) -> pygit2.Tree:
    builder = repo.TreeBuilder()
    if data is not None:
        builder.insert("text", repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    tree = repo[builder.write()]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _path(conflict: tuple[pygit2.IndexEntry | None, ...]) -> str:
    return next(str(entry.path) for entry in conflict if entry is not None)


def _settle(index: pygit2.Index) -> None:
    """Conflicts a union cannot settle (one side deleted the file): keep the side that has it,
    since memory is never thrown away by a merge."""
    for conflict in list(index.conflicts or ()):
        _, ours, theirs = conflict
        keep = ours or theirs
        assert keep is not None
        del index.conflicts[keep.path]
        index.add(keep)


def _transcripts(repo: pygit2.Repository, base: pygit2.Tree | None, first: pygit2.Tree,
                 second: pygit2.Tree, clean: Callable[[bytes], tuple[bytes, int]] | None
                 ) -> dict[str, pygit2.Oid | None]:
    """Chunk changes for every stored file both sides changed: their lines, merged."""
    changes: dict[str, pygit2.Oid | None] = {}
    both = set(changed_files(repo, base, first)) & set(changed_files(repo, base, second))
    for stored in sorted(both):
        one = chunks.listing(repo, subtree(first, stored))
        two = chunks.listing(repo, subtree(second, stored))
        data = merge_lines(chunks.read_range(repo, one), chunks.read_range(repo, two))
        if clean is not None:  # the other device may not redact: its lines pass the filter here
            data = clean(data)[0]
        for old in one + two:
            changes[f"{stored}/{old.name}"] = None
        changes[stored + SOURCE_MAP] = None  # the merged copy is no function of either file
        for piece in chunks.cut(data):
            changes[f"{stored}/{piece.name}"] = repo.create_blob(piece.data)
    return changes


def _message(ours: pygit2.Commit, theirs: pygit2.Commit, device: str,
             conflicts: list[str]) -> str:
    other = entry(theirs).trailers.get(Trailer.DEVICE, "unknown")
    body = [f"Both versions of {path} were kept, one after the other: review and combine them."
            for path in conflicts]
    trailers = [(Trailer.EVENT, "merge"), (Trailer.DEVICE, device),
                (Trailer.MERGED_DEVICE, other), (Trailer.MERGED, str(theirs.id))]
    if conflicts:
        trailers.append((Trailer.CONFLICTS, ", ".join(conflicts)))
    return format_message(f"merge: {device} <- {other}", body, trailers)
