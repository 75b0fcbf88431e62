"""Claude Code hook events -> commits.

`cmem hook <event>` reads the event's JSON on stdin. A hook must never block or break the session:
it always exits 0 (exit 2 would block compaction), reports problems through the event's own
channel (a JSON `systemMessage` where Claude Code shows one, stderr for SessionEnd, whose output
is discarded) and records them so the next SessionStart tells Claude. It imports only what the
hook path needs: no click, and what only one event needs (SessionStart's recovery, context and
sync) is imported by that event's handler; bench/bench_imports.py measures each event.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from ..capture import checkpoint
from ..capture.backup import check_session_id
from ..errors import CmemError, HookInputError, LockTimeout, NotInitialized
from ..git import errorlog, lock, packing
from ..git.repo import default_remote
from ..repo import memory
from ..repo.config import Config, load_config, network_limits
from ..repo.events import BY_NAME, HookEvent
from ..repo.history import last_for_session
from ..repo.store import Store
from . import detach

if TYPE_CHECKING:
    import pygit2

    from ..git.transport import Limits

_SYNC_TIMEOUT = 8.0  # at most, seconds for each git network call a hook makes
_SYNC_WAIT = 2.0  # SessionStart waits this long for another cmem's fetch or push, then skips
BACKGROUND_SYNC = "background-sync"
_INDEX_CHEAP_BYTES = 1024 * 1024  # new blobs a hook indexes itself after its commit
# A detached hook (detach.py) is in nobody's way: it stores a first backup for this long (the
# rest waits for the next hook) and waits for the repository lock as long as any command does.
_DETACHED_BUDGET = 60.0


@dataclass(frozen=True)
class Event:
    name: str
    session_id: str
    transcript: Path | None
    cwd: Path | None
    detail: str | None


@dataclass(frozen=True)
class Output:
    stdout: str = ""
    stderr: str = ""


@dataclass
class _Run:
    event: Event
    project: Path
    store: Store
    config: Config
    detached: bool = False
    problems: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


def parse(name: str, data: bytes) -> Event:
    if not data.strip():
        raise HookInputError("no hook JSON on stdin (expected the event Claude Code sends)")
    try:
        payload = json.loads(data)
    except (ValueError, UnicodeDecodeError) as error:
        raise HookInputError(f"hook input is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise HookInputError("hook input is not a JSON object")
    if "session_id" not in payload:
        raise HookInputError("hook input has no session_id")
    detail_key = BY_NAME[name].detail
    detail = payload.get(detail_key) if detail_key else None
    return Event(name, check_session_id(payload["session_id"]),
                 _transcript_path(payload), _path(payload, "cwd"),
                 str(detail) if detail not in (None, "") else None)


def _transcript_path(payload: Mapping[str, Any]) -> Path | None:
    """Claude Code's transcripts are JSONL files. Any other path (a payload naming
    ~/.aws/credentials or /etc/passwd) would be copied into history and pushed: refused."""
    path = _path(payload, "transcript_path")
    if path is not None and path.suffix != ".jsonl":
        raise HookInputError(f"transcript_path {str(path)!r} is not a Claude Code transcript "
                             "(a .jsonl file): nothing backed up")
    return path


def _path(payload: Mapping[str, Any], key: str) -> Path | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or "\0" in value:
        raise HookInputError(f"hook input field {key} is not a path: {value!r}")
    return Path(value)


def run(name: str, data: bytes, environ: Mapping[str, str], detached: bool = False) -> Output:
    """Handle one hook event. Never raises."""
    project = detach.project(environ, None)
    try:
        event = parse(name, data)
        project = detach.project(environ, event.cwd)
        if project is None:
            raise NotInitialized("no .claude/memory repository for this project")
        run_ = _start(event, project, detached)
        output = _handle(run_)
        # After the commit, never waited for: a detached process packs when it is due.
        packing.start_if_due(run_.store.gitdir)
        return output
    except Exception as error:  # the one boundary of the hook path
        return _failure(name, project, error)


def _start(event: Event, project: Path, detached: bool) -> _Run:
    store = Store.open(paths.memory_dir(project))
    problems = []
    try:
        config = load_config(paths.config_path(project))
    except CmemError as error:
        config = Config()
        problems.append(f"{error}; using default settings until it is fixed")
    store.filter = checkpoint.redaction(config)
    return _Run(event, project, store, config, detached, problems)


def _handle(run_: _Run) -> Output:
    event = BY_NAME[run_.event.name]
    if not run_.config.events.enabled(event):
        return Output()
    return _HANDLERS[event.name](run_, event)


def _backup(run_: _Run, event: HookEvent) -> Output:
    """PreCompact, Stop, SubagentStop: commit the session, then keep the search index current."""
    if event.throttled and _throttled(run_):
        return Output()
    if _commit(run_, event) is not None:
        _refresh_index(run_.store)
        if run_.detached and not run_.problems and not _syncing(run_):
            _keep_start(run_)
    return _report(run_)


def _session_end(run_: _Run, event: HookEvent) -> Output:
    """Commit with the exit recorded in active-context.md; the push runs detached. Detached,
    nobody waits: what the next SessionStart would say is kept for it."""
    committed = _commit(run_, event, _exit_recorder(run_.event))
    if committed is not None and run_.detached:  # in nobody's way: as the other hooks do
        _refresh_index(run_.store)
    if _syncing(run_):
        _spawn_background_sync(run_)
    elif run_.detached and not run_.problems:
        _keep_start(run_)
    return _report(run_)


def _keep_start(run_: _Run) -> None:
    """Keep what the next SessionStart would say (a detached hook is in nobody's way)."""
    from . import warm_start
    warm_start.keep(run_.store, run_.project, run_.config, _folder(run_))


def _commit(run_: _Run, event: HookEvent, edit: checkpoint.Edit | None = None
            ) -> pygit2.Oid | None:
    result = checkpoint.take(run_.store, _request(run_, edit),
                             None if run_.detached else event.wait)
    run_.problems += result.problems + run_.store.notices
    return result.commit


def _refresh_index(store: Store) -> None:
    """Keep the search index current while it is cheap (not in a foreground SessionEnd, whose
    budget is too tight; a large update waits for the next search, which does it anyway)."""
    from ..read import index_file
    if not index_file.path(store.gitdir, create=False).is_file():
        return  # never searched: no index to keep, and no need to load the code that keeps it
    from ..read import search_index
    search_index.refresh_if_cheap(store, _INDEX_CHEAP_BYTES)


def _syncing(run_: _Run) -> bool:
    return run_.config.auto_sync and default_remote(run_.store.repo) is not None


def _spawn_background_sync(run_: _Run) -> None:
    """SessionEnd never waits on the network (SessionEnd hooks share a 1.5 s budget): the push
    runs in a detached process, in its own session so that it outlives the hook."""
    import subprocess

    log = open(lock.state_dir(run_.store.gitdir) / "sync.log", "ab")
    with log:
        subprocess.Popen([sys.executable, "-m", "cmem_git", "hook", BACKGROUND_SYNC],
                         cwd=run_.project, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                         start_new_session=True,
                         env={**os.environ, "CLAUDE_PROJECT_DIR": str(run_.project)})


def background_sync(environ: Mapping[str, str]) -> int:
    """The detached sync SessionEnd starts; failures wait for the next SessionStart. Nobody
    waits for it, so it waits for a sync that holds the network lock: that one may have
    pushed before this session's commit existed, and stepping aside would leave the commit
    unpushed until the next sync."""
    from ..remote import sync
    project = detach.project(environ, None)
    if project is None:
        return 0
    store = Store.open(paths.memory_dir(project))
    try:
        config = load_config(paths.config_path(project))
        store.filter = checkpoint.redaction(config)
        done = sync.sync(store, None, config.device, _limits(config),
                         checkpoint.secret_rules(config))
        tip = store.tip()
        _log_sync(f"{str(tip.id)[:8] if tip else 'no commit'} "
                  f"{'pushed' if done.pushed else 'already there'} ({done.merged or 'no merge'})")
    except LockTimeout as error:  # a sync that long is pushing this commit too, or failing
        _log_sync(f"{error}; the next sync pushes")
    except Exception as error:  # recorded, never raised: nobody is waiting for this process
        errorlog.record(store.gitdir, "background sync", _describe(error))
    return 0


def _log_sync(line: str) -> None:
    """One line per background sync in .git/cmem/sync.log (its stdout), for whoever wonders
    whether SessionEnd's push happened."""
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} background sync: {line}", flush=True)


