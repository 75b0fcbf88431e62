"""Setting cmem up in a project, and taking it out again.

`init` is safe to run any number of times and on a folder claude-memory left: an existing folder
is adopted (adoption.py: its files become the first commit, its documents, markers and raw/
backups the commits that mean the same), missing memory files come from templates/.

What names this machine's install stays in personal files, because `.claude/settings.json` and
`.claude/commands/` are committed and shared with the team: the hooks go into
`.claude/settings.local.json` (Claude Code's personal settings), and the slash commands into
`~/.claude/commands/` (the user's own commands, found in every project). Each machine's `cmem
init` writes its own; nothing a teammate pulls names a path that only exists here. Hooks and
commands that earlier versions put in the shared files are moved out.

The project's own repository is told to ignore the memory repository and the personal files
through its private `info/exclude`, so no tracked file of the project changes for that; what the
project already tracks is reported with the command that stops it, never changed.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from .. import paths
from ..capture import checkpoint, legacy
from ..git.lock import markers_dir
from ..git.repo import Draft
from ..repo import memory
from ..repo.config import default_device, load_config, write_default_config
from ..repo.history import format_message
from ..repo.store import Store
from ..repo.trailers import Trailer
from . import adoption, settings

EXCLUDED = (paths.CONFIG_NAME,)


@dataclass
class Report:
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    root: str = ""  # which folder was taken as the project, and why


def settings_path(project: Path) -> Path:
    """Shared with the team (committed): cmem's hooks do not belong here."""
    return project / ".claude" / "settings.json"


def local_settings_path(project: Path) -> Path:
    """Personal (Claude Code keeps it out of git): where the hooks go."""
    return project / ".claude" / "settings.local.json"


def find_root(start: Path) -> tuple[Path, str]:
    """The project `cmem init` sets up when run in `start`, and why that folder: the one with
    the memory repository, else the nearest with a .claude/ folder up to the git top level, else
    the git top level, else `start` itself."""
    start = start.resolve()
    existing = paths.find_project(start)
    if existing is not None:
        return existing, "it has the memory repository"
    top = _top_level(start)
    home = paths.claude_home().resolve()
    for folder in (start, *start.parents):
        if top is not None and not folder.is_relative_to(top):
            break
        if (folder / ".claude").is_dir() and (folder / ".claude").resolve() != home:
            return folder, "the nearest folder with .claude/"
        if top is None:
            break
    if top is not None:
        return top, "the top level of its git repository"
    return start, "the current folder: no git repository"


def _top_level(start: Path) -> Path | None:
    repo = _project_repo(start)
    return Path(repo.workdir).resolve() if repo is not None and repo.workdir else None


def init(project: Path, executable: str, device: str | None = None, force: bool = False,
         claude_md: bool = False) -> Report:
    report = Report()
    folder = paths.memory_dir(project)
    adopting = folder.is_dir() and not (folder / ".git").exists()
    fresh = not folder.exists()
    store = Store.open(folder) if (folder / ".git").is_dir() else Store.init(folder)
    if fresh or adopting:
        report.actions.append(f"{'adopted' if adopting else 'created'} memory repository {folder}")
    ignored = [f"/{name}" for name in EXCLUDED] + ([adoption.IGNORED] if adopting else [])
    _exclude(Path(store.gitdir) / "info" / "exclude", ignored)
    store.repo.config["core.fileMode"] = "false"  # adopted scripts keep their mode on disk
    config = paths.config_path(project)
    if write_default_config(config, device or default_device()):
        report.actions.append(f"wrote {config}")
    loaded = load_config(config)  # an invalid config stops init with file and line
    device = loaded.device
    store.filter = checkpoint.redaction(loaded)  # an adopted folder's files too
    for name in memory.FILES:
        if not (folder / name).exists():
            (folder / name).write_bytes(memory.template(name))
            report.actions.append(f"wrote {folder / name} from the template")
    if store.tip() is None:
        _first_commit(store, loaded.device, report, adopting)
        if adopting:
            done, problems = adoption.adopt(store, loaded.device, paths.transcripts_dir(project))
            report.actions += done
            report.notes += problems
    elif checkpoint.take(store, checkpoint.Request("init", None, None, loaded.device)).commit:
        report.actions.append("committed the memory files")
    hide_from_project(project, report)
    set_up_claude(project, executable, force, report)
    if claude_md:
        _import_in_claude_md(project, report)
    return report


def set_up_claude(project: Path, executable: str, force: bool, report: Report) -> None:
    """Hooks in the personal settings, slash commands in the user's folder, and what earlier
    versions or claude-memory left in the shared files taken out."""
    install_hooks(project, executable, report)
    shared, local = settings_path(project), local_settings_path(project)
    report.actions += adoption.remove_old_hooks(project, [shared, local])
    install_commands(cmem_command(executable), force, report)
    retire_project_commands(project, report)


