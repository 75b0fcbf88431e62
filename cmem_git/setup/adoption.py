"""Adopting a claude-memory folder so that its workflow goes on the same day.

claude-memory kept its state in files: `> Last Session Doc:` in active-context.md pointed at the
last session document, `.pending-backup-*` markers named the backups no document covered yet,
raw/ held `cp` copies of transcripts, and bash hooks in the project's settings made all three.
cmem keeps that state in commits, so adoption turns each file into the commits that mean the
same thing, in this order after init's first commit:

1. the raw/ backups no pending marker names are imported (importer.py, redacted like any
   transcript): history from before the last document;
2. one `document` commit per session document, oldest first and the one the pointer names last,
   so `cmem resume`, `cmem coalesce`, SessionStart and the next `previous_session` find it;
3. the backups the pending markers name are imported after it, so they are pending, as the
   markers said; the markers' text goes to imported/claude-memory/ and the files are removed.

raw/ stays on disk, readable as before, and is ignored by the memory repository (its bytes are in
history only redacted, as transcripts). claude-memory's hooks would go on writing markers and
raw/ copies beside cmem's, so they are taken out of the settings (a copy of the file kept); their
scripts stay on disk.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from pathlib import Path

from ..capture import checkpoint, importer, legacy
from ..read import docs
from ..repo import memory
from ..repo.history import DOCUMENT
from ..repo.store import Store
from ..repo.trailers import Trailer
from . import settings

IGNORED = f"/{legacy.RAW}/"
# What claude-memory's hook scripts mention; a user's other hooks mention none of it.
_SIGNS = (".claude/memory", "pending-backup", "Last Session Doc", "claude-memory")
_SCRIPT_NAMES = re.compile(r"(on-)?(session-?(start|end)|pre-?compact|post-?compact|stop)\.sh")


def adopt(store: Store, device: str, projects: Path | None) -> tuple[list[str], list[str]]:
    """Steps 1 to 3 above, on the folder init just committed; (what was done, problems)."""
    folder = store.workdir
    report = importer.Report()
    found = legacy.backups(folder, report.problems)
    pending = {path.resolve() for path in legacy.marked(folder, [], legacy.PENDING)}
    live = projects if projects is not None and projects.is_dir() else None
    importer.import_backups(store, device, live, [b for b in found if b.path not in pending],
                            report)
    done = _documents(store, device, report.problems)
    importer.import_backups(store, device, live, [b for b in found if b.path in pending],
                            report)
    importer.import_files(store, device, folder, found, report)
    done = _imported(report, len(found)) + done
    done += _retire_markers(folder)
    return done, report.problems


def _imported(report: importer.Report, backups: int) -> list[str]:
    if not backups:
        return []
    return [f"imported {backups} claude-memory backups from {legacy.RAW}/ (redacted) into "
            f"{len(report.imported)} sessions; {legacy.RAW}/ stays as it is, ignored by the "
            "memory repository"]


# --- documents -----------------------------------------------------------------------------

def _documents(store: Store, device: str, problems: list[str]) -> list[str]:
    """A `document` commit for each session document, the pointed one last."""
    found = documents(store.workdir, problems)
    for path in found:
        text = (store.workdir / path).read_bytes()
        title = docs.title_in(text) or Path(path).stem
        checkpoint.take(store, checkpoint.Request(
            DOCUMENT, None, None, device, always=True, subject=f"document: {title} (adopted)",
            trailers=((Trailer.DOCUMENT, path), (Trailer.TITLE, title),
                      (Trailer.ADOPTED, "claude-memory"))))
    if not found:
        return []
    return [f"recognised {len(found)} session documents; the last one is {found[-1]}"]


def documents(folder: Path, problems: list[str]) -> list[str]:
    """The folder's session documents, oldest first (claude-memory named them by date), and
    the one `> Last Session Doc:` points at last."""
    found = sorted({p.relative_to(folder).as_posix() for p in
                    [*(folder / legacy.SESSIONS).rglob("*.md"), *folder.glob("session-*.md")]
                    if p.is_file() and not p.is_symlink()}, key=lambda p: (Path(p).name, p))
    pointed = _pointer(folder)
    if pointed is None:
        return found
    if pointed not in found:
        problems.append(f"`> {memory.DOC}: {pointed}` names no document in {folder}")
        return found
    return [path for path in found if path != pointed] + [pointed]


def _pointer(folder: Path) -> str | None:
    """The pointer's path relative to the folder, however claude-memory wrote it."""
    value = memory.value(memory.read(folder, memory.ACTIVE), memory.DOC)
    if not value:
        return None
    value = value.strip().strip("`").strip()
    link = re.fullmatch(r"\[[^\]]*\]\(([^)]+)\)", value)  # a Markdown link
    value = link[1] if link else value
    marker = "/.claude/memory/"
    if marker in f"/{value}":
        value = f"/{value}".split(marker, 1)[1]
    return value.removeprefix("./")


# --- markers -------------------------------------------------------------------------------

def _retire_markers(folder: Path) -> list[str]:
    """The pending markers are history now (their text is committed): remove the files."""
    done = []
    for marker in legacy.markers(folder, legacy.PENDING):
        marker.unlink()
        done.append(f"turned {marker.name} into a pending backup (its text is kept under "
                    f"{legacy.LEGACY}/) and removed the file")
    return done


# --- claude-memory's hooks -----------------------------------------------------------------

def is_old_hook(command: str, project: Path) -> bool:
    """Whether a hook command runs one of claude-memory's scripts."""
    for script in _scripts(command, project):
        try:
            text = script.read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = None
        if text is not None and any(sign in text for sign in _SIGNS):
            return True
        if text is None and _SCRIPT_NAMES.fullmatch(script.name):
            return True  # a script that is gone, by claude-memory's name for it
    return False


def _scripts(command: str, project: Path) -> list[Path]:
    text = command.replace("${CLAUDE_PROJECT_DIR}", str(project))
    text = text.replace("$CLAUDE_PROJECT_DIR", str(project))
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return [Path(os.path.expanduser(word)) if os.path.isabs(os.path.expanduser(word))
            else project / word for word in words if ".claude/hooks/" in word]


def old_hooks(project: Path, files: list[Path]) -> dict[Path, list[str]]:
    """Settings file -> claude-memory hook commands in it."""
    found = {}
    for path in files:
        commands = [c for c in settings.hook_commands(path) if is_old_hook(c, project)]
        if commands:
            found[path] = commands
    return found


def remove_old_hooks(project: Path, files: list[Path]) -> list[str]:
    """Take claude-memory's hooks out of each settings file, keeping a copy of it first."""
    done = []
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for path in old_hooks(project, files):
        backup = backup_path(path, stamp)
        removed = settings.remove_hooks(path, lambda c: is_old_hook(c, project), backup)
        listed = "; ".join(f"{event}: {command}" for event, command in removed)
        done.append(f"removed claude-memory's hooks from {path} ({listed}); the file as it "
                    f"was is {backup}; the scripts stay on disk")
    return done


def backup_path(path: Path, stamp: str) -> Path:
    return path.with_name(f"{path.name}{BACKUP_INFIX}{stamp}")


BACKUP_INFIX = ".cmem-backup-"
