"""Sessions exported for people: one HTML (or Markdown) page per session, from history alone.

Everything comes from the memory repository, so a session Claude Code has long deleted exports
like a live one, and `--at` shows it as any commit held it. A page is written while the stored
chunks are read, one chunk at a time (conversation.py), so a 100 MiB session needs the memory of
a chunk, not of the session; subagent transcripts are written inside the tool call that started
them, spilled tool results inside theirs.

History adds what no transcript has: each hook commit is a checkpoint on the session's timeline
(and a marker at the line it had reached), and a session document is linked with the sessions
whose backups it covers, the same rule `cmem resume` uses (the backups since the previous
document, discard or fresh start).

`export --all` writes `index.html`, `sessions/<id>.html` and `documents/<name>.html` into a folder
and remembers in `.cmem-export.html.json` what each session page was made from: the next run
re-renders only the sessions whose stored files, checkpoints or documents changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol, TextIO

import pygit2

from . import chunks, conversation, markdown, page
from .backup import MAIN, ROOT, check_session_id
from .conversation import Call, Compaction, Line, Note, Said, Summary, Thinking
from .errors import CmemError, HookInputError
from .history import BOUNDARIES, DOCUMENT, ORDER, Entry, entry, size_text
from .reading import session_id
from .revisions import resolve
from .store import Store, file_bytes, subtree

VERSION = "1"  # what the pages look like; a new value makes `--all` render everything again
FORMATS = {"html": ".html", "md": ".md"}
MANIFEST = ".cmem-export.{}.json"
Progress = Callable[[int, int, str], None]
_DOC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")


class Format(Protocol):
    """page.py and markdown.py: the same calls, two outputs."""

    def start(self, out: TextIO, title: str, back: str | None) -> None: ...
    def finish(self, out: TextIO) -> None: ...
    def open_main(self, out: TextIO) -> None: ...
    def facts(self, out: TextIO, rows: Iterable[tuple[str, str]]) -> None: ...
    def section_open(self, out: TextIO, label: str) -> None: ...
    def section_close(self, out: TextIO) -> None: ...
    def link(self, href: str, label: str) -> str: ...
    def text(self, value: str) -> str: ...
    def local_time(self, stamp: str | None) -> str: ...
    def said(self, out: TextIO, block: Said) -> None: ...
    def thinking(self, out: TextIO, block: Thinking) -> None: ...
    def call_open(self, out: TextIO, call: Call) -> None: ...
    def spilled(self, out: TextIO, name: str, size: str, data: Iterable[bytes]) -> None: ...
    def nest_open(self, out: TextIO, label: str) -> None: ...
    def nest_close(self, out: TextIO) -> None: ...
    def call_close(self, out: TextIO) -> None: ...
    def compaction(self, out: TextIO, block: Compaction) -> None: ...
    def summary(self, out: TextIO, block: Summary) -> None: ...
    def note(self, out: TextIO, block: Note) -> None: ...
    def checkpoint(self, out: TextIO, anchor: str, label: str) -> None: ...


def writer(name: str) -> Format:
    if name not in FORMATS:
        raise CmemError(f"unknown export format {name!r}", hint="use html or md")
    return page if name == "html" else markdown


# --- what history says about sessions and documents ------------------------------------------

@dataclass(frozen=True)
class Checkpoint:
    commit: str
    time: int
    event: str
    detail: str  # reason, trigger or source
    device: str
    lines: int | None  # the main transcript's lines after this commit
    added: int  # records added

    @property
    def anchor(self) -> str:
        return f"cp-{self.commit[:12]}"

    def label(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(self.time))
        detail = f" ({self.detail})" if self.detail else ""
        return (f"checkpoint {self.commit[:8]} · {when} · {self.event}{detail} · {self.device}"
                f" · +{self.added} records")


@dataclass
class Document:
    path: str
    title: str
    time: int
    sessions: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1].removesuffix(".md")


@dataclass
class Timeline:
    checkpoints: dict[str, list[Checkpoint]] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)

    def documents_of(self, session: str) -> list[Document]:
        return [d for d in self.documents.values() if session in d.sessions]


def timeline(repo: pygit2.Repository, tip: pygit2.Commit) -> Timeline:
    """Every commit's checkpoint and document links, in one walk, oldest first."""
    found = Timeline()
    pending: dict[str, None] = {}
    for commit in repo.walk(tip.id, ORDER | pygit2.enums.SortMode.REVERSE):
        item = entry(commit)
        if item.session:
            found.checkpoints.setdefault(item.session, []).append(_checkpoint(item))
            pending.setdefault(item.session, None)
        if item.event == DOCUMENT and "Cmem-Document" in item.trailers:
            _cover(found, item.trailers["Cmem-Document"],
                   item.trailers.get("Cmem-Title", ""), item.time, pending)
        if item.event in BOUNDARIES:
            pending = {}
    return found


