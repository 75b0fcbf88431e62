"""End to end: the installed hooks, run as Claude Code runs them, on real transcripts.

Every hook here is the command `cmem init` wrote into settings.json, run through `sh -c` with the
event's JSON on stdin, from another folder, with PATH=/usr/bin:/bin (conftest.run_hook). Results
are read back with the git CLI, never with cmem's own code: `git fsck --strict`, `git status
--porcelain`, commit trailers, and the chunk files of each transcript concatenated in name order,
which must give back Claude Code's file byte for byte.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import resource
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, MINIMAL_PATH, Project, corpus_transcripts, git_blobs, payload, run_hook

from cmem_git.entry import detach
from cmem_git.git import lock

SPOTTER = CORPUS / "spotter"
SHORT = SPOTTER / "short.jsonl"
COMPACT_SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"
DEVICE = "e2e-laptop"
NAMESPACE = uuid.UUID("6f1c2a52-0000-4000-8000-00000000e2e0")
EVENT_NAMES = {"SessionStart": "session-start", "PreCompact": "pre-compact",
               "SessionEnd": "session-end", "Stop": "stop"}
_CHUNK_NAME = re.compile(r"\d{12}-\d{9}")


# ---------------- reading the memory repository


def chunk_names(project: Project, folder: str, rev: str = "HEAD") -> list[str]:
    done = subprocess.run(["git", "-C", str(project.memory), "ls-tree", "--name-only",
                           f"{rev}:{folder}"], capture_output=True, text=True)
    return sorted(done.stdout.split()) if done.returncode == 0 else []


def blobs(project: Project, specs: list[str]) -> list[bytes]:
    return git_blobs(project.memory, specs)


def committed_chunks(project: Project, sid: str, rel: str = "main.jsonl",
                     rev: str = "HEAD") -> list[tuple[str, bytes]]:
    folder = f"transcripts/{sid}/{rel}"
    names = chunk_names(project, folder, rev)
    return list(zip(names, blobs(project, [f"{rev}:{folder}/{name}" for name in names])))


def check_chunk_names(chunks: list[tuple[str, bytes]]) -> None:
    """Names are `<byte offset>-<line offset>` of the chunk in the file; cuts are at line ends."""
    offset = line = 0
    for index, (name, data) in enumerate(chunks):
        assert _CHUNK_NAME.fullmatch(name), name
        assert name == f"{offset:012d}-{line:09d}", (name, offset, line)
        if index < len(chunks) - 1:
            assert data.endswith(b"\n"), f"chunk {name} is not cut at a line end"
        offset += len(data)
        line += data.count(b"\n")


def stored(project: Project, sid: str, rel: str = "main.jsonl", rev: str = "HEAD") -> bytes:
    """A transcript as committed: its chunk blobs concatenated in name order."""
    chunks = committed_chunks(project, sid, rel, rev)
    check_chunk_names(chunks)
    return b"".join(data for _, data in chunks)


def assert_not_checked_out(project: Project) -> None:
    """Transcripts live in git objects only, and git sees nothing missing."""
    assert not (project.memory / "transcripts").exists()
    assert project.git("status", "--porcelain") == ""


def assert_backup(project: Project, sid: str, expected: bytes, rel: str = "main.jsonl") -> None:
    got = stored(project, sid, rel)
    assert len(got) == len(expected), (rel, len(got), len(expected))
    assert got == expected, f"{rel} of {sid} differs from its source"
    assert_not_checked_out(project)


def trailers(project: Project, rev: str = "HEAD") -> dict[str, str]:
    text = project.git("log", "-1", "--format=%(trailers:only,unfold)", rev)
    pairs = [line.split(": ", 1) for line in text.splitlines() if line.strip()]
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate trailers in {rev}: {keys}"
    return dict((key, value) for key, value in pairs)


def head(project: Project) -> str:
    return project.git("rev-parse", "HEAD").strip()


def commit_ids(project: Project) -> list[str]:
    return project.git("rev-list", "HEAD").split()


def tree(project: Project, rev: str = "HEAD") -> dict[str, str]:
    """path -> blob id of every file in a commit."""
    listing = {}
    for line in project.git("ls-tree", "-r", rev).splitlines():
        meta, path = line.split("\t", 1)
        listing[path] = meta.split()[2]
    return listing


def changed_paths(project: Project, rev: str = "HEAD") -> list[str]:
    return project.git("diff-tree", "-r", "--no-commit-id", "--name-only", f"{rev}~1",
                       rev).split()


def assert_healthy(project: Project) -> None:
    """What a user checks with plain git: nothing uncommitted, nothing broken."""
    assert project.git("status", "--porcelain") == ""
    done = subprocess.run(["git", "-C", str(project.memory), "fsck", "--strict"],
                          capture_output=True, text=True)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    bad = [line for line in report.splitlines()
           if line and not line.startswith(("dangling ", "Checking ", "notice: "))]
    assert not bad, report


def lines(data: bytes) -> int:
    """Lines in a file, counting a last line without a newline."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


# ---------------- running hooks


def set_config(project: Project, **values: object) -> None:
    config = project.memory / "cmem.yaml"
    text = config.read_text()
    for key, value in values.items():
        text, count = re.subn(rf"(?m)^{key}: .*$", f"{key}: {value}", text)
        assert count == 1, key
    config.write_text(text)


