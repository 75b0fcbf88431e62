"""Redaction: secrets inside realistic transcript records, placeholders left alone, the real
corpus left (nearly) untouched, and the bytes of everything else kept.

Secrets are assembled at run time from a seeded generator, so this file holds no string that a
secret scanner (or GitHub push protection) would take for a real credential.
"""

from __future__ import annotations

import base64
import collections
import json
import random
import string
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cmem_git.secrets.redact import JSON_FIELD, Finding, Redactor, builtin_rules, marker, rule_names
from cmem_git.secrets.secret_rules import KINDS, extra_rule
from tests.conftest import corpus_transcripts

_RANDOM = random.Random(6)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"


def rnd(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_RANDOM.choice(alphabet) for _ in range(n))


def mixed(n: int) -> str:
    """Random letters and digits with at least one of each class, like real tokens."""
    return "Aa1" + rnd(n - 3)


def p(*parts: str) -> str:
    return "".join(parts)


# --- Records shaped like Claude Code's (compact JSON, non-ASCII kept) ---------------------------

SESSION = "d6e0bada-1959-4eec-a9d2-0bfade768d8f"


def _base(kind: str) -> dict[str, Any]:
    return {"parentUuid": str(uuid.UUID(int=_RANDOM.getrandbits(128))), "isSidechain": False,
            "userType": "external", "cwd": "/home/dev/app", "sessionId": SESSION,
            "version": "2.1.38", "gitBranch": "main", "type": kind,
            "uuid": str(uuid.UUID(int=_RANDOM.getrandbits(128))),
            "timestamp": "2026-02-10T22:57:54.684Z"}


def prompt(text: str) -> dict[str, Any]:
    return _base("user") | {"message": {"role": "user", "content": text}}


def assistant_text(text: str) -> dict[str, Any]:
    return _base("assistant") | {"message": {
        "model": "claude-opus-4-6", "id": "msg_0167kgZUrgcT7dg7uZK7hVSg", "type": "message",
        "role": "assistant", "content": [{"type": "text", "text": text}],
        "usage": {"input_tokens": 3, "cache_creation_input_tokens": 8490, "output_tokens": 12}}}


def bash_call(command: str) -> dict[str, Any]:
    return _base("assistant") | {"message": {
        "model": "claude-opus-4-6", "id": "msg_01NUXWeNeduGBJVib8gyo9kz", "type": "message",
        "role": "assistant", "content": [{
            "type": "tool_use", "id": "toolu_018GZVh9ymkrdx1TnR8reg5Y", "name": "Bash",
            "input": {"command": command, "description": "Run it"}}]}}


def bash_result(stdout: str) -> dict[str, Any]:
    return _base("user") | {
        "message": {"role": "user", "content": [{"tool_use_id": "toolu_01FZ9TWbiy1LPzHm1AAyUazo",
                                                 "type": "tool_result", "content": stdout,
                                                 "is_error": False}]},
        "toolUseResult": {"stdout": stdout, "stderr": "", "interrupted": False, "isImage": False}}


def read_result(path: str, content: str) -> dict[str, Any]:
    numbered = "\n".join(f"{i:6d}\u2192{line}" for i, line in enumerate(content.split("\n"), 1))
    return _base("user") | {
        "message": {"role": "user", "content": [{"tool_use_id": "toolu_01VpPeBD2ziigLLpybShAGoU",
                                                 "type": "tool_result", "content": numbered}]},
        "toolUseResult": {"type": "text", "file": {"filePath": path, "content": content,
                                                   "numLines": content.count("\n") + 1,
                                                   "startLine": 1, "totalLines": 40}}}


def mcp_result(fields: dict[str, Any]) -> dict[str, Any]:
    return _base("user") | {
        "message": {"role": "user", "content": [{"tool_use_id": "toolu_01JJds55jYrYwd9TktNGndRY",
                                                 "type": "tool_result",
                                                 "content": [{"type": "text", "text": "ok"}]}]},
        "toolUseResult": {"structuredContent": {"result": {"items": [fields]}}}}


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# --- The secrets ----------------------------------------------------------------------------------

AKIA = p("AK", "IA", rnd(16, string.ascii_uppercase + string.digits))
ASIA = p("AS", "IA", rnd(16, string.ascii_uppercase + string.digits))
AWS_SECRET = rnd(40, B64)
AWS_SESSION = p("FwoGZXIvYXdzE", rnd(140, B64))
GHP = p("gh", "p_", mixed(36))
GITHUB_PAT = p("github", "_pat_", mixed(22), "_", mixed(59))
GLPAT = p("gl", "pat-", mixed(20))
ANTHROPIC = p("sk-", "ant-api03-", mixed(93), "AA")
OPENAI = p("sk-", "proj-", mixed(48))
SLACK_BOT = p("xo", "xb-", rnd(12, string.digits), "-", rnd(13, string.digits), "-", mixed(24))
SLACK_APP = p("xa", "pp-1-A", rnd(10, string.digits), "-", rnd(13, string.digits), "-",
              rnd(64, HEX))
