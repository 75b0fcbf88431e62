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
rule, in every record shape, escaped once and twice); change the two together. The rules
themselves are in secret_rules.py.

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
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

# The rules live in secret_rules.py; builtin_rules, rule_names, marker and JSON_FIELD are part
# of this module's interface too (scan, sync and the tests use them from here).
from .secret_rules import (  # noqa: F401
    CHECKS, FILLER, JSON_FIELD, MARKER, PAGING_KEY, RULE_SOURCES, SECRET_KEY, Rule,
    builtin_rules, compiled, credible, marker, rule_names)


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int  # 0-based line index within the data given
    start: int  # offset of the secret in the decoded JSON string (or the raw line, if not JSON)
    preview: str  # the secret masked, e.g. "AKIA…MPLE"



# --- Gates: the pre-filter over raw bytes -------------------------------------------------------

# After a keyword, in the raw JSON bytes (lowercased): a name's tail and an operator, inside a
# string (`password=`, `token: `, `\"secret\": `) or as a record's own key (`"password":"`), then
# the start of a value the rules could accept: quoted, right after `=` (.env), or holding a
# character other than letters, `_` and `-` (`tool_id`, `thread_key` are code, not secrets) ...
_G_VALUE = (rb"""(?:\\*["'`]|(?=[^\s"'`\\,;<>]{4})"""
            rb"""(?:[a-z_-]{0,255}[^a-z_\-\s"'`\\,;<>]|[a-z_-]{20}))""")
_G_ASSIGN = (rb"""[a-z0-9_.-]{0,40}(?:"[ \t]*:[ \t]*"|=(?:\\*["'])?[^\s"'`\\]{3}"""
             rb"""|(?:\\+["'`]|['`])?(?:[ \t]|\\t)*(?::=|=>|[:=])(?:[ \t]|\\t)*"""
             + _G_VALUE + rb")")
# ... or a short gap and 20 token characters (high-entropy); `"` and `\` are escaped in raw bytes.
_G_GAP = rb"""s?(?:[ "'`:=>(\[{,\\]{1,12}|[ ]+is:?[ ]+)[a-z0-9+/_=.-]{20}"""
_G_KEYWORD = rb"(?:" + _G_ASSIGN + rb"|" + _G_GAP + rb")"
_ASSIGNED = ("env-secret", "high-entropy", "url-query-token")


@dataclass(frozen=True)
class _Gate:
    pattern: re.Pattern[bytes]
    lower: bool  # run over the ASCII-lowercased bytes
    kinds: tuple[tuple[str, ...], ...]  # per capture group (the branch that fired): the rules
    # whose matches can hold such a hit; a gate without groups has one kind


def _gate(source: bytes, lower: bool, *kinds: tuple[str, ...]) -> _Gate:
    return _Gate(re.compile(source), lower, kinds)


