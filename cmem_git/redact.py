"""Secrets out of transcript bytes before they become blobs.

A transcript holds whatever Claude read: .env files, tokens in command output, private keys. Once a
blob is pushed it is out of the user's hands, so every write path runs the bytes through
`Redactor.redact` first, and `cmem scan` runs `Redactor.findings` over history.

Why JSON-aware: each line is a JSON record and must stay one (resume, render and sync parse it). A
secret is looked for inside the decoded string values, so `\\n`, `\\"` and `\\u` escapes neither hide
a secret nor get cut in half, and the replacement is re-encoded as a JSON string. Only the string
tokens that change are re-encoded; the rest of the line keeps its bytes (key order, spacing,
number spelling), and a line without a secret is returned byte for byte. A line that is not JSON
(half-written, foreign) is searched as raw text and only the secret's own bytes change.

Why a pre-filter: the hook's cost must follow the bytes appended, and almost no line holds a
secret. Parsing every line and running ~40 regular expressions over every string would cost about
as much as the backup itself. Instead a handful of `_Gate` patterns run once over the whole chunk
(and over its ASCII-lowercased copy for the case-insensitive names). Each gate starts with one
literal byte, which `re` finds with a tight scan, and then checks the few bytes around it with
look-behinds, so a 1 MiB chunk without secrets costs a few milliseconds. Only the lines (and in
them only the strings) where a gate fired are parsed and given to the rules. Every rule below has
a gate that fires on the raw JSON bytes of anything the rule can match; keep the two in step.
"""

from __future__ import annotations

import collections
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator, Sequence


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    group: int = 0  # the group that is the secret (0 = the whole match)


@dataclass(frozen=True)
class Finding:
    rule: str
    line: int  # 0-based line index within the data given
    start: int  # offset of the secret in the decoded JSON string (or the raw line, if not JSON)
    preview: str  # the secret masked, e.g. "AKIA…MPLE"


def marker(rule: str) -> str:
    return f"[REDACTED:{rule}]"


# --- Rules, applied to decoded strings -------------------------------------------------------

_Q = r"""\\*["'`]?"""  # an optional quote, escaped when the text is JSON inside a string
_SEP = _Q + r"[ \t]*(?::=|=>|[:=])[ \t]*"  # between a name and its value: = : := =>
_NAME_END = r"(?:s|[_.-][a-z0-9_.-]{0,30})?"  # db_password_prod, tokens; not tokenizer
_VALUE = r"""\\*(["'`]?)([^\s"'`\\,;<>]{4,256})"""  # group 1 the quote, group 2 the value
_ENV_KEYWORDS = "SECRET|TOKEN|PASSWORD|PASSWD|PWD|CREDENTIALS?|APIKEY|API_KEY|ACCESS_KEY|PRIVATE_KEY"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_USERINFO = r"""[^\s/?#@:"'<>\\]{0,128}:([^\s/@"'<>\\]{1,256})@"""


def _assignment(name: str, words: str) -> tuple[str, str, int]:
    return name, rf"(?i)(?:{words}){_NAME_END}{_SEP}{_VALUE}", 2


