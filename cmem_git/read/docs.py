"""Session documents and the resume workflow.

claude-memory wrote a session document, then pointed `> Last Session Doc:` at it in a second
step; a compaction in between broke /coalesce. Here the document, the pointer and the
`> Last Updated:` line are one commit, and "what happened since the last document" is the
commits after it. `discard` and `fresh-start` are commits too, so nothing is ever deleted.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import yaml

from ..capture import checkpoint
from ..errors import CmemError
from ..git.trees import file_bytes
from ..repo import memory
from ..repo.history import DISCARD, DOCUMENT, FRESH_START, Entry, since_document, walk
from ..repo.store import Store
from ..repo.trailers import Trailer
from . import conversation, delta

SESSIONS = "sessions"
_FRONT = re.compile(rb"\A---\r?\n(.*?\r?\n)?---\r?\n", re.DOTALL)
_ALL = 10 ** 9


class NoDocument(CmemError):
    hint = "save one first: `cmem doc save FILE --title TITLE` (or /document-and-save)"


@dataclass(frozen=True)
class Document:
    path: str
    title: str
    commit: pygit2.Oid
    time: int
    text: bytes


def save(store: Store, project: Path, text: bytes, title: str | None,
         request: checkpoint.Request, now: dt.datetime | None = None) -> Document:
    """Commit `text` as a new session document together with the pointer to it."""
    now = now or checkpoint.now()
    front, body = split_front_matter(text)
    title = (title or title_in(text) or "session").strip()
    title = store.clean_text(title)  # it becomes a file name, which no filter sees again
    previous = last(store, required=False)
    path = _unused_path(store, f"{SESSIONS}/session-{now:%Y-%m-%d-%H%M%S}-{slug(title)}.md")
    front = {"title": title, "date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
             "project": front.get("project") or project.name,
             "status": front.get("status") or "in-progress", "tags": front.get("tags") or [],
             "previous_session": previous.path if previous else None,
             "branch": project_branch(project), **_others(front)}
    document = _join(front, body)
    pointer = _pointer(path, now)
    commit = _commit(store, request, {path: document}, pointer, f"document: {title}",
                     ((Trailer.DOCUMENT, path), (Trailer.TITLE, title)))
    return Document(path, title, commit, int(now.timestamp()), document)


def coalesce(store: Store, text: bytes, request: checkpoint.Request,
             now: dt.datetime | None = None) -> Document:
    """Append a "Session continuation" section for the work since the last document to it."""
    now = now or checkpoint.now()
    previous = last(store, required=True)
    assert previous is not None
    current = _file_at_tip(store, previous.path) or previous.text
    section = (f"\n\n## Session continuation ({now:%Y-%m-%d %H:%M} UTC)\n\n".encode()
               + text.strip() + b"\n")
    commit = _commit(store, request, {previous.path: current.rstrip(b"\n") + section},
                     _pointer(previous.path, now), f"document: {previous.title} (continued)",
                     ((Trailer.DOCUMENT, previous.path), (Trailer.TITLE, previous.title),
                      (Trailer.COALESCE, "yes")))
    return dataclasses.replace(previous, commit=commit, time=int(now.timestamp()))


def discard(store: Store, request: checkpoint.Request) -> pygit2.Oid:
    """Mark the backups since the last document as dealt with; history keeps them."""
    request = dataclasses.replace(request, event=DISCARD, always=True,
                                  subject="discard: pending backups marked as dealt with")
    return _required(checkpoint.take(store, request).commit)


def fresh_start(store: Store, request: checkpoint.Request) -> pygit2.Oid | None:
    """Reset the memory files to the templates. Edits not yet committed are committed first,
    so the reset never loses them. None, and no commit, when there is nothing to reset: the
    files are the templates and no backup is pending."""
    checkpoint.take(store, dataclasses.replace(request, event="fresh-start-save"))
    files = {name: memory.template(name) for name in memory.FILES}
    if all(_file_at_tip(store, name) == data for name, data in files.items()) \
            and not pending(store):
        return None
    request = dataclasses.replace(request, event=FRESH_START, files=files, always=True,
                                  subject="fresh-start: memory files reset to the templates")
    return _required(checkpoint.take(store, request).commit)


def _commit(store: Store, request: checkpoint.Request, files: dict[str, bytes],
            pointer: checkpoint.Edit, subject: str,
            trailers: tuple[tuple[str, str], ...]) -> pygit2.Oid:
    request = dataclasses.replace(request, event=DOCUMENT, files=files, edit_active=pointer,
                                  subject=subject, trailers=trailers, always=True)
    return _required(checkpoint.take(store, request).commit)


def _required(commit: pygit2.Oid | None) -> pygit2.Oid:
    if commit is None:
        raise CmemError("nothing was committed")
    return commit


def _pointer(path: str, now: dt.datetime) -> checkpoint.Edit:
    def edit(text: bytes) -> bytes:
        text = memory.set_line(text, memory.DOC, path)
        return memory.set_line(text, memory.UPDATED, f"{now:%Y-%m-%d %H:%M} UTC")
    return edit


def last(store: Store, required: bool = True) -> Document | None:
    """The newest session document (a coalesce counts: it updates the same document)."""
    tip = store.tip()
    for item in walk(store.repo, tip.id if tip else None, _ALL):
        if item.event == DOCUMENT and Trailer.DOCUMENT in item.trailers:
            return _document(store, item)
    if required:
        raise NoDocument("no session document yet")
    return None


def _document(store: Store, item: Entry) -> Document:
    path = item.trailers[Trailer.DOCUMENT]
    commit = store.repo[item.id]
    assert isinstance(commit, pygit2.Commit)
    blob = commit.tree[path] if path in commit.tree else None
    text = bytes(blob.data) if isinstance(blob, pygit2.Blob) else b""
    return Document(path, item.trailers.get(Trailer.TITLE, path), item.id, item.time, text)


def _file_at_tip(store: Store, path: str) -> bytes | None:
    tip = store.tip()
    return file_bytes(tip.tree if tip else None, path)


def pending(store: Store) -> list[Entry]:
    """Backups since the last document, discard or fresh start."""
    tip = store.tip()
    return [e for e in since_document(store.repo, tip.id if tip else None)[1] if e.session]


def resume(store: Store, max_chars: int) -> str:
    """The last session document, then the conversation since, within `max_chars` (0: no
    limit). The document gets at most 60% of the budget, the conversation the rest."""
    document = last(store, required=False)
    tip = store.tip()
    if tip is None:
        return "No memory yet.\n"
    boundary, _ = since_document(store.repo, tip.id)
    since = store.repo[boundary.id] if boundary else None
    assert since is None or isinstance(since, pygit2.Commit)
    if document is None:
        head = "# No session document yet\n\n"
    else:
        text = (_file_at_tip(store, document.path) or document.text).decode("utf-8", "replace")
        share = int(max_chars * 0.6)
        if max_chars and len(text) > share:
            text = text[:share] + f"\n… (cut; `cmem show HEAD:{document.path}` has it all)\n"
        head = f"# Last session document: {document.path}\n\n{text.rstrip()}\n\n"
    found = conversation.build(delta.chronological(store.repo, since, tip))
    budget = max(max_chars - len(head) - 40, 400) if max_chars else 0
    records = conversation.as_text(found, budget, "cmem resume --max-chars 0")
    return head + "# What happened since\n\n" + (records or "Nothing since.\n")


def split_front_matter(text: bytes) -> tuple[dict[str, Any], bytes]:
    match = _FRONT.match(text)
    if not match:
        return {}, text
    try:
        front = yaml.safe_load(match[1] or b"")
    except yaml.YAMLError:
        return {}, text
    return (front, text[match.end():]) if isinstance(front, dict) else ({}, text)


def _others(front: dict[str, Any]) -> dict[str, Any]:
    mine = {"title", "date", "project", "status", "tags", "previous_session", "branch"}
    return {k: v for k, v in front.items() if k not in mine}


def _join(front: dict[str, Any], body: bytes) -> bytes:
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, default_flow_style=None)
    return f"---\n{header}---\n\n".encode() + body.lstrip(b"\n")


def title_in(text: bytes) -> str | None:
    """A document's own title: its front matter's, else its first heading."""
    front, body = split_front_matter(text)
    return str(front.get("title") or "") or _heading(body)


def _heading(body: bytes) -> str | None:
    match = re.search(rb"^#\s+(.+)$", body, re.MULTILINE)
    return match[1].decode("utf-8", "replace") if match else None


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:48].strip("-") or "session"


def _unused_path(store: Store, path: str) -> str:
    tip = store.tip()
    tree = tip.tree if tip else None
    candidate, number = path, 2
    while store.blob_at(tree, candidate) is not None:
        candidate = path.replace(".md", f"-{number}.md")
        number += 1
    return candidate


def project_branch(project: Path) -> str | None:
    """The project's current git branch, which cmem records rather than Claude guessing it."""
    found = pygit2.discover_repository(str(project))
    if found is None:
        return None
    repo = pygit2.Repository(found)
    try:
        return None if repo.head_is_detached else repo.head.shorthand
    except pygit2.GitError:
        ref = repo.references.get("HEAD")
        target = ref.target if ref is not None else None
        return target.removeprefix("refs/heads/") if isinstance(target, str) else None