# Each gate starts with a literal byte, which `re` scans for quickly, and each branch after it
# with a literal too, which `re` dispatches on quickly. A gate may consume only bytes that cannot
# hold its own first byte, and looks at the rest: one hit must never hide the next (`key=sk-…`).
_GATES = (
    _gate(rb"w(?:(?:ord(?<=password)|d(?<=passwd)|d(?<=pwd))()(?=" + _G_KEYWORD + rb")"
          rb"|ilio()(?<=twilio))",
          True, ("password-assignment",) + _ASSIGNED, ("twilio-key",)),
    _gate(rb"k(?:e(?:n()(?<=token)(?=" + _G_KEYWORD + rb")|y()(?=" + _G_KEYWORD + rb"))"
          rb"|u()(?<=heroku)|-()(?<=sk-)(?=[a-z0-9_-]{20})|\.com/()(?<=hooks\.slack\.com/)"
          rb"|s/()(?<=webhooks/))",
          True, ("token-assignment", "aws-session-token") + _ASSIGNED,
          ("api-key-assignment", "aws-secret-key", "azure-storage-key", "datadog-api-key")
          + _ASSIGNED, ("heroku-api-key",), ("anthropic-key", "openai-key"), ("slack-webhook",),
          ("discord-webhook",)),
    _gate(rb"cr(?:et(?<=secret)|edential)(?=" + _G_KEYWORD + rb")",
          True, ("secret-assignment", "aws-secret-key") + _ASSIGNED),
    _gate(rb"z(?:ation()(?<=authorization)(?=(?:[\\\"'` :=>]|\\t){1,16}(?:bearer|token|basic))"
          rb"|a()(?<=aiza)(?=[0-9a-z_-]{35}))",
          True, ("authorization-header", "basic-auth"), ("google-api-key",)),
    _gate(rb"_(?=[a-z0-9]{16})(?:(?<=gh[pousr]_)()|(?<=github_pat_)()|(?<=npm_)()|(?<=hf_)()"
          rb"|(?<=shp(?:at|ca|pa|ss)_)()|(?<=do[por]_v1_)()|(?<=[sr]k_(?:live|test)_)()"
          rb"|(?<=whsec_)()|(?<=lin_api_)())",
          True, ("github-token",), ("github-pat",), ("npm-token",), ("huggingface-token",),
          ("shopify-token",), ("digitalocean-token",), ("stripe-key",), ("stripe-webhook-secret",),
          ("linear-api-key",)),
    _gate(rb"-(?<=[tbaposriuky]-)(?:(?<=glpat-)()|(?<=glptt-)()|(?<=glrt-)()"
          rb"|(?<=xox[abposr]-)()|(?<=xapp-)()|(?<=pypi-)()|(?<=hrku-)()"
          rb"|(?<=age-secret-key-)(?=1)()|(?<=key-)(?=[0-9a-f]{32})()|(?<=pmak-)())",
          True, ("gitlab-token",), ("gitlab-token",), ("gitlab-token",), ("slack-token",),
          ("slack-app-token",), ("pypi-token",), ("heroku-api-key",), ("age-secret-key",),
          ("mailgun-key",), ("postman-key",)),
    _gate(rb":AA(?<=[0-9]{8}:AA)(?=[A-Za-z0-9_-]{33})", False, ("telegram-bot-token",)),
    _gate(rb"\.(?<=hv[sb]\.)(?=[A-Za-z0-9_-]{24})", False, ("vault-token",)),
    # The command, then its flag within the line. (Starting at the flag instead is cheaper on
    # real transcripts but costs a 232-byte look-back per `-p`: ~800x a benign MiB on a MiB
    # of `x -p x -p`, past test_redact_linear's bound.)
    _gate(rb"(?:mysql|mariadb|sshpass|login)(?=[^\n]{0,240}?(?:-p|--password))", True,
          ("cli-password",)),
    # `?access_token=`, `&key=` are found by the keyword gates above; these two are not.
    _gate(rb"=(?:(?<=[?&]sig=)|(?<=signature=))", True, ("url-query-token",)),
    _gate(rb"""://(?=[^\s/@"\\]{0,400}@)""",
          False, ("database-password", "url-password", "url-token")),
    _gate(rb"IA(?<=A[KS]IA)(?=[0-9A-Z]{16})", False, ("aws-access-key",)),
    _gate(rb"J(?<=eyJ)(?=[A-Za-z0-9_-]{8})", False, ("jwt",)),
    _gate(rb"G(?:\.()(?<=SG\.)(?=[A-Za-z0-9_-]{22}\.)|IN()(?<=-----BEGIN)|OCSPX-())",
          False, ("sendgrid-key",), ("private-key",), ("google-client-secret",)),
)
# Every kind of hit, numbered: a hit is (offset, kind); kinds past these are the extra rules.
_KINDS = tuple(kind for gate in _GATES for kind in gate.kinds)
_FIRST_KIND = tuple(sum(len(g.kinds) for g in _GATES[:i]) for i in range(len(_GATES)))
Hit = tuple[int, int]


def _gate_hits(data: bytes) -> list[Hit]:
    lower = data.lower()  # ASCII only, so offsets stay the same
    hits: list[Hit] = []
    for first, gate in zip(_FIRST_KIND, _GATES):
        hits += [(m.start(), first + (m.lastindex or 1) - 1)
                 for m in gate.pattern.finditer(lower if gate.lower else data)]
    return hits


@lru_cache(maxsize=None)
def _guarded(kind: int) -> tuple[tuple[int, Rule], ...]:
    """The built-in rules, with their priority, whose matches a hit of this kind may lie in."""
    return tuple((i, compiled(i)) for i, (name, _, _) in enumerate(RULE_SOURCES)
                 if name in _KINDS[kind])


# --- Finding rule matches near a hit --------------------------------------------------------------