# (name, pattern, group), in priority order: where two matches overlap the earlier rule wins.
_RULE_SOURCES: tuple[tuple[str, str, int], ...] = (
    ("private-key", r"-----BEGIN[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----[\s\S]*?"
                    r"(?:-----END[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----|\Z)", 0),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),
    ("aws-secret-key", rf"(?i)(?:aws[a-z0-9_.-]{{0,20}}?secret[a-z0-9_.-]{{0,20}}|secret_?access_?key)"
                       rf"{_SEP}{_Q}([A-Za-z0-9/+]{{40}})(?![A-Za-z0-9/+])", 1),
    ("aws-session-token", rf"(?i)(?:aws_session_token|aws_security_token|sessiontoken){_SEP}{_Q}"
                          r"([A-Za-z0-9/+=]{100,})", 1),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9]{36,251}\b", 0),
    ("github-pat", r"\bgithub_pat_[A-Za-z0-9]{16}[A-Za-z0-9_]{30,}", 0),
    ("gitlab-token", r"\bgl(?:pat|ptt|rt)-[A-Za-z0-9_-]{20,}", 0),
    ("anthropic-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", 0),
    ("openai-key", r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}", 0),
    ("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0),
    ("slack-app-token", r"\bxapp-\d-[A-Za-z0-9-]{20,}", 0),
    ("slack-webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/-]{20,})", 1),
    ("discord-webhook", r"discord(?:app)?\.com/api/webhooks/\d+/([A-Za-z0-9_-]{40,})", 1),
    ("stripe-key", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", 0),
    ("stripe-webhook-secret", r"\bwhsec_[A-Za-z0-9]{24,}", 0),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])", 0),
    ("google-client-secret", r"\bGOCSPX-[A-Za-z0-9_-]{28}", 0),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}(?![A-Za-z0-9])", 0),
    ("pypi-token", r"\bpypi-[A-Za-z0-9_-]{50,}", 0),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,40}(?![A-Za-z0-9])", 0),
    ("sendgrid-key", r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])", 0),
    ("digitalocean-token", r"\bdo[por]_v1_[a-f0-9]{64}\b", 0),
    ("shopify-token", r"\bshp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}\b", 0),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", 0),
    ("twilio-key", r"(?i)twilio[\s\S]{0,80}?\b((?:SK|AC)[0-9a-f]{32})\b", 1),
    ("azure-storage-key", r"(?i)AccountKey=([A-Za-z0-9+/]{20,}={0,2})", 1),
    ("heroku-api-key", rf"(?i)heroku[a-z0-9_ .-]{{0,30}}?{_SEP}{_Q}({_UUID})", 1),
    ("heroku-api-key", r"\bHRKU-[A-Za-z0-9_-]{60}", 0),
    ("datadog-api-key", rf"(?i)(?:datadog|dd)[_-]?(?:api|app|application)[_-]?key{_SEP}{_Q}"
                        r"([a-f0-9]{32,40})(?![a-f0-9])", 1),
    ("database-password", r"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?"
                          rf"|mssql|sqlserver|cockroachdb|clickhouse)://{_USERINFO}", 1),
    ("url-password", rf"(?i)\b[a-z][a-z0-9+.-]{{1,30}}://{_USERINFO}", 1),
    ("url-token", r"(?i)\bhttps?://([A-Za-z0-9_-]{20,128})@", 1),
    ("authorization-header", rf"(?i)authorization{_SEP}{_Q}(?:bearer|token)[ \t]+"
                             r"([A-Za-z0-9._~+/-]{8,}=*)", 1),
    ("basic-auth", rf"(?i)authorization{_SEP}{_Q}basic[ \t]+([A-Za-z0-9+/]{{8,}}={{0,2}})", 1),
    ("env-secret", rf"(?<![A-Za-z0-9_$])(?:export[ \t]+)?((?:[A-Z0-9]+_)*(?:[A-Z0-9]*(?:{_ENV_KEYWORDS})"
                   r"[A-Z0-9]*|KEY)(?:_[A-Z0-9]+)*)=([\"']?)([^\s\"'`\\]{3,256})", 3),
    _assignment("password-assignment", r"pass(?:word|wd)|pwd"),
    _assignment("secret-assignment", r"secret|credential"),
    _assignment("token-assignment", r"token"),
    _assignment("api-key-assignment", r"(?:api|access|private|auth|account|client)[_.-]?key"),
    ("high-entropy", r"(?i)(?:key|secret|token|passw(?:or)?d|pwd|credential)s?"
                     r"""(?:[ "'`:=>(\[{,\\]{1,6}|[ ]+is:?[ ]+)([A-Za-z0-9+/_=.-]{20,256})"""
                     r"(?![A-Za-z0-9+/_=.-])", 1),
)

JSON_FIELD = "json-secret-field"  # a JSON value whose key names a secret: {"password": "..."}
_SECRET_KEY = re.compile(r"(?i)(?:pass(?:word|wd)|pwd|secret|token|credential|apikey"
                         r"|(?:api|access|private|auth|account|client)[_-]?key)s?$")
_PAGING_KEY = re.compile(r"(?i)(?:page|next|prev|continuation|sync|cursor)[_-]?tokens?$")


@lru_cache(maxsize=None)
def builtin_rules() -> tuple[Rule, ...]:
    """Compiled on first use: a hook whose new bytes pass no gate never pays for it."""
    return tuple(Rule(name, re.compile(source), group) for name, source, group in _RULE_SOURCES)


