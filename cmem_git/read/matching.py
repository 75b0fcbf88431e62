"""Finding a pattern in raw chunk bytes, fast, before any record is parsed.

A 1 GiB history cannot be parsed record by record in reasonable time, so search looks at the
stored bytes first, with the pattern as it appears inside JSON (`"` as `\\"`, a newline as `\\n`,
non-ASCII as itself or as `\\uXXXX`); only the lines it hits are parsed. A plain pattern is found
with `bytes.find`, several times faster than a regex; `-i` and non-ASCII need a bytes regex.

Reading is what costs: inflating zlib objects. libgit2 also checks each object's SHA-1 as it reads
it (sha1dc, slow), which halves the speed; git itself does not on read (`git fsck` checks), so it
is turned off while scanning. pygit2 keeps the GIL while it inflates, so threads do not help; a
large history is scanned by a pool of forked processes, each with its own repository handle,
which hands back only the lines hit, in order.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pygit2
from pygit2.enums import Option

from ..errors import CmemError

# Below this many blobs (256 KiB chunks: ~32 MiB) starting processes costs more than it saves.
POOL_FROM = 128
_DECODED_ONLY = re.compile(r'\^|\$|\\[AZnrtbB]|"|\\\\')

Hit = tuple[int, bytes]  # (line index in the blob, the line)


class BadPattern(CmemError):
    hint = "check the regular expression, or search for the text as it is (without --regex)"


class Raw:
    """Finds the pattern in raw bytes: `bytes.find` for a plain literal, else a bytes regex.
    An ASCII literal with -i is found in `data.lower()` (same offsets: it folds ASCII only),
    because a regex with re.IGNORECASE cannot use a fast literal scan: 2x slower on 1 GiB."""

    def __init__(self, regex: re.Pattern[bytes] | None, literal: bytes = b"",
                 fold: bool = False) -> None:
        self.regex = regex
        self.literal = literal
        self.fold = fold

    @classmethod
    def of(cls, forms: list[list[bytes]], flags: int) -> Raw:
        if all(len(f) == 1 for f in forms):
            literal = b"".join(f[0] for f in forms)
            return cls(None, literal.lower(), True) if flags else cls(None, literal)
        parts = [f[0] if len(f) == 1 else b"(?:" + b"|".join(f) + b")"
                 for f in ([re.escape(x) for x in each] for each in forms)]
        return cls(re.compile(b"".join(parts), flags))

    def find(self, data: bytes, position: int) -> tuple[int, int] | None:
        if self.regex is None:
            start = data.find(self.literal, position)
            return None if start == -1 else (start, start + len(self.literal))
        hit = self.regex.search(data, position)
        return None if hit is None else hit.span()


class Matcher:
    """The pattern three times: raw finders for JSONL chunks and for plain text, and a str
    regex for a record's decoded text (which decides)."""

    def __init__(self, pattern: str, regex: bool = False, ignore_case: bool = False) -> None:
        if not pattern:
            raise BadPattern("the pattern is empty")
        flags = re.IGNORECASE if ignore_case else 0
        try:
            self.text = re.compile(pattern if regex else re.escape(pattern), flags | re.MULTILINE)
        except re.error as error:
            raise BadPattern(f"invalid regular expression {pattern!r}: {error}") from None
        if regex:
            self.raw_json = self.raw_text = Raw(_raw_regex(pattern, flags))
        else:
            self.raw_json = Raw.of(_forms_per_char(pattern, ignore_case, True), flags)
            self.raw_text = Raw.of(_forms_per_char(pattern, ignore_case, False), flags)


def _raw_regex(pattern: str, flags: int) -> re.Pattern[bytes]:
    """A regex run over raw JSON; one that can only match decoded text (anchors, quotes,
    newlines, backslashes) makes every line a candidate instead."""
    if _DECODED_ONLY.search(pattern):
        return re.compile(rb"(?m)^")
    try:
        return re.compile(pattern.encode("utf-8"), flags)
    except re.error:
        return re.compile(rb"(?m)^")


def _forms_per_char(pattern: str, ignore_case: bool, json_forms: bool) -> list[list[bytes]]:
    """For each character, the byte strings it may be stored as. ASCII case is left to
    re.IGNORECASE, which in a bytes regex folds ASCII only."""
    result = []
    for char in pattern:
        variants = {char}
        if ignore_case and not char.isascii():
            variants |= {char.lower(), char.upper(), char.casefold()}
        result.append(sorted({form for v in variants for form in _forms(v, json_forms)}))
    return result


def _forms(text: str, json_forms: bool) -> set[bytes]:
    if not json_forms:
        return {text.encode("utf-8", "surrogatepass")}
    forms = {json.dumps(text, ensure_ascii=False)[1:-1].encode("utf-8", "surrogatepass")}
    ascii_form = json.dumps(text)[1:-1]
    forms.add(ascii_form.encode())
    if ascii_form.startswith("\\u"):  # \u00e9 or \u00E9: writers differ
        forms.add(("\\u" + ascii_form[2:].upper()).encode())
    return forms


def hit_lines(data: bytes, raw: Raw) -> list[Hit]:
    """Each line the raw finder hits, once, with its index in `data`."""
    found: list[Hit] = []
    haystack = data.lower() if raw.fold else data
    position, counted, lines = 0, 0, 0
    while position <= len(data):
        hit = raw.find(haystack, position)
        if hit is None:
            break
        start = data.rfind(b"\n", 0, hit[0]) + 1
        end = data.find(b"\n", hit[0])
        end = len(data) if end == -1 else end
        lines += data.count(b"\n", counted, start)
        counted = start
        if end > start or hit[1] > hit[0]:
            found.append((lines, data[start:end]))
        position = end + 1
    return found


# --- many blobs ---------------------------------------------------------------------------

def scan(gitdir: str, blobs: Sequence[tuple[pygit2.Oid, bool]], matcher: Matcher
         ) -> Iterator[list[Hit]]:
    """For each (blob, is JSONL) in order, the lines hit; in worker processes when there are
    many blobs and more than one CPU."""
    with _unverified():
        workers = min(os.cpu_count() or 1, 8)
        if len(blobs) < POOL_FROM or workers < 2 or \
                "fork" not in multiprocessing.get_all_start_methods():
            _start(gitdir, matcher)
            yield from map(_hits, ((str(oid), jsonl) for oid, jsonl in blobs))
            return
        context = multiprocessing.get_context("fork")
        with context.Pool(workers, _start, (gitdir, matcher)) as pool:
            yield from pool.imap(_hits, [(str(oid), jsonl) for oid, jsonl in blobs], 8)


@contextmanager
def _unverified() -> Iterator[None]:
    pygit2.option(Option.ENABLE_STRICT_HASH_VERIFICATION, False)
    try:
        yield
    finally:
        pygit2.option(Option.ENABLE_STRICT_HASH_VERIFICATION, True)


_worker: tuple[pygit2.Repository, Matcher] | None = None


def _start(gitdir: str, matcher: Matcher) -> None:
    """Each process opens the repository itself: a handle is not shared across a fork."""
    global _worker
    _worker = (pygit2.Repository(gitdir), matcher)


def _hits(task: tuple[str, bool]) -> list[Hit]:
    assert _worker is not None
    repo, matcher = _worker
    blob = repo[task[0]]
    assert isinstance(blob, pygit2.Blob)
    return hit_lines(blob.data, matcher.raw_json if task[1] else matcher.raw_text)
