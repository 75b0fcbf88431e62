"""The secret rules: what each kind of secret looks like, and what a match must also be to count.

One `Kind` per secret kind in `KINDS`, in priority order (where two matches overlap, the earlier
shape wins), with all it takes: its shapes (pattern, the group that is the secret), what a match
must also be to count (not a placeholder, not code, random enough) and how far before its
gate's hit a match may start. The engine that finds where to look and applies these is
redact.py; every kind has a gate there (gates.py), and every repeat here is bounded
(tests/test_redact_linear.py), so no rule can make redaction slower than linear.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

Check = Callable[[re.Match[str]], bool]


@dataclass(frozen=True)
class Kind:
    """One kind of secret and all it takes to find it: its shapes, (pattern, the group that is
    the secret), in priority order; what a match must also be to count (None: the match is
    enough); and how far before its gate's hit (a keyword or a token's prefix; a name, a URL
    scheme or `aws_` may come first) a match may start. Its gate is in gates.py."""

    name: str
    shapes: tuple[tuple[str, int], ...]
    check: Check | None = None
    back: int = 12


@dataclass(frozen=True)
class Rule:
    """One compiled shape of a kind, as the engine applies it."""

    name: str
    pattern: re.Pattern[str]
    group: int = 0  # the group that is the secret (0 = the whole match)
    check: Check | None = None
    back: int = 12


def extra_rule(name: str, source: str) -> Rule:
    """A rule from the config; one named like a built-in kind is checked as that kind."""
    kind = _BY_NAME.get(name)
    return Rule(name, re.compile(source), 0, kind.check if kind else None,
                kind.back if kind else 12)


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
QUERY_NAMES = (r"(?:access_token|auth_token|api_key|apikey|token|key|secret|client_secret"
                r"|password|passwd|private_token|sig|signature|x-amz-signature|x-goog-signature)")


def _assignment(words: str) -> tuple[str, int]:
    return rf"(?i)(?:{words})({_NAME_END}){_SEP}{_VALUE}", 3



JSON_FIELD = "json-secret-field"  # a JSON value whose key names a secret: {"password": "..."}
SECRET_KEY = re.compile(r"(?i)(?:pass(?:word|wd)|pwd|secret|token|credential|apikey"
                         r"|(?:api|access|private|auth|account|client)[_-]?key)s?$")
_PAGING_WORDS = r"(?i)(?:next|prev|page|continuation|pagination|starting|sync|cursor|marker)[_-]?"
_PAGING = re.compile(_PAGING_WORDS + "$")  # NextToken, page_token: a cursor, not a credential
PAGING_KEY = re.compile(_PAGING_WORDS + "tokens?$")


def builtin_rules() -> tuple[Rule, ...]:
    return tuple(compiled(i) for i in range(len(RULE_SOURCES)))


def rule_names() -> tuple[str, ...]:
    """Every name a marker or a finding can carry, besides the extra rules'."""
    return tuple(dict.fromkeys(name for name, _, _ in RULE_SOURCES)) + (JSON_FIELD,)


@cache
def compiled(index: int) -> Rule:
    """Compiled on first use: a hook whose new bytes pass no gate never pays for it, and one
    whose bytes pass a gate pays for the few rules that gate guards."""
    name, source, group = RULE_SOURCES[index]
    kind = _KIND_OF[index]
    return Rule(name, re.compile(source), group, kind.check, kind.back)


# --- What a match must also be to count ---------------------------------------------------------

FILLER = re.compile(r"(.)\1{5}|(?i:x{4})")  # ghp_xxxxxxxx…, sk-000000…
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
MARKER = re.compile(r"\[REDACTED:[^\]]*\]")


def credible(value: str, quoted: bool) -> bool:
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
    return not _NOT_A_VALUE.search(m.group(1)) and credible(m.group(3), _closed(m))


def _assigned_token(m: re.Match[str]) -> bool:
    """A token or API key is machine-made: never a plain word, quoted or not (`Token: "bold"`
    is a style), at least 20 characters (`token: OAuth2Token`, 16-hex digests are not), not a
    uuid (AWS `ClientToken`s and other idempotency tokens are) nor a page cursor (`NextToken`)."""
    value, before = m.group(3), m.string[max(0, m.start() - 16):m.start()]
    if len(value) < 20 or _UUID_RE.fullmatch(value) or _PAGING.search(before):
        return False
    return not _NOT_A_VALUE.search(m.group(1)) and credible(value, quoted=False)


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
    return credible(value, quoted=bool(_STRONG_ENV.search(name)))


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


# --- The kinds, in priority order: where two matches overlap the earlier shape wins ----------

