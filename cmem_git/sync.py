"""Several devices, one remote: fetch, merge without a working tree, push.

Sessions live under their own paths, so most merges touch disjoint files and libgit2 merges
them. Two cases need cmem's own rule:

- a transcript changed on both devices (a session resumed on the other machine): the merged
  file holds every line of both sides exactly once and in order, the shared prefix first;
- a memory file (active-context.md, ...) edited on both: a three-way merge, and where the edits
  truly conflict both versions are kept one after the other (libgit2's union merge), with no
  conflict markers for Claude to trip on; the commit's `Cmem-Conflicts` trailer names the file.

Both are symmetric: the side whose commit id sorts first goes first, so the two devices reach
the same tree whichever merges. The merge commit names both devices.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import pygit2

from . import checkpoint, chunks, intake, memory, packing, purge, restore, scan, transport
from .backup import ROOT, SOURCE_MAP, merge_lines
from .delta import changed_files
from .errors import CmemError
from .history import entry, format_message
from .lock import NetworkLock
from .store import Draft, Store, file_bytes, subtree

if TYPE_CHECKING:
    from .redact import Redactor

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
    from .redact import Redactor  # compiled rules: only when a remote is added

    known = ("ghp_", "gho_", "ghs_", "github_pat_", "glpat-", "x-access-token")
    return bool(user) and (len(user) >= 30 or user.startswith(known) or bool(
        Redactor().findings(f"https://{user}@host/".encode())))


_CREDENTIAL_NAMES = ("token", "key", "secret", "password", "passwd", "pwd", "sig", "signature",
                     "auth", "credential", "private")


def _credentials_in(*parts: str) -> bool:
    """Whether a query string or fragment holds a credential: a parameter named like one
    (`access_token=`, `private_token=`, `sig=`) with a value, or anything the secret rules
    find (`#ghp_…`)."""
    from .redact import Redactor

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


def default_remote(store: Store) -> str | None:
    names = [r.name for r in store.repo.remotes if r.name]
    return "origin" if "origin" in names else (names[0] if names else None)


def _remote(store: Store, name: str | None) -> str:
    remote = name or default_remote(store)
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
        if purge.follow(store, theirs):  # the remote's history was rewritten: ours alike
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
    a background sync or a hook's pull waits or steps aside (`wait`)."""
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


# --- merging --------------------------------------------------------------------------------

def merge(store: Store, theirs: pygit2.Commit, device: str) -> tuple[str | None, list[str]]:
    """Merge `theirs` into the branch; returns (kind, files that conflicted)."""
    conflicts: list[str] = []
    kind: list[str | None] = [None]

    def build(tip: pygit2.Commit | None) -> Draft | None:
        if tip is not None and (tip.id == theirs.id
                                or store.repo.descendant_of(tip.id, theirs.id)):
            kind[0] = None
            return None
        if tip is None or store.repo.descendant_of(theirs.id, tip.id):
            kind[0] = "fast-forward"
            return Draft(theirs.tree.id, "", target=theirs.id)
        kind[0] = "merge"
        tree, found = merged_tree(store, tip, theirs)
        conflicts[:] = found
        return Draft(tree, _message(tip, theirs, device, found), merged=(theirs.id,))

    store.commit(build)
    return kind[0], conflicts


def merged_tree(store: Store, ours: pygit2.Commit,
                theirs: pygit2.Commit) -> tuple[pygit2.Oid, list[str]]:
    repo = store.repo
    base_id = repo.merge_base(ours.id, theirs.id)
    base = repo[base_id].peel(pygit2.Tree) if base_id is not None else None
    first, second = sorted((ours, theirs), key=lambda c: str(c.id))
    ancestor = base if base is not None else repo[repo.TreeBuilder().write()]
    probe = repo.merge_trees(ancestor, first.tree, second.tree)
    conflicted = sorted({_path(c) for c in probe.conflicts or ()})
    union = repo.merge_trees(ancestor, first.tree, second.tree,
                             favor=pygit2.enums.MergeFavor.UNION)
    _settle(union)
    tree = repo[union.write_tree(repo)]
    assert isinstance(tree, pygit2.Tree)
    changes = _transcripts(repo, base, first.tree, second.tree, store.filter)
    files, texts = _memory_files(repo, base, first, second)
    changes.update(files)
    tree_id = store.build_tree(tree, changes) if changes else tree.id
    reported = [p for p in conflicted if not p.startswith(ROOT + "/") and p not in files]
    return tree_id, sorted(reported + texts)


