"""Revisions: everything git accepts, plus the names users think in.

    HEAD~3, 1a2b3c4, main, main@{1}   as in git
    doc, doc~2                        the last session document (and commits before it)
    session:<id prefix>               that session's latest backup; a bare prefix works too
                                      when it is not also a commit id
    @{2 hours ago}, @{2026-11-20}     the newest commit at or before that time

Times are read from commit times only: `N units ago`, `yesterday`, `today`, `now`, and ISO dates
with an optional time (UTC unless an offset is given).
"""

from __future__ import annotations

import datetime as dt
import re

import pygit2

from ..repo.history import DOCUMENT, walk
from ..repo.store import Store
from .times import BadRevision, parse_time

HELP = __doc__ or ""
_SUFFIX = re.compile(r"^(?P<name>[^~^]+)(?P<suffix>[~^].*)?$")
_ALL = 10 ** 9


def resolve(store: Store, spec: str) -> pygit2.Commit:
    tip = store.tip()
    if tip is None:
        raise BadRevision("the memory repository has no commits yet")
    match = _SUFFIX.match(spec)
    name, suffix = (match["name"], match["suffix"] or "") if match else (spec, "")
    base = _named(store, tip, name)
    if base is None:
        return _git(store, spec)
    return _git(store, f"{base.id}{suffix}") if suffix else base


def split_path(spec: str) -> tuple[str, str]:
    """`REV:PATH` -> (REV, PATH); a colon inside `session:` or `@{...}` belongs to REV."""
    start = len("session:") if spec.startswith("session:") else 0
    if "@{" in spec[start:]:
        start = max(start, spec.find("}", spec.find("@{")) + 1)
    colon = spec.find(":", start)
    return (spec, "") if colon == -1 else (spec[:colon], spec[colon + 1:])


def _named(store: Store, tip: pygit2.Commit, name: str) -> pygit2.Commit | None:
    if name in ("doc", "document"):
        return _first(store, tip, lambda e: e.event == DOCUMENT, "no session document yet")
    if name.startswith("session:"):
        return _session(store, tip, name[len("session:"):])
    if name.startswith("@{") and name.endswith("}"):
        return at_time(store, tip, parse_time(name[2:-1]))
    return None


def _git(store: Store, spec: str) -> pygit2.Commit:
    try:
        return store.repo.revparse_single(spec).peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
        pass
    tip = store.tip()
    assert tip is not None
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", spec):
        return _session(store, tip, spec)
    raise BadRevision(f"unknown revision {spec!r}")


def _session(store: Store, tip: pygit2.Commit, prefix: str) -> pygit2.Commit:
    found: dict[str, pygit2.Oid | str] = {}
    for item in walk(store.repo, tip.id, _ALL):
        if item.session and item.session.startswith(prefix):
            found.setdefault(item.session, item.id)
    if not found:
        raise BadRevision(f"no commit, branch or session matches {prefix!r}")
    if len(found) > 1:
        raise BadRevision(f"{prefix!r} matches several sessions: {', '.join(sorted(found))}",
                          hint="give more of the session id")
    commit = store.repo[next(iter(found.values()))]
    assert isinstance(commit, pygit2.Commit)
    return commit


def _first(store: Store, tip: pygit2.Commit, test: object, missing: str) -> pygit2.Commit:
    for item in walk(store.repo, tip.id, _ALL):
        if test(item):  # type: ignore[operator]
            commit = store.repo[item.id]
            assert isinstance(commit, pygit2.Commit)
            return commit
    raise BadRevision(missing)


def at_time(store: Store, tip: pygit2.Commit, when: float) -> pygit2.Commit:
    return _first(store, tip, lambda e: e.time <= when,
                  f"no commit at or before {dt.datetime.fromtimestamp(when, dt.timezone.utc)}")
