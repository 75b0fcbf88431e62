"""Secrets stay private (issue 6), end to end: the installed `cmem` and the hook commands that
`cmem init` wrote into settings.json, run as Claude Code runs them, against real git.

A transcript made here holds a secret of every rule's kind inside records shaped like Claude
Code's (prompts, assistant text, Bash calls and their output, Read results of .env files, nested
`toolUseResult` fields) and is backed up as it grows, with lines cut in half between two hooks.
What the memory holds is then read back with the git CLI: every object of the repository
(`git cat-file --batch-all-objects --batch`), not only the tip, must be free of every secret.

Secrets are assembled at run time from a seeded generator, so this file holds no string that a
secret scanner (or GitHub push protection) would take for a real credential.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import stat
import string
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import MINIMAL_PATH, PYTHON, Project, cmem, payload
from conftest import stored_file as stored

from cmem_git.paths import encode_project
from cmem_git.secrets.redact import Redactor, marker, rule_names

_RNG = random.Random(0x5EC2E75)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
UPPER_DIGITS = string.ascii_uppercase + string.digits
CHUNK = re.compile(r"^\d{12}-\d{9}$")
SID = "7d1f0c2e-5b7a-4c1e-9d3f-2a6b8c4e0f11"


@pytest.fixture(autouse=True)
def seeded() -> None:
    """The same secrets whichever tests run, in whatever order (a random token can hold a run
    the rules take for a placeholder, `xxxx`; a fixed seed keeps that from flickering)."""
    _RNG.seed(0x5EC2E75)


def rnd(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def mixed(n: int) -> str:
    """Letters and digits with one of each class at a random place, as real tokens have."""
    chars = [_RNG.choice(string.ascii_uppercase), _RNG.choice(string.ascii_lowercase),
             _RNG.choice(string.digits)] + [_RNG.choice(ALNUM) for _ in range(n - 3)]
    _RNG.shuffle(chars)
    return "".join(chars)


def cat(*parts: str) -> str:
    return "".join(parts)


# --- records shaped like Claude Code's -----------------------------------------------------------

class Records:
    """Builds records for one session; parent links and uuids follow one another."""

    def __init__(self, session: str, rng: random.Random) -> None:
        self.session, self.rng = session, rng
        self.parent: str | None = None
        self.minute = 0

    def _base(self, kind: str, **extra: Any) -> dict[str, Any]:
        uid = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.minute += 1
        record = {"parentUuid": self.parent, "isSidechain": False, "userType": "external",
                  "cwd": "/home/dev/shop", "sessionId": self.session, "version": "2.1.38",
                  "gitBranch": "main", "type": kind, **extra, "uuid": uid,
                  "timestamp": f"2026-03-0{1 + self.minute // 1440}T"
                               f"{self.minute // 60 % 24:02d}:{self.minute % 60:02d}:07.412Z"}
        self.parent = uid
        return record

    def prompt(self, text: str) -> dict[str, Any]:
        return self._base("user", message={"role": "user", "content": text})

    def assistant(self, text: str) -> dict[str, Any]:
        return self._base("assistant", message={
            "model": "claude-opus-4-6", "id": f"msg_01{rnd(22)}", "type": "message",
            "role": "assistant", "content": [{"type": "text", "text": text}],
            "stop_reason": None, "usage": {"input_tokens": 4, "output_tokens": 210}})

    def tool_use(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return self._base("assistant", message={
            "model": "claude-opus-4-6", "id": f"msg_01{rnd(22)}", "type": "message",
            "role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_01{rnd(22)}",
                                              "name": name, "input": arguments}]})

    def bash(self, command: str) -> dict[str, Any]:
        return self.tool_use("Bash", {"command": command, "description": "Run the command"})

    def _result(self, content: Any, result: Any) -> dict[str, Any]:
        return self._base("user", message={"role": "user", "content": [{
            "tool_use_id": f"toolu_01{rnd(22)}", "type": "tool_result", "content": content,
            "is_error": False}]}, toolUseResult=result)

    def bash_output(self, stdout: str) -> dict[str, Any]:
        return self._result(stdout, {"stdout": stdout, "stderr": "", "interrupted": False,
                                     "isImage": False})

    def read(self, path: str, content: str) -> dict[str, Any]:
        """A Read result: numbered lines for Claude, the plain file in toolUseResult."""
        numbered = "\n".join(f"{i:6d}\u2192{line}" for i, line in
                             enumerate(content.split("\n"), 1))
        return self._result(numbered, {"type": "text", "file": {
            "filePath": path, "content": content, "numLines": content.count("\n") + 1,
            "startLine": 1, "totalLines": content.count("\n") + 1}})

    def mcp(self, fields: dict[str, Any]) -> dict[str, Any]:
        """An MCP tool's structured result: the secret deep inside toolUseResult."""
        return self._result([{"type": "text", "text": "Found 1 item."}],
                            {"structuredContent": {"result": {"page": 1, "items": [fields]}}})


