"""cmem's hooks in a Claude Code settings file: add them, remove them, move them.

The hook command names this machine's install, so it belongs in `.claude/settings.local.json`, which
Claude Code treats as personal; `.claude/settings.json` is shared with the team, and hooks that earlier
cmem versions put there are moved out (`move_hooks`).

The file belongs to the user, so every edit is a merge: other keys, other hooks and their order stay as
they were, and a run that changes nothing does not write at all (the file stays byte-identical). A
rewrite goes to a temp file in the same folder and replaces the original with `os.replace`, so Claude
Code never reads a half-written file. A file we cannot understand is reported, never "repaired".

The hook command names the Python interpreter by absolute path (`/venv/bin/python -m cmem_git hook
stop`): Claude Code runs hooks through a shell from the project folder with its own PATH, where the
venv's `cmem` script may not be found. When the venv moves, installing again rewrites that path in
place, which is why cmem's entries are recognised by what they run, not by an exact string.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import paths
from ..atomic import write_atomic
from ..errors import SettingsError
from ..git.lock import markers_dir
from ..repo.events import BY_NAME, EVENTS

Json = dict[str, Any]

# Claude Code's event name -> cmem's, and the timeout installed with it (repo/events.py).
HOOK_EVENTS: dict[str, str] = {event.claude: event.name for event in EVENTS}
DEFAULT_TIMEOUTS: dict[str, int] = {event.claude: event.timeout for event in EVENTS}

# Hooks installed with Claude Code's `async: true` option (Claude does not wait for them). None:
# with the real client (tests/claude) an asynchronous Stop hook of a `claude -p` session never
# ran, so its backup would be lost; Stop stays synchronous and throttled. SessionStart prints
# context, PreCompact must commit before compaction; SessionEnd hands its push to a detached
# process, and a hook hands packing to one (packing.py).
ASYNC_EVENTS: tuple[str, ...] = ()

# `python -m cmem_git hook …` (what we write) or `cmem hook …` (the console script, possibly quoted).
_CMEM_COMMAND = re.compile(r"-m\s+cmem_git\s+hook(?:\s|$)|(?:^|[\s/'\"])cmem['\"]?\s+hook(?:\s|$)")


# Stop, SubagentStop and SessionEnd (events.py: `detached`): Claude Code waits for the hook's
# shell, not for what it leaves running, so the shell starts cmem in the background and returns
# in a few ms instead of after a Python start-up (~40 ms, twice per prompt and session). Stdin
# is passed on through fd 3 (a background command's own stdin is /dev/null) and its output goes
# nowhere, since Claude Code waits until the hook's pipes close; cmem logs to .git/cmem. The
# marker of `detach.running` is made here, before the shell returns, so that a waiter cannot
# look before the process has made its own. Without the markers' folder (no `cmem init` yet, a
# repository from an earlier cmem) or with CMEM_HOOK_FOREGROUND=1, the hook runs as a plain
# one: Python says what is wrong, or forks itself.
_MARKERS = markers_dir(paths.MEMORY / ".git", create=False)
_LAUNCHER = (f'm="$CLAUDE_PROJECT_DIR/{_MARKERS}"; '
             '[ -n "$CMEM_HOOK_FOREGROUND" ] || [ ! -d "$m" ] && exec {command}; exec 3<&0; '
             '{command} --detached <&3 3<&- >/dev/null 2>&1 & : 2>/dev/null >"$m/$!"; exit 0')


def hook_command(executable: str, subcommand: str) -> str:
    """The shell command Claude Code runs for one hook; it works from any folder and any PATH."""
    if not executable:
        raise SettingsError("cannot tell which Python runs cmem (sys.executable is empty)",
                            hint="run cmem from a regular Python installation or venv")
    command = (f"{shlex.quote(os.path.abspath(executable))} -m cmem_git hook "
               f"{shlex.quote(subcommand)}")
    return _LAUNCHER.format(command=command) if BY_NAME[subcommand].detached else command


def interpreter(command: str) -> str | None:
    """The Python a cmem hook command runs (the word before `-m cmem_git`)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    found = [words[i - 1] for i in range(1, len(words) - 1)
             if words[i] == "-m" and words[i + 1] == "cmem_git"]
    return found[0] if found else None


def is_cmem_command(command: str) -> bool:
    """Whether a hook command is one cmem installed, whichever interpreter path it names."""
    return _CMEM_COMMAND.search(command) is not None


def install_hooks(path: Path, executable: str, timeouts: dict[str, int] | None = None) -> list[str]:
    """Add (or bring up to date) one cmem hook per event in HOOK_EVENTS; return what changed."""
    settings = _read(path)
    table: Json = settings.setdefault("hooks", {})
    limits = _timeouts(timeouts)
    changes = []
    for event, subcommand in HOOK_EVENTS.items():
        wanted = {"type": "command", "command": hook_command(executable, subcommand),
                  "timeout": limits[event], **({"async": True} if event in ASYNC_EVENTS else {})}
        change = _install_one(table.setdefault(event, []), wanted)
        if change:
            changes.append(f"{change} {event} hook")
    if changes:
        _write(path, settings)
    return changes


