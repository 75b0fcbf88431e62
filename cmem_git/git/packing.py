"""Keeping the memory repository packed, in the background.

Every hook commit writes a few loose objects (a chunk, the trees above it, the commit), and a
long session's Stop commits rewrite the same last chunk again and again: 1,000 of them leave
~6,000 loose files at 20x the gzip size of the transcript. git packs when `gc.auto` says so, but
nothing here runs git's porcelain, so cmem does the same check itself after each hook: past
LOOSE_LIMIT new loose objects (estimated from a few fan-out folders, as `git gc --auto` does)
or PACK_LIMIT packs it starts a detached process that runs `git repack` and `git prune-packed`.
The hook never waits for it (SessionEnd hooks share a 1.5 s budget). git's delta search keeps
successive versions of a last chunk, which share their path, as deltas of one another.

Concurrent hooks stay safe: an incremental repack only adds a pack and `prune-packed` removes
only loose copies of packed objects. A full repack (`-a`) runs with `-A`, which turns objects
it finds unreachable into loose ones instead of dropping them: a hook may have just written
them (a first backup's pack, say) for a commit it has not made yet.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from . import errorlog
from .lock import state_dir

# ~40 Stop commits of a long session (a chunk, four trees and a commit each): the loose copies
# of a 256 KiB last chunk add up fast, so the folder stays within 2x gzip of the transcript.
LOOSE_LIMIT = 256
PACK_LIMIT = 10
BACKGROUND_PACK = "background-pack"
_SAMPLE = 16  # fan-out folders counted: 00 to 0f
_STALE = 3600.0  # seconds after which a packing marker whose process is gone is ignored
_MARKER = "packing"
# The loose objects the last repack left: unreachable ones (a retried build's) stay loose until
# they are two weeks old, as in `git gc`. Only loose objects beyond those count towards the
# limit, so that they cannot make every hook start a repack that changes nothing.
_DONE = "packed"
# The packs PackWriter writes hold whole blobs, and git never tries deltas between two objects of
# one pack (it takes them as tried by the pack's writer): a push would send them whole, 3.9 MB for
# a 16 MiB session instead of 0.7. Their names are listed here for the background repack to redo.
UNDELTIFIED = "undeltified-packs"


def loose_estimate(gitdir: Path) -> int:
    """Loose objects, estimated from the first 16 of the 256 fan-out folders."""
    objects = gitdir / "objects"
    count = 0
    for index in range(_SAMPLE):
        try:
            count += len(os.listdir(objects / f"{index:02x}"))
        except OSError:
            continue
    return count * 256 // _SAMPLE


def pack_count(gitdir: Path) -> int:
    try:
        return sum(1 for name in os.listdir(gitdir / "objects" / "pack") if name.endswith(".pack"))
    except OSError:
        return 0


def due(gitdir: Path, loose_limit: int = LOOSE_LIMIT, pack_limit: int = PACK_LIMIT) -> bool:
    return (loose_estimate(gitdir) > _left_loose(gitdir) + loose_limit
            or pack_count(gitdir) > pack_limit
            or _undeltified(gitdir))


def _lists(gitdir: Path) -> tuple[Path, Path]:
    """PackWriter's list of packs to redo, and the one a repack took (left if it died)."""
    listed = state_dir(gitdir, create=False) / UNDELTIFIED
    return listed, listed.with_name(listed.name + ".taken")


def _undeltified(gitdir: Path) -> bool:
    return any(path.exists() for path in _lists(gitdir))


def _left_loose(gitdir: Path) -> int:
    try:
        return int((state_dir(gitdir, create=False) / _DONE).read_text())
    except (OSError, ValueError):
        return 0


def start_if_due(gitdir: Path, loose_limit: int = LOOSE_LIMIT,
                 pack_limit: int = PACK_LIMIT) -> bool:
    """Start the background repack when it is due and none is running; True if started.
    Never raises: the commit that came before stands whatever happens here."""
    try:
        if not due(gitdir, loose_limit, pack_limit) or not _claim(gitdir):
            return False
    except OSError:
        return False
    # Imported here: a hook calls this after every commit, and is rarely due.
    import subprocess

    from . import command
    try:
        full = pack_count(gitdir) > pack_limit
        with open(state_dir(gitdir) / "pack.log", "ab") as log:
            subprocess.Popen([sys.executable, "-m", "cmem_git", "hook", BACKGROUND_PACK],
                             cwd=gitdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True,
                             env=command.no_git_env({"CMEM_PACK_GITDIR": str(gitdir),
                                                     "CMEM_PACK_FULL": "1" if full else "",
                                                     "LC_ALL": "C"}))
        return True
    except OSError:
        (state_dir(gitdir, create=False) / _MARKER).unlink(missing_ok=True)
        return False


