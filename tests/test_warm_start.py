"""SessionStart with nothing new answers from .git/cmem/start.json without loading pygit2
(issue 13, point 4), says byte for byte what the full path says, and takes the full path as
soon as anything it depends on changed: a memory file, a transcript, the config, a pending
error, the branch.

Every SessionStart here is the real hook command from settings.local.json, with the event's
JSON on stdin; whether it loaded pygit2 is read from Python's own import log (-X importtime,
through PYTHONPROFILEIMPORTTIME)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, MINIMAL_PATH, Project, cmem, git, payload, run_hook

from cmem_git.git import errorlog

SHORT = CORPUS / "spotter" / "short.jsonl"
SESSIONS = [f"0a4e5a11-0000-4000-8000-{n:012d}" for n in range(3)]
_AGES = re.compile(r"\d+ (s|min|h|d)\b")


def session_end(project: Project, session: str, lines: int | None = None) -> None:
    """What Claude Code does at the end of a session: the transcript is there, SessionEnd runs
    (detached, as installed; run_hook waits for its process)."""
    transcript = project.transcripts / f"{session}.jsonl"
    records = SHORT.read_bytes().splitlines(keepends=True)
    transcript.write_bytes(b"".join(records[:lines]))
    done = run_hook(project, "SessionEnd", payload("SessionEnd", session, transcript,
                                                   project.root))
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


def session_start(project: Project, session: str, source: str = "startup"
                  ) -> tuple[str, bool]:
    """(the context, whether the hook loaded pygit2)."""
    transcript = project.transcripts / f"{session}.jsonl"
    data = json.dumps(payload("SessionStart", session, transcript, project.root, source=source))
    env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
           "CLAUDE_PROJECT_DIR": str(project.root), "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(["sh", "-c", project.hook_command("SessionStart")], input=data.encode(),
                          capture_output=True, cwd=project.home, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    log = done.stderr.decode()
    assert all(line.startswith("import time:") for line in log.splitlines()), log
    output = json.loads(done.stdout)
    assert set(output) == {"hookSpecificOutput"}, output  # no problem to report
    text = output["hookSpecificOutput"]["additionalContext"]
    return text, re.search(r"\| +pygit2$", log, re.M) is not None


def full_path_says(project: Project, session: str, source: str = "startup") -> str:
    """What the full path says in the same state: the cache and what the context remembers are
    put back as they were afterwards."""
    state = project.memory / ".git" / "cmem"
    kept = {name: (state / name).read_bytes() for name in ("start.json", "context.json")
            if (state / name).exists()}
    (state / "start.json").unlink()
    text, loaded = session_start(project, session, source)
    assert loaded
    for name, data in kept.items():
        (state / name).write_bytes(data)
    return text


@pytest.fixture
def warm(project: Project) -> Project:
    for session in SESSIONS:
        session_end(project, session)
    return project


def test_nothing_new_answers_without_pygit2_and_as_the_full_path_does(warm: Project) -> None:
    said = {}
    for source in ("startup", "clear", "resume", "compact"):
        expected = full_path_says(warm, SESSIONS[1], source)
        said[source], loaded = session_start(warm, SESSIONS[1], source)
        assert not loaded, source
        assert _AGES.sub("N", said[source]) == _AGES.sub("N", expected), source
    assert "3 commits in 3 sessions" in said["startup"]
    assert said["compact"].startswith("cmem (compact): what changed since")
    tip = git(warm.memory, "rev-parse", "HEAD")
    assert session_start(warm, SESSIONS[2])[1] is False
    assert git(warm.memory, "rev-parse", "HEAD") == tip  # the warm path commits nothing
    assert git(warm.memory, "status", "--porcelain") == ""


def test_the_first_session_start_after_session_end_is_warm(project: Project) -> None:
    session_end(project, SESSIONS[0])
    text, loaded = session_start(project, SESSIONS[1])
    assert not loaded and f"session {SESSIONS[0]}" in text


def test_an_edited_memory_file_takes_the_full_path_and_is_committed(warm: Project) -> None:
    active = warm.memory / "active-context.md"
    active.write_text(active.read_text() + "\nA decision made by hand.\n")
    text, loaded = session_start(warm, SESSIONS[0])
    assert loaded
    assert "A decision made by hand." in git(warm.memory, "show", "HEAD:active-context.md")
    assert session_start(warm, SESSIONS[0])[1] is False  # and warm again after


def test_a_grown_or_new_transcript_takes_the_full_path_and_is_backed_up(warm: Project) -> None:
    transcript = warm.transcripts / f"{SESSIONS[0]}.jsonl"
    with transcript.open("ab") as handle:
        handle.write(SHORT.read_bytes().splitlines(keepends=True)[0])
    assert session_start(warm, SESSIONS[1])[1]
    stored = cmem("cat", SESSIONS[0], cwd=warm.root)
    assert stored.returncode == 0 and stored.stdout == transcript.read_bytes()

    fresh = "0a4e5a11-0000-4000-8000-0000000000ff"
    shutil.copyfile(SHORT, warm.transcripts / f"{fresh}.jsonl")
    text, loaded = session_start(warm, SESSIONS[1])
    assert loaded and f"session {fresh}" in text


def test_a_pending_error_takes_the_full_path_and_is_reported(warm: Project) -> None:
    errorlog.record(warm.memory / ".git", "stop", "something went wrong in a detached hook")
    done = run_hook(warm, "SessionStart", payload(
        "SessionStart", SESSIONS[0], warm.transcripts / f"{SESSIONS[0]}.jsonl", warm.root,
        source="startup"))
    output = json.loads(done.stdout)
    assert "something went wrong" in output["hookSpecificOutput"]["additionalContext"]
    assert "systemMessage" in output
    text, loaded = session_start(warm, SESSIONS[0])  # reported once: warm again
    assert not loaded and "something went wrong" not in text


def test_a_config_change_or_a_commit_from_elsewhere_takes_the_full_path(warm: Project) -> None:
    config = warm.memory / "cmem.yaml"
    config.write_text(re.sub(r"(?m)^staleness_hours: .*$", "staleness_hours: 0.0001",
                             config.read_text()))
    text, loaded = session_start(warm, SESSIONS[0])
    assert loaded and "probably stale" in text
    done = cmem("doc", "save", "-", "--title", "Checkpoint", cwd=warm.root,
                input=b"# Checkpoint\n\nAll done so far.\n")
    assert done.returncode == 0, done.stderr
    text, loaded = session_start(warm, SESSIONS[0])
    assert loaded and "Last session document: 'Checkpoint'" in text


def test_a_damaged_cache_is_ignored(warm: Project) -> None:
    cache = warm.memory / ".git" / "cmem" / "start.json"
    for garbage in (b"", b"{not json", b"[]", json.dumps({"version": 1}).encode(),
                    json.dumps({"version": 1, "tip": "0" * 40, "facts": {}, "settings": {},
                                "files": {}, "folders": {}, "trees": {}}).encode()):
        cache.write_bytes(garbage)
        text, loaded = session_start(warm, SESSIONS[0])
        assert loaded and "cmem (session memory" in text


def test_disabled_session_start_is_not_answered_from_the_cache(warm: Project) -> None:
    config = warm.memory / "cmem.yaml"
    text = config.read_text()
    assert "session_start: true" in text
    config.write_text(text.replace("session_start: true", "session_start: false"))
    session_end(warm, SESSIONS[0], lines=3)  # a detached hook that keeps the cache
    done = run_hook(warm, "SessionStart", payload(
        "SessionStart", SESSIONS[0], warm.transcripts / f"{SESSIONS[0]}.jsonl", warm.root))
    assert done.stdout == b""


def test_the_cache_holds_no_transcript_text(warm: Project) -> None:
    cache = (warm.memory / ".git" / "cmem" / "start.json").read_text()
    for line in Path(SHORT).read_bytes().splitlines()[:5]:
        record = json.loads(line)
        content = json.dumps(record.get("message", {}).get("content", ""))
        assert len(content) < 20 or content not in cache