def _memory_files(repo: pygit2.Repository, base: pygit2.Tree | None, first: pygit2.Commit,
                  second: pygit2.Commit) -> tuple[dict[str, pygit2.Oid | None], list[str]]:
    """The human files both sides have and differ in, merged three-way by cmem's own rule
    (the tree merge above cannot know it). Without a common history (a second machine's first
    sync) the ancestor is the template `cmem init` wrote, so a file still equal to it simply
    takes the other side."""
    changes: dict[str, pygit2.Oid | None] = {}
    conflicts = []
    for name in memory.merged_paths(first.tree, second.tree):
        one, two = file_bytes(first.tree, name), file_bytes(second.tree, name)
        if one is None or two is None or one == two:
            continue  # one side lacks it: git's merge (and _settle) keep the other
        old = file_bytes(base, name) if base is not None else memory.initial(name)
        body, conflicted = _merge_file(repo, old, one, two)
        changes[name] = repo.create_blob(body)
        conflicts += [name] if conflicted else []
    return changes, conflicts


def _merge_file(repo: pygit2.Repository, old: bytes | None, one: bytes,
                two: bytes) -> tuple[bytes, bool]:
    """Three-way; cmem's header lines keep their place and are merged by meaning."""
    if old == one or old == two:
        return (two if old == one else one), False
    body, conflicted = _merge_text(repo, *(memory.masked(t) if t is not None else None
                                          for t in (old, one, two)))
    values = {label: memory.merged_value(*(memory.value(t, label) for t in (old, one, two)))
              for label in memory.MANAGED}
    return memory.unmasked(body, values), conflicted


def _merge_text(repo: pygit2.Repository, old: bytes | None, one: bytes | None,
                two: bytes | None) -> tuple[bytes, bool]:
    """A three-way merge of one text; where both changed the same lines, both versions are
    kept one after the other (union), and the flag says that happened."""
    trees = [_single(repo, data) for data in (old, one, two)]
    probe = repo.merge_trees(trees[0], trees[1], trees[2])
    union = repo.merge_trees(trees[0], trees[1], trees[2], favor=pygit2.enums.MergeFavor.UNION)
    _settle(union)
    merged = repo[union["text"].id]
    assert isinstance(merged, pygit2.Blob)
    return bytes(merged.data), bool(list(probe.conflicts or ()))


def _single(repo: pygit2.Repository, data: bytes | None) -> pygit2.Tree:
    builder = repo.TreeBuilder()
    if data is not None:
        builder.insert("text", repo.create_blob(data), pygit2.GIT_FILEMODE_BLOB)
    tree = repo[builder.write()]
    assert isinstance(tree, pygit2.Tree)
    return tree


def _path(conflict: tuple[pygit2.IndexEntry | None, ...]) -> str:
    return next(str(entry.path) for entry in conflict if entry is not None)


def _settle(index: pygit2.Index) -> None:
    """Conflicts a union cannot settle (one side deleted the file): keep the side that has it,
    since memory is never thrown away by a merge."""
    for conflict in list(index.conflicts or ()):
        _, ours, theirs = conflict
        keep = ours or theirs
        assert keep is not None
        del index.conflicts[keep.path]
        index.add(keep)


def _transcripts(repo: pygit2.Repository, base: pygit2.Tree | None, first: pygit2.Tree,
                 second: pygit2.Tree, clean: Callable[[bytes], tuple[bytes, int]] | None
                 ) -> dict[str, pygit2.Oid | None]:
    """Chunk changes for every stored file both sides changed: their lines, merged."""
    changes: dict[str, pygit2.Oid | None] = {}
    both = set(changed_files(repo, base, first)) & set(changed_files(repo, base, second))
    for stored in sorted(both):
        one = chunks.listing(repo, subtree(first, stored))
        two = chunks.listing(repo, subtree(second, stored))
        data = merge_lines(chunks.read_range(repo, one), chunks.read_range(repo, two))
        if clean is not None:  # the other device may not redact: its lines pass the filter here
            data = clean(data)[0]
        for old in one + two:
            changes[f"{stored}/{old.name}"] = None
        changes[stored + SOURCE_MAP] = None  # the merged copy is no function of either file
        for piece in chunks.cut(data):
            changes[f"{stored}/{piece.name}"] = repo.create_blob(piece.data)
    return changes


def _message(ours: pygit2.Commit, theirs: pygit2.Commit, device: str,
             conflicts: list[str]) -> str:
    other = entry(theirs).trailers.get("Cmem-Device", "unknown")
    body = [f"Both versions of {path} were kept, one after the other: review and combine them."
            for path in conflicts]
    trailers = [("Cmem-Event", "merge"), ("Cmem-Device", device),
                ("Cmem-Merged-Device", other), ("Cmem-Merged", str(theirs.id))]
    if conflicts:
        trailers.append(("Cmem-Conflicts", ", ".join(conflicts)))
    return format_message(f"merge: {device} <- {other}", body, trailers)
