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
    for count, commit in enumerate(repo.walk(tip, pygit2.GIT_SORT_TIME)):
        if count >= limit:
            return
        yield entry(commit)


def since_document(repo: pygit2.Repository, tip: pygit2.Oid | None,
                   limit: int = 1000) -> tuple[Entry | None, list[Entry]]:
    """(the last session document's commit, the commits after it), newest first."""
    after = []
    for item in walk(repo, tip, limit):
        if item.event == DOCUMENT:
            return item, after
        after.append(item)
    return None, after


def last_for_session(repo: pygit2.Repository, tip: pygit2.Oid | None, session_id: str,
                     limit: int = 200) -> Entry | None:
    return next((e for e in walk(repo, tip, limit) if e.session == session_id), None)