SLACK_HOOK = p("T", rnd(8, string.ascii_uppercase + string.digits), "/B",
               rnd(8, string.ascii_uppercase + string.digits), "/", mixed(24))
DISCORD_HOOK = mixed(68)
STRIPE = p("sk", "_live_", mixed(24))
WHSEC = p("wh", "sec_", mixed(32))
GOOGLE = p("AI", "za", mixed(35))
GOCSPX = p("GOC", "SPX-", mixed(28))
NPM = p("np", "m_", mixed(36))
PYPI = p("py", "pi-AgEIcHlwaS5vcmc", mixed(70))
HF = p("h", "f_", mixed(34))
SENDGRID = p("S", "G.", mixed(22), ".", mixed(43))
DIGITALOCEAN = p("do", "p_v1_", rnd(64, HEX))
SHOPIFY = p("sh", "pat_", rnd(32, HEX))
JWT = p("ey", "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ey", "JzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik",
        "pvaG4ifQ.", rnd(43, ALNUM + "-_"))
PEM_BODY = "\n".join(rnd(64, B64) for _ in range(12))
PRIVATE_KEY = p("-----BEGIN RSA ", "PRIVATE KEY-----\n", PEM_BODY, "\n-----END RSA ",
                "PRIVATE KEY-----")
