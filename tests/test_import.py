"""`cmem import` (issue 7): Claude Code's transcripts and a claude-memory folder, backfilled.

Every session here is made from a ../shared/corpus transcript with a new session id (its
`sessionId` fields and its file name rewritten), so 200 sessions are 200 real-shaped files. What
the memory holds is read back with the git CLI (chunk blobs concatenated in name order) and
compared with the files on disk, byte for byte; "nothing lost" means every claude-memory backup is
a prefix of (or equal to) a file stored for its session.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import CORPUS, Project, cmem, git

from cmem_git.capture import importer
from cmem_git.repo.store import Store

SPOTTER = CORPUS / "spotter"
PARENT = "4d5611e5-241a-462a-8d15-5122611a9569"
SOURCES = [SPOTTER / "short.jsonl", SPOTTER / "tool_heavy.jsonl", SPOTTER / "subagent.jsonl",
           SPOTTER / f"{PARENT}.EXCERPT-compact.jsonl",
           CORPUS / "claude-code-log" / "representative_messages.jsonl"]
SUBAGENTS = sorted((SPOTTER / PARENT / "subagents").glob("*.jsonl"))
_SESSION_FIELD = re.compile(rb'"sessionId":\s*"[^"]*"')
CHUNK = re.compile(r"^\d{12}-\d{9}$")


# --- helpers ------------------------------------------------------------------------------

def with_id(data: bytes, session_id: str) -> bytes:
    return _SESSION_FIELD.sub(f'"sessionId":"{session_id}"'.encode(), data)


def user_line(session_id: str, text: str) -> bytes:
    record = {"type": "user", "sessionId": session_id, "uuid": str(uuid.uuid4()),
              "timestamp": "2026-01-05T10:00:00.000Z",
              "message": {"role": "user", "content": text}}
    return json.dumps(record).encode() + b"\n"


def make_session(folder: Path, index: int, mtime: float) -> tuple[str, dict[str, bytes]]:
    """A session from a corpus file with a new id; returns the id and its files, by the path
    cmem stores them under (relative to transcripts/<id>/)."""
    sid = str(uuid.UUID(int=index + 1))
    source = SOURCES[index % len(SOURCES)]
    files = {"main.jsonl": with_id(source.read_bytes(), sid)}
    if source.name.startswith(PARENT):
        for agent in SUBAGENTS:
            files[f"subagents/{agent.name}"] = with_id(agent.read_bytes(), sid)
    if index % 7 == 0:
        files["tool-results/toolu_01.txt"] = f"tool output {index}\nno final newline".encode()
    for name, data in files.items():
        path = folder / (f"{sid}.jsonl" if name == "main.jsonl" else f"{sid}/{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))
    return sid, files


def stored(memory: Path, rev: str = "HEAD") -> dict[str, bytes]:
    """Every file under transcripts/ as of `rev`, put back together with the git CLI only."""
    listing = git(memory, "ls-tree", "-r", rev, "--", "transcripts").splitlines()
    entries = [(line.split("\t", 1)[1], line.split()[2]) for line in listing]
    blobs = _cat_blobs(memory, [oid for _, oid in entries])
    files: dict[str, list[tuple[str, bytes]]] = {}
    for path, oid in entries:
        folder, _, name = path.rpartition("/")
        assert CHUNK.match(name), path
        files.setdefault(folder, []).append((name, blobs[oid]))
    return {folder: b"".join(data for _, data in sorted(parts)) for folder, parts in files.items()}


def _cat_blobs(memory: Path, oids: list[str]) -> dict[str, bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    done = subprocess.run(["git", "-C", str(memory), "cat-file", "--batch"], env=env,
                          input="".join(f"{o}\n" for o in oids).encode(), capture_output=True,
                          check=True)
    out, blobs, at = done.stdout, {}, 0
    while at < len(out):
        header_end = out.index(b"\n", at)
        oid, _, size = out[at:header_end].decode().split()
        blobs[oid] = out[header_end + 1:header_end + 1 + int(size)]
        at = header_end + 1 + int(size) + 1
    return blobs


def commits(project: Project) -> int:
    return int(project.git("rev-list", "--count", "HEAD"))


def run_import(project: Project, *args: str) -> str:
    done = cmem("import", *args, cwd=project.root)
    assert done.returncode == 0, done.stderr.decode()
    assert b"importing" not in done.stderr  # the progress bar is for terminals only
    return done.stdout.decode()


def assert_kept(files: dict[str, bytes], session: str, data: bytes) -> None:
    """Nothing lost: `data` is a prefix of (or equal to) a file stored for `session`."""
    mine = [v for k, v in files.items() if k.startswith(f"transcripts/{session}/")]
    assert any(v.startswith(data) for v in mine), f"a backup of {session} is not kept"


# --- Claude Code's projects folder --------------------------------------------------------

def test_import_200_sessions_byte_exact_in_time_order(project: Project) -> None:
    sessions = {}
    order = list(range(200))
    order = order[1::2] + order[::2]  # mtime order differs from name order
    for rank, index in enumerate(order):
        sid, files = make_session(project.transcripts, index, 1_700_000_000 + rank * 60)
        sessions[sid] = files
    before = commits(project)
    out = run_import(project)
    assert "200 sessions looked at, 200 imported in 200 commits" in out
    assert commits(project) == before + 200
    files = stored(project.memory)
    expected = {f"transcripts/{sid}/{name}": data
                for sid, parts in sessions.items() for name, data in parts.items()}
    assert files.keys() == expected.keys()
    for path, data in expected.items():
        assert files[path] == data, path
    messages = project.git("log", "--reverse", "--format=%x00%B").split("\0")
    imported = [re.search(r"^Cmem-Session: (.+)$", m, re.M)[1] for m in messages  # type: ignore
                if "Cmem-Event: import" in m]
    assert imported == [str(uuid.UUID(int=i + 1)) for i in order]
    assert project.git("status", "--porcelain") == ""
    git(project.memory, "fsck", "--strict")
    out = run_import(project)
    assert "nothing new to import" in out and commits(project) == before + 200


def test_a_second_run_imports_only_what_changed(project: Project) -> None:
    ids = [make_session(project.transcripts, i, 1_700_000_000 + i)[0] for i in range(5)]
    run_import(project)
    before = commits(project)
    grown = project.transcripts / f"{ids[2]}.jsonl"
    extra = user_line(ids[2], "one more thing")
    with open(grown, "ab") as handle:
        handle.write(extra)
    run_import(project)
    assert commits(project) == before + 1
    assert f"Cmem-Session: {ids[2]}" in project.git("log", "-1", "--format=%B")
    assert stored(project.memory)[f"transcripts/{ids[2]}/main.jsonl"] == grown.read_bytes()
    assert "+1 record," in project.git("log", "-1", "--format=%s")


def test_a_partial_last_line_waits_as_in_a_hook(project: Project) -> None:
    sid, files = make_session(project.transcripts, 0, 1_700_000_000)
    path = project.transcripts / f"{sid}.jsonl"
    half = user_line(sid, "still being written")[:30]
    path.write_bytes(files["main.jsonl"] + half)
    run_import(project)
    assert stored(project.memory)[f"transcripts/{sid}/main.jsonl"] == files["main.jsonl"]
    before = commits(project)
    run_import(project)
    assert commits(project) == before


def test_progress_and_report_in_process(project: Project) -> None:
    for i in range(3):
        make_session(project.transcripts, i, 1_700_000_000 + i)
    calls: list[tuple[int, int, str]] = []
    store = Store.open(project.memory)
    report = importer.run(store, "laptop", project.transcripts, None,
                          lambda done, total, item: calls.append((done, total, item)))
    assert [c[0] for c in calls] == [0, 1, 2, 3] and {c[1] for c in calls} == {3}
    assert len(report.commits) == 3 and report.problems == []
    assert project.git("status", "--porcelain") == ""


def test_a_subagent_folder_without_its_transcript_is_reported(project: Project) -> None:
    (project.transcripts / "orphan" / "subagents").mkdir(parents=True)
    (project.transcripts / "orphan" / "subagents" / "agent-x.jsonl").write_bytes(b"{}\n")
    store = Store.open(project.memory)
    report = importer.run(store, "laptop", project.transcripts)
    assert any("orphan" in problem for problem in report.problems)


# --- claude-memory folders ----------------------------------------------------------------

def _legacy_sessions(tmp: Path) -> dict[str, bytes]:
    return {name: with_id(SOURCES[i].read_bytes(), name) for i, name in
            enumerate(["sess-a", "sess-b", "sess-c", "sess-d", "sess-e"])}


def _lines(data: bytes, count: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:count])


def test_an_adopted_claude_memory_folder_loses_nothing(tmp_path: Path, hermetic: Path) -> None:
    root = tmp_path / "legacy project"
    memory = root / ".claude" / "memory"
    raw = memory / "raw"
    raw.mkdir(parents=True)
    s = _legacy_sessions(tmp_path)
    conflicting = _lines(s["sess-d"], 3) + user_line("sess-d", "a version Claude Code lost")
    agent = with_id(SUBAGENTS[1].read_bytes(), "sess-b")
    cut = len(s["sess-c"]) - 40  # `cp` stopped in the middle of the last line
    outside = tmp_path / "elsewhere" / "20260103_080000Z_prompt_input_exit.jsonl"
    outside.parent.mkdir()
    outside.write_bytes(s["sess-e"])
    backups = {
        "20260101_090000Z_compact.jsonl": _lines(s["sess-a"], 5),      # prefix of the live one
        "20260101_100000Z_compact.jsonl": _lines(s["sess-b"], 10),     # an earlier copy of b
        "20260101_110000Z_prompt_input_exit.jsonl": s["sess-b"],       # b, deleted since
        "20260101_110500Z_other.jsonl": s["sess-b"],                   # the same copy twice
        "20260102_090000Z_compact.jsonl": s["sess-c"][:cut],           # truncated, c deleted
        "20260102_100000Z_clear.jsonl": conflicting,                   # differs from live d
        "20260102_110000Z_agent.jsonl": agent,                         # a subagent's records
        "notes.jsonl": b'{"note": "no session id"}\n',
    }
    for name, data in backups.items():
        (raw / name).write_bytes(data)
    (memory / ".pending-backup-exit").write_text(f"{raw / '20260101_110000Z_prompt_input_exit.jsonl'}\n")
    (memory / ".last-compact-backup").write_text("raw/20260102_090000Z_compact.jsonl\n")
    (memory / ".last-exit-backup").write_text(f"{outside}\n")
    (memory / "sessions").mkdir()
    (memory / "sessions" / "session-2026-01-01-1000.md").write_text("# auth work\n")
    (memory / "active-context.md").write_text("# Active Context\nmine\n")
    pending = (memory / ".pending-backup-exit").read_text()
    project = Project(root, hermetic)
    (project.transcripts / "sess-a.jsonl").write_bytes(s["sess-a"])
    (project.transcripts / "sess-d.jsonl").write_bytes(s["sess-d"])
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    done = cmem("init", cwd=root)  # adoption imports the backups, with their live sessions
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()

    files = stored(memory)
    for name, data in backups.items():
        if name != "notes.jsonl":
            assert_kept(files, data.split(b'"sessionId":"')[1].split(b'"')[0].decode(), data)
    assert_kept(files, "sess-e", outside.read_bytes())
    assert files["transcripts/sess-a/main.jsonl"] == s["sess-a"]
    assert files["transcripts/sess-b/main.jsonl"] == s["sess-b"]
    assert files["transcripts/sess-c/main.jsonl"] == s["sess-c"][:s["sess-c"].rfind(b"\n", 0, cut) + 1]
    assert files["transcripts/sess-c/imported/20260102_090000Z_compact.jsonl"] == s["sess-c"][:cut]
    assert files["transcripts/sess-d/main.jsonl"] == s["sess-d"]
    assert files["transcripts/sess-d/imported/20260102_100000Z_clear.jsonl"] == conflicting
    assert files["transcripts/sess-b/imported/20260102_110000Z_agent.jsonl"] == agent
    assert files["transcripts/sess-e/main.jsonl"] == s["sess-e"]
    assert not any(k.startswith("transcripts/sess-b/imported/2026010") and "agent" not in k
                   for k in files)  # b's copies were all prefixes of b: nothing else added
    for name in (".last-compact-backup", ".last-exit-backup",
                 "sessions/session-2026-01-01-1000.md"):
        assert project.git("show", f"HEAD:{name}") == (memory / name).read_text()
    assert project.git("show", "HEAD:imported/claude-memory/raw/notes.jsonl") == \
        (raw / "notes.jsonl").read_text()  # raw/ itself stays out of the tree
    assert project.git("show", "HEAD:imported/claude-memory/.pending-backup-exit") == pending
    assert not (memory / ".pending-backup-exit").exists()
    assert "imported 9 claude-memory backups from raw/" in out
    assert project.git("status", "--porcelain", "--untracked-files=all") == ""
    before = commits(project)
    assert "nothing new to import" in run_import(project)
    assert commits(project) == before


def test_another_claude_memory_folder(project: Project, tmp_path: Path) -> None:
    legacy = tmp_path / "old-memory"
    (legacy / "raw").mkdir(parents=True)
    (legacy / "sessions").mkdir()
    s = _legacy_sessions(tmp_path)
    (legacy / "raw" / "20260101_100000Z_compact.jsonl").write_bytes(_lines(s["sess-a"], 4))
    (legacy / "raw" / "20260101_110000Z_prompt_input_exit.jsonl").write_bytes(s["sess-a"])
    (legacy / "raw" / "stray.jsonl").write_bytes(b"not json at all\n")
    (legacy / ".pending-backup-compact").write_text("/gone/raw/20260101_100000Z_compact.jsonl\n")
    (legacy / ".pending-backup-exit").write_text("/nowhere/missing.jsonl\n")
    (legacy / ".backup-log").write_text("[2026-01-01] SessionEnd: saved\n")
    (legacy / "active-context.md").write_text("# Active Context\nfrom the old folder\n")
    (legacy / "sessions" / "session-2026-01-01-1000.md").write_text("# old auth work\n")
    (legacy / "session-2025-12-31-0900.md").write_text("# even older\n")
    taken = project.memory / "sessions" / "session-2026-01-01-1000.md"
    taken.parent.mkdir(exist_ok=True)
    taken.write_text("# a different document with the same name\n")
    project.git("add", "sessions")
    project.git("commit", "-qm", "a document committed by hand")
    empty = tmp_path / "no-claude-code"
    empty.mkdir()

    done = cmem("import", "--claude-memory", str(legacy), "--projects-dir", str(empty),
                cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert b"missing.jsonl, which is gone" in done.stderr
    files = stored(project.memory)
    assert files["transcripts/sess-a/main.jsonl"] == s["sess-a"]
    assert [k for k in files if "imported" in k] == []
    show = lambda path: project.git("show", f"HEAD:{path}")  # noqa: E731
    assert show("sessions/session-2026-01-01-1000-imported.md") == "# old auth work\n"
    assert show("sessions/session-2026-01-01-1000.md") == taken.read_text()
    assert show("sessions/session-2025-12-31-0900.md") == "# even older\n"
    for name in ("active-context.md", ".backup-log", ".pending-backup-exit", "raw/stray.jsonl"):
        assert show(f"imported/claude-memory/{name}") == (legacy / name).read_text()
    assert "from the old folder" not in show("active-context.md")
    assert project.git("status", "--porcelain") == ""
    before = commits(project)
    done = cmem("import", "--claude-memory", str(legacy), "--projects-dir", str(empty),
                cwd=project.root)
    assert b"nothing new to import" in done.stdout and commits(project) == before


def test_live_transcript_wins_main_and_a_longer_backup_is_kept(project: Project) -> None:
    legacy = project.memory / "raw"
    legacy.mkdir()
    sid, files = make_session(project.transcripts, 1, 1_700_000_000)
    short = _lines(files["main.jsonl"], 6)
    (project.transcripts / f"{sid}.jsonl").write_bytes(short)
    (legacy / "backup.jsonl").write_bytes(files["main.jsonl"])  # longer than what is live
    run_import(project)
    kept = stored(project.memory)
    assert kept[f"transcripts/{sid}/main.jsonl"] == short
    assert kept[f"transcripts/{sid}/imported/backup.jsonl"] == files["main.jsonl"]


@pytest.mark.parametrize("first", ["backups", "live"])
def test_backups_then_live_or_live_then_backups(project: Project, first: str) -> None:
    """Whichever arrives first, the session ends with the live transcript as main.jsonl and
    nothing of the backups missing."""
    legacy = project.memory / "raw"
    legacy.mkdir()
    sid, files = make_session(project.transcripts, 2, 1_700_000_000)
    live = project.transcripts / f"{sid}.jsonl"
    (legacy / "early.jsonl").write_bytes(_lines(files["main.jsonl"], 20))
    if first == "backups":
        live.rename(live.with_suffix(".hidden"))
        run_import(project)
        live.with_suffix(".hidden").rename(live)
    run_import(project)
    kept = stored(project.memory)
    assert kept[f"transcripts/{sid}/main.jsonl"] == files["main.jsonl"]
    assert [k for k in kept if "imported" in k] == []
    shutil.rmtree(legacy)
