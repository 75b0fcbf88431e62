"""`cmem status`: where the memory repository stands, as data."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pygit2

from ..git import errorlog
from ..repo import memory, worktree
from ..repo.history import Entry, since_document, walk
from ..repo.store import Store
from .context import last_content_change

_WALK = 5000


@dataclass
class Status:
    repository: str
    branch: str
    head: str | None
    last_by_event: dict[str, Entry] = field(default_factory=dict)
    document: Entry | None = None
    since_document: list[Entry] = field(default_factory=list)
    active_context_age: float | None = None
    remote: dict[str, object] | None = None
    errors: list[dict[str, object]] = field(default_factory=list)
    uncommitted: list[str] = field(default_factory=list)


def collect(store: Store) -> Status:
    tip = store.tip()
    tip_id = tip.id if tip is not None else None
    status = Status(str(store.workdir), store.branch.removeprefix("refs/heads/"),
                    str(tip_id) if tip_id else None)
    for item in walk(store.repo, tip_id, _WALK):
        if item.event and item.event not in status.last_by_event:
            status.last_by_event[item.event] = item
    status.document, status.since_document = since_document(store.repo, tip_id)
    changed = last_content_change(store.repo, tip_id, memory.ACTIVE)
    status.active_context_age = time.time() - changed if changed is not None else None
    status.remote = _remote(store, tip_id)
    status.errors = errorlog.pending(store.gitdir)
    status.uncommitted = _uncommitted(store)
    return status


def _remote(store: Store, tip: pygit2.Oid | None) -> dict[str, object] | None:
    remotes = list(store.repo.remotes)
    if not remotes:
        return None
    remote = remotes[0]
    branch = store.branch.removeprefix("refs/heads/")
    tracking = store.repo.references.get(f"refs/remotes/{remote.name}/{branch}")
    info: dict[str, object] = {"name": remote.name, "url": remote.url}
    if tracking is not None and tip is not None:
        ahead, behind = store.repo.ahead_behind(tip, tracking.target)
        info.update(ahead=ahead, behind=behind)
    return info


def _uncommitted(store: Store) -> list[str]:
    flags = worktree.status(store.repo)
    return sorted(path for path, flag in flags.items()
                  if flag not in (pygit2.GIT_STATUS_CURRENT, pygit2.GIT_STATUS_IGNORED))