# --- What a match must also be to count ---------------------------------------------------------

_FILLER = re.compile(r"(.)\1{5}|(?i:x{4})")  # ghp_xxxxxxxx…, sk-000000…
_PLACEHOLDER = re.compile(
    r"(?i)[$%#{\[<*]|\.\.\.|your|example|placeholder|dummy|redacted|changeme|replace|insert|"
    r"sample|fake|mock|^(?:null|none|nil|true|false|undefined|yes|no|on|off|string|str|bytes|"
    r"int|integer|number|bool|boolean|object|any|required|optional|empty|default|value|secret|"
    r"password|passwd|token|key|hidden|masked|unset|x+|-+|_+|\.+)$")
_NUMBER = re.compile(r"(?i)[0-9][0-9.,:_-]*[a-z]{0,3}")
_PATH = re.compile(r"(?:\.{0,2}/|~/|[A-Za-z]:\\|https?://[^@]*$)")
_CODE = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*|[A-Za-z_][A-Za-z_-]*")
_NAME_NOT_SECRET = re.compile(r"_(?:ID|PATH|FILE|DIR|NAME|TYPE|URL|URI|HOST|PORT|LENGTH|SIZE|COUNT"
                              r"|TTL|EXPIRY|EXPIRES|HEADER|PREFIX|ALGORITHM|ENDPOINT|FORMAT)$")
_STRONG_ENV = re.compile(_ENV_KEYWORDS)


def _credible(value: str, quoted: bool) -> bool:
    """A value that could be a real secret, not a placeholder, a number, a path or code."""
    if _PLACEHOLDER.search(value) or _NUMBER.fullmatch(value) or _PATH.match(value):
        return False
    if "(" in value or "=" in value.rstrip("="):
        return False
    return quoted or not _CODE.fullmatch(value)


def _closed(m: re.Match[str]) -> bool:
    """Whether the value's opening quote is closed right after it (so it is a whole literal)."""
    quote = m.group(1)
    rest = m.string[m.end(2):m.end(2) + 4].lstrip("\\")
    return bool(quote) and rest.startswith(quote)


def _assigned(m: re.Match[str]) -> bool:
    return _credible(m.group(2), _closed(m))


def _env(m: re.Match[str]) -> bool:
    name, value = m.group(1), m.group(3)
    if len(name) > 40 or _NAME_NOT_SECRET.search(name):
        return False
    return _credible(value, quoted=bool(_STRONG_ENV.search(name)))


def _entropy(text: str) -> float:
    counts = collections.Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random(m: re.Match[str]) -> bool:
    """Looks machine-made: ≥ 4 bits/char, upper, lower and digits; not a uuid or hex digest."""
    text = m.group(1)
    classes = (any(c.isupper() for c in text), any(c.islower() for c in text),
               any(c.isdigit() for c in text))
    if not all(classes) or re.fullmatch(r"[0-9a-fA-F-]+", text) or "/" in text.strip("/")[:-1] \
            and text.count("/") > 1:
        return False
    return _entropy(text) >= 4.0 and not _PLACEHOLDER.search(text)


def _mixed(m: re.Match[str]) -> bool:
    body = m.group(0).split("-", 1)[-1]
    return any(c.isupper() for c in body) and any(c.islower() for c in body) \
        and any(c.isdigit() for c in body)


def _url(m: re.Match[str]) -> bool:
    return not _PLACEHOLDER.search(m.group(1))


def _url_token(m: re.Match[str]) -> bool:
    text = m.group(1)
    return _entropy(text) >= 3.5 and any(c.isdigit() for c in text) and not _PLACEHOLDER.search(text)


def _pem_body(m: re.Match[str]) -> bool:
    return re.search(r"[A-Za-z0-9+/]{40}", m.group(0)) is not None


_CHECKS: dict[str, Callable[[re.Match[str]], bool]] = {
    "private-key": _pem_body, "openai-key": _mixed, "slack-token": lambda m: any(
        c.isdigit() for c in m.group(0)), "huggingface-token": _mixed,
    "database-password": _url, "url-password": _url, "url-token": _url_token,
    "authorization-header": _url, "basic-auth": _url, "env-secret": _env,
    "password-assignment": _assigned, "secret-assignment": _assigned,
    "token-assignment": _assigned, "api-key-assignment": _assigned, "high-entropy": _random,
}


