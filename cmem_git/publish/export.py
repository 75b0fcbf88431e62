"""Sessions exported for people: one HTML (or Markdown) page per session, from history alone.

Everything comes from the memory repository, so a session Claude Code has long deleted exports
like a live one, and `--at` shows it as any commit held it. A page is written while the stored
chunks are read, one chunk at a time (blocks.py), so a 100 MiB session needs the memory of
a chunk, not of the session; subagent transcripts are written inside the tool call that started
them, spilled tool results inside theirs. History adds what no transcript has (timeline.py):
the session's checkpoints, each also a marker at the line its backup had reached, and the
session documents that cover it. page.py writes HTML, markdown.py Markdown; site.py is `--all`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TextIO

import pygit2

from ..atomic import replacing_text
from ..capture.backup import MAIN, ROOT, check_session_id
from ..errors import CmemError
from ..git import chunks
from ..git.trees import subtree
from ..read.reading import session_id
from ..read.revisions import resolve
from ..repo.history import size_text
from ..repo.store import Store
from . import blocks, markdown, page
from .blocks import Call, Compaction, Line, Note, Said, Summary, Thinking
from .timeline import Checkpoint, Document, Timeline, timeline

VERSION = "1"  # what the pages look like; a new value makes `--all` render everything again
FORMATS = {"html": ".html", "md": ".md"}
Progress = Callable[[int, int, str], None]


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
        for block in blocks.paired(blocks.blocks(self._lines(name))):
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
        return blocks.lines(self.repo, self.session.files[name], seen)

    def _mark(self, mark: Checkpoint) -> None:
        self.form.checkpoint(self.out, mark.anchor, mark.label())

    def _block(self, block: blocks.Block) -> None:
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
                          blocks.pieces(self.repo, listing))

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


def describe(repo: pygit2.Repository, session: Session) -> blocks.Outline:
    listing = session.files.get(MAIN, [])
    if not listing:
        return blocks.Outline(None, None, None)
    head = chunks.blob_data(repo, listing[0].oid)
    tail = chunks.blob_data(repo, listing[-1].oid) if len(listing) > 1 else head
    return blocks.outline(head, tail)


def _facts(repo: pygit2.Repository, session: Session, outline: blocks.Outline,
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
    with replacing_text(path) as out:
        fill(out)


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
