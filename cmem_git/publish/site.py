"""`cmem export --all`: every session as a folder of pages that opens from disk.

`index.html` lists the sessions (title, start and end, size, devices, documents) and the session
documents; `sessions/<id>.html` is a session's page (export.py), `documents/<name>.html` a
document with links to the sessions it covers. `.cmem-export.<format>.json` remembers what each
session page was made from (the session folder's tree id, its checkpoints, its documents, the
format and the time zone) and what the index shows of it: the next run re-renders only the
sessions whose pages would change and reads no blob of the others.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import pygit2

from ..capture.backup import ROOT, check_session_id
from ..errors import HookInputError
from ..git.trees import file_bytes, subtree
from ..read.revisions import resolve
from ..repo.history import size_text
from ..repo.store import Store
from . import blocks
from .blocks import Said
from .export import (
    VERSION,
    Format,
    Links,
    Progress,
    Session,
    describe,
    extension,
    load,
    stored_bytes,
    write_file,
    write_session,
    writer,
)
from .timeline import Document, Timeline, timeline

MANIFEST = ".cmem-export.{}.json"
_DOC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


@dataclass
class Report:
    rendered: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # stored under a name cmem would not write
    removed: list[str] = field(default_factory=list)  # pages of sessions history no longer has
    documents: int = 0
    index: Path | None = None


@dataclass(frozen=True)
class _Row:
    session: Session
    outline: blocks.Outline
    size: int
    key: str

    def saved(self) -> dict[str, object]:
        """The manifest's entry: what the page was made from, and what the index shows of
        it, so that an unchanged session costs no blob read on the next run."""
        return {"key": self.key, "title": self.outline.title, "start": self.outline.start,
                "end": self.outline.end, "size": self.size}


Manifest = dict[str, dict[str, object]]


def export_all(store: Store, rev: str, form: str, folder: Path,
               progress: Progress | None = None) -> Report:
    commit = resolve(store, rev)
    history = timeline(store.repo, commit)
    chosen, ext = writer(form), extension(form)
    report = Report()
    done = _manifest(folder, form)
    rows = _rows(store.repo, commit, history, form, done, report)
    links = Links("../index" + ext, lambda d: f"../documents/{d.name}{ext}")
    fresh = [row for row in rows if not _current(done, row, folder / "sessions", ext)]
    total, counted = sum(row.size for row in fresh), 0
    for row in fresh:
        path = folder / "sessions" / f"{row.session.id}{ext}"
        step = _step(progress, counted, total)
        write_file(path, lambda out: write_session(store.repo, row.session, history, chosen,
                                                   out, links, step))
        counted += row.size
        done[row.session.id] = row.saved()
        report.rendered.append(row.session.id)
    report.kept = [row.session.id for row in rows if row not in fresh]
    _forget(folder, ext, done, {row.session.id for row in rows}, report)
    report.documents = _documents(store.repo, commit, history, chosen, ext, folder)
    report.index = folder / f"index{ext}"
    write_file(report.index, lambda out: _index(out, chosen, ext, rows, history))
    _save_manifest(folder, form, done)
    return report


def _current(done: Manifest, row: _Row, pages: Path, ext: str) -> bool:
    entry = done.get(row.session.id)
    return entry is not None and entry.get("key") == row.key and \
        (pages / f"{row.session.id}{ext}").is_file()


def _forget(folder: Path, ext: str, done: Manifest, present: set[str],
            report: Report) -> None:
    """Pages of sessions history no longer holds (purged) go, as the index no longer
    links them."""
    for sid in sorted(set(done) - present):
        del done[sid]
        try:
            (folder / "sessions" / f"{check_session_id(sid)}{ext}").unlink(missing_ok=True)
        except HookInputError:
            continue
        report.removed.append(sid)


def _step(progress: Progress | None, before: int, total: int) -> Progress | None:
    """One session's progress as part of the whole export's."""
    if progress is None:
        return None
    return lambda done, _, item: progress(before + done, total, item)


def _rows(repo: pygit2.Repository, commit: pygit2.Commit, history: Timeline, form: str,
          done: Manifest, report: Report) -> list[_Row]:
    rows = []
    for item in subtree(commit.tree, ROOT) or []:
        name = item.name or ""
        try:
            check_session_id(name)
        except HookInputError:
            report.skipped.append(name)
            continue
        session = load(repo, commit, name)
        key = _key(session, history, form)
        rows.append(_cached(session, key, done.get(name)) or
                    _Row(session, describe(repo, session), stored_bytes(repo, session), key))
    return sorted(rows, key=lambda r: r.outline.start or "", reverse=True)


def _cached(session: Session, key: str, entry: dict[str, object] | None) -> _Row | None:
    if entry is None or entry.get("key") != key or not isinstance(entry.get("size"), int):
        return None
    title, start, end = (entry.get(k) for k in ("title", "start", "end"))
    outline = blocks.Outline(*(v if isinstance(v, str) else None
                                     for v in (title, start, end)))
    size = entry["size"]
    assert isinstance(size, int)
    return _Row(session, outline, size, key)


def _key(session: Session, history: Timeline, form: str) -> str:
    """What a session page shows, as a hash: its stored files (the folder's tree id), its
    checkpoints, the documents covering it, the format and the local time zone."""
    folder = subtree(session.commit.tree, f"{ROOT}/{session.id}")
    parts = [VERSION, form, time.strftime("%z %Z"), str(folder.id if folder else ""),
             *(c.commit for c in history.checkpoints.get(session.id, [])),
             *(f"{d.path}\0{d.title}" for d in history.documents_of(session.id))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _manifest(folder: Path, form: str) -> Manifest:
    """What each session page of this format was made from (one file per format: HTML and
    Markdown pages share the folder)."""
    try:
        data = json.loads((folder / MANIFEST.format(form)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    sessions = data.get("sessions") if isinstance(data, dict) else None
    return {k: v for k, v in sessions.items() if isinstance(v, dict)} \
        if isinstance(sessions, dict) else {}


def _save_manifest(folder: Path, form: str, done: Manifest) -> None:
    text = json.dumps({"version": VERSION, "format": form, "sessions": done}, indent=1)
    write_file(folder / MANIFEST.format(form), lambda out: out.write(text + "\n"))


def _documents(repo: pygit2.Repository, commit: pygit2.Commit, history: Timeline,
               form: Format, ext: str, folder: Path) -> int:
    count = 0
    for document in history.documents.values():
        data = file_bytes(commit.tree, document.path)
        if data is None or not _DOC_NAME.fullmatch(document.name):
            continue
        write_file(folder / "documents" / f"{document.name}{ext}",
                   lambda out: _document(out, form, ext, document, data))
        count += 1
    return count


def _document(out: TextIO, form: Format, ext: str, document: Document, data: bytes) -> None:
    form.start(out, document.title, "../index" + ext)
    sessions = [form.link(f"../sessions/{s}{ext}", s) for s in document.sessions]
    form.facts(out, [("file", form.text(document.path)),
                     ("saved", form.local_time(_iso(document.time))),
                     ("covers", ", ".join(sessions) or "no session backups")])
    form.open_main(out)
    form.said(out, Said("document", data.decode("utf-8", "replace"), None))
    form.finish(out)


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _index(out: TextIO, form: Format, ext: str, rows: list[_Row], history: Timeline) -> None:
    form.start(out, "Claude Code sessions", None)
    form.facts(out, [("sessions", str(len(rows))),
                     ("documents", str(len(history.documents)))])
    form.open_main(out)
    if history.documents:
        form.section_open(out, "Session documents")
        form.facts(out, [(_day(d.time), form.link(f"documents/{d.name}{ext}", d.title) +
                          form.text(f" ({len(d.sessions)} sessions)"))
                         for d in sorted(history.documents.values(), key=lambda d: -d.time)])
        form.section_close(out)
    for row in rows:
        _index_row(out, form, ext, row, history)
    form.finish(out)


def _day(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


def _index_row(out: TextIO, form: Format, ext: str, row: _Row, history: Timeline) -> None:
    sid = row.session.id
    marks = history.checkpoints.get(sid, [])
    documents = [form.link(f"documents/{d.name}{ext}", d.title)
                 for d in history.documents_of(sid)]
    form.section_open(out, row.outline.title or sid)
    form.facts(out, [("session", form.link(f"sessions/{sid}{ext}", sid)),
                     ("started", form.local_time(row.outline.start) or "?"),
                     ("last record", form.local_time(row.outline.end) or "?"),
                     ("stored", form.text(size_text(row.size, False))),
                     ("devices", form.text(", ".join(sorted({m.device for m in marks})) or "?")),
                     ("checkpoints", str(len(marks))),
                     ("documents", ", ".join(documents) or "none")])
    form.section_close(out)
