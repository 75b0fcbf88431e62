"""SessionStart with nothing new: the context from start_cache.py, without the repository.

Claude Code waits for SessionStart before a session's first request, so the hook process is on
every session's critical path; Python's start-up is most of what this path costs. Anything
unusual (input the full path would complain about, a config or transcript that changed, a
pending error, a remote to sync with) returns None, and the full path runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

from .. import paths
from ..errors import HookInputError
from ..read import context_text, start_cache
from .detach import project


def answer(data: bytes, environ: Mapping[str, str]) -> str | None:
    """The hook's stdout, or None when the full path must run."""
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    session, cwd, transcript = (payload.get(k) for k in ("session_id", "cwd", "transcript_path"))
    source = payload.get("source")
    try:
        paths.check_session_id(session)
    except HookInputError:
        return None
    if not all(v is None or (isinstance(v, str) and "\0" not in v)
               for v in (cwd, transcript, source)):
        return None
    if transcript and not transcript.endswith(".jsonl"):
        return None
    found = project(environ, Path(cwd) if cwd else None)
    if found is None:
        return None
    path = Path(transcript) if transcript else None
    folder = path.parent if path is not None and path.parent.is_dir() \
        else paths.transcripts_dir(found)
    gitdir = paths.memory_dir(found) / ".git"
    entry = start_cache.current(gitdir, folder)
    if entry is None:
        return None
    try:
        facts = context_text.Facts.from_json(entry["facts"])
        settings = context_text.Settings(**entry["settings"])
    except (KeyError, TypeError, ValueError):
        return None
    text = context_text.render(gitdir, facts, settings, time.time(), source or None, session)
    return json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart",
                                              "additionalContext": text}})
