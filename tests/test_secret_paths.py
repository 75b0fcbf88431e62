"""Every write path redacts (issue 11): each real command or hook that writes a blob is run with
a secret of every kind in what it writes, then every object of the repository
(`git cat-file --batch-all-objects --batch`: loose or packed, reachable or not) is searched for
each raw secret, and for the forms a JSON string or a JSON string inside one would give it.

Redaction happens in one place, the store's commit (store.py); these tests are what keeps a new
command from writing around it.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from adversarial import UNITS
from conftest import Project, cmem, payload, run_hook
from conftest import stored_file as stored
from secret_kinds import env_dump, gcp_service_account, kinds, pem
from test_first_backup import MiB, transcript

from cmem_git.capture import backup, checkpoint
from cmem_git.git import errorlog
from cmem_git.repo.config import Config
from cmem_git.repo.store import Store
from cmem_git.secrets.redact import marker

SID = "5e7c2a10-0b1d-4c3e-8f2a-9d6b4c1e0a77"


def every_object(folder: Path) -> Iterator[bytes]:
    out = subprocess.run(["git", "-C", str(folder), "cat-file", "--batch-all-objects",
                          "--batch"], capture_output=True, check=True).stdout
    pos = 0
    while pos < len(out):
        eol = out.index(b"\n", pos)
        size = int(out[pos:eol].split()[2])
        yield out[eol + 1:eol + 1 + size]
        pos = eol + 1 + size + 1


def needles(secret: str) -> set[bytes]:
    """The secret, as a JSON string and a JSON string in a JSON string hold it, and each line
    of a multi-line one."""
    found = {secret, json.dumps(secret)[1:-1], json.dumps(json.dumps(secret))[3:-3]}
    found |= {line for line in secret.split("\n") if len(line) >= 16}
    return {n.encode() for n in found}


def secrets() -> list[str]:
    values = [k.secret for k in kinds()]
    values += [gcp_service_account()[0]] + env_dump()[0]
    return values


def text_of_all(extra: str = "") -> str:
    """Markdown holding every secret: each kind's line, a .env dump, a GCP credential file."""
    lines = [f"- {k.rule}: {k.text}" for k in kinds()]
    return ("# Notes\n\n" + extra + "\n".join(lines) + "\n\n```\n" + env_dump()[1] + "```\n\n"
            "```json\n" + gcp_service_account()[1] + "\n```\n")


def leaks(folder: Path) -> list[str]:
    wanted = {n: value for value in secrets() for n in needles(value)}
    return sorted({wanted[n].split("\n")[0][:24] for data in every_object(folder)
                   for n in wanted if n in data})


def assert_clean(project: Project) -> None:
    assert leaks(project.memory) == []
    assert project.git("status", "--porcelain") == ""
    subprocess.run(["git", "-C", str(project.memory), "fsck", "--strict"], check=True,
                   capture_output=True)


def kinds_counted() -> int:
    return len({k.rule for k in kinds()})


def test_the_kinds_cover_at_least_45_rules() -> None:
    assert kinds_counted() >= 45


# --- memory files ---------------------------------------------------------------------------

def session_end(project: Project, transcript: Path) -> subprocess.CompletedProcess[bytes]:
    """As installed: detached (entry/detach.py); what it tells the user waits in the error log
    for the next SessionStart (told_next)."""
    return run_hook(project, "SessionEnd", payload("SessionEnd", SID, transcript, project.root))


def told_next(project: Project) -> str:
    """What a detached SessionEnd left for the next SessionStart to tell the user."""
    return " ".join(str(e["message"]) for e in errorlog.pending(project.memory / ".git"))


def small_transcript(project: Project, text: str = "hello") -> Path:
    path = project.transcripts / f"{SID}.jsonl"
    record = {"type": "user", "sessionId": SID, "uuid": str(uuid.uuid4()),
              "message": {"role": "user", "content": text}}
    path.write_text(json.dumps(record) + "\n")
    return path


def test_memory_files_are_committed_redacted_and_rewritten_on_disk(project: Project) -> None:
    for name in ("active-context.md", "project-memory.md"):
        path = project.memory / name
        path.write_text(path.read_text() + "\n" + text_of_all())
    done = session_end(project, small_transcript(project))
    assert done.returncode == 0
    assert "secrets replaced before committing; the file on disk was rewritten" in told_next(project)
    assert_clean(project)
    for name in ("active-context.md", "project-memory.md"):
        on_disk = (project.memory / name).read_bytes()
        assert on_disk == project.git("show", f"HEAD:{name}").encode()
        assert marker("github-token").encode() in on_disk


# --- documents --------------------------------------------------------------------------------