KINDS: tuple[Kind, ...] = (
    Kind("private-key", ((rf"{_PEM_HEAD}{_PEM_BODY}(?:{_PEM_END})?", 0),), check=_pem_body),
    Kind("aws-access-key", ((rf"{_B}(?:AKIA|ASIA)[0-9A-Z]{{16}}\b", 0),)),
    Kind("aws-secret-key", (
        (rf"(?i)(?:aws[a-z0-9_.-]{{0,20}}?secret[a-z0-9_.-]{{0,20}}"
         rf"|secret_?access_?key){_SEP}{_Q}"
         r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])", 1),
    ), back=32),
    Kind("aws-session-token", (
        (rf"(?i)(?:aws_session_token|aws_security_token|sessiontoken){_SEP}{_Q}"
         r"([A-Za-z0-9/+=]{100,2048})", 1),
    ), back=20),
    Kind("github-token", ((rf"{_B}gh[pousr]_[A-Za-z0-9]{{36,251}}\b", 0),)),
    Kind("github-pat", ((rf"{_B}github_pat_[A-Za-z0-9]{{16}}[A-Za-z0-9_]{{30,255}}", 0),)),
    Kind("gitlab-token", ((rf"{_B}gl(?:pat|ptt|rt)-[A-Za-z0-9_-]{{20,255}}", 0),)),
    Kind("anthropic-key", ((rf"{_B}sk-ant-[A-Za-z0-9_-]{{20,255}}", 0),)),
    Kind("openai-key", (
        (rf"{_B}sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{{20,255}}", 0),
    ), check=_mixed),
    Kind("slack-token", ((rf"{_B}xox[abposr]-[A-Za-z0-9-]{{10,255}}", 0),), check=_has_digit),
    Kind("slack-app-token", ((rf"{_B}xapp-\d-[A-Za-z0-9-]{{20,255}}", 0),)),
    Kind("slack-webhook", (
        (r"hooks\.slack\.com/(?:services|workflows|triggers)/"
         r"([A-Za-z0-9_/-]{20,255})", 1),
    )),
    Kind("discord-webhook", (
        (r"discord(?:app)?\.com/api/webhooks/\d{1,20}/([A-Za-z0-9_-]{40,128})", 1),
    ), back=32),
    Kind("stripe-key", ((rf"{_B}[sr]k_(?:live|test)_[A-Za-z0-9]{{16,255}}", 0),)),
    Kind("stripe-webhook-secret", ((rf"{_B}whsec_[A-Za-z0-9]{{24,255}}", 0),)),
    Kind("google-api-key", ((rf"{_B}AIza[0-9A-Za-z_-]{{35}}(?![0-9A-Za-z_-])", 0),)),
    Kind("google-client-secret", ((rf"{_B}GOCSPX-[A-Za-z0-9_-]{{28}}", 0),)),
    Kind("npm-token", ((rf"{_B}npm_[A-Za-z0-9]{{36}}(?![A-Za-z0-9])", 0),)),
    Kind("pypi-token", ((rf"{_B}pypi-[A-Za-z0-9_-]{{50,512}}", 0),)),
    Kind("huggingface-token", ((rf"{_B}hf_[A-Za-z0-9]{{30,40}}(?![A-Za-z0-9])", 0),),
         check=_mixed),
    Kind("sendgrid-key", (
        (rf"{_B}SG\.[A-Za-z0-9_-]{{22}}\.[A-Za-z0-9_-]{{43}}(?![A-Za-z0-9_-])", 0),
    )),
    Kind("digitalocean-token", ((rf"{_B}do[por]_v1_[a-f0-9]{{64}}\b", 0),)),
    Kind("shopify-token", ((rf"{_B}shp(?:at|ca|pa|ss)_[a-fA-F0-9]{{32}}\b", 0),)),
    Kind("jwt", (
        (rf"{_B}eyJ[A-Za-z0-9_-]{{8,1024}}\.eyJ[A-Za-z0-9_-]{{8,8192}}"
         rf"\.[A-Za-z0-9_-]{{0,2048}}", 0),
    )),
    Kind("twilio-key", ((r"(?i)twilio[\s\S]{0,80}?\b((?:SK|AC)[0-9a-f]{32})\b", 1),)),
    Kind("azure-storage-key", ((r"(?i)AccountKey=([A-Za-z0-9+/]{20,256}={0,2})", 1),)),
    Kind("heroku-api-key", (
        (rf"(?i)heroku[a-z0-9_ .-]{{0,30}}?{_SEP}{_Q}({_UUID})", 1),
        (rf"{_B}HRKU-[A-Za-z0-9_-]{{60}}", 0),
    )),
    Kind("telegram-bot-token", ((rf"{_B}\d{{8,10}}:AA[A-Za-z0-9_-]{{33}}(?![A-Za-z0-9_-])", 0),)),
    Kind("age-secret-key", ((rf"{_B}AGE-SECRET-KEY-1[0-9A-Z]{{58}}(?![0-9A-Z])", 0),), back=16),
    Kind("mailgun-key", ((rf"{_B}key-[0-9a-f]{{32}}(?![0-9A-Za-z])", 0),)),
    Kind("postman-key", ((rf"{_B}PMAK-[a-f0-9]{{24}}-[a-f0-9]{{34}}(?![a-f0-9])", 0),)),
    Kind("vault-token", ((rf"{_B}hv[sb]\.[A-Za-z0-9_-]{{24,255}}", 0),)),
    Kind("linear-api-key", ((rf"{_B}lin_api_[A-Za-z0-9]{{40}}(?![A-Za-z0-9])", 0),)),
    # A password given on a command line: `mysql -pPASS` (no space: `-p PASS` asks for it and
    # PASS is the database), `sshpass -p PASS`, `docker login -p PASS`, `az login -p PASS`.
    Kind("cli-password", (
        (rf"{_B}(?i:(?:mysql(?:dump|admin|sh|import|check)?|mariadb(?:-dump)?)\b)"
         rf"{_CLI_ARGS}[ \t]-p{_CLI_VALUE}", 1),
        (rf"{_B}sshpass[ \t]+-p[ \t]*{_CLI_VALUE}", 1),
        (rf"{_B}(?:docker|podman|nerdctl|buildah|skopeo|helm(?:[ \t]+registry)?|oras"
         rf"|az)[ \t]+login\b{_CLI_ARGS}[ \t](?:-p|--password)(?:=|[ \t]+){_CLI_VALUE}", 1),
    ), check=_cli_password, back=24),
    Kind("datadog-api-key", (
        (rf"(?i)(?:datadog|dd)[_-]?(?:api|app|application)[_-]?key{_SEP}{_Q}"
         r"([a-f0-9]{32,40})(?![a-f0-9])", 1),
    ), back=24),
    Kind("database-password", (
        (rf"(?i){_B}(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?"
         rf"|amqps?|mssql|sqlserver|cockroachdb|clickhouse)://{_USERINFO}", 1),
    ), check=_url, back=32),
    Kind("url-password", (
        (rf"(?i){_B}[a-z][a-z0-9+.-]{{1,30}}://{_USERINFO}", 1),
    ), check=_url, back=32),
    Kind("url-token", ((rf"(?i){_B}https?://([A-Za-z0-9_-]{{20,128}})@", 1),), check=_url_token),
    Kind("url-query-token", (
        (rf"(?i)[?&]{QUERY_NAMES}=([^&#\s\"'`<>\\]{{16,512}})", 1),
    ), check=_query_token, back=24),
    Kind("authorization-header", (
        (rf"(?i)authorization{_SEP}{_Q}(?:bearer|token)[ \t]+"
         r"([A-Za-z0-9._~+/-]{8,2048}={0,2})", 1),
    ), check=_url),
    Kind("basic-auth", (
        (rf"(?i)authorization{_SEP}{_Q}basic[ \t]+([A-Za-z0-9+/]{{8,1024}}={{0,2}})", 1),
    ), check=_url),
    Kind("env-secret", (
        (rf"(?:(?<![A-Za-z0-9_$])|(?<=\\[nrt]))(?:export[ \t]+)?"
         rf"((?:[A-Z0-9]+_)*(?:[A-Z0-9]*(?:{_ENV_KEYWORDS})"
         r"[A-Z0-9]*|KEY)(?:_[A-Z0-9]+)*)=([\"']?)([^\s\"'`\\]{3,256})", 3),
    ), check=_env, back=56),
    Kind("password-assignment", (_assignment(r"pass(?:word|wd)|pwd"),), check=_assigned),
    Kind("secret-assignment", (_assignment(r"secret|credential"),), check=_assigned),
    Kind("token-assignment", (_assignment(r"token"),), check=_assigned_token),
    Kind("api-key-assignment", (
        _assignment(r"(?:api|access|private|auth|account|client)[_.-]?key"),
    ), check=_assigned_token),
    Kind("high-entropy", (
        (r"(?i)(?:key|secret|token|passw(?:or)?d|pwd|credential)s?"
         r"""(?:[ "'`:=>(\[{,\\]{1,6}|[ ]+is:?[ ]+)([A-Za-z0-9+/_=.-]{20,256})"""
         r"(?![A-Za-z0-9+/_=.-])", 1),
    ), check=_random),
)
# The engine's view: every shape numbered in priority order, and the kind each belongs to.
RULE_SOURCES: tuple[tuple[str, str, int], ...] = tuple(
    (kind.name, pattern, group) for kind in KINDS for pattern, group in kind.shapes)
_KIND_OF = tuple(kind for kind in KINDS for _ in kind.shapes)
_BY_NAME = {kind.name: kind for kind in KINDS}
