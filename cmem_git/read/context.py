"""What SessionStart tells Claude, gathered from the repository: the facts context_text.py
turns into text (and start_cache.py keeps, so that the next SessionStart with nothing new needs
no repository at all)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import pygit2

from ..repo import memory, recent
from ..repo.history import DOCUMENT, Entry, since_document, walk
from ..repo.store import Store
from ..repo.trailers import Trailer
from .context_text import Boundary, Facts, Pending, Settings
from .context_text import render as render_text
from .output import age as age  # where `cmem search` finds it without loading pygit2

_STALENESS_WALK = 2000


def render(store: Store, settings: Settings, errors: Iterable[Mapping[str, object]],
           problems: Iterable[str], synced: str | None = None, now: float | None = None,
           source: str | None = None, session: str | None = None,
           lagging: str | None = None) -> str:
    return render_text(store.gitdir, facts(store, store.tip(), settings, lagging), settings,
                       time.time() if now is None else now, source, session, synced, errors,
                       problems)


def facts(store: Store, tip: pygit2.Commit | None, settings: Settings,
          lagging: str | None = None) -> Facts:
    """What the context says at `tip` (a caller that keeps the facts names the tip it read)."""
    tip_id = tip.id if tip is not None else None
    document, since = since_document(store.repo, tip_id)
    return Facts(_boundary(document), _pending(since),
                 last_content_change(store.repo, tip_id, memory.ACTIVE),
                 tuple(_large(store, settings.size_warning_kib)), lagging)


def _boundary(document: Entry | None) -> Boundary | None:
    if document is None:
        return None
    if document.event != DOCUMENT:
        return Boundary(str(document.id), document.event or "?", document.time)
    title = document.trailers.get(Trailer.TITLE, document.subject.removeprefix("document: "))
    return Boundary(str(document.id), DOCUMENT, document.time, title,
                    document.trailers.get(Trailer.DOCUMENT, ""))


def _pending(since: list[Entry]) -> list[Pending]:
    """Backups since the boundary by session, the most recently backed up first."""
    sessions: dict[str, list[Entry]] = {}
    for item in since:
        if item.session:
            sessions.setdefault(item.session, []).append(item)
    return [Pending(sid, [(e.event or "?", e.time) for e in items[:3]], len(items),
                    sum(e.number(Trailer.ADDED_LINES) for e in items))
            for sid, items in sessions.items()]


def last_content_change(repo: pygit2.Repository, tip: pygit2.Oid | None,
                        name: str) -> float | None:
    """Commit time of the newest commit that changed `name`, ignoring cmem's exit line. Kept
    between calls (recent.py), so only commits made since are read."""
    return recent.content_change(repo, tip, name, _content,
                                 lambda: _last_content_change(repo, tip, name))


def _last_content_change(repo: pygit2.Repository, tip: pygit2.Oid | None,
                         name: str) -> float | None:
    newer = recent.same_content(repo, walk(repo, tip, _STALENESS_WALK), name, _content)[1]
    return newer[1] if newer else None


def _content(tree: pygit2.Tree, name: str) -> bytes | None:
    try:
        blob = tree[name]
    except KeyError:
        return None
    return memory.without_managed(bytes(blob.data)) if isinstance(blob, pygit2.Blob) else None


def _large(store: Store, threshold_kib: float) -> list[str]:
    large = []
    for name in memory.FILES:
        path = store.workdir / name
        size = path.stat().st_size if path.is_file() else 0
        if size > threshold_kib * 1024:
            large.append(f"{name} ({size / 1024:.1f} KiB)")
    return large
