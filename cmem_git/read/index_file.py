"""The search index's file, its lock and the check that it is current: the standard library only.

search_index.py builds and updates the index with pygit2; a search on an index that is already
current needs none of that (issue 15: a warm `cmem search` within 100 ms, whole process, where
importing pygit2 alone costs ~80 ms). So this module holds what both paths share (where the file
is, the flock beside it, opening it, its `state` table) and the fast path itself: the branch's tip
read from git's files (git/refs.py), compared with the tip the index was built at, and the query
run under the shared lock exactly as search_index.read runs it. Whenever that cannot be decided
plainly (the tip not readable from files, the index missing, stale, damaged, a write of the
repository interrupted) it answers None and the caller takes search_index's path.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from ..errors import LockTimeout
from ..git.lock import interrupted, state_dir
from ..git.refs import branch_tip

VERSION = "1"
NAME = "index.sqlite"
LOCK_WAIT = 600.0  # a first build of a large history may take this long

T = TypeVar("T")


def path(gitdir: Path, create: bool = True) -> Path:
    return state_dir(gitdir, create) / NAME


@contextmanager
def flock(gitdir: Path, exclusive: bool, wait: float) -> Iterator[bool]:
    """Yields whether the lock was taken within `wait` seconds (0: try once)."""
    fd = os.open(state_dir(gitdir) / "index.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield _take(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, wait)
    finally:
        os.close(fd)  # closing releases the flock


def _take(fd: int, mode: int, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def connect(file: Path) -> sqlite3.Connection:
    db = sqlite3.connect(file, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 5000")
    return db


def state(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM state").fetchall())


def usable(gitdir: Path, tip: str | None) -> sqlite3.Connection | None:
    """An open index already at `tip`, or None when it needs work (or is missing or broken)."""
    file = path(gitdir, create=False)
    if not file.is_file():
        return None
    db = connect(file)
    try:
        found = state(db)
        if found.get("version") == VERSION and found.get("tip", "") == (tip or ""):
            return db
    except sqlite3.DatabaseError:
        pass
    db.close()
    return None


def read_current(gitdir: Path, reader: Callable[[sqlite3.Connection], T],
                 wait: float = LOCK_WAIT) -> T | None:
    """`reader` on the index when it is current by the branch's files alone; None otherwise
    (then search_index.read decides, with pygit2). A reader that meets a damaged page also
    gives None: the full path rebuilds the index and asks again."""
    tip = branch_tip(gitdir)
    if tip is None or interrupted(gitdir) or not path(gitdir, create=False).is_file():
        return None
    with flock(gitdir, False, wait) as taken:
        if not taken:
            raise LockTimeout(path(gitdir), wait)
        db = usable(gitdir, tip)
        if db is None:
            return None
        try:
            return reader(db)
        except sqlite3.DatabaseError:
            return None
        finally:
            db.close()
