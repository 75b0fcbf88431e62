"""Writing many new blobs at once as one git pack file.

A first backup of a 100 MiB transcript is ~400 chunks. As loose objects that is 400 files, each
compressed in turn; git's own `git add` is faster only because it compresses at level 1. A pack
is one sequential file: the blobs are framed in worker threads (zlib releases the GIL) while the
caller reads and redacts the next chunk, and written in order. The pack and its index
(format v2, see git's Documentation/gitformat-pack.txt) are built in cmem's temp folder and
renamed into `objects/pack/`, index last: git and libgit2 see a pack only through its index, so a
process killed midway leaves no half-visible objects, only a temp file the next writer clears.
Nothing refers to the new objects until a commit that names them moves the branch.

The blobs are stored, not compressed (zlib level 0: a copy and a checksum). Redaction already
takes most of a core, and level 1 cost 0.7 s of CPU more per 100 MiB, on two cores shared with
the session itself. The pack is listed for the background repack (packing.py), which redoes it
with deltas and git's own compression level right after the hook, and before any push; git
reuses compressed data it finds in a pack, so a pack compressed here at level 1 used to stay at
level 1 (22% larger than level 6) for good.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import pygit2

from .lock import alive, state_dir, temp_dir
from .packing import UNDELTIFIED
from .repo import admitted

if TYPE_CHECKING:
    from concurrent.futures import Future

LEVEL = 0  # stored: the background repack compresses (see above)
_BLOB = 3  # git's object type number for a blob
_TEMP_PREFIX = "pack-"


class PackWriter:
    """Add blobs (their ids come back at once), then `finish` to make them visible."""

    def __init__(self, repo: pygit2.Repository, workers: int | None = None) -> None:
        from concurrent.futures import ThreadPoolExecutor  # only a large backup writes a pack

        self.repo = repo
        self.gitdir = Path(repo.path)
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool = ThreadPoolExecutor(self.workers)
        self._pending: list[tuple[bytes, Future[tuple[bytes, int]]]] = []
        self._entries: list[tuple[bytes, int, int]] = []  # (raw id, crc32, offset)
        self._seen: set[bytes] = set()
        folder = temp_dir(self.gitdir)
        _clear_dead(folder)
        self._temp = folder / f"{_TEMP_PREFIX}{os.getpid()}-{id(self)}"
        self._file: BinaryIO = open(self._temp, "wb", opener=_private)
        self._offset = 0
        self._write(b"PACK" + struct.pack(">II", 2, 0))  # count patched in `finish`

    def add(self, data: bytes) -> pygit2.Oid:
        """Queue `data` (through the repository's filter, as `create_blob` would) and return
        its id."""
        data, oid = admitted(self.repo, data)
        raw = oid.raw
        if raw not in self._seen:
            self._seen.add(raw)
            self._pending.append((raw, self._pool.submit(_entry, data)))
            # A few chunks in flight at most: memory stays O(chunk) for any file size.
            while len(self._pending) > 2 * self.workers:
                self._drain_one()
        return oid

    def finish(self) -> None:
        """Write the rest, the trailer and the index, and move both into objects/pack."""
        while self._pending:
            self._drain_one()
        self._pool.shutdown()
        if not self._entries:
            self.abandon()
            return
        self._file.seek(8)
        self._file.write(struct.pack(">I", len(self._entries)))
        self._file.close()
        checksum = _file_sha1(self._temp)
        with open(self._temp, "ab") as handle:
            handle.write(checksum)
        index = self._temp.with_suffix(".idx")
        index.write_bytes(_index(self._entries, checksum))
        target = self.gitdir / "objects" / "pack" / f"pack-{checksum.hex()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp, target.with_suffix(".pack"))
        # Visible from here on (libgit2 rescans objects/pack when it misses an object).
        os.replace(index, target.with_suffix(".idx"))
        # One short O_APPEND write: lines of concurrent writers never mix.
        with open(state_dir(self.gitdir) / UNDELTIFIED, "a", opener=_private) as listed:
            listed.write(target.name + "\n")

    def abandon(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        if not self._file.closed:
            self._file.close()
        self._temp.unlink(missing_ok=True)

    def _drain_one(self) -> None:
        raw, future = self._pending.pop(0)
        packed, crc = future.result()
        self._entries.append((raw, crc, self._offset))
        self._write(packed)

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._offset += len(data)


def _entry(data: bytes) -> tuple[bytes, int]:
    """One pack entry (type-and-size header, zlib stream) and its CRC-32, for the index."""
    packed = _header(_BLOB, len(data)) + zlib.compress(data, LEVEL)
    return packed, zlib.crc32(packed)


def _header(kind: int, size: int) -> bytes:
    """Type and size: 4 size bits in the first byte, 7 in each next, high bit = more follow."""
    out = bytearray([(kind << 4) | (size & 0x0F)])
    size >>= 4
    while size:
        out[-1] |= 0x80
        out.append(size & 0x7F)
        size >>= 7
    return bytes(out)


def _index(entries: list[tuple[bytes, int, int]], checksum: bytes) -> bytes:
    """A v2 pack index: fan-out table, sorted ids, CRCs, offsets (large ones in a 64-bit table),
    the pack's checksum and the index's own."""
    ordered = sorted(entries)
    fanout = [0] * 256
    for raw, _, _ in ordered:
        fanout[raw[0]] += 1
    total, cumulative = 0, []
    for count in fanout:
        total += count
        cumulative.append(total)
    small: list[int] = []
    large: list[int] = []
    for _, _, offset in ordered:
        if offset < 0x80000000:
            small.append(offset)
        else:
            small.append(0x80000000 | len(large))
            large.append(offset)
    parts = [b"\377tOc", struct.pack(">I", 2), struct.pack(">256I", *cumulative),
             b"".join(raw for raw, _, _ in ordered),
             struct.pack(f">{len(ordered)}I", *(crc for _, crc, _ in ordered)),
             struct.pack(f">{len(small)}I", *small), struct.pack(f">{len(large)}Q", *large),
             checksum]
    body = b"".join(parts)
    return body + hashlib.sha1(body).digest()


def _file_sha1(path: Path) -> bytes:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.digest()


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _clear_dead(folder: Path) -> None:
    """Temp packs of writers that died (SIGKILL mid-backup): their pid is gone."""
    for path in folder.glob(f"{_TEMP_PREFIX}*"):
        pid = path.name[len(_TEMP_PREFIX):].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            path.unlink(missing_ok=True)
