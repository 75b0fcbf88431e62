"""`cmem purge`: take a session, a file or a secret out of all history, here and on the remote.

The rewrite itself is rewriting.py. Here is what makes it safe on a repository that hooks write
to and that other devices sync with:

- everything is built in memory first; the branch moves last, by compare-and-swap under the
  repository lock. A hook that commits meanwhile either lands before the move (its commit is
  rewritten too, under the lock, where nobody else can commit) or after it (on the new tip);
- the rewritten history gets one more commit, `purge: ...`, whose trailers say what was taken
  out (`Cmem-Purged`, a secret only by a hash prefix) and which tip it rewrote
  (`Cmem-Purge-Of`). Another device's sync finds it there and follows (`follow`);
- then nothing may keep the old objects: reflogs expire, cmem's caches derived from history
  (search index, `recent`, SessionStart's notes) go, logs lose the secret, and `git gc`
  prunes what is unreachable. Objects written after the move are kept (see `_cutoff`), so a
  hook that built its commit on the new tip meanwhile never loses an object;
- the remote is overwritten with `--force-with-lease` on the value fetched just before, so a
  push another device made meanwhile is never lost: the purge stops and says to sync first.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..capture import checkpoint
from ..capture.backup import ROOT
from ..errors import CmemError, UsageProblem
from ..git import packing, transport
from ..git.lock import NetworkLock, state_dir, unsynced
from ..repo import worktree
from ..repo.history import format_message
from ..repo.store import Store
from ..repo.trailers import Trailer
from .rewriting import Changes, Rewriter, Selector, replaced, spellings

NETWORK_WAIT = 60.0  # seconds to wait for a background sync's fetch or push (as sync does)
ATTEMPTS = 3  # moves of the branch lost to a committer outside cmem before giving up
MIN_SECRET = 6  # shorter strings would match all over the transcripts
# Caches under .git/cmem derived from history; each is rebuilt from the commits when missing.
CACHES = ("index.sqlite", "index.sqlite-wal", "index.sqlite-shm", "index.sqlite-journal",
          "recent", "seen.json", "incoming-sessions.json", "context.json", "tmp")


class PurgeError(CmemError):
    pass


class NothingMatched(PurgeError):
    pass


@dataclass
class Result:
    selectors: list[Selector]
    changes: Changes
    old_tip: str = ""
    new_tip: str = ""
    remote: str | None = None
    pushed: bool = False
    dry_run: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"purged": [s.label() for s in self.selectors], "dry_run": self.dry_run,
                "commits_rewritten": self.changes.commits, "commits_dropped": self.changes.dropped,
                "first_rewritten": str(self.changes.first) if self.changes.first else None,
                "matches": self.changes.matches, "files": sorted(self.changes.paths),
                "sessions": sorted(self.changes.sessions), "old_tip": self.old_tip,
                "new_tip": self.new_tip, "remote": self.remote, "pushed": self.pushed,
                "notes": self.notes}


# --- what to purge --------------------------------------------------------------------------

def session_selector(store: Store, prefix: str) -> Selector:
    """The one session of all history whose id starts with `prefix`."""
    found = sorted(name for name in _names_under(store, ROOT) if name.startswith(prefix))
    if not found:
        raise UsageProblem(f"no session in history starts with {prefix!r}",
                           hint="`cmem log --oneline` shows the sessions")
    if len(found) > 1:
        raise UsageProblem(f"{prefix!r} matches several sessions: {', '.join(found[:5])}",
                           hint="give more of the id")
    return Selector("session", found[0])


def path_selector(store: Store, path: str) -> Selector:
    clean = path.strip("/")
    folder, _, name = clean.rpartition("/")
    if not clean or name not in _names_under(store, folder):
        raise UsageProblem(f"{path!r} is in no commit of the memory repository",
                           hint="paths are relative to .claude/memory, e.g. "
                           "sessions/2026-11-20-notes.md; `git -C .claude/memory log --stat` "
                           "lists them")
    return Selector("path", clean)


def secret_selector(secret: str) -> Selector:
    value = secret.rstrip("\r\n")
    if "\n" in value or len(value) < MIN_SECRET:
        raise UsageProblem(f"a secret to purge is one line of at least {MIN_SECRET} characters",
                           hint="give the secret itself, not a part of it: every copy of what "
                           "you give is replaced")
    return Selector("secret", value)


def _names_under(store: Store, folder: str) -> set[str]:
    """Every name ever seen in `folder` (the root for ""), once per distinct tree."""
    names: set[str] = set()
    seen: set[pygit2.Oid] = set()
    for tip in _tips(store.repo):
        for commit in store.repo.walk(tip):
            tree = commit.tree if not folder else _subtree(commit.tree, folder)
            if tree is not None and tree.id not in seen:
                seen.add(tree.id)
                names.update(item.name or "" for item in tree)
    return names


def _subtree(tree: pygit2.Tree, folder: str) -> pygit2.Tree | None:
    try:
        found = tree[folder]
    except KeyError:
        return None
    return found if isinstance(found, pygit2.Tree) else None


def _tips(repo: pygit2.Repository) -> list[pygit2.Oid]:
    """Branch and remote-tracking tips: what the rewrite must cover."""
    tips = []
    for name in repo.references:
        if name.startswith(("refs/heads/", "refs/remotes/")):
            target = repo.references[name].resolve().target
            if isinstance(target, pygit2.Oid) and target not in tips:
                tips.append(target)
    return tips


# --- the purge ------------------------------------------------------------------------------

def plan(store: Store, selectors: list[Selector]) -> Result:
    """What a purge would change, computed without writing anything (--dry-run)."""
    rewriter = Rewriter(store.repo, selectors, write=False)
    tip = _tip(store)
    for other in _tips(store.repo):
        rewriter.history(other)
    rewriter.history(tip.id)
    result = Result(selectors, rewriter.changes, str(tip.id), dry_run=True)
    _require_match(result)
    return result


def purge(store: Store, selectors: list[Selector], device: str, remote: str | None,
          limits: transport.Limits | None = None) -> Result:
    """Rewrite local history, then push it over the remote's (when `remote` is given). Holds
    the network lock throughout, so no background sync pushes or merges meanwhile."""
    with NetworkLock(store.gitdir, NETWORK_WAIT):
        finish_cleanup(store)
        checkpoint.take(store, checkpoint.Request("purge", None, None, device))
        lease = _fetch_lease(store, remote, limits) if remote else None
        rewriter = Rewriter(store.repo, selectors)
        rewriter.history(_tip(store).id)  # the long part, outside the lock: hooks go on
        result = Result(selectors, rewriter.changes, remote=remote)
        _require_match(result)
        with store.lock():
            result.old_tip, result.new_tip, cutoff = _move(store, rewriter, selectors, device)
            _rewrite_other_refs(store, rewriter)
            _refresh_files(store)
            clean(store, selectors, cutoff)
        if remote:
            _force_push(store, remote, lease, limits)
            result.pushed = True
    result.notes += _notes(selectors)
    return result


def _tip(store: Store) -> pygit2.Commit:
    tip = store.tip()
    if tip is None:
        raise NothingMatched("nothing to purge: the memory repository has no commits")
    return tip


def _require_match(result: Result) -> None:
    if result.changes.commits == 0:
        what = ", ".join(s.label() for s in result.selectors)
        raise NothingMatched(f"nothing to purge: no commit holds {what}",
                             hint="`cmem scan` finds secrets the rules know; a secret must be "
                             "given exactly as it was written")


def _move(store: Store, rewriter: Rewriter, selectors: list[Selector],
          device: str) -> tuple[str, str, str]:
    """Compare-and-swap the branch onto the rewritten history plus the purge commit. Under
    the lock, so only a committer outside cmem can move it meanwhile; a hook commit that
    landed before the lock is rewritten here too (cheap: the rest is memoized)."""
    for _ in range(ATTEMPTS):
        tip = _tip(store)
        top = store.repo[rewriter.history(tip.id)].peel(pygit2.Commit)
        sig = store.signature()
        marker = store.repo.create_commit(None, sig, sig, _message(selectors, tip, device),
                                          top.tree_id, [top.id])
        cutoff = _cutoff()
        if store._swap(tip, marker):
            _owe_cleanup(store, cutoff)
            return str(tip.id), str(marker), cutoff
    raise PurgeError(f"{store.branch} kept moving during the purge; nothing was changed",
                     hint="is another program committing to .claude/memory? Try again")


def _message(selectors: list[Selector], old: pygit2.Commit, device: str) -> str:
    trailers = [(Trailer.EVENT, "purge"), (Trailer.DEVICE, device)]
    trailers += [(Trailer.PURGED, s.label()) for s in selectors]
    trailers.append((Trailer.PURGE_OF, str(old.id)))
    body = ["History was rewritten to take this out; other devices follow on their next sync."]
    return format_message("purge: " + ", ".join(s.label() for s in selectors), body, trailers)


def _rewrite_other_refs(store: Store, rewriter: Rewriter) -> None:
    """Other branches and remote-tracking refs move to their rewritten commits, so that no
    ref keeps the old history; fetch landing refs are dropped (the next fetch makes them)."""
    refs = store.repo.references
    for name in list(refs):
        if name == store.branch:
            continue
        if name.startswith(transport.INCOMING):
            refs.delete(name)
        elif name.startswith(("refs/heads/", "refs/remotes/")):
            target = refs[name].target
            if isinstance(target, pygit2.Oid):  # not a symbolic ref (origin/HEAD)
                refs[name].set_target(rewriter.history(target), "cmem: purge")


def _refresh_files(store: Store) -> None:
    try:
        worktree.sync(store.repo, {})
        unsynced(store.gitdir).unlink(missing_ok=True)
    except (pygit2.GitError, OSError):
        unsynced(store.gitdir).touch()  # the next cmem command finishes the files


def _notes(selectors: list[Selector]) -> list[str]:
    notes = ["other machines: their next `cmem sync` (or a hook's) follows the rewrite; until "
             "then they still hold the old history, so sync each one soon"]
    if any(s.kind != "path" for s in selectors):
        notes.append("a transcript Claude Code still keeps in ~/.claude/projects is not changed: "
                     "the next backup of that session stores what it holds again; delete that "
                     "transcript file there if it holds the secret")
    if any(s.kind == "secret" for s in selectors):
        notes.append("rotate the secret anyway: hosting services (GitHub, GitLab) keep "
                     "unreachable objects and caches until their support purges them")
    return notes


# --- the remote -----------------------------------------------------------------------------

def _fetch_lease(store: Store, remote: str, limits: transport.Limits | None) -> str:
    """The remote's branch, fetched now: the purge must include every commit it has, and the
    push may only replace exactly this value."""
    branch = store.branch.removeprefix("refs/heads/")
    fetched = transport.fetch(store.workdir, remote, branch, limits)
    if fetched is None:
        return ""
    theirs = store.repo.references[fetched].target
    tip = _tip(store)
    if theirs != tip.id and not store.repo.descendant_of(tip.id, theirs):
        raise PurgeError(f"{remote} has commits this machine has not merged yet: purging "
                         "now would drop them", hint="run `cmem sync` first, then purge again")
    return str(theirs)


def _force_push(store: Store, remote: str, lease: str | None,
                limits: transport.Limits | None) -> None:
    branch = store.branch.removeprefix("refs/heads/")
    done = transport.git(store.workdir, "push", "--porcelain", "--no-verify",
                         f"--force-with-lease=refs/heads/{branch}:{lease or ''}", remote,
                         f"+refs/heads/{branch}:refs/heads/{branch}", limits=limits,
                         remote=remote)
    if done.returncode != 0 or "\n!" in "\n" + done.stdout:
        raise transport.TransportError(
            "force-push to", remote, done.stderr + done.stdout,
            hint="the local history is purged; the remote still has the old one (someone "
            "pushed meanwhile?): run `cmem sync` on this machine, then `cmem purge` again")
    tip = _tip(store)
    store.repo.references.create(f"refs/remotes/{remote}/{branch}", tip.id, force=True)


# --- making the old objects go --------------------------------------------------------------

def _cutoff() -> str:
    """The prune date, taken just before the branch moves: unreachable objects written before
    it go (the old history, and a hook's objects built on the old tip, which that hook writes
    again when its compare-and-swap fails); objects written after it stay, so a hook that
    builds its commit on the new tip while the cleanup runs never loses one. git compares
    whole seconds, so wait for the next one."""
    now = time.time()
    time.sleep(int(now) + 1 - now + 0.01)
    return f"@{int(now)}"


def clean(store: Store, selectors: list[Selector], cutoff: str) -> None:
    """With the branch moved and the lock held: nothing may keep what was purged."""
    _drop_caches(store.gitdir)
    _scrub_logs(store.gitdir, selectors)
    for leftover in ("ORIG_HEAD", "FETCH_HEAD", "MERGE_HEAD", "COMMIT_EDITMSG"):
        (store.gitdir / leftover).unlink(missing_ok=True)
    _git(store, "reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all")
    try:
        with packing.paused(store.gitdir):
            _git(store, "gc", "--quiet", f"--prune={cutoff}")
    except OSError as error:
        raise PurgeError(str(error), hint="the history is rewritten; the next `cmem sync` or "
                         "`cmem purge` removes the old objects") from error
    (state_dir(store.gitdir) / _OWED).unlink(missing_ok=True)


_OWED = "purge-cleanup"  # the prune date of a purge whose cleanup has not finished


def _owe_cleanup(store: Store, cutoff: str) -> None:
    """Right after the move: a purge killed before its cleanup ends (a SessionStart hook's
    sync following one, say) leaves this, and the next sync or purge finishes the job."""
    (state_dir(store.gitdir) / _OWED).write_text(cutoff)


def finish_cleanup(store: Store) -> None:
    try:
        cutoff = (state_dir(store.gitdir, create=False) / _OWED).read_text().strip()
    except OSError:
        return
    with store.lock():
        clean(store, [], cutoff)


def _git(store: Store, *args: str) -> None:
    done = transport.git(store.workdir, *args)
    if done.returncode != 0:
        raise PurgeError(f"git {args[0]} failed: {done.stderr.strip()}",
                         hint="the history is rewritten; run `git -C .claude/memory gc "
                         "--prune=now` to remove the old objects")


def _drop_caches(gitdir: Path) -> None:
    folder = state_dir(gitdir)
    for name in CACHES:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def _scrub_logs(gitdir: Path, selectors: list[Selector]) -> None:
    """cmem's own logs (errors, sync and pack output) may quote what a commit held."""
    forms = [form for s in selectors if s.kind == "secret" for form in spellings(s.value)]
    if not forms:
        return
    for path in state_dir(gitdir).iterdir():
        if not path.is_file() or path.name in ("lock", "writing"):
            continue
        data = path.read_bytes()
        clean = replaced(data, forms)
        if clean != data:
            temp = path.with_name(f"{path.name}.{os.getpid()}")
            temp.write_bytes(clean)
            os.replace(temp, path)
