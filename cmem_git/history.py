"""Reading history back: commits and their trailers.

Every commit cmem makes carries `Cmem-*` trailers (event, session, device, sizes), so questions
like "what happened since the last session document" are answered from commits and refs, never
from marker files or from timestamps inside transcripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Mapping

import pygit2

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
        return self.trailers.get("Cmem-Event")

    @property
    def session(self) -> str | None:
        return self.trailers.get("Cmem-Session")

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


def walk(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int) -> Iterator[Entry]:
    """Newest first, at most `limit` commits."""
    if tip is None:
        return
    for count, commit in enumerate(repo.walk(tip, ORDER)):
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


@dataclass(frozen=True)
class Filter:
    session: str | None = None  # a prefix is enough
    event: str | None = None
    since: float | None = None
    until: float | None = None

    def accepts(self, item: Entry) -> bool:
        return ((self.session is None or (item.session or "").startswith(self.session))
                and (self.event is None or item.event == self.event)
                and (self.until is None or item.time <= self.until))


def log(repo: pygit2.Repository, tip: pygit2.Oid | None, limit: int | None,
        wanted: Filter = Filter()) -> list[Entry]:
    """Commits newest first that pass `wanted`; the walk stops at the first commit older than
    `since`, as git's does."""
    found: list[Entry] = []
    for item in walk(repo, tip, 10 ** 9):
        if limit is not None and len(found) >= limit:
            break
        if wanted.since is not None and item.time < wanted.since:
            break
        if wanted.accepts(item):
            found.append(item)
    return found


def describe(item: Entry) -> str:
    """What a commit changed, in words."""
    if item.event == DOCUMENT:
        return f"session document {item.trailers.get('Cmem-Title', item.subject)!r}"
    parts = []
    if "Cmem-Added-Lines" in item.trailers:
        parts.append(f"+{item.number('Cmem-Added-Lines')} records, "
                     f"{size_text(item.number('Cmem-Added-Bytes'))}")
    if "Cmem-Rewritten" in item.trailers:
        parts.append(f"rewritten {item.trailers['Cmem-Rewritten']}")
    if "Cmem-Memory" in item.trailers:
        parts.append(item.trailers["Cmem-Memory"])
    return ", ".join(parts) or item.subject


def size_text(count: int, signed: bool = True) -> str:
    sign = ("+" if count >= 0 else "-") if signed else ""
    count = abs(count)
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return f"{sign}{count / size:.1f} {unit}"
    return f"{sign}{count} B"
