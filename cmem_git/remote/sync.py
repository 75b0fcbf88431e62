"""Several devices, one remote: fetch, merge without a working tree, push.

Sessions live under their own paths, so most merges touch disjoint files and libgit2 merges
them. Two cases need cmem's own rule:

- a transcript changed on both devices (a session resumed on the other machine): the merged
  file holds every line of both sides exactly once and in order, the shared prefix first;
- a memory file (active-context.md, ...) edited on both: a three-way merge, and where the edits
  truly conflict both versions are kept one after the other (libgit2's union merge), with no
  conflict markers for Claude to trip on; the commit's `Cmem-Conflicts` trailer names the file.

Both are symmetric: the side whose commit id sorts first goes first, so the two devices reach
the same tree whichever merges (merge.py). The merge commit names both devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pygit2

from ..capture import checkpoint
from ..errors import CmemError
from ..git import intake, packing, transport
from ..git.lock import NetworkLock
from ..git.repo import default_remote
from ..repo.store import Store
from ..secrets import scan
from . import following, purge, restore
from .merge import merge

if TYPE_CHECKING:
    from ..secrets.redact import Redactor

ATTEMPTS = 3  # pushes lost to a concurrent push before giving up


class SyncError(CmemError):
    pass


@dataclass
class Outcome:
    remote: str
    fetched: bool = False
    merged: str | None = None  # "fast-forward", "merge" or None
    conflicts: list[str] = field(default_factory=list)
    pushed: bool = False
    bytes_sent: int = 0


# --- remotes --------------------------------------------------------------------------------

def add_remote(store: Store, name: str, url: str) -> str:
    """Add a remote; a password or token anywhere in the URL (user info, query, fragment) is
    refused: credentials stay with git's helpers and ssh, never in plain text in .git/config."""
    parts = urlsplit(url)
    if parts.password or _token_like(parts.username or "") or \
            _credentials_in(parts.query, parts.fragment):
        host = parts.hostname or ""
        safe = urlunsplit(parts._replace(netloc=host + (f":{parts.port}" if parts.port else ""),
                                         query="", fragment=""))
        raise CmemError("the URL holds a password or token, which would be stored in plain text",
                        hint=f"add {safe} instead and let a credential helper keep the secret: "
                        "`git -C .claude/memory config credential.helper store` (or osxkeychain, "
                        "manager, libsecret), then `cmem push` once and give the token as the "
                        "password; or use an ssh URL with your ssh keys")
    if name in [r.name for r in store.repo.remotes]:
        raise CmemError(f"remote {name!r} exists already",
                        hint=f"`cmem remote remove {name}` first")
    store.repo.remotes.create(name, url)
    return url


