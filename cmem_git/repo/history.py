"""Reading history back: commits and their trailers.

Every commit cmem makes carries `Cmem-*` trailers (event, session, device, sizes), so questions
like "what happened since the last session document" are answered from commits and refs, never
from marker files or from timestamps inside transcripts.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pygit2

from .trailers import Trailer

DOCUMENT = "document"
DISCARD = "discard"
FRESH_START = "fresh-start"
# Commits after which earlier backups no longer count as pending.
BOUNDARIES = (DOCUMENT, DISCARD, FRESH_START)
# git log's own order: newest first, a commit only after the children that led to it. libgit2's
# TIME sort misorders the many commits hooks make within one second (and those of a machine
# whose clock runs ahead); TOPOLOGICAL must read all history before the first commit.
ORDER = pygit2.enums.SortMode.NONE


@dataclass(frozen=True)
class Entry:
    id: pygit2.Oid
    time: int  # committer time, seconds since the epoch
    subject: str
    trailers: Mapping[str, str]

    @property
    def event(self) -> str | None:
        return self.trailers.get(Trailer.EVENT)

    @property
    def session(self) -> str | None:
        return self.trailers.get(Trailer.SESSION)

    def number(self, key: str) -> int:
        try:
            return int(self.trailers.get(key, "0"))
        except ValueError:
            return 0


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


# Every event cmem writes in `Cmem-Event`, for `cmem log --event` to check against.
EVENTS = ("init", "session-start", "pre-compact", "session-end", "stop", DOCUMENT, DISCARD,
          FRESH_START, "fresh-start-save", "import", "sync", "merge")


@dataclass(frozen=True)
class Filter:
    session: str | None = None  # a prefix is enough
    event: str | None = None
    since: float | None = None
    until: float | None = None
    paths: tuple[str, ...] = ()  # only commits that changed one of these (git log -- PATH)

    def accepts(self, item: Entry) -> bool:
        return ((self.session is None or (item.session or "").startswith(self.session))
                and (self.event is None or item.event == self.event)
                and (self.until is None or item.time <= self.until))


def log(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int | None,
        wanted: Filter = Filter(), hide: pygit2.Oid | None = None) -> list[Entry]:
    """Commits newest first that pass `wanted`; the walk stops at the first commit older than
    `since`, as git's does."""
    found: list[Entry] = []
    for item in walk(repo, tip, 10 ** 9, hide):
        if limit is not None and len(found) >= limit:
            break
        if wanted.since is not None and item.time < wanted.since:
            break
        if wanted.accepts(item) and (not wanted.paths or touches(repo, item.id, wanted.paths)):
            found.append(item)
    return found


def touches(repo: pygit2.Repository, commit_id: pygit2.Oid, paths: tuple[str, ...]) -> bool:
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


def unknown_filter(repo: pygit2.Repository, tip: pygit2.Oid | None,
                   wanted: Filter) -> str | None:
    """Why `wanted` can never match, when it names a session or an event no commit has."""
    sessions, events = set(), set(EVENTS)
    for item in walk(repo, tip, 10 ** 9):
        sessions.add(item.session or "")
        events.add(item.event or "")
    if wanted.session is not None and not any(s.startswith(wanted.session)
                                               for s in sessions if s):
        return f"no session matches {wanted.session!r}"
    if wanted.event is not None and wanted.event not in events:
        return f"unknown event {wanted.event!r}"
    return None


def describe(item: Entry) -> str:
    """What a commit changed, in words."""
    if item.event == DOCUMENT:
        return f"session document {item.trailers.get(Trailer.TITLE, item.subject)!r}"
    parts = []
    if Trailer.ADDED_LINES in item.trailers:
        parts.append(f"+{plural(item.number(Trailer.ADDED_LINES), 'record')}, "
                     f"{size_text(item.number(Trailer.ADDED_BYTES))}")
    if Trailer.REWRITTEN in item.trailers:
        parts.append(f"rewritten {item.trailers[Trailer.REWRITTEN]}")
    if Trailer.MEMORY in item.trailers:
        parts.append(item.trailers[Trailer.MEMORY])
    return ", ".join(parts) or item.subject


def size_text(count: int, signed: bool = True) -> str:
    sign = ("+" if count >= 0 else "-") if signed else ""
    count = abs(count)
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{sign}{count / size:.1f} {unit}"
    return f"{sign}{count} B"


def plural(count: int, word: str, words: str | None = None) -> str:
    """`1 record`, `2 records`."""
    return f"{count} {word if count == 1 else (words or word + 's')}"
