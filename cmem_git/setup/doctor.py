"""`cmem doctor`: check an installation, say how to fix each problem, fix what is safe to fix.

Each check returns findings; a finding with a `fix` can be repaired without asking, because the
repair only adds what cmem itself installs, moves cmem's own entries out of files the team
shares, takes out claude-memory's hooks (keeping a copy of the file), rebuilds what a commit
holds anyway (the index) or finishes what a killed cmem left undone. What belongs to the user
(their project's index, a read-only mount, a `core.worktree` they set) is reported with the
command to run, never changed.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .. import paths
from ..errors import CmemError
from ..git import command, errorlog
from ..git.lock import clear_stale, interrupted, state_dir
from ..repo import worktree
from ..repo.config import load_config
from ..repo.store import Store
from . import adoption, settings
from . import project as project_mod

Fix = Callable[[], "list[str] | None"]


@dataclass(frozen=True)
class Finding:
    check: str
    problem: str
    hint: str
    fix: Fix | None = None  # returns what it changed, when there is more to say than `problem`


def examine(project: Path) -> list[Finding]:
    memory = paths.memory_dir(project)
    if not (memory / ".git").is_dir():
        return [Finding("repository", f"no memory repository at {memory}", "run `cmem init`")]
    broken = _repository(memory)
    writable = not broken and not (broken := _read_only(memory))
    found = broken + _config(project) + _hooks(project) + _shared_hooks(project)
    found += _old_hooks(project) + _commands(project) + _project_commands(project)
    found += _lock(memory) if writable else []
    found += _errors(memory) + _excluded(project) + _tracked(project)
    if writable:
        index = _index(memory)
        found += index or _worktree(memory)
    return found


def _repository(memory: Path) -> list[Finding]:
    repo = pygit2.Repository(str(memory))
    elsewhere = _foreign_worktree(memory, repo)
    if elsewhere:
        return elsewhere
    try:
        store = Store(repo)
        branch = store.branch
    except (CmemError, pygit2.GitError) as error:
        return [Finding("repository", f"cannot read {memory}: {error}",
                        "see `git -C .claude/memory status`")]
    ref = repo.references.get(branch)
    if ref is not None and ref.target not in repo:
        return [Finding("repository", f"the commit {ref.target} that {branch} points at is "
                        f"missing from {memory / '.git' / 'objects'}",
                        "restore the repository from a remote (`git clone`) or a backup; "
                        f"`git -C {shlex.quote(str(memory))} fsck` lists what else is missing")]
    return _fsck(memory)


def _fsck(memory: Path) -> list[Finding]:
    # Without the index: a corrupt one is a problem of its own (_index), not of history.
    no_index = {"GIT_INDEX_FILE": str(Path(tempfile.gettempdir()) / "cmem-no-index")}
    done = command.run_text("-C", str(memory), "fsck", "--no-dangling", "--no-progress",
                       extra=no_index)
    if done.returncode != 0:
        return [Finding("repository", f"git fsck found problems: {done.stderr.strip()[:500]}",
                        "restore from a remote or backup; `git -C .claude/memory fsck` for detail")]
    return []


def _foreign_worktree(memory: Path, repo: pygit2.Repository) -> list[Finding]:
    """core.worktree set to another folder: cmem's working files would be written there."""
    workdir = Path(repo.workdir).resolve() if repo.workdir else None
    if workdir == memory.resolve():
        return []
    command = f"git -C {shlex.quote(str(memory))} config --unset core.worktree"
    return [Finding("repository", f"core.worktree in {memory / '.git' / 'config'} points at "
                    f"{workdir}: cmem would write the memory's files there, not in {memory}",
                    f"run `{command}` (cmem keeps its files in {memory} itself)")]


