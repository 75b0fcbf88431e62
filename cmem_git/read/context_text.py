"""SessionStart's context as text, from facts about the memory (context.py gathers them).

The facts are plain data, so they can be kept (start_cache.py) and the text made again without
the repository: only the clock, the session's source (startup, resume, clear, compact) and what
earlier contexts said change between two SessionStarts with nothing new. This module therefore
loads no pygit2.

Claude Code caps hook output at 10,000 characters and keeps each SessionStart context in the
transcript, sending it again on every resume: so the text is short by design (one line per
pending session, five at most), names the slash command to run next and why, and on a resume or
a compaction says only what changed since the context it gave before (kept in
.git/cmem/context.json), so that repeated resumes do not pile up stale copies of the same lines.
Ages come from commit times, never from dates written inside files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from ..atomic import write_atomic
from ..git.lock import state_dir
from .output import age

LIMIT = 9_000  # below Claude Code's 10,000-character cap, leaving room for the JSON around it
SESSIONS_SHOWN = 5
# When this much is pending, the work deserves a session document before it grows further.
LOTS_OF_RECORDS = 300
LOTS_OF_SESSIONS = 3
ACTIVE = "active-context.md"  # repo/memory.py's name, spelled again to keep pygit2 out
_TOLD = "context.json"
_TOLD_SESSIONS = 50  # sessions whose last context is remembered
_LAST = "*"  # the last context given in any session
_MESSAGE_WIDTH = 300


# NamedTuples, not dataclasses: the warm SessionStart (entry/warm_start.py) loads this module,
# and `dataclasses` (with `inspect`) would be a sixth of its imports.
class Settings(NamedTuple):
    staleness_hours: float
    size_warning_kib: float


class Boundary(NamedTuple):
    """The last session document, or the discard/fresh start that cleared pending backups."""

    id: str
    event: str  # "document", or the command that cleared them
    time: float
    title: str = ""
    where: str = ""


class Pending(NamedTuple):
    """One session's backups since the boundary, newest first."""

    session: str
    events: list[tuple[str, float]]  # (event, time) of the newest three
    commits: int
    records: int


class Facts(NamedTuple):
    boundary: Boundary | None
    pending: list[Pending]  # the most recently backed up session first
    active_changed: float | None  # commit time of the last real change to active-context.md
    large: tuple[str, ...] = ()  # memory files over the size threshold
    lagging: str | None = None  # local transcripts older than the stored copies

    def to_json(self) -> dict[str, Any]:
        return {**self._asdict(), "boundary": self.boundary._asdict() if self.boundary else None,
                "pending": [p._asdict() for p in self.pending]}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Facts:
        boundary = value.get("boundary")
        return cls(Boundary(**boundary) if boundary else None,
                   [Pending(p["session"], [(e, t) for e, t in p["events"]], p["commits"],
                            p["records"]) for p in value["pending"]],
                   value["active_changed"], tuple(value["large"]), value["lagging"])


class Line(NamedTuple):
    """One line of the context. On a resume it is repeated only when `mark`, what it says
    with the clock taken out, changed since the last context; an empty mark is always news."""

    key: str
    text: str
    mark: str = ""


def render(gitdir: Path, facts: Facts, settings: Settings, now: float, source: str | None,
           session: str | None, synced: str | None = None,
           errors: Iterable[Mapping[str, object]] = (), problems: Iterable[str] = ()) -> str:
    """The context, remembered (context.json) for the next resume or compaction."""
    lines = _boundary(facts, now) + _next_step(facts, source) + \
        _staleness(facts.active_changed, settings.staleness_hours, now)
    if facts.large:
        text = ", ".join(facts.large)
        lines.append(Line("sizes", f"Over the {settings.size_warning_kib:g} KiB size threshold: "
                          f"{text}; condense it so it stays cheap to load.", text))
    lines += [Line("sync", synced, synced)] if synced else []
    lines += [Line("lagging", facts.lagging, facts.lagging)] if facts.lagging else []
    lines += _errors(errors, problems, now)
    told = _told(gitdir)
    before = told.get(session or "") or told.get(_LAST) if source in ("resume", "compact") \
        else None
    _remember(gitdir, told, session, lines, now)
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


def _plural(count: int, word: str) -> str:
    return f"{count} {word if count == 1 else word + 's'}"


