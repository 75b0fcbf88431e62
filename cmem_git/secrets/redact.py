"""Secrets out of bytes before they become blobs.

A transcript holds whatever Claude read: .env files, tokens in command output, private keys; memory
files and documents hold what people paste. Once a blob is pushed it is out of the user's hands,
so the store runs every blob it writes through `Redactor.redact` first (store.py), and `cmem scan`
runs `Redactor.findings` over history.

Why JSON-aware: each line is a JSON record and must stay one (resume, render and sync parse it). A
secret is looked for inside the decoded string values, so `\\n`, `\\"` and `\\u` escapes neither
hide a secret nor get cut in half, and the replacement is re-encoded as a JSON string. Only the
string tokens that change are re-encoded (as JSON.stringify would: UTF-8, compact); the rest of the
line keeps its bytes (key order, spacing, number spelling), and a line without a secret is returned
byte for byte. A line that is not JSON
(half-written, foreign) is searched as raw text and only the secret's own bytes change.

Why a pre-filter: the hook's cost must follow the bytes appended, and almost no line holds a
secret. Parsing every line and running ~40 regular expressions over every string would cost about
as much as the backup itself. Instead a handful of `_Gate` patterns run once over the whole chunk
(and over its ASCII-lowercased copy for the case-insensitive names). Each starts with one literal
byte, which `re` finds with a tight scan, and checks the few bytes around it with look-arounds:
about 5 ms per MiB of real transcript. Where a gate fires, only a window of the string around the
hit is decoded and given to the few rules that gate guards; a record is never parsed whole, and a
string is decoded whole and re-encoded only when a rule matches in it. Every rule has a gate that
fires on the raw JSON bytes of anything the rule can match (tests/test_redact.py checks every
rule, in every record shape, escaped once and twice); change the two together. The gates
are in gates.py, the JSON string handling in jsonstr.py, the rules themselves in secret_rules.py.

Why linear: a hook is killed when it runs too long, and then the session is never backed up. Every
repeat in a rule is bounded; a key block's body cannot run past the next `-----`, so a string of
many headers costs one pass; a string with more hits than a window each is worth is decoded once;
and a rule is never tried again from a start an earlier hit already tried (`_near`'s `reach`), so
dense hits (`token: token: …`) cost one pass per rule. tests/test_redact_linear.py holds the cost
of a MiB of adversarial input to a ratio of a MiB of real transcript.

Plain text (a tool-results file, a memory file) is searched line by line like a record that is
not JSON, except that a key block's header takes in the lines up to its footer.
"""

from __future__ import annotations

import bisect
import collections
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .gates import _KINDS, _gate_hits, _guarded, _near, _past, _region_end
from .jsonstr import (
    _AFTER,
    _BEFORE,
    _RECORD,
    Hit,
    _char_hits,
    _encode,
    _first_at,
    _Line,
    _offsets,
    _splice,
    _string_tokens,
    _strings_at,
    _valid_json,
    _value_after,
    _window,
)

# The rules live in secret_rules.py; builtin_rules, rule_names, marker and JSON_FIELD are part
# of this module's interface too (scan, sync and the tests use them from here).
from .secret_rules import (
    FILLER,
    JSON_FIELD,
    MARKER,
    PAGING_KEY,
    RULE_SOURCES,
    SECRET_KEY,
    Rule,
    builtin_rules,
    credible,
    extra_rule,
    marker,
    rule_names,
)

__all__ = ["JSON_FIELD", "Finding", "Redactor", "builtin_rules", "marker", "rule_names"]


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int  # 0-based line index within the data given
    start: int  # offset of the secret in the decoded JSON string (or the raw line, if not JSON)
    preview: str  # the secret masked, e.g. "AKIA…MPLE"


@dataclass(frozen=True)
class _Found:
    rule: str
    start: int  # in the decoded string (or raw line)
    secret: str


Span = tuple[int, int, str]  # (start, end, rule) of a secret in a string


