"""SessionStart with nothing new: the context from start_cache.py, without the repository.

Claude Code waits for SessionStart before a session's first request, so the hook process is on
every session's critical path; Python's start-up is most of what this path costs. Anything
unusual (input the full path would complain about, a config or transcript that changed, a
pending error, a remote to sync with) returns None, and the full path runs.

`keep` is the other side: after a hook's commit, or a full SessionStart with nothing to report,
it saves what this path answers. It imports the repository code when it runs; `answer`, what
every SessionStart process loads this module for, never does.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from ..errors import HookInputError
from ..read import context_text, start_cache
from ..repo.events import BY_NAME
from .detach import project

if TYPE_CHECKING:
    from ..repo.config import Config
    from ..repo.store import Store


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


def settings(config: Config) -> context_text.Settings:
    return context_text.Settings(config.staleness_hours, config.memory_size_warning_kib)


def keep(store: Store, root: Path, config: Config, folder: Path,
         watched: dict[str, Any] | None = None,
         known: tuple[str, context_text.Facts] | None = None) -> None:
    """Keep what the next SessionStart would say, when it would find nothing to back up. The
    files are fingerprinted (`watched`, taken here unless given) before the tip and the facts
    are read (`known`, read here unless given): whatever changes after that is seen when the
    entry is saved, or by the SessionStart that reads it. Never raises."""
    from ..capture import recovery
    from ..git import errorlog
    from ..read import context
    try:
        watched = watched or watch(store, root, config, folder)
        if watched is None:
            return
        kept = settings(config)
        if known is None:
            tip = store.tip()
            if tip is None:
                return
            known = str(tip.id), context.facts(store, tip, kept)
        if recovery.remember(store, folder):
            start_cache.save(store.gitdir, known[0], watched, known[1].to_json(),
                             kept._asdict())
    except Exception as error:  # the cache only saves work: the commit before it stands
        errorlog.log_traceback(store.gitdir, error)


def watch(store: Store, root: Path, config: Config, folder: Path) -> dict[str, Any] | None:
    """start_cache's fingerprint of what SessionStart reads, or None when nothing is to be kept:
    SessionStart is off, or the auto-memory folder is too large to watch."""
    from ..repo import automemory, memory
    if not config.events.enabled(BY_NAME["session-start"]):
        return None
    files = [paths.config_path(root), store.gitdir / "config", store.gitdir / "index",
             *(store.workdir / name for name in memory.FILES)]
    try:
        return start_cache.fingerprint(store.gitdir, files, [folder],
                                       [automemory.local_folder(store.workdir)])
    except (ValueError, OSError):
        return None