def hook_output(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", done.stderr
    value = json.loads(done.stdout)
    assert isinstance(value, dict)
    return value


def message(done: subprocess.CompletedProcess[bytes], event: str) -> str:
    """The message a hook gave the user, from its event's channel: JSON `systemMessage` on
    stdout, or stderr for SessionEnd (whose stdout Claude Code discards)."""
    assert done.returncode == 0, (done.returncode, done.stderr)
    if event == "SessionEnd":
        assert done.stdout == b"", done.stdout
        text = done.stderr.decode()
    else:
        text = str(hook_output(done).get("systemMessage", ""))
    assert text.startswith("cmem"), (done.stdout, done.stderr)
    return text


def quiet(done: subprocess.CompletedProcess[bytes]) -> None:
    """A hook that succeeded says nothing (SessionStart's context aside)."""
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", done.stderr
    if done.stdout:
        assert "systemMessage" not in json.loads(done.stdout), done.stdout


def event_payload(project: Project, event: str, sid: str, transcript: Path,
                  **extra: Any) -> dict[str, Any]:
    if event == "Stop":  # Claude Code's Stop payload; its cwd follows `cd`
        extra = {"permission_mode": "default", "stop_hook_active": False,
                 "last_assistant_message": "Done.", **extra}
        (project.root / "src").mkdir(exist_ok=True)
        return payload(event, sid, transcript, project.root / "src", **extra)
    return payload(event, sid, transcript, project.root, **extra)


def hook(project: Project, event: str, sid: str, transcript: Path,
         **extra: Any) -> subprocess.CompletedProcess[bytes]:
    """In the hook's own process, whose messages these tests read (Stop and SessionEnd detach
    otherwise: test_a_detached_hooks_problem_reaches_the_next_session_start)."""
    return run_hook(project, event, event_payload(project, event, sid, transcript, **extra),
                    foreground=True)


def run_hook_limited(project: Project, event: str, data: dict[str, Any],
                     file_size: int) -> subprocess.CompletedProcess[bytes]:
    """run_hook with RLIMIT_FSIZE set: writing past `file_size` bytes fails with EFBIG, as a
    full disk makes writes fail (Python ignores SIGXFSZ, so the write returns an error)."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
           "CLAUDE_PROJECT_DIR": str(project.root), detach.FOREGROUND: "1"}
    return subprocess.run(["sh", "-c", project.hook_command(event)],
                          input=json.dumps(data).encode(), capture_output=True,
                          cwd=project.home, env=env, timeout=120, preexec_fn=limit)


def session_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def split_lines(data: bytes) -> list[bytes]:
    """Lines as JSONL readers see them: ended by b"\n" only (a b"\r" is part of a line)."""
    parts = data.split(b"\n")
    return [part + b"\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def big_transcript() -> bytes:
    """~570 KB of real records: three chunks, so boundaries that must stay put exist."""
    return b"".join(path.read_bytes() for path in (
        SPOTTER / "subagent.jsonl", SPOTTER / COMPACT_SESSION / "subagents" / "agent-a2898e3.jsonl",
        SPOTTER / "tool_heavy.jsonl"))


# ---------------- 1. the corpus, laid out as Claude Code does


@dataclass(frozen=True)
class Case:
    sid: str
    main: Path
    extra: dict[str, Path]  # path under <session-id>/ -> corpus file


def corpus_cases() -> list[Case]:
    """One session per main transcript of the corpus. The compaction excerpt is the main
    transcript of 4d5611e5-…, whose subagent files sit beside it as Claude Code keeps them."""
    cases = []
    for source in corpus_transcripts():
        if "subagents" in source.parts:
            continue
        if source.name.startswith(COMPACT_SESSION):
            folder = source.parent / COMPACT_SESSION / "subagents"
            extra = {f"subagents/{p.name}": p for p in sorted(folder.glob("*.jsonl"))}
            cases.append(Case(COMPACT_SESSION, source, extra))
        else:
            cases.append(Case(session_id(source.name), source, {}))
    return cases


def test_corpus_cases_cover_every_transcript() -> None:
    covered = {c.main for c in corpus_cases()} | {p for c in corpus_cases()
                                                 for p in c.extra.values()}
    assert len(corpus_transcripts()) >= 7
    assert covered == set(corpus_transcripts())
    assert any(len(c.extra) == 2 for c in corpus_cases())


@pytest.mark.parametrize("case", corpus_cases(), ids=lambda c: c.main.stem[:30])
def test_corpus_transcript_precompact_then_session_end(project: Project, case: Case) -> None:
    set_config(project, device=DEVICE)
    full = case.main.read_bytes()
    half = b"".join(split_lines(full)[:max(lines(full) // 2, 1)])
    assert half.endswith(b"\n") and 0 < len(half) < len(full)
    transcript = project.transcripts / f"{case.sid}.jsonl"
    transcript.write_bytes(half)
    for rel, source in case.extra.items():
        target = project.transcripts / case.sid / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    start = head(project)

    quiet(hook(project, "PreCompact", case.sid, transcript))
    assert_healthy(project)
    assert project.git("rev-parse", "HEAD~1").strip() == start
    assert_backup(project, case.sid, half)
    for rel, source in case.extra.items():
        assert_backup(project, case.sid, source.read_bytes(), rel)
    compact = trailers(project)
    assert compact["Cmem-Event"] == "pre-compact"
    assert compact["Cmem-Session"] == case.sid
    assert compact["Cmem-Trigger"] == "auto"
    assert compact["Cmem-Device"] == DEVICE
    assert compact["Cmem-Transcript-Bytes"] == str(len(half))
    assert compact["Cmem-Transcript-Lines"] == str(lines(half))
    assert compact["Cmem-Files"] == str(1 + len(case.extra))
    assert "Cmem-Reason" not in compact
    compacted = head(project)

    transcript.write_bytes(full)  # the session went on after compaction
    quiet(hook(project, "SessionEnd", case.sid, transcript))
    assert_healthy(project)
    assert project.git("rev-parse", "HEAD~1").strip() == compacted
    assert_backup(project, case.sid, full)
    for rel, source in case.extra.items():
        assert_backup(project, case.sid, source.read_bytes(), rel)
    end = trailers(project)
    assert end["Cmem-Event"] == "session-end"
    assert end["Cmem-Session"] == case.sid
    assert end["Cmem-Reason"] == "prompt_input_exit"
    assert end["Cmem-Device"] == DEVICE
    assert end["Cmem-Transcript-Bytes"] == str(len(full))
    assert end["Cmem-Added-Bytes"] == str(len(full) - len(half))
    assert "Cmem-Trigger" not in end
    # The exit line and the rest of the transcript are one commit.
    changed = changed_paths(project)
    assert "active-context.md" in changed
    assert any(p.startswith(f"transcripts/{case.sid}/main.jsonl/") for p in changed), changed
    active = project.git("show", "HEAD:active-context.md")
    exits = [line for line in active.splitlines() if line.startswith("> Last Session End:")]
    assert len(exits) == 1, active
    assert "prompt_input_exit" in exits[0] and case.sid in exits[0]
    assert "> Last Session End:" not in project.git("show", "HEAD~1:active-context.md")
    assert (project.memory / "active-context.md").read_text() == active
    # Last: the line count, which a file without a final newline gets wrong (see report).
    assert end["Cmem-Transcript-Lines"] == str(lines(full))


def test_session_end_records_its_reason_and_replaces_the_exit_line(project: Project) -> None:
    sid = session_id("reasons")
    transcript = project.transcripts / f"{sid}.jsonl"
    data = split_lines(SHORT.read_bytes())
    transcript.write_bytes(b"".join(data[:5]))
    quiet(hook(project, "SessionEnd", sid, transcript, reason="clear"))
    transcript.write_bytes(b"".join(data))
    quiet(hook(project, "SessionEnd", sid, transcript, reason="logout"))
    assert trailers(project)["Cmem-Reason"] == "logout"
    assert trailers(project, "HEAD~1")["Cmem-Reason"] == "clear"
    active = (project.memory / "active-context.md").read_text()
    exits = [line for line in active.splitlines() if line.startswith("> Last Session End:")]
    assert len(exits) == 1 and "logout" in exits[0], active
    assert_backup(project, sid, SHORT.read_bytes())
    assert_healthy(project)


# ---------------- 2. spilled tool results


def test_tool_results_file_is_backed_up(project: Project) -> None:
    sid = session_id("tool-results")
    transcript = project.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SHORT, transcript)
    spilled = project.transcripts / sid / "tool-results" / "toolu_x.txt"
    spilled.parent.mkdir(parents=True)
    # A large tool output: several chunks' worth, odd bytes, and no final newline.
    content = (b"total 1234\n-rw-r--r-- 1 user user \xe2\x9c\x93 \x00\xff file\r\n" * 9000
               + b"last line without newline")
    spilled.write_bytes(content)

    quiet(hook(project, "PreCompact", sid, transcript))
    assert_healthy(project)
    assert_backup(project, sid, SHORT.read_bytes())
    assert_backup(project, sid, content, "tool-results/toolu_x.txt")
    assert trailers(project)["Cmem-Files"] == "2"
    assert len(committed_chunks(project, sid, "tool-results/toolu_x.txt")) >= 2


# ---------------- 3. a transcript growing between hooks


def test_growing_transcript_between_hooks(project: Project) -> None:
    set_config(project, stop_throttle_minutes=0)
    final = big_transcript()
    records = split_lines(final)
    assert len(final) > 2 * 256 * 1024
    first, second = 100, 200
    for cut in (first, second):
        assert final.count(records[cut]) == 1  # so "exactly once" below means something
    sid = session_id("growing")
    transcript = project.transcripts / f"{sid}.jsonl"
    partial = records[first][:len(records[first]) // 2]

    steps: list[tuple[str, bytes, bytes]] = [  # event, file content, what must be committed
        ("PreCompact", b"".join(records[:first]) + partial, b"".join(records[:first])),
        ("Stop", b"".join(records[:second]) + records[second][:40], b"".join(records[:second])),
        ("SessionEnd", final, final),
    ]
    commits = []
    for event, content, expected in steps:
        transcript.write_bytes(content)
        quiet(hook(project, event, sid, transcript))
        assert_healthy(project)
        assert_backup(project, sid, expected)
        assert trailers(project)["Cmem-Event"] == EVENT_NAMES[event]
        assert trailers(project)["Cmem-Transcript-Bytes"] == str(len(expected))
        commits.append(head(project))
    assert len(set(commits)) == 3

    # The half-written line was left out, then committed whole by the next hook, once.
    after_first = stored(project, sid, rev=commits[0])
    assert partial not in after_first[len(after_first) - len(partial):]
    assert records[first] not in after_first
    assert stored(project, sid, rev=commits[1]).count(records[first]) == 1
    assert stored(project, sid).count(records[first]) == 1
    assert stored(project, sid).count(records[second]) == 1

    # Nothing duplicated or lost: the additions add up to the file, and each backup is a
    # prefix of the next.
    added = [trailers(project, c) for c in commits]
    assert sum(int(t["Cmem-Added-Bytes"]) for t in added) == len(final)
    assert sum(int(t["Cmem-Added-Lines"]) for t in added) == lines(final)
    versions = [stored(project, sid, rev=c) for c in commits]
    for older, newer in zip(versions, versions[1:]):
        assert newer.startswith(older) and len(newer) > len(older)

    # Chunk boundaries stay: every chunk but the last keeps its name and blob in later commits.
    for older_rev, newer_rev in zip(commits, commits[1:]):
        kept = committed_chunks(project, sid, rev=older_rev)
        later = dict(committed_chunks(project, sid, rev=newer_rev))
        assert len(later) >= len(kept)
        for name, chunk in kept[:-1]:
            assert later.get(name) == chunk, name
    assert len(committed_chunks(project, sid)) >= 3


# ---------------- 4. SessionStart


def document_commit(project: Project, title: str, date: int | None = None) -> str:
    """A session document commit as history sees it (`Cmem-Event: document`), made with git;
    `date` stands for the clock of the machine that wrote it."""
    env = dict(os.environ)
    if date is not None:
        env["GIT_COMMITTER_DATE"] = env["GIT_AUTHOR_DATE"] = f"@{date} +0000"
    subprocess.run(["git", "-C", str(project.memory), "commit", "-q", "--allow-empty", "-m",
                    f"document: {title}\n\nCmem-Event: document\nCmem-Device: other-machine\n"],
                   env=env, check=True)
    return head(project)


def session_start(project: Project, sid: str, source: str = "startup",
                  transcript: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    path = transcript or project.transcripts / f"{sid}.jsonl"
    return hook(project, "SessionStart", sid, path, source=source)


def context_of(done: subprocess.CompletedProcess[bytes]) -> str:
    output = hook_output(done)
    specific = output["hookSpecificOutput"]
    assert specific["hookEventName"] == "SessionStart"
    text = specific["additionalContext"]
    assert isinstance(text, str) and 0 < len(text) < 10_000
    return text


def test_session_start_lists_backups_since_the_last_document(project: Project) -> None:
    before, after, other = session_id("before-doc"), session_id("after-doc"), session_id("other")
    for sid in (before, after, other):
        shutil.copyfile(SHORT, project.transcripts / f"{sid}.jsonl")
    quiet(hook(project, "SessionEnd", before, project.transcripts / f"{before}.jsonl"))
    document_commit(project, "first half")
    quiet(hook(project, "PreCompact", after, project.transcripts / f"{after}.jsonl"))
    quiet(hook(project, "SessionEnd", after, project.transcripts / f"{after}.jsonl"))
    quiet(hook(project, "SessionEnd", other, project.transcripts / f"{other}.jsonl"))
    tip = head(project)

    done = session_start(project, session_id("new"))
    text = context_of(done)
    assert "systemMessage" not in hook_output(done)
    assert head(project) == tip  # nothing changed: nothing to commit
    assert "Last session document: 'first half'" in text
    history = project.git("log", "--format=%h %ct %s")
    assert after in text and other in text, (text, history)
    assert before not in text
    assert "Backups not in a session document yet: 3 commits in 2 sessions" in text
    assert_healthy(project)


def test_session_start_after_a_document_from_a_clock_ahead(project: Project) -> None:
    """The document came from another machine (`cmem sync`) whose clock runs 10 minutes ahead:
    "since the last document" follows parents, not commit times."""
    before, after = session_id("before-doc"), session_id("after-doc")
    for sid in (before, after):
        shutil.copyfile(SHORT, project.transcripts / f"{sid}.jsonl")
    quiet(hook(project, "SessionEnd", before, project.transcripts / f"{before}.jsonl"))
    document_commit(project, "from the laptop", date=int(time.time()) + 600)
    quiet(hook(project, "SessionEnd", after, project.transcripts / f"{after}.jsonl"))

    text = context_of(session_start(project, session_id("new")))
    assert "Last session document: 'from the laptop'" in text
    assert after in text, text
    assert before not in text, text
    assert "1 commits in 1 session(s)" in text or "1 commit in 1 session" in text, text


def test_session_start_context_stays_under_claude_codes_cap(project: Project) -> None:
    base = head(project)
    now = int(time.time())
    stream = []
    for number in range(700):
        text = (f"session-end {number:04d}: +15 records\n\nCmem-Event: session-end\n"
                f"Cmem-Session: {session_id(str(number))}\nCmem-Added-Lines: 15\n")
        data = text.encode()
        stream.append(f"commit refs/heads/main\ncommitter Test User <test@example.com> "
                      f"{now - 700 + number} +0000\ndata {len(data)}\n".encode() + data)
        if number == 0:
            stream.append(f"from {base}\n".encode())
        stream.append(b"\n")
    subprocess.run(["git", "-C", str(project.memory), "fast-import", "--quiet"],
                   input=b"".join(stream), check=True)
    project.git("reset", "-q", "--hard")
    newest = session_id("699")

    text = context_of(session_start(project, session_id("new")))
    assert newest in text  # newest first: what matters most survives the cut
    assert len(json.dumps(text)) < 10_000


def test_session_start_backs_up_what_session_end_missed(project: Project, tmp_path: Path
                                                        ) -> None:
    crashed, never = session_id("crashed"), session_id("never-backed-up")
    full = (SPOTTER / "tool_heavy.jsonl").read_bytes()
    half = b"".join(split_lines(full)[:20])
    crashed_path = project.transcripts / f"{crashed}.jsonl"
    crashed_path.write_bytes(half)
    quiet(hook(project, "PreCompact", crashed, crashed_path))
    crashed_path.write_bytes(full)  # then the session went on, and SessionEnd never ran
    shutil.copyfile(SHORT, project.transcripts / f"{never}.jsonl")
    # Another project's transcripts sit next door and are none of this project's business.
    elsewhere = project.transcripts.parent / "-somewhere-else"
    elsewhere.mkdir()
    stranger = session_id("stranger")
    shutil.copyfile(SHORT, elsewhere / f"{stranger}.jsonl")
    before = head(project)

    text = context_of(session_start(project, session_id("next")))
    assert_healthy(project)
    assert_backup(project, crashed, full)
    assert_backup(project, never, SHORT.read_bytes())
    assert not (project.memory / "transcripts" / stranger).exists()
    assert all(f"transcripts/{stranger}/" not in path for path in tree(project))
    new = project.git("rev-list", f"{before}..HEAD").split()
    sessions = {trailers(project, c)["Cmem-Session"]: trailers(project, c) for c in new}
    assert set(sessions) == {crashed, never}
    for found in sessions.values():
        assert found["Cmem-Event"] == "session-start"
        assert found["Cmem-Source"] == "startup"
    assert sessions[crashed]["Cmem-Transcript-Bytes"] == str(len(full))
    assert sessions[crashed]["Cmem-Added-Bytes"] == str(len(full) - len(half))
    assert crashed in text and never in text

    # Nothing to do: no commit, however often it runs.
    tip = head(project)
    for source in ("startup", "clear"):
        context_of(session_start(project, session_id("later"), source))
        assert head(project) == tip
    # It keeps watching: a later change is found again.
    extra = split_lines(SHORT.read_bytes())[0]
    with open(crashed_path, "ab") as handle:
        handle.write(extra)
    context_of(session_start(project, session_id("again"), "compact"))
    assert_backup(project, crashed, full + extra)
    assert trailers(project)["Cmem-Source"] == "compact"
    assert_healthy(project)


def test_session_start_with_nothing_to_do_makes_no_commit(project: Project) -> None:
    tip = head(project)
    for _ in range(2):
        done = session_start(project, session_id("fresh"))
        text = context_of(done)
        assert "systemMessage" not in hook_output(done)
        assert head(project) == tip
    assert "Nothing pending: no backups yet." in text
    assert_healthy(project)


def test_resume_session_start_with_a_fresh_id_and_no_file(project: Project) -> None:
    sid = session_id("resumed")
    shutil.copyfile(SHORT, project.transcripts / f"{sid}.jsonl")
    quiet(hook(project, "SessionEnd", sid, project.transcripts / f"{sid}.jsonl",
               reason="resume"))
    first = context_of(session_start(project, session_id("first-start"), "resume"))
    assert sid in first
    tip = head(project)
    fresh = session_id("fresh-from-resume")
    missing = project.transcripts / f"{fresh}.jsonl"
    assert not missing.exists()

    done = session_start(project, fresh, "resume", missing)
    text = context_of(done)
    assert "systemMessage" not in hook_output(done)
    assert head(project) == tip
    # The second SessionStart of the same resume repeats nothing the first one said.
    assert text.startswith("cmem (resume): nothing changed since its context of"), text
    assert not (project.memory / "transcripts" / fresh).exists()
    assert_healthy(project)


def unreadable_transcript(folder: Path, name: str) -> Path:
    """A transcript path whose read fails. Normally a copy with mode 000; as root, where mode
    000 does not stop reads, a link to /proc/self/mem: a regular file whose read at offset 0 fails with
    EIO in whichever process reads it (the hook's own, since /proc/self follows the reader)."""
    path = folder / name
    shutil.copyfile(SHORT, path)
    path.chmod(0)
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError:
        return path
    path.chmod(0o600)
    path.unlink()
    mem = Path("/proc/self/mem")
    with open(mem, "rb") as handle:
        with pytest.raises(OSError):
            handle.read(1)
    # Named as a transcript (cmem refuses paths that are not .jsonl), outside the project's
    # transcript folder, which SessionStart looks through for sessions to recover.
    link = folder.parent.parent / "unreadable" / name
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(mem)
    return link


def test_earlier_hook_failure_is_reported_once(project: Project) -> None:
    sid = session_id("unreadable")
    transcript = unreadable_transcript(project.transcripts, f"{sid}.jsonl")
    said = message(hook(project, "PreCompact", sid, transcript), "PreCompact")
    assert "could not read" in said and str(transcript) in said
    assert_healthy(project)

    first = session_start(project, session_id("next"))
    text = context_of(first)
    assert "pre-compact" in text and str(transcript) in text and "could not read" in text
    assert text.count("could not read") == 1
    assert "systemMessage" in hook_output(first)

    second = session_start(project, session_id("after-next"))
    text = context_of(second)
    assert "could not read" not in text and str(transcript) not in text
    assert "systemMessage" not in hook_output(second)
    assert_healthy(project)


# ---------------- 5. bad input


@dataclass(frozen=True)
class Earlier:
    """The history a project had before a bad hook ran."""

    project: Project
    sid: str
    commits: list[str]
    files: dict[str, str]


@pytest.fixture
def earlier(project: Project) -> Earlier:
    sid = session_id("earlier")
    transcript = project.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SHORT, transcript)
    quiet(hook(project, "SessionEnd", sid, transcript))
    commits = commit_ids(project)
    assert len(commits) == 2
    return Earlier(project, sid, commits, tree(project))


def assert_kept(earlier: Earlier) -> None:
    project = earlier.project
    assert_healthy(project)
    for commit in earlier.commits:
        done = subprocess.run(["git", "-C", str(project.memory), "merge-base", "--is-ancestor",
                               commit, "HEAD"])
        assert done.returncode == 0, f"{commit} is no longer in history"
    now = tree(project)
    for path, blob in earlier.files.items():
        assert path in now, f"{path} was removed"
        if path.startswith("transcripts/"):
            assert now[path] == blob, f"{path} was changed"
    assert_backup(project, earlier.sid, SHORT.read_bytes())


EVENTS = ["SessionStart", "PreCompact", "Stop", "SessionEnd"]

BAD_STDIN = {
    "empty": (b"", "stdin"),
    "not-json": (b"{session_id: nope", "not JSON"),
    "json-array": (b'[{"session_id": "abc"}]', "not a JSON object"),
    "no-session-id": (json.dumps({"transcript_path": "/tmp/x.jsonl", "reason": "other"}).encode(),
                      "session_id"),
    # Whatever file a payload names would be committed and pushed: only transcripts are.
    "not-a-transcript": (json.dumps({"session_id": "abc", "transcript_path": "/etc/passwd",
                                     "reason": "other"}).encode(), "not a Claude Code transcript"),
}


@pytest.mark.parametrize("event", EVENTS)
@pytest.mark.parametrize("case", sorted(BAD_STDIN))
def test_bad_stdin(earlier: Earlier, event: str, case: str) -> None:
    data, expected = BAD_STDIN[case]
    tip = head(earlier.project)
    said = message(run_hook(earlier.project, event, data, foreground=True), event)
    assert expected in said
    assert head(earlier.project) == tip
    assert_kept(earlier)


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
@pytest.mark.parametrize("bad_id", ["../../escape", "a/b", "..", "escape/../../x", "/escape"])
def test_session_id_that_is_a_path(earlier: Earlier, tmp_path: Path, event: str,
                                   bad_id: str) -> None:
    project = earlier.project
    transcript = project.transcripts / "escape.jsonl"
    shutil.copyfile(SHORT, transcript)
    tip = head(project)
    said = message(hook(project, event, bad_id, transcript), event)
    assert "session_id" in said and bad_id in said
    assert head(project) == tip
    assert_kept(earlier)
    assert set(tree(project)) == set(earlier.files)
    strays = [p for root in (tmp_path, project.home) for p in root.rglob("*")
              if p.name in ("escape", "x", "b") and p != transcript]
    assert strays == []


def transcript_case(project: Project, sid: str, case: str) -> tuple[Path, str]:
    """(transcript_path, what the message must say) for a path that cannot be backed up."""
    path = project.transcripts / f"{sid}.jsonl"
    if case == "missing":
        return path, "does not exist"
    if case == "dangling-symlink":
        path.symlink_to(project.transcripts / "gone" / "deleted.jsonl")
        return path, "does not exist"
    if case == "directory":
        path.mkdir()
        return path, "not a regular file"
    return unreadable_transcript(project.transcripts, f"{sid}.jsonl"), "could not read"


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
@pytest.mark.parametrize("case", ["missing", "dangling-symlink", "directory", "unreadable"])
def test_transcript_path_that_cannot_be_read(earlier: Earlier, event: str, case: str) -> None:
    project = earlier.project
    sid = session_id(f"bad-path-{case}")
    transcript, expected = transcript_case(project, sid, case)
    said = message(hook(project, event, sid, transcript), event)
    assert expected in said and str(transcript) in said
    assert not (project.memory / "transcripts" / sid).exists()
    assert all(not p.startswith(f"transcripts/{sid}/") for p in tree(project))
    assert_kept(earlier)
    if event == "SessionEnd":  # the exit is still recorded
        assert sid in (project.memory / "active-context.md").read_text()


@pytest.mark.parametrize("event", ["Stop", "SessionEnd"])
def test_a_detached_hook_returns_at_once_and_its_problem_reaches_the_next_session_start(
        earlier: Earlier, event: str) -> None:
    """Stop and SessionEnd, as installed, hand their work to a process of their own and say
    nothing; what went wrong there is told by the next SessionStart, as any hook problem is."""
    project = earlier.project
    sid = session_id(f"detached-{event}")
    transcript = project.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SHORT, transcript)
    gitdir = project.memory / ".git"
    with lock.RepoLock(gitdir):
        data = json.dumps(event_payload(project, event, sid, transcript)).encode()
        env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
               "CLAUDE_PROJECT_DIR": str(project.root)}
        done = subprocess.run(["sh", "-c", project.hook_command(event)], input=data,
                              capture_output=True, cwd=project.home, env=env, timeout=120)
        # The hook returned while its child waits for the lock held here.
        assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
        assert detach.running(gitdir) and commit_ids(project) == earlier.commits
    assert detach.wait(gitdir, 120)
    assert_backup(project, sid, SHORT.read_bytes())

    other = session_id(f"detached-{event}-unreadable")
    broken = unreadable_transcript(project.transcripts, f"{other}.jsonl")
    quiet(run_hook(project, event, event_payload(project, event, other, broken)))
    text = context_of(session_start(project, earlier.sid))
    assert "hook problems" in text and event.lower().replace("sessionend", "session-end") in text
    # Input that is not JSON is reported there too (the shell line's process has no terminal).
    quiet(run_hook(project, event, b"{session_id: nope"))
    assert "not JSON" in context_of(session_start(project, earlier.sid))
    assert_kept(earlier)


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
def test_payload_without_transcript_path(earlier: Earlier, event: str) -> None:
    """Nothing can be backed up without transcript_path: the user must hear of it."""
    project = earlier.project
    sid = session_id("no-path")
    shutil.copyfile(SHORT, project.transcripts / f"{sid}.jsonl")
    data = event_payload(project, event, sid, project.transcripts / f"{sid}.jsonl")
    del data["transcript_path"]
    done = run_hook(project, event, data, foreground=True)
    assert_kept(earlier)
    said = message(done, event)
    assert "transcript_path" in said


