"""A full-text index of everything the memory's history holds, derived from it and never committed.

Scanning every blob of history on each search costs seconds on a year of sessions (issue 15:
6.2-6.7 s over 1 GiB), so `cmem search` and the MCP server read an SQLite FTS5 index with the
trigram tokenizer (Python's own sqlite3, no new dependency): a phrase is then an exact substring,
found through the index in milliseconds. The index lives in `.git/cmem/index.sqlite`, outside
what git tracks or pushes, and it is only a cache: whatever happens to it (deleted, corrupt, an
older schema, a history rewritten by a purge) it is rebuilt from the commits, never an error.

It is brought up to date from the commits it has not seen yet, oldest first, before every
search; a hook may do the same after its commit when that is cheap. Each commit contributes the
blobs it adds, each blob once; within a transcript a record is stored again whenever its last
chunk grows, so records are deduplicated by (session, bytes) and keep the commit that first
stored them, as the scanning search (search.py) does. Rows are one per record and kind (a
Claude reply with text and a tool call is an `assistant` row and a `tool` row), so --kind needs
no parsing at query time.

Concurrency: an flock beside the database. Readers hold it shared; whoever must write (an update
or a rebuild) holds it exclusively, so nobody reads a file while it is replaced. A full build is
written to a temporary file and renamed into place, so a process killed mid-build leaves the old
index (or none), and an update is one SQLite transaction, so a kill rolls it back.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pygit2

from ..capture.backup import ROOT, SOURCE_MAP
from ..errors import LockTimeout
from ..git.trees import tree_diff
from ..repo.store import Store
from . import index_file
from .index_file import LOCK_WAIT as LOCK_WAIT
from .index_file import NAME as NAME
from .index_file import VERSION as VERSION
from .index_file import connect as _connect
from .index_file import state as _state
from .transcript import pieces, place

KINDS = ("user", "assistant", "tool", "summary", "system", "doc", "memory")
_BATCH = 2000  # rows per executemany

Progress = Callable[[int, int, str], None]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE commits(id INTEGER PRIMARY KEY, oid TEXT NOT NULL, time INTEGER NOT NULL);
CREATE TABLE blobs(oid BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE lines(key BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE rec(id INTEGER PRIMARY KEY, body TEXT NOT NULL, kind TEXT NOT NULL,
                 session TEXT, file TEXT NOT NULL, line INTEGER NOT NULL,
                 commit_id INTEGER NOT NULL, time INTEGER NOT NULL, stamp TEXT);
CREATE INDEX rec_place ON rec(file, line);
CREATE VIRTUAL TABLE fts USING fts5(body, content='rec', content_rowid='id',
                                    tokenize='trigram');
"""


@dataclass(frozen=True)
class Row:
    body: str
    kind: str
    session: str | None
    file: str
    line: int  # 1-based, in the file as of the commit that first stored it
    stamp: str | None  # the record's own timestamp, for display only


# --- the files: path, lock, connection (index_file.py, shared with the fast path) -----------

def path(store: Store) -> Path:
    return index_file.path(store.gitdir)


def _flock(store: Store, exclusive: bool, wait: float) -> AbstractContextManager[bool]:
    return index_file.flock(store.gitdir, exclusive, wait)


def _tip_id(store: Store) -> str | None:
    tip = store.tip()
    return str(tip.id) if tip is not None else None


# --- keeping it current ---------------------------------------------------------------------

@contextmanager
def current(store: Store, progress: Progress | None = None,
            wait: float = LOCK_WAIT) -> Iterator[sqlite3.Connection]:
    """A connection to an index that holds everything up to the branch's tip, held under the
    lock for as long as the caller reads."""
    tip = _tip_id(store)
    with _flock(store, False, wait) as shared:
        if not shared:
            raise LockTimeout(path(store), wait)
        db = index_file.usable(store.gitdir, tip)
        if db is not None:
            try:
                yield db
            finally:
                db.close()
            return
    with _flock(store, True, wait) as exclusive:
        if not exclusive:
            raise LockTimeout(path(store), wait)
        db = _brought_up_to_date(store, progress)
        try:
            yield db
        finally:
            db.close()


def read(store: Store, reader: Callable[[sqlite3.Connection], T],
         progress: Progress | None = None) -> T:
    """`reader` on a current index. A file damaged where the checks on opening do not look
    fails only when a query reaches it: it is then rebuilt and the query asked again."""
    try:
        with current(store, progress) as db:
            return reader(db)
    except sqlite3.DatabaseError:
        reindex(store, progress)
        with current(store, progress) as db:
            return reader(db)