def test_doc_save_body_and_title_and_coalesce_are_redacted(project: Project) -> None:
    token = next(k.secret for k in kinds() if k.rule == "mailgun-key")
    done = cmem("doc", "save", "--title", f"deploy with {token}", "-", cwd=project.root,
                input=text_of_all().encode())
    assert done.returncode == 0, done.stderr
    assert b"note: sessions/" in done.stderr
    done = cmem("coalesce", "-", cwd=project.root, input=text_of_all("more:\n").encode())
    assert done.returncode == 0, done.stderr
    assert_clean(project)
    log = project.git("log", "--format=%B")
    assert "Cmem-Title: deploy with [REDACTED:mailgun-key]" in log


# --- claude-memory folders ------------------------------------------------------------------

def jsonl_with_all(session: str) -> bytes:
    records = [{"type": "user", "sessionId": session, "uuid": str(uuid.uuid4()),
                "message": {"role": "user", "content": k.text}} for k in kinds()]
    records.append({"type": "user", "sessionId": session, "uuid": str(uuid.uuid4()),
                    "toolUseResult": {"stdout": env_dump()[1] + gcp_service_account()[1]}})
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def claude_memory_folder(folder: Path, session: str) -> None:
    (folder / "raw").mkdir(parents=True)
    (folder / "sessions").mkdir()
    (folder / "raw" / "20260115_143000Z_prompt_input_exit.jsonl").write_bytes(
        jsonl_with_all(session))
    (folder / "raw" / "notes.txt").write_text(text_of_all())
    (folder / "sessions" / "session-2026-01-15-1430-deploy.md").write_text(text_of_all())
    (folder / "active-context.md").write_text(text_of_all())
    (folder / "backup.log").write_text(text_of_all())


def test_an_adopted_claude_memory_folder_is_committed_redacted(tmp_path: Path,
                                                             hermetic: Path) -> None:
    root = tmp_path / "legacy project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    claude_memory_folder(root / ".claude" / "memory", SID)
    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr
    done = cmem("import", cwd=root)
    assert done.returncode == 0, done.stderr
    assert_clean(Project(root, hermetic))


