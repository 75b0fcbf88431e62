"""The network, through the git command line.

cmem does everything local with pygit2 but fetches and pushes with `git`, as cargo does with
net.git-fetch-with-cli: the user's ssh-agent, ~/.ssh/config host aliases, credential helpers and
proxy settings then work exactly as they do for their own repositories, which libgit2 only
partly supports. This is also the one place cmem starts git: repository-locating variables a
caller may have set (GIT_DIR, GIT_INDEX_FILE, ...) are removed so they cannot redirect it, and
prompts are off, because a hook must never wait for a password.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import CmemError

# Variables that would point git at another repository; auth and ssh settings stay.
_LOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
             "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
             "GIT_PREFIX", "GIT_CEILING_DIRECTORIES", "GIT_QUARANTINE_PATH")
_WRITTEN = re.compile(r"Writing objects: 100% \(\d+/\d+\), ([\d.]+) (bytes|KiB|MiB|GiB)")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": 1024 ** 2, "GiB": 1024 ** 3}


class TransportError(CmemError):
    def __init__(self, action: str, remote: str, detail: str) -> None:
        super().__init__(f"{action} {remote} failed: {detail.strip() or 'no message from git'}",
                         hint="check the remote with `cmem remote show` and try `git -C "
                         ".claude/memory fetch` to see git's own view")
        self.detail = detail


@dataclass(frozen=True)
class Pushed:
    updated: bool  # False when the remote already had it
    bytes_sent: int


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    env["LC_ALL"] = "C"  # git's messages are parsed below
    return env


def git(repo: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              env=environment(), timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise CmemError("git is not installed", hint="install git: cmem uses it for the "
                        "network (fetch and push)") from None
    except subprocess.TimeoutExpired:
        raise TransportError(f"git {args[0]}", "", f"no answer within {timeout:.0f} s") from None


def fetch(repo: Path, remote: str, branch: str, timeout: float | None = None) -> str | None:
    """Fetch `branch` into refs/remotes/<remote>/<branch>; None when the remote has no such
    branch yet (a new, empty remote)."""
    tracking = f"refs/remotes/{remote}/{branch}"
    done = git(repo, "fetch", "--quiet", "--no-tags", remote,
               f"+refs/heads/{branch}:{tracking}", timeout=timeout)
    if done.returncode == 0:
        return tracking
    if "couldn't find remote ref" in done.stderr:
        return None
    raise TransportError("fetch from", remote, done.stderr)


def push(repo: Path, remote: str, branch: str, timeout: float | None = None) -> Pushed:
    """Push the branch; a rejection of any kind (a lost race, a server hook) is a failure."""
    done = git(repo, "push", "--porcelain", "--progress", remote,
               f"refs/heads/{branch}:refs/heads/{branch}", timeout=timeout)
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
    noise = re.compile(r"^(Enumerating|Counting|Compressing|Writing|Delta compression|Total \d)")
    lines = [line.split("\r")[-1] for line in stderr.splitlines()]
    return "\n".join(line for line in lines if line.strip() and not noise.match(line))


def rejected_as_stale(error: TransportError) -> bool:
    """Whether a push lost a race (someone pushed first), which a fetch and merge resolve."""
    return any(word in error.detail for word in (
        "non-fast-forward", "fetch first", "stale info", "[rejected]",
        # the loser of two pushes at the same instant: the server's ref lock moved under it
        "failed to update ref", "cannot lock ref"))
