"""Backing up a session: which files Claude Code keeps for it, and what changed in each.

Claude Code keeps a session as `<id>.jsonl` plus `<id>/subagents/*.jsonl` and
`<id>/tool-results/*` beside it. Each is stored under `transcripts/<id>/` as chunk files
(chunks.py). A transcript normally only grows, so the usual backup reads the file from the start
of its last stored chunk: the cost follows the bytes appended, not the size of the file.

Claude Code writes the transcript asynchronously, so its last line may still be half written: only
whole lines are committed and the rest waits for the next hook. A final line without a newline is
taken when it is already a complete JSON object (some files simply end that way).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pygit2

from ..git import chunks
from ..git.loose import LooseWriter
from ..git.repo import _Repository
from ..git.trees import lookup, subtree
from ..paths import check_session_id as check_session_id
from .layout import ROOT as ROOT

if TYPE_CHECKING:
    from ..git.pack import PackWriter

MAIN = "main.jsonl"
_HEAD_CHECK = 4096
# From this many new bytes on, chunks go into one pack written in parallel (a first backup, or a
# catch-up after a long gap) rather than loose objects one after another.
PACK_FROM = 4 * 1024 * 1024
_TAIL_STEP = 64 * 1024


@dataclass(frozen=True)
class Source:
    """One file Claude Code keeps for a session and the folder its chunks go to."""

    path: Path
    stored: str  # e.g. transcripts/<id>/main.jsonl

    @property
    def jsonl(self) -> bool:
        return self.path.suffix == ".jsonl"


@dataclass(frozen=True)
class FileBackup:
    """The new chunks of one file, and its size before and after, in bytes and lines."""

    source: Source
    changes: dict[str, pygit2.Oid | None]
    before: tuple[int, int]
    after: tuple[int, int]
    rewritten: bool
    redactions: int = 0
    unfinished: int = 0  # bytes of whole lines left for the next backup (deadline reached)


def session_folder(session_id: str) -> str:
    return f"{ROOT}/{session_id}"


def sources(session_id: str, transcript: Path) -> list[Source]:
    """The main transcript first, then subagents and tool results in name order."""
    found = [Source(transcript, f"{session_folder(session_id)}/{MAIN}")]
    extra = transcript.parent / session_id
    for kind in ("subagents", "tool-results"):
        folder = extra / kind
        if folder.is_dir() and not folder.is_symlink():
            found += [Source(p, f"{session_folder(session_id)}/{p.relative_to(extra).as_posix()}")
                      for p in sorted(folder.rglob("*"))
                      if _regular(p) and not any(map(_refused, p.relative_to(extra).parts))]
    return found


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _refused(name: str) -> bool:
    """Names git will not store in a tree (it guards against `.git` in every spelling)."""
    return name.lower().rstrip(". ") == ".git" or name.lower() == "git~1"


def back_up(repo: pygit2.Repository, base: pygit2.Tree | None, source: Source,
            transform: Transform | None = None,
            continued_elsewhere: Callable[[str], bool] | None = None,
            deadline: float | None = None, chunk_size: int = chunks.CHUNK_SIZE
            ) -> FileBackup | None:
    """The changes that bring the stored copy of `source` up to the file; None when there are
    none, or when the file on disk is only an older read of what is stored. `transform`
    (redaction) rewrites whole lines before they are stored. `continued_elsewhere(path)` says
    whether the stored copy holds another device's work: a file that differs from such a copy
    is merged with it, line by line, instead of replacing it. Past `deadline` (a monotonic
    time) a file that is new or grown stops at the chunk being written: what is done is whole
    lines, and the next backup goes on from there. New chunks hold at most `chunk_size` bytes
    (tests pass small ones to cross many chunk boundaries)."""
    folder = subtree(base, source.stored)
    stored = chunks.listing(repo, folder)
    place = _source_map(repo, base, source.stored, stored)
    change = transform or _unchanged
    with open(source.path, "rb") as handle:
        grown, counted = _grown(repo, handle, stored, place, change)
        end = committable_end(handle, source.jsonl)
        if grown and end <= place[1]:
            return None  # nothing new, or an older read of what another hook committed
        if grown or not stored:
            written: _Written | None = _appended(repo, handle, stored[-1] if grown else None,
                                                 place[0] if grown else 0, end, change, deadline,
                                                 chunk_size)
        else:
            handle.seek(0)
            written = _replacement(repo, stored, source, handle.read(end), change,
                                   continued_elsewhere, chunk_size)
    if written is None:
        return None
    return _file_backup(repo, base, source, stored, grown, written, counted, end)


def _appended(repo: pygit2.Repository, handle: BinaryIO, last: chunks.Chunk | None, start: int,
              end: int, change: Transform, deadline: float | None, chunk_size: int) -> _Written:
    """File bytes [start, end) stored after `last` (the stored chunk they replace), streamed;
    many bytes are redacted on two cores (helper.py)."""
    # Only for the store's own filter: what the helper returns is then taken as filtered, as
    # what that filter returns here is. The helper runs it without the remembering.
    shared = (repo.transform, repo.remember) if isinstance(repo, _Repository) \
        and repo.transform is not None and change is repo.filtering \
        and end - start >= PACK_FROM else None
    pieces = _redacted(chunks.stream(handle, start, end, last.line if last else 0, chunk_size),
                       last.offset if last else 0, change, shared)
    with contextlib.closing(pieces):  # past the deadline: the helper stops
        return _write(repo, pieces, end - start, deadline)


def _file_backup(repo: pygit2.Repository, base: pygit2.Tree | None, source: Source,
                 stored: list[chunks.Chunk], grown: bool, written: _Written, counted: int,
                 end: int) -> FileBackup | None:
    changes: dict[str, pygit2.Oid | None] = {
        f"{source.stored}/{c.name}": None for c in stored if not grown or c is stored[-1]}
    changes.update({f"{source.stored}/{name}": oid for name, oid in written.blobs.items()})
    if not changes:
        return None
    # A merged copy is no function of the file: no map, so the next backup merges again.
    mapped = None if written.merged else _new_map(repo, written.last, written.end)
    if mapped is not None or lookup(base, source.stored + SOURCE_MAP) is not None:
        changes[source.stored + SOURCE_MAP] = mapped
    last = written.last
    after = (last.offset + len(last.data), last.line + chunks.count_lines(last.data)) \
        if last else (0, 0)
    return FileBackup(source, changes, chunks.stored_size(repo, stored), after,
                      rewritten=not grown and bool(stored) and not written.merged,
                      redactions=written.redactions - (counted if grown else 0),
                      unfinished=end - written.end)


Transform = Callable[[bytes], "tuple[bytes, int]"]
# Beside a stored file whose chunks differ from the file (redaction): "<file offset of the last
# chunk> <file offset of its end>". Outside the chunk folder, so that its chunks alone still
# concatenate to the stored transcript.
SOURCE_MAP = ".source"


@dataclass(frozen=True)
class _Piece(chunks.Piece):
    source: bytes = b""  # the file's bytes this chunk stores (before redaction)
    at: int = 0  # where they start in the file


def _data(piece: chunks.Piece) -> bytes:
    return piece.data


def _unchanged(data: bytes) -> tuple[bytes, int]:
    return data, 0


@dataclass
class _Written:
    """New chunk blobs by name, the last piece (kept for its map and size), the file offset the
    stored bytes reach, and the secrets replaced on the way."""

    blobs: dict[str, pygit2.Oid] = field(default_factory=dict)
    last: _Piece | None = None
    end: int = 0
    redactions: int = 0
    merged: bool = False


def _redacted(pieces: Iterable[chunks.Piece], offset: int, change: Transform,
              shared: tuple[Transform, Callable[[bytes], None]] | None = None
              ) -> Generator[tuple[_Piece, int], None, None]:
    """Cut the file's bytes at line ends (so boundaries follow the file, not the redacted
    copy), redact each piece, and place the pieces one after another in the stored file.
    With `shared` (the filter, and what records its results), a helper process redacts some
    of the pieces (helper.py)."""
    if shared is None:
        results: Iterable[tuple[chunks.Piece, tuple[bytes, int]]] = (
            (piece, change(piece.data)) for piece in pieces)
    else:
        from . import helper  # a second process: only for many bytes (PACK_FROM)
        results = helper.redacted(pieces, _data, *shared)
    for piece, (stored, count) in results:
        yield _Piece(offset, piece.line, stored, source=piece.data, at=piece.offset), count
        offset += len(stored)


def _write(repo: pygit2.Repository, pieces: Iterable[tuple[_Piece, int]], size: int,
           deadline: float | None) -> _Written:
    """Store the pieces as blobs: many bytes go into one new pack, compressed in parallel, a
    few (the usual append) into loose objects, compressed while the next piece is redacted.
    Stops at `deadline` after whole chunks."""
    sink: LooseWriter | PackWriter
    if size >= PACK_FROM:
        from ..git.pack import PackWriter
        sink = PackWriter(repo)
    else:
        sink = LooseWriter(repo)
    written = _Written()
    try:
        for piece, count in pieces:
            written.blobs[piece.name] = sink.add(piece.data)
            written.last, written.redactions = piece, written.redactions + count
            written.end = piece.at + len(piece.source)
            if deadline is not None and time.monotonic() > deadline:
                break
        sink.finish()
    except BaseException:
        sink.abandon()
        raise
    return written


def _replacement(repo: pygit2.Repository, stored: list[chunks.Chunk], source: Source,
                 data: bytes, change: Transform,
                 continued_elsewhere: Callable[[str], bool] | None, chunk_size: int
                 ) -> _Written | None:
    """A file that no longer extends its stored copy: stored as it is now, or merged with the
    copy when the session went on on another device too; None when it is an older read."""
    redacted = list(_redacted(chunks.cut(data, size=chunk_size), 0, change))
    pieces = [piece for piece, _ in redacted]
    kept = chunks.read_range(repo, stored)
    new = b"".join(p.data for p in pieces)
    if kept.startswith(new):
        return None  # an older read of what is stored
    merged = _same_start(kept, new) and continued_elsewhere is not None \
        and continued_elsewhere(source.stored)
    if merged:
        # The session went on elsewhere too (resumed on another device and merged in):
        # keep every line of both rather than replace the other device's lines.
        pieces = _as_pieces(merge_lines(kept, new), chunk_size)
        if b"".join(p.data for p in pieces) == kept:
            return None
    written = _write(repo, ((p, 0) for p in pieces), len(data), None)
    written.redactions = sum(count for _, count in redacted)
    written.merged, written.end = merged, len(data)
    return written


def _same_start(kept: bytes, new: bytes) -> bool:
    """Whether two versions of a transcript begin with the same record: the same session,
    continued differently, rather than a file rewritten from scratch."""
    first = kept[:kept.find(b"\n") + 1]
    return bool(first) and new.startswith(first)


def _as_pieces(data: bytes, chunk_size: int) -> list[_Piece]:
    return [_Piece(p.offset, p.line, p.data, source=p.data)
            for p in chunks.cut(data, size=chunk_size)]


def _new_map(repo: pygit2.Repository, last: _Piece | None, end: int) -> pygit2.Oid | None:
    """The map for the new last chunk; None (no map) where stored and file offsets agree."""
    if last is None or (last.data == last.source and last.offset == end - len(last.source)):
        return None
    return repo.create_blob(f"{end - len(last.source)} {end}\n".encode())


def covered(repo: pygit2.Repository, base: pygit2.Tree | None, path: str) -> int:
    """How many bytes of the file the stored copy at `path` covers."""
    return _source_map(repo, base, path, chunks.listing(repo, subtree(base, path)))[1]


def _source_map(repo: pygit2.Repository, base: pygit2.Tree | None, path: str,
                stored: list[chunks.Chunk]) -> tuple[int, int]:
    """(file offset where the last chunk's bytes start, where they end). Without redaction
    these are the stored offsets; with it the stored copy differs in length, so they are
    kept in a small blob beside the chunks."""
    blob = lookup(base, path + SOURCE_MAP)
    if isinstance(blob, pygit2.Blob):
        try:
            first, end = map(int, bytes(blob.data).split())
        except ValueError:
            first, end = -1, -1
        if 0 <= first <= end:
            return first, end
    return _identity_map(repo, stored)


def _identity_map(repo: pygit2.Repository, stored: list[chunks.Chunk]) -> tuple[int, int]:
    if not stored:
        return 0, 0
    return stored[-1].offset, chunks.stored_size(repo, stored)[0]


def _grown(repo: pygit2.Repository, handle: BinaryIO, stored: list[chunks.Chunk],
           place: tuple[int, int], change: Transform) -> tuple[bool, int]:
    """Whether the file still holds what is stored, so only its tail needs cutting again, and
    the redactions already counted in the last chunk (it is redacted again with the tail).
    The last chunk is compared in full; a rewritten transcript almost always also differs in
    its first records, which are cheap to compare as well."""
    if not stored:
        return False, 0
    start, end = place
    if os.fstat(handle.fileno()).st_size < end:
        return False, 0
    head = chunks.blob_data(repo, stored[0].oid)
    handle.seek(0)
    first = handle.read(_HEAD_CHECK)
    if change is _unchanged:
        if not head.startswith(first[:len(head)]) and not first.startswith(head[:len(first)]):
            return False, 0
    elif b"\n" in first and not head.startswith(change(first[:first.index(b"\n") + 1])[0]):
        return False, 0
    handle.seek(start)
    again, counted = change(handle.read(end - start))
    same = again == chunks.blob_data(repo, stored[-1].oid)
    return same, counted if same else 0


def committable_end(handle: BinaryIO, jsonl: bool) -> int:
    """Where the whole lines of an open file end (what `whole_lines` keeps), found by reading
    backwards from its end only as far as its last newline."""
    size = os.fstat(handle.fileno()).st_size
    if size == 0:
        # An empty-looking file is read all the same, so that one whose reads fail (a revoked
        # permission, a special file) is reported rather than taken for "nothing new".
        handle.read(1)
    if not jsonl:
        return size
    position = size
    while position > 0:
        step = min(position, _TAIL_STEP)
        handle.seek(position - step)
        newline = handle.read(step).rfind(b"\n")
        if newline != -1:
            position = position - step + newline + 1
            break
        position -= step
    handle.seek(position)
    tail = handle.read(size - position)
    return size if tail and _is_record(tail) else position


def whole_lines(data: bytes) -> bytes:
    """`data` up to its last newline, plus a final unterminated line if it is a whole record."""
    end = data.rfind(b"\n") + 1
    tail = data[end:]
    return data if tail and _is_record(tail) else data[:end]


def _is_record(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):
        return False


def merge_lines(first: bytes, second: bytes) -> bytes:
    """Every line of both, each once, in order: the longer when one extends the other, else
    the shared prefix, then the rest of `first`, then what `second` adds to it."""
    if second.startswith(first):
        return second
    if first.startswith(second):
        return first
    one, two = _lines(first), _lines(second)
    shared = 0
    while shared < min(len(one), len(two)) and one[shared] == two[shared]:
        shared += 1
    have = collections.Counter(one[shared:])
    extra = []
    for line in two[shared:]:
        if have[line]:
            have[line] -= 1
        else:
            extra.append(line)
    return b"".join(one + extra)


def _lines(data: bytes) -> list[bytes]:
    """Lines with their newlines; a last line without one gets it, so lines join cleanly."""
    lines = data.splitlines(keepends=True)
    if lines and not lines[-1].endswith(b"\n"):
        lines[-1] += b"\n"
    return lines
