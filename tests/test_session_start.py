"""SessionStart's context (issue 14): short, counted right, names the slash command to run
next, and on a resume or a compaction says only what changed since the context before.

Histories of 40 sessions are built in process (checkpoint.take, as every hook does) to keep
the test quick; the SessionStart under test is always the real hook command from
settings.json, with the event's JSON on stdin.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from conftest import CORPUS, Project, cmem, git, payload, run_hook

from cmem_git.capture import checkpoint
from cmem_git.git import errorlog
from cmem_git.repo.store import Store

SHORT = (CORPUS / "spotter" / "short.jsonl").read_bytes()
RECORDS = SHORT.splitlines(keepends=True)
COMMON_CASE = 2_000
CLAUDE_CODE_CAP = 10_000


def sid(number: int) -> str:
    return f"5e55104e-0000-4000-8000-{number:012d}"


def back_up(project: Project, session: str, lines: int, event: str = "session-end") -> None:
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(b"".join(RECORDS[:lines]))
    store = Store.open(project.memory)
    result = checkpoint.take(store, checkpoint.Request(event, session, transcript, "test"))
    assert result.commit is not None


def document(project: Project) -> None:
    done = cmem("doc", "save", "-", "--title", "Checkpoint", cwd=project.root,
                input=b"# Checkpoint\n\nAll done so far.\n")
    assert done.returncode == 0, done.stderr


def session_start(project: Project, session: str, source: str = "startup") -> str:
    transcript = project.transcripts / f"{session}.jsonl"
    done = run_hook(project, "SessionStart", payload("SessionStart", session, transcript,
                                                     project.root, source=source))
    assert done.returncode == 0 and done.stderr == b"", done.stderr
    output = json.loads(done.stdout)
    assert output["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    text = output["hookSpecificOutput"]["additionalContext"]
    assert isinstance(text, str) and text.strip()
    assert len(text) <= CLAUDE_CODE_CAP
    return text


def pending_from_git(project: Project, since: str | None) -> tuple[int, int, int]:
    """(commits, sessions, records) after `since`, from the trailers, read with git."""
    commits, sessions, records = 0, set(), 0
    span = f"{since}..HEAD" if since else "HEAD"
    out = git(project.memory, "log", "--format=%H%x00%(trailers:key=Cmem-Session,valueonly)"
              "%x00%(trailers:key=Cmem-Added-Lines,valueonly)%x01", span)
    for entry in out.split("\x01"):
        fields = entry.strip().split("\x00")
        if len(fields) == 3 and fields[1].strip():
            commits += 1
            sessions.add(fields[1].strip())
            records += int(fields[2].strip() or 0)
    return commits, len(sessions), records


def pending_in(text: str) -> tuple[int, int, int]:
    match = re.search(r"Backups not in a session document yet: (\d+) commits? in (\d+) sessions?, \+(\d+) records?",
                      text)
    assert match, text
    return int(match[1]), int(match[2]), int(match[3])


def test_forty_sessions_one_pending(project: Project) -> None:
    for number in range(39):
        back_up(project, sid(number), 5 + number % 7)
    document(project)
    documented = git(project.memory, "rev-parse", "HEAD").strip()
    back_up(project, sid(39), 9)

    text = session_start(project, sid(100))
    assert len(text) <= COMMON_CASE, (len(text), text)
    assert pending_in(text) == pending_from_git(project, documented) == (1, 1, 9)
    assert f"- session {sid(39)}: session-end" in text
    assert not any(sid(n) in text for n in range(39))
    assert "Last session document: 'Checkpoint'" in text and "'document: " not in text
    assert "Next: run /resume-latest" in text and "/document-and-save" not in text


def test_forty_sessions_all_pending(project: Project) -> None:
    for number in range(40):
        back_up(project, sid(number), 3 + number % 11)

    text = session_start(project, sid(100))
    assert len(text) <= COMMON_CASE, (len(text), text)
    commits, sessions, records = pending_from_git(project, None)
    assert pending_in(text) == (commits, sessions, records) and sessions == 40
    listed = re.findall(r"^- session (\S+): ", text, re.MULTILINE)
    assert listed == [sid(n) for n in (39, 38, 37, 36, 35)]  # the latest first
    more = re.search(r"^- and 35 more sessions \(\+(\d+) records\)", text, re.MULTILINE)
    assert more, text
    shown = sum(3 + n % 11 for n in (39, 38, 37, 36, 35))
    assert int(more[1]) == records - shown
    # A lot is pending: load it, then fold it into a document (or let it go).
    assert "Next: run /resume-latest" in text and "/document-and-save" in text
    assert "/discard-backup" in text
    assert "No session document yet." in text


def test_after_a_compaction_it_says_to_resume(project: Project) -> None:
    session = sid(7)
    back_up(project, session, 6, "pre-compact")
    text = session_start(project, session, "compact")
    assert "Next: run /resume-latest (the compaction dropped detail" in text


def test_nothing_pending_names_no_resume(project: Project) -> None:
    back_up(project, sid(1), 4)
    document(project)
    text = session_start(project, sid(2))
    assert "Nothing pending: no backups since the last session document." in text
    assert "/resume-latest" not in text
    assert "/document-and-save" not in text


def test_three_resumes_in_a_row_repeat_no_line(project: Project) -> None:
    session = sid(3)
    back_up(project, sid(1), 8)
    back_up(project, session, 4, "stop")
    contexts = [session_start(project, session, "startup")]
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(b"".join(RECORDS[:10]))  # the session went on, then was resumed
    contexts.append(session_start(project, session, "resume"))
    contexts.append(session_start(project, session, "resume"))  # nothing new
    transcript.write_bytes(b"".join(RECORDS))
    contexts.append(session_start(project, session, "resume"))

    assert contexts[2].startswith("cmem (resume): nothing changed since its context of")
    assert len(contexts[2].splitlines()) == 1
    assert f"- session {session}: " in contexts[1] and f"- session {session}: " in contexts[3]
    assert sid(1) not in contexts[1] + contexts[2] + contexts[3]  # unchanged: said once
    assert "Last session document" not in contexts[1] + contexts[3]
    seen: dict[str, int] = {}
    for index, text in enumerate(contexts):
        # A resume's header names the time of the context before it, to the second: two
        # resumes within one second have the same header, which is no stale block.
        for line in text.splitlines()[1:] if text.startswith("cmem (resume):") else text.splitlines():
            assert line not in seen, f"{line!r} repeated in context {index} (first in {seen[line]})"
            seen[line] = index
    # The counts stay right: the last resume's line has the whole session.
    assert f"+{len(RECORDS)} records" in contexts[3]


def test_a_compaction_after_a_startup_still_names_the_command(project: Project) -> None:
    session = sid(4)
    back_up(project, session, 4, "stop")
    first = session_start(project, session, "startup")
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(b"".join(RECORDS[:12]))
    later = session_start(project, session, "compact")
    assert later.startswith("cmem (compact): what changed")
    assert "/resume-latest (the compaction dropped detail" in later
    assert "Last session document" not in later and "No session document yet." in first


def test_many_hook_errors_stay_under_claude_codes_cap(project: Project) -> None:
    gitdir = project.memory / ".git"
    for number in range(300):
        errorlog.record(gitdir, "pre-compact", f"failure {number}: " + "x" * 400)
    text = session_start(project, sid(5))
    assert len(text) <= 9_000 and "characters left out" in text


def test_the_context_is_the_json_additional_context(project: Project) -> None:
    transcript = project.transcripts / f"{sid(6)}.jsonl"
    done = subprocess.run(["sh", "-c", project.hook_command("SessionStart")],
                          input=json.dumps(payload("SessionStart", sid(6), transcript,
                                                   project.root)).encode(),
                          capture_output=True, cwd=project.root,
                          env={"HOME": str(project.home), "PATH": "/usr/bin:/bin",
                               "CLAUDE_PROJECT_DIR": str(project.root)})
    output = json.loads(done.stdout)
    assert set(output) == {"hookSpecificOutput"}
    assert set(output["hookSpecificOutput"]) == {"hookEventName", "additionalContext"}
    assert Path(project.memory / ".git" / "cmem" / "context.json").is_file()
