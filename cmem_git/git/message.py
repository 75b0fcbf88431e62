"""A commit message's trailers exactly as libgit2 reads them, in Python.

`cmem log` shows what pygit2's `Commit.message_trailers` gives (libgit2's
`git_message_trailers`, src/libgit2/trailer.c). Its common case reads history through `git log`
instead, so as not to load pygit2 (gitlog.py), and must print the same bytes: git's own
`%(trailers)` follows a newer trailer.c (configurable separators, other rules for what a
trailer block is), so this is a line-by-line port of libgit2's, quirks included: the block is
the last paragraph after the title, cut at a `---` patch line and before trailing comments;
it counts if all its lines are trailers, or if a git-generated one (`Signed-off-by: `) is
among them and they are at least a quarter; a value goes on over lines that start with a
space; a key with nothing after its colon at the very end is dropped.

It works on bytes, as the C does. Bytes from 0x80 up are neither letters nor spaces, as in
the C and UTF-8 locales (libgit2 asks the C library's ctype).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_SPACE = b" \t\n\f\r\v"
_GENERATED = (b"Signed-off-by: ", b"(cherry picked from commit ")
# Line shapes trailer.c tests byte by byte (its isalnum: ASCII letters and digits)
_BLANK = re.compile(rb"[ \t\f\r\v]*(?:\n|\Z)")
_PATCH = re.compile(rb"^---[ \t\n\f\r\v]", re.MULTILINE)
_SEPARATOR = re.compile(rb"(?:[A-Za-z0-9-]+[ \t]*)?:")  # find_separator: token, blanks, colon
_KEY = re.compile(rb"([A-Za-z0-9-]*)[ \t]*:[ \t]*")  # the parser's key, separator, blanks


def trailers(message: bytes) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs in order, as libgit2 finds them in `message` (leading newlines
    already stripped, as `git_commit_message` strips them)."""
    patch = _patch_start(message)
    end = patch - _ignored_tail(message, patch)
    block = message[_trailer_start(message, end):end]
    return _parse(block)


def _space(byte: int) -> bool:
    return byte in _SPACE


def _next_line(text: bytes, at: int) -> int:
    newline = text.find(b"\n", at)
    return len(text) if newline == -1 else newline + 1


def _blank(text: bytes, at: int) -> bool:
    return _BLANK.match(text, at) is not None


def _patch_start(text: bytes) -> int:
    """Where a line `---` and a space starts a patch (git format-patch's divider)."""
    found = _PATCH.search(text)
    return found.start() if found else len(text)


def _ignored_tail(text: bytes, length: int) -> int:
    """How many bytes at the end of text[:length] are trailing comments, blank lines and an
    old `Conflicts:` block (trailer.c's ignore_non_trailer)."""
    start_of_comments, line, in_conflicts = 0, 0, False
    while line < length:
        newline = text.find(b"\n", line, length)
        following = length if newline == -1 else newline + 1
        if text[line] in b"#\n":
            start_of_comments = start_of_comments or line
        elif text.startswith(b"Conflicts:\n", line):
            in_conflicts = True
            start_of_comments = start_of_comments or line
        elif in_conflicts and text[line] == 0x09:
            pass  # a path in the conflicts block
        elif start_of_comments:
            start_of_comments, in_conflicts = 0, False
        line = following
    return length - start_of_comments if start_of_comments else 0


def _backwards(text: bytes, length: int) -> Iterator[int]:
    """Where each line of text[:length] starts, the last first (trailer.c's last_line: the
    first byte is never taken for a line end)."""
    while length > 0:
        newline = text.rfind(b"\n", 1, length - 1) if length > 1 else -1
        length = newline + 1 if newline != -1 else 0
        yield length


def _separator(text: bytes, at: int) -> int:
    """The offset of `:` in `<token><optional blanks>:` from `at`; 0 when none."""
    found = _SEPARATOR.match(text, at)
    return found.end() - 1 - at if found else 0


def _title_end(text: bytes, length: int) -> int:
    """The first paragraph is the title and cannot be trailers."""
    at = 0
    while at < length:
        if text[at] != 0x23 and _blank(text, at):
            break
        at = _next_line(text, at)
    return at


def _trailer_start(text: bytes, length: int) -> int:
    """Where the trailer block of text[:length] starts (`length` when there is none): from
    the end, the last paragraph of trailers (trailer.c's find_trailer_start)."""
    title_end = _title_end(text, length)
    only_spaces, recognized = True, False
    trailer_lines = other_lines = continuation = 0
    for line in _backwards(text, length):
        if line < title_end:
            break
        if text[line] == 0x23:  # a comment
            other_lines += continuation
            continuation = 0
        elif _blank(text, line):
            if only_spaces:
                continue
            other_lines += continuation
            if (recognized and trailer_lines * 3 >= other_lines) or \
                    (trailer_lines and not other_lines):
                return _next_line(text, line)
            return length
        else:
            only_spaces = False
            if text.startswith(_GENERATED, line):
                trailer_lines, continuation, recognized = trailer_lines + 1, 0, True
            elif _separator(text, line) >= 1 and not _space(text[line]):
                trailer_lines, continuation = trailer_lines + 1, 0
            elif _space(text[line]):
                continuation += 1
            else:
                other_lines += 1 + continuation
                continuation = 0
    return length


def _parse(block: bytes) -> list[tuple[bytes, bytes]]:
    """The block's `Key: value` lines, a value going on over lines that start with a space;
    a line that is no trailer is skipped (git_message_trailers' state machine)."""
    found: list[tuple[bytes, bytes]] = []
    at = 0
    while at < len(block):
        key = _KEY.match(block, at)
        if key is None:
            at = _next_line(block, at)
            continue
        if key.end() == len(block):
            break  # `Key:` and nothing after it at the very end: libgit2 drops it
        end = _value_end(block, key.end())
        found.append((key[1], block[key.end():end]))
        at = end + 1
    return found


def _value_end(block: bytes, start: int) -> int:
    """Where the value starting at `start` ends: at a newline not followed by a space. Its
    first byte is taken whatever it is (a newline too, as in the C)."""
    at = start + 1
    while True:
        newline = block.find(b"\n", at)
        if newline == -1:
            return len(block)
        if newline + 1 < len(block) and block[newline + 1] == 0x20:
            at = newline + 2
            continue
        return newline
