"""What SessionStart tells Claude: where the memory stands and what to do next.

Ages come from commit times, never from dates written inside files (claude-memory's staleness
check passed silently when its date parsing failed). Claude Code caps hook output at 10,000
characters and keeps each SessionStart context in the transcript, sending it again on every
resume: so the text is short by design (one line per pending session, five at most), names the
slash command to run next and why, and on a resume or a compaction says only what changed
since the context it gave before (kept in .git/cmem/context.json), so that repeated resumes do
not pile up stale copies of the same lines.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pygit2

from ..atomic import write_atomic
from ..git import lock
from ..repo import memory, recent
from ..repo.history import DOCUMENT, Entry, plural, since_document, walk
from ..repo.store import Store
from ..repo.trailers import Trailer
from .output import age as age  # where `cmem search` finds it without loading pygit2

LIMIT = 9_000  # below Claude Code's 10,000-character cap, leaving room for the JSON around it
_STALENESS_WALK = 2000
SESSIONS_SHOWN = 5
# When this much is pending, the work deserves a session document before it grows further.
LOTS_OF_RECORDS = 300
LOTS_OF_SESSIONS = 3
_TOLD = "context.json"
_TOLD_SESSIONS = 50  # sessions whose last context is remembered
_LAST = "*"  # the last context given in any session
_MESSAGE_WIDTH = 300


@dataclass(frozen=True)
class Settings:
    staleness_hours: float
    size_warning_kib: float


@dataclass(frozen=True)
class Line:
    """One line of the context. On a resume it is repeated only when `mark`, what it says
    with the clock taken out, changed since the last context; an empty mark is always news."""

    key: str
    text: str
    mark: str = ""


def render(store: Store, settings: Settings, errors: Iterable[Mapping[str, object]],
           problems: Iterable[str], synced: str | None = None, now: float | None = None,
           source: str | None = None, session: str | None = None) -> str:
    now = time.time() if now is None else now
    tip = store.tip()
    tip_id = tip.id if tip is not None else None
    document, since = since_document(store.repo, tip_id)
    lines = _documents(document, since, now)
    lines += _next_step(document, since, source)
    lines += _staleness(store.repo, tip_id, settings.staleness_hours, now)
    lines += _sizes(store, settings.size_warning_kib)
    lines += [Line("sync", synced, synced)] if synced else []
    lines += _errors(errors, problems, now)
    told = _told(store)
    before = told.get(session or "") or told.get(_LAST) if source in ("resume", "compact") \
        else None
    _remember(store, told, session, lines, now)
    return _bounded(_text(lines, before, source))


def _text(lines: list[Line], before: Mapping[str, object] | None, source: str | None) -> str:
    if before is None:
        return "cmem (session memory in .claude/memory):\n" + \
            "".join(line.text + "\n" for line in lines)
    marks = before.get("marks")
    marks = marks if isinstance(marks, dict) else {}
    news = [line for line in lines if not line.mark or marks.get(line.key) != line.mark]
    when = time.strftime("%H:%M:%S UTC", time.gmtime(float(str(before.get("time", 0)))))
    if not news:
        return f"cmem ({source}): nothing changed since its context of {when}.\n"
    return f"cmem ({source}): what changed since its context of {when}:\n" + \
        "".join(line.text + "\n" for line in news)


def _documents(document: Entry | None, since: list[Entry], now: float) -> list[Line]:
    head = Line("document", "No session document yet.", "none")
    if document is not None and document.event == DOCUMENT:
        where = document.trailers.get(Trailer.DOCUMENT)
        title = document.trailers.get(Trailer.TITLE, document.subject.removeprefix("document: "))
        head = Line("document", f"Last session document: {title!r}"
                    f"{f' ({where})' if where else ''}, {age(now - document.time)} ago.",
                    str(document.id))
    elif document is not None:
        head = Line("document", f"Pending backups were cleared by `cmem {document.event}` "
                    f"{age(now - document.time)} ago.", str(document.id))
    sessions = _pending(since)
    if not sessions:
        since_what = "since the last session document" if document is not None else "yet"
        return [head, Line("pending", f"Nothing pending: no backups {since_what}.", "0")]
    commits = sum(len(items) for items in sessions.values())
    records = sum(_records(items) for items in sessions.values())
    lines = [head, Line("pending", "Backups not in a session document yet: "
                        f"{plural(commits, 'commit')} in {plural(len(sessions), 'session')}, "
                        f"+{plural(records, 'record')}:", f"{commits} {records}")]
    shown = list(sessions.items())[:SESSIONS_SHOWN]
    lines += [_session_line(sid, items, now) for sid, items in shown]
    rest = list(sessions.values())[SESSIONS_SHOWN:]
    if rest:
        count = sum(_records(items) for items in rest)
        lines.append(Line("pending-more", f"- and {plural(len(rest), 'more session')} "
                          f"(+{plural(count, 'record')}): `cmem status` lists them.",
                          f"{len(rest)} {count}"))
    return lines


def _pending(since: list[Entry]) -> dict[str, list[Entry]]:
    """Backups since the boundary by session, the most recently backed up first."""
    sessions: dict[str, list[Entry]] = {}
    for item in since:
        if item.session:
            sessions.setdefault(item.session, []).append(item)
    return sessions


def _records(items: list[Entry]) -> int:
    return sum(e.number(Trailer.ADDED_LINES) for e in items)


def _session_line(session: str, items: list[Entry], now: float) -> Line:
    events = ", ".join(f"{e.event} {age(now - e.time)} ago" for e in items[:3])
    more = f", … {len(items) - 3} more" if len(items) > 3 else ""
    records = _records(items)
    return Line(f"session:{session}", f"- session {session}: {events}{more}; "
                f"+{plural(records, 'record')}", f"{len(items)} {records}")


def _next_step(document: Entry | None, since: list[Entry], source: str | None) -> list[Line]:
    """Which slash command to run next, and why."""
    sessions = _pending(since)
    if not sessions:
        if document is None:
            return [Line("next", "Next: when this session has done something worth keeping, "
                         "/document-and-save writes the first session document.", "first")]
        return []
    records = sum(_records(items) for items in sessions.values())
    lots = records >= LOTS_OF_RECORDS or len(sessions) >= LOTS_OF_SESSIONS
    save = ("/document-and-save, so that the next session starts from a document (or "
            "/discard-backup if none of it is worth keeping)")
    if source == "resume":
        if not lots:
            return []  # the resumed conversation is there already
        return [Line("next", f"Next: a lot is not in a document yet: run {save}.", "resume")]
    loads = "the last document and the conversation since" if document is not None \
        else "the conversation of those sessions"
    why = "the compaction dropped detail" if source == "compact" \
        else "no session document covers that work yet"
    text = f"Next: run /resume-latest ({why}; it loads {loads})" + \
        (f", then {save}." if lots else ".")
    return [Line("next", text, f"{source} {lots}")]


def _staleness(repo: pygit2.Repository, tip: pygit2.Oid | None, hours: float,
               now: float) -> list[Line]:
    changed = last_content_change(repo, tip, memory.ACTIVE)
    if changed is None:
        return [Line("staleness", f"{memory.ACTIVE} has no committed content yet.", "none")]
    seconds = now - changed
    if seconds <= hours * 3600:
        return [Line("staleness", f"{memory.ACTIVE} last changed {age(seconds)} ago.", "fresh")]
    return [Line("staleness", f"{memory.ACTIVE} last changed {age(seconds)} ago, over the "
                 f"{hours:g} h threshold: it is probably stale; update it before relying on it.",
                 "stale")]


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


def _sizes(store: Store, threshold_kib: float) -> list[Line]:
    large = []
    for name in memory.FILES:
        path = store.workdir / name
        size = path.stat().st_size if path.is_file() else 0
        if size > threshold_kib * 1024:
            large.append(f"{name} ({size / 1024:.1f} KiB)")
    if not large:
        return []
    text = ", ".join(large)
    return [Line("sizes", f"Over the {threshold_kib:g} KiB size threshold: {text}; "
                 "condense it so it stays cheap to load.", text)]


def _errors(errors: Iterable[Mapping[str, object]], problems: Iterable[str],
            now: float) -> list[Line]:
    """Hook problems are reported once (errorlog moves them aside): always news."""
    lines = [f"- {e.get('event', '?')} {age(now - _number(e.get('time')))} ago: "
             f"{_clip(str(e.get('message', '?')))}" for e in errors]
    lines += [f"- now: {_clip(p)}" for p in problems]
    if not lines:
        return []
    return [Line("errors", "cmem hook problems since the last report:"),
            *(Line("errors", line) for line in lines)]


def _number(value: object) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_WIDTH else text[:_MESSAGE_WIDTH - 1] + "…"


def _told(store: Store) -> dict[str, dict[str, object]]:
    """What earlier contexts said, by session (and under `*` the last one of all)."""
    try:
        told = lock.state_dir(store.gitdir, create=False) / _TOLD
        value = json.loads(told.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, dict)} \
        if isinstance(value, dict) else {}


def _remember(store: Store, told: dict[str, dict[str, object]], session: str | None,
              lines: list[Line], now: float) -> None:
    entry: dict[str, object] = {"time": now, "marks": {line.key: line.mark for line in lines if line.mark}}
    told = {k: v for k, v in told.items() if k not in (session, _LAST)}
    kept = sorted(told.items(), key=lambda kv: _number(kv[1].get("time")))[-_TOLD_SESSIONS:]
    told = dict(kept)
    told[_LAST] = entry
    if session:
        told[session] = entry
    try:
        write_atomic(lock.state_dir(store.gitdir) / _TOLD, json.dumps(told))
    except OSError:
        pass  # then the next resume repeats the full context: longer, never wrong


def _bounded(text: str) -> str:
    if len(text) <= LIMIT:
        return text
    cut = text.rfind("\n", 0, LIMIT - 80)
    return text[:cut] + f"\n… {len(text) - cut} characters left out (see `cmem status`).\n"
