"""Secrets out of transcript bytes before they become blobs.

A transcript holds whatever Claude read: .env files, tokens in command output, private keys. Once a
blob is pushed it is out of the user's hands, so every write path runs the bytes through
`Redactor.redact` first, and `cmem scan` runs `Redactor.findings` over history.

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
rule, in every record shape, escaped once and twice); change the two together.
"""

from __future__ import annotations

import bisect
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

_Q = r"""(?:\\*["'`])?"""  # an optional quote, escaped when the text is JSON inside a string
_SEP = _Q + r"[ \t]*(?::=|=>|[:=])[ \t]*"  # between a name and its value: = : := =>
_NAME_END = r"(?:s|[_.-][a-z0-9_.-]{0,30})?"  # db_password_prod, tokens; not tokenizer
# The quote, then the value; `&` ends it where a query string goes on (`?key=…&format=json`).
_VALUE = r"""(?:\\*(["'`]))?((?:[^\s"'`\\,;<>&]|&(?![A-Za-z_][\w.-]*=)){4,256})"""
_ENV_KEYWORDS = ("SECRET|TOKEN|PASSWORD|PASSWD|PWD|CREDENTIALS?|APIKEY|API_KEY|ACCESS_KEY|"
                 "PRIVATE_KEY")
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# Where a token may start: not inside a word, but right after a JSON escape (`\n`) counts, for
# text that is JSON printed by a tool and so escaped twice.
_B = r"(?:(?<![A-Za-z0-9_])|(?<=\\[nrt]))"
_USERINFO = r"""[^\s/?#@:"'<>\\]{0,128}:([^\s/@"'<>\\]{1,256})@"""


# A key block: its header, then only what a body holds (base64, line breaks, a Read tool's line
# numbers, `Proc-Type:` headers), then its footer if there is one. The body cannot run past a
# `-----`, so it stops at the footer or the next header: a string of many headers and no footer
# (grep output) costs one pass, and only what follows each header that looks like a key goes.
_PEM_LABEL = r"[A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----"
_PEM_HEAD = rf"-----BEGIN{_PEM_LABEL}"
_PEM_BODY = r"(?:[A-Za-z0-9+/=:,\s\\\u2192]|-(?!----)){0,32768}"
_PEM_END = rf"-----END{_PEM_LABEL}"


# The rest of a command line before a flag (not past a pipe or the next command), and a flag's
# value: optionally quoted, not another flag.
_CLI_ARGS = r"[^\n|;&]{0,200}?"
_CLI_VALUE = r"""["']?([^\s"'`;|&$<-][^\s"'`;|&]{2,127})"""
_QUERY_NAMES = (r"(?:access_token|auth_token|api_key|apikey|token|key|secret|client_secret"
                r"|password|passwd|private_token|sig|signature|x-amz-signature|x-goog-signature)")


def _assignment(name: str, words: str) -> tuple[str, str, int]:
    return name, rf"(?i)(?:{words})({_NAME_END}){_SEP}{_VALUE}", 3


