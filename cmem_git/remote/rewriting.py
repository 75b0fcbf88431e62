"""Rewriting history to take something out of it: a session, a path, or every copy of a secret.

Built the way git filter-repo and BFG work, on objects in memory: every commit is visited parents
first, and a tree, blob or commit is written again only when something in it changes; everything
else keeps its id, so commits before the first affected one keep theirs and an untouched session
is byte-identical afterwards. Trees are memoized by id: a year of hook commits shares most of its
trees, so the cost follows the number of distinct trees, not commits times files.

The rewrite is a pure function of the commits and the selectors: authors, committers, dates and
messages are kept (with a secret replaced), so two devices that rewrite the same commits get the
same new ids. That is what lets the other device follow a purge (`follow`, called by sync): it
applies the same selectors to its own history, and what both had becomes the very commits the
remote now holds, with its own newer commits rewritten on top of them.

Transcripts are folders of chunks named by byte offset (chunks.py). A secret replaced inside a
chunk changes its length, so the chunks after it are renamed to their new offsets, and the
folder gets a source map (backup.py) saying where in Claude Code's file its last chunk starts,
so the next backup still appends instead of storing the session again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

import pygit2

from ..capture.backup import ROOT, SOURCE_MAP
from ..git.chunks import CHUNK_NAME, chunk_name
from ..secrets.secret_rules import marker

MARKER = marker("purged").encode()
TREE_MODE = pygit2.GIT_FILEMODE_TREE


@dataclass(frozen=True)
class Selector:
    """What to take out: `session` (its transcripts folder), `path` (a file or folder of the
    memory repository) or `secret` (every copy of a string, replaced by a marker)."""

    kind: str
    value: str

    def label(self) -> str:
        """How the purge commit's trailer names it: never the secret itself."""
        if self.kind == "secret":
            return f"secret sha256:{digest(self.value)}"
        return f"{self.kind} {self.value}"

    @property
    def path(self) -> str | None:
        if self.kind == "session":
            return f"{ROOT}/{self.value}"
        return self.value.strip("/") if self.kind == "path" else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def spellings(secret: str) -> list[bytes]:
    """The secret as it appears in a file: as it is, and as a JSON string holds it (a
    transcript line escapes quotes, backslashes, control and, in some writers, non-ASCII)."""
    forms = [secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]]
    found: list[bytes] = []
    for form in forms:
        raw = form.encode("utf-8", "surrogateescape")
        if raw not in found:
            found.append(raw)
    return sorted(found, key=len, reverse=True)


@dataclass
class Changes:
    """What the rewrite changed, for the report and --dry-run."""

    commits: int = 0  # rewritten (or dropped)
    dropped: int = 0  # commits left empty by a removal, taken out as git filter-repo does
    matches: int = 0  # copies of a secret replaced, in distinct blobs, names and messages
    paths: set[str] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    first: pygit2.Oid | None = None  # the oldest commit rewritten