def _sync_now(run_: _Run) -> str | None:
    """SessionStart pulls and pushes, each git call bounded; a failure is reported, never
    fatal, and the context says how far behind or ahead the memory is."""
    from ..remote import sync
    remote = default_remote(run_.store.repo)
    try:
        outcome = sync.sync(run_.store, remote, run_.config.device, _limits(run_.config),
                            checkpoint.secret_rules(run_.config), wait=_SYNC_WAIT)
    except LockTimeout:
        return f"Sync: skipped, another cmem is syncing with {remote} right now."
    except CmemError as error:
        run_.problems.append(f"sync with {remote} failed: {error}")
        return None
    parts = [f"{outcome.merged} from {remote}" if outcome.merged else "",
             f"pushed to {remote}" if outcome.pushed else ""]
    parts += [f"{path} was edited on two devices: both versions are in it, one after the "
              "other; combine them" for path in outcome.conflicts]
    return "Sync: " + ("; ".join(p for p in parts if p) or f"up to date with {remote}") + "."


def _limits(config: Config) -> Limits:
    from ..git import transport
    return transport.Limits(*network_limits(config, _SYNC_TIMEOUT))


def _request(run_: _Run, edit: checkpoint.Edit | None = None) -> checkpoint.Request:
    event = run_.event
    table = BY_NAME[event.name]
    detail = (table.trailer, event.detail) if table.trailer and event.detail else None
    return checkpoint.Request(event.name, event.session_id, _transcript(run_),
                              run_.config.device, detail, edit,
                              deadline=run_.started + (_DETACHED_BUDGET if run_.detached
                                                       else table.budget))


