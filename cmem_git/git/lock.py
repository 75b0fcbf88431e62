"""The repository lock: who may move the branch and touch git's own lock files.

It is an flock(2), which the kernel releases when its holder dies, so it can never go stale.
git's `*.lock` files can: a cmem killed while libgit2 held `index.lock` or a ref lock leaves the
file behind and every later write fails. So the holder drops a marker before it starts writing and
removes it when done; whoever takes the lock and finds the marker knows the last holder died
mid-write, and clears the lock and temp files it left. Without the marker a `*.lock` belongs to
someone else (a git command the user runs) and is left alone.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from ..errors import LockTimeout

DEFAULT_WAIT = 10.0
_GIT_LOCKS = ("index.lock", "HEAD.lock", "packed-refs.lock", "config.lock")


def state_dir(gitdir: Path, create: bool = True) -> Path:
    """cmem's private state inside the memory repository's .git folder: `.git/cmem`, spelled
    here only. A reader that must not create it (nothing to read yet) passes create=False."""
    folder = gitdir / "cmem"
    if create:
        folder.mkdir(mode=0o700, exist_ok=True)
    return folder


MARKERS = "detached"


def markers_dir(gitdir: Path, create: bool = True) -> Path:
    """Where each process a hook left running in the background has a file named by its pid
    (entry/detach.py); the hooks' shell lines write there too (setup/settings.py)."""
    folder = state_dir(gitdir, create) / MARKERS
    if create:
        folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def temp_dir(gitdir: Path) -> Path:
    folder = state_dir(gitdir) / "tmp"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def alive(pid: int) -> bool:
    """Whether `pid` still runs. A killed hook whose parent died too can stay a zombie for
    good (a container's init may never reap it): it answers signals, yet writes nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return True  # no /proc: trust the signal
    return stat.rpartition(b")")[2].split()[:1] != [b"Z"]


class RepoLock:
    def __init__(self, gitdir: Path, wait: float = DEFAULT_WAIT) -> None:
        self.gitdir = gitdir
        self.wait = wait
        self.path = state_dir(gitdir) / "lock"
        self.marker = state_dir(gitdir) / "writing"
        self._fd: int | None = None

    def __enter__(self) -> RepoLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._acquire(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if self.marker.exists():
            clear_stale(self.gitdir)
        self.marker.write_bytes(str(os.getpid()).encode())
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        assert self._fd is not None
        # An exception inside leaves nothing half-done that a later holder must clear: libgit2
        # removes its own lock files on error. Only death skips this line.
        self.marker.unlink(missing_ok=True)
        os.close(self._fd)  # closing releases the flock
        self._fd = None

    def _acquire(self, fd: int) -> None:
        deadline = time.monotonic() + self.wait
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockTimeout(self.path, self.wait) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)


def interrupted(gitdir: Path) -> bool:
    """Whether a holder died mid-write, or left index and files behind the branch (cheap: two
    stats, no lock)."""
    return (state_dir(gitdir, create=False) / "writing").exists() or unsynced(gitdir).exists()


def unsynced(gitdir: Path) -> Path:
    """Present while index and working files are behind a commit that stands (their update
    failed, e.g. another program held index.lock)."""
    return state_dir(gitdir, create=False) / "unsynced"


def clear_stale(gitdir: Path) -> list[Path]:
    """Remove what a dead holder left: git lock files and cmem's temp files."""
    found = [gitdir / name for name in _GIT_LOCKS if (gitdir / name).exists()]
    for folder in ("refs", "logs"):
        found += sorted((gitdir / folder).rglob("*.lock")) if (gitdir / folder).is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    import shutil  # here: every hook process imports this module, few get this far

    shutil.rmtree(state_dir(gitdir, create=False) / "tmp", ignore_errors=True)
    return found


class NetworkLock:
    """One fetch or push at a time per memory repository, whoever starts it (`cmem sync`,
    SessionStart, the background sync SessionEnd leaves behind): two fetches updating the same
    ref at once make one of them fail ("cannot lock ref"), and a second push right behind the
    first has nothing left to send. An flock, so it dies with its holder; it is held across
    network calls that may take long, so it is separate from the repository lock."""

    def __init__(self, gitdir: Path, wait: float) -> None:
        self.path = state_dir(gitdir) / "network"  # like "lock": no .lock name git would own
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> NetworkLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return self
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockTimeout(self.path, self.wait) from None
                time.sleep(0.05)
            except BaseException:
                os.close(fd)
                raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
