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

Session documents of another claude-memory folder go to `sessions/` (a document already stored
under any name is not added again; a different one with a taken name gets `-imported`); its other
files (memory files, markers, logs, backups without a session id) are kept under
`imported/claude-memory/`, where a later import replaces them and history keeps the earlier
version. A folder `cmem init` adopted (.claude/memory itself) is already committed: there only
files written since, and backups without a session id, are committed where they are. A marker
(`.pending-backup-exit`, `.last-compact-backup`, ...) names a backup; a named backup outside raw/
is imported like the others, and one that is gone is reported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pygit2

from . import backup, checkpoint, chunks
from .errors import CmemError
from .store import Store, subtree

EVENT = "import"
IMPORTED = "imported"
LEGACY = f"{IMPORTED}/claude-memory"
RAW = "raw"
SESSIONS = "sessions"

# (done, total, what is being imported): the CLI draws a progress bar from it.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Backup:
    """One claude-memory copy of a transcript, and the session its records name."""

    path: Path
    session: str | None
    sidechain: bool  # a subagent's records: never a session's main transcript
    mtime: float


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
    return memory if (memory / RAW).is_dir() else None


def run(store: Store, device: str, projects: Path | None, legacy: Path | None = None,
        progress: Progress | None = None) -> Report:
    report = Report()
    backups = _legacy_backups(legacy, report) if legacy is not None else []
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
        _import_files(store, device, legacy, backups, report)
    if progress is not None:
        progress(total, total, "done")
    return report


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
        times = [_mtime(live[sid])] if sid in live else [b.mtime for b in found]
        sessions.append(Session(sid, live.get(sid), found, max(times)))
    return sorted(sessions, key=lambda s: (s.time, s.id))


def _live(projects: Path, report: Report) -> dict[str, Path]:
    if not projects.is_dir():
        report.problems.append(f"{projects} is not a folder: no Claude Code transcripts imported")
        return {}
    found = {}
    for path in projects.glob("*.jsonl"):
        if path.is_file() and not path.is_symlink() and _valid(path.stem):
            found[path.stem] = path
    for folder in projects.iterdir():
        if folder.is_dir() and _valid(folder.name) and folder.name not in found:
            report.problems.append(f"{folder} has subagent or tool-result files but no "
                                   f"{folder.name}.jsonl beside it: not imported")
    return found


def _valid(session_id: str) -> bool:
    try:
        backup.check_session_id(session_id)
    except CmemError:
        return False
    return True


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _legacy_backups(folder: Path, report: Report) -> list[Backup]:
    if not folder.is_dir():
        report.problems.append(f"{folder} is not a folder: no claude-memory backups imported")
        return []
    raw = folder / RAW
    found = raw.rglob("*.jsonl") if raw.is_dir() else folder.glob("*.jsonl")
    paths = {path.resolve() for path in found}
    paths |= set(_marked(folder, report))
    return [_backup(p) for p in sorted(paths) if p.is_file() and not p.is_symlink()]


def _marked(folder: Path, report: Report) -> Iterable[Path]:
    """Backups that claude-memory's marker files name (they hold the backup's path)."""
    for marker in sorted(folder.glob(".*backup*")):
        if not marker.is_file() or marker.name == ".backup-log":
            continue
        named = marker.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if not named or not named[0].strip().endswith(".jsonl"):
            continue
        target = _resolve_marked(folder, Path(named[0].strip()))
        if target is None:
            report.problems.append(f"{marker} names {named[0].strip()}, which is gone")
            continue
        yield target.resolve()


def _resolve_marked(folder: Path, named: Path) -> Path | None:
    """The path as written, or the same file name in raw/ (the folder may have moved)."""
    for candidate in (named if named.is_absolute() else folder / named, folder / RAW / named.name):
        if candidate.is_file():
            return candidate
    return None


def _backup(path: Path) -> Backup:
    session, sidechain = _owner(path.read_bytes())
    return Backup(path.resolve(), session, sidechain, _mtime(path))


def _owner(data: bytes) -> tuple[str | None, bool]:
    """The session of the last record naming one, and whether that record is a subagent's."""
    for line in reversed(data.splitlines()):
        if b'"sessionId"' not in line:
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            continue
        sid = record.get("sessionId") if isinstance(record, dict) else None
        if isinstance(sid, str) and _valid(sid):
            return sid, record.get("isSidechain") is True
    return None, False


# --- one session --------------------------------------------------------------------------

def _import_session(store: Store, device: str, session: Session, report: Report) -> None:
    tip = store.tip()
    transcript, files, placements = _placements(store.repo, tip.tree if tip else None, session)
    if transcript is None and not files:
        report.placements += placements
        return
    sources = ["projects"] * (session.transcript is not None) + \
        ["claude-memory"] * bool(session.backups)
    trailers = [("Cmem-Import-Source", ", ".join(sources))]
    if files:
        trailers.append(("Cmem-Imported", ", ".join(sorted({p.rsplit("/", 1)[0] for p in files}))))
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