def test_invalid_json_lines_are_kept_byte_exact(earlier: Earlier) -> None:
    project = earlier.project
    sid = session_id("invalid-lines")
    good = split_lines(SHORT.read_bytes())
    content = (good[0] + b"this is not json\n" + b'{"type": "user", "broken": \n' + b"\n"
               + b"   \t \n" + b"\xff\xfe\x00 binary \x80\n" + good[1] + b"[1, 2, 3]\n"
               + b'{"type": "assistant", "crlf": true}\r\n' + b"null\n" + good[2]
               + b'"a string"\n' + b"".join(good[3:]))
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(content)
    quiet(hook(project, "PreCompact", sid, transcript))
    assert_backup(project, sid, content)
    with open(transcript, "ab") as handle:
        handle.write(b"}}} still not json\n")
    quiet(hook(project, "SessionEnd", sid, transcript))
    assert_backup(project, sid, content + b"}}} still not json\n")
    assert trailers(project)["Cmem-Transcript-Lines"] == str(lines(content) + 1)
    assert_kept(earlier)


CORRUPT_CONFIGS = {
    "tab": ("device: e2e\n\tstaleness_hours: 3\n", 2),
    "unknown-key": ("device: e2e\nstaleness_hours: 3\nstop_throttle_minute: 0\n", 3),
    "not-utf8": ("device: e2e\nstaleness_hours: 3\n# caf\udce9\n", 3),
    "wrong-type": ("device: e2e\nevents:\n  session_end: maybe\n", 3),
}


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
@pytest.mark.parametrize("case", sorted(CORRUPT_CONFIGS))
def test_corrupt_config_still_backs_up_with_defaults(earlier: Earlier, event: str,
                                                     case: str) -> None:
    from cmem_git.repo.config import default_device

    project = earlier.project
    text, line = CORRUPT_CONFIGS[case]
    config = project.memory / "cmem.yaml"
    # The earlier hook kept its parse of the good file: it must not stand in for the broken one.
    assert (project.memory / ".git" / "cmem" / "config.json").is_file()
    config.write_bytes(text.encode("utf-8", "surrogateescape"))
    sid = session_id(f"config-{case}")
    transcript = project.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SPOTTER / "tool_heavy.jsonl", transcript)
    tip = head(project)

    said = message(hook(project, event, sid, transcript), event)
    assert f"{config}:{line}" in said, said
    assert_backup(project, sid, (SPOTTER / "tool_heavy.jsonl").read_bytes())
    assert project.git("rev-parse", "HEAD~1").strip() == tip
    assert trailers(project)["Cmem-Device"] == default_device()  # not the broken file's
    assert trailers(project)["Cmem-Event"] == EVENT_NAMES[event]
    assert config.read_bytes() == text.encode("utf-8", "surrogateescape")  # never "repaired"
    assert_kept(earlier)