def install_hooks(project: Path, executable: str, report: Report) -> None:
    shared, local = settings_path(project), local_settings_path(project)
    moved = settings.remove_hooks(shared, settings.is_cmem_command)
    if moved:
        report.actions.append(f"moved cmem's {len(moved)} hooks out of {shared} (shared with "
                              f"your team) into {local} (personal)")
    report.actions += [f"{change} in {local}" for change in settings.install_hooks(local,
                                                                                    executable)]
    gitdir = paths.memory_dir(project) / ".git"
    if gitdir.is_dir():  # where the hooks mark the processes they leave running
        markers_dir(gitdir)


def cmem_command(executable: str) -> str:
    """How slash commands call cmem: the console script beside the interpreter when there is
    one, by absolute path, because Claude Code's shell may not have the virtualenv on PATH."""
    script = Path(executable).parent / "cmem"
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    return f"{shlex.quote(executable)} -m cmem_git"


def command_templates() -> dict[str, str]:
    folder = paths.templates() / "commands"
    return {item.name: item.read_text(encoding="utf-8") for item in folder.iterdir()
            if item.name.endswith(".md")}


def commands_dir() -> Path:
    """The user's own slash commands: personal, and found in every project."""
    return paths.claude_home() / "commands"


def install_commands(command: str, force: bool, report: Report) -> None:
    """Slash commands into ~/.claude/commands/; a user's own file of the same name is kept
    unless `force`."""
    folder = commands_dir()
    for name, text in sorted(command_templates().items()):
        wanted = text.replace("{{cmem}}", command)
        target = folder / name
        if target.exists() and target.read_text(encoding="utf-8", errors="replace") == wanted:
            continue
        if target.exists() and not force and installed_cmem(target, text) is None:
            report.notes.append(f"kept your {target} (use --force to replace it)")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted, encoding="utf-8")
        report.actions.append(f"installed /{name.removesuffix('.md')} as {target}")


def project_commands(project: Path) -> list[Path]:
    """Slash commands an earlier cmem installed in the project's shared .claude/commands/."""
    folder = project / ".claude" / "commands"
    return [folder / name for name, text in sorted(command_templates().items())
            if (folder / name).is_file() and installed_cmem(folder / name, text) is not None]


def retire_project_commands(project: Path, report: Report) -> None:
    found = project_commands(project)
    tracked = set(tracked_paths(project, [str(p) for p in found]))
    for path in found:
        path.unlink()
        report.actions.append(
            f"removed {path}, which named this machine's cmem in a folder your team shares "
            f"(the command is in {commands_dir()} now)"
            + ("; your project's git tracks it: commit its removal" if str(path) in tracked
               else ""))


def installed_cmem(path: Path, template: str) -> str | None:
    """The cmem command a command file cmem installed (from this template, for any cmem path)
    runs; None for a file that is not cmem's. Only cmem's files are updated without --force."""
    pattern = re.escape(template).replace(re.escape("{{cmem}}"), "(.+?)", 1)
    pattern = pattern.replace(re.escape("{{cmem}}"), ".+?")
    match = re.fullmatch(pattern, path.read_text(errors="replace"), re.DOTALL)
    return match[1] if match else None


IMPORT_LINE = "@.claude/memory/active-context.md"


def _import_in_claude_md(project: Path, report: Report) -> None:
    target = project / "CLAUDE.md"
    text = target.read_text(encoding="utf-8") if target.exists() else ""
    if IMPORT_LINE in text.splitlines():
        return
    prefix = "" if not text or text.endswith("\n") else "\n"
    target.write_text(f"{text}{prefix}\n{IMPORT_LINE}\n" if text else f"{IMPORT_LINE}\n",
                      encoding="utf-8")
    report.actions.append(f"added {IMPORT_LINE} to {target}")


def uninstall(project: Path) -> Report:
    report = Report()
    for path in (local_settings_path(project), settings_path(project)):
        report.actions += [f"{change} in {path}" for change in settings.uninstall_hooks(path)]
    report.notes.append(f"the memory repository {paths.memory_dir(project)} is kept, and the "
                        f"slash commands in {commands_dir()} (they serve every project)")
    return report


def _first_commit(store: Store, device: str, report: Report, adopting: bool) -> None:
    """Everything already in the folder, as it is, in one commit; an adopted folder's raw/
    backups and pending markers are left to adoption.py."""
    files, skipped = _files(store.workdir, adopting)
    report.notes += [f"not committed (not a regular file): {path}" for path in skipped]

    def build(tip: pygit2.Commit | None) -> Draft:
        # `read` is what is on disk; the blob is what the store keeps (secrets replaced), and
        # where they differ the file is rewritten to match after the commit.
        read = {path: pygit2.hashfile(str(store.workdir / path)) for path in files}
        blobs = {path: store.repo.create_blob_fromdisk(str(store.workdir / path))
                 for path in files}
        tree = store.build_tree(tip.tree if tip else None, dict(blobs))
        message = format_message(f"init: {len(files)} files", [],
                                 [(Trailer.EVENT, "init"), (Trailer.DEVICE, device),
                                  (Trailer.FILES, str(len(files)))])
        return Draft(tree, message, read)

    store.commit(build)
    report.actions.append(f"committed {len(files)} files as the first commit")


