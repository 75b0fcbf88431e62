"""A commit as history reads it (id, time, subject, trailers), and what `cmem log` does with a
stream of them: filter, cut, describe. The standard library only.

history.py makes entries from libgit2's commits; quicklog.py makes the same entries from
`git log`'s output, so that `cmem log` can answer without loading pygit2 (issue 13: 150 ms
whole process, where importing pygit2 alone costs most of that). Both hand their stream to the
functions here, so the two paths cannot drift apart in what they keep or print.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import UsageProblem
from .trailers import Trailer

if TYPE_CHECKING:
    from pygit2 import Oid

DOCUMENT = "document"
DISCARD = "discard"
FRESH_START = "fresh-start"
# Commits after which earlier backups no longer count as pending.
BOUNDARIES = (DOCUMENT, DISCARD, FRESH_START)
# Every event cmem writes in `Cmem-Event`, for `cmem log --event` to check against.
EVENTS = ("init", "session-start", "pre-compact", "session-end", "stop", DOCUMENT, DISCARD,
          FRESH_START, "fresh-start-save", "import", "sync", "merge")


@dataclass(frozen=True)
class Entry:
    id: Oid | str  # libgit2's id, or its hex where `git log` read the commit
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


def select(items: Iterable[Entry], limit: int | None, wanted: Filter,
           touches: Callable[[Entry], bool] | None = None) -> list[Entry]:
    """The entries of a newest-first stream that pass `wanted`, at most `limit`; the stream is
    left at the first entry older than `since`, as git's walk is. `touches` decides `paths`."""
    found: list[Entry] = []
    for item in items:
        if limit is not None and len(found) >= limit:
            break
        if wanted.since is not None and item.time < wanted.since:
            break
        if wanted.accepts(item) and (touches is None or touches(item)):
            found.append(item)
    return found


def check_filter(items: Iterable[Entry], wanted: Filter) -> None:
    """An empty log because of a misspelt session or event is an error, not silence: `items`
    is all of history."""
    sessions, events = set(), set(EVENTS)
    for item in items:
        sessions.add(item.session or "")
        events.add(item.event or "")
    problem = None
    if wanted.session is not None and not any(s.startswith(wanted.session)
                                               for s in sessions if s):
        problem = f"no session matches {wanted.session!r}"
    elif wanted.event is not None and wanted.event not in events:
        problem = f"unknown event {wanted.event!r}"
    if problem is not None:
        raise UsageProblem(problem, hint="`cmem log --oneline` lists sessions (third column) "
                           "and events (second); events: " + ", ".join(EVENTS))


def as_json(item: Entry) -> dict[str, Any]:
    return {"commit": str(item.id), "time": item.time, "subject": item.subject,
            "event": item.event, "session": item.session, "summary": describe(item),
            "trailers": dict(item.trailers)}


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