def _boundary(facts: Facts, now: float) -> list[Line]:
    found = facts.boundary
    head = Line("document", "No session document yet.", "none")
    if found is not None and found.event == "document":
        head = Line("document", f"Last session document: {found.title!r}"
                    f"{f' ({found.where})' if found.where else ''}, {age(now - found.time)} ago.",
                    found.id)
    elif found is not None:
        head = Line("document", f"Pending backups were cleared by `cmem {found.event}` "
                    f"{age(now - found.time)} ago.", found.id)
    if not facts.pending:
        since_what = "since the last session document" if found is not None else "yet"
        return [head, Line("pending", f"Nothing pending: no backups {since_what}.", "0")]
    commits = sum(p.commits for p in facts.pending)
    records = sum(p.records for p in facts.pending)
    lines = [head, Line("pending", "Backups not in a session document yet: "
                        f"{_plural(commits, 'commit')} in "
                        f"{_plural(len(facts.pending), 'session')}, "
                        f"+{_plural(records, 'record')}:", f"{commits} {records}")]
    lines += [_session_line(p, now) for p in facts.pending[:SESSIONS_SHOWN]]
    rest = facts.pending[SESSIONS_SHOWN:]
    if rest:
        count = sum(p.records for p in rest)
        lines.append(Line("pending-more", f"- and {_plural(len(rest), 'more session')} "
                          f"(+{_plural(count, 'record')}): `cmem status` lists them.",
                          f"{len(rest)} {count}"))
    return lines


def _session_line(pending: Pending, now: float) -> Line:
    events = ", ".join(f"{event} {age(now - when)} ago" for event, when in pending.events)
    more = f", … {pending.commits - 3} more" if pending.commits > 3 else ""
    return Line(f"session:{pending.session}", f"- session {pending.session}: {events}{more}; "
                f"+{_plural(pending.records, 'record')}", f"{pending.commits} {pending.records}")


def _next_step(facts: Facts, source: str | None) -> list[Line]:
    """Which slash command to run next, and why."""
    if not facts.pending:
        if facts.boundary is None:
            return [Line("next", "Next: when this session has done something worth keeping, "
                         "/document-and-save writes the first session document.", "first")]
        return []
    records = sum(p.records for p in facts.pending)
    lots = records >= LOTS_OF_RECORDS or len(facts.pending) >= LOTS_OF_SESSIONS
    save = ("/document-and-save, so that the next session starts from a document (or "
            "/discard-backup if none of it is worth keeping)")
    if source == "resume":
        if not lots:
            return []  # the resumed conversation is there already
        return [Line("next", f"Next: a lot is not in a document yet: run {save}.", "resume")]
    loads = "the last document and the conversation since" if facts.boundary is not None \
        else "the conversation of those sessions"
    why = "the compaction dropped detail" if source == "compact" \
        else "no session document covers that work yet"
    text = f"Next: run /resume-latest ({why}; it loads {loads})" + \
        (f", then {save}." if lots else ".")
    return [Line("next", text, f"{source} {lots}")]


def _staleness(changed: float | None, hours: float, now: float) -> list[Line]:
    if changed is None:
        return [Line("staleness", f"{ACTIVE} has no committed content yet.", "none")]
    seconds = now - changed
    if seconds <= hours * 3600:
        return [Line("staleness", f"{ACTIVE} last changed {age(seconds)} ago.", "fresh")]
    return [Line("staleness", f"{ACTIVE} last changed {age(seconds)} ago, over the "
                 f"{hours:g} h threshold: it is probably stale; update it before relying on it.",
                 "stale")]


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


def _told(gitdir: Path) -> dict[str, dict[str, object]]:
    """What earlier contexts said, by session (and under `*` the last one of all)."""
    try:
        value = json.loads((state_dir(gitdir, create=False) / _TOLD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in value.items() if isinstance(v, dict)} \
        if isinstance(value, dict) else {}


def _remember(gitdir: Path, told: dict[str, dict[str, object]], session: str | None,
              lines: list[Line], now: float) -> None:
    entry: dict[str, object] = {"time": now,
                                "marks": {line.key: line.mark for line in lines if line.mark}}
    told = {k: v for k, v in told.items() if k not in (session, _LAST)}
    told = dict(sorted(told.items(), key=lambda kv: _number(kv[1].get("time")))[-_TOLD_SESSIONS:])
    told[_LAST] = entry
    if session:
        told[session] = entry
    try:
        write_atomic(state_dir(gitdir) / _TOLD, json.dumps(told))
    except OSError:
        pass  # then the next resume repeats the full context: longer, never wrong


def _bounded(text: str) -> str:
    if len(text) <= LIMIT:
        return text
    cut = text.rfind("\n", 0, LIMIT - 80)
    return text[:cut] + f"\n… {len(text) - cut} characters left out (see `cmem status`).\n"