# --- Gates: the pre-filter over raw bytes -------------------------------------------------------

# After a keyword, in the raw JSON bytes (lowercased): a name's tail and an operator, inside a
# string (`password=`, `token: `, `\"secret\": `) or as a record's own key (`"password":"`) ...
_G_ASSIGN = rb"""[a-z0-9_.-]{0,40}(?:"[ \t]*:[ \t]*"|(?:\\+["'`]|['`])?(?:[ \t]|\\t)*[:=])"""
# ... or a short gap and 20 token characters (high-entropy); `"` and `\` are escaped in raw bytes.
_G_GAP = rb"""s?(?:[ "'`:=>(\[{,\\]{1,12}|[ ]+is:?[ ]+)[a-z0-9+/_=.-]{20}"""
_G_KEYWORD = rb"(?:" + _G_ASSIGN + rb"|" + _G_GAP + rb")"
_ASSIGNED = ("env-secret", "high-entropy")


@dataclass(frozen=True)
class _Gate:
    pattern: re.Pattern[bytes]  # starts with a literal byte: `re` scans for it quickly
    lower: bool  # run over the ASCII-lowercased bytes
    kinds: tuple[tuple[str, ...], ...]  # per capture group (the branch that fired): the rules
    # whose matches can hold such a hit; a gate without groups has one kind