def _files(root: Path, adopting: bool) -> tuple[list[str], list[str]]:
    files: list[str] = []
    skipped: list[str] = []
    for folder, dirs, names in os.walk(root):
        top = folder == str(root)
        dirs[:] = sorted(d for d in dirs if not (top and (d == ".git" or
                                                          (adopting and d == legacy.RAW))))
        for name in sorted(names):
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if relative in EXCLUDED or (adopting and top and path.match(legacy.PENDING)):
                continue
            (files if path.is_file() and not path.is_symlink() else skipped).append(relative)
    for folder, dirs, _ in os.walk(root):
        skipped += [(Path(folder) / d).relative_to(root).as_posix() for d in dirs
                    if (Path(folder) / d).is_symlink()]
    return files, skipped


def hide_from_project(project: Path, report: Report) -> None:
    """Keep the project's repository from seeing .claude/memory (a nested repository would
    otherwise show as untracked, or be added as a broken gitlink), the personal settings and
    the copies of settings files cmem made; say what it tracks already."""
    repo = _project_repo(project)
    if repo is None:
        report.notes.append("the project is not in a git repository: nothing to exclude")
        return
    exclude = _common_dir(Path(repo.path)) / "info" / "exclude"
    added = _exclude(exclude, hidden(project, repo))
    if added:
        report.actions.append(f"excluded {', '.join(added)} in {exclude}")
    report.notes += [f"your project's git tracks {path}, so .git/info/exclude cannot hide "
                     f"it and {why}; stop tracking it (your files stay) with: {command}"
                     for path, why, command in tracked(project)]


def hidden(project: Path, repo: pygit2.Repository) -> list[str]:
    """The info/exclude patterns, relative to the project repository's top level."""
    base = relative(repo, project)
    return [f"/{base}.claude/memory/", f"/{base}.claude/settings.local.json",
            f"/{base}.claude/*{adoption.BACKUP_INFIX}*"]


_WHY = {"memory": "every cmem commit shows up as a change to your project",
        "settings.local.json": "this machine's hook commands reach your team"}


def tracked(project: Path) -> list[tuple[str, str, str]]:
    """(path, what it breaks, the command that stops tracking it) for each personal path the
    project's git tracks."""
    repo = _project_repo(project)
    if repo is None or repo.workdir is None:
        return []
    paths_ = [str(paths.memory_dir(project)), str(local_settings_path(project))]
    found = []
    for path in tracked_paths(project, paths_):
        inside = relative(repo, Path(path)).rstrip("/")
        command = f"git -C {shlex.quote(str(Path(repo.workdir).resolve()))} rm -r --cached " \
                  f"-- {shlex.quote(inside)}"
        found.append((inside, _WHY[Path(path).name], command))
    return found


def tracked_paths(project: Path, wanted: list[str]) -> list[str]:
    """Those of `wanted` (files or folders) that the project's git index holds."""
    repo = _project_repo(project)
    if repo is None or repo.workdir is None or not wanted:
        return []
    inside = {relative(repo, Path(path)).rstrip("/"): path for path in wanted}
    held: set[str] = set()
    for entry in repo.index:
        for key in inside:
            if entry.path == key or entry.path.startswith(key + "/"):
                held.add(inside[key])
    return [path for path in wanted if path in held]


def _project_repo(start: Path) -> pygit2.Repository | None:
    """The project's own git repository (never the memory repository inside it)."""
    found = pygit2.discover_repository(str(start))
    if found is None:
        return None
    repo = pygit2.Repository(found)
    if repo.workdir and Path(repo.workdir).resolve() == paths.memory_dir(start).resolve():
        return None
    return repo if repo.workdir is not None else None


def relative(repo: pygit2.Repository, path: Path) -> str:
    """`path` relative to the repository's top level, with a trailing slash ("" for the top)."""
    inside = path.resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
    return "" if inside == "." else inside + "/"


def _common_dir(gitdir: Path) -> Path:
    """A linked worktree's info/exclude lives in the main repository's git folder."""
    pointer = gitdir / "commondir"
    if pointer.is_file():
        return (gitdir / pointer.read_text().strip()).resolve()
    return gitdir


def _exclude(path: Path, patterns: list[str]) -> list[str]:
    """Add the patterns the file lacks; those added."""
    existing = path.read_text().splitlines() if path.exists() else []
    missing = [p for p in patterns if p not in existing]
    if not missing:
        return []
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "\n" if existing and not path.read_text().endswith("\n") else ""
    with open(path, "a") as handle:
        handle.write(prefix + "".join(f"{p}\n" for p in missing))
    return missing
