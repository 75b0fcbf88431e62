"""What a remote sends is checked before anything of it is merged, written or pushed.

A commit fetched from a remote is somebody else's data. git's own object check (transport.py
turns `transfer.fsckObjects` on) refuses the worst trees on arrival, but it accepts symlinks,
submodules, huge blobs and names that are only dangerous once written to a disk (`.GIT `,
`git~1`, `C:`, a backslash). cmem writes remote content in three places: the memory folder,
Claude Code's transcript folder (restore) and its auto-memory folder. So every tree of every
new commit is walked here, once per tree id, and the first entry that could escape a folder,
reach git's own files or stand for something other than a plain file refuses the whole commit.
`name_problem` is the same rule that `sandbox.write` applies to every path it writes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import pygit2

from ..errors import CmemError

MAX_BLOB = 100 * 1024 * 1024  # GitHub's own limit per file; chunks are 256 KiB
_MODES = (pygit2.GIT_FILEMODE_BLOB, pygit2.GIT_FILEMODE_BLOB_EXECUTABLE,
          pygit2.GIT_FILEMODE_TREE)
_GIT_FILES = (".git", ".gitattributes", ".gitmodules")  # a folder, attributes, submodules
_DRIVE = re.compile(r"^[A-Za-z]:")
# Code points HFS+ ignores when it compares names, so ".g\u200cit" is ".git" there.
_IGNORED = dict.fromkeys([*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070),
                          0xFEFF])


class UntrustedCommit(CmemError):
    def __init__(self, remote: str, commit: pygit2.Oid, path: str, problem: str) -> None:
        super().__init__(f"refused commit {commit} from {remote}: {path!r} {problem}; nothing "
                         "of it was merged, written or pushed",
                         hint=f"the commit was not made by cmem: inspect it with `git -C "
                         f".claude/memory show {str(commit)[:12]}`, then fix the remote or "
                         f"remove it with `cmem remote remove {remote}`")
        self.commit = commit
        self.path = path


def name_problem(name: str) -> str | None:
    """Why one path component must not be written, or None when it is an ordinary name."""
    if name in ("", ".", ".."):
        return "is an empty, '.' or '..' path component"
    if "/" in name or "\\" in name or "\0" in name:
        return "has a slash, backslash or NUL inside a name"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "has a control character in its name"
    if _DRIVE.match(name) or name.startswith("~"):
        return "looks like an absolute path"
    # As Windows and macOS would see it: case folded, trailing dots and spaces and an NTFS
    # stream (":$INDEX_ALLOCATION") dropped, ignorable code points removed.
    folded = unicodedata.normalize("NFC", name.translate(_IGNORED)).lower()
    folded = folded.split(":")[0].rstrip(" .")
    if folded in _GIT_FILES or re.fullmatch(r"git~\d+", folded):
        return "names git's own files (.git, .gitattributes, .gitmodules)"
    return None


def path_problem(path: str) -> str | None:
    for part in path.split("/"):
        problem = name_problem(part)
        if problem:
            return problem
    return None


@dataclass
class Checker:
    """Walks trees beside our own tip's, skipping what we hold already (same id at the same
    path) and trees already found good (ids are content: one check each)."""

    repo: pygit2.Repository
    good: set[pygit2.Oid]

    def tree(self, tree: pygit2.Tree, ours: pygit2.Tree | None,
             prefix: str) -> tuple[str, str] | None:
        """(path, problem) of the first bad entry under `tree`, or None."""
        if tree.id in self.good or ours is not None and ours.id == tree.id:
            return None
        for entry in tree:
            found = self.entry(entry, ours, prefix)
            if found:
                return found
        self.good.add(tree.id)
        return None

    def entry(self, entry: pygit2.Object, ours: pygit2.Tree | None,
              prefix: str) -> tuple[str, str] | None:
        name = (entry.raw_name or b"").decode("utf-8", "surrogateescape")
        path = f"{prefix}{name}"
        problem = name_problem(name)
        if problem:
            return path, problem
        if entry.filemode not in _MODES:
            kind = {pygit2.GIT_FILEMODE_LINK: "is a symbolic link",
                    pygit2.GIT_FILEMODE_COMMIT: "is a submodule (gitlink)"}
            return path, kind.get(entry.filemode, f"has file mode {entry.filemode:o}")
        if entry.filemode == pygit2.GIT_FILEMODE_TREE:
            subtree = self.repo[entry.id]
            assert isinstance(subtree, pygit2.Tree)
            mine = _child(ours, name)
            return self.tree(subtree, mine if isinstance(mine, pygit2.Tree) else None,
                             path + "/")
        _, size = self.repo.odb.read_header(entry.id)
        return (path, f"is {size} bytes, over cmem's limit of {MAX_BLOB}") if size > MAX_BLOB \
            else None


def check(repo: pygit2.Repository, remote: str, theirs: pygit2.Oid,
          ours: pygit2.Oid | None) -> None:
    """Raise UntrustedCommit for the first commit in `theirs` but not in `ours` whose tree
    holds an entry cmem must never write."""
    walker = repo.walk(theirs, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
    if ours is not None:
        walker.hide(ours)
    mine = repo[ours].peel(pygit2.Tree) if ours is not None else None
    checker = Checker(repo, set())
    for commit in walker:
        found = checker.tree(commit.tree, mine, "")
        if found:
            raise UntrustedCommit(remote, commit.id, *found)


def _child(tree: pygit2.Tree | None, name: str) -> pygit2.Object | None:
    try:
        return tree[name] if tree is not None else None
    except (KeyError, UnicodeError):
        return None