def _placements(repo: pygit2.Repository, base: pygit2.Tree | None, session: Session
                ) -> tuple[Path | None, dict[str, bytes], list[Placement]]:
    """The file `checkpoint.take` backs up as main.jsonl, chunk files to add under imported/,
    and where each backup ended up (the rule in the module docstring)."""
    if not session.backups:
        return session.transcript, {}, []
    folder = backup.session_folder(session.id)
    stored = stored_files(repo, subtree(base, folder))
    datas = {item: item.path.read_bytes() for item in session.backups}
    main, chosen = _main(stored.get(backup.MAIN), session, datas)
    known = list(stored.values()) + ([main] if main is not None else [])
    taken = set(stored)
    files: dict[str, bytes] = {}
    placements = []
    for item in session.backups:
        targets = [f"{folder}/{backup.MAIN}"] if item is chosen else []
        if not any(k.startswith(datas[item]) for k in known):
            name = _free_name(taken, item.path.name)
            files.update(chunk_files(f"{folder}/{name}", datas[item]))
            known.append(datas[item])
            targets.append(f"{folder}/{name}")
        placements.append(Placement(item.path, session.id, tuple(targets)))
    return session.transcript or (chosen.path if chosen else None), files, placements


def _main(stored: bytes | None, session: Session, datas: dict[Backup, bytes]
          ) -> tuple[bytes | None, Backup | None]:
    """What main.jsonl will hold after the commit, and the backup that provides it, if any."""
    if session.transcript is not None:
        live = backup.whole_lines(session.transcript.read_bytes())
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

def _import_files(store: Store, device: str, folder: Path, backups: list[Backup],
                  report: Report) -> None:
    tip = store.tip()
    base = tip.tree if tip else None
    placed = {b.path for b in backups if b.session is not None}
    loose = [b.path for b in backups if b.session is None]
    if folder.resolve() == store.workdir.resolve():
        wanted = _adopted_files(folder, loose)
    else:
        wanted = _foreign_files(folder, base, placed, loose)
    files = {path: data for path, data in wanted.items() if not _stored(store, base, path, data)}
    if not files:
        return
    request = checkpoint.Request(EVENT, None, None, device, files=files,
                                 subject=f"import: {len(files)} claude-memory files",
                                 trailers=(("Cmem-Import-Source", "claude-memory"),))
    result = checkpoint.take(store, request)
    report.problems += result.problems
    if result.commit is not None:
        report.commits.append(result.commit)
        report.files += sorted(files)


def _stored(store: Store, base: pygit2.Tree | None, path: str, data: bytes) -> bool:
    blob = store.blob_at(base, path)
    return blob is not None and blob.id == pygit2.hash(data)


def _adopted_files(folder: Path, loose: list[Path]) -> dict[str, bytes]:
    """In the adopted folder: documents and markers written since `cmem init`, and backups no
    session claims, committed where they are (or under imported/ when they lie outside)."""
    paths = loose + list((folder / SESSIONS).rglob("*.md")) + list(folder.glob("session-*.md"))
    paths += list(folder.glob(".*backup*"))
    return {_place(p, folder, ""): p.read_bytes() for p in paths if _regular(p)}


def _foreign_files(folder: Path, base: pygit2.Tree | None, placed: set[Path],
                   loose: list[Path]) -> dict[str, bytes]:
    """Another claude-memory folder: documents into sessions/, everything else but the backups
    placed with their sessions into imported/claude-memory/."""
    present = _blob_ids(subtree(base, SESSIONS))
    taken = _names(subtree(base, SESSIONS))
    files: dict[str, bytes] = {}
    for path in _walk(folder) + [p for p in loose if not _inside(p, folder)]:
        if path.resolve() in placed:
            continue
        data = path.read_bytes()
        if not _is_document(_place(path, folder, "")):
            files[_place(path, folder, LEGACY + "/")] = data
        elif pygit2.hash(data) not in present:
            present.add(pygit2.hash(data))
            files[f"{SESSIONS}/{_document_name(taken, path.name)}"] = data
    return files


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        found += [Path(root) / n for n in sorted(names) if _regular(Path(root) / n)]
    return found


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _place(path: Path, folder: Path, prefix: str) -> str:
    """Its path in the folder behind `prefix`; a file from outside goes to imported/."""
    if _inside(path, folder):
        return prefix + path.resolve().relative_to(folder.resolve()).as_posix()
    return f"{LEGACY}/{path.name}"


def _is_document(relative: str) -> bool:
    """claude-memory kept documents in sessions/, older versions at the top as session-*.md."""
    return relative.endswith(".md") and (relative.startswith(f"{SESSIONS}/")
                                         or relative.startswith("session-"))


def _document_name(taken: set[str], name: str) -> str:
    stem, candidate, number = name.removesuffix(".md"), name, 1
    while candidate in taken:
        candidate = f"{stem}-imported{'' if number == 1 else f'-{number}'}.md"
        number += 1
    taken.add(candidate)
    return candidate


def _names(tree: pygit2.Tree | None) -> set[str]:
    return {entry.name or "" for entry in tree} if tree is not None else set()


def _blob_ids(tree: pygit2.Tree | None) -> set[pygit2.Oid]:
    return {entry.id for entry in tree if entry.type_str == "blob"} if tree is not None else set()


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