# How far before its gate's hit a rule's match may start (the hit is at a keyword or a token's
# prefix; a name, a URL scheme or `aws_` may come first). 12 when not listed.
_BACK = {"env-secret": 56, "aws-secret-key": 32, "aws-session-token": 20, "datadog-api-key": 24,
         "discord-webhook": 32, "database-password": 32, "url-password": 32, "url-token": 12,
         "age-secret-key": 16, "cli-password": 24, "url-query-token": 24}
_GLOBAL_FLAGS = re.compile(r"\A\(\?[aiLmsux]+\)")


@lru_cache(maxsize=None)
def _locator(pattern: re.Pattern[str], back: int) -> re.Pattern[str]:
    """Matches up to the first place within `back` characters where `pattern` can start. A
    look-ahead adds no group, so the rule's own groups (and back-references) keep their numbers."""
    body = _GLOBAL_FLAGS.sub("", pattern.pattern)
    return re.compile(rf"[\s\S]{{0,{back}}}?(?={body})", pattern.flags)


def _near(rule: Rule, text: str, hit: int, reach: dict[int, int] | None = None,
          priority: int = 0) -> Iterator[re.Match[str]]:
    """The matches of `rule` in `text` that start at most its look-back before `hit`. Only the
    start is bounded: a match runs on as far as the rule lets it (a key block, a long token).

    `reach` (per rule priority, for hits in ascending order) is how far starts were already
    tried for earlier hits (the caller moves it past a match it keeps): a start before it is
    not tried again. Dense hits (`sk-sk-sk-…`, `token: token: …`, many key headers) would
    otherwise each try the same starts, so the cost grew with hits × look-back."""
    back = _BACK.get(rule.name, 12)
    tried = reach.get(priority, 0) if reach is not None else 0
    pos = max(0, hit - back, tried)
    while pos <= hit:
        located = _locator(rule.pattern, back).match(text, pos)
        found = None if located is None or located.end() > hit else \
            rule.pattern.match(text, located.end())
        if located is None or found is None:
            break
        pos = max(found.end(), located.end() + 1)
        if reach is not None:
            reach[priority] = located.end() + 1
        yield found
    if reach is not None:
        reach[priority] = max(reach.get(priority, 0), hit + 1)


# --- Lines and strings ----------------------------------------------------------------------------

_PEM_REACH = 33000  # past the longest key block the rule takes (_PEM_BODY)


def _region_end(data: bytes, start: int, hit: int) -> int:
    """Where the text looked at for a hit ends: its line's end; for a key block in plain text
    (not a JSON record, whose strings hold their line breaks as escapes) the end of its
    footer's line, or of the line the longest body would reach when there is no footer."""
    end = data.find(b"\n", hit)
    end = len(data) if end < 0 else end
    if _RECORD.match(data, start) or data.find(b"PRIVATE KEY", hit, end) < 0:
        return end
    footer = data.find(b"-----END", hit, hit + _PEM_REACH)
    stop = data.find(b"\n", footer if footer >= 0 else min(len(data), hit + _PEM_REACH))
    return len(data) if stop < 0 else stop


@dataclass(frozen=True)
class _Found:
    rule: str
    start: int  # in the decoded string (or raw line)
    secret: str


@dataclass(frozen=True)
class _Line:
    start: int  # byte offsets of the line in the data, newline excluded
    end: int
    hits: tuple[Hit, ...]  # offsets relative to the line


_RECORD = re.compile(rb"[ \t\r]*\{")
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
Span = tuple[int, int, str]  # (start, end, rule) of a secret in a string


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


_BEFORE, _AFTER = 256, 4096  # the window around a hit: more than any rule looks back or reaches


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
        self._extra = tuple(Rule(name, re.compile(source)) for name, source in extra)
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
        check = CHECKS.get(rule.name)
        return check is None or check(m)

    def _secret_field(self, key: str, value: str) -> bool:
        if not SECRET_KEY.search(key) or PAGING_KEY.search(key) or len(value) < 4:
            return False
        if any(c.isspace() for c in value) or FILLER.search(value):
            return False
        return credible(value, quoted=True) and not any(a.fullmatch(value) for a in self._allow)


def _past(reach: dict[int, int], priority: int, m: re.Match[str]) -> bool:
    """Moves `reach` past a match that counts: a later hit inside it would find only a part of
    it, which overlaps it and loses to it anyway."""
    reach[priority] = max(reach[priority], m.end())
    return True


def _splice(line: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    if not edits:
        return line
    pieces, done = [], 0
    for start, end, new in edits:
        pieces += [line[done:start], new]
        done = end
    return b"".join(pieces) + line[done:]
