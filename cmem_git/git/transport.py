"""The network, through the git command line.

cmem does everything local with pygit2 but fetches and pushes with `git`, as cargo does with
net.git-fetch-with-cli: the user's ssh-agent, ~/.ssh/config host aliases, credential helpers and
proxy settings then work exactly as they do for their own repositories, which libgit2 only
partly supports. This is where the remote is kept at arm's length:

- the environment is command.py's (repository-locating variables a caller may have set, such as
  GIT_DIR, removed so they cannot redirect git; prompts off, because a hook must never wait for
  a password), and ssh runs in batch mode;
- every object received is checked by git itself (`transfer.fsckObjects`: trees with `..`,
  `.git` or `/` in a name are refused before they reach the object store); no hook, attribute
  file or submodule is consulted;
- every call is bounded: git is killed, with everything it started (its own process group),
  when it stays silent longer than the connect or idle limit, and on Ctrl-C. A fetch lands in a
  private ref and a push moves nothing locally, so a killed call leaves nothing half-done.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import CmemError
from .command import no_git_env

# Settings every network call runs with, whatever the user's or the repository's config says.
_GUARDED = ("core.hooksPath=/dev/null", "core.attributesFile=/dev/null", "core.fsmonitor=false",
            "transfer.fsckObjects=true", "fetch.fsckObjects=true", "receive.fsckObjects=true",
            "fetch.recurseSubmodules=false", "submodule.recurse=false", "protocol.ext.allow=never",
            "gc.auto=0", "maintenance.auto=false")
_WRITTEN = re.compile(r"Writing objects: 100% \(\d+/\d+\), ([\d.]+) (bytes|KiB|MiB|GiB)")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}
INCOMING = "refs/cmem/incoming"  # where a fetch lands before its commits are checked


@dataclass(frozen=True)
class Limits:
    """Seconds git may stay silent: before its first output (connecting), and after it (idle,
    between progress lines, which --progress makes git print throughout a transfer)."""

    connect: float = 30.0
    idle: float = 30.0


class TransportError(CmemError):
    def __init__(self, action: str, remote: str, detail: str, hint: str | None = None) -> None:
        super().__init__(f"{action} {remote} failed: {detail.strip() or 'no message from git'}",
                         hint=hint or "check the remote with `cmem remote show` and try `git -C "
                         ".claude/memory fetch` to see git's own view")
        self.detail = detail


class TransportTimeout(TransportError):
    pass


class RejectedObjects(TransportError):
    """git's object check refused what the remote sent."""


@dataclass(frozen=True)
class Pushed:
    updated: bool  # False when the remote already had it
    bytes_sent: int


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


def environment(limits: Limits | None = None) -> dict[str, str]:
    """command.py's environment, with ssh that never prompts either and messages in English
    (they are parsed below)."""
    env = no_git_env({"LC_ALL": "C"})
    connect = f" -o ConnectTimeout={max(1, round(limits.connect))}" if limits else ""
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes" + connect)
    return env


def git(repo: Path, *args: str, limits: Limits | None = None, remote: str = "") -> Done:
    """Run git on `repo` with the guarded settings; killed, with its children, when silent
    too long or when the user presses Ctrl-C."""
    settings = list(_GUARDED)
    if limits is not None:  # curl's own idle limit for http(s), below ours
        settings += ["http.lowSpeedLimit=1", f"http.lowSpeedTime={max(1, round(limits.idle))}"]
    command = ["git", *[part for s in settings for part in ("-c", s)], "-C", str(repo), *args]
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=environment(limits),
                                   start_new_session=True)
    except FileNotFoundError:
        raise CmemError("git is not installed", hint="install git: cmem uses it for the "
                        "network (fetch and push)") from None
    try:
        out, err = _collect(process, limits)
    except BaseException:
        _kill(process)
        raise
    if out is None:
        _kill(process)
        silent = limits.idle if err else limits.connect  # type: ignore[union-attr]
        raise TransportTimeout(f"git {args[0]}", remote or "the remote",
                               f"no answer within {silent:.0f} s",
                               hint="is the remote reachable? The limits are "
                               "connect_timeout_seconds and network_timeout_seconds in "
                               ".claude/memory/cmem.yaml")
    return Done(process.wait(), out.decode(errors="replace"), err.decode(errors="replace"))


