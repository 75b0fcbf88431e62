"""What SessionStart tells Claude: where the memory stands, computed from commits.

Ages come from commit times, never from dates written inside files (claude-memory's staleness
check passed silently when its date parsing failed). Claude Code caps hook output at 10,000
characters, so the text is bounded and says when it left something out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Mapping

import pygit2

from . import memory, recent
from .history import DOCUMENT, Entry, since_document, walk
from .store import Store

LIMIT = 9_000  # below Claude Code's 10,000-character cap, leaving room for the JSON around it
_STALENESS_WALK = 2000


@dataclass(frozen=True)
class Settings:
    staleness_hours: float
    size_warning_kib: float


def render(store: Store, settings: Settings, errors: Iterable[Mapping[str, object]],
           problems: Iterable[str], synced: str | None = None, now: float | None = None) -> str:
    now = time.time() if now is None else now
    tip = store.tip()
    tip_id = tip.id if tip is not None else None
    lines = ["# cmem: session memory (.claude/memory)", ""]
    lines += _documents(store.repo, tip_id, now)
    lines += _staleness(store.repo, tip_id, settings.staleness_hours, now)
    lines += _sizes(store, settings.size_warning_kib)
    lines += [synced, ""] if synced else []
    lines += _errors(errors, problems)
    return _bounded("\n".join(lines).rstrip() + "\n")


def _documents(repo: pygit2.Repository, tip: pygit2.Oid | None, now: float) -> list[str]:
    document, since = since_document(repo, tip)
    head = "No session document yet."
    if document is not None and document.event == DOCUMENT:
        where = document.trailers.get("Cmem-Document")
        head = (f"Last session document: {document.subject}"
                f"{f' ({where})' if where else ''}, {age(now - document.time)} ago.")
    elif document is not None:
        head = f"Pending backups were cleared by `cmem {document.event}` " \
               f"{age(now - document.time)} ago."
    backups = [e for e in since if e.session]
    if not backups:
        return [head, "No backups since then.", ""]
    sessions: dict[str, list[Entry]] = {}
    for item in backups:
        sessions.setdefault(item.session or "", []).append(item)
    lines = [head, f"Backups since then: {len(backups)} commits in {len(sessions)} session(s):"]
    lines += [_session_line(sid, items, now) for sid, items in sessions.items()]
    return lines + [""]


def _session_line(session: str, items: list[Entry], now: float) -> str:
    events = ", ".join(f"{e.event} {age(now - e.time)} ago" for e in items[:4])
    more = f", … {len(items) - 4} more" if len(items) > 4 else ""
    records = sum(e.number("Cmem-Added-Lines") for e in items)
    return f"- session {session}: {events}{more}; +{records} records"


def _staleness(repo: pygit2.Repository, tip: pygit2.Oid | None, hours: float,
               now: float) -> list[str]:
    changed = last_content_change(repo, tip, memory.ACTIVE)
    if changed is None:
        return [f"{memory.ACTIVE} has no committed content yet.", ""]
    seconds = now - changed
    if seconds <= hours * 3600:
        return [f"{memory.ACTIVE} last changed {age(seconds)} ago.", ""]
    return [f"{memory.ACTIVE} last changed {age(seconds)} ago, over the {hours:g} h threshold: "
            "it is probably stale; update it before relying on it.", ""]


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


def _sizes(store: Store, threshold_kib: float) -> list[str]:
    large = []
    for name in memory.FILES:
        path = store.workdir / name
        size = path.stat().st_size if path.is_file() else 0
        if size > threshold_kib * 1024:
            large.append(f"{name} ({size / 1024:.1f} KiB)")
    if not large:
        return []
    return [f"Over the {threshold_kib:g} KiB size threshold: {', '.join(large)}; "
            "condense it so it stays cheap to load.", ""]


def _errors(errors: Iterable[Mapping[str, object]], problems: Iterable[str]) -> list[str]:
    lines = [f"- {e.get('event', '?')} {age(time.time() - float(str(e.get('time', 0))))} ago: "
             f"{e.get('message', '?')}" for e in errors]
    lines += [f"- now: {p}" for p in problems]
    return ["cmem hook problems since the last report:", *lines, ""] if lines else []


def age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _bounded(text: str) -> str:
    if len(text) <= LIMIT:
        return text
    cut = text.rfind("\n", 0, LIMIT - 80)
    return text[:cut] + f"\n… {len(text) - cut} characters left out (see `cmem status`).\n"