_GATES = (
    _Gate(re.compile(rb"w(?:(?:(?<=passw)(?:ord|d)|(?<=pw)d)(" + _G_KEYWORD + rb")|(?<=tw)(ilio))"),
          True, (("password-assignment",) + _ASSIGNED, ("twilio-key",))),
    _Gate(re.compile(rb"k(?:(?<=tok)(en" + _G_KEYWORD + rb")|(ey" + _G_KEYWORD + rb")|(?<=herok)(u)"
                     rb"|(-)(?<=sk-)|(?<=hooks\.slack)(\.com/)|(?<=webhook)(s/))"),
          True, (("token-assignment", "aws-session-token") + _ASSIGNED,
                 ("api-key-assignment", "aws-secret-key", "azure-storage-key", "datadog-api-key")
                 + _ASSIGNED, ("heroku-api-key",), ("anthropic-key", "openai-key"),
                 ("slack-webhook",), ("discord-webhook",))),
    _Gate(re.compile(rb"cr(?:(?<=secr)et|edential)" + _G_KEYWORD),
          True, (("secret-assignment", "aws-secret-key") + _ASSIGNED,)),
    _Gate(re.compile(rb"z(?:(?<=authoriz)(ation)|(?<=aiz)(a)[0-9a-z_-]{35})"),
          True, (("authorization-header", "basic-auth"), ("google-api-key",))),
    _Gate(re.compile(rb"_(?=[a-z0-9]{16})(?:(?<=gh[pousr]_)()|(?<=github_pat_)()|(?<=npm_)()"
                     rb"|(?<=hf_)()|(?<=shp(?:at|ca|pa|ss)_)()|(?<=do[por]_v1_)()"
                     rb"|(?<=[sr]k_(?:live|test)_)()|(?<=whsec_)())"),
          True, (("github-token",), ("github-pat",), ("npm-token",), ("huggingface-token",),
                 ("shopify-token",), ("digitalocean-token",), ("stripe-key",),
                 ("stripe-webhook-secret",))),
    _Gate(re.compile(rb"-(?<=[tbposuix]-)(?:(?<=glpat-)()|(?<=glptt-)()|(?<=glrt-)()"
                     rb"|(?<=xox[abposr]-)()|(?<=xapp-)()|(?<=pypi-)()|(?<=hrku-)())"),
          True, (("gitlab-token",),) * 3 + (("slack-token",), ("slack-app-token",),
                                             ("pypi-token",), ("heroku-api-key",))),
    _Gate(re.compile(rb"://[^\s/@]{0,400}@"),
          False, (("database-password", "url-password", "url-token"),)),
    _Gate(re.compile(rb"IA(?<=A[KS]IA)[0-9A-Z]{16}"), False, (("aws-access-key",),)),
    _Gate(re.compile(rb"J(?<=eyJ)[A-Za-z0-9_-]{8}"), False, (("jwt",),)),
    _Gate(re.compile(rb"G(?:(?<=SG)(\.)[A-Za-z0-9_-]{22}\.|(?<=-----BEG)(IN)|(OCSPX-))"),
          False, (("sendgrid-key",), ("private-key",), ("google-client-secret",))),
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


# --- Finding rule matches near a hit --------------------------------------------------------------

# How far before its gate's hit a rule's match may start (the hit is at a keyword or a token's
# prefix; a name, a URL scheme or `aws_` may come first). 12 when not listed.
_BACK = {"env-secret": 56, "aws-secret-key": 32, "aws-session-token": 20, "datadog-api-key": 24,
         "discord-webhook": 32, "database-password": 32, "url-password": 32, "url-token": 12}
_GLOBAL_FLAGS = re.compile(r"\A\(\?[aiLmsux]+\)")


@lru_cache(maxsize=None)
def _locator(pattern: re.Pattern[str], back: int) -> re.Pattern[str]:
    """Matches up to the first place within `back` characters where `pattern` can start. A
    look-ahead adds no group, so the rule's own groups (and back-references) keep their numbers."""
    body = _GLOBAL_FLAGS.sub("", pattern.pattern)
    return re.compile(rf"[\s\S]{{0,{back}}}?(?={body})", pattern.flags)


def _near(rule: Rule, text: str, hit: int) -> Iterator[re.Match[str]]:
    """The matches of `rule` in `text` that start at most its look-back before `hit`. Only the
    start is bounded: a match runs on as far as the rule lets it (a key block, a long token)."""
    back = _BACK.get(rule.name, 12)
    pos = max(0, hit - back)
    while pos <= hit:
        located = _locator(rule.pattern, back).match(text, pos)
        if located is None or located.end() > hit:
            return
        found = rule.pattern.match(text, located.end())
        if found is None:
            return
        yield found
        pos = max(found.end(), located.end() + 1)


# --- Lines and strings ----------------------------------------------------------------------------

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


_DECODER = json.JSONDecoder()
_COLON = re.compile(r"[ \t\r\n]*:[ \t\r\n]*")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _string_tokens(text: str) -> Iterator[tuple[int, int, str, int]]:
    """(start, end, value, key start) of each string value in valid JSON `text`; key start is
    where the value's key token begins, or the value's own start when it has none."""
    key_start, key_end = -1, -1
    pos = text.find('"')
    while pos >= 0:
        value, end = _DECODER.raw_decode(text, pos)
        colon = _COLON.match(text, end)
        if colon is not None:  # a key: remember it for the value that follows
            key_start, key_end = pos, colon.end()
        else:
            yield pos, end, value, key_start if key_end == pos else pos
        pos = text.find('"', end)


def _decoded_offset(text: str, start: int, offset: int) -> int:
    """Where `offset` of the JSON text falls in the decoded value of the string token at `start`."""
    raw = text[start + 1:max(offset, start + 1)]
    if "\\" not in raw:
        return len(raw)
    for cut in range(len(raw), max(len(raw) - 6, 0) - 1, -1):  # not in the middle of an escape
        try:
            return len(json.loads(f'"{raw[:cut]}"'))
        except ValueError:
            continue
    return 0


def _encode(value: str) -> str:
    """A JSON string as Claude Code writes it (JSON.stringify): UTF-8, lone surrogates escaped."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False))


def _char_hits(line: bytes, text: str, hits: tuple[Hit, ...]) -> list[Hit]:
    if len(line) == len(text):
        return list(hits)
    return [(len(line[:h].decode("utf-8", "surrogateescape")), g) for h, g in hits]


def _preview(secret: str) -> str:
    shown = min(4, len(secret) // 5)
    return f"{secret[:shown]}…{secret[len(secret) - shown:]}" if shown else "…"


def _overlaps(kept: list[tuple[int, int, str]], start: int, end: int) -> bool:
    return any(start < e and s < end for s, e, _ in kept)


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
        lines: dict[int, tuple[int, list[Hit]]] = {}
        for hit, gate in sorted(set(_gate_hits(data) + self._extra_hits(data))):
            start = data.rfind(b"\n", 0, hit) + 1
            if start not in lines:
                end = data.find(b"\n", hit)
                lines[start] = (len(data) if end < 0 else end, [])
            lines[start][1].append((hit - start, gate))
        return [_Line(start, end, tuple(hits)) for start, (end, hits) in lines.items()]

    def _extra_hits(self, data: bytes) -> list[Hit]:
        """Extra rules have no gate: they are searched in the raw text, so a match that spans a
        JSON escape (a newline, a quote) is not seen."""
        if not self._extra:
            return []
        text = data.decode("utf-8", "surrogateescape")
        hits = [(m.start(), len(_KINDS) + i) for i, rule in enumerate(self._extra)
                for m in rule.pattern.finditer(text)]
        if data.isascii():
            return hits
        return [(len(text[:s].encode("utf-8", "surrogateescape")), g) for s, g in hits]

    def _line(self, line: bytes, hits: tuple[Hit, ...]) -> tuple[bytes, list[_Found]]:
        try:
            text = line.decode("utf-8")
            json.loads(text)
        except (ValueError, RecursionError):
            text = line.decode("utf-8", "surrogateescape")
            new, found = self._replace(text, _char_hits(line, text, hits), None)
            return (new.encode("utf-8", "surrogateescape") if found else line), found
        return self._json_line(text, _char_hits(line, text, hits))

    def _json_line(self, text: str, hits: list[Hit]) -> tuple[bytes, list[_Found]]:
        pieces: list[str] = []
        done, found = 0, list[_Found]()
        for start, end, value, key_start in _string_tokens(text):
            here = [(_decoded_offset(text, start, h), g) for h, g in hits if start <= h < end]
            keyed = key_start < start and any(key_start <= h < start for h, _ in hits)
            if not here and not keyed:
                continue
            key = _DECODER.raw_decode(text, key_start)[0] if keyed else None
            new, replaced = self._replace(value, here, key)
            if replaced:
                pieces += [text[done:start], _encode(new)]
                done, found = end, found + replaced
        if not found:
            return text.encode("utf-8"), found
        return ("".join(pieces) + text[done:]).encode("utf-8"), found

    def _replace(self, text: str, hits: list[Hit], key: str | None) -> tuple[str, list[_Found]]:
        spans = sorted(self._spans(text, hits, key))
        found = [_Found(rule, start, text[start:end]) for start, end, rule in spans]
        for start, end, rule in reversed(spans):
            text = text[:start] + marker(rule) + text[end:]
        return text, found

    def _spans(self, text: str, hits: list[Hit], key: str | None) -> list[tuple[int, int, str]]:
        """Where the secrets are in one string: (start, end, rule), never overlapping; where two
        rules' matches overlap, the rule listed first wins."""
        matches = sorted({(priority, m.start(rule.group), m.end(rule.group))
                          for hit, kind in hits for priority, rule in self._guarded(kind)
                          for m in _near(rule, text, hit) if self._counts(rule, m)})
        names = [rule.name for rule in self._rules()]
        kept: list[tuple[int, int, str]] = []
        for priority, start, end in matches:
            if end > start and not _overlaps(kept, start, end):
                kept.append((start, end, names[priority]))
        if key is not None and not kept and self._secret_field(key, text):
            kept.append((0, len(text), JSON_FIELD))
        return kept

    def _rules(self) -> tuple[Rule, ...]:
        return builtin_rules() + self._extra

    def _guarded(self, kind: int) -> list[tuple[int, Rule]]:
        """The rules (with their priority) whose matches a hit of this kind may lie in."""
        rules = self._rules()
        if kind >= len(_KINDS):
            index = len(builtin_rules()) + kind - len(_KINDS)
            return [(index, rules[index])]
        return [(i, r) for i, r in enumerate(rules) if r.name in _KINDS[kind]]

    def _counts(self, rule: Rule, m: re.Match[str]) -> bool:
        secret = m.group(rule.group)
        if any(a.fullmatch(secret) or a.fullmatch(m.group(0)) for a in self._allow):
            return False
        if rule.name != "private-key" and _FILLER.search(secret):
            return False
        check = _CHECKS.get(rule.name)
        return check is None or check(m)

    def _secret_field(self, key: str, value: str) -> bool:
        if not _SECRET_KEY.search(key) or _PAGING_KEY.search(key) or len(value) < 4:
            return False
        if any(c.isspace() for c in value) or _FILLER.search(value):
            return False
        return _credible(value, quoted=True) and not any(a.fullmatch(value) for a in self._allow)
