"""One way to replace a file: a temp file in the same folder (or a given one on the same file
system), then a rename. A reader sees the old file or the whole new one; a writer killed halfway
leaves at most a temp file, which a failing write removes itself.

The temp file is created exclusively under a random name, as `mkstemp` does (never through a
symlink or over a file someone planted at its name), and is 0600 until it is complete; `mode`
is applied before the rename. Not `tempfile` itself: it loads `random`, `shutil` and more, ~7 ms
of a SessionStart that writes one small file. `os.replace` replaces a symlink at the target
itself, never the file it points at. `fsync` is for files that exist nowhere else (settings,
config); one whose bytes are also in a commit can be rebuilt from it and needs none.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, TextIO

PRIVATE = 0o600


@contextlib.contextmanager
def replacing(path: Path, mode: int = PRIVATE, fsync: bool = False,
              temp_folder: Path | None = None) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces `path` when the block ends without an error."""
    fd, temp = create_temp(temp_folder or path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if mode != PRIVATE:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def create_temp(folder: Path, prefix: str) -> tuple[int, str]:
    """A new private file in `folder` (its descriptor and path), as `tempfile.mkstemp`."""
    for _ in range(100):
        temp = os.path.join(folder, f"{prefix}{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                           | getattr(os, "O_CLOEXEC", 0), PRIVATE), temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name in {folder}")


@contextlib.contextmanager
def replacing_text(path: Path, mode: int = PRIVATE, fsync: bool = False) -> Iterator[TextIO]:
    """`replacing` for text: UTF-8, "\\n" line ends on every platform."""
    with replacing(path, mode, fsync) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")
        yield text
        text.flush()
        text.detach()  # `replacing` closes the file itself


def write_atomic(path: Path, data: bytes | str | Iterable[bytes], mode: int = PRIVATE,
                 fsync: bool = False, temp_folder: Path | None = None) -> None:
    """Replace `path` with `data` (text is written as UTF-8; an iterable of parts is written
    one after another, so a large file need not be in memory)."""
    parts = [data.encode("utf-8")] if isinstance(data, str) else \
        [data] if isinstance(data, bytes) else data
    with replacing(path, mode, fsync, temp_folder) as handle:
        for part in parts:
            handle.write(part)
