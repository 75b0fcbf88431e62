"""Asking the search index: what `cmem search` and the MCP server's `search` tool answer.

A query is an exact phrase: FTS5's trigram tokenizer turns it into consecutive trigrams, so a
match is the phrase as a substring of a record's text, whitespace and punctuation included. The
index folds case; without `ignore_case` the hit is checked again against the exact text (SQL's
`instr`, in C). A phrase of fewer than three characters has no trigram and is scanned with LIKE.
Hits come ranked by BM25, the newest first among equals, with a snippet around the match and,
on request, the records around it in the same file.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..capture.layout import ROOT
from .output import paint, when
from .transcript import snippet

if TYPE_CHECKING:
    from .search import Match

_TRIGRAM = 3


@dataclass(frozen=True)
class Ask:
    text: str
    ignore_case: bool = False
    session: str | None = None  # a prefix is enough
    since: float | None = None  # commit time of the commit that first stored the record
    until: float | None = None
    kinds: tuple[str, ...] = ()
    limit: int | None = 50
    context: int = 0  # neighbouring records (or lines) of the same file to add to each hit


@dataclass(frozen=True)
class Nearby:
    line: int
    kind: str
    text: str


@dataclass(frozen=True)
class Hit:
    session: str | None
    file: str
    line: int
    kind: str
    commit: str
    time: int  # when cmem first stored it (commit time)
    stamp: str | None  # the record's own timestamp, for display only
    body: str
    snippet: str
    span: tuple[int, int]  # where the match is in `snippet`
    nearby: tuple[Nearby, ...] = ()


_COLUMNS = "r.id, r.session, r.file, r.line, r.kind, c.oid, r.time, r.stamp, r.body"


def find(db: sqlite3.Connection, ask: Ask) -> list[Hit]:
    sql, values = _query(ask)
    rows = db.execute(sql, values).fetchall()
    return [_hit(db, row, ask) for row in rows]


def _query(ask: Ask) -> tuple[str, list[Any]]:
    where, values = _filters(ask)
    if len(ask.text) >= _TRIGRAM:
        head = (f"SELECT {_COLUMNS} FROM fts JOIN rec r ON r.id = fts.rowid "
                "JOIN commits c ON c.id = r.commit_id WHERE fts MATCH ?")
        order = "bm25(fts), r.time DESC, r.id DESC"
        values.insert(0, '"' + ask.text.replace('"', '""') + '"')
    else:
        head = (f"SELECT {_COLUMNS} FROM rec r JOIN commits c ON c.id = r.commit_id "
                "WHERE r.body LIKE ? ESCAPE '\\'")
        order = "r.time DESC, r.id DESC"
        values.insert(0, "%" + re.sub(r"([%_\\])", r"\\\1", ask.text) + "%")
    limit = f" LIMIT {int(ask.limit)}" if ask.limit else ""
    return f"{head}{''.join(' AND ' + w for w in where)} ORDER BY {order}{limit}", values


def _filters(ask: Ask) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    values: list[Any] = []
    if not ask.ignore_case:
        where.append("instr(r.body, ?) > 0")
        values.append(ask.text)
    if ask.session:
        where.append("substr(r.session, 1, ?) = ?")
        values += [len(ask.session), ask.session]
    if ask.since is not None:
        where.append("r.time >= ?")
        values.append(int(ask.since))
    if ask.until is not None:
        where.append("r.time <= ?")
        values.append(int(ask.until))
    if ask.kinds:
        where.append(f"r.kind IN ({', '.join('?' * len(ask.kinds))})")
        values += list(ask.kinds)
    return where, values


def _hit(db: sqlite3.Connection, row: tuple[Any, ...], ask: Ask) -> Hit:
    rowid, session, file, line, kind, commit, when, stamp, body = row
    found = re.search(re.escape(ask.text), body, re.IGNORECASE if ask.ignore_case else 0)
    if found is None:  # Unicode case folding differs between SQLite and Python
        found = re.match("", body)
    assert found is not None
    text, span = snippet(body, found)
    nearby = _nearby(db, rowid, file, line, ask.context) if ask.context else ()
    return Hit(session, file, line, kind, commit, when, stamp, body, text, span, nearby)


def _nearby(db: sqlite3.Connection, rowid: int, file: str, line: int,
            count: int) -> tuple[Nearby, ...]:
    """The records around a hit in its file: the first version of each line, hit excluded."""
    rows = db.execute("SELECT line, kind, body FROM rec WHERE id IN (SELECT min(id) FROM rec "
                      "WHERE file = ? AND line BETWEEN ? AND ? AND line != ? GROUP BY line, kind)"
                      " ORDER BY line, id", (file, line - count, line + count, line)).fetchall()
    return tuple(Nearby(*item) for item in rows)


def stats(db: sqlite3.Connection) -> dict[str, int]:
    """How much the index holds."""
    records, sessions = db.execute("SELECT count(*), count(DISTINCT session) FROM rec").fetchone()
    commits = db.execute("SELECT count(*) FROM commits").fetchone()[0]
    return {"records": records, "sessions": sessions, "commits": commits}


def from_scan(match: Match) -> Hit:
    """A match of the scanning search (--regex) in the index's terms."""
    kind = match.role
    if kind == "document":
        kind = "doc" if match.file.startswith("sessions/") else "memory"
    return Hit(match.session, match.file, match.line, kind, match.commit, match.stored,
               match.timestamp, match.rendered() or match.context, match.context, match.span)


# --- for people and scripts ----------------------------------------------------------------

def as_json(hit: Hit) -> dict[str, Any]:
    return {"session": hit.session, "file": hit.file, "line": hit.line, "kind": hit.kind,
            "stored": hit.time, "commit": hit.commit, "timestamp": hit.stamp,
            "context": hit.snippet, "match": hit.snippet[hit.span[0]:hit.span[1]],
            "text": hit.body, "nearby": [vars(n) for n in hit.nearby]}


def as_text(hit: Hit, relative: bool, colour: bool) -> str:
    """One line: session, time, kind, file:line, the snippet with the match highlighted; then
    the nearby records, indented."""
    session = (hit.session or "-")[:8]
    shown = hit.stamp[:19] + "Z" if hit.stamp and len(hit.stamp) >= 19 \
        else when(hit.time, relative)
    file = short_file(hit.file, hit.session)
    low, high = hit.span
    text = hit.snippet[:low] + paint(hit.snippet[low:high], "red", colour) + hit.snippet[high:]
    lines = [f"{paint(session, 'yellow', colour)} {paint(shown, 'green', colour)} "
             f"{paint(f'{hit.kind:<9}', 'cyan', colour)} {file}:{hit.line}  {text}"]
    for near in hit.nearby:
        lines.append(paint(f"    {near.line:>6} {near.kind:<9} {_line(near.text)}", "dim", colour))
    return "\n".join(lines)


def _line(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def short_file(path: str, session: str | None) -> str:
    prefix = f"{ROOT}/{session}/"
    return path[len(prefix):] if session and path.startswith(prefix) else path