def _preview(secret: str) -> str:
    shown = min(4, len(secret) // 5)
    return f"{secret[:shown]}…{secret[len(secret) - shown:]}" if shown else "…"


def _overlaps(kept: list[Span], start: int, end: int) -> bool:
    """Whether [start, end) overlaps a span of `kept` (sorted, not overlapping each other)."""
    at = bisect.bisect_left(kept, (start, start, ""))
    return (at < len(kept) and kept[at][0] < end) or (at > 0 and kept[at - 1][1] > start)


def _apply(text: str, spans: list[Span]) -> tuple[str, list[_Found]]:
    spans = sorted(spans)
    found = [_Found(rule, start, text[start:end]) for start, end, rule in spans]
    pieces, done = [], 0
    for start, end, rule in spans:
        pieces += [text[done:start], marker(rule)]
        done = end
    return ("".join(pieces) + text[done:] if spans else text), found


# --- The redactor -------------------------------------------------------------------------------

class Redactor:
    """Finds secrets with the built-in rules plus `extra` (name, regex) rules. A match that an
    `allow` regex matches in full (the secret, or the rule's whole match) is left alone."""

    def __init__(self, extra: Sequence[tuple[str, str]] = (), allow: Sequence[str] = ()) -> None:
        self._extra = tuple(extra_rule(name, source) for name, source in extra)
        self._allow = tuple(re.compile(source) for source in allow)

    def redact(self, data: bytes) -> tuple[bytes, collections.Counter[str]]:
        """`data` with every secret replaced by a marker naming its rule, and counts per rule.
        Lines keep their count and endings; a line without a secret keeps its bytes."""
        counts: collections.Counter[str] = collections.Counter()
        pieces, done = [], 0
        for line in self._candidates(data):
            new, found = self._line(data[line.start:line.end], line.hits)
            if found:
                pieces += [data[done:line.start], new]
                done = line.end
                counts.update(f.rule for f in found)
        if not pieces:
            return data, counts
        return b"".join(pieces) + data[done:], counts

    def findings(self, data: bytes) -> list[Finding]:
        """What `redact` would replace, and where, without the secrets themselves."""
        result, line_no, counted = [], 0, 0
        for line in self._candidates(data):
            line_no += data.count(b"\n", counted, line.start)
            counted = line.start
            _, found = self._line(data[line.start:line.end], line.hits)
            result += [Finding(f.rule, line_no, f.start, _preview(f.secret)) for f in found]
        return result

    def _candidates(self, data: bytes) -> list[_Line]:
        """The lines the gates (and the extra rules) point at, with where in them."""
        lines: list[tuple[int, int, list[Hit]]] = []
        for hit, kind in sorted(set(_gate_hits(data) + self._extra_hits(data))):
            if not lines or hit >= lines[-1][1]:  # hits ascend: each line is looked up once
                start = data.rfind(b"\n", 0, hit) + 1
                lines.append((start, _region_end(data, start, hit), []))
            lines[-1][2].append((hit - lines[-1][0], kind))
        return [_Line(start, end, tuple(hits)) for start, end, hits in lines]

    def _extra_hits(self, data: bytes) -> list[Hit]:
        """Extra rules have no gate: a line is looked at when one matches its raw text (so not
        when the match would span a JSON escape such as a newline or a quote)."""
        if not self._extra:
            return []
        text = data.decode("utf-8", "surrogateescape")
        hits = [(m.start(), len(_KINDS)) for rule in self._extra
                for m in rule.pattern.finditer(text)]
        if data.isascii():
            return hits
        return [(len(text[:s].encode("utf-8", "surrogateescape")), k) for s, k in hits]

    def _line(self, line: bytes, hits: Sequence[Hit]) -> tuple[bytes, list[_Found]]:
        """A record is searched string by string, without parsing the whole line: a gate hit is
        always inside a string, found from the nearest unescaped quotes. Anything else (a line
        that is not a record, a hit that is not in a string) is searched as raw text."""
        if _RECORD.match(line):
            extra = any(kind >= len(_KINDS) for _, kind in hits)
            try:
                if not extra:
                    strings = _strings_at(line, hits)
                    if not any(self._suspect_string(line, s, hits) for s in strings):
                        return line, []
                    return self._json_line(line, hits, iter(strings))
                if _valid_json(line):  # an extra rule's match may be anywhere: every string
                    return self._json_line(line, hits, _string_tokens(line))
            except ValueError:
                pass  # a truncated record: its last string is not closed
        text = line.decode("utf-8", "surrogateescape")
        new, found = self._replace(text, _char_hits(line, text, hits), None, everywhere=True)
        return (new.encode("utf-8", "surrogateescape") if found else line), found

    def _suspect_string(self, line: bytes, string: tuple[int, int, None],
                        hits: Sequence[Hit]) -> bool:
        """Whether a rule may match near a hit in one string token. A few hits in a long string
        (a Read result) each get a window; where the windows would add up to more than the
        string, it is decoded once for all of them, so the cost stays linear in the line."""
        start, end, _ = string
        inside = hits[_first_at(hits, start):_first_at(hits, end)]
        if len(inside) * (_BEFORE + _AFTER) < end - start:
            return any(self._suspect(line, at, kind) for at, kind in inside)
        token = line[start:end]
        text: str = json.loads(token)
        after = _value_after(line, end)
        if after is not None and SECRET_KEY.search(text):
            return True
        offsets = _offsets(token, [at - start for at, _ in inside])
        reach: dict[int, int] = {}
        return any(self._counts(rule, m) for offset, (_, kind) in zip(offsets, inside)
                   for priority, rule in _guarded(kind)
                   for m in _near(rule, text, offset, reach, priority))

    def _suspect(self, line: bytes, at: int, kind: int) -> bool:
        """Whether a rule may match near a hit, judged from a decoded window of its string (a
        Read result is often tens of KB): the exact search runs only where this says yes."""
        window = _window(line, at)
        if window is None:
            return True
        text, offset, key = window
        if key is not None and SECRET_KEY.search(key):
            return True
        return any(self._counts(rule, m) for _, rule in _guarded(kind)
                   for m in _near(rule, text, offset))

    def _json_line(self, line: bytes, hits: Sequence[Hit],
                   strings: Iterator[tuple[int, int, tuple[int, int] | None]]) -> \
            tuple[bytes, list[_Found]]:
        """Each string value with a hit in it (or in its key) gets its secrets replaced."""
        values: dict[tuple[int, int], tuple[int, int] | None] = {}
        for start, end, value in strings:
            after = value or _value_after(line, end)
            if after is not None:  # a key: its value is looked at with it
                values[after] = (start, end)
            else:
                values.setdefault((start, end), None)
        edits: list[tuple[int, int, bytes]] = []
        found: list[_Found] = []
        extra = any(k >= len(_KINDS) for _, k in hits)
        for (start, end), key in sorted(values.items()):
            new, here = self._string(line, start, end, key, hits, extra)
            if here:
                edits.append((start, end, new))
                found += here
        return _splice(line, edits), found

    def _string(self, line: bytes, start: int, end: int, key: tuple[int, int] | None,
                hits: Sequence[Hit], extra: bool) -> tuple[bytes, list[_Found]]:
        token = line[start:end]
        inside = [(h - start, k) for h, k in hits[_first_at(hits, start):_first_at(hits, end)]
                  if k < len(_KINDS)]
        inside = list(zip(_offsets(token, [h for h, _ in inside]), [k for _, k in inside]))
        name = json.loads(line[key[0]:key[1]]) if key is not None and \
            _first_at(hits, key[0]) < _first_at(hits, key[1]) else None
        new, found = self._replace(json.loads(token), inside, name, everywhere=extra)
        return (_encode(new) if found else token), found

    def _replace(self, text: str, hits: list[Hit], key: str | None,
                 everywhere: bool) -> tuple[str, list[_Found]]:
        spans = self._spans(text, hits, everywhere)
        if key is not None and not spans and self._secret_field(key, text):
            spans.append((0, len(text), JSON_FIELD))
        return _apply(text, spans)

    def _spans(self, text: str, hits: list[Hit], everywhere: bool) -> list[Span]:
        """Where the secrets are in one string, never overlapping; where two rules' matches
        overlap, the rule listed first wins. Extra rules search the whole string."""
        reach: dict[int, int] = {}
        near = {(priority, m.start(rule.group), m.end(rule.group))
                for hit, kind in hits if kind < len(_KINDS) for priority, rule in _guarded(kind)
                for m in _near(rule, text, hit, reach, priority)
                if self._counts(rule, m) and _past(reach, priority, m)}
        extra = {(len(RULE_SOURCES) + i, m.start(rule.group), m.end(rule.group))
                 for i, rule in enumerate(self._extra) if everywhere
                 for m in rule.pattern.finditer(text) if self._counts(rule, m)}
        names = [name for name, _, _ in RULE_SOURCES] + [rule.name for rule in self._extra]
        kept: list[Span] = []
        for priority, start, end in sorted(near | extra):
            if end > start and not _overlaps(kept, start, end):
                bisect.insort(kept, (start, end, names[priority]))
        return kept

    def _counts(self, rule: Rule, m: re.Match[str]) -> bool:
        secret = m.group(rule.group)
        if any(a.fullmatch(secret) or a.fullmatch(m.group(0)) for a in self._allow):
            return False
        if MARKER.search(m.group(0)):  # already redacted: `https://[REDACTED:url-token]@host`
            return False
        if rule.name != "private-key" and FILLER.search(secret, 0, 64):
            return False
        return rule.check is None or rule.check(m)

    def _secret_field(self, key: str, value: str) -> bool:
        if not SECRET_KEY.search(key) or PAGING_KEY.search(key) or len(value) < 4:
            return False
        if any(c.isspace() for c in value) or FILLER.search(value):
            return False
        return credible(value, quoted=True) and not any(a.fullmatch(value) for a in self._allow)