def test_import_of_a_claude_memory_folder_is_redacted(project: Project, tmp_path: Path) -> None:
    folder = tmp_path / "old-memory"
    claude_memory_folder(folder, SID)
    done = cmem("import", "--claude-memory", str(folder), cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert project.git("ls-tree", "-r", "--name-only", "HEAD").count("imported/") >= 2
    assert_clean(project)


# --- transcripts and tool results -------------------------------------------------------------

def test_transcripts_and_plain_text_tool_results_are_redacted(project: Project) -> None:
    transcript = project.transcripts / f"{SID}.jsonl"
    transcript.write_bytes(jsonl_with_all(SID))
    results = project.transcripts / SID / "tool-results"
    results.mkdir(parents=True)
    for label in ("RSA PRIVATE", "OPENSSH PRIVATE", "EC PRIVATE"):
        key = pem(label)
        (results / f"toolu_{label[:3].lower()}.txt").write_text(f"$ cat key\n{key}\n$ echo ok\n")
        secrets_extra.append(key)
    (results / "toolu_all.txt").write_text(text_of_all())
    done = session_end(project, transcript)
    assert done.returncode == 0, done.stderr
    assert leaks(project.memory) == []
    assert not any(n in b"".join(every_object(project.memory))
                   for key in secrets_extra for n in needles(key))
    assert project.git("status", "--porcelain") == ""


secrets_extra: list[str] = []


def test_a_first_backup_written_as_a_pack_is_redacted_and_stored_once(tmp_path: Path) -> None:
    """Past PACK_FROM new bytes, chunks go into a pack the backup writes itself: redacted on the
    way in, and neither read back and redacted again nor written a second time as loose
    objects (in process: a hook's background repack would pack such duplicates away)."""
    store = Store.init(tmp_path / "mem")
    redact = checkpoint.redaction(Config())
    assert redact is not None
    filtered: list[int] = []

    def counting(data: bytes) -> tuple[bytes, int]:
        filtered.append(len(data))
        return redact(data)

    store.filter = counting
    data = jsonl_with_all(SID) + transcript(backup.PACK_FROM + MiB) + jsonl_with_all(SID)
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(data)
    result = checkpoint.take(store, checkpoint.Request("pre-compact", SID, path, "dev"))
    assert result.commit is not None and result.problems == []
    assert leaks(store.workdir) == []
    assert sum(filtered) < 1.1 * len(data), "each byte of the transcript is redacted once"
    counted = dict(line.split(": ") for line in subprocess.run(
        ["git", "-C", str(store.workdir), "count-objects", "-v"], capture_output=True,
        text=True, check=True).stdout.splitlines())
    assert int(counted["in-pack"]) > 16
    assert int(counted["count"]) < 16, f"{counted['count']} loose objects: chunks written twice"
    assert stored(store.workdir, SID).count(b"[REDACTED:") >= 2 * kinds_counted()


def test_a_string_of_key_headers_commits_the_whole_session_and_only_the_key_goes(
        project: Project) -> None:
    """The issue's 450 KB string (grep output with many headers and no footer): SessionEnd
    commits the whole session, and the stored record differs only where the key was."""
    key = pem("PRIVATE")
    headers = UNITS["pem-headers"] * 6400
    text = headers[:len(headers) // 2] + key + "\n" + headers[len(headers) // 2:]
    record = {"type": "user", "sessionId": SID, "uuid": str(uuid.uuid4()),
              "toolUseResult": {"stdout": text}}
    before = {"type": "user", "sessionId": SID, "uuid": str(uuid.uuid4()),
              "message": {"role": "user", "content": "grep the keys"}}
    transcript = project.transcripts / f"{SID}.jsonl"
    transcript.write_text(json.dumps(before) + "\n" + json.dumps(record) + "\n")
    assert transcript.stat().st_size > 450_000
    done = session_end(project, transcript)
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    lines = stored(project.memory, SID).splitlines()
    assert len(lines) == 2 and json.loads(lines[0]) == before
    record["toolUseResult"] = {"stdout": text.replace(key, marker("private-key"))}
    assert json.loads(lines[1]) == record
    assert "Cmem-Redactions: 1" in project.git("log", "-1", "--format=%B")


def test_a_file_name_holding_a_secret_is_stored_redacted(project: Project) -> None:
    """A path is in a tree object: the name is stored with the secret replaced."""
    token = next(k.secret for k in kinds() if k.rule == "github-token")
    results = project.transcripts / SID / "tool-results"
    results.mkdir(parents=True)
    (results / f"{token}.txt").write_text("output\n")
    assert session_end(project, small_transcript(project)).returncode == 0
    assert "a file name held a secret: stored as transcripts/" in told_next(project)
    assert leaks(project.memory) == []
    assert "[REDACTED:github-token].txt" in project.git("ls-tree", "-r", "--name-only", "HEAD")


@pytest.fixture(autouse=True)
def _fresh_extra() -> None:
    secrets_extra.clear()




# --- remotes and pushes -----------------------------------------------------------------------

def test_remote_add_refuses_credentials_in_the_query_or_fragment(project: Project) -> None:
    token = next(k.secret for k in kinds() if k.rule == "github-token")
    opaque = next(k.secret for k in kinds() if k.rule == "url-query-token")
    base = "https://git.example.com/acme/memory.git"
    for url in (f"{base}?access_token={token}", f"{base}?private_token={opaque}",
                f"{base}?ref=main&sig={opaque}", f"{base}#{token}",
                f"https://me@git.example.com/memory.git?password={opaque}"):
        done = cmem("remote", "add", "origin", url, cwd=project.root)
        assert done.returncode == 1, url
        assert b"credential.helper" in done.stderr, done.stderr
        assert b"hint: add https://git.example.com/" in done.stderr, done.stderr
        config = (project.memory / ".git" / "config").read_text()
        assert token not in config and opaque not in config
        assert token.encode() not in done.stderr and opaque.encode() not in done.stderr
    done = cmem("remote", "add", "origin", f"{base}?ref=main", cwd=project.root)
    assert done.returncode == 0, done.stderr


def set_redaction(project: Project, on: bool) -> None:
    path = project.memory / "cmem.yaml"
    text = path.read_text().replace("redaction: true", "redaction: false")
    path.write_text(text if not on else text.replace("redaction: false", "redaction: true"))


def test_push_refusal_hint_says_what_fits_the_redaction_setting(project: Project,
                                                                tmp_path: Path) -> None:
    set_redaction(project, on=False)
    done = session_end(project, small_transcript(project, text_of_all()))
    assert done.returncode == 0, done.stderr
    assert leaks(project.memory) != []  # redaction off: stored as written
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    assert cmem("remote", "add", "origin", str(bare), cwd=project.root).returncode == 0
    done = cmem("push", cwd=project.root)
    assert done.returncode == 1 and b"turn `redaction: true` on" in done.stderr, done.stderr
    set_redaction(project, on=True)
    done = cmem("push", cwd=project.root)
    assert done.returncode == 1, done.stderr
    assert b"redaction is on, so these were committed before it was" in done.stderr
    assert b"turn `redaction: true` on" not in done.stderr
    assert subprocess.run(["git", "-C", str(bare), "rev-parse", "--verify", "-q", "main"],
                          capture_output=True).returncode != 0  # nothing reached the remote
