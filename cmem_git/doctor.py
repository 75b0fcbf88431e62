"""`cmem doctor`: check an installation, say how to fix each problem, fix what is safe to fix.

Each check returns findings; a finding with a `fix` can be repaired without asking, because the
repair only adds what cmem itself installs or finishes what a killed cmem left undone.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pygit2

from . import errorlog, paths, project as project_mod, settings, worktree
from .config import load_config
from .errors import CmemError
from .lock import clear_stale, cmem_dir, interrupted
from .store import Store


@dataclass(frozen=True)
class Finding:
    check: str
    problem: str
    hint: str
    fix: Callable[[], None] | None = None


def examine(project: Path) -> list[Finding]:
    memory = paths.memory_dir(project)
    if not (memory / ".git").is_dir():
        return [Finding("repository", f"no memory repository at {memory}", "run `cmem init`")]
    found = _repository(memory) + _config(project) + _hooks(project) + _commands(project)
    found += _lock(memory) + _errors(memory) + _excluded(project)
    if not any(f.check == "repository" for f in found):
        found += _worktree(memory)
    return found


def _repository(memory: Path) -> list[Finding]:
    try:
        store = Store(pygit2.Repository(str(memory)))
        store.tip()
    except (CmemError, pygit2.GitError, KeyError) as error:
        return [Finding("repository", f"cannot read {memory}: {error}",
                        "see `git -C .claude/memory status`")]
    done = subprocess.run(["git", "-C", str(memory), "fsck", "--no-dangling", "--no-progress"],
                          capture_output=True, text=True, env=_git_env())
    if done.returncode != 0:
        return [Finding("repository", f"git fsck found problems: {done.stderr.strip()[:500]}",
                        "restore from a remote or backup; `git -C .claude/memory fsck` for detail")]
    return []


def _git_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}


def _config(project: Path) -> list[Finding]:
    try:
        load_config(paths.config_path(project))
    except CmemError as error:
        return [Finding("config", str(error), error.hint or "fix the file")]
    return []


def _hooks(project: Path) -> list[Finding]:
    path = project_mod.settings_path(project)

    def reinstall() -> None:
        settings.install_hooks(path, sys.executable)

    try:
        installed = settings.cmem_commands(path)
    except CmemError as error:
        return [Finding("hooks", str(error), error.hint or "fix the file")]
    found = []
    for event in settings.HOOK_EVENTS:
        command = installed.get(event)
        if command is None:
            found.append(Finding("hooks", f"no cmem hook for {event} in {path}",
                                 "run `cmem init` (or `cmem doctor --fix`)", reinstall))
        elif not _runs(command):
            found.append(Finding("hooks", f"the {event} hook does not run: {command}",
                                 "the virtualenv moved or was removed: `cmem doctor --fix` "
                                 "points the hooks at this cmem", reinstall))
    return found


def _runs(command: str) -> bool:
    """Whether the interpreter a hook names can import cmem."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words or not Path(words[0]).is_file():
        return False
    done = subprocess.run([words[0], "-m", "cmem_git", "--version"], capture_output=True,
                          timeout=30)
    return done.returncode == 0


def _commands(project: Path) -> list[Finding]:
    folder = project / ".claude" / "commands"
    missing = [name for name in project_mod.command_templates()
               if not (folder / name).is_file()]
    if not missing:
        return []
    command = project_mod.cmem_command(sys.executable)

    def fix() -> None:
        project_mod.install_commands(project, command, False, project_mod.Report())

    return [Finding("commands", f"slash commands missing from {folder}: {', '.join(missing)}",
                    "run `cmem doctor --fix` (your own files are never overwritten)", fix)]


def _lock(memory: Path) -> list[Finding]:
    gitdir = memory / ".git"
    stale = interrupted(gitdir) or any(
        (gitdir / name).exists() for name in ("index.lock", "HEAD.lock"))
    if not stale or _held(gitdir):
        return []

    def fix() -> None:
        clear_stale(gitdir)
        (gitdir / "cmem" / "writing").unlink(missing_ok=True)
        Store(pygit2.Repository(str(memory))).repair()

    return [Finding("lock", "a stale lock or unfinished write from a killed cmem or git",
                    "run `cmem doctor --fix` to clear it and finish the file update", fix)]


def _held(gitdir: Path) -> bool:
    """Whether a live cmem holds the repository lock right now."""
    fd = os.open(cmem_dir(gitdir) / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _errors(memory: Path) -> list[Finding]:
    pending = errorlog.pending(memory / ".git")
    if not pending:
        return []
    last = pending[-1]
    return [Finding("hook errors", f"{len(pending)} hook errors not yet reported; last: "
                    f"{last.get('event')}: {last.get('message')}",
                    "the next SessionStart shows them to Claude; `cmem status` lists them")]


def _excluded(project: Path) -> list[Finding]:
    found = pygit2.discover_repository(str(project))
    if found is None:
        return []
    repo = pygit2.Repository(found)
    if repo.workdir is None:
        return []
    memory = paths.memory_dir(project).resolve()
    try:
        relative = memory.relative_to(Path(repo.workdir).resolve()).as_posix()
        ignored = repo.path_is_ignored(relative + "/active-context.md")
    except (ValueError, pygit2.GitError):
        return []
    if ignored:
        return []

    def fix() -> None:
        project_mod.hide_from_project(project, project_mod.Report())

    return [Finding("project", "the project's git repository sees .claude/memory",
                    "run `cmem doctor --fix` (adds it to .git/info/exclude)", fix)]


def _worktree(memory: Path) -> list[Finding]:
    repo = pygit2.Repository(str(memory))
    if repo.head_is_unborn:
        return []
    index = repo.index
    index.read(True)
    behind = sum(1 for _ in index.diff_to_tree(repo.head.peel(pygit2.Tree)).deltas)
    if not behind:
        return []

    def fix() -> None:
        worktree.sync(repo)

    return [Finding("files", f"{behind} files in the index are not at the last commit",
                    "run `cmem doctor --fix`", fix)]
