"""The one way cmem writes or removes a working file: inside a given folder, or not at all.

Paths come from commits, and commits can come from a remote. `intake.check` refuses bad trees
before they are merged, but a repository may hold older commits, or a folder on disk may have
been swapped for a symlink. So every write is checked again here, at the last moment: each
component must be an ordinary name (`intake.name_problem`), no folder on the way may be a
symbolic link, and the resolved parent must be the root itself or inside it. Files go through a
temp file and a rename, so a reader never sees half a file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..atomic import write_atomic
from ..errors import CmemError
from .intake import path_problem


class OutsideFolder(CmemError):
    def __init__(self, root: Path, relative: str, problem: str) -> None:
        super().__init__(f"refused to write {relative!r} under {root}: {problem}",
                         hint="the memory repository holds a path cmem never writes; "
                         "`cmem doctor` checks the repository")
        self.relative = relative


def target(root: Path, relative: str, create: bool = False) -> Path:
    """`root/relative`, after checking that it stays inside `root`; with `create`, the folders
    on the way are made (never through a symlink)."""
    problem = path_problem(relative)
    if problem:
        raise OutsideFolder(root, relative, problem)
    base = root.resolve()
    folder = base
    for part in relative.split("/")[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise OutsideFolder(root, relative, f"{folder} is a symbolic link")
        if create and not folder.exists():
            folder.mkdir(mode=0o700)
    if folder.exists() and not folder.resolve().is_relative_to(base):
        raise OutsideFolder(root, relative, "its folder resolves outside")
    return base / relative


def write(root: Path, relative: str, data: bytes | Iterable[bytes],
          temp_folder: Path | None = None) -> Path:
    """Write `data` (bytes, or parts written one after another, so a large file need not be
    in memory) at `root/relative` atomically: a temp file in `temp_folder` (on the same file
    system; default: beside the file), then a rename (atomic.py)."""
    path = target(root, relative, create=True)
    if path.is_dir() and not path.is_symlink():
        raise OutsideFolder(root, relative, "a folder is in the way")
    write_atomic(path, data, temp_folder=temp_folder)
    return path


def remove(root: Path, relative: str) -> None:
    path = target(root, relative)
    if path.is_symlink() or path.is_file():
        path.unlink()