def _read_only(memory: Path) -> list[Finding]:
    gitdir = memory / ".git"
    places = [gitdir, gitdir / "objects", gitdir / "refs" / "heads", gitdir / "index", memory]
    blocked = [p for p in places if p.exists() and not os.access(p, os.W_OK)]
    if not blocked:
        return []
    return [Finding("read-only", f"cannot write to {blocked[0]}: every backup fails (a "
                    "read-only file system, or files owned by another user)",
                    "remount it read-write, or take the files back: "
                    f"`sudo chown -R \"$(id -un)\" {shlex.quote(str(memory))}`")]


def _config(project: Path) -> list[Finding]:
    try:
        load_config(paths.config_path(project))
    except CmemError as error:
        return [Finding("config", str(error), error.hint or "fix the file")]
    return []


def _hooks(project: Path) -> list[Finding]:
    path = project_mod.local_settings_path(project)

    def reinstall() -> list[str]:
        return _changes(lambda r: project_mod.install_hooks(project, sys.executable, r))

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
        elif command != settings.hook_command(settings.interpreter(command) or "",
                                              settings.HOOK_EVENTS[event]):
            found.append(Finding("hooks", f"the {event} hook is not the command this cmem "
                                 f"installs: {command}", "an earlier cmem installed it (it "
                                 "works, more slowly); `cmem doctor --fix` updates it",
                                 reinstall))
    return found


def _changes(step: Callable[[project_mod.Report], None]) -> list[str]:
    report = project_mod.Report()
    step(report)
    return report.actions


def _shared_hooks(project: Path) -> list[Finding]:
    """cmem's hooks in the settings the team shares (where cmem before 0.2 put them)."""
    path = project_mod.settings_path(project)
    try:
        found = settings.cmem_commands(path)
    except CmemError as error:
        return [Finding("hooks", str(error), error.hint or "fix the file")]
    if not found:
        return []
    return [Finding("hooks", f"cmem's hooks are in {path}, which your team shares: they name "
                    "this machine's cmem, which other machines do not have",
                    "`cmem doctor --fix` moves them to .claude/settings.local.json (personal)",
                    lambda: _changes(lambda r: project_mod.install_hooks(project,
                                                                         sys.executable, r)))]


def _old_hooks(project: Path) -> list[Finding]:
    files = [project_mod.settings_path(project), project_mod.local_settings_path(project)]
    try:
        found = adoption.old_hooks(project, files)
    except CmemError:
        return []  # an unreadable settings file is reported by _hooks
    return [Finding("old hooks", f"claude-memory's hooks still run from {path}: "
                    f"{'; '.join(commands)}",
                    "they write markers and raw/ copies beside cmem's backups: `cmem doctor "
                    "--fix` takes them out (keeping a copy of the file; the scripts stay)",
                    lambda: adoption.remove_old_hooks(project, files))
            for path, commands in found.items()]


@functools.cache
def _runs(command: str) -> bool:
    """Whether the interpreter a hook names can import cmem."""
    python = settings.interpreter(command)
    if python is None or not Path(python).is_file():
        return False
    done = subprocess.run([python, "-m", "cmem_git", "--version"], capture_output=True,
                          timeout=30)
    return done.returncode == 0


@functools.cache
def _command_runs(command: str) -> bool:
    """Whether a slash command's cmem (a script, or `python -m cmem_git`) runs."""
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    if not words or not os.access(words[0], os.X_OK) or not Path(words[0]).is_file():
        return False
    return subprocess.run([*words, "--version"], capture_output=True, timeout=30).returncode == 0


def _commands(project: Path) -> list[Finding]:
    folder = project_mod.commands_dir()
    templates = project_mod.command_templates()
    missing = [name for name in templates if not (folder / name).is_file()]
    dead = {}
    for name in sorted(set(templates) - set(missing)):
        command = project_mod.installed_cmem(folder / name, templates[name])
        if command is not None and not _command_runs(command):
            dead[name] = command
    fix = _install_commands(project)
    found = []
    if missing:
        found.append(Finding("commands", f"slash commands missing from {folder}: "
                             f"{', '.join(sorted(missing))}",
                             "run `cmem doctor --fix` (your own files are never overwritten)",
                             fix))
    if dead:
        found.append(Finding("commands", f"slash commands {', '.join(dead)} in {folder} run "
                             f"{next(iter(dead.values()))}, which does not run",
                             "the install moved or was removed: `cmem doctor --fix` points "
                             "them at this cmem", fix))
    return found


