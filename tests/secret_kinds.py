"""One secret of every kind the redactor knows, each in a line of plain text as a person or a
tool would write it (a memory file, a document, a .env dump, a tool-results file), for the tests
that run every write path (tests/test_secret_paths.py).

Secrets are assembled at run time from a seeded generator, so this file holds no string that a
secret scanner (or GitHub push protection) would take for a real credential.
"""

from __future__ import annotations

import base64
import json
import random
import string
import uuid
from dataclasses import dataclass

_RNG = random.Random(0x11C0DE)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
UP = string.ascii_uppercase + string.digits


def rnd(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def mixed(n: int) -> str:
    """Letters and digits with one of each class, as real tokens have (no placeholder runs)."""
    while True:
        chars = [_RNG.choice(string.ascii_uppercase), _RNG.choice(string.ascii_lowercase),
                 _RNG.choice(string.digits)] + [_RNG.choice(ALNUM) for _ in range(n - 3)]
        _RNG.shuffle(chars)
        text = "".join(chars)
        if not any(text[i] == text[i + 1] == text[i + 2] for i in range(n - 2)) and \
                not any(w in text.lower() for w in ("pass", "token", "secret", "xxxx", "key")):
            return text


def p(*parts: str) -> str:
    return "".join(parts)


def pem(label: str) -> str:
    body = "\n".join(rnd(64, B64) for _ in range(6))
    return p("-----BEGIN ", label, " KEY-----\n", body, "\n-----END ", label, " KEY-----")


@dataclass(frozen=True)
class Kind:
    rule: str
    secret: str
    text: str  # a line (or block) of plain text holding it


def kinds() -> list[Kind]:
    _RNG.seed(0x11C0DE)
    k: list[Kind] = []

    def add(rule: str, secret: str, text: str) -> None:
        assert secret in text
        k.append(Kind(rule, secret, text))

    akia = p("AK", "IA", rnd(16, UP))
    add("aws-access-key", akia, f"aws_access_key_id = {akia}")
    s = rnd(40, B64)
    add("aws-secret-key", s, f"aws_secret_access_key = {s}")
    s = p("FwoGZXIvYXdzE", rnd(140, B64))
    add("aws-session-token", s, f"aws_session_token={s}")
    s = p("gh", "p_", mixed(36))
    add("github-token", s, f"push with {s} please")
    s = p("github", "_pat_", mixed(22), "_", mixed(59))
    add("github-pat", s, f"the fine-grained one is {s}")
    s = p("gl", "pat-", mixed(20))
    add("gitlab-token", s, f"GitLab: {s}")
    s = p("sk-", "ant-api03-", mixed(93), "AA")
    add("anthropic-key", s, f"claude key {s}")
    s = p("sk-", "proj-", mixed(48))
    add("openai-key", s, f"openai {s}")
    s = p("xo", "xb-", rnd(12, string.digits), "-", rnd(13, string.digits), "-", mixed(24))
    add("slack-token", s, f"bot {s}")
    s = p("xa", "pp-1-A", rnd(10, string.digits), "-", rnd(13, string.digits), "-", rnd(64, HEX))
    add("slack-app-token", s, f"socket mode {s}")
    s = p("T", rnd(8, UP), "/B", rnd(8, UP), "/", mixed(24))
    add("slack-webhook", s, f"https://hooks.slack.com/services/{s}")
    s = mixed(68)
    add("discord-webhook", s, f"https://discord.com/api/webhooks/123456789012345678/{s}")
    s = p("sk", "_live_", mixed(24))
    add("stripe-key", s, f"stripe {s}")
    s = p("wh", "sec_", mixed(32))
    add("stripe-webhook-secret", s, f"signing {s}")
    s = p("AI", "za", mixed(35))
    add("google-api-key", s, f"maps {s}")
    s = p("GOC", "SPX-", mixed(28))
    add("google-client-secret", s, f"oauth {s}")
    s = p("np", "m_", mixed(36))
    add("npm-token", s, f"//registry.npmjs.org/:_authToken={s}")
    s = p("py", "pi-AgEIcHlwaS5vcmc", mixed(70))
    add("pypi-token", s, f"twine upload -p {s}")
    s = p("h", "f_", mixed(34))
    add("huggingface-token", s, f"hub {s}")
    s = p("S", "G.", mixed(22), ".", mixed(43))
    add("sendgrid-key", s, f"mail {s}")
    s = p("do", "p_v1_", rnd(64, HEX))
    add("digitalocean-token", s, f"doctl auth init -t {s}")
    s = p("sh", "pat_", rnd(32, HEX))
    add("shopify-token", s, f"shop {s}")
    s = p("ey", "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.ey", "JzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6Ik",
          "pvaG4ifQ.", rnd(43, ALNUM + "-_"))
    add("jwt", s, f"session cookie {s}")
    s = pem("RSA PRIVATE")
    add("private-key", s, f"id_rsa:\n{s}\n")
    s = p("SK", rnd(32, HEX))
    add("twilio-key", s, f"the Twilio API key SID is {s}")
    s = p(rnd(86, B64), "==")
    add("azure-storage-key", s, f"DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={s};")
    s = str(uuid.UUID(int=_RNG.getrandbits(128)))
    add("heroku-api-key", s, f"heroku config:set HEROKU_API_KEY={s}")
    s = rnd(32, HEX)
    add("datadog-api-key", s, f"dd_api_key: {s}")
    s = p("S3cr3t", mixed(10), "!x")
    add("database-password", s, f"DATABASE_URL=postgres://app:{s}@db.internal:5432/app")
    s = p("Pa55", mixed(12))
    add("url-password", s, f"clone https://deploy:{s}@git.internal.corp/acme/app.git")
    s = mixed(40)
    add("url-token", s, f"git clone https://{s}@github.com/acme/app.git")
    s = mixed(32)
    add("url-query-token", s, f"curl 'https://api.example.net/v1/items?access_token={s}&page=2'")
    s = p(mixed(30), ".", mixed(20))
    add("authorization-header", s, f"Authorization: Bearer {s}")
    s = base64.b64encode(p("deploy:", mixed(16)).encode()).decode()
    add("basic-auth", s, f"Authorization: Basic {s}")
    s = "correcthorsebatterystaple"
    add("env-secret", s, f"SESSION_SECRET={s}")
    s = p("Tr0ub4dor&3", rnd(4))
    add("password-assignment", s, f"password: {s}")
    s = rnd(32, HEX)
    add("secret-assignment", s, f'client_secret = "{s}"')
    s = mixed(32)
    add("token-assignment", s, f'"token": "{s}"')
    s = rnd(40, HEX)
    add("api-key-assignment", s, f"api_key: {s}")
    s = mixed(32)
    add("high-entropy", s, f"here is the signing key {s} for the webhook")
    s = p(rnd(10, string.digits), ":AA", mixed(33))
    add("telegram-bot-token", s, f"TELEGRAM bot {s}")
    s = p("AGE-SECRET-KEY-1", rnd(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper()))
    add("age-secret-key", s, f"# age key\n{s}")
    s = p("key-", rnd(32, HEX))
    add("mailgun-key", s, f"mailgun {s}")
    s = p("PM", "AK-", rnd(24, HEX), "-", rnd(34, HEX))
    add("postman-key", s, f"postman {s}")
    s = p("hv", "s.", mixed(90))
    add("vault-token", s, f"vault {s}")
    s = p("lin", "_api_", mixed(40))
    add("linear-api-key", s, f"linear {s}")
    s = p("Qz7", mixed(9))
    add("cli-password", s, f"mysql -h db -u root -p{s} shop")
    s = p("Wf8", mixed(9))
    add("cli-password", s, f"sshpass -p '{s}' ssh deploy@host")
    s = p("Dk4", mixed(9))
    add("cli-password", s, f"docker login -u ci -p {s} registry.example.com")
    s = p("Az2", mixed(9))
    add("cli-password", s, f"az login -u ops@example.com --password {s}")
    s = p("Fd8#", mixed(8))
    add("json-secret-field", s, json.dumps({"user": "ci-bot", "password": s}))
    return k


def gcp_service_account() -> tuple[str, str]:
    """(private key, the JSON credential file holding it), as Google Cloud writes one."""
    key = pem("PRIVATE")
    text = json.dumps({"type": "service_account", "project_id": "acme-prod",
                       "private_key_id": rnd(40, HEX), "private_key": key + "\n",
                       "client_email": "ci@acme-prod.iam.gserviceaccount.com",
                       "client_id": rnd(21, string.digits)}, indent=2)
    return key, text


def env_dump() -> tuple[list[str], str]:
    """(secrets, a .env file as `cat .env` prints it)."""
    values = [mixed(24), p("S3", mixed(14)), p("key-", rnd(32, HEX))]
    text = (f"NODE_ENV=production\nPORT=3000\nJWT_SECRET={values[0]}\n"
            f"DATABASE_URL=mysql://shop:{values[1]}@db:3306/shop\nMAILGUN_API_KEY={values[2]}\n"
            "LOG_LEVEL=info\n")
    return values, text
