"""What history says about sessions and documents, for exports.

Each hook commit is a checkpoint on its session's timeline (its trailers say when, which event,
which device, and how many lines the transcript had). A session document covers the sessions
whose backups came since the previous document, discard or fresh start, the rule `cmem resume`
uses. One walk over the commits, oldest first, answers both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pygit2

from ..repo.history import BOUNDARIES, DOCUMENT, ORDER, Entry, entry
from ..repo.trailers import Trailer


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
        if item.event == DOCUMENT and Trailer.DOCUMENT in item.trailers:
            _cover(found, item.trailers[Trailer.DOCUMENT],
                   item.trailers.get(Trailer.TITLE, ""), item.time, pending)
        if item.event in BOUNDARIES:
            pending = {}
    return found


def _checkpoint(item: Entry) -> Checkpoint:
    trailers = item.trailers
    detail = next((trailers[k] for k in (Trailer.REASON, Trailer.TRIGGER, Trailer.SOURCE)
                   if k in trailers), "")
    lines = trailers.get(Trailer.TRANSCRIPT_LINES)
    return Checkpoint(str(item.id), item.time, item.event or "commit", detail,
                      trailers.get(Trailer.DEVICE, "?"),
                      int(lines) if lines and lines.isdigit() else None,
                      item.number(Trailer.ADDED_LINES))


def _cover(found: Timeline, path: str, title: str, when: int,
           pending: dict[str, None]) -> None:
    document = found.documents.setdefault(path, Document(path, title or path, when))
    document.time = when
    document.sessions += [s for s in pending if s not in document.sessions]