def incompressible_transcript(size: int) -> bytes:
    """Records of random base64: zlib cannot shrink a chunk below the file-size limit."""
    rng = random.Random(7)
    out: list[bytes] = []
    while sum(len(line) for line in out) < size:
        blob = base64.b64encode(rng.randbytes(3000)).decode()
        out.append(json.dumps({"type": "user", "uuid": f"r-{len(out)}", "text": blob}).encode()
                   + b"\n")
    return b"".join(out)


def leftovers(project: Project) -> list[Path]:
    """Half-written state: temp objects, lock files, cmem temp files, a writing marker."""
    gitdir = project.memory / ".git"
    found = [p for p in gitdir.rglob("*") if p.is_file() and (
        p.name.endswith(".lock") or "tmp" in p.name)]
    found += [p for p in (gitdir / "objects").glob("??/*")
              if not re.fullmatch(r"[0-9a-f]{38}", p.name)]
    found += [p for p in (gitdir / "cmem" / "tmp").glob("*")] if (
        gitdir / "cmem" / "tmp").is_dir() else []
    if (gitdir / "cmem" / "writing").exists():
        found.append(gitdir / "cmem" / "writing")
    return found


@pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])
def test_full_disk(earlier: Earlier, event: str) -> None:
    project = earlier.project
    sid = session_id("full-disk")
    content = incompressible_transcript(1_200_000)
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(content)
    tip = head(project)
    active = (project.memory / "active-context.md").read_bytes()

    done = run_hook_limited(project, event, event_payload(project, event, sid, transcript),
                            file_size=64 * 1024)
    assert done.returncode == 0, done.stderr
    said = message(done, event).replace(str(project.root), "<project>")
    assert head(project) == tip
    assert leftovers(project) == []
    assert (project.memory / "active-context.md").read_bytes() == active
    assert_kept(earlier)

    # Without the limit the next hook does the whole job.
    quiet(hook(project, event, sid, transcript))
    assert_backup(project, sid, content)
    assert project.git("rev-parse", "HEAD~1").strip() == tip
    assert_kept(earlier)
    # Last, so the checks above still run: the message must name the cause, not a stale
    # libgit2 error (see report).
    cause = r"file too large|no space|disk (is )?full|file size limit|could not write"
    assert re.search(cause, said, re.I), said


