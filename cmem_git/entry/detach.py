"""Where every hook process starts: the events Claude Code need not wait for run detached.

Claude Code waits for each hook process: Stop before the turn ends, SubagentStop inside it,
SessionEnd before it exits (in print mode too). Their result matters to nobody in the session,
so the hook's shell line (setup/settings.py) starts `hook NAME --detached` in the background and
returns; that process makes a session of its own, so that neither Claude Code's exit nor the
kill that ends SessionEnd's 1.5 s budget reaches it, and commits. Claude Code's own
`async: true` option would not do: with 2.1.332 an asynchronous Stop hook of a `claude -p`
session never ran. A command installed by an earlier cmem (`hook NAME` alone) reads its input,
forks and returns: the same, after a Python start-up and this module's imports, which is why
this module loads only the standard library and the few cmem modules it needs.

What a detached hook would have told the user goes to the error log, which the next SessionStart
reports. Each running child leaves a marker, `.git/cmem/detached/<pid>`, so that `wait` (tests,
benchmarks) knows when they are done; a marker whose process is gone counts for nothing.
`CMEM_HOOK_FOREGROUND=1` runs every hook in the foreground, to see its messages.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .. import paths
from ..git.lock import alive, markers_dir, state_dir
from ..repo.events import BY_NAME

FOREGROUND = "CMEM_HOOK_FOREGROUND"
MAX_INPUT = 16 * 1024 * 1024
_LOG = "detached.log"


def main(name: str, detached: bool = False) -> int:
    """`python -m cmem_git hook NAME`: read the event, then do the work here or in a child.
    `detached`: this process already runs in the background (`hook NAME --detached`)."""
    if name not in BY_NAME:  # the background jobs hooks start, or a name to complain about
        return _hook(name, b"")
    if detached and BY_NAME[name].detached:
        return _detached(name)
    data = b"" if sys.stdin.isatty() else sys.stdin.buffer.read(MAX_INPUT)
    if name == "session-start":
        from .warm_start import answer
        try:
            said = answer(data, os.environ)
        except Exception:  # e.g. a folder it may not read: the full path says what is wrong
            said = None
        if said is not None:
            sys.stdout.write(said)
            return 0
    gitdir = _gitdir(data, os.environ) if _detaches(name) else None
    if gitdir is None:
        return _hook(name, data)
    if _fork(gitdir):
        return 0
    return _work(name, data, gitdir)


def _detached(name: str) -> int:
    """Started in the background by the hook's shell, which has returned: leave Claude Code's
    session first, then read the input (fd 0 is the hook's stdin, passed on)."""
    try:
        os.setsid()
    except OSError:
        pass  # already a group leader, started by hand
    data = sys.stdin.buffer.read(MAX_INPUT)
    gitdir = _gitdir(data, os.environ, or_project=True)
    if gitdir is None:  # no repository to log to: hooks.py reports it on stdout, to nobody
        return _hook(name, data, detached=True)
    try:
        (markers_dir(gitdir) / str(os.getpid())).touch(mode=0o600)
        _to_log(_open_log(gitdir))
    except OSError:
        pass  # then `wait` cannot see this process, or its output is lost; the commit is not
    return _work(name, data, gitdir)


def _work(name: str, data: bytes, gitdir: Path) -> int:
    try:
        return _hook(name, data, detached=True)
    finally:
        (markers_dir(gitdir, create=False) / str(os.getpid())).unlink(missing_ok=True)


def _hook(name: str, data: bytes, detached: bool = False) -> int:
    """The hook's work (hooks.py loads pygit2: only the process that does the work imports it)."""
    from .hooks import main as work
    return work(name, data, detached)


def project(environ: Mapping[str, str], cwd: Path | None) -> Path | None:
    """CLAUDE_PROJECT_DIR names the project root and does not follow `cd`; cwd is a fallback."""
    for start in (environ.get("CLAUDE_PROJECT_DIR"), cwd):
        found = paths.find_project(Path(start)) if start else None
        if found is not None:
            return found
    return None


def wait(gitdir: Path, seconds: float) -> bool:
    """Wait for the detached hooks of a repository to finish; True when none runs."""
    deadline = time.monotonic() + seconds
    while running(gitdir):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def running(gitdir: Path) -> bool:
    folder = markers_dir(gitdir, create=False)
    try:
        markers = list(folder.iterdir())
    except OSError:
        return False
    live = [m for m in markers if m.name.isdigit() and alive(int(m.name))]
    for marker in set(markers) - set(live):
        marker.unlink(missing_ok=True)  # a child killed before it could remove its own
    return bool(live)


def _detaches(name: str) -> bool:
    return BY_NAME[name].detached and not os.environ.get(FOREGROUND)


def _gitdir(data: bytes, environ: Mapping[str, str], or_project: bool = False
            ) -> Path | None:
    """The memory repository the event is for; None when the input is not a hook event of a
    project with memory, which the foreground path then reports. `or_project`: input that is
    not JSON is for CLAUDE_PROJECT_DIR's repository, whose error log then says so."""
    try:
        payload = json.loads(data)
    except ValueError:
        if not or_project:
            return None
        payload = None
    cwd = payload.get("cwd") if isinstance(payload, dict) else None
    found = project(environ, Path(cwd) if isinstance(cwd, str) and cwd and "\0" not in cwd
                    else None)
    gitdir = paths.memory_dir(found) / ".git" if found else None
    return gitdir if gitdir is not None and gitdir.is_dir() else None


def _fork(gitdir: Path) -> bool:
    """True in the parent, once the child runs on its own; False in the child, and when no
    child could be started (then this process does the work, as in the foreground)."""
    try:
        markers = markers_dir(gitdir)
        log = _open_log(gitdir)
    except OSError:
        return False
    try:
        pid = os.fork()
    except OSError:
        os.close(log)
        return False
    if pid == 0:
        os.setsid()
        _to_log(log)
        return False
    os.close(log)
    try:
        (markers / str(pid)).touch(mode=0o600)
    except OSError:
        pass  # then `wait` cannot see this child; the commit itself is unaffected
    return True


def _open_log(gitdir: Path) -> int:
    return os.open(state_dir(gitdir) / _LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _to_log(log: int) -> None:
    """Stdin from /dev/null, stdout and stderr to `log` (Claude Code waits until the hook's
    pipes close)."""
    null = os.open(os.devnull, os.O_RDONLY)
    for target, source in ((0, null), (1, log), (2, log)):
        os.dup2(source, target)
    os.close(null)
    os.close(log)
