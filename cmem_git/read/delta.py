"""What was added to the transcripts between two commits.

claude-memory extracted deltas by each record's `.timestamp`, which returned nothing after a
compaction (its records carry back-dated timestamps) and skipped records without one. Here a
delta is bytes: a transcript's stored size in the older commit is where its new records begin in
the newer one. That holds across compaction, /clear (several sessions), subagents and sessions
resumed on another machine, because it only asks what the commits hold.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

from ..capture.backup import MAIN, ROOT
from ..git import chunks
from ..git.trees import subtree, tree_diff
from ..repo.history import ORDER, plural, size_text
from ..repo.trailers import Trailer

TRANSCRIPT = "transcript"  # JSONL: the main transcript and subagents, read as records
ATTACHMENT = "attachment"  # anything else, e.g. tool-results/toolu_*.txt: plain text


@dataclass(frozen=True)
class FileDelta:
    stored: str  # transcripts/<session>/<file>
    start: int  # where `data` begins in the newer version (0 when rewritten or new)
    data: bytes
    rewritten: bool
    commit: str = ""  # the newer commit, where the whole file can be read

    @property
    def session(self) -> str:
        return self.stored.split("/")[1]

    @property
    def file(self) -> str:
        return self.stored.split("/", 2)[2]

    @property
    def kind(self) -> str:
        """Claude Code writes JSONL transcripts, and spills large tool output to plain text
        files (`tool-results/toolu_*.txt`) that are not records at all."""
        return TRANSCRIPT if self.stored.endswith(".jsonl") else ATTACHMENT

    @property
    def records(self) -> list[bytes]:
        """The records added; none for an attachment."""
        return self.data.splitlines() if self.kind == TRANSCRIPT else []

    @property
    def line_count(self) -> int:
        return self.data.count(b"\n") + (not self.data.endswith(b"\n") and bool(self.data))

    @property
    def tool_id(self) -> str:
        """The tool call an attachment belongs to: Claude Code names the file after it."""
        name = self.file.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if self.kind == ATTACHMENT else ""

    def attachment_note(self) -> str:
        """One line for a spilled file: its size and how to read it in full."""
        what = "rewritten, " if self.rewritten else ("+" if self.start else "")
        return (f"{self.file} ({what}{plural(self.line_count, 'line')}, "
                f"{size_text(len(self.data), signed=False)}; full text: "
                f"`cmem show {self.commit or 'HEAD'}:{self.stored}`)")


def between(repo: pygit2.Repository, old: pygit2.Commit | None,
            new: pygit2.Commit) -> list[FileDelta]:
    """Every stored file that changed from `old` to `new`, with its added bytes."""
    old_tree = old.tree if old is not None else None
    deltas = []
    for stored in changed_files(repo, old_tree, new.tree):
        before = chunks.listing(repo, subtree(old_tree, stored))
        after = chunks.listing(repo, subtree(new.tree, stored))
        if after:
            deltas.append(_delta(repo, stored, before, after, str(new.id)[:8]))
    return [d for d in deltas if d.data]


def changed_files(repo: pygit2.Repository, old: pygit2.Tree | None,
                  new: pygit2.Tree) -> list[str]:
    """The stored transcript files (chunk folders) that `new` adds or changes against `old`."""
    old_root = subtree(old, ROOT)
    new_root = subtree(new, ROOT)
    if new_root is None:
        return []
    diff = tree_diff(old_root, new_root)
    files = {f"{ROOT}/{d.new_file.path.rsplit('/', 1)[0]}" for d in diff.deltas
             if d.status != pygit2.GIT_DELTA_DELETED}
    return sorted(files)


def _delta(repo: pygit2.Repository, stored: str, before: list[chunks.Chunk],
           after: list[chunks.Chunk], commit: str) -> FileDelta:
    size = chunks.stored_size(repo, before)[0]
    if before and _extends(repo, before, after):
        # A last record stored without its newline gets it now: that byte starts no record.
        if chunks.read_range(repo, before, size - 1, size) != b"\n":
            size += chunks.read_range(repo, after, size, size + 1) == b"\n"
        return FileDelta(stored, size, chunks.read_range(repo, after, size), False, commit)
    return FileDelta(stored, 0, chunks.read_range(repo, after), bool(before), commit)


def _extends(repo: pygit2.Repository, before: list[chunks.Chunk],
             after: list[chunks.Chunk]) -> bool:
    """Whether `after` holds `before` as a prefix: every earlier chunk kept as it was and the
    last one continued."""
    kept = {(c.offset, c.oid) for c in after}
    if any((c.offset, c.oid) not in kept for c in before[:-1]):
        return False
    last = before[-1]
    old = chunks.blob_data(repo, last.oid)
    return chunks.read_range(repo, after, last.offset, last.offset + len(old)) == old


def session_order(repo: pygit2.Repository, old: pygit2.Commit | None,
                  new: pygit2.Commit) -> list[str]:
    """Sessions in the order their commits after `old` first touched them, oldest first."""
    walker = repo.walk(new.id, ORDER | pygit2.enums.SortMode.REVERSE)
    if old is not None:
        walker.hide(old.id)
    order: dict[str, None] = {}
    for commit in walker:
        session = dict(commit.message_trailers).get(Trailer.SESSION)
        if session:
            order.setdefault(session, None)
    return list(order)


def chronological(repo: pygit2.Repository, old: pygit2.Commit | None,
                  new: pygit2.Commit) -> list[FileDelta]:
    """`between`, sessions oldest first, each session's main transcript before its subagents."""
    deltas = between(repo, old, new)
    rank = {session: index for index, session in enumerate(session_order(repo, old, new))}
    return sorted(deltas, key=lambda d: (rank.get(d.session, len(rank)), d.file != MAIN, d.file))