def background_pack(environ: dict[str, str] | os._Environ[str]) -> int:
    """The detached process: repack, drop packed loose copies, release the marker."""
    import subprocess

    gitdir = Path(environ.get("CMEM_PACK_GITDIR", ""))
    if not (gitdir / "objects").is_dir():
        return 0
    try:
        repack(gitdir, full=bool(environ.get("CMEM_PACK_FULL")))
    except (OSError, subprocess.SubprocessError) as error:
        errorlog.record(gitdir, "background pack", str(error))
    finally:
        (state_dir(gitdir, create=False) / _DONE).write_text(str(loose_estimate(gitdir)))
        (state_dir(gitdir, create=False) / _MARKER).unlink(missing_ok=True)
    return 0


def repack(gitdir: Path, full: bool = False) -> None:
    """Pack loose objects (all objects with `full`) with deltas, then remove packed loose copies."""
    deltify(gitdir)
    args = ["repack", "-d", "-l", "-q"] + (["-a", "-A"] if full else [])
    for argv in (args, ["prune-packed", "-q"], ["prune", "--expire=2.weeks.ago"]):
        _git(gitdir, argv)


def before_push(gitdir: Path, seconds: float = 120.0) -> None:
    """A push sends packed objects as they are stored, so a first backup's pack would go whole:
    have it redone first (by the background repack if one runs, else here). Never raises: the
    push goes ahead in any case, only larger."""
    import subprocess

    if not _undeltified(gitdir):
        return
    if not wait(gitdir, seconds) or not _claim(gitdir):
        return
    try:
        deltify(gitdir)
    except (OSError, subprocess.SubprocessError) as error:
        errorlog.record(gitdir, "packing before a push", str(error))
    finally:
        (state_dir(gitdir, create=False) / _MARKER).unlink(missing_ok=True)


def deltify(gitdir: Path) -> None:
    """Repack the packs PackWriter listed (whole, uncompressed blobs) with git's delta search
    and compression, then drop them.
    The new pack is in place before the old one goes, so every object stays readable."""
    listed, taken = _lists(gitdir)  # a list taken by a repack that died is redone
    try:
        fresh = listed.with_name(f"{listed.name}.{os.getpid()}")
        os.replace(listed, fresh)  # PackWriters that finish from now on start a new list
        with open(taken, "a") as handle:
            handle.write(fresh.read_text())
        fresh.unlink()
    except FileNotFoundError:
        pass
    try:
        names = sorted(set(taken.read_text().split()))
    except FileNotFoundError:
        return
    folder = gitdir / "objects" / "pack"
    for name in names:
        index = folder / f"{name}.idx"
        if name.startswith("pack-") and "/" not in name and index.is_file():
            listing = _git(gitdir, ["show-index"], index.read_bytes())
            ids = b"".join(line.split()[1] + b"\n" for line in listing.splitlines())
            # --no-reuse-object: PackWriter stores blobs uncompressed, and git would keep them so.
            made = _git(gitdir, ["pack-objects", "-q", "--no-reuse-object",
                                 "--delta-base-offset", str(folder / "pack")], ids)
            if f"pack-{made.decode().strip()}" == name:
                continue  # the same bytes (nothing to delta): the new pack is the old one
            for suffix in (".idx", ".pack", ".rev"):  # the index first: invisible from then on
                (folder / f"{name}{suffix}").unlink(missing_ok=True)
    taken.unlink()


def _git(gitdir: Path, args: list[str], stdin: bytes | None = None) -> bytes:
    from . import command

    done = command.run(f"--git-dir={gitdir}", *args, stdin=stdin)
    if done.returncode != 0:
        raise OSError(f"git {' '.join(args[:2])} failed: "
                      f"{done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def running(gitdir: Path) -> bool:
    marker = state_dir(gitdir, create=False) / _MARKER
    return marker.exists()


def wait(gitdir: Path, seconds: float) -> bool:
    """Wait for a background repack to finish (tests, `cmem doctor`); True when none runs."""
    deadline = time.monotonic() + seconds
    while running(gitdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not running(gitdir)


def _claim(gitdir: Path) -> bool:
    """Create the marker (O_EXCL); a marker left by a process that died long ago is taken."""
    marker = state_dir(gitdir) / _MARKER
    try:
        if time.time() - marker.stat().st_mtime > _STALE:
            marker.unlink(missing_ok=True)
    except OSError:
        pass
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


@contextmanager
def paused(gitdir: Path, seconds: float = 120.0) -> Iterator[None]:
    """No background repack inside: one that runs is waited for, and none starts (a purge's
    `git gc` must see every pack, and no pack may be written from the old objects after it)."""
    deadline = time.monotonic() + seconds
    while not _claim(gitdir):
        if time.monotonic() > deadline:
            raise OSError(f"a background repack of {gitdir} still runs after {seconds:.0f} s")
        time.sleep(0.05)
    try:
        yield
    finally:
        (state_dir(gitdir, create=False) / _MARKER).unlink(missing_ok=True)