def refresh_if_cheap(store: Store, limit: int) -> None:
    """For a hook after its commit: index the commits since the last update when the index
    exists, nobody holds its lock and they add at most `limit` bytes of blobs; otherwise leave
    it to the next search. Never raises: the index is a cache."""
    try:
        if not path(store).is_file():
            return
        with _flock(store, True, 0) as exclusive:
            if exclusive and _pending_bytes(store, limit) <= limit:
                _brought_up_to_date(store, None).close()
    except (sqlite3.Error, pygit2.GitError, OSError, ValueError):
        pass


def _pending_bytes(store: Store, limit: int) -> int:
    db = _connect(path(store))
    try:
        old = _state(db).get("tip")
    finally:
        db.close()
    tip = store.tip()
    if old is None or tip is None or not _descends(store.repo, tip.id, old):
        return limit + 1
    total = 0
    for commit in _new_commits(store.repo, tip.id, old):
        for _path, oid in _added(store.repo, commit):
            blob = store.repo[oid]
            assert isinstance(blob, pygit2.Blob)
            total += int(blob.size)
            if total > limit:
                return total
    return total


def reindex(store: Store, progress: Progress | None = None, wait: float = LOCK_WAIT) -> None:
    """Throw the index away and build it again from history."""
    with _flock(store, True, wait) as exclusive:
        if not exclusive:
            raise LockTimeout(path(store), wait)
        _rebuild(store, progress).close()


def _brought_up_to_date(store: Store, progress: Progress | None) -> sqlite3.Connection:
    """Under the exclusive lock: update in place when the index is sound and its tip is an
    ancestor of the branch's; rebuild it otherwise (missing, corrupt, old schema, rewritten
    history)."""
    tip = store.tip()
    try:
        db = _connect(path(store)) if path(store).is_file() else None
        state = _state(db) if db is not None else {}
        old = state.get("tip")
        if db is not None and state.get("version") == VERSION and old is not None:
            if tip is None and old == "":
                return db
            if tip is not None and (old == "" or _descends(store.repo, tip.id, old)):
                _update(db, store.repo, tip.id, old or None, progress)
                return db
        if db is not None:
            db.close()
    except sqlite3.DatabaseError:
        pass
    return _rebuild(store, progress)


def _descends(repo: pygit2.Repository, tip: pygit2.Oid, old: str) -> bool:
    try:
        old_id = pygit2.Oid(hex=old)
        return tip == old_id or bool(repo.descendant_of(tip, old_id))
    except (ValueError, KeyError, pygit2.GitError):
        return False


def _rebuild(store: Store, progress: Progress | None) -> sqlite3.Connection:
    """A new index in a temporary file, renamed over the old one (and its journal) when
    complete."""
    target = path(store)
    for stale in target.parent.glob(f"{NAME}.*.tmp"):  # builds killed midway (we hold the lock)
        stale.unlink()
    temp = target.with_name(f"{NAME}.{os.getpid()}.tmp")
    db = _connect(temp)
    # Nobody reads the temporary file and a crash leaves it unused: no journal, no syncs, and
    # a large page cache for FTS5's segment merges.
    db.executescript("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; "
                     "PRAGMA cache_size = -262144;" + _SCHEMA)
    db.executemany("INSERT INTO state VALUES (?, ?)", [("version", VERSION), ("tip", "")])
    tip = store.tip()
    if tip is not None:
        _update(db, store.repo, tip.id, None, progress)
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    for suffix in ("-journal", "-wal", "-shm"):  # a stale journal must not meet the new file
        target.with_name(NAME + suffix).unlink(missing_ok=True)
    os.replace(temp, target)
    return _connect(target)


def _new_commits(repo: pygit2.Repository, tip: pygit2.Oid, old: str | None
                 ) -> list[pygit2.Commit]:
    """The commits `tip` reaches and `old` does not, parents before children."""
    order = pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE
    walker = repo.walk(tip, order)
    if old is not None:
        walker.hide(pygit2.Oid(hex=old))
    return list(walker)