def _project_commands(project: Path) -> list[Finding]:
    """Slash commands an earlier cmem wrote into the project's shared .claude/commands/."""
    old = project_mod.project_commands(project)
    if not old:
        return []
    return [Finding("commands", f"{', '.join(str(p) for p in old)} name this machine's cmem "
                    "in a folder your team shares",
                    f"`cmem doctor --fix` moves them to {project_mod.commands_dir()}",
                    _install_commands(project))]


def _install_commands(project: Path) -> Fix:
    def fix() -> list[str]:
        report = project_mod.Report()
        project_mod.install_commands(project_mod.cmem_command(sys.executable), False, report)
        project_mod.retire_project_commands(project, report)
        return report.actions
    return fix


def _lock(memory: Path) -> list[Finding]:
    gitdir = memory / ".git"
    locks = _git_locks(gitdir)
    if not (interrupted(gitdir) or locks) or _held(gitdir):
        return []

    def fix() -> list[str]:
        cleared = clear_stale(gitdir)
        (state_dir(gitdir, create=False) / "writing").unlink(missing_ok=True)
        Store(pygit2.Repository(str(memory))).repair()
        return [f"removed {path}" for path in cleared]

    named = f" ({', '.join(str(p.relative_to(gitdir)) for p in locks)})" if locks else ""
    return [Finding("lock", f"a stale lock{named} or unfinished write from a killed cmem or "
                    "git: every commit fails until it goes",
                    "run `cmem doctor --fix` to clear it and finish the file update", fix)]


def _git_locks(gitdir: Path) -> list[Path]:
    found = [gitdir / name for name in ("index.lock", "HEAD.lock", "packed-refs.lock")
             if (gitdir / name).exists()]
    return found + sorted((gitdir / "refs").rglob("*.lock"))


def _held(gitdir: Path) -> bool:
    """Whether a live cmem holds the repository lock right now."""
    fd = os.open(state_dir(gitdir) / "lock", os.O_RDWR | os.O_CREAT, 0o600)
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
    probes = [paths.memory_dir(project) / "active-context.md",
              project_mod.local_settings_path(project)]
    try:
        seen = [probe for probe in probes
                if not repo.path_is_ignored(project_mod.relative(repo, probe).rstrip("/"))]
    except (ValueError, pygit2.GitError):
        return []
    if not seen:
        return []

    def fix() -> None:
        project_mod.hide_from_project(project, project_mod.Report())

    return [Finding("project", "the project's git repository sees "
                    f"{', '.join(str(p.relative_to(project)) for p in seen)}",
                    "run `cmem doctor --fix` (adds it to .git/info/exclude)", fix)]


def _tracked(project: Path) -> list[Finding]:
    return [Finding("project", f"your project's git tracks {path}: {why}",
                    f"stop tracking it (your files stay): `{command}`")
            for path, why, command in project_mod.tracked(project)]


def _index(memory: Path) -> list[Finding]:
    repo = pygit2.Repository(str(memory))
    try:
        repo.index.read(True)
        return []
    except pygit2.GitError as error:
        problem = str(error)

    def fix() -> None:
        (memory / ".git" / "index").unlink(missing_ok=True)
        fresh = pygit2.Repository(str(memory))
        index = fresh.index
        index.read_tree(fresh.head.peel(pygit2.Tree))
        index.write()  # working files stay as they are: an edit shows as one, as in git

    return [Finding("index", f"the index {memory / '.git' / 'index'} is corrupt ({problem}): "
                    "every backup fails", "`cmem doctor --fix` rebuilds it from the last "
                    "commit (working files are kept)", fix)]


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
