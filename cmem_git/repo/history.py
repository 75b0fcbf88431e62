"""Reading history back: commits and their trailers.

Every commit cmem makes carries `Cmem-*` trailers (event, session, device, sizes), so questions
like "what happened since the last session document" are answered from commits and refs, never
from marker files or from timestamps inside transcripts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pygit2

from .entries import (
    BOUNDARIES,
    DISCARD,
    DOCUMENT,
    EVENTS,
    FRESH_START,
    Entry,
    Filter,
    describe,
    plural,
    select,
    size_text,
)

# What the rest of the package imports from here (Entry and its helpers live in entries.py,
# where `cmem log` reads them without pygit2).
__all__ = ["BOUNDARIES", "DISCARD", "DOCUMENT", "EVENTS", "FRESH_START", "ORDER", "Entry",
           "Filter", "describe", "entry", "format_message", "last_for_session", "log",
           "plural", "since_document", "size_text", "touches", "walk"]

# git log's own order: newest first, a commit only after the children that led to it. libgit2's
# TIME sort misorders the many commits hooks make within one second (and those of a machine
# whose clock runs ahead); TOPOLOGICAL must read all history before the first commit.
ORDER = pygit2.enums.SortMode.NONE


def format_message(subject: str, body: list[str], trailers: list[tuple[str, str]]) -> str:
    parts = [subject, ""]
    if body:
        parts += body + [""]
    parts += [f"{key}: {value}" for key, value in trailers]
    return "\n".join(parts) + "\n"


def entry(commit: pygit2.Commit) -> Entry:
    subject = commit.message.split("\n", 1)[0]
    return Entry(commit.id, commit.commit_time, subject, dict(commit.message_trailers))


def walk(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int,
         hide: pygit2.Oid | None = None) -> Iterator[Entry]:
    """Newest first, at most `limit` commits; none that `hide` reaches (git's A..B)."""
    if tip is None:
        return
    walker = repo.walk(tip, ORDER)
    if hide is not None:
        walker.hide(hide)
    for count, commit in enumerate(walker):
        if count >= limit:
            return
        yield entry(commit)


def since_document(repo: pygit2.Repository, tip: pygit2.Oid | None,
                   limit: int = 1000) -> tuple[Entry | None, list[Entry]]:
    """(the last boundary: a session document, discard or fresh start; the commits after it),
    newest first. Kept between calls (recent.py), so only commits made since are read."""
    from . import recent

    return recent.since_document(repo, tip, limit, lambda: _since_document(repo, tip, limit))


def _since_document(repo: pygit2.Repository, tip: pygit2.Oid | None,
                    limit: int) -> tuple[Entry | None, list[Entry]]:
    after: list[Entry] = []
    for item in walk(repo, tip, limit):
        if item.event in BOUNDARIES:
            return item, after
        after.append(item)
    return None, after


def last_for_session(repo: pygit2.Repository, tip: pygit2.Oid | None, session_id: str,
                     limit: int = 200) -> Entry | None:
    return next((e for e in walk(repo, tip, limit) if e.session == session_id), None)


_EVERY = Filter()


def log(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int | None,
        wanted: Filter = _EVERY, hide: pygit2.Oid | None = None) -> list[Entry]:
    """Commits newest first that pass `wanted`; the walk stops at the first commit older than
    `since`, as git's does."""
    touched = (lambda item: touches(repo, item.id, wanted.paths)) if wanted.paths else None
    return select(walk(repo, tip, 10 ** 9, hide), limit, wanted, touched)


def touches(repo: pygit2.Repository, commit_id: pygit2.Oid | str, paths: tuple[str, ...]) -> bool:
    """Whether the commit changed anything at or under one of `paths` (against its first
    parent, as `git log -- PATH` follows the first parent's side)."""
    commit = repo[commit_id]
    assert isinstance(commit, pygit2.Commit)
    parent = commit.parents[0].tree if commit.parents else None
    return any(_object_id(commit.tree, path) != _object_id(parent, path) for path in paths)


def _object_id(tree: pygit2.Tree | None, path: str) -> pygit2.Oid | None:
    path = path.strip("/")
    if tree is None:
        return None
    if not path:
        return tree.id
    try:
        return tree[path].id
    except KeyError:
        return None