def _collect(process: subprocess.Popen[bytes], limits: Limits | None
             ) -> tuple[bytes | None, bytes]:
    """Read stdout and stderr to the end; (None, what stderr said) when git stayed silent
    past its limit."""
    assert process.stdout is not None and process.stderr is not None
    data = {process.stdout: bytearray(), process.stderr: bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream in data:
            selector.register(stream, selectors.EVENT_READ)
        last, spoke = time.monotonic(), False
        while selector.get_map():
            limit = None if limits is None else (limits.idle if spoke else limits.connect)
            wait = None if limit is None else max(0.0, last + limit - time.monotonic())
            ready = selector.select(wait)
            if not ready:
                return None, bytes(data[process.stderr])
            for key, _ in ready:
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                data[key.fileobj] += chunk  # type: ignore[index]
            last, spoke = time.monotonic(), True
    return bytes(data[process.stdout]), bytes(data[process.stderr])


def _kill(process: subprocess.Popen[bytes]) -> None:
    """git, ssh, remote helpers: the whole process group git leads."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


def incoming(remote: str, branch: str) -> str:
    return f"{INCOMING}/{remote}/{branch}"


def fetch(repo: Path, remote: str, branch: str, limits: Limits | None = None) -> str | None:
    """Fetch `branch` into a private ref (see `incoming`), which nothing else reads until the
    caller has checked what it points at; None when the remote has no such branch yet."""
    ref = incoming(remote, branch)
    # An empty --refmap: git would otherwise also move refs/remotes/<remote>/<branch> itself.
    done = git(repo, "fetch", "--progress", "--no-tags", "--no-write-fetch-head", "--refmap=",
               "--no-recurse-submodules", remote, f"+refs/heads/{branch}:{ref}", limits=limits,
               remote=remote)
    if done.returncode == 0:
        return ref
    if "couldn't find remote ref" in done.stderr:
        return None
    if _fsck_refused(done.stderr):
        raise RejectedObjects("fetch from", remote, _refusal(repo, remote, branch, done.stderr,
                                                             limits),
                              hint="nothing was merged; the remote holds objects cmem never "
                              "writes (a '..' or '.git' name, a broken tree): fix or replace "
                              "it, or remove it with `cmem remote remove`")
    raise TransportError("fetch from", remote, _without_progress(done.stderr))


def _fsck_refused(stderr: str) -> bool:
    return "fsck error" in stderr or "fsck" in stderr and "fatal" in stderr


def _refusal(repo: Path, remote: str, branch: str, stderr: str, limits: Limits | None) -> str:
    """git's object check names the bad object; name the commit as well, best effort."""
    problems = [line.removeprefix("error: ") for line in stderr.splitlines()
                if line.startswith("error: object") or "fsck error" in line]
    commit = "its branch " + branch
    try:
        listed = git(repo, "ls-remote", remote, f"refs/heads/{branch}", limits=limits,
                     remote=remote)
        commit = f"commit {listed.stdout.split()[0]} ({branch})" if listed.stdout else commit
    except TransportError:
        pass
    return f"refused {commit}: git's object check failed: {'; '.join(problems[:3])}"


def remote_branches(repo: Path, remote: str, limits: Limits | None = None) -> tuple[str | None,
                                                                                   list[str]]:
    """(the branch the remote's HEAD names, every branch it has)."""
    done = git(repo, "ls-remote", "--symref", remote, "HEAD", "refs/heads/*", limits=limits,
               remote=remote)
    if done.returncode != 0:
        raise TransportError("list branches of", remote, _without_progress(done.stderr))
    head, branches = None, []
    for line in done.stdout.splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            head = line[5:].split("\t")[0].removeprefix("refs/heads/")
        elif "\trefs/heads/" in line:
            branches.append(line.split("\trefs/heads/", 1)[1])
    return (head if head in branches else None), branches


def push(repo: Path, remote: str, branch: str, limits: Limits | None = None) -> Pushed:
    """Push the branch; a rejection of any kind (a lost race, a server hook) is a failure."""
    done = git(repo, "push", "--porcelain", "--progress", "--no-verify", remote,
               f"refs/heads/{branch}:refs/heads/{branch}", limits=limits, remote=remote)
    status = [line for line in done.stdout.splitlines() if line[:1] in "=!*+ -"
              and "\t" in line]
    rejected = [line for line in status if line.startswith("!")]
    if done.returncode != 0 or rejected:
        raise TransportError("push to", remote, _without_progress(done.stderr)
                             + "\n".join(rejected))
    match = _WRITTEN.search(done.stderr)
    sent = int(float(match[1]) * _UNITS[match[2]]) if match else 0
    return Pushed(updated=not all(line.startswith("=") for line in status), bytes_sent=sent)


def _without_progress(stderr: str) -> str:
    """git's message without its progress meters, which --progress adds to stderr."""
    noise = re.compile(r"^(remote: )?(Enumerating|Counting|Compressing|Writing|Receiving|"
                       r"Resolving|Delta compression|Total \d|Unpacking)")
    lines = [line.split("\r")[-1] for line in stderr.splitlines()]
    return "\n".join(line for line in lines if line.strip() and not noise.match(line))


def rejected_as_stale(error: TransportError) -> bool:
    """Whether a push lost a race (someone pushed first), which a fetch and merge resolve."""
    return any(word in error.detail for word in (
        "non-fast-forward", "fetch first", "stale info", "[rejected]",
        # the loser of two pushes at the same instant: the server's ref lock moved under it
        "failed to update ref", "cannot lock ref"))


def lost_ref_race(error: TransportError) -> bool:
    """A fetch whose local ref update lost to another git on the same repository."""
    return "cannot lock ref" in error.detail or "unable to update local ref" in error.detail
