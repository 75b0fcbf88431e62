"""The branch's tip read straight from git's files, without libgit2.

`cmem search` on a current index needs one fact from the repository: which commit the branch
points at, to compare with the tip the index was built at. Loading pygit2 for it costs more than
the whole query (issue 15: ~80 ms of a 100 ms budget), and the answer is two small files away:
`HEAD` names the branch (`ref: refs/heads/main`), and the branch is a loose file under `refs/`
or, after `git pack-refs` or a `git gc`, a line of `packed-refs` (a loose file wins over it, as
in git). Anything else (a detached HEAD, a symbolic ref to a symbolic ref, a reftable, a linked
worktree's gitdir, a missing branch, a malformed line) gives None, and the caller asks libgit2,
which knows every case.
"""

from __future__ import annotations

import re
from pathlib import Path

_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256
_SAFE_NAME = re.compile(r"refs/heads/[A-Za-z0-9._/-]+")


def branch_tip(gitdir: Path) -> str | None:
    """The hex id HEAD's branch points at, or None when the files do not say it plainly."""
    try:
        if (gitdir / "reftable").exists() or (gitdir / "commondir").exists():
            return None
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        name = head.removeprefix("ref: ")
        if name == head or not _safe(name):
            return None
        loose = gitdir / name
        if loose.is_file():
            return _oid(loose.read_text(encoding="utf-8").strip())
        return _packed(gitdir / "packed-refs", name)
    except (OSError, UnicodeDecodeError):
        return None


def _safe(name: str) -> bool:
    """A branch name that stays inside the gitdir (HEAD is a file anyone could have edited)."""
    parts = name.split("/")
    return bool(_SAFE_NAME.fullmatch(name)) and all(p and not p.startswith(".") for p in parts)


def _packed(file: Path, name: str) -> str | None:
    """The branch's line in packed-refs: `<oid> <name>`; `#` is the header, `^` a peeled tag."""
    if not file.is_file():
        return None
    for line in file.read_text(encoding="utf-8").splitlines():
        oid, _, ref = line.partition(" ")
        if ref == name and not line.startswith(("#", "^")):
            return _oid(oid)
    return None


def _oid(text: str) -> str | None:
    return text if _OID.fullmatch(text) else None