def encode(record: dict[str, Any]) -> bytes:
    """As Claude Code writes a record: compact JSON, UTF-8, one line."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


# --- the secrets: one of every rule's kind ------------------------------------------------------

@dataclass(frozen=True)
class Secret:
    rule: str
    value: str


def catalog(r: Records) -> list[tuple[list[Secret], dict[str, Any]]]:
    """Records holding secrets, each with the secrets in it and the rule that must name each."""
    def one(rule: str, value: str, make: Callable[[str], dict[str, Any]]
            ) -> tuple[list[Secret], dict[str, Any]]:
        return [Secret(rule, value)], make(value)

    akia, aws_secret = cat("AK", "IA", rnd(16, UPPER_DIGITS)), rnd(40, B64)
    pem = "\n".join(rnd(70, B64) for _ in range(6))
    private_key = cat("-----BEGIN OPENSSH ", "PRIVATE KEY-----\n", pem, "\n-----END OPENSSH ",
                      "PRIVATE KEY-----")
    heroku = cat("HR", "KU-", rnd(60, ALNUM + "_-"))
    basic = base64.b64encode(cat("ci:", mixed(20)).encode()).decode()
    cases = [
        one("private-key", private_key, lambda v: r.bash_output(
            cat("$ cat ~/.ssh/id_ed25519\n", v, "\n"))),
        ([Secret("aws-access-key", akia), Secret("aws-secret-key", aws_secret)], r.read(
            "/home/dev/.aws/credentials", cat("[default]\naws_access_key_id = ", akia,
                                              "\naws_secret_access_key = ", aws_secret,
                                              "\nregion = eu-central-1\n"))),
        one("aws-session-token", cat("IQoJb3JpZ2luX2Vj", rnd(150, B64)),
            lambda v: r.bash(cat("export AWS_SESSION_TOKEN=", v,
                                 " && aws s3 ls s3://shop-assets"))),
        one("github-token", cat("gh", "p_", mixed(36)), lambda v: r.prompt(
            cat("push it with https://", v, "@github.com/acme/shop.git — merci, ça marche"))),
        one("github-pat", cat("github", "_pat_", mixed(22), "_", mixed(59)), lambda v: r.assistant(
            cat("I exported `GH_PAT` as ", v, " for the release job; revoke it afterwards."))),
        one("gitlab-token", cat("gl", "pat-", mixed(20)), lambda v: r.bash(
            cat("curl --header \"PRIVATE-TOKEN: ", v,
                "\" https://gitlab.example.com/api/v4/projects/42/pipelines"))),
        one("anthropic-key", cat("sk-", "ant-api03-", mixed(93), "AA"), lambda v: r.read(
            "/home/dev/shop/.env", cat("# Claude\nANTHROPIC_API_KEY=", v, "\nMODEL=opus\n"))),
        one("openai-key", cat("sk-", "proj-", mixed(48)), lambda v: r.bash_output(
            cat(v, "\n"))),
        one("slack-token", cat("xo", "xb-", rnd(12, string.digits), "-", rnd(12, string.digits),
                               "-", mixed(24)),
            lambda v: r.mcp({"name": "deploy-bot", "auth": {"bot": v, "scopes": ["chat:write"]}})),
        one("slack-app-token", cat("xa", "pp-1-A0", rnd(9, UPPER_DIGITS), "-",
                                   rnd(13, string.digits), "-", rnd(64, HEX)),
            lambda v: r.read("/home/dev/shop/.env.local", cat("PORT=3000\nSLACK_APP_TOKEN=", v,
                                                              "\nDEBUG=1\n"))),
        one("slack-webhook", cat("T0", rnd(8, UPPER_DIGITS), "/B0", rnd(8, UPPER_DIGITS), "/",
                                 mixed(24)),
            lambda v: r.prompt(cat("when the build is green post to "
                                   "https://hooks.slack.com/services/", v, " please"))),
        one("discord-webhook", mixed(68), lambda v: r.bash(
            cat("curl -X POST -d '{\"content\":\"deployed\"}' "
                "https://discord.com/api/webhooks/1193847561928374650/", v))),
        one("stripe-key", cat("sk", "_live_", mixed(24)), lambda v: r.assistant(
            cat("In `billing.py`:\n\n```python\nimport stripe\nstripe.api_key = \"", v,
                "\"\n```\n"))),
        one("stripe-webhook-secret", cat("wh", "sec_", mixed(32)), lambda v: r.bash_output(
            cat("> Ready! You are using Stripe API Version [2024-06-20]. Your webhook signing "
                "secret is ", v, " (^C to quit)\n"))),
        one("google-api-key", cat("AI", "za", mixed(35)), lambda v: r.prompt(
            cat("this works in the browser: https://maps.googleapis.com/maps/api/geocode/json"
                "?address=Berlin&key=", v))),
        one("google-client-secret", cat("GOC", "SPX-", mixed(28)), lambda v: r.read(
            "/home/dev/shop/client_secret.json", json.dumps({"web": {
                "client_id": "81234-abcd.apps.googleusercontent.com", "client_secret": v,
                "redirect_uris": ["http://localhost:3000/callback"]}}, indent=2))),
        one("npm-token", cat("np", "m_", mixed(36)), lambda v: r.read(
            "/home/dev/.npmrc", cat("//registry.npmjs.org/:_authToken=", v, "\n"))),
        one("pypi-token", cat("py", "pi-AgEIcHlwaS5vcmc", mixed(80)), lambda v: r.bash(
            cat("twine upload -u __token__ -p ", v, " dist/*"))),
        one("huggingface-token", cat("h", "f_", mixed(34)), lambda v: r.bash_output(
            cat("$ cat ~/.cache/huggingface/token\n", v, "\n"))),
        one("sendgrid-key", cat("S", "G.", mixed(22), ".", mixed(43)), lambda v: r.assistant(
            cat("The mailer reads ", v, " from the environment at boot."))),
        one("digitalocean-token", cat("do", "p_v1_", rnd(64, HEX)), lambda v: r.mcp(
            {"provider": "digitalocean", "credentials": {"api": v}})),
        one("shopify-token", cat("sh", "pat_", rnd(32, HEX)), lambda v: r.bash(
            cat("curl -H 'X-Shopify-Access-Token: ", v,
                "' https://acme.myshopify.com/admin/api/2024-04/products.json"))),
        one("jwt", cat("ey", "JhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.ey", "J",
                       rnd(60, ALNUM + "_-"), ".", rnd(86, ALNUM + "_-")),
            lambda v: r.bash_output(json.dumps({"access_token": v, "token_type": "Bearer",
                                                "expires_in": 3600}))),
        one("twilio-key", cat("SK", rnd(32, HEX)), lambda v: r.read(
            "/home/dev/shop/.env", cat("TWILIO_ACCOUNT=acme\nTWILIO_API_KEY=", v, "\n"))),
        one("azure-storage-key", cat(rnd(86, B64), "=="), lambda v: r.bash(
            cat("az storage blob list --connection-string \"DefaultEndpointsProtocol=https;"
                "AccountName=acmeshop;AccountKey=", v, ";EndpointSuffix=core.windows.net\""))),
        one("heroku-api-key", heroku, lambda v: r.bash_output(cat(v, "\n"))),
        one("datadog-api-key", rnd(32, HEX), lambda v: r.bash(
            cat("DD_API_KEY=", v, " DD_SITE=datadoghq.eu bash -c \"$(curl -L "
                "https://install.datadoghq.com/scripts/install_script_agent7.sh)\""))),
        one("database-password", cat("Zq8", rnd(13), "!"), lambda v: r.prompt(
            cat("the prod db is postgresql://shop_admin:", v, "@db.acme.internal:5432/shop, "
                "read only please"))),
        one("url-password", cat("Jk2", rnd(14)), lambda v: r.assistant(
            cat("Jenkins answers at https://admin:", v, "@ci.acme.internal/job/shop/ now."))),
        one("url-token", mixed(40), lambda v: r.bash_output(
            cat("origin\thttps://", v, "@git.acme.internal/acme/shop.git (fetch)\norigin\t"
                "https://git.acme.internal/acme/shop.git (push)\n"))),
        one("authorization-header", cat(mixed(28), ".", mixed(24)), lambda v: r.bash_output(
            cat("> GET /v2/orders HTTP/2\n> Host: api.acme.internal\n> Authorization: Bearer ",
                v, "\n> Accept: */*\n< HTTP/2 200\n"))),
        one("basic-auth", basic, lambda v: r.bash(
            cat("curl -s -H 'Authorization: Basic ", v, "' https://registry.acme.internal/v2/"))),
        one("env-secret", cat("plum-", rnd(6, string.ascii_lowercase), "-harbor-",
                              rnd(4, string.digits)),
            lambda v: r.read("/home/dev/shop/.env", cat("NODE_ENV=production\nSESSION_SECRET=",
                                                        v, "\nLOG_LEVEL=info\n"))),
        one("password-assignment", cat("Tr0ub4dor&", rnd(5)), lambda v: r.read(
            "/home/dev/shop/docker-compose.yml",
            cat("services:\n  cache:\n    image: redis:7\n    command: redis-server\n"
                "    environment:\n      password: ", v, "\n"))),
        one("secret-assignment", rnd(32, HEX), lambda v: r.assistant(
            cat("Add this to `settings.py`:\n\n```python\nclient_secret = \"", v, "\"\n```"))),
        one("token-assignment", mixed(32), lambda v: r.bash_output(json.dumps(
            {"registry": "https://npm.acme.internal", "auth": {"token": v}}, indent=2))),
        one("api-key-assignment", rnd(40, HEX), lambda v: r.read(
            "/home/dev/shop/config/mailer.yml", cat("mailer:\n  provider: postmark\n  api_key: ",
                                                    v, "\n"))),
        one("high-entropy", mixed(36), lambda v: r.prompt(
            cat("here is the signing key ", v, " — wire it into the webhook handler"))),
        one("json-secret-field", cat("Wf8#kq2!Lp", rnd(6)), lambda v: r.mcp(
            {"login": "ci-bot", "password": v, "enabled": True})),
        one("acme-license", cat("ACME-LIC-", rnd(16, "0123456789ABCDEF")), lambda v: r.assistant(
            cat("The license file says ", v, "; the installer accepts it."))),
        # Issue 11's kinds: tokens, a command-line password, a query-string token.
        one("telegram-bot-token", cat(rnd(10, string.digits), ":AA", mixed(33)),
            lambda v: r.read("/home/dev/bot/.env", cat("TELEGRAM_BOT=", v, "\n"))),
        one("age-secret-key", cat("AGE-SECRET-KEY-1", rnd(58, "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L")),
            lambda v: r.read("/home/dev/.config/sops/age/keys.txt", cat("# key\n", v, "\n"))),
        one("mailgun-key", cat("key-", rnd(32, HEX)), lambda v: r.bash(
            cat("curl -s --user 'api:", v, "' https://api.mailgun.net/v3/mg/messages"))),
        one("postman-key", cat("PM", "AK-", rnd(24, HEX), "-", rnd(34, HEX)),
            lambda v: r.prompt(cat("postman key ", v))),
        one("vault-token", cat("hv", "s.", mixed(90)), lambda v: r.bash_output(
            cat("token  ", v, "\n"))),
        one("linear-api-key", cat("lin", "_api_", mixed(40)), lambda v: r.assistant(
            cat("I exported `", v, "` for the Linear MCP."))),
        one("cli-password", cat("Qz7", mixed(9)), lambda v: r.bash(
            cat("mysql -h db -u root -p", v, " shop < dump.sql"))),
        one("url-query-token", mixed(32), lambda v: r.bash(
            cat("curl 'https://api.example.net/v1/items?access_token=", v, "&page=2'"))),
    ]
    return cases


EXTRA_RULE = ("acme-license", r"ACME-LIC-[0-9A-F]{16}")
ALLOWED = cat("AK", "IA", "QAFIXTURE1TEST42")  # looks like an AWS key id; the config allows it


def strings_of(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_of(item)


def occurrences(record: dict[str, Any], secrets: list[Secret]) -> Counter[str]:
    """How many markers of each rule the record's secrets make: one per string holding one."""
    found: Counter[str] = Counter()
    for text in strings_of(record):
        for secret in secrets:
            found[secret.rule] += text.count(secret.value)
    return found