# (name, pattern, group), in priority order: where two matches overlap the earlier rule wins.
_RULE_SOURCES: tuple[tuple[str, str, int], ...] = (
    ("private-key", rf"{_PEM_HEAD}{_PEM_BODY}(?:{_PEM_END})?", 0),
    ("aws-access-key", rf"{_B}(?:AKIA|ASIA)[0-9A-Z]{{16}}\b", 0),
    ("aws-secret-key", rf"(?i)(?:aws[a-z0-9_.-]{{0,20}}?secret[a-z0-9_.-]{{0,20}}"
                       rf"|secret_?access_?key){_SEP}{_Q}"
                       r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1),
    ("aws-session-token", rf"(?i)(?:aws_session_token|aws_security_token|sessiontoken){_SEP}{_Q}"
                          r"([A-Za-z0-9/+=]{100,2048})", 1),
    ("github-token", rf"{_B}gh[pousr]_[A-Za-z0-9]{{36,251}}\b", 0),
    ("github-pat", rf"{_B}github_pat_[A-Za-z0-9]{{16}}[A-Za-z0-9_]{{30,255}}", 0),
    ("gitlab-token", rf"{_B}gl(?:pat|ptt|rt)-[A-Za-z0-9_-]{{20,255}}", 0),
    ("anthropic-key", rf"{_B}sk-ant-[A-Za-z0-9_-]{{20,255}}", 0),
    ("openai-key", rf"{_B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,255}}", 0),
    ("slack-token", rf"{_B}xox[abposr]-[A-Za-z0-9-]{{10,255}}", 0),
    ("slack-app-token", rf"{_B}xapp-\d-[A-Za-z0-9-]{{20,255}}", 0),
    ("slack-webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/"
                      r"([A-Za-z0-9_/-]{20,255})", 1),
    ("discord-webhook", r"discord(?:app)?\.com/api/webhooks/\d{1,20}/([A-Za-z0-9_-]{40,128})", 1),
    ("stripe-key", rf"{_B}[sr]k_(?:live|test)_[A-Za-z0-9]{{16,255}}", 0),
    ("stripe-webhook-secret", rf"{_B}whsec_[A-Za-z0-9]{{24,255}}", 0),
    ("google-api-key", rf"{_B}AIza[0-9A-Za-z_-]{{35}}(?![0-9A-Za-z_-])", 0),
    ("google-client-secret", rf"{_B}GOCSPX-[A-Za-z0-9_-]{{28}}", 0),
    ("npm-token", rf"{_B}npm_[A-Za-z0-9]{{36}}(?![A-Za-z0-9])", 0),
    ("pypi-token", rf"{_B}pypi-[A-Za-z0-9_-]{{50,512}}", 0),
    ("huggingface-token", rf"{_B}hf_[A-Za-z0-9]{{30,40}}(?![A-Za-z0-9])", 0),
    ("sendgrid-key", rf"{_B}SG\.[A-Za-z0-9_-]{{22}}\.[A-Za-z0-9_-]{{43}}(?![A-Za-z0-9_-])", 0),
    ("digitalocean-token", rf"{_B}do[por]_v1_[a-f0-9]{{64}}\b", 0),
    ("shopify-token", rf"{_B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{{32}}\b", 0),
    ("jwt", rf"{_B}eyJ[A-Za-z0-9_-]{{8,1024}}\.eyJ[A-Za-z0-9_-]{{8,8192}}\.[A-Za-z0-9_-]{{0,2048}}", 0),
    ("twilio-key", r"(?i)twilio[\s\S]{0,80}?\b((?:SK|AC)[0-9a-f]{32})\b", 1),
    ("azure-storage-key", r"(?i)AccountKey=([A-Za-z0-9+/]{20,256}={0,2})", 1),
    ("heroku-api-key", rf"(?i)heroku[a-z0-9_ .-]{{0,30}}?{_SEP}{_Q}({_UUID})", 1),
    ("heroku-api-key", rf"{_B}HRKU-[A-Za-z0-9_-]{{60}}", 0),
    ("telegram-bot-token", rf"{_B}\d{{8,10}}:AA[A-Za-z0-9_-]{{33}}(?![A-Za-z0-9_-])", 0),
    ("age-secret-key", rf"{_B}AGE-SECRET-KEY-1[0-9A-Z]{{58}}(?![0-9A-Z])", 0),
    ("mailgun-key", rf"{_B}key-[0-9a-f]{{32}}(?![0-9A-Za-z])", 0),
    ("postman-key", rf"{_B}PMAK-[a-f0-9]{{24}}-[a-f0-9]{{34}}(?![a-f0-9])", 0),
    ("vault-token", rf"{_B}hv[sb]\.[A-Za-z0-9_-]{{24,255}}", 0),
    ("linear-api-key", rf"{_B}lin_api_[A-Za-z0-9]{{40}}(?![A-Za-z0-9])", 0),
    # A password given on a command line: `mysql -pPASS` (no space: `-p PASS` asks for it and
    # PASS is the database), `sshpass -p PASS`, `docker login -p PASS`, `az login -p PASS`.
    ("cli-password", rf"{_B}(?i:(?:mysql(?:dump|admin|sh|import|check)?|mariadb(?:-dump)?)\b)"
                     rf"{_CLI_ARGS}[ \t]-p{_CLI_VALUE}", 1),
    ("cli-password", rf"{_B}sshpass[ \t]+-p[ \t]*{_CLI_VALUE}", 1),
    ("cli-password", rf"{_B}(?:docker|podman|nerdctl|buildah|skopeo|helm(?:[ \t]+registry)?|oras"
                     rf"|az)[ \t]+login\b{_CLI_ARGS}[ \t](?:-p|--password)(?:=|[ \t]+){_CLI_VALUE}",
     1),
    ("datadog-api-key", rf"(?i)(?:datadog|dd)[_-]?(?:api|app|application)[_-]?key{_SEP}{_Q}"
                        r"([a-f0-9]{32,40})(?![a-f0-9])", 1),
    ("database-password", rf"(?i){_B}(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?"
                          rf"|amqps?|mssql|sqlserver|cockroachdb|clickhouse)://{_USERINFO}", 1),
    ("url-password", rf"(?i){_B}[a-z][a-z0-9+.-]{{1,30}}://{_USERINFO}", 1),
    ("url-token", rf"(?i){_B}https?://([A-Za-z0-9_-]{{20,128}})@", 1),
    ("url-query-token", rf"(?i)[?&]{_QUERY_NAMES}=([^&#\s\"'`<>\\]{{16,512}})", 1),
    ("authorization-header", rf"(?i)authorization{_SEP}{_Q}(?:bearer|token)[ \t]+"
                             r"([A-Za-z0-9._~+/-]{8,2048}={0,2})", 1),
    ("basic-auth", rf"(?i)authorization{_SEP}{_Q}basic[ \t]+([A-Za-z0-9+/]{{8,1024}}={{0,2}})", 1),
    ("env-secret", rf"(?:(?<![A-Za-z0-9_$])|(?<=\\[nrt]))(?:export[ \t]+)?"
                   rf"((?:[A-Z0-9]+_)*(?:[A-Z0-9]*(?:{_ENV_KEYWORDS})"
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
_PAGING_WORDS = r"(?i)(?:next|prev|page|continuation|pagination|starting|sync|cursor|marker)[_-]?"
_PAGING = re.compile(_PAGING_WORDS + "$")  # NextToken, page_token: a cursor, not a credential
_PAGING_KEY = re.compile(_PAGING_WORDS + "tokens?$")


def builtin_rules() -> tuple[Rule, ...]:
    return tuple(_rule(i) for i in range(len(_RULE_SOURCES)))


def rule_names() -> tuple[str, ...]:
    """Every name a marker or a finding can carry, besides the extra rules'."""
    return tuple(dict.fromkeys(name for name, _, _ in _RULE_SOURCES)) + (JSON_FIELD,)


@lru_cache(maxsize=None)
def _rule(index: int) -> Rule:
    """Compiled on first use: a hook whose new bytes pass no gate never pays for it, and one
    whose bytes pass a gate pays for the few rules that gate guards."""
    name, source, group = _RULE_SOURCES[index]
    return Rule(name, re.compile(source), group)


# --- What a match must also be to count ---------------------------------------------------------

_FILLER = re.compile(r"(.)\1{5}|(?i:x{4})")  # ghp_xxxxxxxx…, sk-000000…
_PLACEHOLDER = re.compile(  # ${VAR}, <token>, {{ secrets.X }}, ****, your-api-key-here, #fff
    r"(?i)^[$%{\[<*#:@]|\$\{|\{\{|\*\*\*|\.\.\.|your|example|placeholder|dummy|redacted|changeme|"
    r"replace|insert|sample|fake|mock|pass|secret|token|credential|^[au]rn:|"
    r"^(?:null|none|nil|true|false|undefined|yes|no|on|off|string|str|bytes|int|integer|number|"
    r"bool|boolean|object|any|required|optional|empty|default|value|key|pass|pwd|pw|hidden|"
    r"masked|unset|foo|bar|baz|qux|x+|-+|_+|\.+)[.,:;!?]*$|"
    r"(?-i:^[A-Z_]+[.,:;!?]*$)")  # KEY=VALUE, TOKEN=MY_TOKEN
_NUMBER = re.compile(r"(?i)[0-9][0-9.,:_-]*[a-z]{0,3}")
_PATH = re.compile(r"(?:\.{0,2}/|~/|[A-Za-z]:\\|https?://[^@]*$)")
_FILE_NAME = re.compile(r"\.(?:[ch]|o|py|js|ts|go|rs|rb|java|json|ya?ml|toml|txt|md|pem|key|crt|"
                        r"cer|log|sh|cfg|conf|ini|env|lock|html|css|xml)$")
_CODE = re.compile(r"(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*|[A-Za-z_-]+")
_UUID_RE = re.compile(_UUID)
_STRONG_ENV = re.compile(_ENV_KEYWORDS)
_BRACKETS = re.compile(r"[()\[\]{}|]")
_MARKER = re.compile(r"\[REDACTED:[^\]]*\]")


def _credible(value: str, quoted: bool) -> bool:
    """A value that could be a real secret: not a placeholder (or a value that names itself,
    `mypassword`), a number, a path, a file name or code."""
    if _PLACEHOLDER.search(value) or _NUMBER.fullmatch(value) or _PATH.match(value):
        return False
    if _BRACKETS.search(value) or "=" in value.rstrip("=") or _FILE_NAME.search(value):
        return False  # code: f(x), env["X"], Optional[str], true|false, a=b; bot.py
    return quoted or not (_CODE.fullmatch(value) or _is_name(value))


def _is_name(value: str) -> bool:
    """Made of words, as identifiers are (`PKCS7PrivateKeyTypes`, `Ec2InstanceMetadata`); a
    random token breaks into many one-letter pieces."""
    if not value.isalnum():
        return False
    return all(len(w) > 1 or w.isdigit() for w in _WORDS.findall(value))


_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _closed(m: re.Match[str]) -> bool:
    """Whether the value's opening quote is closed right after it (so it is a whole literal)."""
    quote = m.group(2)
    rest = m.string[m.end(3):m.end(3) + 4].lstrip("\\")
    return bool(quote) and rest.startswith(quote)


def _assigned(m: re.Match[str]) -> bool:
    """A password or secret may be a plain word when it is a quoted literal."""
    return not _NOT_A_VALUE.search(m.group(1)) and _credible(m.group(3), _closed(m))


def _assigned_token(m: re.Match[str]) -> bool:
    """A token or API key is machine-made: never a plain word, quoted or not (`Token: "bold"`
    is a style), at least 20 characters (`token: OAuth2Token`, 16-hex digests are not), not a
    uuid (AWS `ClientToken`s and other idempotency tokens are) nor a page cursor (`NextToken`)."""
    value, before = m.group(3), m.string[max(0, m.start() - 16):m.start()]
    if len(value) < 20 or _UUID_RE.fullmatch(value) or _PAGING.search(before):
        return False
    return not _NOT_A_VALUE.search(m.group(1)) and _credible(value, quoted=False)


# A name that holds something about the secret, not the secret: password_hash, token_type.
_NOT_A_VALUE = re.compile(
    r"(?i)[_.-](?:id|path|file|dir|name|type|url|uri|host|port|length|len|min|max|size|count|ttl|"
    r"expiry|expires|header|prefix|algorithm|encryption|hash|policy|format|field|label|prompt|"
    r"hint|reset|required|confirm|confirmation|strength|endpoint|env|var|last[_-]?used|changed|"
    r"created|updated|status|state|enabled|age)$")


def _env(m: re.Match[str]) -> bool:
    name, value = m.group(1), m.group(3)
    if len(name) > 40 or _NOT_A_VALUE.search(name):
        return False
    return _credible(value, quoted=bool(_STRONG_ENV.search(name)))


def _entropy(text: str) -> float:
    counts = collections.Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random(m: re.Match[str]) -> bool:
    """Looks machine-made: ≥ 4 bits/char with upper, lower and digits; not hex (a git SHA), a
    uuid or a file path."""
    text = m.group(1)
    if not _all_classes(text) or _HEX.fullmatch(text) or _PATH.match(text):
        return False
    if _PATH_TAIL.search(text) or "=" in text.rstrip("="):
        return False  # a path, `sha256=…` in a RECORD file
    if _CODE.fullmatch(text):  # ed25519.Ed25519PublicKey.from_public_bytes
        return False
    return _entropy(text) >= 4.0 and not _PLACEHOLDER.search(text)


_HEX = re.compile(r"[0-9a-fA-F-]+")
_PATH_TAIL = re.compile(r"/.*\.[A-Za-z]{1,5}$")


def _all_classes(text: str) -> bool:
    return all(c.search(text) for c in _CLASSES)


_CLASSES = (re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]"))


def _mixed(m: re.Match[str]) -> bool:
    """`sk-` and `hf_` tokens are random; `sk-learn-compatible-estimator` is not."""
    return _all_classes(m.group(0).split("-", 1)[-1])


def _url(m: re.Match[str]) -> bool:
    """A URL's password: not a placeholder (`user:pass@`, `:${PASSWORD}@`) nor a few characters
    of a URL-parsing example (`user:b@host`)."""
    value = m.group(1)
    return len(value) >= 4 and not value.isdigit() and not _PLACEHOLDER.search(value)


def _url_token(m: re.Match[str]) -> bool:
    text = m.group(1)
    return _entropy(text) >= 3.5 and any(c.isdigit() for c in text) \
        and not _PLACEHOLDER.search(text)


def _query_token(m: re.Match[str]) -> bool:
    """A value in a query string: machine-made (letters and digits, varied), not a word."""
    text = m.group(1)
    return _entropy(text) >= 3.0 and any(c.isdigit() for c in text) and \
        any(c.isalpha() for c in text) and not _PLACEHOLDER.search(text)


def _cli_password(m: re.Match[str]) -> bool:
    return not _PLACEHOLDER.search(m.group(1)) and not _FILE_NAME.search(m.group(1))


def _pem_body(m: re.Match[str]) -> bool:
    """A key block, not code that looks for its header line."""
    return re.search(r"[A-Za-z0-9+/]{40}", m.group(0)) is not None


def _has_digit(m: re.Match[str]) -> bool:
    return any(c.isdigit() for c in m.group(0))


# What a rule's match must also be to count (rules not listed: the match is enough).
_CHECKS: dict[str, Callable[[re.Match[str]], bool]] = {
    "private-key": _pem_body, "openai-key": _mixed, "slack-token": _has_digit,
    "huggingface-token": _mixed, "database-password": _url, "url-password": _url,
    "url-token": _url_token, "url-query-token": _query_token, "cli-password": _cli_password,
    "authorization-header": _url, "basic-auth": _url, "env-secret": _env,
    "password-assignment": _assigned, "secret-assignment": _assigned,
    "token-assignment": _assigned_token, "api-key-assignment": _assigned_token,
    "high-entropy": _random,
}


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
_ASSIGNED = ("env-secret", "high-entropy")


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
    _gate(rb"(?:mysql|mariadb|sshpass|login)(?=[^\n]{0,240}?(?:-p|--password))", True,
          ("cli-password",)),
    _gate(rb"[?&](?=" + _QUERY_NAMES.encode() + rb"=[^&#\s\"'`<>\\]{16})", True,
          ("url-query-token",)),
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
    return tuple((i, _rule(i)) for i, (name, _, _) in enumerate(_RULE_SOURCES)
                 if name in _KINDS[kind])


# --- Finding rule matches near a hit --------------------------------------------------------------

# How far before its gate's hit a rule's match may start (the hit is at a keyword or a token's
# prefix; a name, a URL scheme or `aws_` may come first). 12 when not listed.
_BACK = {"env-secret": 56, "aws-secret-key": 32, "aws-session-token": 20, "datadog-api-key": 24,
         "discord-webhook": 32, "database-password": 32, "url-password": 32, "url-token": 12,
         "age-secret-key": 16, "cli-password": 24}
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
        if after is not None and _SECRET_KEY.search(text):
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
        if key is not None and _SECRET_KEY.search(key):
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
        extra = {(len(_RULE_SOURCES) + i, m.start(rule.group), m.end(rule.group))
                 for i, rule in enumerate(self._extra) if everywhere
                 for m in rule.pattern.finditer(text) if self._counts(rule, m)}
        names = [name for name, _, _ in _RULE_SOURCES] + [rule.name for rule in self._extra]
        kept: list[Span] = []
        for priority, start, end in sorted(near | extra):
            if end > start and not _overlaps(kept, start, end):
                bisect.insort(kept, (start, end, names[priority]))
        return kept

    def _counts(self, rule: Rule, m: re.Match[str]) -> bool:
        secret = m.group(rule.group)
        if any(a.fullmatch(secret) or a.fullmatch(m.group(0)) for a in self._allow):
            return False
        if _MARKER.search(m.group(0)):  # already redacted: `https://[REDACTED:url-token]@host`
            return False
        if rule.name != "private-key" and _FILLER.search(secret, 0, 64):
            return False
        check = _CHECKS.get(rule.name)
        return check is None or check(m)

    def _secret_field(self, key: str, value: str) -> bool:
        if not _SECRET_KEY.search(key) or _PAGING_KEY.search(key) or len(value) < 4:
            return False
        if any(c.isspace() for c in value) or _FILLER.search(value):
            return False
        return _credible(value, quoted=True) and not any(a.fullmatch(value) for a in self._allow)


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
