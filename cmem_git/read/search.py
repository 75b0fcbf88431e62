"""Search every transcript and document the memory's history holds.

Claude Code deletes transcripts, a compaction or a rewrite replaces a transcript's text, and the
memory files change with every session; history keeps all of it. So the search walks every commit,
oldest first, and reads each blob once: a tree already seen is skipped whole (a commit usually
changes one session's last chunk), and a blob is scanned the first time it turns up, so the time
shown for a match is when cmem first stored it (the record's own `timestamp` is shown beside it,
never used to filter: SPEC, times come from commits).

Each blob's raw bytes are searched first (matching.py); only the lines hit are parsed, and the
pattern is then checked against the record's text, which gives its role and the context shown.
A record appears in several blobs when its file grows (the old and new last chunk) or is
rewritten, so matches are deduplicated by (session, line bytes); a document's by (path, line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pygit2
from pygit2.enums import SortMode

from ..capture.backup import ROOT
from ..repo.store import Store
from . import render
from .matching import Hit, Matcher, scan
from .transcript import Where, pieces, place, snippet

ROLES = ("user", "assistant", "tool")


@dataclass(frozen=True)
class Query:
    pattern: str
    regex: bool = False
    ignore_case: bool = False
    session: str | None = None  # a prefix is enough
    since: float | None = None  # only what was first stored at or after this time
    role: str | None = None  # user, assistant or tool


@dataclass(frozen=True)
class Match:
    session: str | None
    file: str  # the path in the repository (a transcript's stored folder, not its chunk)
    line: int  # 1-based, in that file as of the commit that first stored it
    role: str  # user, assistant, tool, summary, system, meta or document
    stored: int  # commit time of the commit that first stored the line
    commit: str
    timestamp: str | None  # the record's own, for display only
    context: str
    span: tuple[int, int]  # where the match is in `context`
    line_bytes: bytes

    def rendered(self) -> str | None:
        """The whole record as `cmem diff` shows it."""
        if not self.file.endswith(".jsonl"):
            return self.line_bytes.decode("utf-8", "replace")
        return render.record(self.line_bytes)


@dataclass(frozen=True)
class _Blob:
    path: str
    oid: pygit2.Oid
    commit: pygit2.Commit


def search(store: Store, query: Query) -> Iterator[Match]:
    """Matches in the order their lines were first stored, oldest first."""
    tip = store.tip()
    if tip is None:
        return
    matcher = Matcher(query.pattern, query.regex, query.ignore_case)
    blobs = list(_blobs(store.repo, tip.id, query))
    places = [place(blob.path) for blob in blobs]
    hits = scan(str(store.gitdir), [(b.oid, w.records) for b, w in zip(blobs, places)], matcher)
    seen: set[tuple[str | None, bytes]] = set()
    for blob, where, lines in zip(blobs, places, hits):
        yield from _matches(blob, where, lines, matcher, query, seen)


# --- which blobs ---------------------------------------------------------------------------

def _blobs(repo: pygit2.Repository, tip: pygit2.Oid, query: Query) -> Iterator[_Blob]:
    """Each blob worth searching once, with the oldest commit that holds it."""
    seen: set[pygit2.Oid] = set()  # trees and blobs: a tree seen holds nothing new
    order = SortMode.TOPOLOGICAL | SortMode.TIME | SortMode.REVERSE
    for commit in repo.walk(tip, order):
        for path, oid in _new_blobs(repo, commit.tree, "", seen, query):
            yield _Blob(path, oid, commit)


def _new_blobs(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str, seen: set[pygit2.Oid],
               query: Query) -> Iterator[tuple[str, pygit2.Oid]]:
    seen.add(tree.id)
    for entry in tree:
        if entry.id in seen:
            continue  # most of a commit's tree is its parent's
        path = prefix + (entry.name or "")
        if entry.type_str == "tree" and _wanted_folder(path, query):
            inner = repo[entry.id]
            assert isinstance(inner, pygit2.Tree)
            yield from _new_blobs(repo, inner, path + "/", seen, query)
        elif entry.type_str == "blob" and _wanted_file(path, query):
            seen.add(entry.id)
            yield path, entry.id


def _wanted_folder(path: str, query: Query) -> bool:
    """With --session, only that session's transcript folder (other JSONL files are checked
    record by record)."""
    parts = path.split("/")
    if len(parts) == 2 and parts[0] == ROOT and query.session is not None:
        return parts[1].startswith(query.session)
    return True


def _wanted_file(path: str, query: Query) -> bool:
    if path.startswith(ROOT + "/"):
        return True
    if path.endswith(".jsonl"):
        return True
    return path.endswith(".md") and query.session is None and query.role is None


# --- one blob ------------------------------------------------------------------------------

def _matches(blob: _Blob, where: Where, lines: list[Hit], matcher: Matcher, query: Query,
             seen: set[tuple[str | None, bytes]]) -> Iterator[Match]:
    """The lines of one blob that really match, each line once across the whole history. A
    line first stored before --since is remembered but not shown, so that a later blob holding
    it again (a grown last chunk) does not show it either."""
    late = query.since is None or blob.commit.commit_time >= query.since
    for number, line in lines:
        found = _record_match(line, where, matcher, query) if where.records else \
            _text_match(line, where, matcher, query)
        if found is None:
            continue
        key = (found[0], line) if where.records else (where.file, line)
        if key not in seen:
            seen.add(key)
            if late:
                yield _match(blob, where, number, line, found)


_Found = tuple[str | None, str, str, tuple[int, int], str | None]  # session, role, context, span, ts


def _record_match(line: bytes, where: Where, matcher: Matcher, query: Query) -> _Found | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return _plain(line.decode("utf-8", "replace"), where.session, "meta", matcher, query)
    if not isinstance(record, dict):
        return None
    session = where.session or _str(record.get("sessionId"))
    if query.session is not None and not (session or "").startswith(query.session):
        return None
    for role, text in pieces(record):
        if query.role is not None and role != query.role:
            continue
        hit = matcher.text.search(text)
        if hit is not None:
            context, span = snippet(text, hit)
            return session, role, context, span, _str(record.get("timestamp"))
    return None


def _text_match(line: bytes, where: Where, matcher: Matcher, query: Query) -> _Found | None:
    role = "tool" if where.session is not None else "document"
    return _plain(line.decode("utf-8", "replace"), where.session, role, matcher, query)


def _plain(text: str, session: str | None, role: str, matcher: Matcher,
           query: Query) -> _Found | None:
    if query.role is not None and role != query.role:
        return None
    hit = matcher.text.search(text)
    if hit is None:
        return None
    context, span = snippet(text, hit)
    return session, role, context, span, None


def _match(blob: _Blob, where: Where, number: int, line: bytes, found: _Found) -> Match:
    session, role, context, span, timestamp = found
    return Match(session, where.file, where.line + number + 1, role, blob.commit.commit_time,
                 str(blob.commit.id), timestamp, context, span, line)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