def cmem_commands(path: Path) -> dict[str, str]:
    """Event -> the command of the cmem hook installed for it."""
    table = _read(path).get("hooks", {})
    found = {event: _cmem_hooks(groups) for event, groups in table.items()}
    return {event: hooks[0][1]["command"] for event, hooks in found.items() if hooks}


def uninstall_hooks(path: Path) -> list[str]:
    """Remove every cmem hook, and the groups, events and "hooks" table that leaves empty."""
    return [f"removed {event} hook" for event, _ in remove_hooks(path, is_cmem_command)]


def remove_hooks(path: Path, doomed: Callable[[str], bool], backup: Path | None = None
                 ) -> list[tuple[str, str]]:
    """Remove the command hooks `doomed` picks (and what that leaves empty); (event, command)
    of each. With `backup`, the file as it was is copied there first."""
    settings = _read(path)
    table: Json = settings.get("hooks", {})
    removed = []
    for event in list(table):
        found = _hooks(table[event], doomed)
        if found:
            _remove(table[event], found)
            removed += [(event, hook["command"]) for _, hook in found]
            if not table[event]:
                del table[event]
    if removed:
        if not table:
            del settings["hooks"]
        if backup is not None:
            write_atomic(backup, path.read_text(encoding="utf-8"), _mode(path.resolve()), fsync=True)
        _write(path, settings)
    return removed


def hook_commands(path: Path) -> list[str]:
    """Every command hook in the file, in order."""
    return [hook["command"] for groups in _read(path).get("hooks", {}).values()
            for _, hook in _hooks(groups, lambda _: True)]


def _timeouts(overrides: dict[str, int] | None) -> dict[str, int]:
    merged = {**DEFAULT_TIMEOUTS, **(overrides or {})}
    unknown = sorted(set(merged) - set(HOOK_EVENTS))
    if unknown:
        raise ValueError(f"cmem installs no hook for {', '.join(unknown)}")
    return merged


def _install_one(groups: list[Any], wanted: Json) -> str | None:
    """Make `groups` hold exactly one cmem hook equal to `wanted`, in place if it has one already."""
    found = _cmem_hooks(groups)
    if not found:
        # No matcher: the hook runs for every source (startup, resume, clear, compact, …).
        groups.append({"hooks": [wanted]})
        return "added"
    _remove(groups, found[1:])  # a second copy would run the hook twice
    hook = found[0][1]
    stale = any(hook.get(key) != value for key, value in wanted.items())
    hook.update(wanted)  # keeps the entry's place and any keys the user added to it
    return "updated" if stale or len(found) > 1 else None


def _cmem_hooks(groups: list[Any]) -> list[tuple[Json, Json]]:
    """(group, hook) for every cmem hook; shapes we do not know are not ours and are skipped."""
    return _hooks(groups, is_cmem_command)


def _hooks(groups: list[Any], wanted: Callable[[str], bool]) -> list[tuple[Json, Json]]:
    return [(group, hook) for group in groups
            if isinstance(group, dict) and isinstance(group.get("hooks"), list)
            for hook in group["hooks"]
            if isinstance(hook, dict) and isinstance(hook.get("command"), str)
            and wanted(hook["command"])]


def _remove(groups: list[Any], doomed: list[tuple[Json, Json]]) -> None:
    """Drop these hooks (by identity: an equal copy may be the one we keep) and the groups they
    leave empty; a group the user left empty on purpose stays."""
    for group, _ in doomed:
        group["hooks"][:] = [h for h in group["hooks"] if all(h is not d for _, d in doomed)]
    emptied = [group for group, _ in doomed if not group["hooks"]]
    groups[:] = [g for g in groups if all(g is not e for e in emptied)]


def _read(path: Path) -> Json:
    """The settings as a dict; a missing or blank file is empty settings."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError as error:
        raise _invalid(path, f"not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise SettingsError(f"cannot read {path}: {error.strerror}") from None
    if not text.strip():
        return {}
    try:
        settings: Json = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid(path, f"line {error.lineno}, column {error.colno}: {error.msg}") from None
    _check_shape(path, settings)
    return settings


def _check_shape(path: Path, settings: Any) -> None:
    """The structure we edit must be what Claude Code expects; anything below it is left alone."""
    if not isinstance(settings, dict):
        raise _invalid(path, "the top level is not a JSON object")
    table = settings.get("hooks", {})
    if not isinstance(table, dict):
        raise _invalid(path, '"hooks" is not an object')
    for event, groups in table.items():
        if not isinstance(groups, list):
            raise _invalid(path, f'"hooks"."{event}" is not a list')


def _invalid(path: Path, problem: str) -> SettingsError:
    return SettingsError(f"invalid Claude Code settings {path}: {problem}",
                         hint=f"fix {path} by hand (Claude Code cannot load it either), then try again")


def _write(path: Path, settings: Json) -> None:
    target = path.resolve()  # a symlinked settings file is edited, not replaced by a copy
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings, indent=2, ensure_ascii=False) + "\n"
    write_atomic(target, text, _mode(target), fsync=True)


def _mode(target: Path) -> int:
    """The existing file's permissions; for a new file, what `open()` would give (mkstemp's 0600
    would hide project settings from other users)."""
    try:
        return target.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