def _checkpoint(item: Entry) -> Checkpoint:
    trailers = item.trailers
    detail = next((trailers[k] for k in ("Cmem-Reason", "Cmem-Trigger", "Cmem-Source")
                   if k in trailers), "")
    lines = trailers.get("Cmem-Transcript-Lines")
    return Checkpoint(str(item.id), item.time, item.event or "commit", detail,
                      trailers.get("Cmem-Device", "?"),
                      int(lines) if lines and lines.isdigit() else None,
                      item.number("Cmem-Added-Lines"))


def _cover(found: Timeline, path: str, title: str, when: int,
           pending: dict[str, None]) -> None:
    document = found.documents.setdefault(path, Document(path, title or path, when))
    document.time = when
    document.sessions += [s for s in pending if s not in document.sessions]


# --- one session -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Session:
    """A session as one commit holds it: its stored files, by path inside its folder."""

    id: str
    commit: pygit2.Commit
    files: dict[str, list[chunks.Chunk]]


def find(store: Store, prefix: str, rev: str) -> Session:
    commit = resolve(store, rev)
    # The id names the output file: one from a remote's tree must not be a path.
    return load(store.repo, commit, check_session_id(session_id(store, commit, prefix)))


def load(repo: pygit2.Repository, commit: pygit2.Commit, sid: str) -> Session:
    folder = subtree(commit.tree, f"{ROOT}/{sid}")
    return Session(sid, commit, dict(_stored_files(repo, folder, "")))


def _stored_files(repo: pygit2.Repository, tree: pygit2.Tree | None,
                  prefix: str) -> Iterator[tuple[str, list[chunks.Chunk]]]:
    for item in tree or []:
        if not isinstance(item, pygit2.Tree):
            continue
        listing = chunks.listing(repo, item)
        if listing:
            yield prefix + (item.name or ""), listing
        else:
            yield from _stored_files(repo, item, f"{prefix}{item.name}/")


@dataclass
class _Render:
    """Writes one session: main transcript, nested subagents, spilled results, markers."""

    repo: pygit2.Repository
    session: Session
    form: Format
    out: TextIO
    progress: Progress | None
    total: int
    done: int = 0
    used: set[str] = field(default_factory=set)

    def file(self, name: str, marks: list[Checkpoint]) -> None:
        """One stored file; each checkpoint's marker after the last line its commit held."""
        self.used.add(name)
        waiting = _positions(marks)
        for block in conversation.paired(conversation.blocks(self._lines(name))):
            if isinstance(block, Line):
                while waiting and block.number > waiting[0][0]:
                    self._mark(waiting.pop(0)[1])
            else:
                self._block(block)
        for _, mark in waiting:
            self._mark(mark)

    def _lines(self, name: str) -> Iterator[bytes]:
        def seen(size: int) -> None:
            self.done += size
            if self.progress is not None:
                self.progress(min(self.done, self.total), self.total, self.session.id)
        return conversation.lines(self.repo, self.session.files[name], seen)

    def _mark(self, mark: Checkpoint) -> None:
        self.form.checkpoint(self.out, mark.anchor, mark.label())

    def _block(self, block: conversation.Block) -> None:
        form, out = self.form, self.out
        if isinstance(block, Said):
            form.said(out, block)
        elif isinstance(block, Thinking):
            form.thinking(out, block)
        elif isinstance(block, Call):
            self._call(block)
        elif isinstance(block, Compaction):
            form.compaction(out, block)
        elif isinstance(block, Summary):
            form.summary(out, block)
        elif isinstance(block, Note):
            form.note(out, block)

    def _call(self, call: Call) -> None:
        self.form.call_open(self.out, call)
        spilled = f"tool-results/{call.id}.txt"
        if call.id and spilled in self.session.files and spilled not in self.used:
            self._spilled(spilled)
        agent = call.result.agent if call.result is not None else None
        stored = self._agent_file(agent) if agent else None
        if stored is not None:
            self._nested(f"Subagent {agent} ({stored})", stored)
        self.form.call_close(self.out)

    def _spilled(self, name: str) -> None:
        self.used.add(name)
        listing = self.session.files[name]
        self.done += _stored_size(self.repo, listing)
        self.form.spilled(self.out, name, size_text(_stored_size(self.repo, listing), False),
                          conversation.pieces(self.repo, listing))

    def _agent_file(self, agent: str) -> str | None:
        wanted = f"agent-{agent}.jsonl"
        return next((name for name in self.session.files if name.startswith("subagents/")
                      and name.rsplit("/", 1)[-1] == wanted and name not in self.used), None)

    def _nested(self, label: str, name: str) -> None:
        self.form.nest_open(self.out, label)
        self.file(name, [])
        self.form.nest_close(self.out)

    def rest(self) -> None:
        """Subagents no tool call in the transcripts started (a compaction's own run, or an
        excerpt), and stored tool output no call named."""
        for name in sorted(self.session.files):
            if name in self.used or name == MAIN:
                continue
            if name.endswith(".jsonl"):
                kind = "Compaction run" if "/agent-acompact" in name else "Subagent"
                self._nested(f"{kind} not started by a tool call here ({name})", name)
            elif name.endswith(".txt"):
                self._spilled(name)
            else:
                size = size_text(_stored_size(self.repo, self.session.files[name]), False)
                self.form.note(self.out, Note(f"[stored file {name}, {size}]", None))


