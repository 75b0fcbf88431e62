"""Backfill: every transcript Claude Code still has, and a claude-memory folder, into the memory.

Claude Code deletes transcripts after `cleanupPeriodDays` (30 by default), so on day one a user's
history is whatever is still in ~/.claude/projects plus what claude-memory copied into raw/.
Everything goes through `checkpoint.take` with event `import`, one commit per session in time
order (the session's newest file mtime, oldest first): chunking, the partial-last-line rule and
the compare-and-swap are the hooks' own, and a second run finds nothing to add, so it commits
nothing.

A claude-memory raw/ backup is a `cp` of a session's transcript, found by the `sessionId` of its
records (the last record that has one: a resumed file starts with older sessions' records).
claude-memory made several per session and `cp` could leave a truncated one, so each is placed by
one rule, the same on every run:

1. its bytes are a prefix of (or equal to) a file already stored for the session, or of what the
   live transcript is about to store: nothing to add;
2. when Claude Code no longer has the session, the longest backup that extends what is stored
   (or the longest at all, when nothing is) becomes `main.jsonl`, whole lines only, as a hook
   would store it; the live transcript, when there is one, always wins `main.jsonl`;
3. whatever rule 1 still does not cover (a conflicting version, a subagent's copy, the cut last
   line of a truncated copy) is kept in full under `transcripts/<session>/imported/<file name>`
   (`-2`, `-3` ... when that name holds something else), as chunk files like any transcript.

Documents, markers and the other files of a claude-memory folder: legacy.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..errors import CmemError
from ..git import chunks, packing
from ..git.trees import subtree
from ..repo.store import Store
from ..repo.trailers import Trailer
from . import backup, checkpoint, recovery
from . import legacy as legacy_mod
from .legacy import Backup, mtime, valid_session

EVENT = "import"
IMPORTED = "imported"

# (done, total, what is being imported): the CLI draws a progress bar from it.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Session:
    id: str
    transcript: Path | None  # <id>.jsonl in Claude Code's projects folder, if still there
    backups: tuple[Backup, ...]
    time: float


@dataclass(frozen=True)
class Placement:
    """Where a backup's bytes are kept; no targets when they were all stored already."""

    source: Path
    session: str | None
    targets: tuple[str, ...]


@dataclass
class Report:
    sessions: int = 0
    commits: list[pygit2.Oid] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)  # sessions that got a commit
    placements: list[Placement] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # documents and other files committed
    problems: list[str] = field(default_factory=list)


def default_legacy(memory: Path) -> Path | None:
    """The folder `cmem init` adopted, when claude-memory left backups in it."""
    return legacy_mod.default_folder(memory)


def run(store: Store, device: str, projects: Path | None, legacy: Path | None = None,
        progress: Progress | None = None) -> Report:
    report = Report()
    backups = legacy_mod.backups(legacy, report.problems) if legacy is not None else []
    sessions = plan(projects, backups, report)
    report.sessions = len(sessions)
    total = len(sessions) + (legacy is not None)
    for index, session in enumerate(sessions):
        if progress is not None:
            progress(index, total, session.id)
        _import_session(store, device, session, report)
    if legacy is not None:
        if progress is not None:
            progress(len(sessions), total, "claude-memory files")
        import_files(store, device, legacy, backups, report)
    if progress is not None:
        progress(total, total, "done")
    if projects is not None:
        recovery.remember(store, projects)
    packing.start_if_due(store.gitdir)  # one commit per session: often many loose objects
    return report


def import_backups(store: Store, device: str, projects: Path | None, backups: list[Backup],
                   report: Report) -> None:
    """Only these backups, each session with its live transcript when Claude Code still has
    it (so the live one wins main.jsonl, as in `run`); no other session is touched."""
    sessions = [s for s in plan(projects, backups, report) if s.backups]
    report.sessions += len(sessions)
    for session in sessions:
        _import_session(store, device, session, report)


# --- what there is to import --------------------------------------------------------------

def plan(projects: Path | None, backups: list[Backup], report: Report) -> list[Session]:
    """Sessions in time order, each with its live transcript and its claude-memory backups."""
    live = _live(projects, report) if projects is not None else {}
    grouped: dict[str, list[Backup]] = {}
    for item in backups:
        if item.session is not None:
            grouped.setdefault(item.session, []).append(item)
    sessions = []
    for sid in set(live) | set(grouped):
        found = tuple(sorted(grouped.get(sid, []), key=lambda b: (b.mtime, b.path.name)))
        times = [mtime(live[sid])] if sid in live else [b.mtime for b in found]
        sessions.append(Session(sid, live.get(sid), found, max(times)))
    return sorted(sessions, key=lambda s: (s.time, s.id))


def _live(projects: Path, report: Report) -> dict[str, Path]:
    if not projects.is_dir():
        report.problems.append(f"{projects} is not a folder: no Claude Code transcripts imported")
        return {}
    found = {}
    for path in projects.glob("*.jsonl"):
        if path.is_file() and not path.is_symlink() and valid_session(path.stem):
            found[path.stem] = path
    for folder in projects.iterdir():
        if folder.is_dir() and valid_session(folder.name) and folder.name not in found:
            report.problems.append(f"{folder} has subagent or tool-result files but no "
                                   f"{folder.name}.jsonl beside it: not imported")
    return found


# --- one session --------------------------------------------------------------------------

