"""`cmem log` without pygit2: history read by `git log`, for a repository that needs nothing
from opening it.

Importing pygit2 costs ~100 ms of the 150 ms `cmem log -n 20` may take (issue 13), and the walk
itself well under 1 ms. So when the repository is plain (the branch's tip readable from its
files, git/refs.py; no interrupted write of cmem's to finish; transcripts already kept out of
the working tree; no core.worktree, include, graft or bare setting to honour) the entries come
from git/gitlog.py and pass through the same filter and cut as history.log's (entries.select),
and `cmem log` prints them with the same code. Anything else answers None: the caller opens the
Store, which repairs, hides transcripts and reports errors as it always has, and walks with
libgit2. Paths (`cmem log -- PATH`) and ranges are left to that path too: git's
`-- PATH` simplifies merges where cmem compares with the first parent.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from contextlib import closing
from pathlib import Path

from ..git import gitlog
from ..git.lock import interrupted
from ..git.refs import branch_tip
from .entries import Entry, Filter, check_filter, select

_SECTION = re.compile(r"\s*\[\s*([A-Za-z0-9.-]+)")
_VALUE = re.compile(r"\s*([A-Za-z0-9-]+)\s*(?:=\s*(.*?))?\s*$")


def log(gitdir: Path, tip: str, limit: int | None, wanted: Filter) -> list[Entry] | None:
    """history.log's answer from `git log` for the tip plain_tip gave; None when only libgit2
    can tell (nothing has been printed or changed then). An empty answer to a filter that
    names an unknown session or event raises, as the full path does."""
    if wanted.paths:
        return None
    # -n for git only when the cut is the first `limit` commits: filters may skip some
    cut = limit if wanted.session is None and wanted.event is None and wanted.until is None \
        else None
    try:
        with closing(_entries(gitdir, tip, cut)) as stream:
            found = select(stream, limit, wanted)
        if not found and (wanted.session is not None or wanted.event is not None):
            with closing(_entries(gitdir, tip, None)) as stream:
                check_filter(stream, wanted)
    except gitlog.Unreadable:
        return None
    return found


def _entries(gitdir: Path, tip: str, limit: int | None) -> Generator[Entry, None, None]:
    for item in gitlog.commits(gitdir, tip, limit):
        yield Entry(item.id, item.time, item.subject, item.trailers)


def plain_tip(memory: Path) -> str | None:
    """The branch's tip when Store.open would find nothing to do and libgit2 and git read the
    same history; otherwise None."""
    gitdir = memory / ".git"
    try:
        if not gitdir.is_dir() or interrupted(gitdir) or (gitdir / "info" / "grafts").exists():
            return None
        config = (gitdir / "config").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return branch_tip(gitdir) if _plain_config(config) else None


def _plain_config(text: str) -> bool:
    """Whether the repository's config sets core.sparseCheckout (cmem's mark that transcripts
    are out of the working tree) and nothing that moves or reshapes the repository."""
    section, core = "", {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0]
        header = _SECTION.match(line)
        if header:
            section = header[1].lower()
            if section.startswith("include"):
                return False
            continue
        value = _VALUE.fullmatch(line)
        if value and section == "core":
            core[value[1].lower()] = (value[2] or "true").lower()
        elif line.strip() and not value:
            return False  # a line this reading does not understand
    return (core.get("sparsecheckout") in ("true", "yes", "on", "1") and "worktree" not in core
            and core.get("bare", "false") in ("false", "no", "off", "0"))
