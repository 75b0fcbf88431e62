"""Commits read by `git log`, for a reader that must not pay for loading libgit2.

`cmem log -n 20` has 150 ms, whole process (issue 13); importing pygit2 alone takes most of
that, while `git log -n 20` answers in under 10 ms on 10,000 commits. So its common case asks
git, through the one seam for git processes (command.py), and gets what pygit2 would give:

- The same commits in the same order. libgit2's walk without sorting (history.ORDER) and git
  log's default order are one algorithm: a list kept newest first by committer time, a commit
  taken from its head and its parents inserted in order, each after those of the same time.
  The tip is passed as an id, so both walk from the same commit.
- The same message: git's `%B` is the message as stored, from which libgit2 strips leading
  newlines; a message with an `encoding` header (git would recode it) or one that is not UTF-8
  is not read here. Its trailers are libgit2's (message.py).
- Nothing from the user's configuration or the repository's odd corners: replace refs off,
  signatures, notes and colour off, output in UTF-8.

Whatever git says that is not exactly this shape, or a failing git, raises Unreadable, and the
caller asks libgit2.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from . import command, message

# Every field ends with a NUL (-z ends each commit with one): id, committer time, encoding, message.
_FORMAT = "--format=%H%x00%ct%x00%e%x00%B"
_FIELDS = 4
_ID = re.compile(rb"[0-9a-f]{40}|[0-9a-f]{64}")
_TIME = re.compile(rb"-?[0-9]{1,18}")


class Unreadable(Exception):
    """git failed, or said something other than what libgit2 would read: ask libgit2."""


@dataclass(frozen=True)
class Logged:
    id: str
    time: int  # committer time, seconds since the epoch
    subject: str
    trailers: dict[str, str]


def commits(gitdir: Path, tip: str, limit: int | None = None
            ) -> Generator[Logged, None, None]:
    """The commits `tip` reaches, newest first in libgit2's order, at most `limit`. Stop
    reading whenever enough came: git is ended with the iterator."""
    args = ["--no-replace-objects", f"--git-dir={gitdir}", "log", "--no-show-signature",
            "--no-notes", "--no-color", "--encoding=UTF-8", "-z", _FORMAT]
    if limit is not None:
        args.append(f"-n{limit}")
    with closing(command.stream(*args, tip, "--")) as pieces:
        try:
            for fields in _records(pieces):
                yield _logged(fields)
        except (command.Failed, OSError) as failed:  # OSError: no git on PATH
            raise Unreadable(str(failed)) from None


def _records(pieces: Iterator[bytes]) -> Iterator[list[bytes]]:
    """Groups of _FIELDS NUL-ended fields from the output as it comes."""
    pending, fields = bytearray(), []
    for piece in pieces:
        start, scanned = 0, len(pending)
        pending += piece
        while (end := pending.find(b"\0", scanned)) != -1:
            fields.append(bytes(pending[start:end]))
            start = scanned = end + 1
            if len(fields) == _FIELDS:
                yield fields
                fields = []
        del pending[:start]
    if pending or fields:
        raise Unreadable("git log's output ends inside a commit")


def _logged(fields: list[bytes]) -> Logged:
    oid, time, encoding, raw = fields
    if not _ID.fullmatch(oid) or not _TIME.fullmatch(time) or encoding:
        raise Unreadable(f"a commit git log shows as {fields[:3]!r}")
    body = raw.lstrip(b"\n")
    try:
        text = body.decode("utf-8")
        pairs = [(key.decode(), value.decode()) for key, value in message.trailers(body)]
    except UnicodeDecodeError:
        raise Unreadable(f"commit {oid.decode()}'s message is not UTF-8") from None
    return Logged(oid.decode(), int(time), text.split("\n", 1)[0], dict(pairs))
