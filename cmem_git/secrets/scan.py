"""Secrets already in history: repositories made before redaction was on, or with it off.

`cmem scan` reads every blob reachable from the commits in a range once (a blob shared by many
commits is one blob), and `cmem push` scans what the remote does not have yet, so pushing stays
proportional to what is new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pygit2

from ..git.chunks import CHUNK_NAME
from ..git.trees import tree_diff
from ..repo.history import ORDER

if TYPE_CHECKING:
    from .redact import Redactor


@dataclass(frozen=True)
class Hit:
    commit: str
    path: str
    line: int
    rule: str
    preview: str


def scan(repo: pygit2.Repository, tip: pygit2.Oid, hide: pygit2.Oid | None,
         redactor: Redactor) -> list[Hit]:
    """Findings in the blobs the commits from `tip` back to (not including) `hide` added."""
    hits: list[Hit] = []
    seen: set[pygit2.Oid] = set()
    walker = repo.walk(tip, ORDER | pygit2.enums.SortMode.REVERSE)
    if hide is not None:
        walker.hide(hide)
    for commit in walker:
        for path, oid in _added(repo, commit):
            if oid in seen:
                continue
            seen.add(oid)
            blob = repo[oid]
            assert isinstance(blob, pygit2.Blob)
            file, first_line = _place(path)
            hits += [Hit(str(commit.id), file, first_line + f.line, f.rule, f.preview)
                     for f in redactor.findings(bytes(blob.data))]
    return hits


def _place(path: str) -> tuple[str, int]:
    """A chunk's path -> (the stored file, its first line number); other paths stay."""
    folder, _, name = path.rpartition("/")
    match = CHUNK_NAME.match(name)
    return (folder, int(match[2])) if match else (path, 0)


def _added(repo: pygit2.Repository, commit: pygit2.Commit) -> Iterator[tuple[str, pygit2.Oid]]:
    """Blobs this commit brings that none of its parents has at that path: for a merge, what
    the merge itself wrote, not what the other side already had (and pushed, or scanned)."""
    parents: list[pygit2.Tree | None] = [p.tree for p in commit.parents] or [None]
    sides = [{(d.new_file.path, d.new_file.id) for d in tree_diff(tree, commit.tree).deltas
              if d.status != pygit2.GIT_DELTA_DELETED} for tree in parents]
    yield from sorted(set.intersection(*sides))
