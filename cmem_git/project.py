"""Setting cmem up in a project, and taking it out again.

`init` is safe to run any number of times and on a folder claude-memory left: an existing folder
is adopted as it is (every file in it becomes the first commit; nothing is deleted or rewritten),
missing memory files come from templates/, and the hooks are merged into the user's settings.
The project's own repository is told to ignore the memory repository through its private
`info/exclude`, so no tracked file of the project changes for that.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from . import checkpoint, memory, paths, settings
from .config import load_config, write_default_config, default_device
from .history import format_message
from .store import Draft, Store

EXCLUDED = (paths.CONFIG_NAME,)


@dataclass
class Report:
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def settings_path(project: Path) -> Path:
    return project / ".claude" / "settings.json"


def init(project: Path, executable: str, device: str | None = None, force: bool = False,
         claude_md: bool = False) -> Report:
    report = Report()
    folder = paths.memory_dir(project)
    adopting = folder.is_dir() and not (folder / ".git").exists()
    fresh = not folder.exists()
    store = Store.open(folder) if (folder / ".git").is_dir() else Store.init(folder)
    if fresh or adopting:
        report.actions.append(f"{'adopted' if adopting else 'created'} memory repository {folder}")
    _exclude(Path(store.gitdir) / "info" / "exclude", [f"/{name}" for name in EXCLUDED])
    store.repo.config["core.fileMode"] = "false"  # adopted scripts keep their mode on disk
    config = paths.config_path(project)
    if write_default_config(config, device or default_device()):
        report.actions.append(f"wrote {config}")
    device = load_config(config).device  # an invalid config stops init with file and line
    store.filter = checkpoint.redaction(load_config(config))  # an adopted folder too
    for name in memory.FILES:
        if not (folder / name).exists():
            (folder / name).write_bytes(memory.template(name))
            report.actions.append(f"wrote {folder / name} from the template")
    if store.tip() is None:
        _first_commit(store, device, report)
    elif checkpoint.take(store, checkpoint.Request("init", None, None, device)).commit:
        report.actions.append("committed the memory files")
    hide_from_project(project, report)
    changes = settings.install_hooks(settings_path(project), executable)
    report.actions += [f"{change} in {settings_path(project)}" for change in changes]
    install_commands(project, cmem_command(executable), force, report)
    if claude_md:
        _import_in_claude_md(project, report)
    return report


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


def install_commands(project: Path, command: str, force: bool, report: Report) -> None:
    """Slash commands into .claude/commands/; a user's own file of the same name is kept
    unless `force`."""
    folder = project / ".claude" / "commands"
    for name, text in sorted(command_templates().items()):
        wanted = text.replace("{{cmem}}", command)
        target = folder / name
        if target.exists() and target.read_text(encoding="utf-8", errors="replace") == wanted:
            continue
        if target.exists() and not force and not _ours(target.read_text(errors="replace"), text):
            report.notes.append(f"kept your {target} (use --force to replace it)")
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(wanted, encoding="utf-8")
        report.actions.append(f"installed /{name.removesuffix('.md')} as {target}")


def _ours(existing: str, template: str) -> bool:
    """Whether a command file is one cmem installed (from this template, for any cmem path):
    only those are updated without --force."""
    pattern = re.escape(template).replace(re.escape("{{cmem}}"), ".+?")
    return re.fullmatch(pattern, existing, re.DOTALL) is not None


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
    changes = settings.uninstall_hooks(settings_path(project))
    report.actions += [f"{change} in {settings_path(project)}" for change in changes]
    report.notes.append(f"the memory repository {paths.memory_dir(project)} is kept")
    return report


def _first_commit(store: Store, device: str, report: Report) -> None:
    """Everything already in the folder, exactly as it is, in one commit."""
    files, skipped = _files(store.workdir)
    report.notes += [f"not committed (not a regular file): {path}" for path in skipped]

    def build(tip: pygit2.Commit | None) -> Draft:
        # `read` is what is on disk; the blob is what the store keeps (secrets replaced), and
        # where they differ the file is rewritten to match after the commit.
        read = {path: pygit2.hashfile(str(store.workdir / path)) for path in files}
        blobs = {path: store.repo.create_blob_fromdisk(str(store.workdir / path))
                 for path in files}
        tree = store.build_tree(tip.tree if tip else None, dict(blobs))
        message = format_message(f"init: {len(files)} files", [],
                                 [("Cmem-Event", "init"), ("Cmem-Device", device),
                                  ("Cmem-Files", str(len(files)))])
        return Draft(tree, message, read)

    store.commit(build)
    report.actions.append(f"committed {len(files)} files as the first commit")


def _files(root: Path) -> tuple[list[str], list[str]]:
    files: list[str] = []
    skipped: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not (folder == str(root) and d == ".git"))
        for name in sorted(names):
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if relative in EXCLUDED:
                continue
            (files if path.is_file() and not path.is_symlink() else skipped).append(relative)
    for folder, dirs, _ in os.walk(root):
        skipped += [(Path(folder) / d).relative_to(root).as_posix() for d in dirs
                    if (Path(folder) / d).is_symlink()]
    return files, skipped


def hide_from_project(project: Path, report: Report) -> None:
    """Keep the project's repository from seeing .claude/memory (a nested repository would
    otherwise show as untracked, or be added as a broken gitlink)."""
    found = pygit2.discover_repository(str(project))
    if found is None:
        report.notes.append("the project is not in a git repository: nothing to exclude")
        return
    repo = pygit2.Repository(found)
    if repo.workdir is None:
        return
    memory_dir = paths.memory_dir(project).resolve()
    relative = memory_dir.relative_to(Path(repo.workdir).resolve()).as_posix()
    exclude = _common_dir(Path(repo.path)) / "info" / "exclude"
    if _exclude(exclude, [f"/{relative}/"]):
        report.actions.append(f"excluded /{relative}/ in {exclude}")


def _common_dir(gitdir: Path) -> Path:
    """A linked worktree's info/exclude lives in the main repository's git folder."""
    pointer = gitdir / "commondir"
    if pointer.is_file():
        return (gitdir / pointer.read_text().strip()).resolve()
    return gitdir


def _exclude(path: Path, patterns: list[str]) -> bool:
    existing = path.read_text().splitlines() if path.exists() else []
    missing = [p for p in patterns if p not in existing]
    if not missing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = "\n" if existing and not path.read_text().endswith("\n") else ""
    with open(path, "a") as handle:
        handle.write(prefix + "".join(f"{p}\n" for p in missing))
    return True
