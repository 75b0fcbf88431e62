"""What SessionStart said last, kept with everything it depended on, so that a SessionStart
with nothing new answers from this file alone: no libgit2, no history walk (issue 13: the hook
is a whole Python process, and loading pygit2 alone costs more than its 150 ms target).

An entry holds the branch tip and a fingerprint of every file and folder SessionStart reads:
the config, git's config and index, the memory files, Claude Code's auto-memory folder, the
folder of transcripts (names, sizes, modification times), and the pending error log, which must
be absent. It is written only when SessionStart found nothing to back up and nothing to report,
or by a hook right after its commit when every transcript is covered by then (stamped in
recovery's seen.json). Any difference, or a file that cannot be read, sends SessionStart down
its full path, which writes a new entry: the cache can only skip work that would find nothing.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..git import refs
from ..git.errorlog import PENDING as PENDING_ERRORS
from ..git.lock import state_dir

_FILE = "start.json"
_VERSION = 2  # 2: the listings' digest changed
_MAX_FILES = 500  # an auto-memory folder larger than this is not cached


def fingerprint(gitdir: Path, files: Iterable[Path], folders: Iterable[Path],
                trees: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """The files (their stat), folders (their entries) and trees (everything under them) as
    they are now; a tree too large to be worth watching raises ValueError."""
    watched = {*files, state_dir(gitdir, create=False) / PENDING_ERRORS}
    return {"files": {str(path): _stat(path) for path in sorted(watched)},
            "folders": {str(folder): _listing(folder, deep=False) for folder in folders},
            "trees": {str(tree): _listing(tree, deep=True) for tree in trees}}


def save(gitdir: Path, tip: str, before: dict[str, dict[str, Any]], facts: dict[str, Any],
         settings: dict[str, Any]) -> bool:
    """Keep `facts` for `tip`, if nothing changed since `before` was taken (a transcript that
    grew meanwhile must not be taken for covered) and no error is pending. Never raises: the
    cache only ever saves work."""
    try:
        if _again(gitdir, before) != before or \
                before["files"][str(state_dir(gitdir, create=False) / PENDING_ERRORS)] is not None:
            return False
        write_atomic(state_dir(gitdir) / _FILE, json.dumps(
            {"version": _VERSION, "tip": tip, "facts": facts, "settings": settings, **before}))
    except (OSError, TypeError, ValueError, KeyError):
        return False
    return True


def current(gitdir: Path, folder: Path) -> dict[str, Any] | None:
    """The kept entry when nothing it depends on changed and `folder` is the transcript folder it
    was made for; None otherwise."""
    try:
        entry = json.loads((state_dir(gitdir, create=False) / _FILE).read_text(encoding="utf-8"))
        if not isinstance(entry, dict) or entry.get("version") != _VERSION:
            return None
        kept = {key: entry[key] for key in ("files", "folders", "trees")}
        if (str(folder) not in entry["folders"] or entry["tip"] != refs.branch_tip(gitdir)
                or _again(gitdir, kept) != kept):
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return entry


def drop(gitdir: Path) -> None:
    (state_dir(gitdir, create=False) / _FILE).unlink(missing_ok=True)


def _again(gitdir: Path, taken: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The fingerprint of the same files, folders and trees as `taken`, now."""
    return fingerprint(gitdir, *([Path(p) for p in taken[key]]
                                 for key in ("files", "folders", "trees")))


def _stat(path: Path) -> list[int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_mode]


def _listing(folder: Path, deep: bool) -> str | None:
    """A digest of the entries of `folder` (name, size, modification time; a sub-folder's time
    changes when an entry is added or removed in it), of all below it when `deep`; None when it
    does not exist. A tree of more than _MAX_FILES raises ValueError: not worth caching. The
    digest is two checksums and a length (zlib loads in under 1 ms, hashlib in ~5): it tells
    a folder from its own earlier state, which no one chooses to collide with."""
    if not folder.is_dir():
        return None
    crc, adler, length, count = 0, 1, 0, 0
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names + ([] if deep else dirs)):
            info = os.lstat(os.path.join(root, name))
            entry = f"{root}/{name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode(
                "utf-8", "surrogateescape")
            crc, adler, length = zlib.crc32(entry, crc), zlib.adler32(entry, adler), \
                length + len(entry)
        count += len(names)
        if not deep:
            break
        if count > _MAX_FILES:
            raise ValueError("too many files")
    return f"{crc:08x}{adler:08x}-{length}"