TWILIO = p("SK", rnd(32, HEX))
AZURE = p(rnd(86, B64), "==")
HEROKU = str(uuid.UUID(int=_RANDOM.getrandbits(128)))
DATADOG = rnd(32, HEX)
DB_PASSWORD = p("S3cr3t", rnd(10), "!x")
URL_PASSWORD = p("Pa55", rnd(12))
URL_TOKEN = mixed(40)
BEARER = p(mixed(30), ".", mixed(20))
BASIC = base64.b64encode(p("deploy:", mixed(16)).encode()).decode()
SESSION_SECRET = "correcthorsebatterystaple"
YAML_PASSWORD = p("Tr0ub4dor&3", rnd(4))
CLIENT_SECRET = rnd(32, HEX)
NESTED_TOKEN = mixed(32)
API_KEY = rnd(40, HEX)
SIGNING_KEY = mixed(32)
FIELD_PASSWORD = p("Wf8#kq2!Lp", rnd(6))
TELEGRAM = p(rnd(10, string.digits), ":AA", mixed(33))
AGE_KEY = p("AGE-SECRET-KEY-1", rnd(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"))
MAILGUN = p("key-", rnd(32, HEX))
POSTMAN = p("PM", "AK-", rnd(24, HEX), "-", rnd(34, HEX))
VAULT = p("hv", "s.", mixed(90))
LINEAR = p("lin", "_api_", mixed(40))
CLI_PASSWORD = p("Qz7", mixed(9))
QUERY_TOKEN = mixed(32)

# (rule, secret, record holding it)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("aws-access-key", AKIA, bash_result(p("AccessKeyId: ", AKIA, "\nRegion: eu-west-1\n"))),
    ("aws-secret-key", AWS_SECRET, read_result("/home/dev/.aws/credentials", p(
        "[default]\naws_access_key_id = ", AKIA, "\naws_secret_access_key = ", AWS_SECRET))),
    ("aws-session-token", AWS_SESSION, bash_result(json.dumps({"Credentials": {
        "AccessKeyId": ASIA, "SecretAccessKey": AWS_SECRET, "SessionToken": AWS_SESSION,
        "Expiration": "2026-02-11T10:00:00Z"}}, indent=4))),
    ("github-token", GHP, prompt(p("use this token ", GHP, " to push the branch, thanks"))),
    ("github-pat", GITHUB_PAT, bash_result(p(
        "origin\thttps://x-access:", GITHUB_PAT, "@github.com/acme/app.git (fetch)\n"))),
    ("gitlab-token", GLPAT, assistant_text(p("I set the CI variable GITLAB_TOKEN to `", GLPAT,
                                             "` — rotate it once the pipeline passes."))),
    ("anthropic-key", ANTHROPIC, bash_call(p("ANTHROPIC_API_KEY=", ANTHROPIC, " claude -p hi"))),
    ("openai-key", OPENAI, read_result("/home/dev/app/.env", p(
        "# OpenAI\nOPENAI_API_KEY=", OPENAI, "\nOPENAI_MODEL=gpt-4o\n"))),
    ("slack-token", SLACK_BOT, read_result("/home/dev/app/bot.py", p(
        "from slack_sdk import WebClient\n\nclient = WebClient(token=\"", SLACK_BOT, "\")\n"))),
    ("slack-app-token", SLACK_APP, prompt(p("my socket mode token is ", SLACK_APP))),
    ("slack-webhook", SLACK_HOOK, bash_call(p(
        "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deployed\"}' "
        "https://hooks.slack.com/services/", SLACK_HOOK))),
    ("discord-webhook", DISCORD_HOOK, assistant_text(p(
        "Posting to https://discord.com/api/webhooks/123456789012345678/", DISCORD_HOOK))),
    ("stripe-key", STRIPE, read_result("/home/dev/app/billing.py", p(
        "import stripe\n\nstripe.api_key = \"", STRIPE, "\"\n"))),
    ("stripe-webhook-secret", WHSEC, bash_result(p(
        "> Ready! Your webhook signing secret is ", WHSEC, " (^C to quit)\n"))),
    ("google-api-key", GOOGLE, assistant_text(p(
        "Request: https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key=", GOOGLE))),
    ("google-client-secret", GOCSPX, read_result("/home/dev/app/client_secret.json", json.dumps(
        {"installed": {"client_id": "1234-abc.apps.googleusercontent.com",
                       "client_secret": GOCSPX}}))),
    ("npm-token", NPM, read_result("/home/dev/.npmrc", p(
        "//registry.npmjs.org/:_authToken=", NPM, "\n"))),
    ("pypi-token", PYPI, read_result("/home/dev/.pypirc", p(
        "[pypi]\nusername = __token__\npassword = ", PYPI, "\n"))),
    ("huggingface-token", HF, bash_call(p("huggingface-cli login --token ", HF))),
    ("sendgrid-key", SENDGRID, bash_call(p("export SENDGRID_API_KEY='", SENDGRID, "'"))),
    ("digitalocean-token", DIGITALOCEAN, bash_call(p("doctl auth init -t ", DIGITALOCEAN))),
    ("shopify-token", SHOPIFY, bash_call(p(
        "curl -H 'X-Shopify-Access-Token: ", SHOPIFY, "' https://shop.example.com/admin/api"))),
    ("jwt", JWT, bash_call(p("curl -H \"Authorization: Bearer ", JWT, "\" https://api.local/me"))),
    ("private-key", PRIVATE_KEY, read_result("/home/dev/.ssh/id_rsa", PRIVATE_KEY + "\n")),
    ("twilio-key", TWILIO, prompt(p("the Twilio API key SID is ", TWILIO, ", the secret is in "
                                    "1password"))),
    ("azure-storage-key", AZURE, read_result("/home/dev/app/appsettings.json", json.dumps(
        {"Storage": p("DefaultEndpointsProtocol=https;AccountName=acmeprod;AccountKey=", AZURE,
                      ";EndpointSuffix=core.windows.net")}, indent=2))),
    ("heroku-api-key", HEROKU, bash_call(p("heroku config:set HEROKU_API_KEY=", HEROKU))),
    ("datadog-api-key", DATADOG, read_result("/etc/datadog-agent/datadog.yaml", p(
        "site: datadoghq.eu\ndd_api_key: ", DATADOG, "\n"))),
    ("database-password", DB_PASSWORD, read_result("/home/dev/app/.env", p(
        "DATABASE_URL=postgres://app:", DB_PASSWORD, "@db.internal:5432/app\n"))),
    ("url-password", URL_PASSWORD, assistant_text(p(
        "Cloning from https://deploy:", URL_PASSWORD, "@git.internal.corp/acme/app.git now."))),
    ("url-token", URL_TOKEN, bash_call(p("git clone https://", URL_TOKEN,
                                          "@github.com/acme/app.git"))),
    ("authorization-header", BEARER, bash_result(p(
        "> GET /v1/me HTTP/1.1\n> Authorization: Bearer ", BEARER, "\n< HTTP/1.1 200 OK\n"))),
    ("basic-auth", BASIC, bash_call(p(
        "curl -H 'Authorization: Basic ", BASIC, "' https://registry.internal/v2/"))),
    ("env-secret", SESSION_SECRET, read_result("/home/dev/app/.env", p(
        "PORT=4000\nSESSION_SECRET=", SESSION_SECRET, "\nLOG_LEVEL=debug\n"))),
    ("password-assignment", YAML_PASSWORD, read_result("/home/dev/app/docker-compose.yml", p(
        "services:\n  db:\n    image: postgres:16\n    environment:\n      user: app\n"
        "      password: ", YAML_PASSWORD, "\n"))),
    ("secret-assignment", CLIENT_SECRET, assistant_text(p(
        "Then in settings.py:\n\n```python\nclient_secret = \"", CLIENT_SECRET, "\"\n```"))),
    ("token-assignment", NESTED_TOKEN, bash_result(json.dumps(
        {"registry": "https://npm.internal", "auth": {"token": NESTED_TOKEN}}, indent=2))),
    ("api-key-assignment", API_KEY, read_result("/home/dev/app/config.yml", p(
        "mailer:\n  provider: postmark\n  api_key: ", API_KEY, "\n"))),
    ("high-entropy", SIGNING_KEY, prompt(p("here is the signing key ", SIGNING_KEY,
                                           " — please wire it into the webhook handler"))),
    ("json-secret-field", FIELD_PASSWORD,
     mcp_result({"user": "ci-bot", "password": FIELD_PASSWORD})),
    ("telegram-bot-token", TELEGRAM, read_result("/home/dev/bot/.env", p(
        "TELEGRAM_BOT=", TELEGRAM, "\nCHAT=42\n"))),
    ("age-secret-key", AGE_KEY, read_result("/home/dev/.config/sops/age/keys.txt", p(
        "# created: 2026-01-02T10:00:00Z\n# public key: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8"
        "zmrj2kg5sfn9aqmcac8p\n", AGE_KEY, "\n"))),
    ("mailgun-key", MAILGUN, bash_call(p("curl -s --user 'api:", MAILGUN,
                                         "' https://api.mailgun.net/v3/mg.example.com/messages"))),
    ("postman-key", POSTMAN, prompt(p("my postman key ", POSTMAN, " for the collection run"))),
    ("vault-token", VAULT, bash_result(p("Key    Value\n---    -----\ntoken  ", VAULT, "\n"))),
    ("linear-api-key", LINEAR, assistant_text(p("I exported `", LINEAR, "` for the Linear MCP."))),
    ("cli-password", CLI_PASSWORD, bash_call(p("mysql -h db -u root -p", CLI_PASSWORD,
                                               " shop < dump.sql"))),
    ("url-query-token", QUERY_TOKEN, bash_call(p(
        "curl 'https://api.example.net/v1/items?access_token=", QUERY_TOKEN, "&page=2'"))),
]
# Extra secrets that ride along in a case's record (the aws sts output carries three).
ALSO = {"aws-session-token": [("aws-access-key", ASIA), ("aws-secret-key", AWS_SECRET)],
        "aws-secret-key": [("aws-access-key", AKIA)]}

# Records a person reads as harmless: placeholders, code, identifiers, prose.
CLEAN = [
    prompt("api_key = \"your-api-key-here\" and OPENAI_API_KEY=sk-your-key-goes-here"),
    bash_call("export GITHUB_TOKEN=${GITHUB_TOKEN} && gh auth status"),
    assistant_text("Set `token: <token>` and `password: ********` in the config, then "
                   "`Authorization: Bearer $TOKEN` or `Authorization: Bearer <token>`."),
    read_result("/app/.env.example", "SECRET_KEY=changeme\nDB_PASSWORD=xxx\nAPI_TOKEN=\n"
                                     "MAX_TOKENS=4096\nTOKENIZERS_PARALLELISM=false\n"),
    read_result("/app/settings.py", "password: str\napi_key: Optional[str] = None\n"
                                    "secret = os.environ[\"SECRET\"]\ntoken = get_token()\n"
                                    "tokenizer = AutoTokenizer.from_pretrained(\"gpt2\")\n"
                                    "items.sort(key=lambda x: x[0])\nthread_key = tool_id\n"),
    assistant_text("The token is invalid; the session key is 4d5611e5-241a-462a-8d15-5122611a9569 "
                   "and the commit key 8cc42b0e5f1d2c3b4a5968776655443322110000 is a git SHA."),
    bash_result("postgres://user:password@localhost:5432/db and https://user:${PASS}@host/x\n"
                "total_tokens: 33894\ntool_uses: 9\n"),
    prompt("npm i @types/node && cat /home/u/.ssh/id_rsa.pub; the key insight is caching"),
    bash_call("echo ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | gh auth login --with-token"),
    read_result("/app/pem.py", "if text.startswith(\"-----BEGIN PRIVATE KEY-----\"):\n"
                               "    return parse(text)\n"),
    _base("user") | {"message": {"role": "user", "content": [{"type": "image", "source": {
        "type": "base64", "media_type": "image/png", "data": rnd(400, B64)}}]}},
    assistant_text("Use `const csrfToken = document.querySelector(\"meta\")?.content` and "
                   "`password_policy: strong`; the secretary said the credentials were rotated."),
    # Near misses of the command-line, query and token shapes.
    bash_call("mysql -u root -p shop < dump.sql && mysqldump -P 3306 -p shop > out.sql"),
    bash_call("docker login --password-stdin -u ci registry.io < token.txt && az login "
              "--service-principal -u $APP_ID -p $APP_SECRET && sshpass -p \"$SSHPASS\" ssh h"),
    assistant_text("See the key-value store at key-0123 and keys like key-abcdef; the "
                   "bot id is 123456789:AB and `hvs.` prefixes Vault service tokens."),
    bash_result("GET /search?q=the+quick+brown+fox&page=2&token=&key=id HTTP/1.1\n"
                "GET /v1/items?sort=created_at&api_key=YOUR_API_KEY_HERE_PLEASE\n"),
    prompt("lin_api_ and AGE-SECRET-KEY-1 and PMAK- are prefixes I read about; -----END "
           "PRIVATE KEY----- alone is not a key"),
]


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def pieces(secret: str) -> list[str]:
    """What must be gone: the secret, and each line of a multi-line one (Read output puts line
    numbers between them)."""
    return [secret] + [part for part in secret.split("\n") if len(part) > 16]


def corpus() -> tuple[bytes, list[tuple[str, str, int]], collections.Counter[str]]:
    """The JSONL bytes (secret records between clean ones), (rule, secret, line) expected, and
    how many string values each rule should fire in."""
    data, expected, counts = b"", [], collections.Counter[str]()
    clean = iter(CLEAN * 4)
    for rule, secret, record in CASES:
        data += line(next(clean))
        for name, value in [(rule, secret)] + ALSO.get(rule, []):
            expected.append((name, value, data.count(b"\n")))
            counts[name] += sum(pieces(value)[-1] in s for s in strings(record))
        data += line(record)
    return data + line(CLEAN[0]), expected, counts


# --- Every kind of secret, in place ---------------------------------------------------------------

def test_the_corpus_has_every_kind_of_secret() -> None:
    kinds = [rule for rule, _, _ in CASES]
    assert len(set(kinds)) == len(kinds) >= 30
    assert set(kinds) == set(rule_names()) == {r.name for r in builtin_rules()} | {JSON_FIELD}


def test_every_secret_is_redacted_with_its_rule() -> None:
    data, expected, counts = corpus()
    out, redacted = Redactor().redact(data)
    for rule, secret, index in expected:
        assert not any(part.encode() in out for part in pieces(secret)), rule
        assert marker(rule) in out.split(b"\n")[index].decode(), rule
    assert redacted == counts


def test_lines_stay_json_and_untouched_lines_keep_their_bytes() -> None:
    data, expected, _ = corpus()
    out, _ = Redactor().redact(data)
    before, after = data.split(b"\n"), out.split(b"\n")
    assert len(before) == len(after)
    secret_lines = {index for _, _, index in expected}
    for index, (old, new) in enumerate(zip(before, after)):
        if old:
            json.loads(new)
        assert (old == new) == (index not in secret_lines), index


def test_redacted_json_keeps_structure() -> None:
    record = read_result("/app/.env", p("A=1\nOPENAI_API_KEY=", OPENAI, "\nB=\"quoted\"\n"))
    out, _ = Redactor().redact(line(record))
    value = json.loads(out)
    assert value["toolUseResult"]["file"]["content"] == \
        p("A=1\nOPENAI_API_KEY=", marker("openai-key"), "\nB=\"quoted\"\n")
    assert value["uuid"] == record["uuid"]


def test_redaction_is_idempotent() -> None:
    data, _, _ = corpus()
    once, _ = Redactor().redact(data)
    twice, counts = Redactor().redact(once)
    assert twice == once and not counts


def test_findings_match_redactions_and_never_show_a_secret() -> None:
    data, expected, counts = corpus()
    findings = Redactor().findings(data)
    assert collections.Counter(f.rule for f in findings) == counts
    assert {(f.rule, f.line) for f in findings} == {(rule, index) for rule, _, index in expected}
    for finding in findings:  # at most 4 characters on each side of the ellipsis
        shown = finding.preview.split("…")
        assert len(shown) == 2 and all(len(part) <= 4 for part in shown), finding


def test_finding_start_is_the_offset_in_the_decoded_string() -> None:
    text = p("héllo wörld → the token ", GHP, " — thanks")
    (finding,) = Redactor().findings(line(prompt(text)))
    assert finding == Finding("github-token", 0, text.index(GHP), p(GHP[:4], "…", GHP[-4:]))


def test_placeholders_and_code_are_left_alone() -> None:
    data = b"".join(line(record) for record in CLEAN)
    assert Redactor().findings(data) == []
    assert Redactor().redact(data) == (data, collections.Counter())


# --- Configuration: allow-list and extra patterns -----------------------------------------------

def test_allow_list_keeps_a_match_it_matches_in_full() -> None:
    data = line(prompt(p("tokens ", GHP, " and ", GLPAT)))
    out, counts = Redactor(allow=[r"gh[a-z]_[A-Za-z0-9]+"]).redact(data)
    assert GHP.encode() in out and GLPAT.encode() not in out
    assert counts == collections.Counter({"gitlab-token": 1})


def test_allow_list_must_match_the_whole_secret() -> None:
    out, _ = Redactor(allow=["ghp_"]).redact(line(prompt(p("token ", GHP))))
    assert GHP.encode() not in out


def test_extra_patterns_are_redacted_with_their_name() -> None:
    corp = p("corp", "_", rnd(24, HEX))
    data = line(bash_result(p("issued ", corp, "\n"))) + line(prompt("nothing here"))
    out, counts = Redactor(extra=[("corp-token", r"corp_[0-9a-f]{24}")]).redact(data)
    assert corp.encode() not in out and marker("corp-token").encode() in out
    assert counts == collections.Counter({"corp-token": 2})  # message content and toolUseResult
    assert out.split(b"\n")[1] == data.split(b"\n")[1]


def test_extra_patterns_apply_to_invalid_lines_too() -> None:
    corp = p("corp", "_", rnd(24, HEX))
    data = p("not json: ", corp, " trailing").encode()
    out, _ = Redactor(extra=[("corp-token", r"corp_[0-9a-f]{24}")]).redact(data)
    assert out == b"not json: [REDACTED:corp-token] trailing"


# --- Lines that are not clean JSON ----------------------------------------------------------------

def test_invalid_json_line_is_redacted_as_raw_text() -> None:
    whole = line(prompt(p("export GITHUB_TOKEN=", GHP, " # keep")))
    half = whole[:whole.index(b" # keep")]  # a half-written last line, no newline
    assert GHP.encode() in half and not half.endswith(b"\n")
    out, counts = Redactor().redact(b"plain text " + GHP.encode() + b"\n" + half)
    first, second = out.split(b"\n")
    assert first == b"plain text [REDACTED:github-token]"
    assert second == half.replace(GHP.encode(), b"[REDACTED:github-token]")
    assert counts == collections.Counter({"github-token": 2})


def test_non_utf8_bytes_survive() -> None:
    clean = b'{"type":"user","message":"\xff\xfe caf\xc3\xa9"}\n'
    dirty = b"\xff\xfe garbage AKIA" + AKIA[4:].encode() + b" \xc3\xa9\n"
    out, counts = Redactor().redact(clean + dirty)
    assert out == clean + b"\xff\xfe garbage [REDACTED:aws-access-key] \xc3\xa9\n"
    assert counts == collections.Counter({"aws-access-key": 1})


def test_line_endings_and_final_line_without_newline() -> None:
    body = line(prompt(p("key ", GHP))).rstrip(b"\n")
    data = body + b"\r\n" + line(prompt("fine")) + body
    out, _ = Redactor().redact(data)
    lines = out.split(b"\n")
    assert len(lines) == 3 and lines[0].endswith(b"\r") and not out.endswith(b"\n")
    assert all(GHP.encode() not in part for part in lines)
    json.loads(lines[0])
    json.loads(lines[2])


def test_escapes_and_lone_surrogates_stay_valid_json() -> None:
    raw = p('{"type":"user","message":{"content":"\\ud83d x \\"q\\"\\n\\u00e9 token=', NPM,
            '\\t\\u2028 end"},"n":1.50e+3}\n').encode()
    out, counts = Redactor().redact(raw)
    value = json.loads(out)
    assert counts == collections.Counter({"npm-token": 1})
    assert value["message"]["content"] == \
        p("\ud83d x \"q\"\n\u00e9 token=", marker("npm-token"), "\t\u2028 end")
    assert out.endswith(b',"n":1.50e+3}\n')  # the rest of the line keeps its spelling
    out.decode("utf-8")


def test_python_style_json_keeps_its_spacing() -> None:
    data = json.dumps({"type": "user", "message": {"content": p("pw=", YAML_PASSWORD)}}).encode()
    assert b'", "' in data or b'": ' in data
    out, _ = Redactor().redact(data + b"\n")
    assert out.startswith(b'{"type": "user", "message": {"content": ')


def test_secret_in_a_key_value_pair_of_a_nested_json_string() -> None:
    text = json.dumps({"password": FIELD_PASSWORD})  # a tool printed JSON
    out, counts = Redactor().redact(line(bash_result(text)))
    assert FIELD_PASSWORD.encode() not in out
    assert set(counts) == {"password-assignment"}


# --- The real transcripts -----------------------------------------------------------------------

# Every finding on ../shared/corpus; a change in this list is a change in behaviour to look at.
CORPUS_FINDINGS: list[tuple[str, str, int]] = []


def test_real_transcripts_have_almost_no_findings() -> None:
    found = [(path.name, f.rule, f.line) for path in corpus_transcripts()
             for f in Redactor().findings(path.read_bytes())]
    assert found == CORPUS_FINDINGS
    assert len(found) <= 5


def test_real_transcripts_are_unchanged() -> None:
    for path in corpus_transcripts():
        data = path.read_bytes()
        assert Redactor().redact(data)[0] == data, path.name


@pytest.mark.parametrize("build", [prompt, assistant_text, bash_call, bash_result],
                         ids=["prompt", "assistant", "bash-call", "bash-result"])
def test_every_token_format_in_every_record_shape(build: Callable[[str], dict[str, Any]]) -> None:
    tokens = {"aws-access-key": AKIA, "github-token": GHP, "gitlab-token": GLPAT,
              "anthropic-key": ANTHROPIC, "openai-key": OPENAI, "slack-token": SLACK_BOT,
              "stripe-key": STRIPE, "google-api-key": GOOGLE, "npm-token": NPM,
              "pypi-token": PYPI, "huggingface-token": HF, "sendgrid-key": SENDGRID,
              "digitalocean-token": DIGITALOCEAN, "shopify-token": SHOPIFY, "jwt": JWT}
    text = "\n".join(f"- {name}: `{token}`," for name, token in tokens.items())
    out, counts = Redactor().redact(line(build(text)))
    assert not any(token.encode() in out for token in tokens.values())
    assert set(counts) == set(tokens)


def _pem(kind: str) -> str:
    return p("-----BEGIN ", kind, " KEY-----\n", rnd(64, B64), "\n", rnd(40, B64),
             "\n-----END ", kind, " KEY-----")


# Every prefix, key type, URL scheme and quoting a rule accepts: (rule, secret, text around it).
VARIANTS: list[tuple[str, str, str]] = [
    *[("aws-access-key", s, f"id {s}") for s in (p("AK", "IA", rnd(16, string.ascii_uppercase)),
                                                 p("AS", "IA", rnd(16, string.digits)))],
    *[("github-token", s, f"token: {s}") for s in (p("gh", c, "_", mixed(36)) for c in "pousr")],
    *[("gitlab-token", s, f"{s} is the CI token") for s in (
        p("gl", k, "-", mixed(20)) for k in ("pat", "ptt", "rt"))],
    *[("slack-token", s, f"SLACK={s}") for s in (
        p("xo", "x", c, "-", rnd(11, string.digits), "-", mixed(24)) for c in "abposr")],
    *[("stripe-key", s, f"key={s}") for s in (p(a, "_", b, "_", mixed(24)) for a, b in
                                              (("sk", "live"), ("sk", "test"), ("rk", "live")))],
    *[("digitalocean-token", s, f"-t {s}") for s in (
        p("do", c, "_v1_", rnd(64, HEX)) for c in "por")],
    *[("shopify-token", s, f"X-Shopify-Access-Token: {s}") for s in (
        p("shp", k, "_", rnd(32, HEX)) for k in ("at", "ca", "pa", "ss"))],
    *[("private-key", s, f"cat key.pem\n{s}\n") for s in (
        _pem(k) for k in ("PRIVATE", "RSA PRIVATE", "EC PRIVATE", "OPENSSH PRIVATE",
                          "ENCRYPTED PRIVATE", "DSA PRIVATE"))],
    ("private-key", _pem("PGP PRIVATE").replace("KEY-----", "KEY BLOCK-----"), "gpg output: "),
    *[("database-password", DB_PASSWORD, f"{scheme}://app:{DB_PASSWORD}@db.internal/app")
      for scheme in ("postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqps")],
    ("url-password", URL_PASSWORD, p("ftp://deploy:", URL_PASSWORD, "@files.internal/")),
    ("heroku-api-key", p("HR", "KU-", mixed(60)), "heroku auth:token\n"),
    ("openai-key", p("sk-", mixed(48)), "legacy key "),
    ("token-assignment", NESTED_TOKEN, p("GITHUB_TOKEN = '", NESTED_TOKEN, "'")),
    ("token-assignment", NESTED_TOKEN, p("auth_token: \"", NESTED_TOKEN, "\"")),
    ("token-assignment", NESTED_TOKEN, p("const accessToken := \"", NESTED_TOKEN, "\"")),
    ("token-assignment", NESTED_TOKEN, p("{'refresh_token' => '", NESTED_TOKEN, "'}")),
    ("api-key-assignment", API_KEY, p("x-api-key: ", API_KEY)),
    ("api-key-assignment", API_KEY, p("apiKey=", API_KEY, "&format=json")),
    ("password-assignment", YAML_PASSWORD, p("mysql -u root --password=", YAML_PASSWORD)),
    ("password-assignment", "letmein", "db.connect(password=\"letmein\")"),
    ("secret-assignment", CLIENT_SECRET, p("JWT_SECRET: ", CLIENT_SECRET)),
    ("env-secret", SESSION_SECRET, p("export STRIPE_SECRET=", SESSION_SECRET)),
    ("env-secret", SESSION_SECRET, p("     3\u2192DB_PASSWORD=\"", SESSION_SECRET, "\"")),
    ("high-entropy", SIGNING_KEY, p("the api key is: ", SIGNING_KEY)),
    ("high-entropy", SIGNING_KEY, p("credential \"", SIGNING_KEY, "\"")),
]


@pytest.mark.parametrize("rule, secret, text", VARIANTS,
                         ids=[f"{rule}-{i}" for i, (rule, _, _) in enumerate(VARIANTS)])
def test_variants(rule: str, secret: str, text: str) -> None:
    body = text if secret in text else text + secret
    out, counts = Redactor().redact(line(bash_result(body)))
    assert not any(part.encode() in out for part in pieces(secret))
    assert set(counts) == {rule}


def _snippet(secret: str, record: dict[str, Any]) -> str:
    """The string of a case's record that holds its secret (the raw file content for a Read)."""
    return next(s for s in strings(record) if pieces(secret)[-1] in s and "\u2192" not in s)


NOISE = st.text(st.sampled_from(list("ab Z9\"\\\n\t:=é→😀\u2028{}[],'")), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=NOISE, after=NOISE, nested=st.booleans())
@pytest.mark.parametrize("rule, secret, record", CASES, ids=[rule for rule, _, _ in CASES])
def test_any_surroundings(rule: str, secret: str, record: dict[str, Any], before: str,
                          after: str, nested: bool) -> None:
    text = f"{before}\n{_snippet(secret, record)}\n{after}"
    if rule == "json-secret-field":
        record = mcp_result({"note": before, "password": FIELD_PASSWORD})
    else:
        record = prompt(json.dumps({"output": text}) if nested else text)
    out, counts = Redactor().redact(line(record))
    assert not any(part.encode() in out for part in pieces(secret))
    json.loads(out)


FRAGMENTS = [b'{"a":"', b'"}', b'\\', b'\\"', b'\\n', b'\\u00e9', b'\\ud83d', b"\xff", b"\xc3\xa9",
             b"password=", b"token: ", b'\\"secret\\": \\"', b"api_key=", b"Authorization: Bearer ",
             b"ghp_", b"sk-ant-", b"xoxb-", b"AKIA", b"eyJ", b"-----BEGIN RSA PRIVATE KEY-----",
             b"https://u:", b"@", b"export DB_PASSWORD=", b"key ", b"Aa1", b"x" * 20, b" ", b"\n"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=60))