def redacted(value: Any, secrets: list[Secret]) -> Any:
    """What the record must read as once stored: every secret replaced by its rule's marker."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret.value, marker(secret.rule))
        return value
    if isinstance(value, dict):
        return {key: redacted(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item, secrets) for item in value]
    return value


# --- harmless records around the secrets ---------------------------------------------------------

WORDS = ("the order service retries a failed charge twice before it gives up and the cart "
         "keeps its items until checkout finishes résumé naïve café déjà vu über straße "
         "migration handler refactor invoice shipping label warehouse queue worker batch "
         "import export report schema column index query cache layer render template view "
         "router middleware logger metric dashboard alert rollout canary staging release "
         "branch commit review comment fixture mock stub assertion coverage benchmark").split()


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def filler(r: Records, rng: random.Random) -> dict[str, Any]:
    """A record as a session is mostly made of: talk, commands, listings, source files."""
    kind = rng.randrange(6)
    if kind == 0:
        return r.prompt(" ".join(sentence(rng, rng.randint(8, 30)) for _ in range(3)))
    if kind == 1:
        return r.assistant("\n\n".join(sentence(rng, rng.randint(20, 60)) for _ in range(6)))
    if kind == 2:
        return r.bash(rng.choice(["git log --oneline -20", "pytest -q tests/test_orders.py",
                                  "ls -la src/shop", "npm run build", "git status"]))
    if kind == 3:
        return r.bash_output("\n".join(f"{rng.getrandbits(28):07x} {sentence(rng, 6)}"
                                       for _ in range(rng.randint(10, 40))))
    source = "\n".join(f"def {rng.choice(WORDS)}_{i}(order, amount):\n"
                       f"    \"\"\"{sentence(rng, 12)}\"\"\"\n    return order.total + amount\n"
                       for i in range(rng.randint(10, 40)))
    if kind == 4:
        return r.read(f"/home/dev/shop/src/{rng.choice(WORDS)}.py", source)
    return r.tool_use("Edit", {"file_path": "/home/dev/shop/src/orders.py",
                               "old_string": source[:400], "new_string": source[400:900]})


@dataclass
class Line:
    data: bytes
    secrets: list[Secret]
    record: dict[str, Any]


@dataclass
class Session:
    """The files Claude Code keeps for one session, as lines, with the secrets in each."""

    main: list[Line]
    subagent: list[Line]
    tool_output: bytes  # tool-results/<id>.txt: raw text, not JSON
    tool_secret: Secret

    @property
    def secrets(self) -> list[Secret]:
        return [s for line in self.main + self.subagent for s in line.secrets] + \
            [self.tool_secret]


def make_session(session: str, seed: int, size: int) -> Session:
    """About `size` bytes of main transcript with the catalog's records spread through it, a
    subagent's transcript and a tool-results file, each with secrets of their own."""
    rng = random.Random(seed)
    _RNG.seed(seed)
    main = spread(Records(session, rng), rng, size)
    tool_secret = Secret("stripe-key", cat("rk", "_live_", mixed(30)))
    tool_output = cat("$ env | sort\nHOME=/home/dev\nLANG=C.UTF-8\nSTRIPE_RESTRICTED=",
                      tool_secret.value, "\nTERM=xterm\n").encode()
    return Session(main, subagent_lines(Records(session, rng)), tool_output, tool_secret)


def spread(r: Records, rng: random.Random, size: int) -> list[Line]:
    """The catalog's records at even steps through `size` bytes of harmless ones."""
    cases = catalog(r)
    step, written = size // (len(cases) + 1), 0
    lines: list[Line] = []
    for index, (secrets, record) in enumerate(cases):
        while written < step * (index + 1):
            talk = filler(r, rng)
            lines.append(Line(encode(talk), [], talk))
            written += len(lines[-1].data)
        lines.append(Line(encode(record), secrets, record))
        if index == 3:  # a value that looks like an AWS key id, which the config allows
            allowed = r.bash_output(cat("AccessKeyId: ", ALLOWED, "\nRegion: eu-central-1\n"))
            lines.append(Line(encode(allowed), [], allowed))
    return lines


def subagent_lines(r: Records) -> list[Line]:
    token, password = cat("gh", "o_", mixed(36)), cat("orchid-", rnd(8, string.ascii_lowercase))
    records: list[tuple[dict[str, Any], list[Secret]]] = [
        (r.prompt("Find where the deploy script reads its credentials."), []),
        (r.bash(cat("gh auth status -t  # ", token)), [Secret("github-token", token)]),
        (r.read("/home/dev/shop/deploy/.env", cat("SMTP_PASSWORD=", password, "\n")),
         [Secret("env-secret", password)]),
        (r.assistant("The deploy script reads them from deploy/.env."), [])]
    for record, _ in records:
        record["isSidechain"] = True
    return [Line(encode(record), secrets, record) for record, secrets in records]


def big_read(session: str, seed: int) -> Line:
    """A Read result of a large source file, longer than a chunk (256 KiB), with a token near
    its start and a key near its end: the redactor looks only around where its gates fire."""
    rng = random.Random(seed)
    r = Records(session, rng)
    source = "\n".join(f"def step_{i}(order):\n    \"\"\"{sentence(rng, 12)}\"\"\"\n"
                       "    return order" for i in range(1500))
    secrets = [Secret("github-token", cat("gh", "p_", mixed(36))),
               Secret("openai-key", cat("sk-", "proj-", mixed(48)))]
    content = cat("# deploy with ", secrets[0].value, "\n", source, "\nOPENAI_API_KEY=",
                  secrets[1].value, "\n")
    record = r.read("/home/dev/shop/src/pipeline.py", content)
    return Line(encode(record), secrets, record)


