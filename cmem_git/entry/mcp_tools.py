"""The tools `cmem mcp` serves (mcp_server.py speaks the protocol).

The tools answer from the repository and the search index as they are at the moment of the call,
so a session committed a minute ago by a hook is found. Every answer is text bounded to MAX_CHARS
(Claude Code warns above 10,000 tokens of tool output and it all costs context) and says how to
ask for more. Each returns a plain string and takes the project folder, so that tests can call
them without a server too; a CmemError is an answer Claude can act on.
"""

from __future__ import annotations

from pathlib import Path

from .. import paths
from ..capture.backup import MAIN, ROOT
from ..errors import CmemError
from ..git import chunks
from ..git.trees import subtree
from ..read import docs, recall, render, revisions, search_index, times
from ..read.output import when
from ..read.reading import session_id
from ..repo.history import Filter, describe
from ..repo.history import log as history_log
from ..repo.store import Store
from .mcp_server import MAX_CHARS, MAX_HITS, MAX_RECORDS

_NOTE_ROOM = 200


def _store(project: Path) -> Store:
    return Store.open(paths.memory_dir(project))


def _bounded(parts: list[str], more: str) -> str:
    """Join `parts` while they fit in MAX_CHARS (less room for the note); say what was left
    out and how to get it."""
    out: list[str] = []
    size = 0
    for index, part in enumerate(parts):
        if size + len(part) + 1 > MAX_CHARS - _NOTE_ROOM:
            out.append(f"… {len(parts) - index} more not shown ({more})")
            break
        out.append(part)
        size += len(part) + 1
    return "\n".join(out)


def search(project: Path, query: str, session: str | None = None, kind: str | None = None,
           since: str | None = None, until: str | None = None, limit: int = 10,
           ignore_case: bool = True) -> str:
    store = _store(project)
    ask = recall.Ask(query, ignore_case, session, _time(since), _time(until),
                     (kind,) if kind else (), min(max(limit, 1), MAX_HITS) + 1)
    hits = search_index.read(store, lambda db: recall.find(db, ask))
    if not hits:
        return f"no match for {query!r}" + (" with these filters" if session or kind or since
                                            or until else "")
    shown = hits[:ask.limit - 1 if ask.limit else None]
    parts = [_hit_text(hit) for hit in shown]
    if len(hits) > len(shown):
        parts.append(f"(more hits: raise limit, at most {MAX_HITS}, or narrow with session, "
                     "kind, since or until)")
    return _bounded(parts, "narrow the search or lower limit")


def _hit_text(hit: recall.Hit) -> str:
    where = recall.short_file(hit.file, hit.session)
    unit = "record" if hit.file.endswith(".jsonl") else "line"
    return (f"- session {hit.session or '-'} · {when(hit.time, False)} · {hit.kind} · "
            f"{where} {unit} {hit.line} · commit {hit.commit[:10]}\n  {hit.snippet}")


def _time(text: str | None) -> float | None:
    return times.parse_time(text) if text else None


def show(project: Path, session: str, line: int = 1, count: int = 5, file: str = MAIN,
         commit: str | None = None) -> str:
    """Records `line` .. `line + count - 1` of a session's file, rendered for reading."""
    store = _store(project)
    at = revisions.resolve(store, commit or "HEAD")
    sid = session_id(store, at, session)
    listing = chunks.listing(store.repo, subtree(at.tree, f"{ROOT}/{sid}/{file}"))
    if not listing:
        raise CmemError(f"session {sid} has no {file} in {str(at.id)[:8]}",
                        hint="the file names are in search hits (e.g. subagents/agent-x.jsonl)")
    count = min(max(count, 1), MAX_RECORDS)
    records = _lines(store, listing, max(line, 1) - 1, count)
    parts = [f"session {sid} · {file} · as of commit {str(at.id)[:10]}"]
    for number, data in records:
        text = render.record(data) if file.endswith(".jsonl") else data.decode("utf-8", "replace")
        parts.append(f"[record {number}] {text or '(nothing to show in this record)'}")
    if not records:
        parts.append(f"no record {line}: the file has fewer")
    text = _bounded(parts, "show fewer records")
    shown = text.count("\n[record ")
    if records:
        text += f"\n(next: show with line={records[0][0] + max(shown, 1)})"
    return text


def _lines(store: Store, listing: list[chunks.Chunk], start: int,
           count: int) -> list[tuple[int, bytes]]:
    """(1-based line number, line) for `count` lines from 0-based line `start`, reading only
    the chunks that hold them (chunk names carry their first line number)."""
    first = max((i for i, c in enumerate(listing) if c.line <= start), default=0)
    found: list[tuple[int, bytes]] = []
    for chunk in listing[first:]:
        lines = chunks.blob_data(store.repo, chunk.oid).split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for offset, data in enumerate(lines):
            number = chunk.line + offset
            if number >= start:
                found.append((number + 1, data))
            if len(found) >= count:
                return found
    return found


def log(project: Path, limit: int = 20, session: str | None = None,
        event: str | None = None) -> str:
    store = _store(project)
    tip = store.tip()
    entries = history_log(store.repo, tip.id if tip else None, min(max(limit, 1), 100),
                          Filter(session, event, None, None))
    parts = [f"{str(e.id)[:10]} {when(e.time, False)} {e.event or 'commit'} "
             f"session {e.session or '-'}: {describe(e)}" for e in entries]
    return _bounded(parts or ["no commits"], "lower limit or filter by session or event")


def resume(project: Path, max_chars: int = MAX_CHARS) -> str:
    return docs.resume(_store(project), min(max(max_chars, 500), MAX_CHARS))
