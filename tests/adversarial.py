"""Inputs that attack the redactor's running time, for tests/test_redact_linear.py and
bench/bench_redact.py: every one is built to be the worst case for some rule or for the engine
around the rules (many gate hits in one string, long runs a rule's repeat could backtrack over,
escapes nested many levels, long lines with no newline).

Each case is a unit of text repeated to the size asked for, then placed in a transcript record
(a JSON string) or left as plain text (a tool-results file), so sizes are exact and comparable.
"""

from __future__ import annotations

import json
from collections.abc import Callable

MIB = 1 << 20
B64 = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj"

# name -> the unit repeated
UNITS: dict[str, str] = {
    "pem-headers": "src/keys.py:12:    if line.startswith('-----BEGIN PRIVATE KEY-----'):\n",
    "pem-headers-bodies": f"-----BEGIN RSA PRIVATE KEY-----\n{B64}\n",
    "pem-header-base64-run": "-----BEGIN PRIVATE KEY-----" + B64 * 40,
    "base64-run": B64,
    "password-assignments": "password=Aa1 ",
    "token-colons": "token: token: ",
    "keys-is": "key is key is ",
    "sk-run": "sk-ant-sk-proj-",
    "ghp-run": "ghp_ghp_ghp_ghp_",
    "jwt-run": "eyJhbGciOi.eyJ",
    "url-no-at": "https://user:pa",
    "url-at": "postgres://a:b@",
    "authorization": "Authorization: Bearer Authorization: Basic ",
    "env-lines": "export DB_PASSWORD_X_Y_Z=",
    "nested-escapes": '\\\\\\"password\\\\\\": \\\\\\"',
    "aws": "AKIAAKIAAKIAAKIA",
    "twilio": "twilio SK twilio ",
    "telegram": "123456789:AA123456789:AA",
    "cli-passwords": "mysql -u root -p mysql login -p sshpass -p ",
    "url-query": "?access_token=&token=&key=",
    "heroku": "heroku_api_key=heroku ",
}


def plain(unit: str, size: int = MIB) -> bytes:
    """`unit` repeated to `size` bytes of plain text (a tool-results file)."""
    raw = unit.encode()
    return (raw * (size // len(raw) + 1))[:size]


def record(unit: str, size: int = MIB) -> bytes:
    """One transcript record whose single string holds `unit` repeated: `size` bytes of line."""
    head = b'{"type":"user","toolUseResult":{"stdout":'
    text = json.dumps(plain(unit, size).decode("utf-8", "replace"))
    encoded = text.encode()[: size - len(head) - 3]
    while True:  # cut at a place that leaves a valid JSON string
        try:
            json.loads(encoded + b'"')
            break
        except ValueError:
            encoded = encoded[:-1]
    return head + encoded + b'"}}\n'


SHAPES: dict[str, Callable[[str, int], bytes]] = {"json": record, "text": plain}


def benign(corpus: bytes, size: int = MIB) -> bytes:
    """Real transcript records repeated to `size`, cut at a line end."""
    data = (corpus * (size // len(corpus) + 1))[:size]
    return data[: data.rfind(b"\n") + 1]