# --- reading the repository back with git -------------------------------------------------------

def git_at(folder: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, (folder, args, done.stderr)
    return done.stdout


def every_object(folder: Path) -> Iterator[tuple[str, str, bytes]]:
    """(id, type, content) of every object in the repository, loose or packed, reachable or
    not: what a clone, a backup of the folder or a leaked disk would hold."""
    out = subprocess.run(["git", "-C", str(folder), "cat-file", "--batch-all-objects",
                          "--batch"], capture_output=True, check=True).stdout
    pos = 0
    while pos < len(out):
        eol = out.index(b"\n", pos)
        oid, kind, size = out[pos:eol].decode().split()
        yield oid, kind, out[eol + 1:eol + 1 + int(size)]
        pos = eol + 1 + int(size) + 1


def needles(secret: Secret) -> set[bytes]:
    """What would give a secret away: itself, as a JSON string holds it, each line of a key
    block, and a piece from its middle (a rule that stopped short would leave that)."""
    value = secret.value
    found = {value, json.dumps(value)[1:-1], json.dumps(json.dumps(value))[3:-3]}
    found |= {line for line in value.split("\n") if len(line) >= 16}
    if len(value) >= 24:
        found.add(value[len(value) // 3:len(value) // 3 + 12])
    return {n.encode() for n in found}


def leaks(folder: Path, secrets: list[Secret]) -> list[str]:
    """Where any secret is in any object of the repository at `folder`."""
    wanted = {n: s.rule for s in secrets for n in needles(s)}
    return [f"{rule} in {kind} {oid}" for oid, kind, data in every_object(folder)
            for n, rule in wanted.items() if n in data]


def leaks_on_disk(folder: Path, secrets: list[Secret]) -> list[str]:
    """Any secret in a file under `folder` as it lies on disk (index, logs, cmem's state)."""
    wanted = {n: s.rule for s in secrets for n in needles(s)}
    return [f"{rule} in {path}" for path in sorted(folder.rglob("*")) if path.is_file()
            for n, rule in wanted.items() if n in path.read_bytes()]



def redactions_per_commit(folder: Path) -> dict[str, int]:
    """Cmem-Redactions of each commit that has the trailer, by commit id."""
    text = git_at(folder, "log", "--format=%H %(trailers:key=Cmem-Redactions,valueonly,"
                          "separator=%x2C)")
    return {commit: int(value) for commit, _, value in
            (line.partition(" ") for line in text.splitlines()) if value}


def head(folder: Path) -> str:
    return git_at(folder, "rev-parse", "HEAD").strip()


def assert_fsck(folder: Path) -> None:
    done = subprocess.run(["git", "-C", str(folder), "fsck", "--strict"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def assert_stored_lines(data: bytes, lines: list[Line]) -> None:
    """The stored copy has the file's lines, each valid JSON; a line without a secret is the
    file's byte for byte, one with secrets is the record with each replaced by its marker,
    encoded as Claude Code encodes (nothing else in the line moved)."""
    got = data.splitlines(keepends=True)
    assert len(got) == len(lines), (len(got), len(lines))
    for number, (have, line) in enumerate(zip(got, lines), 1):
        json.loads(have)
        if not line.secrets:
            assert have == line.data, f"line {number} changed without a secret in it"
        else:
            assert have == encode(redacted(line.record, line.secrets)), f"line {number}"


def markers_in(data: bytes) -> Counter[str]:
    return Counter(m.decode() for m in re.findall(rb"\[REDACTED:([a-z-]+)\]", data))


def expected_markers(lines: list[Line]) -> Counter[str]:
    total: Counter[str] = Counter()
    for line in lines:
        total += occurrences(line.record, line.secrets)
    return total


# --- running cmem and its hooks -------------------------------------------------------------------

def set_config(memory: Path, **values: str) -> None:
    """Change top-level keys of cmem.yaml (values as YAML text)."""
    path = memory / "cmem.yaml"
    text = path.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^{key}: .*$", lambda _: f"{key}: {value}", text)
        assert count == 1, key
    path.write_text(text)


def hook(project: Project, event: str, sid: str, transcript: Path,
         umask: int | None = None) -> subprocess.CompletedProcess[bytes]:
    """The hook command from settings.json, as Claude Code runs it (conftest.run_hook), under
    the given umask when there is one."""
    extra: dict[str, Any] = {}
    if event == "Stop":
        extra = {"permission_mode": "default", "stop_hook_active": False,
                 "last_assistant_message": "Done."}
    data = json.dumps(payload(event, sid, transcript, project.root, **extra)).encode()
    return run_shell(project, project.hook_command(event), data, umask)


def run_shell(project: Project, command: str, data: bytes,
              umask: int | None = None) -> subprocess.CompletedProcess[bytes]:
    from cmem_git.entry import detach

    env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
           "CLAUDE_PROJECT_DIR": str(project.root)}
    done = subprocess.run(["sh", "-c", command], input=data, capture_output=True,
                          cwd=project.home, env=env, timeout=120,
                          preexec_fn=None if umask is None else lambda: os.umask(umask))
    gitdir = project.memory / ".git"  # Stop and SessionEnd commit in a detached child
    assert not gitdir.is_dir() or detach.wait(gitdir, 120), "a detached hook did not finish"
    return done


def quiet(done: subprocess.CompletedProcess[bytes]) -> None:
    """A hook that went well: exit 0, nothing on stderr, no systemMessage."""
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", done.stderr
    if done.stdout:
        assert "systemMessage" not in json.loads(done.stdout), done.stdout


def append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(data)


def middle_of_secret(line: Line) -> int:
    """An offset inside the line's first secret: where Claude Code's write was cut."""
    value = line.secrets[0].value.encode()
    at = line.data.find(value)
    assert at > 0, line.secrets[0].rule
    return at + len(value) // 2


def configure_redaction(memory: Path) -> None:
    set_config(memory, stop_throttle_minutes="0", auto_sync="false",
               redaction_extra=f"{{{EXTRA_RULE[0]}: '{EXTRA_RULE[1]}'}}",
               redaction_allow=f"['{ALLOWED}']")


# ================================================================ 1. every write path redacts


def whole(lines: list[Line], upto: int) -> list[Line]:
    """The lines wholly inside the first `upto` bytes of their file."""
    done, size = [], 0
    for line in lines:
        size += len(line.data)
        if size > upto:
            break
        done.append(line)
    return done


def count(lines: list[Line]) -> int:
    return sum(expected_markers(lines).values())


def grow(path: Path, lines: list[Line], upto: int) -> int:
    """Write the file on to byte `upto`, as Claude Code appends; returns the markers that the
    lines finished by this write must get."""
    before = path.stat().st_size if path.exists() else 0
    if upto > before:
        append(path, b"".join(line.data for line in lines)[before:upto])
    return count(whole(lines, upto)) - count(whole(lines, before))


def cut_in_secret(lines: list[Line], fraction: float) -> int:
    """An offset inside the first secret past `fraction` of the file: a write cut there leaves
    a half line, and half a secret, for the next backup to finish."""
    offset = 0
    for line in lines:
        if line.secrets and offset > fraction * sum(len(x.data) for x in lines):
            return offset + middle_of_secret(line)
        offset += len(line.data)
    raise AssertionError(f"no secret past {fraction}")


def test_hooks_redact_every_secret_as_the_transcript_grows(project: Project) -> None:
    """A transcript with a secret of every rule's kind, backed up by PreCompact, two Stops and
    SessionEnd while it grows; three of the writes stop in the middle of a secret, to be
    finished later, and the tail each backup cuts again (the last 256 KiB chunk) holds
    secrets the backup before redacted and counted already."""
    configure_redaction(project.memory)
    session = make_session(SID, 11, 800_000)
    big = big_read(SID, 12)
    session.main.insert(len(session.main) * 6 // 10, big)
    assert len(big.data) > 256 * 1024  # a chunk of its own
    assert {s.rule for s in session.secrets} >= set(rule_names()) | {EXTRA_RULE[0]}
    main = project.transcripts / f"{SID}.jsonl"
    agent = project.transcripts / SID / "subagents" / "agent-a5e1c0d.jsonl"
    tool = project.transcripts / SID / "tool-results" / "toolu_01Qx7Env.txt"
    size = sum(len(line.data) for line in session.main)
    agent_size = sum(len(line.data) for line in session.subagent)
    agent_cut = cut_in_secret(session.subagent, 0.3)
    steps = [("PreCompact", cut_in_secret(session.main, 0.15), 0),
             ("Stop", cut_in_secret(session.main, 0.5), agent_cut),
             ("Stop", cut_in_secret(session.main, 0.8), agent_size),
             ("SessionEnd", size, agent_size)]
    commits = []
    for event, upto, agent_upto in steps:
        expected = grow(main, session.main, upto) + grow(agent, session.subagent, agent_upto)
        if agent_upto and not tool.exists():
            append(tool, session.tool_output)
            expected += 1
        quiet(hook(project, event, SID, main))
        commits.append(head(project.memory))
        assert redactions_per_commit(project.memory).get(commits[-1]) == expected, event
        assert_stored_lines(stored(project.memory, SID), whole(session.main, upto))
    assert len(set(commits)) == 4, "every hook committed"

    # every secret, in every object ever written: no commit, tree or blob holds one
    assert leaks(project.memory, session.secrets) == []
    assert leaks_on_disk(project.memory, session.secrets) == []
    assert_stored_lines(stored(project.memory, SID), session.main)
    assert_stored_lines(stored(project.memory, SID, "subagents/agent-a5e1c0d.jsonl"),
                        session.subagent)
    assert stored(project.memory, SID, "tool-results/toolu_01Qx7Env.txt") == \
        session.tool_output.replace(session.tool_secret.value.encode(),
                                    marker("stripe-key").encode())
    everything = b"".join(stored(project.memory, SID, rel) for rel in (
        "main.jsonl", "subagents/agent-a5e1c0d.jsonl", "tool-results/toolu_01Qx7Env.txt"))
    wanted = expected_markers(session.main + session.subagent) + Counter(["stripe-key"])
    assert markers_in(everything) == wanted
    assert sum(redactions_per_commit(project.memory).values()) == sum(wanted.values())
    assert ALLOWED.encode() in everything  # the allow-list reached the hook
    assert_fsck(project.memory)
    assert project.git("status", "--porcelain") == ""

    done = cmem("scan", cwd=project.root)
    assert (done.returncode, done.stdout) == (0, b"no secrets found\n"), done.stderr


def write_session(folder: Path, sid: str, session: Session) -> None:
    """The session's files where Claude Code keeps them."""
    append(folder / f"{sid}.jsonl", b"".join(line.data for line in session.main))
    append(folder / sid / "subagents" / "agent-a5e1c0d.jsonl",
           b"".join(line.data for line in session.subagent))
    append(folder / sid / "tool-results" / "toolu_01Qx7Env.txt", session.tool_output)


@dataclass
class Imported:
    secrets: list[Secret]
    live: Session
    gone: Session
    gone_sid: str
    conflicting: list[Line]
    legacy: Path


def import_case(project: Project, tmp_path: Path) -> Imported:
    """A session Claude Code still has (with its subagent and tool-results files), one only a
    claude-memory backup still has, and a backup that conflicts with the live transcript (so
    it is kept under imported/)."""
    configure_redaction(project.memory)
    live = make_session(SID, 21, 300_000)
    write_session(project.transcripts, SID, live)
    gone_sid = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
    gone = make_session(gone_sid, 22, 120_000)
    legacy = tmp_path / "claude-memory"
    append(legacy / "raw" / "20260301_090000Z_prompt_input_exit.jsonl",
           b"".join(line.data for line in gone.main))
    r = Records(SID, random.Random(23))
    other = Secret("openai-key", cat("sk-", "svcacct-", mixed(40)))
    fork = r.prompt(cat("try again with ", other.value, " instead"))
    conflicting = live.main[:3] + [Line(encode(fork), [other], fork)]
    append(legacy / "raw" / "20260301_100000Z_clear.jsonl",
           b"".join(line.data for line in conflicting))
    done = cmem("import", "--claude-memory", str(legacy), cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert b"2 sessions looked at, 2 imported in 2 commits" in done.stdout, done.stdout
    return Imported(live.secrets + gone.secrets + [other], live, gone, gone_sid, conflicting,
                    legacy)


def test_import_redacts_live_transcripts_and_claude_memory_backups(project: Project,
                                                                    tmp_path: Path) -> None:
    """Every file `cmem import` stores is redacted, and the trailers count every marker."""
    case = import_case(project, tmp_path)
    assert leaks(project.memory, case.secrets) == []
    assert_stored_lines(stored(project.memory, SID), case.live.main)
    assert_stored_lines(stored(project.memory, SID, "subagents/agent-a5e1c0d.jsonl"),
                        case.live.subagent)
    assert_stored_lines(stored(project.memory, case.gone_sid), case.gone.main)
    assert_stored_lines(stored(project.memory, SID, "imported/20260301_100000Z_clear.jsonl"),
                        case.conflicting)
    lines = case.live.main + case.live.subagent + case.gone.main + case.conflicting
    wanted = sum(expected_markers(lines).values()) + 1  # and the tool-results file's
    assert sum(redactions_per_commit(project.memory).values()) == wanted
    assert_fsck(project.memory)


def test_import_again_adds_nothing_when_the_backups_held_secrets(project: Project,
                                                                 tmp_path: Path) -> None:
    """A second run finds everything stored: a backup is compared with what is stored as it
    would be stored (redacted), not as it lies on disk."""
    case = import_case(project, tmp_path)
    before = git_at(project.memory, "ls-tree", "-r", "--name-only", "HEAD")
    again = cmem("import", "--claude-memory", str(case.legacy), cwd=project.root)
    assert again.returncode == 0, again.stderr
    assert b"nothing new to import" in again.stdout, again.stdout
    assert git_at(project.memory, "ls-tree", "-r", "--name-only", "HEAD") == before


def test_import_redacts_a_truncated_claude_memory_backup(project: Project,
                                                         tmp_path: Path) -> None:
    """claude-memory's `cp` could stop mid-line. A copy cut before any whole record that names
    its session is kept under imported/claude-memory/raw/: transcript bytes all the same, so
    they are redacted like every other transcript byte."""
    r = Records(SID, random.Random(31))
    token = Secret("github-token", cat("gh", "p_", mixed(36)))
    summary = {"type": "summary", "summary": "Deploy pipeline credentials",
               "leafUuid": str(uuid.UUID(int=5))}
    record = encode(r.prompt(cat("push with https://", token.value, "@github.com/acme/shop.git "
                                 "and tell me when it is done")))
    legacy = tmp_path / "claude-memory"
    cut = record.index(b"and tell me")
    append(legacy / "raw" / "20260301_120000Z_compact.jsonl", encode(summary) + record[:cut])
    empty = tmp_path / "no-claude-code"
    empty.mkdir()
    done = cmem("import", "--claude-memory", str(legacy), "--projects-dir", str(empty),
                cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert "imported/claude-memory/raw/20260301_120000Z_compact.jsonl" in \
        project.git("ls-tree", "-r", "--name-only", "HEAD")
    assert leaks(project.memory, [token]) == []


def session_start(project: Project, sid: str) -> None:
    data = json.dumps(payload("SessionStart", sid, project.transcripts / f"{sid}.jsonl",
                              project.root)).encode()
    done = run_shell(project, project.hook_command("SessionStart"), data)
    assert done.returncode == 0 and b"systemMessage" not in done.stdout, done


def same_stamp_edit(path: Path) -> None:
    """Change a byte of a harmless line, keeping the file's size and mtime: only a reader of
    the file can tell (how git's own tests check that its stat cache skips a file)."""
    info = path.stat()
    data = path.read_bytes()
    at = data.index(b'"version":"2.1.38"') + len(b'"version":"2.1.3')  # in every record
    path.write_bytes(data[:at] + b"9" + data[at + 1:])
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_session_start_catch_up_redacts_and_then_leaves_the_session_alone(
        project: Project) -> None:
    """SessionStart backs up sessions whose SessionEnd never ran (redacted like any backup) and
    remembers each one stored in full, so that the next SessionStart does not read it again;
    a session that held secrets is no exception (its stored copy is shorter or longer than
    the file, not different)."""
    configure_redaction(project.memory)
    with_secrets = make_session(SID, 91, 40_000)
    clean_sid = "3e2d1c0b-9a8f-4e7d-8c6b-5a4f3e2d1c0b"
    append(project.transcripts / f"{SID}.jsonl",
           b"".join(line.data for line in with_secrets.main))
    append(project.transcripts / f"{clean_sid}.jsonl",
           b"".join(line.data for line in with_secrets.main if not line.secrets))
    session_start(project, "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d")
    assert leaks(project.memory, with_secrets.secrets) == []
    assert_stored_lines(stored(project.memory, SID), with_secrets.main)
    caught_up = head(project.memory)

    for sid in (clean_sid, SID):
        same_stamp_edit(project.transcripts / f"{sid}.jsonl")
    session_start(project, "7b6c5d4e-3f2a-4b1c-8d9e-0f1a2b3c4d5e")
    changed = git_at(project.memory, "diff", "--name-only", caught_up, "HEAD", "--",
                     "transcripts")
    assert f"transcripts/{clean_sid}/" not in changed, "the control: a stored session is skipped"
    assert changed == "", "the session with secrets was read (and backed up) again"


def test_commands_that_back_up_the_running_session_redact(project: Project) -> None:
    """`cmem doc save` commits the running session's transcript with the document."""
    configure_redaction(project.memory)
    session = make_session(SID, 95, 40_000)
    append(project.transcripts / f"{SID}.jsonl",
           b"".join(line.data for line in session.main))
    env = {**os.environ, "CLAUDE_CODE_SESSION_ID": SID}
    done = cmem("doc", "save", "-", "--title", "Keys", cwd=project.root, env=env,
                input=b"# Keys\n\nRotated.\n")
    assert done.returncode == 0, done.stderr
    assert_stored_lines(stored(project.memory, SID), session.main)
    assert redactions_per_commit(project.memory)[head(project.memory)] == \
        sum(expected_markers(session.main).values())
    assert leaks(project.memory, session.secrets) == []


# ---------------------------------------------------------------- sync between two devices


@dataclass
class Device:
    """One machine: a project with cmem set up, under its own HOME."""

    project: Project

    @property
    def memory(self) -> Path:
        return Path(self.project.memory)

    @property
    def claude_folder(self) -> Path:
        return Path(self.project.home, ".claude", "projects", encode_project(self.project.root))

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        home = self.project.home
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
        return cmem(*args, cwd=self.project.root, env=env)

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout.decode()


def new_device(base: Path, name: str) -> Device:
    home, root = base / name / "home", base / name / "project"
    home.mkdir(parents=True)
    root.mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    device = Device(Project(root, home))
    device.ok("init", "--device", name)
    return device


def more_lines(session: str, seed: int, count: int) -> list[Line]:
    """`count` records of the catalog (new secrets) with a little talk between them."""
    rng = random.Random(seed)
    _RNG.seed(seed)
    r = Records(session, rng)
    lines = []
    for secrets, record in catalog(r)[:count]:
        talk = filler(r, rng)
        lines += [Line(encode(talk), [], talk), Line(encode(record), secrets, record)]
    return lines


def bare_remote(folder: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", str(folder)], check=True)
    return folder


def remote_branch(bare: Path) -> str:
    return git_at(bare, "for-each-ref", "--format=%(refname) %(objectname)")


def test_a_merge_redacts_what_a_device_without_redaction_pushed(project: Project,
                                                                tmp_path: Path) -> None:
    """A session goes on on two devices; B has `redaction: false`. B's own repository holds
    its secrets and B's push is refused until --allow-secrets. When A merges, B's lines pass
    A's filter: the merged transcript in A's repository holds none of B's secrets."""
    a = Device(project)
    configure_redaction(a.memory)
    bare = bare_remote(tmp_path / "remote.git")
    first = make_session(SID, 41, 60_000)
    write_session(a.claude_folder, SID, first)
    quiet(hook(project, "SessionEnd", SID, a.claude_folder / f"{SID}.jsonl"))
    a.ok("remote", "add", "origin", str(bare))
    a.ok("sync")  # A's commits hold no secret: not refused

    b = new_device(tmp_path, "desktop")
    set_config(b.memory, redaction="false", auto_sync="false",
               redaction_allow=f"['{ALLOWED}']")  # allowed here too: cmem.yaml is per device
    b.ok("remote", "add", "origin", str(bare))
    b.ok("sync")
    b.ok("restore", SID)
    on_b = b.claude_folder / f"{SID}.jsonl"
    from_b = more_lines(SID, 42, 12)
    append(on_b, b"".join(line.data for line in from_b))
    quiet(hook(b.project, "SessionEnd", SID, on_b))
    b_secrets = [s for line in from_b for s in line.secrets]
    assert leaks(b.memory, b_secrets) != []  # B keeps them: its choice, its disk

    pushed = remote_branch(bare)
    for command in (["push"], ["sync"]):
        refused = b.run(*command)
        assert refused.returncode == 1, (command, refused.stdout, refused.stderr)
        assert b"not pushed" in refused.stderr and b"--allow-secrets" in refused.stderr
        assert not any(n in refused.stdout + refused.stderr
                       for s in b_secrets for n in needles(s))
        assert remote_branch(bare) == pushed, "nothing arrived at the remote"
    b.ok("push", "--allow-secrets")
    assert remote_branch(bare) == f"refs/heads/main {head(b.memory)}\n"

    from_a = more_lines(SID, 43, 8)
    append(a.claude_folder / f"{SID}.jsonl", b"".join(line.data for line in from_a))
    quiet(hook(project, "SessionEnd", SID, a.claude_folder / f"{SID}.jsonl"))
    assert "merge from origin" in a.ok("sync")  # and pushed: the merge holds no secret

    merged = stored(a.memory, SID)
    expected = [line.data if not line.secrets else encode(redacted(line.record, line.secrets))
                for line in first.main + from_b + from_a]
    assert Counter(merged.splitlines(keepends=True)) == Counter(expected)
    tree = git_at(a.memory, "ls-tree", "-r", "HEAD").split("\n")[:-1]
    blobs = "".join(entry.split()[2] + "\n" for entry in tree).encode()
    contents = subprocess.run(["git", "-C", str(a.memory), "cat-file", "--batch"],
                              input=blobs, capture_output=True, check=True).stdout
    every = first.secrets + [s for line in from_b + from_a for s in line.secrets]
    assert [s.rule for s in every for n in needles(s) if n in contents] == []
    done = a.run("scan", f"{head(b.memory)}..HEAD")
    assert (done.returncode, done.stdout) == (0, b"no secrets found\n"), done.stdout
    assert_fsck(a.memory)


# ================================================================ 2. still incremental


def loose_objects(memory: Path) -> set[str]:
    folder = memory / ".git" / "objects"
    return {d.name + f.name for d in folder.iterdir() if len(d.name) == 2 for f in d.iterdir()}


def object_types(memory: Path, oids: set[str]) -> dict[str, str]:
    out = subprocess.run(["git", "-C", str(memory), "cat-file", "--batch-check"],
                         input="".join(o + "\n" for o in sorted(oids)).encode(),
                         capture_output=True, check=True).stdout.decode()
    return {line.split()[0]: line.split()[1] for line in out.splitlines()}


def listing(memory: Path, where: str) -> dict[str, str]:
    """name -> blob id of the entries of a tree."""
    out = git_at(memory, "ls-tree", f"HEAD:{where}")
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def test_an_append_with_redaction_on_writes_objects_only_for_the_tail(project: Project) -> None:
    """Redacted chunks differ from the file, yet a backup after an append still reads and
    writes only the tail: the earlier chunks, redactions and all, keep their blobs."""
    configure_redaction(project.memory)
    session = make_session(SID, 51, 1_200_000)
    main = project.transcripts / f"{SID}.jsonl"
    append(main, b"".join(line.data for line in session.main))
    quiet(hook(project, "PreCompact", SID, main))
    where = f"transcripts/{SID}/main.jsonl"
    old = listing(project.memory, where)
    assert len(old) >= 5
    earlier = sorted(old)[:-1]
    redacted_before = [n for n in earlier if markers_in(git_at(
        project.memory, "cat-file", "blob", old[n]).encode())]
    assert len(redacted_before) >= 3, "the chunks that stay hold redactions"

    objects = loose_objects(project.memory)
    added = more_lines(SID, 52, 10)
    append(main, b"".join(line.data for line in added))
    quiet(hook(project, "PreCompact", SID, main))
    now = listing(project.memory, where)
    assert {n: now[n] for n in earlier} == {n: old[n] for n in earlier}
    tail = sorted(set(now) - set(earlier))
    assert tail[0] == sorted(old)[-1] and now[tail[0]] != old[tail[0]], "the last chunk re-cut"
    source_map = listing(project.memory, f"transcripts/{SID}")["main.jsonl.source"]

    new = loose_objects(project.memory) - objects
    types = object_types(project.memory, new)
    # blobs: the re-cut last chunk, any new ones, the offset map; trees: main.jsonl, the
    # session, transcripts and the root; and the commit
    assert Counter(types.values()) == Counter({"blob": len(tail) + 1, "tree": 4, "commit": 1})
    assert {o for o, t in types.items() if t == "blob"} == {now[n] for n in tail} | {source_map}
    assert redactions_per_commit(project.memory)[head(project.memory)] == \
        sum(expected_markers(added).values())
    assert_stored_lines(stored(project.memory, SID), session.main + added)


# ================================================================ 3. scan and push


SCANNED = re.compile(r"^([0-9a-f]{8}) (\S+):(\d+): ([a-z-]+) (.+)$")


def expected_hits(sid: str, lines: list[Line]) -> set[tuple[str, int, str]]:
    """(stored file, 1-based line, rule) of every secret in the lines."""
    return {(f"transcripts/{sid}/main.jsonl", number, rule)
            for number, line in enumerate(lines, 1) for rule in occurrences(line.record,
                                                                           line.secrets)}


def scan_hits(out: bytes) -> set[tuple[str, int, str]]:
    found = set()
    for text in out.decode().splitlines():
        match = SCANNED.match(text)
        assert match, text
        found.add((match[2], int(match[3]), match[4]))
    return found


def test_scan_finds_what_a_repository_without_redaction_holds_and_push_refuses_it(
        project: Project, tmp_path: Path) -> None:
    """A repository made with `redaction: false`: `cmem scan` names file, line and rule of
    every secret (masked), over all history, a range or what one commit reaches; `push` and
    `sync` send nothing to the remote until --allow-secrets."""
    configure_redaction(project.memory)  # scan and push use its extra rule and allow-list
    set_config(project.memory, redaction="false")
    first_sid, second_sid = SID, "5c4b3a29-1807-4f6e-9d5c-4b3a29180706"
    first = make_session(first_sid, 61, 400_000).main  # two chunks: line numbers go on
    second = more_lines(second_sid, 62, 6)
    secrets = [s for line in first + second for s in line.secrets]
    for sid, lines in ((first_sid, first), (second_sid, second)):
        path = project.transcripts / f"{sid}.jsonl"
        append(path, b"".join(line.data for line in lines))
        quiet(hook(project, "PreCompact", sid, path))
    a, b = git_at(project.memory, "rev-list", "-2", "HEAD").split()[::-1]
    assert redactions_per_commit(project.memory) == {}  # nothing redacted, nothing counted
    assert len(listing(project.memory, f"transcripts/{first_sid}/main.jsonl")) == 2

    done = cmem("scan", cwd=project.root)
    assert done.returncode == 1, done.stderr
    assert scan_hits(done.stdout) == expected_hits(first_sid, first) | \
        expected_hits(second_sid, second)
    shown = done.stdout + done.stderr
    assert not [s.rule for s in secrets for n in needles(s) if n in shown], "previews masked"

    ranged = cmem("scan", f"{a}..{b}", cwd=project.root)
    assert ranged.returncode == 1
    assert scan_hits(ranged.stdout) == expected_hits(second_sid, second)
    only_a = cmem("scan", a[:12], cwd=project.root)
    assert scan_hits(only_a.stdout) == expected_hits(first_sid, first)
    nothing = cmem("scan", f"{b}..{b}", cwd=project.root)
    assert (nothing.returncode, nothing.stdout) == (0, b"no secrets found\n")

    as_json = cmem("scan", "--json", f"{a}..", cwd=project.root)
    assert as_json.returncode == 1
    hits = json.loads(as_json.stdout)
    assert {(h["path"], h["rule"]) for h in hits} == {
        (path, rule) for path, _, rule in expected_hits(second_sid, second)}
    assert {h["commit"] for h in hits} == {b}
    assert all(h["preview"] for h in hits)
    assert not [s.rule for s in secrets for n in needles(s) if n in as_json.stdout]

    bare = bare_remote(tmp_path / "remote.git")
    assert cmem("remote", "add", "origin", str(bare), cwd=project.root).returncode == 0
    for command in (["push"], ["sync"]):
        refused = cmem(*command, cwd=project.root)
        assert refused.returncode == 1, (command, refused.stdout)
        assert b"not pushed" in refused.stderr and b"--allow-secrets" in refused.stderr
        assert remote_branch(bare) == ""
        assert "count: 0" in git_at(bare, "count-objects", "-v")
        assert "in-pack: 0" in git_at(bare, "count-objects", "-v")
    allowed = cmem("push", "--allow-secrets", cwd=project.root)
    assert allowed.returncode == 0, allowed.stderr
    assert remote_branch(bare) == f"refs/heads/main {head(project.memory)}\n"
    # only what the remote lacks is scanned: once pushed, a push has nothing to refuse
    again = cmem("push", cwd=project.root)
    assert again.returncode == 0 and b"up to date" in again.stdout, again.stderr


def test_scan_json_numbers_lines_as_the_text_does(project: Project) -> None:
    """`--json` is the same findings for scripts: `line` is the line the text output shows
    (1-based, as in `file:line`), not an index that is off by one."""
    configure_redaction(project.memory)
    set_config(project.memory, redaction="false")
    lines = more_lines(SID, 63, 4)
    path = project.transcripts / f"{SID}.jsonl"
    append(path, b"".join(line.data for line in lines))
    quiet(hook(project, "PreCompact", SID, path))
    text = scan_hits(cmem("scan", cwd=project.root).stdout)
    assert text == expected_hits(SID, lines)
    hits = json.loads(cmem("scan", "--json", cwd=project.root).stdout)
    assert {(h["path"], h["line"], h["rule"]) for h in hits} == text


# ================================================================ 4. private files, any umask


def cmem_open_umask(*args: str, cwd: Path, input: bytes | None = None
                    ) -> subprocess.CompletedProcess[bytes]:
    """The installed cmem started with umask 000, as a careless shell or service might."""
    script = Path(PYTHON).parent / "cmem"  # as conftest.cmem finds it
    command = [str(script)] if script.exists() else [PYTHON, "-m", "cmem_git"]
    return subprocess.run([*command, *args], cwd=cwd, input=input, capture_output=True,
                          env=dict(os.environ), timeout=120, preexec_fn=lambda: os.umask(0))


def not_private(folder: Path) -> list[str]:
    """Every directory under `folder` (itself included) that is not 0700 or stricter, and every
    file that is not 0600 or stricter. The one file allowed its owner's x bit is the sample
    libgit2 writes into .git/hooks when it creates a repository (0755 less the umask)."""
    found = []
    for path in [folder, *sorted(folder.rglob("*"))]:
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        allowed = 0o700 if stat.S_ISDIR(mode) or path.parent.name == "hooks" else 0o600
        if stat.S_IMODE(mode) & ~allowed:
            found.append(f"{oct(stat.S_IMODE(mode))} {path.relative_to(folder)}")
    return found


def test_everything_cmem_writes_is_private_under_umask_000(tmp_path: Path,
                                                           hermetic: Path) -> None:
    """init, every hook, a hook failure (cmem's error log), a document, push and a pull that
    brings objects and a file from elsewhere, and a restore into a ~/.claude that is gone:
    all run with umask 000, and nothing they leave can be read by another user."""
    root = tmp_path / "private project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    done = cmem_open_umask("init", "--device", "laptop", cwd=root)
    assert done.returncode == 0, done.stderr
    project = Project(root, hermetic)
    set_config(project.memory, stop_throttle_minutes="0", auto_sync="false")
    session = make_session(SID, 71, 300_000)
    write_session(project.transcripts, SID, session)
    main = project.transcripts / f"{SID}.jsonl"
    for event in ("SessionStart", "PreCompact", "Stop", "SessionEnd"):
        done = hook(project, event, SID, main, umask=0)
        assert done.returncode == 0 and b"systemMessage" not in done.stdout, done
    broken = run_shell(project, project.hook_command("PreCompact"), b"{not json", umask=0)
    assert broken.returncode == 0 and b"cmem" in broken.stdout  # recorded in cmem's state
    assert (project.memory / ".git" / "cmem" / "errors.jsonl").is_file()
    saved = cmem_open_umask("doc", "save", "-", "--title", "Deploy keys", cwd=root,
                            input=b"# Deploy keys\n\nRotated them.\n")
    assert saved.returncode == 0, saved.stderr

    bare = bare_remote(tmp_path / "remote.git")
    for args in (["remote", "add", "origin", str(bare)], ["push", "--allow-secrets"]):
        done = cmem_open_umask(*args, cwd=root)
        assert done.returncode == 0, (args, done.stderr)
    other = tmp_path / "other clone"
    subprocess.run(["git", "clone", "-q", str(bare), str(other)], check=True)
    (other / "notes.md").write_text("from another machine\n")
    git_at(other, "add", "notes.md")
    git_at(other, "commit", "-qm", "notes from elsewhere")
    git_at(other, "push", "-q", "origin", "HEAD:main")
    pulled = cmem_open_umask("pull", cwd=root)
    assert pulled.returncode == 0, pulled.stderr
    assert (project.memory / "notes.md").is_file()

    for part in ("objects", "refs", "logs", "index", "cmem", "refs/cmem/incoming/origin/main",
                 "refs/remotes/origin/main"):
        assert (project.memory / ".git" / part).exists(), part
    assert not_private(project.memory) == []

    shutil.rmtree(hermetic / ".claude")
    restored = cmem_open_umask("restore", SID, cwd=root)
    assert restored.returncode == 0, restored.stderr
    assert main.read_bytes().count(b"\n") == len(session.main)
    assert (project.transcripts / SID / "subagents" / "agent-a5e1c0d.jsonl").is_file()
    assert not_private(hermetic / ".claude") == []
    assert not_private(project.memory) == []


# ================================================================ 5. no password in a remote URL


def remote_config(memory: Path) -> str:
    return git_at(memory, "config", "--get-regexp", r"^remote\.", check=False)


def assert_refused(project: Project, url: str, secret: str) -> None:
    done = cmem("remote", "add", "origin", url, cwd=project.root)
    assert done.returncode == 1, (url, done.stdout)
    assert b"hint:" in done.stderr and secret.encode() not in done.stdout + done.stderr, url
    assert secret not in (project.memory / ".git" / "config").read_text(), url
    assert remote_config(project.memory) == "", url


def test_remote_urls_with_credentials_are_refused_and_never_stored(project: Project) -> None:
    """A password (in any scheme, percent-encoded too) or a token in the user name part is
    refused, and neither the message nor .git/config holds it; a URL without credentials, or
    with a plain user name, is kept as given."""
    password = cat("Pw", mixed(14))
    for url in (f"https://deploy:{password}@git.example.com/acme/memory.git",
                f"HTTP://deploy:{password}@git.example.com/acme/memory.git",
                f"ssh://git:{password}@git.example.com:2222/acme/memory.git",
                f"git://deploy:{password}@git.example.com/memory.git"):
        assert_refused(project, url, password)
    encoded = cat("p%40", mixed(12))  # p@…, percent-encoded as a URL must hold it
    assert_refused(project, f"https://me:{encoded}@git.example.com/memory.git", encoded)
    for token in (cat("gh", "p_", mixed(36)), cat("gh", "s_", mixed(36)),
                  cat("github", "_pat_", mixed(22), "_", mixed(59)), cat("gl", "pat-", mixed(20)),
                  rnd(40, HEX)):  # Gitea and Gogs tokens: 40 hex digits
        assert_refused(project, f"https://{token}@git.example.com/acme/memory.git", token)
    for user in ("x-access-token", "oauth2"):
        token = mixed(40)
        assert_refused(project, f"https://{user}:{token}@github.com/acme/memory.git", token)
    assert cmem("remote", "show", cwd=project.root).stdout == b""

    plain = "https://git.example.com/acme/memory.git"
    done = cmem("remote", "add", "origin", plain, cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert remote_config(project.memory).splitlines()[0] == f"remote.origin.url {plain}"
    assert cmem("remote", "show", cwd=project.root).stdout == f"origin\t{plain}\n".encode()
    named = "https://alice@git.example.com/acme/memory.git"  # a user name is no secret
    assert cmem("remote", "add", "mirror", named, cwd=project.root).returncode == 0
    assert f"remote.mirror.url {named}" in remote_config(project.memory)


def test_remote_add_refuses_a_user_name_that_redaction_calls_a_token(project: Project) -> None:
    """`https://<token>@host/...`: an opaque token as the user name (what `url-token` redacts
    from transcripts) must not land in .git/config either, whatever its length."""
    token = mixed(24)
    url = f"https://{token}@gitlab.example.com/acme/memory.git"
    assert [f.rule for f in Redactor().findings(json.dumps({"url": url}).encode())] == \
        ["url-token"]
    assert_refused(project, url, token)
