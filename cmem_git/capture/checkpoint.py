"""A checkpoint: one commit of a session's transcripts together with the current memory files.

This is what every hook does. The commit is built by `Store.commit`, which may call the builder a
second time on a newer tip; the builder therefore reads everything afresh on each call and never
replaces a stored transcript with an older read of itself (backup.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from ..errors import StorageError
from ..git import chunks
from ..git.repo import Draft
from ..git.trees import lookup
from ..repo import automemory, memory
from ..repo.config import Config
from ..repo.history import format_message, plural, size_text, walk
from ..repo.store import Store
from ..repo.trailers import Trailer
from ..repo.worktree import blob_bytes
from . import backup

if TYPE_CHECKING:
    from ..secrets.redact import Redactor

Edit = Callable[[bytes], bytes]
_ELSEWHERE_WALK = 5000


@dataclass(frozen=True)
class Request:
    event: str
    session_id: str | None
    transcript: Path | None
    device: str
    detail: tuple[str, str] | None = None  # e.g. ("Reason", "prompt_input_exit")
    edit_active: Edit | None = None
    files: Mapping[str, bytes] = field(default_factory=dict)  # more files to commit as given
    trailers: tuple[tuple[str, str], ...] = ()
    subject: str | None = None
    always: bool = False  # commit even when the tree does not change (a marker commit)
    deadline: float | None = None  # monotonic time: stop storing a long file there (whole lines)
    chunk_size: int = chunks.CHUNK_SIZE  # the most bytes a new chunk holds


@dataclass
class Result:
    commit: pygit2.Oid | None = None
    files: list[backup.FileBackup] = field(default_factory=list)
    memory: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    redactions: int = 0  # in files given as they are (imports)

    @property
    def added(self) -> tuple[int, int]:
        """(bytes over all of the session's files, records): records are the lines of its
        JSONL transcripts, not of spilled tool output (tool-results/*.txt)."""
        return (sum(f.after[0] - f.before[0] for f in self.files if not f.rewritten),
                sum(f.after[1] - f.before[1] for f in self.files
                    if not f.rewritten and f.source.jsonl))


def take(store: Store, request: Request, wait: float | None = None) -> Result:
    result = Result()

    def build(tip: pygit2.Commit | None) -> Draft | None:
        base = tip.tree if tip is not None else None
        result.redactions = 0
        result.files, result.problems = _transcripts(store.repo, base, tip, request,
                                                     store.filter)
        changes, read, result.memory = _memory(store, base, request.edit_active)
        for item in result.files:
            changes.update(item.changes)
        for path, data in request.files.items():
            # Transcript bytes anywhere: chunk files, and JSONL an import keeps as it found it.
            if store.filter is not None and (path.startswith(backup.ROOT + "/")
                                             or path.endswith(".jsonl")):
                data, count = store.filter(data)
                result.redactions += count
            changes[path] = store.repo.create_blob(data)
        if not changes and not request.always:
            return None
        tree = store.build_tree(base, changes)
        if base is not None and tree == base.id and not request.always:
            return None
        return Draft(tree, _message(request, result, store.filter is not None), read)

    result.commit = store.commit(build, wait)
    result.problems += store.warnings
    store.warnings.clear()
    return result


def _from_elsewhere(repo: pygit2.Repository, tip: pygit2.Commit | None, stored: str,
                    device: str) -> bool:
    """Whether another device (or a merge) ever changed `stored`: then the session went on
    elsewhere too, and a local copy that differs from it is merged rather than taken as a
    rewrite. Only asked when the local file no longer extends what is stored."""
    for item in walk(repo, tip.id if tip is not None else None, _ELSEWHERE_WALK):
        commit = repo[item.id]
        assert isinstance(commit, pygit2.Commit)
        mine = lookup(commit.tree, stored)
        before = lookup(commit.parents[0].tree, stored) if commit.parents else None
        changed = (mine.id if mine else None) != (before.id if before else None)
        if changed and (len(commit.parents) > 1 or item.trailers.get(Trailer.DEVICE) != device):
            return True
    return False


def _transcripts(repo: pygit2.Repository, base: pygit2.Tree | None, tip: pygit2.Commit | None,
                 request: Request, transform: backup.Transform | None
                 ) -> tuple[list[backup.FileBackup], list[str]]:
    if request.session_id is None or request.transcript is None:
        return [], []
    problem = _unusable(request.transcript)
    if problem:
        return [], [problem]
    files, problems = [], []
    for source in backup.sources(request.session_id, request.transcript):
        try:
            item = backup.back_up(repo, base, source, transform,
                                  lambda stored: _from_elsewhere(repo, tip, stored,
                                                                 request.device),
                                  request.deadline, request.chunk_size)
        except OSError as error:
            problems.append(f"could not read {source.path}: {error.strerror or error}")
            continue
        if item is not None:
            files.append(item)
        if item is not None and item.unfinished:
            problems.append(f"{source.path.name}: {size_text(item.after[0], signed=False)} "
                            f"backed up, {size_text(item.unfinished, signed=False)} left for "
                            "the next hook (time budget spent)")
    return files, problems


def _unusable(transcript: Path) -> str | None:
    if not transcript.exists():
        return f"transcript {transcript} does not exist (yet): nothing to back up"
    if not transcript.is_file():
        return f"transcript {transcript} is not a regular file: not backed up"
    return None


def _memory(store: Store, base: pygit2.Tree | None, edit: Edit | None
            ) -> tuple[dict[str, pygit2.Oid | None], dict[str, pygit2.Oid], list[str]]:
    """Blob changes for the memory files, and the ids of what was read from disk.

    A working file counts as edited only when it differs from the index, as in git. Comparing
    it with the tip instead would take a file that merely lags behind a commit another hook
    just made (its files are written after its branch moves) for an edit, and revert it."""
    changes: dict[str, pygit2.Oid | None] = {}
    read: dict[str, pygit2.Oid] = {}
    synced = _index_ids(store)
    for name in memory.FILES:
        stored = store.blob_at(base, name)
        data = memory.read(store.workdir, name)
        if data is not None:
            read[name] = pygit2.hash(data)
            if read[name] == synced.get(name):
                data = None  # not edited since the last sync: the tip's version stands
            elif stored is not None and name == memory.ACTIVE:
                data = memory.keep_managed(data, blob_bytes(store.repo, synced.get(name)),
                                           bytes(stored.data))
        if data is None and stored is not None:
            data = bytes(stored.data)
        if edit is not None and name == memory.ACTIVE:
            data = edit(data or b"")
        if data is not None and (stored is None or stored.id != pygit2.hash(data)):
            changes[name] = store.repo.create_blob(data)
    auto, auto_read = automemory.changes(store, base)  # Claude Code's own memory too
    changes.update(auto)
    read.update(auto_read)
    return changes, read, sorted(changes)


def _index_ids(store: Store) -> dict[str, pygit2.Oid]:
    try:
        index = store.repo.index
        index.read(True)
    except pygit2.GitError as error:
        # Not a full disk (what a GitError while building suggests): say what helps.
        raise StorageError(f"the index of {store.workdir} is corrupt ({error})",
                           hint="`cmem doctor --fix` rebuilds it from the last commit") from None
    ids = {}
    for name in memory.FILES:
        try:
            ids[name] = index[name].id
        except KeyError:
            continue
    return ids


def _message(request: Request, result: Result, redacting: bool) -> str:
    added_bytes, added_lines = result.added
    session = (request.session_id or "")[:8]
    summary = f"+{plural(added_lines, 'record')}, {size_text(added_bytes)}" if result.files \
        else "memory files"
    detail = f" ({request.detail[1]})" if request.detail else ""
    subject = request.subject or f"{request.event} {session}: {summary}{detail}".replace("  ", " ")
    body = [f"{f.source.stored}: {_change(f)}" for f in result.files]
    body += [f"{name}: updated" for name in result.memory]
    return format_message(subject, body, _trailers(request, result, redacting))


def _trailers(request: Request, result: Result, redacting: bool) -> list[tuple[str, str]]:
    trailers = [(Trailer.EVENT, request.event)]
    if request.session_id:
        trailers.append((Trailer.SESSION, request.session_id))
    if request.detail:
        trailers.append((Trailer.PREFIX + request.detail[0], request.detail[1]))
    trailers.append((Trailer.DEVICE, request.device))
    main = next((f for f in result.files if f.source.stored.endswith("/" + backup.MAIN)), None)
    if main is not None:
        trailers += [(Trailer.TRANSCRIPT_BYTES, str(main.after[0])),
                     (Trailer.TRANSCRIPT_LINES, str(main.after[1]))]
    if result.files:
        added_bytes, added_lines = result.added
        trailers += [(Trailer.ADDED_BYTES, str(added_bytes)),
                     (Trailer.ADDED_LINES, str(added_lines)),
                     (Trailer.FILES, str(len(result.files)))]
    rewritten = [f.source.stored for f in result.files if f.rewritten]
    if rewritten:
        trailers.append((Trailer.REWRITTEN, ", ".join(rewritten)))
    if result.memory:
        trailers.append((Trailer.MEMORY, ", ".join(result.memory)))
    if redacting and (result.files or request.files):
        count = result.redactions + sum(f.redactions for f in result.files)
        trailers.append((Trailer.REDACTIONS, str(count)))
    return trailers + list(request.trailers)


def _change(item: backup.FileBackup) -> str:
    if item.rewritten:
        return f"rewritten, now {plural(item.after[1], 'line')}, " \
            f"{size_text(item.after[0], signed=False)}"
    return f"+{plural(item.after[1] - item.before[1], 'line')}, " \
        f"{size_text(item.after[0] - item.before[0])}"


def redaction(config: Config) -> backup.Transform | None:
    """The transcript filter the config asks for: secrets replaced, counted."""
    if not config.redaction:
        return None
    rules: list[Redactor] = []

    def transform(data: bytes) -> tuple[bytes, int]:
        # Compiled on first use: a SessionStart with nothing to back up never pays for it.
        if not rules:
            rules.append(secret_rules(config))
        clean, counts = rules[0].redact(data)
        return clean, sum(counts.values())

    return transform


def secret_rules(config: Config) -> Redactor:
    from ..secrets.redact import Redactor

    return Redactor(config.redaction_extra, config.redaction_allow)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
