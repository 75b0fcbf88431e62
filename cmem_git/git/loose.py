"""Writing a hook's new blobs as loose objects, compressed beside the redaction.

A hook's usual append is a few chunks of up to 256 KiB. Stored one after another through libgit2
(`create_blob`), each is redacted, then compressed, in turn, on one core: zlib is a large part
of the work. Here each chunk's id is computed at once (the caller needs it), and
its compression and write go to a worker thread, which runs while the caller redacts the next
chunk (zlib releases the GIL).

The objects are git's own loose format, as libgit2 writes them: `objects/<2 hex>/<38 hex>`,
zlib of `blob <size>\\0` + the bytes, at the level of the repository's loose backend, mode 0600
in folders of mode 0700. Each is written to a temp file in its fan-out folder and linked to its
name, so a reader never sees half an object and an object already there is never replaced (the
same id is the same bytes). A process killed midway leaves at most unreferenced objects, as any
git writer does; nothing refers to them until a commit naming them moves the branch.
"""

from __future__ import annotations

import os
import queue
import threading
import zlib
from pathlib import Path

import pygit2

from ..atomic import create_temp
from ..errors import StorageError
from .repo import LOOSE_LEVEL, admitted

_Job = tuple[str, bytes]  # hex id, data


class LooseWriter:
    """Add blobs (their ids come back at once), then `finish` to wait until all are stored;
    the same shape as pack.PackWriter, and the same redaction on the way in."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.objects = Path(repo.path) / "objects"
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._failed: list[OSError] = []
        self._stopped = False
        self._worker = threading.Thread(target=self._work, name="cmem-loose", daemon=True)
        self._worker.start()

    def add(self, data: bytes) -> pygit2.Oid:
        """Queue `data` (through the repository's filter, as `create_blob` would) and return
        its id."""
        data, oid = admitted(self.repo, data)
        self._jobs.put((str(oid), data))
        return oid

    def finish(self) -> None:
        """Wait for every object; a write that failed (a full disk) fails here."""
        self._jobs.put(None)
        self._worker.join()
        if self._failed:
            error = self._failed[0]
            raise StorageError(f"could not write to {self.objects}: "
                               f"{error.strerror or error}",
                               hint="is the disk full or a file-size limit reached? Nothing "
                               "was committed; earlier history is intact") from error

    def abandon(self) -> None:
        """Stop: what is queued is dropped (nothing refers to what was already written)."""
        self._stopped = True
        self._jobs.put(None)
        self._worker.join()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._stopped or self._failed:
                continue  # after a failure the commit cannot happen: the rest is not written
            try:
                store(self.objects, *job)
            except OSError as error:
                self._failed.append(error)


def store(objects: Path, hex_id: str, data: bytes) -> None:
    """One loose object, unless it is there already."""
    folder = objects / hex_id[:2]
    target = folder / hex_id[2:]
    if target.exists():
        return
    compressor = zlib.compressobj(LOOSE_LEVEL)
    packed = compressor.compress(b"blob %d\0" % len(data)) + compressor.compress(data) \
        + compressor.flush()
    folder.mkdir(mode=0o700, exist_ok=True)
    descriptor, temp = create_temp(folder, "tmp_obj_")  # 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(packed)
        try:
            os.link(temp, target)  # fails, rather than replaces, when the object is there
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: renamed instead, as git does
            os.replace(temp, target)
    finally:
        Path(temp).unlink(missing_ok=True)