def _update(db: sqlite3.Connection, repo: pygit2.Repository, tip: pygit2.Oid,
            old: str | None, progress: Progress | None) -> None:
    """Index the commits between `old` and `tip` in one transaction."""
    commits = _new_commits(repo, tip, old)
    db.execute("BEGIN IMMEDIATE")
    try:
        for done, commit in enumerate(commits):
            first = db.execute("SELECT coalesce(max(id), 0) FROM rec").fetchone()[0]
            _index_commit(db, repo, commit)
            # commit by commit, so that a progress bar follows the real work
            db.execute("INSERT INTO fts(rowid, body) SELECT id, body FROM rec WHERE id > ?",
                       (first,))
            if progress is not None:
                progress(done + 1, len(commits), str(commit.id))
        db.execute("UPDATE state SET value = ? WHERE key = 'tip'", (str(tip),))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# --- one commit, one blob -------------------------------------------------------------------

def _added(repo: pygit2.Repository, commit: pygit2.Commit) -> Iterator[tuple[str, pygit2.Oid]]:
    """The searchable blobs this commit adds or changes against its first parent (what a merge
    brings from its other side was indexed with that side's commits)."""
    parent = commit.parents[0].tree if commit.parents else None
    for delta in tree_diff(parent, commit.tree).deltas:
        if delta.status != pygit2.GIT_DELTA_DELETED and _wanted(delta.new_file.path):
            yield delta.new_file.path, delta.new_file.id


def _wanted(file: str) -> bool:
    if file.startswith(ROOT + "/"):
        return not file.endswith(SOURCE_MAP)
    return file.endswith(".md")


def _index_commit(db: sqlite3.Connection, repo: pygit2.Repository,
                  commit: pygit2.Commit) -> None:
    commit_id: int | None = None
    for file, oid in _added(repo, commit):
        if db.execute("INSERT OR IGNORE INTO blobs VALUES (?)", (oid.raw,)).rowcount == 0:
            continue  # the same bytes already came with an earlier commit
        if commit_id is None:
            commit_id = db.execute("INSERT INTO commits(oid, time) VALUES (?, ?)",
                                   (str(commit.id), commit.commit_time)).lastrowid
        blob = repo[oid]
        assert isinstance(blob, pygit2.Blob)
        rows = _rows(db, file, blob.data)
        _insert(db, rows, commit_id or 0, commit.commit_time)


def _insert(db: sqlite3.Connection, rows: Iterable[Row], commit_id: int, when: int) -> None:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append((row.body, row.kind, row.session, row.file, row.line, commit_id, when,
                      row.stamp))
        if len(batch) >= _BATCH:
            _write(db, batch)
            batch = []
    _write(db, batch)


def _write(db: sqlite3.Connection, batch: list[tuple[object, ...]]) -> None:
    db.executemany("INSERT INTO rec(body, kind, session, file, line, commit_id, time, stamp) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)


def _rows(db: sqlite3.Connection, file: str, data: bytes) -> Iterator[Row]:
    """The new rows of one blob: each line that this scope (a session, or a file) has not
    had before."""
    where = place(file)
    scope = (where.session or where.file).encode()
    for number, line in enumerate(data.split(b"\n")):
        if not line.strip() or not _first_time(db, scope, line):
            continue
        position = where.line + number + 1
        if where.records:
            yield from _record_rows(line, where.session, where.file, position)
        else:
            kind = "tool" if where.session else _document_kind(file)
            yield Row(line.decode("utf-8", "replace"), kind, where.session, where.file,
                      position, None)


def _first_time(db: sqlite3.Connection, scope: bytes, line: bytes) -> bool:
    key = hashlib.blake2b(scope + b"\0" + line, digest_size=16).digest()
    return bool(db.execute("INSERT OR IGNORE INTO lines VALUES (?)", (key,)).rowcount)


def _document_kind(file: str) -> str:
    return "doc" if file.startswith("sessions/") else "memory"


def _record_rows(line: bytes, session: str | None, file: str, position: int) -> Iterator[Row]:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return  # a half-written line; the scanning search (--regex) still sees it
    if not isinstance(record, dict):
        return
    texts: dict[str, list[str]] = {}
    for kind, text in pieces(record):
        if kind == "meta":
            break  # ids, paths and kinds: the last piece, and not worth its size in the index
        if text.strip():
            texts.setdefault(kind, []).append(text)
    stamp = record.get("timestamp")
    for kind, parts in texts.items():
        yield Row("\n".join(parts), kind, session, file, position,
                  stamp if isinstance(stamp, str) else None)
