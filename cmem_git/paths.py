"""Where things live. Every outside path resolves here, from the environment, so tests redirect
them all by setting HOME (or CLAUDE_CONFIG_DIR) and never touch a real ~/.claude."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import HookInputError

if TYPE_CHECKING:
    from importlib.abc import Traversable

_SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")

MEMORY = Path(".claude") / "memory"
CONFIG_NAME = "cmem.yaml"


def claude_home() -> Path:
    """Claude Code's own directory: $CLAUDE_CONFIG_DIR, else ~/.claude."""
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path.home() / ".claude"


def encode_project(project: Path) -> str:
    """Claude Code names a project's transcript folder after its path, every character that is
    not a letter or digit turned into '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(project))


def transcripts_dir(project: Path) -> Path:
    return claude_home() / "projects" / encode_project(project)


def memory_dir(project: Path) -> Path:
    return project / MEMORY


def config_path(project: Path) -> Path:
    """Per-device settings sit in the memory folder but are excluded from its commits, so the
    device name never travels to another machine."""
    return memory_dir(project) / CONFIG_NAME


def templates() -> Traversable:
    """templates/: inside the installed package, or beside it in a source checkout (where
    tests import cmem_git straight from the tree)."""
    # importlib.resources costs ~15 ms (tempfile, shutil, compressors): only when used
    from importlib import resources
    try:
        return resources.files("cmem_git.templates")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "templates"


def private() -> None:
    """Everything cmem creates (objects, refs, index, restored transcripts) is for its owner
    only, whatever umask Claude Code or the shell passed on: transcripts hold secrets."""
    os.umask(0o077)


def find_project(start: Path) -> Path | None:
    """The nearest folder at or above `start` that has a memory repository."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (memory_dir(folder) / ".git").is_dir():
            return folder
    return None


def check_session_id(session_id: object) -> str:
    """Session ids become folder names: anything path-like is refused, not sanitised."""
    if not isinstance(session_id, str) or not _SESSION_ID.fullmatch(session_id) or ".." in session_id:
        raise HookInputError(f"unusable session_id {session_id!r}: expected letters, digits, "
                             "'-', '_' or '.', not a path")
    return session_id
