"""JSON string tokens inside a raw line: where a gate's hit sits in a string, a window of it
decoded, and edits spliced back re-encoded (see redact.py, "Why JSON-aware").
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

Hit = tuple[int, int]  # (start, end) of a gate's hit in the raw bytes
_BEFORE, _AFTER = 256, 4096  # the window around a hit: more than any rule looks back or reaches


@dataclass(frozen=True)
class _Line:
    start: int  # byte offsets of the line in the data, newline excluded
    end: int
    hits: tuple[Hit, ...]  # offsets relative to the line


_RECORD = re.compile(rb"[ \t\r]*\{")
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _valid_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        return False
    return True


# The rest of a JSON string, up to its closing quote; matched inside a look-ahead and taken with
# a back-reference, so a string that does not end in range fails at once instead of backtracking.
_REST_OF_STRING = re.compile(rb'(?=([^"\\]*(?:\\.[^"\\]*)*))\1"')
_STRING = re.compile(rb'"(?=([^"\\]*(?:\\.[^"\\]*)*))\1"')


def _strings_at(line: bytes, hits: Sequence[Hit]) -> list[tuple[int, int, None]]:
    """(opening quote, end) of the string token each hit (ascending) is in, each once. A gate
    hit is always inside a string: outside them JSON has only punctuation, numbers, true, false
    and null. UTF-8 continuation bytes are never `"` or `\\`, so bytes are searched directly."""
    end, found = -1, []
    for at, _ in hits:
        if at >= end:
            start, rest = _quote_before(line, at, 0), _REST_OF_STRING.match(line, at)
            if start < 0 or rest is None:
                raise ValueError("not inside a JSON string")
            end = rest.end()
            found.append((start, end, None))
    return found


def _first_at(hits: Sequence[Hit], offset: int) -> int:
    """The index of the first hit (ascending) at or after `offset`."""
    return bisect.bisect_left(hits, (offset, -1))


def _window(line: bytes, at: int) -> tuple[str, int, str | None] | None:
    """(decoded text, offset of `at` in it, the string itself when it is a key) for the part of
    the string around byte `at` within _BEFORE/_AFTER bytes; None when that cannot be told."""
    low = _quote_before(line, at, max(0, at - _BEFORE))
    rest = _REST_OF_STRING.match(line, at, at + _AFTER)
    high = -1 if rest is None else rest.end() - 1
    start = max(0, at - _BEFORE) if low < 0 else low + 1
    end = min(len(line), at + _AFTER) if high < 0 else high
    for skip in range(6):  # a window edge may cut an escape or a UTF-8 sequence
        try:
            text = json.loads(b'"' + line[start + skip:end - skip] + b'"')
            offset = len(json.loads(b'"' + line[start + skip:at] + b'"'))
        except ValueError:
            continue
        is_key = low >= 0 and high >= 0 and _COLON.match(line, high + 1) is not None
        return text, offset, text if is_key else None
    return None


def _quote_before(line: bytes, at: int, limit: int) -> int:
    """The nearest unescaped `"` before `at` and from `limit`; -1 if there is none."""
    pos = line.rfind(b'"', limit, at)
    while pos > 0 and _escaped(line, pos):
        pos = line.rfind(b'"', limit, pos)
    return pos


def _escaped(line: bytes, pos: int) -> bool:
    first = pos
    while first > 0 and line[first - 1] == 0x5C:  # backslash
        first -= 1
    return (pos - first) % 2 == 1


def _value_after(line: bytes, end: int) -> tuple[int, int] | None:
    """The string value that follows the key token ending at `end`, if the token is a key."""
    colon = _COLON.match(line, end)
    if colon is None or line[colon.end():colon.end() + 1] != b'"':
        return None
    rest = _REST_OF_STRING.match(line, colon.end() + 1)
    return None if rest is None else (colon.end(), rest.end())


def _offsets(token: bytes, ats: list[int]) -> list[int]:
    """Where bytes `ats` (ascending) of a JSON string token fall in its decoded value. No gate hit
    is inside an escape (`\\n`, `\\u00e9`): gates start at letters, `_`, `-` and `:`."""
    if token.isascii() and b"\\" not in token:
        return [at - 1 for at in ats]
    result, done, length = [], 1, 0
    for at in ats:
        length += len(json.loads(b'"' + token[done:at] + b'"'))
        result.append(length)
        done = at
    return result


def _encode(value: str) -> bytes:
    """A JSON string as Claude Code writes it (JSON.stringify): UTF-8, lone surrogates escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def _string_tokens(line: bytes) -> Iterator[tuple[int, int, tuple[int, int] | None]]:
    """(start, end, value) of every string token of a valid JSON line, where value is the span
    of the string value that follows when the token is a key."""
    for token in _STRING.finditer(line):
        yield token.start(), token.end(), _value_after(line, token.end())


def _char_hits(line: bytes, text: str, hits: Sequence[Hit]) -> list[Hit]:
    if len(line) == len(text):
        return list(hits)
    return [(len(line[:h].decode("utf-8", "surrogateescape")), g) for h, g in hits]


def _splice(line: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    if not edits:
        return line
    pieces, done = [], 0
    for start, end, new in edits:
        pieces += [line[done:start], new]
        done = end
    return b"".join(pieces) + line[done:]
