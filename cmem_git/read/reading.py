"""The read side: log, show, cat, diff, delta and status over the memory's commits.

Each function returns data or text; none prints. Transcripts are always reassembled from their
chunks, so what a user reads is Claude Code's file, not the storage layout.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pygit2

from ..capture.backup import MAIN, ROOT
from ..errors import CmemError, UsageProblem
from ..git import chunks, command
from ..git.trees import file_bytes, lookup, subtree, tree_diff
from ..repo import entries, worktree
from ..repo.history import Filter, plural, since_document, size_text, walk
from ..repo.store import Store
from . import conversation, delta, render
from .context import age
from .output import paint, when
from .revisions import resolve
from .status import Status, collect


class NotFound(CmemError):
    pass


class UnknownSession(NotFound):
    exit_code = UsageProblem.exit_code  # the command line named it: a usage error


@dataclass(frozen=True)
class LogRange:
    tip: pygit2.Oid | None
    hide: pygit2.Oid | None  # A of A..B
    paths: tuple[str, ...]


def log_range(store: Store, args: tuple[str, ...], paths: tuple[str, ...]) -> LogRange:
    """`[REV | A..B] [PATH...]` as git reads them: a word that is no revision but a path in
    the tip's tree is a path (after `--` everything is)."""
    tip = store.tip()
    found = LogRange(tip.id if tip else None, None, paths)
    revs = []
    for arg in args:
        if ".." not in arg and tip is not None and lookup(tip.tree, arg.strip("/")) is not None \
                and not _is_revision(store, arg):
            found = dataclasses.replace(found, paths=found.paths + (arg,))
        else:
            revs.append(arg)
    if len(revs) > 1:
        raise UsageProblem(f"one revision or range at a time, not {' '.join(revs)}",
                           hint="`cmem log A..B` shows what B has that A has not")
    if not revs:
        return found
    if ".." in revs[0]:
        old, _, new = revs[0].partition("..")
        return dataclasses.replace(found, tip=resolve(store, new or "HEAD").id,
                                   hide=resolve(store, old or "HEAD").id)
    return dataclasses.replace(found, tip=resolve(store, revs[0]).id)


def _is_revision(store: Store, spec: str) -> bool:
    try:
        resolve(store, spec)
    except CmemError:
        return False
    return True


def check_filter(store: Store, wanted: Filter) -> None:
    """An empty log because of a misspelt session or event is an error, not silence."""
    tip = store.tip()
    entries.check_filter(walk(store.repo, tip.id if tip else None, 10 ** 9), wanted)


def graph(store: Store, limit: int | None) -> str:
    """`git log --graph` over the memory repository: merges between devices drawn by git."""
    args = ["-C", str(store.workdir), "log", "--graph", "--date=relative",
            "--format=%h %ad %(trailers:key=Cmem-Event,valueonly,separator=%x2C) "
            "%(trailers:key=Cmem-Device,valueonly,separator=%x2C) %s"]
    if limit:
        args.append(f"-n{limit}")
    done = command.run_text(*args)
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
        raise UnknownSession(f"{problem} matches {prefix!r} in {str(commit.id)[:8]}",
                       hint="`cmem log` lists sessions; give more of the id")
    return found[0]


def session_file(store: Store, commit: pygit2.Commit, prefix: str, name: str = MAIN) -> bytes:
    return b"".join(session_file_parts(store, commit, prefix, name))


def session_file_parts(store: Store, commit: pygit2.Commit, prefix: str,
                       name: str = MAIN) -> Iterator[bytes]:
    session = session_id(store, commit, prefix)
    return file_parts(store, commit, f"{ROOT}/{session}/{name}")


def show_text(store: Store, commit: pygit2.Commit, relative: bool, colour: bool) -> str:
    """A commit as `git show` prints one: header, message, then what it changed: the records
    each transcript gained, rendered, and the memory files' patch (against the first parent,
    as git does for a merge without --cc)."""
    lines = [paint(f"commit {commit.id}", "yellow", colour)]
    if len(commit.parents) > 1:
        lines.append("merge " + " ".join(str(p.id)[:8] for p in commit.parents))
    lines += [f"date   {when(commit.commit_time, relative)}", ""]
    lines += [f"    {line}" for line in commit.message.rstrip("\n").splitlines()]
    parent = commit.parents[0] if commit.parents else None
    found = changes_between(store, parent, commit)
    body = changes_text(found, False, False, colour) if found.transcripts or found.files else ""
    return "\n".join(lines) + "\n" + ("\n" + body if body else "")


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
    return changes_between(store, resolve(store, old), resolve(store, new or "HEAD"))


