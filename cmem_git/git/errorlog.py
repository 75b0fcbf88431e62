"""Hook failures, kept until the next SessionStart has told Claude and the user about them.

A hook's own output can be lost (SessionEnd's is discarded by Claude Code), so every problem is
also appended here, one JSON object per line, and reported once. Reported entries move to
`errors.reported.jsonl`, so nothing is ever thrown away; tracebacks go to `cmem.log`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .lock import state_dir

PENDING = "errors.jsonl"
REPORTED = "errors.reported.jsonl"
LOG = "cmem.log"


def record(gitdir: Path, event: str, message: str) -> None:
    line = json.dumps({"time": int(time.time()), "event": event, "message": message})
    _append(state_dir(gitdir) / PENDING, line + "\n")


def log_traceback(gitdir: Path, error: BaseException) -> Path:
    path = state_dir(gitdir) / LOG
    import traceback  # only here: SessionStart's warm path loads this module for its names

    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    _append(path, f"--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n{text}")
    return path


def pending(gitdir: Path) -> list[dict[str, object]]:
    path = state_dir(gitdir, create=False) / PENDING
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    return [entry for entry in map(_parse, lines) if entry is not None]


def take_pending(gitdir: Path) -> list[dict[str, object]]:
    """The pending entries, moved to the reported file. The pending file is renamed away first,
    so an error recorded meanwhile lands in a new pending file instead of being lost."""
    taken = state_dir(gitdir, create=False) / f"{PENDING}.{os.getpid()}"
    try:
        os.replace(state_dir(gitdir, create=False) / PENDING, taken)
    except FileNotFoundError:
        return []
    text = taken.read_text(encoding="utf-8", errors="replace")
    _append(state_dir(gitdir, create=False) / REPORTED, text)
    taken.unlink()
    return [entry for entry in map(_parse, text.splitlines()) if entry is not None]


def _parse(line: str) -> dict[str, object] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _append(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)