def _token_like(user: str) -> bool:
    """GitHub and GitLab accept a token as the user name (https://<token>@host/...); a name
    the secret rules call a token is refused too."""
    from ..secrets.redact import Redactor

    known = ("ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "x-access-token")
    return bool(user) and (len(user) >= 30 or user.startswith(known) or bool(
        Redactor().findings(f"https://{user}@host/".encode())))


_CREDENTIAL_NAMES = ("token", "key", "secret", "password", "passwd", "pwd", "sig", "signature",
                     "auth", "credential", "private")


def _credentials_in(*parts: str) -> bool:
    """Whether a query string or fragment holds a credential: a parameter named like one
    (`access_token=`, `private_token=`, `sig=`) with a value, or anything the secret rules
    find (`#ghp_…`)."""
    from ..secrets.redact import Redactor

    for part in parts:
        for key, value in parse_qsl(part, keep_blank_values=False):
            if value and any(word in key.lower() for word in _CREDENTIAL_NAMES):
                return True
    text = "\n".join(p for p in parts if p)
    return bool(text) and bool(Redactor().findings(text.encode()))


def remove_remote(store: Store, name: str) -> None:
    try:
        store.repo.remotes.delete(name)
    except (KeyError, ValueError, pygit2.GitError):
        raise CmemError(f"no remote {name!r}", hint="`cmem remote show` lists them") from None


def _remote(store: Store, name: str | None) -> str:
    remote = name or default_remote(store.repo)
    if remote is None:
        raise SyncError("no remote configured", hint="`cmem remote add origin URL`")
    return remote


def _branch(store: Store) -> str:
    return store.branch.removeprefix("refs/heads/")


# --- pull, push, sync -----------------------------------------------------------------------

NETWORK_WAIT = 60.0  # seconds a foreground command waits for another's fetch or push


def pull(store: Store, remote: str | None, device: str, limits: transport.Limits | None = None,
         wait: float = NETWORK_WAIT) -> Outcome:
    with NetworkLock(store.gitdir, wait):
        return _pull(store, _remote(store, remote), device, limits)


def _pull(store: Store, remote: str, device: str, limits: transport.Limits | None) -> Outcome:
    """Fetch into a private ref, check every new commit (intake.py), and only then let the
    remote-tracking ref and the branch see it."""
    outcome = Outcome(remote)
    fetched = _fetch(store, remote, limits)
    outcome.fetched = True
    if fetched is None:
        _refuse_other_branches(store, remote, limits)
        return outcome
    theirs = store.repo.references[fetched].peel(pygit2.Commit)
    tip = store.tip()
    if tip is None or not (tip.id == theirs.id or store.repo.descendant_of(tip.id, theirs.id)):
        try:
            intake.check(store.repo, remote, theirs.id, tip.id if tip else None)
        except intake.UntrustedCommit:
            store.repo.references.delete(fetched)  # its objects become unreachable
            raise
    try:
        if following.follow(store, theirs):  # the remote's history was rewritten: ours alike
            tip = store.tip()
    except purge.PurgeError:
        store.repo.references.delete(fetched)  # what it fetched stays unreachable
        raise
    store.repo.references.create(_tracking(store, remote), theirs.id, force=True)
    outcome.merged, outcome.conflicts = merge(store, theirs, device)
    if outcome.merged:  # for SessionStart's note on local transcripts left behind
        restore.note_incoming(store, tip.tree if tip else None, theirs.tree)
    return outcome


def _fetch(store: Store, remote: str, limits: transport.Limits | None) -> str | None:
    """A fetch whose local ref update lost to a git the user ran meanwhile is tried again."""
    for attempt in range(ATTEMPTS):
        try:
            return transport.fetch(store.workdir, remote, _branch(store), limits)
        except transport.TransportError as error:
            if attempt + 1 == ATTEMPTS or not transport.lost_ref_race(error):
                raise
    raise SyncError("unreachable")


def _refuse_other_branches(store: Store, remote: str, limits: transport.Limits | None) -> None:
    """A remote without our branch but with another one (a bare repository made with
    `git init --bare`, whose HEAD is master, filled by a `git clone` elsewhere): pushing would
    start a second, unrelated history beside it that no sync ever merges."""
    head, branches = transport.remote_branches(store.workdir, remote, limits)
    if branches:
        other = head or branches[0]
        raise SyncError(f"{remote} has no branch {_branch(store)} but has "
                        f"{', '.join(branches)}: syncing would start an unrelated second "
                        "history there", hint=f"sync with its branch instead: `git -C "
                        f".claude/memory branch -m {other}`, then `cmem sync`")


def join(store: Store, url: str, device: str, limits: transport.Limits | None = None
         ) -> Outcome:
    """A second machine's set-up: add the remote as origin, take the name of the branch it
    already has (whatever `git init --bare` called it), then sync, which adopts its memory
    files wherever this machine's are still what `cmem init` wrote."""
    names = [r.name for r in store.repo.remotes]
    if "origin" not in names:
        add_remote(store, "origin", url)
    elif store.repo.remotes["origin"].url != url:
        raise SyncError(f"remote origin exists already with another URL "
                        f"({store.repo.remotes['origin'].url})",
                        hint="`cmem remote remove origin` first, or `cmem sync` to use it")
    with NetworkLock(store.gitdir, NETWORK_WAIT):
        head, branches = transport.remote_branches(store.workdir, "origin", limits)
    ours = _branch(store)
    wanted = ours if ours in branches or not branches else head or branches[0]
    if wanted != ours:
        store.repo.branches.local[ours].rename(wanted)
    return sync(store, "origin", device, limits)


def _tracking(store: Store, remote: str) -> str:
    return f"refs/remotes/{remote}/{_branch(store)}"


def push(store: Store, remote: str | None, limits: transport.Limits | None = None,
         secrets: Redactor | None = None, wait: float = NETWORK_WAIT) -> Outcome:
    with NetworkLock(store.gitdir, wait):
        return _push(store, _remote(store, remote), limits, secrets)


def _push(store: Store, remote: str, limits: transport.Limits | None,
          secrets: Redactor | None) -> Outcome:
    """Push the branch; with `secrets`, commits the remote lacks are scanned first and a
    finding stops the push (transcripts pushed are out of the user's hands)."""
    outcome = Outcome(remote)
    tip = store.tip()
    if tip is None:
        raise SyncError("nothing to push: the memory repository has no commits")
    if secrets is not None:
        _refuse_secrets(store, outcome.remote, tip.id, secrets)
    packing.before_push(store.gitdir)
    pushed = transport.push(store.workdir, outcome.remote, _branch(store), limits)
    outcome.pushed, outcome.bytes_sent = pushed.updated, pushed.bytes_sent
    return outcome


def _refuse_secrets(store: Store, remote: str, tip: pygit2.Oid, secrets: Redactor) -> None:
    tracking = store.repo.references.get(_tracking(store, remote))
    hits = scan.scan(store.repo, tip, tracking.peel(pygit2.Commit).id if tracking else None,
                     secrets)
    if hits:
        shown = "; ".join(f"{h.rule} in {h.path} line {h.line + 1} ({h.commit[:8]})"
                          for h in hits[:5])
        more = f" and {len(hits) - 5} more" if len(hits) > 5 else ""
        raise SecretsFound(f"not pushed: {len(hits)} secrets in commits {remote} does not have "
                           f"yet: {shown}{more}", hint=_refusal_hint(store))


class SecretsFound(SyncError):
    pass


def _refusal_hint(store: Store) -> str:
    """What to do, which depends on whether redaction is on: when it is, the secrets came in
    before it was (or from a device without it), and turning it on changes nothing."""
    if store.filter is None:
        return ("`cmem scan` lists them; turn `redaction: true` on in cmem.yaml so that new "
                "commits are redacted, or push anyway with --allow-secrets")
    return ("redaction is on, so these were committed before it was, or by a device without "
            "it: `cmem scan` lists them; remove them from history before pushing, or push "
            "anyway with --allow-secrets")


def sync(store: Store, remote: str | None, device: str, limits: transport.Limits | None = None,
         secrets: Redactor | None = None, wait: float = NETWORK_WAIT) -> Outcome:
    """Commit local edits of the memory files, then fetch, merge, push; a push that loses a
    race to another device fetches and merges again. Holds the network lock throughout, so
    another sync or a hook's pull waits for it, or steps aside (`wait`)."""
    name = _remote(store, remote)
    with NetworkLock(store.gitdir, wait):
        checkpoint.take(store, checkpoint.Request("sync", None, None, device))
        for attempt in range(ATTEMPTS):
            outcome = _pull(store, name, device, limits)
            try:
                pushed = _push(store, name, limits, secrets)
            except transport.TransportError as error:
                if attempt + 1 < ATTEMPTS and transport.rejected_as_stale(error):
                    continue
                raise
            outcome.pushed, outcome.bytes_sent = pushed.pushed, pushed.bytes_sent
            return outcome
    raise SyncError("unreachable")