@pytest.mark.parametrize("event", EVENTS)
def test_project_without_cmem_init(project: Project, tmp_path: Path, event: str) -> None:
    """A clone whose committed .claude/settings.json has cmem's hooks (as an earlier cmem put
    them there), but no `cmem init` ran."""
    other = Project(tmp_path / "cloned project", project.home)
    (other.root / ".claude").mkdir(parents=True)
    shutil.copyfile(project.root / ".claude" / "settings.local.json",
                    other.root / ".claude" / "settings.json")
    sid = session_id("uninitialised")
    transcript = other.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SHORT, transcript)
    data = payload(event, sid, transcript, other.root)
    said = message(run_hook(other, event, data), event)
    assert "cmem init" in said
    assert not other.memory.exists()
    assert sorted(p.name for p in (other.root / ".claude").iterdir()) == ["settings.json"]


# ---------------- 6. Stop throttling


def test_stop_is_throttled_unless_configured_off(project: Project) -> None:
    sid = session_id("long-session")
    records = split_lines((SPOTTER / "tool_heavy.jsonl").read_bytes())
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(b"".join(records[:10]))
    start = head(project)

    quiet(hook(project, "Stop", sid, transcript))
    first = head(project)
    assert first != start
    assert trailers(project)["Cmem-Event"] == "stop"
    assert trailers(project)["Cmem-Session"] == sid
    assert_backup(project, sid, b"".join(records[:10]))

    transcript.write_bytes(b"".join(records[:20]))
    done = hook(project, "Stop", sid, transcript)
    quiet(done)
    assert head(project) == first  # within stop_throttle_minutes (10 by default)
    assert_backup(project, sid, b"".join(records[:10]))

    set_config(project, stop_throttle_minutes=0)
    quiet(hook(project, "Stop", sid, transcript))
    assert project.git("rev-parse", "HEAD~1").strip() == first
    assert_backup(project, sid, b"".join(records[:20]))
    transcript.write_bytes(b"".join(records[:30]))
    quiet(hook(project, "Stop", sid, transcript))
    assert_backup(project, sid, b"".join(records[:30]))
    assert len(project.git("rev-list", f"{first}..HEAD").split()) == 2
    assert_healthy(project)