def _transcript(run_: _Run) -> Path | None:
    """The payload's transcript_path; without one, where Claude Code keeps this session."""
    event = run_.event
    if event.transcript is not None or event.name == "session-start":
        return event.transcript
    run_.problems.append("hook input has no transcript_path; looked in Claude Code's folder "
                         "for this project")
    return paths.transcripts_dir(run_.project) / f"{event.session_id}.jsonl"


def _exit_recorder(event: Event) -> checkpoint.Edit:
    when = checkpoint.now()
    return lambda text: memory.record_exit(text, when, event.session_id, event.detail or "other")


def _throttled(run_: _Run) -> bool:
    tip = run_.store.tip()
    last = last_for_session(run_.store.repo, tip.id if tip else None, run_.event.session_id)
    return last is not None and time.time() - last.time < run_.config.stop_throttle_minutes * 60


def _session_start(run_: _Run, _: HookEvent) -> Output:
    from ..capture import recovery
    from ..read import context, context_text
    from . import warm_start
    event = run_.event
    folder = _folder(run_)
    run_.problems += recovery.recover(run_.store, _request(run_), folder)
    syncing = _syncing(run_)
    synced = _sync_now(run_) if syncing else None
    lagging = _behind(run_.store, folder)
    errors = errorlog.take_pending(run_.store.gitdir)
    watched = None if syncing else warm_start.watch(run_.store, run_.project, run_.config, folder)
    tip = run_.store.tip()  # after the fingerprint, as warm_start.keep requires
    settings = warm_start.settings(run_.config)
    facts = context.facts(run_.store, tip, settings, lagging)
    text = context_text.render(run_.store.gitdir, facts, settings, time.time(), event.detail,
                               event.session_id, synced, errors, run_.problems)
    output: dict[str, Any] = {"hookSpecificOutput": {"hookEventName": "SessionStart",
                                                     "additionalContext": text}}
    if run_.problems or errors or lagging:
        shown = run_.problems + ([lagging] if lagging else [])
        output["systemMessage"] = _message(shown or ["earlier hook problems: see context"])
    elif watched is not None and tip is not None:
        warm_start.keep(run_.store, run_.project, run_.config, folder, watched,
                        (str(tip.id), facts))
    return Output(stdout=json.dumps(output))


