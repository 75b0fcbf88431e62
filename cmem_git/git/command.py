"""The one seam for the git processes cmem starts: fetch and push (transport.py), repack
(packing.py), `cmem log` (gitlog.py: its common case without loading pygit2) and
`cmem log --graph`, and doctor's fsck. Everything else local is pygit2; these are the few
things the git command line does better.

Their environment is the caller's without the variables that would point git at another
repository (a hook runs inside whatever started Claude Code, e.g. a rebase's `exec`, which sets
GIT_DIR), and with prompts off: a hook must never wait for a password. Auth, ssh and proxy
settings stay, so the user's set-up works as it does for their own repositories (pre-commit's
`no_git_env` keeps the same kind).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Mapping

# Variables that would point git at another repository; auth and ssh settings stay.
LOCATING = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
            "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
            "GIT_PREFIX", "GIT_CEILING_DIRECTORIES", "GIT_QUARANTINE_PATH")


def no_git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git process cmem starts runs with (`extra` set on top)."""
    env = {k: v for k, v in os.environ.items() if k not in LOCATING}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.update(extra or {})
    return env


def run(*args: str, extra: Mapping[str, str] | None = None, stdin: bytes | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    """`git ARGS`, waited for, with `stdin` as its input (default: none), output captured."""
    return subprocess.run(["git", *args], input=stdin or b"", capture_output=True,
                          env=no_git_env(extra))


def run_text(*args: str, extra: Mapping[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    """`run` with the output as text (undecodable bytes replaced)."""
    done = run(*args, extra=extra)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


class Failed(Exception):
    """A streamed git process exited with a failure (for the caller to fall back on)."""


def stream(*args: str) -> Generator[bytes, None, None]:
    """`git ARGS`'s output, a piece at a time, as it comes; stderr is dropped. Closing the
    iterator early ends the process (a reader that has what it wants does not wait for the
    rest); reading to the end raises Failed when git failed."""
    process = subprocess.Popen(["git", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=no_git_env())
    assert process.stdout is not None
    try:
        while piece := os.read(process.stdout.fileno(), 1 << 16):
            yield piece
        if process.wait() != 0:
            raise Failed(f"git exited with {process.returncode}")
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.wait()
