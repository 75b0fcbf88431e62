"""The read side: log, show, cat, diff, delta and status over the memory's commits.

Each function returns data or text; none prints. Transcripts are always reassembled from their
chunks, so what a user reads is Claude Code's file, not the storage layout.
"""

from __future__ import annotations

import difflib
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Iterator

import pygit2

from . import chunks, delta, render, worktree
from .backup import MAIN, ROOT
from .context import age
from .errors import CmemError
from .history import Entry, describe, since_document, size_text
from .output import paint, when
from .revisions import resolve
from .status import Status, collect
from .store import Store, file_bytes, lookup, subtree, tree_diff


class NotFound(CmemError):
    pass


def entry_json(item: Entry) -> dict[str, Any]:
    return {"commit": str(item.id), "time": item.time, "subject": item.subject,
            "event": item.event, "session": item.session, "summary": describe(item),
            "trailers": dict(item.trailers)}


def graph(store: Store, limit: int | None) -> str:
    """`git log --graph` over the memory repository: merges between devices drawn by git."""
    args = ["git", "-C", str(store.workdir), "log", "--graph", "--date=relative",
            "--format=%h %ad %(trailers:key=Cmem-Event,valueonly,separator=%x2C) "
            "%(trailers:key=Cmem-Device,valueonly,separator=%x2C) %s"]
    if limit:
        args.append(f"-n{limit}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    done = subprocess.run(args, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise CmemError(f"git log --graph failed: {done.stderr.strip()}")
    return done.stdout


# --- show and cat ---------------------------------------------------------------------------

def file_at(store: Store, commit: pygit2.Commit, path: str) -> bytes:
    """A file as of `commit`; a stored transcript folder comes back as the whole file."""
    obj = lookup(commit.tree, path.strip("/"))
    if isinstance(obj, pygit2.Blob):
        return bytes(obj.data)
    if isinstance(obj, pygit2.Tree):
        listing = chunks.listing(store.repo, obj)
        if listing:
            return chunks.read_range(store.repo, listing)
        return "".join(f"{e.name}{'/' if e.type_str == 'tree' else ''}\n"
                       for e in obj).encode()
    raise NotFound(f"{path} does not exist in {str(commit.id)[:8]}")


def file_parts(store: Store, commit: pygit2.Commit, path: str) -> Iterator[bytes]:
    """`file_at`, a chunk at a time for a stored transcript (memory O(chunk), not O(file))."""
    obj = lookup(commit.tree, path.strip("/"))
    listing = chunks.listing(store.repo, obj) if isinstance(obj, pygit2.Tree) else []
    if listing:
        return chunks.parts(store.repo, listing)
    return iter([file_at(store, commit, path)])


def session_id(store: Store, commit: pygit2.Commit, prefix: str) -> str:
    root = subtree(commit.tree, ROOT)
    names = [e.name or "" for e in root] if root is not None else []
    found = [n for n in names if n.startswith(prefix)]
    if len(found) != 1:
        problem = "no session" if not found else f"several sessions ({', '.join(found[:5])})"
        raise NotFound(f"{problem} matches {prefix!r} in {str(commit.id)[:8]}",
                       hint="`cmem log` lists sessions; give more of the id")
    return found[0]


def session_file(store: Store, commit: pygit2.Commit, prefix: str, name: str = MAIN) -> bytes:
    return b"".join(session_file_parts(store, commit, prefix, name))


def session_file_parts(store: Store, commit: pygit2.Commit, prefix: str,
                       name: str = MAIN) -> Iterator[bytes]:
    session = session_id(store, commit, prefix)
    return file_parts(store, commit, f"{ROOT}/{session}/{name}")


def commit_text(store: Store, commit: pygit2.Commit, relative: bool) -> str:
    lines = [f"commit {commit.id}"]
    if len(commit.parents) > 1:
        lines.append("merge " + " ".join(str(p.id)[:8] for p in commit.parents))
    lines += [f"date   {when(commit.commit_time, relative)}", ""]
    lines += [f"    {line}" for line in commit.message.rstrip("\n").splitlines()]
    parent = commit.parents[0].tree if commit.parents else None
    changed = _changed_paths(store.repo, parent, commit.tree)
    if changed:
        lines += ["", "files changed:"] + [f"    {path}" for path in changed]
    return "\n".join(lines) + "\n"


def _changed_paths(repo: pygit2.Repository, old: pygit2.Tree | None,
                   new: pygit2.Tree) -> list[str]:
    diff = tree_diff(old, new)
    paths = set()
    for item in diff.deltas:
        path = item.new_file.path if item.status != pygit2.GIT_DELTA_DELETED else \
            item.old_file.path
        head, _, last = path.rpartition("/")
        paths.add(head if path.startswith(ROOT + "/") and last[:1].isdigit() else path)
    return sorted(paths)


# --- diff and delta -----------------------------------------------------------------------

@dataclass(frozen=True)
class Changes:
    old: str
    new: str
    transcripts: list[delta.FileDelta]
    files: list[tuple[str, bytes | None, bytes | None]]  # path, old bytes, new bytes


def changes(store: Store, old: str | None, new: str | None) -> Changes:
    if old is None:
        return _uncommitted(store)
    first = resolve(store, old)
    second = resolve(store, new or "HEAD")
    tip_tree = second.tree
    files = [(path, file_bytes(first.tree, path), file_bytes(tip_tree, path))
             for path in _changed_paths(store.repo, first.tree, tip_tree)
             if not path.startswith(ROOT + "/")]
    return Changes(str(first.id)[:8], str(second.id)[:8],
                   delta.chronological(store.repo, first, second), files)


def _uncommitted(store: Store) -> Changes:
    tip = store.tip()
    tree = tip.tree if tip is not None else None
    flags = worktree.status(store.repo, "all")
    files = []
    for path in sorted(flags):
        if flags[path] in (pygit2.GIT_STATUS_CURRENT, pygit2.GIT_STATUS_IGNORED):
            continue
        on_disk = store.workdir / path
        files.append((path, file_bytes(tree, path), on_disk.read_bytes() if on_disk.is_file()
                      else None))
    return Changes("HEAD", "working files", [], files)


def changes_json(found: Changes) -> dict[str, Any]:
    return {"old": found.old, "new": found.new,
            "transcripts": [{"session": d.session, "file": d.file, "start": d.start,
                             "records": len(d.records), "bytes": len(d.data),
                             "rewritten": d.rewritten,
                             "lines": [r.decode("utf-8", "replace") for r in d.records]}
                            for d in found.transcripts],
            "files": [{"path": p, "diff": _unified(p, a, b)} for p, a, b in found.files]}


def changes_stat(found: Changes) -> str:
    lines = [f"{d.session} {d.file}: +{len(d.records)} records, {size_text(len(d.data))}"
             + (" (rewritten)" if d.rewritten else "") for d in found.transcripts]
    lines += [f"{path}: {_line_change(a, b)}" for path, a, b in found.files]
    return "".join(line + "\n" for line in lines) or "no changes\n"


def _line_change(old: bytes | None, new: bytes | None) -> str:
    diff = list(difflib.unified_diff(_lines(old), _lines(new), lineterm=""))
    added = sum(1 for l in diff if l.startswith("+") and not l.startswith("+++"))
    removed = sum(1 for l in diff if l.startswith("-") and not l.startswith("---"))
    return f"+{added} -{removed} lines"


def changes_text(found: Changes, raw: bool, thinking: bool, colour: bool) -> str:
    parts = []
    for item in found.transcripts:
        parts.append(paint(f"=== session {item.session} {item.file}: +{len(item.records)} "
                           f"records{' (rewritten)' if item.rewritten else ''}", "bold", colour))
        records = [r.decode("utf-8", "replace") for r in item.records] if raw else \
            [t for t in (render.record(r, thinking) for r in item.records) if t]
        parts += records
    for path, old, new in found.files:
        parts += [_colour_diff(line, colour) for line in _unified(path, old, new).splitlines()]
    return "".join(p + "\n" for p in parts) or "no changes\n"


def _unified(path: str, old: bytes | None, new: bytes | None) -> str:
    return "\n".join(difflib.unified_diff(_lines(old), _lines(new), f"a/{path}", f"b/{path}",
                                          lineterm=""))


def _lines(data: bytes | None) -> list[str]:
    return data.decode("utf-8", "replace").splitlines() if data is not None else []


def _colour_diff(line: str, colour: bool) -> str:
    if line.startswith(("+++", "---")):
        return paint(line, "bold", colour)
    if line.startswith("+"):
        return paint(line, "green", colour)
    if line.startswith("-"):
        return paint(line, "red", colour)
    return paint(line, "cyan", colour) if line.startswith("@@") else line


def delta_since(store: Store, since: str | None) -> list[delta.FileDelta]:
    tip = store.tip()
    if tip is None:
        return []
    old: pygit2.Commit | None = None
    if since is not None:
        old = resolve(store, since)
    else:
        document, _ = since_document(store.repo, tip.id)
        old = store.repo[document.id].peel(pygit2.Commit) if document else None
    return delta.chronological(store.repo, old, tip)


def delta_markdown(deltas: list[delta.FileDelta], max_chars: int | None,
                   thinking: bool) -> str:
    return delta.as_markdown(deltas, max_chars, thinking) or "Nothing added.\n"


# --- status -----------------------------------------------------------------------------

def status_data(store: Store) -> dict[str, Any]:
    found: Status = collect(store)
    return {"repository": found.repository, "branch": found.branch, "head": found.head,
            "last_by_event": {k: entry_json(v) for k, v in found.last_by_event.items()},
            "document": entry_json(found.document) if found.document else None,
            "since_document": [entry_json(e) for e in found.since_document],
            "active_context_age_seconds": found.active_context_age,
            "remote": found.remote, "errors": found.errors, "uncommitted": found.uncommitted}


def status_text(data: dict[str, Any], relative: bool) -> str:
    lines = [f"repository {data['repository']} (branch {data['branch']})"]
    lines.append(f"head       {data['head'][:8] if data['head'] else '(no commits)'}")
    for event, item in sorted(data["last_by_event"].items()):
        lines.append(f"last {event:<13} {when(item['time'], relative)}  {item['summary']}")
    document = data["document"]
    lines.append(f"document   {document['subject'] if document else 'none yet'}")
    pending = [e for e in data["since_document"] if e["session"]]
    lines.append(f"since then {len(pending)} backups in "
                 f"{len({e['session'] for e in pending})} sessions")
    seconds = data["active_context_age_seconds"]
    lines.append("active-context.md " + (f"changed {age(seconds)} ago" if seconds is not None
                                         else "never committed"))
    remote = data["remote"]
    lines.append("remote     " + ("none" if remote is None else
                                  f"{remote['name']} {remote['url']} ahead {remote.get('ahead', '?')}"
                                  f" behind {remote.get('behind', '?')}"))
    lines += [f"uncommitted {path}" for path in data["uncommitted"]]
    lines += [f"hook error {e.get('event')}: {e.get('message')}" for e in data["errors"]]
    return "".join(line + "\n" for line in lines)