def _positions(marks: list[Checkpoint]) -> list[tuple[int, Checkpoint]]:
    """Where each checkpoint's marker goes: after the line count its commit recorded, or, for
    a commit that did not change the transcript (a document), where the one before it went."""
    placed, line = [], 0
    for mark in marks:
        line = mark.lines if mark.lines is not None else line
        placed.append((line, mark))
    return placed


def _stored_size(repo: pygit2.Repository, listing: list[chunks.Chunk]) -> int:
    return chunks.stored_size(repo, listing)[0]


def stored_bytes(repo: pygit2.Repository, session: Session) -> int:
    return sum(_stored_size(repo, listing) for listing in session.files.values())


@dataclass(frozen=True)
class Links:
    """Where a page's links go: nowhere for a lone export, into the folder for `--all`."""

    back: str | None = None
    document: Callable[[Document], str | None] = lambda d: None


def write_session(repo: pygit2.Repository, session: Session, history: Timeline, form: Format,
                  out: TextIO, links: Links = Links(), progress: Progress | None = None) -> None:
    marks = history.checkpoints.get(session.id, [])
    outline = describe(repo, session)
    form.start(out, outline.title or session.id, links.back)
    form.facts(out, _facts(repo, session, outline, marks, history, form, links))
    _timeline(form, out, marks)
    form.open_main(out)
    render = _Render(repo, session, form, out, progress, stored_bytes(repo, session))
    if MAIN in session.files:
        render.file(MAIN, marks)
    else:
        form.note(out, Note("[no main transcript stored for this session]", None))
    render.rest()
    form.finish(out)


def describe(repo: pygit2.Repository, session: Session) -> conversation.Outline:
    listing = session.files.get(MAIN, [])
    if not listing:
        return conversation.Outline(None, None, None)
    head = chunks.blob_data(repo, listing[0].oid)
    tail = chunks.blob_data(repo, listing[-1].oid) if len(listing) > 1 else head
    return conversation.outline(head, tail)


def _facts(repo: pygit2.Repository, session: Session, outline: conversation.Outline,
           marks: list[Checkpoint], history: Timeline, form: Format,
           links: Links) -> list[tuple[str, str]]:
    devices = sorted({m.device for m in marks})
    documents = [form.link(href, d.title) if (href := links.document(d)) else form.text(d.title)
                 for d in history.documents_of(session.id)]
    return [("session", form.text(session.id)),
            ("started", form.local_time(outline.start) or "?"),
            ("last record", form.local_time(outline.end) or "?"),
            ("stored", form.text(f"{size_text(stored_bytes(repo, session), False)} in "
                                 f"{len(session.files)} files")),
            ("devices", form.text(", ".join(devices) or "?")),
            ("documents", ", ".join(documents) or "none"),
            ("exported from", form.text(f"commit {str(session.commit.id)[:8]}"))]


def _timeline(form: Format, out: TextIO, marks: list[Checkpoint]) -> None:
    """The session's checkpoints, each linking to the marker where its backup ended."""
    if not marks:
        return
    form.section_open(out, f"Timeline: {len(marks)} checkpoints")
    form.facts(out, [(str(index), form.link(f"#{mark.anchor}", mark.label()))
                     for index, mark in enumerate(marks, 1)])
    form.section_close(out)


# --- files on disk ---------------------------------------------------------------------------

def extension(form: str) -> str:
    return FORMATS[form]


def write_file(path: Path, fill: Callable[[TextIO], object]) -> None:
    """Write through a temporary file and a rename: an interrupted export leaves the old page
    (or none), never half of one that `--all` would later take as done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            fill(out)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def export_one(store: Store, prefix: str, rev: str, form: str, target: Path | None,
               out: TextIO | None = None, progress: Progress | None = None) -> Path | None:
    """One session to `target` (default: ./<session id>.<ext>), or to `out` when given."""
    session = find(store, prefix, rev)
    history = timeline(store.repo, session.commit)
    chosen = writer(form)
    if out is not None:
        write_session(store.repo, session, history, chosen, out, progress=progress)
        return None
    path = target or Path(".")
    if path.is_dir():
        path = path / f"{session.id}{extension(form)}"
    write_file(path, lambda handle: write_session(store.repo, session, history, chosen, handle,
                                                  progress=progress))
    return path


# --- every session: an index, pages re-rendered when what they show changed ---------------------

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
    outline: conversation.Outline
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
    outline = conversation.Outline(*(v if isinstance(v, str) else None
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
    form.said(out, Said("claude", data.decode("utf-8", "replace"), None))
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