def _folder(run_: _Run) -> Path:
    """The folder of the project's transcripts: the payload's transcript's, else Claude Code's
    for this project (warm_start.py picks it the same way)."""
    transcript = run_.event.transcript
    return (transcript.parent if transcript is not None and transcript.parent.is_dir()
            else paths.transcripts_dir(run_.project))


# Every event of the table has its handler (tests/test_events.py checks it).
_HANDLERS: dict[str, Callable[[_Run, HookEvent], Output]] = {
    "session-start": _session_start, "pre-compact": _backup, "session-end": _session_end,
    "stop": _backup, "subagent-stop": _backup}


def _behind(store: Store, folder: Path) -> str | None:
    """One line for Claude and the user when a local transcript is older than the stored one:
    `claude --resume` would continue from the stale copy."""
    from ..remote import restore
    lagging = restore.behind(store, folder)
    if not lagging:
        return None
    shown = ", ".join(f"{item.session} ({item.missing} bytes)" for item in lagging[:3])
    more = f" and {len(lagging) - 3} more" if len(lagging) > 3 else ""
    first = lagging[0].session
    return (f"Behind: the local transcript of {shown}{more} is older than the stored copy "
            f"(continued on another machine); `cmem restore {first}` brings it up to date "
            "before `claude --resume`.")


def _report(run_: _Run) -> Output:
    if not run_.problems:
        return Output()
    for problem in run_.problems:
        errorlog.record(run_.store.gitdir, run_.event.name, problem)
    return _channel(run_.event.name, _message(run_.problems))


def _message(problems: list[str]) -> str:
    return "cmem: " + "; ".join(problems)


def _channel(name: str, message: str) -> Output:
    event = BY_NAME.get(name)
    if event is not None and event.channel == "stderr":
        return Output(stderr=message + "\n")
    return Output(stdout=json.dumps({"systemMessage": message}))


def _failure(name: str, project: Path | None, error: Exception) -> Output:
    message = _describe(error)
    gitdir = paths.memory_dir(project) / ".git" if project else None
    if gitdir is not None and gitdir.is_dir():
        try:
            if not isinstance(error, CmemError):
                log = errorlog.log_traceback(gitdir, error)
                message += f" (traceback in {log})"
            errorlog.record(gitdir, name, message)
        except OSError as nested:  # e.g. the disk is full: still report, never raise
            message += f"; could not record it: {nested.strerror or nested}"
    return _channel(name, f"cmem {name} failed: {message}")


def _describe(error: Exception) -> str:
    if isinstance(error, CmemError):
        return f"{error}" + (f" (hint: {error.hint})" if error.hint else "")
    if isinstance(error, OSError):
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    return f"{type(error).__name__}: {error}"


def main(name: str, data: bytes, detached: bool = False) -> int:
    """One hook, its input read (detach.main, where every hook process starts)."""
    if name == BACKGROUND_SYNC:
        return background_sync(os.environ)
    if name == packing.BACKGROUND_PACK:
        return packing.background_pack(os.environ)
    if name not in BY_NAME:
        sys.stderr.write(f"cmem hook: unknown event {name!r}; one of {', '.join(BY_NAME)}\n")
        return 0
    output = run(name, data, os.environ, detached)
    sys.stdout.write(output.stdout)
    sys.stderr.write(output.stderr)
    return 0