def _import_session(store: Store, device: str, session: Session, report: Report) -> None:
    tip = store.tip()
    transcript, files, placements = _placements(store.repo, tip.tree if tip else None, session,
                                                store.filter)
    if transcript is None and not files:
        report.placements += placements
        return
    sources = ["projects"] * (session.transcript is not None) + \
        ["claude-memory"] * bool(session.backups)
    trailers = [(Trailer.IMPORT_SOURCE, ", ".join(sources))]
    if files:
        trailers.append((Trailer.IMPORTED, ", ".join(sorted({p.rsplit("/", 1)[0] for p in files}))))
    request = checkpoint.Request(EVENT, session.id, transcript, device, files=files,
                                 trailers=tuple(trailers))
    try:
        result = checkpoint.take(store, request)
    except (CmemError, OSError) as error:
        report.problems.append(f"import of session {session.id} failed: {error}")
        return
    report.problems += result.problems
    report.placements += placements
    if result.commit is not None:
        report.commits.append(result.commit)
        report.imported.append(session.id)


def _placements(repo: pygit2.Repository, base: pygit2.Tree | None, session: Session,
                clean: backup.Transform | None = None
                ) -> tuple[Path | None, dict[str, bytes], list[Placement]]:
    """The file `checkpoint.take` backs up as main.jsonl, chunk files to add under imported/,
    and where each backup ended up (the rule in the module docstring). Backups are compared
    with what is stored as they would be stored: redacted, when redaction is on."""
    if not session.backups:
        return session.transcript, {}, []
    folder = backup.session_folder(session.id)
    stored = stored_files(repo, subtree(base, folder))
    raw = {item: item.path.read_bytes() for item in session.backups}
    datas = {item: _cleaned(data, clean) for item, data in raw.items()}
    main, chosen = _main(stored.get(backup.MAIN), session, datas, clean)
    known = list(stored.values()) + ([main] if main is not None else [])
    taken = set(stored)
    files: dict[str, bytes] = {}
    placements = []
    for item in session.backups:
        targets = [f"{folder}/{backup.MAIN}"] if item is chosen else []
        if not any(k.startswith(datas[item]) for k in known):
            name = _free_name(taken, item.path.name)
            files.update(chunk_files(f"{folder}/{name}", raw[item]))  # redacted on commit
            known.append(datas[item])
            targets.append(f"{folder}/{name}")
        placements.append(Placement(item.path, session.id, tuple(targets)))
    return session.transcript or (chosen.path if chosen else None), files, placements


def _cleaned(data: bytes, clean: backup.Transform | None) -> bytes:
    return clean(data)[0] if clean is not None else data


def _main(stored: bytes | None, session: Session, datas: dict[Backup, bytes],
          clean: backup.Transform | None = None) -> tuple[bytes | None, Backup | None]:
    """What main.jsonl will hold after the commit, and the backup that provides it, if any."""
    if session.transcript is not None:
        live = _cleaned(backup.whole_lines(session.transcript.read_bytes()), clean)
        return (stored if stored is not None and stored.startswith(live) else live), None
    best: tuple[int, float, Backup] | None = None
    for item in session.backups:
        lines = backup.whole_lines(datas[item])
        extends = stored is None or (lines.startswith(stored) and len(lines) > len(stored))
        if not item.sidechain and lines and extends and \
                (best is None or (len(lines), item.mtime) > best[:2]):
            best = (len(lines), item.mtime, item)
    if best is None:
        return stored, None
    return backup.whole_lines(datas[best[2]]), best[2]


def _free_name(taken: set[str], name: str) -> str:
    stem, dot, suffix = name.partition(".")
    candidate, number = f"{IMPORTED}/{name}", 2
    while candidate in taken:
        candidate = f"{IMPORTED}/{stem}-{number}{dot}{suffix}"
        number += 1
    taken.add(candidate)
    return candidate


def stored_files(repo: pygit2.Repository, tree: pygit2.Tree | None, prefix: str = ""
                 ) -> dict[str, bytes]:
    """Every file stored in a session folder (a tree of chunk files), by its path in it."""
    found: dict[str, bytes] = {}
    if tree is None:
        return found
    listing = chunks.listing(repo, tree)
    if listing:
        found[prefix.rstrip("/")] = chunks.read_range(repo, listing)
    for entry in tree:
        if entry.type_str == "tree":
            inner = repo[entry.id]
            assert isinstance(inner, pygit2.Tree)
            found.update(stored_files(repo, inner, f"{prefix}{entry.name}/"))
    return found


def chunk_files(path: str, data: bytes) -> dict[str, bytes]:
    return {f"{path}/{piece.name}": piece.data for piece in chunks.cut(data)}


# --- documents and the rest of a claude-memory folder ------------------------------------

def import_files(store: Store, device: str, folder: Path, found: list[Backup],
                 report: Report) -> None:
    files = legacy_mod.files(store, folder, found)
    if not files:
        return
    request = checkpoint.Request(EVENT, None, None, device, files=files,
                                 subject=f"import: {len(files)} claude-memory files",
                                 trailers=((Trailer.IMPORT_SOURCE, "claude-memory"),))
    result = checkpoint.take(store, request)
    report.problems += result.problems
    if result.commit is not None:
        report.commits.append(result.commit)
        report.files += sorted(files)


# --- for people ---------------------------------------------------------------------------

def summary(report: Report) -> list[str]:
    """What the import did, in lines for the CLI."""
    kept = [p for p in report.placements if p.targets]
    lines = [f"{report.sessions} sessions looked at, {len(report.imported)} imported in "
             f"{len(report.commits)} commits"]
    if report.placements:
        lines.append(f"{len(report.placements)} claude-memory backups: {len(kept)} added, "
                     f"{len(report.placements) - len(kept)} already stored")
    lines += [f"  {p.source.name} -> {', '.join(p.targets)}" for p in kept]
    lines += [f"committed {path}" for path in report.files]
    if not report.commits:
        lines.append("nothing new to import")
    return lines
