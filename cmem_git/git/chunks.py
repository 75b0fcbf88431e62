"""Transcript files ⇄ chunk files.

A transcript is stored as a folder of blobs, each named `<byte offset>-<line offset>` with fixed
widths, so name order is byte order and concatenating the blobs gives back Claude Code's file.
Chunks are cut after a newline and hold at most CHUNK_SIZE bytes (a longer line is a chunk of its
own). When the file grows only its last chunk is cut again, from that chunk's own offset: every
earlier boundary stays where it was, so a backup writes objects for the new tail only and an
incremental push sends only those. The names also answer "how many bytes and lines did this file
have" without reading it, which is what deltas and the hook's trailers need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pygit2

# 256 KiB keeps the rewritten tail small (the repository stays near gzip size after many
# backups) while a 100 MiB transcript is still only ~400 tree entries.
CHUNK_SIZE = 256 * 1024
CHUNK_NAME = re.compile(r"^(\d{12})-(\d{9})$")


@dataclass(frozen=True)
class Chunk:
    offset: int
    line: int
    oid: pygit2.Oid

    @property
    def name(self) -> str:
        return chunk_name(self.offset, self.line)


@dataclass(frozen=True)
class Piece:
    """A chunk about to be written: its place in the file and its bytes."""

    offset: int
    line: int
    data: bytes

    @property
    def name(self) -> str:
        return chunk_name(self.offset, self.line)


def chunk_name(offset: int, line: int) -> str:
    return f"{offset:012d}-{line:09d}"


def cut(data: bytes, offset: int = 0, line: int = 0, size: int | None = None) -> list[Piece]:
    """Split `data`, which starts at byte `offset` and line `line` of its file, into pieces."""
    size = size or CHUNK_SIZE
    pieces = []
    start = 0
    while start < len(data):
        end = _cut_point(data, start, size)
        piece = data[start:end]
        pieces.append(Piece(offset + start, line, piece))
        line += piece.count(b"\n")
        start = end
    return pieces


def stream(handle: BinaryIO, start: int, end: int, line: int = 0,
           size: int | None = None) -> Iterator[Piece]:
    """The pieces `cut` makes of bytes [start, end) of an open file, reading only as far as the
    next cut point needs: a few chunks in memory whatever the file's size (or one long line)."""
    size = size or CHUNK_SIZE
    handle.seek(start)
    # Pieces are cut at `at` in the buffer rather than the buffer cut after each piece: the
    # rest of a block is copied once per read, not once per piece (~0.1 s per 100 MiB).
    buffer, at, offset, left = b"", 0, start, end - start
    while at < len(buffer) or left:
        # A cut is final once the buffer is past `size` and holds a newline, or the end is read.
        while left and (len(buffer) - at <= size or buffer.find(b"\n", at) < 0):
            block = handle.read(min(left, max(size, 1 << 20)))
            left = left - len(block) if block else 0  # a file cut short ends the stream
            buffer, at = buffer[at:] + block, 0
        cut_at = _cut_point(buffer, at, size)
        piece, at = buffer[at:cut_at], cut_at
        yield Piece(offset, line, piece)
        offset += len(piece)
        line += piece.count(b"\n")


def _cut_point(data: bytes, start: int, size: int) -> int:
    if len(data) - start <= size:
        return len(data)
    newline = data.rfind(b"\n", start, start + size)
    if newline == -1:
        newline = data.find(b"\n", start + size)
    return len(data) if newline == -1 else newline + 1


def listing(repo: pygit2.Repository, tree: pygit2.Tree | None) -> list[Chunk]:
    """The chunks of one stored file (a tree of chunk blobs), in file order."""
    if tree is None:
        return []
    chunks = []
    for entry in tree:
        match = CHUNK_NAME.match(entry.name or "")
        if match and entry.type_str == "blob":
            chunks.append(Chunk(int(match[1]), int(match[2]), entry.id))
    return sorted(chunks, key=lambda c: c.offset)


def stored_size(repo: pygit2.Repository, chunks: list[Chunk]) -> tuple[int, int]:
    """(bytes, lines) of a stored file, reading only its last chunk."""
    if not chunks:
        return 0, 0
    last = chunks[-1]
    data = blob_data(repo, last.oid)
    return last.offset + len(data), last.line + count_lines(data)


def count_lines(data: bytes) -> int:
    """Lines in `data`, a final one without its newline included (names count newlines only,
    so that they stay put when that line is finished)."""
    return data.count(b"\n") + (not data.endswith(b"\n") if data else 0)


def blob_data(repo: pygit2.Repository, oid: pygit2.Oid) -> bytes:
    """A chunk's bytes. The last few are kept: a backup reads the stored last chunk up to four
    times (its size, the check that the file still holds it, the map), and libgit2 caches no
    blobs. Blobs never change, so an id is a safe key."""
    found = _RECENT.get(oid)
    if found is None:
        blob = repo[oid]
        assert isinstance(blob, pygit2.Blob)
        found = bytes(blob.data)
        if len(_RECENT) >= _KEEP:
            del _RECENT[next(iter(_RECENT))]
        _RECENT[oid] = found
    return found


_RECENT: dict[pygit2.Oid, bytes] = {}
_KEEP = 4


def read_range(repo: pygit2.Repository, chunks: list[Chunk], start: int = 0,
               end: int | None = None) -> bytes:
    """Bytes [start, end) of a stored file, touching only the chunks that overlap the range."""
    return b"".join(parts(repo, chunks, start, end))


def parts(repo: pygit2.Repository, chunks: list[Chunk], start: int = 0,
          end: int | None = None) -> Iterator[bytes]:
    """Bytes [start, end) of a stored file, one chunk at a time: readers that write the file
    somewhere (`cmem cat`, restore) hold one chunk in memory, not the file."""
    for index, chunk in enumerate(chunks):
        following = chunks[index + 1].offset if index + 1 < len(chunks) else None
        if following is not None and following <= start:
            continue
        if end is not None and chunk.offset >= end:
            break
        data = blob_data(repo, chunk.oid)
        low = max(start - chunk.offset, 0)
        high = len(data) if end is None else min(end - chunk.offset, len(data))
        yield data[low:high]