class Rewriter:
    """Rewrites commits with the selectors; `write=False` computes the same ids without
    writing a single object (--dry-run)."""

    def __init__(self, repo: pygit2.Repository, selectors: Iterable[Selector],
                 write: bool = True) -> None:
        self.repo = repo
        self.write = write
        chosen = list(selectors)
        self.removed = {s.path for s in chosen if s.path is not None}
        self.secrets = [form for s in chosen if s.kind == "secret" for form in spellings(s.value)]
        self.prune = bool(self.removed) and not self.secrets
        self.changes = Changes()
        self.commits: dict[pygit2.Oid, pygit2.Oid] = {}
        self._trees: dict[tuple[pygit2.Oid, str], pygit2.Oid] = {}
        self._blobs: dict[pygit2.Oid, pygit2.Oid] = {}
        self._tree_ids: dict[pygit2.Oid, pygit2.Oid] = {}  # rewritten commit -> its tree

    # --- commits ------------------------------------------------------------------------

    def history(self, tip: pygit2.Oid) -> pygit2.Oid:
        """The rewritten id of `tip`, rewriting whatever it reaches that is not done yet."""
        walker = self.repo.walk(tip, pygit2.enums.SortMode.TOPOLOGICAL
                                | pygit2.enums.SortMode.REVERSE)
        for done in self.commits:
            walker.hide(done)
        for commit in walker:
            self.commits[commit.id] = self._commit(commit)
        return self.commits[tip]

    def _commit(self, commit: pygit2.Commit) -> pygit2.Oid:
        parents = list(dict.fromkeys(self.commits.get(p, p) for p in commit.parent_ids))
        tree = self.tree(commit.tree_id, "")
        message = self._text(commit.message)
        if parents == commit.parent_ids and tree == commit.tree_id and message == commit.message:
            return commit.id
        self.changes.commits += 1
        self.changes.first = self.changes.first or commit.id
        if self._emptied(commit, parents, tree):
            self.changes.dropped += 1
            return parents[0]
        new = pygit2.Oid(raw=hashlib.sha1(b"dry run " + commit.id.raw).digest()) \
            if not self.write else self.repo.create_commit(None, commit.author, commit.committer,
                                                           message, tree, parents)
        self._tree_ids[new] = tree
        return new

    def _emptied(self, commit: pygit2.Commit, parents: list[pygit2.Oid],
                 tree: pygit2.Oid) -> bool:
        """A commit whose only change was what the removal took out (a backup of the purged
        session) is dropped; merges whose sides became one likewise. Commits that were empty
        to begin with stay (a marker commit: a discard, a fresh start)."""
        if not self.prune or len(parents) != 1 or tree != self._tree_of(parents[0]):
            return False
        before = [self.repo[p].peel(pygit2.Commit).tree_id for p in commit.parent_ids]
        return len(commit.parent_ids) > 1 or commit.tree_id not in before

    def _tree_of(self, commit: pygit2.Oid) -> pygit2.Oid:
        if commit in self._tree_ids:
            return self._tree_ids[commit]
        return self.repo[commit].peel(pygit2.Commit).tree_id

    # --- trees and blobs ----------------------------------------------------------------

    def tree(self, oid: pygit2.Oid, prefix: str) -> pygit2.Oid:
        """The rewritten tree at `prefix` (memoized by id, and by place where a removal is
        below it)."""
        key = (oid, prefix if any(p.startswith(prefix) for p in self.removed) else "")
        if key not in self._trees:
            self._trees[key] = self._rewrite_tree(oid, prefix)
        return self._trees[key]

    def _rewrite_tree(self, oid: pygit2.Oid, prefix: str) -> pygit2.Oid:
        tree = self.repo[oid].peel(pygit2.Tree)
        entries: list[tuple[bytes, int, pygit2.Oid]] = []
        changed = False
        for item in tree:
            name, path = item.raw_name or b"", f"{prefix}{item.name}"
            if path in self.removed:
                changed = True
                self._record(path)
                continue
            new = self.tree(item.id, path + "/") if item.filemode == TREE_MODE \
                else self._blob(item.id, path)
            clean = self._bytes(name)
            changed |= new != item.id or clean != name
            entries.append((clean, item.filemode, new))
        if _is_chunk_folder(tree) and changed:
            entries = self._renamed_chunks(entries)
        if changed and prefix.startswith(ROOT + "/"):
            entries = self._with_source_maps(tree, entries)
        return self._write_tree(entries) if changed else oid

    def _blob(self, oid: pygit2.Oid, path: str) -> pygit2.Oid:
        if not self.secrets:
            return oid
        if oid not in self._blobs:
            data = self.repo[oid].peel(pygit2.Blob).data
            clean = self._bytes(data)
            self._blobs[oid] = oid if clean == data else self._write(pygit2.enums.ObjectType.BLOB,
                                                                     clean)
        if self._blobs[oid] != oid:
            self._record(path)
        return self._blobs[oid]

    def _renamed_chunks(self, entries: list[tuple[bytes, int, pygit2.Oid]]
                        ) -> list[tuple[bytes, int, pygit2.Oid]]:
        """Chunk names are offsets in the stored file: after a chunk changed length the later
        ones move. Lines stay where they were unless the secret held a newline."""
        offset = line = 0
        renamed = []
        for name, mode, oid in sorted(entries, key=lambda e: e[0]):
            if not CHUNK_NAME.match(name.decode()):
                renamed.append((name, mode, oid))
                continue
            data = self._blob_bytes(oid)
            renamed.append((chunk_name(offset, line).encode(), mode, oid))
            offset, line = offset + len(data), line + data.count(b"\n")
        return renamed

    def _with_source_maps(self, old: pygit2.Tree, entries: list[tuple[bytes, int, pygit2.Oid]]
                          ) -> list[tuple[bytes, int, pygit2.Oid]]:
        """A changed chunk folder without a source map gets one: where in Claude Code's file
        its last chunk starts and ends, which were its stored offsets before the purge."""
        names = {name for name, _, _ in entries}
        for item in old:
            folder = self.repo[item.id]
            if not isinstance(folder, pygit2.Tree) or not _is_chunk_folder(folder):
                continue
            raw = item.raw_name or b""
            source = raw + SOURCE_MAP.encode()
            kept = [e for e in entries if e[0] == replaced(raw, self.secrets)]
            if source in names or not kept or kept[0][2] == item.id:
                continue
            last = max((c for c in folder if CHUNK_NAME.match(c.name or "")),
                       key=lambda c: c.name or "")
            start = int(CHUNK_NAME.match(last.name or "")[1])  # type: ignore[index]
            end = start + len(self.repo[last.id].peel(pygit2.Blob).data)
            body = f"{start} {end}\n".encode()
            entries.append((source, pygit2.GIT_FILEMODE_BLOB,
                            self._write(pygit2.enums.ObjectType.BLOB, body)))
        return entries

    def _blob_bytes(self, oid: pygit2.Oid) -> bytes:
        if oid in self.repo:
            return bytes(self.repo[oid].peel(pygit2.Blob).data)
        originals = [old for old, new in self._blobs.items() if new == oid]
        return self._bytes(bytes(self.repo[originals[0]].peel(pygit2.Blob).data))

    def _write_tree(self, entries: list[tuple[bytes, int, pygit2.Oid]]) -> pygit2.Oid:
        # git's order: a tree's name compares as if it ended with "/".
        ordered = sorted(entries, key=lambda e: e[0] + (b"/" if e[1] == TREE_MODE else b""))
        body = b"".join(b"%o %s\0" % (mode, name) + oid.raw for name, mode, oid in ordered)
        return self._write(pygit2.enums.ObjectType.TREE, body)

    def _write(self, kind: pygit2.enums.ObjectType, body: bytes) -> pygit2.Oid:
        if self.write:
            return self.repo.odb.write(kind, body)
        header = b"%s %d\0" % (b"tree" if kind == pygit2.enums.ObjectType.TREE else b"blob",
                               len(body))
        return pygit2.Oid(raw=hashlib.sha1(header + body).digest())

    # --- text ---------------------------------------------------------------------------

    def _bytes(self, data: bytes) -> bytes:
        self.changes.matches += sum(data.count(form) for form in self.secrets)
        return replaced(data, self.secrets)

    def _text(self, text: str) -> str:
        raw = text.encode("utf-8", "surrogateescape")
        return self._bytes(raw).decode("utf-8", "surrogateescape")

    def _record(self, path: str) -> None:
        self.changes.paths.add(path)
        parts = path.split("/")
        if parts[0] == ROOT and len(parts) > 1:
            self.changes.sessions.add(parts[1])


def replaced(data: bytes, forms: list[bytes]) -> bytes:
    """Longest spelling first, so a JSON-escaped copy is not cut by a shorter form."""
    for form in forms:
        data = data.replace(form, MARKER)
    return data


def _is_chunk_folder(tree: pygit2.Tree) -> bool:
    return any(CHUNK_NAME.match(item.name or "") for item in tree)