def test_any_bytes_are_safe(parts: list[bytes]) -> None:
    data = b"".join(parts)
    out, counts = Redactor().redact(data)
    assert out.count(b"\n") == data.count(b"\n")
    for old, new in zip(data.split(b"\n"), out.split(b"\n")):
        try:
            json.loads(old)
        except ValueError:
            continue
        json.loads(new)
    assert len(Redactor().findings(data)) == sum(counts.values())


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats(allow_nan=False) | st.lists(
    st.sampled_from(list("ab \"\\\n:=_-é😀") + ["password=", "token: ", "ghp_", "key "])).map(
        "".join),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4), max_leaves=12))
def test_any_record_stays_json(value: Any) -> None:
    record = {"type": "user", "data": value, "note": GHP}
    out, counts = Redactor().redact(line(record))
    decoded = json.loads(out)
    assert decoded["data"] == value or counts["github-token"] < sum(counts.values())
    assert decoded["note"] == marker("github-token")


def test_lines_without_a_possible_secret_are_never_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the windows around gate hits are decoded, never a whole record."""
    data = b"".join(path.read_bytes().rstrip(b"\n") + b"\n" for path in corpus_transcripts())
    lines = set(data.split(b"\n"))
    parsed: list[bytes] = []
    real = json.loads

    def spy(text: Any, *args: Any, **kwargs: Any) -> Any:
        parsed.append(text if isinstance(text, bytes) else text.encode())
        return real(text, *args, **kwargs)

    monkeypatch.setattr("cmem_git.secrets.redact.json.loads", spy)
    assert Redactor().redact(data)[0] == data
    assert not lines.intersection(parsed)
    assert sum(map(len, parsed)) < len(data) / 20


def test_redaction_is_fast_on_real_transcripts() -> None:
    """A loose bound that only catches a gross regression (the measured figure is ~6 ms)."""
    data = b"".join(path.read_bytes().rstrip(b"\n") + b"\n" for path in corpus_transcripts())
    chunk = (data * (2 ** 20 // len(data) + 1))[:2 ** 20]
    chunk = chunk[:chunk.rfind(b"\n") + 1]
    redactor = Redactor()
    best = min(_timed(lambda: redactor.redact(chunk)) for _ in range(3))
    assert best < 0.2


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def test_one_kind_per_secret_name_with_its_check_and_reach() -> None:
    """secret_rules.KINDS: one entry per kind holds its shapes, its check and its look-back;
    the compiled rules carry them, and a config rule named like a built-in kind is checked as
    that kind (as before the table)."""
    names = [kind.name for kind in KINDS]
    assert len(names) == len(set(names)) and JSON_FIELD not in names
    assert rule_names() == (*names, JSON_FIELD)
    by_name = {kind.name: kind for kind in KINDS}
    for rule in builtin_rules():
        assert (rule.check, rule.back) == (by_name[rule.name].check, by_name[rule.name].back)
    assert by_name["env-secret"].back == 56 and by_name["jwt"].check is None
    assert extra_rule("env-secret", "X=.*").check is by_name["env-secret"].check
    assert extra_rule("mine", "x").check is None and extra_rule("mine", "x").back == 12