def changes_between(store: Store, first: pygit2.Commit | None,
                    second: pygit2.Commit) -> Changes:
    """What `second` has that `first` (None: nothing) has not."""
    old_tree = first.tree if first is not None else None
    files = [(path, file_bytes(old_tree, path), file_bytes(second.tree, path))
             for path in _changed_paths(store.repo, old_tree, second.tree)
             if not path.startswith(ROOT + "/")]
    return Changes(str(first.id)[:8] if first else "(nothing)", str(second.id)[:8],
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
            "transcripts": [{"session": d.session, "file": d.file, "kind": d.kind,
                             "start": d.start, "records": len(d.records),
                             "bytes": len(d.data), "rewritten": d.rewritten,
                             "lines": [r.decode("utf-8", "replace") for r in d.records]}
                            for d in found.transcripts],
            "files": [{"path": p, "diff": _unified(p, a, b)} for p, a, b in found.files]}


def changes_stat(found: Changes) -> str:
    lines = [f"{d.session} {d.file}: +{_amount(d)}, {size_text(len(d.data))}"
             + (" (rewritten)" if d.rewritten else "") for d in found.transcripts]
    lines += [f"{path}: {_line_change(a, b)}" for path, a, b in found.files]
    return "".join(line + "\n" for line in lines) or "no changes\n"


def _line_change(old: bytes | None, new: bytes | None) -> str:
    diff = list(difflib.unified_diff(_lines(old), _lines(new), lineterm=""))
    added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
    removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
    return f"+{added} -{removed} lines"


def _amount(item: delta.FileDelta) -> str:
    """Records for a transcript; lines for an attachment, which holds no records."""
    if item.kind == delta.ATTACHMENT:
        return plural(item.line_count, "line") + " of attachment"
    return plural(len(item.records), "record")


def changes_text(found: Changes, raw: bool, thinking: bool, colour: bool) -> str:
    parts = []
    for item in found.transcripts:
        parts.append(paint(f"=== session {item.session} {item.file}: +{_amount(item)}"
                           f"{' (rewritten)' if item.rewritten else ''}", "bold", colour))
        parts += _file_lines(item, raw, thinking)
    for path, old, new in found.files:
        parts += [_colour_diff(line, colour) for line in _unified(path, old, new).splitlines()]
    return "".join(p + "\n" for p in parts) or "no changes\n"


def _file_lines(item: delta.FileDelta, raw: bool, thinking: bool) -> list[str]:
    if item.kind == delta.ATTACHMENT:  # plain text, often huge: a note, the text on request
        return [f"[attachment {item.attachment_note()}]"]
    if raw:
        return [r.decode("utf-8", "replace") for r in item.records]
    return [t for t in (render.record(r, thinking) for r in item.records) if t]


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


def delta_markdown(deltas: list[delta.FileDelta], max_chars: int, thinking: bool) -> str:
    """The conversation added, within `max_chars` (0: no limit)."""
    text = conversation.as_text(conversation.build(deltas, thinking), max_chars,
                                "cmem delta --max-chars 0")
    return text or "Nothing added.\n"


# --- status -----------------------------------------------------------------------------

def status_data(store: Store) -> dict[str, Any]:
    found: Status = collect(store)
    return {"repository": found.repository, "branch": found.branch, "head": found.head,
            "last_by_event": {k: entries.as_json(v) for k, v in found.last_by_event.items()},
            "document": entries.as_json(found.document) if found.document else None,
            "since_document": [entries.as_json(e) for e in found.since_document],
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
    lines.append(f"since then {plural(len(pending), 'backup')} in "
                 f"{plural(len({e['session'] for e in pending}), 'session')}")
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