def test_subagent_stop_commits_throttled_as_stop(project: Project) -> None:
    """Compaction's forked agent fires SubagentStop with an agent_transcript_path Claude Code
    never writes (seen with the real client): the session's own files are backed up."""
    sid = session_id("subagents")
    records = split_lines((SPOTTER / "tool_heavy.jsonl").read_bytes())
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(b"".join(records[:10]))
    never_written = project.transcripts / sid / "subagents" / "agent-a4bea7a21339c48a1.jsonl"
    quiet(hook(project, "SubagentStop", sid, transcript,
               agent_transcript_path=str(never_written)))
    assert trailers(project)["Cmem-Event"] == "subagent-stop"
    assert trailers(project)["Cmem-Agent"] == "a4bea7a21339c48a1"
    assert_backup(project, sid, b"".join(records[:10]))
    first = head(project)
    transcript.write_bytes(b"".join(records[:20]))
    quiet(hook(project, "Stop", sid, transcript))
    quiet(hook(project, "SubagentStop", sid, transcript))
    assert head(project) == first  # within stop_throttle_minutes of the SubagentStop commit
    assert_healthy(project)


def test_stop_disabled_in_config_makes_no_commit(project: Project) -> None:
    sid = session_id("stop-off")
    transcript = project.transcripts / f"{sid}.jsonl"
    shutil.copyfile(SHORT, transcript)
    config = project.memory / "cmem.yaml"
    text, count = re.subn(r"(?m)^  stop: true$", "  stop: false", config.read_text())
    assert count == 1
    config.write_text(text)
    tip = head(project)
    quiet(hook(project, "Stop", sid, transcript))
    assert head(project) == tip
    quiet(hook(project, "PreCompact", sid, transcript))
    assert head(project) != tip
    assert_healthy(project)
