"""Adopting a claude-memory folder (issue 12): the workflow goes on the same day.

A hand-made claude-memory project, as its users have them: `> Last Session Doc:` pointing at one
of two session documents, raw/ backups (a secret in one), `.pending-backup-*` markers, the bash
hooks in the shared settings.json, and the memory folder committed to the project's own git.
Everything runs the installed `cmem` and the hook commands `cmem init` wrote, as Claude Code runs
them; results are read back with the git CLI.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import yaml
from conftest import CORPUS, Project, cmem, git, payload, run_hook

SHORT = CORPUS / "spotter" / "short.jsonl"
TOOL_HEAVY = CORPUS / "spotter" / "tool_heavy.jsonl"
OLD_ID = "5b0e4c1a-7d2f-4e3b-9a8c-1f2e3d4c5b6a"  # documented in the older document
PENDING_ID = "6c1f5d2b-8e3a-4f4c-8b9d-2a3b4c5d6e7f"  # backed up after the last document
NEW_ID = "7d2a6e3c-9f4b-4a5d-9cae-3b4c5d6e7f80"  # the first session under cmem
SECRET = "ghp_" + "Zq8Kd2mX7pL4vR9tY1wB6nC3jH5sF0gA2eUi"
POINTED = "sessions/2026-01-02-api.md"  # sorts before the other: only the pointer says "last"
OTHER = "sessions/2026-01-03-notes.md"
_SESSION_FIELD = re.compile(rb'"sessionId":\s*"[^"]*"')

HOOK_SCRIPT = """#!/usr/bin/env bash
# claude-memory: copy the transcript into .claude/memory/raw and mark it pending
cp "$transcript" ".claude/memory/raw/$(date -u +%Y%m%d_%H%M%SZ)_exit.jsonl"
echo "$backup" > .claude/memory/.pending-backup-exit
"""
USER_HOOKS = {
    "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "fmt"}]}],
    "Notification": [{"hooks": [{"type": "command",
                                 "command": "bash .claude/hooks/tmux-waiting.sh"}]}],
}
OLD_HOOKS = {
    "SessionEnd": [{"hooks": [{"type": "command",
                               "command": "bash .claude/hooks/on-session-end.sh"}]}],
    "PreCompact": [{"hooks": [{"type": "command",
                               "command": '"$CLAUDE_PROJECT_DIR"/.claude/hooks/on-pre-compact.sh'}]}],
}


def with_id(data: bytes, session_id: str) -> bytes:
    return _SESSION_FIELD.sub(f'"sessionId":"{session_id}"'.encode(), data)


def secret_line(session_id: str) -> bytes:
    record = {"type": "user", "sessionId": session_id, "uuid": "0b1c2d3e-0000-4000-8000-1",
              "timestamp": "2026-01-01T10:00:00.000Z",
              "message": {"role": "user", "content": f"use my token {SECRET} for the API"}}
    return json.dumps(record).encode() + b"\n"


def claude_memory_project(root: Path) -> dict[str, bytes]:
    """The folder, the hooks and the project's git as claude-memory left them."""
    memory = root / ".claude" / "memory"
    raw = memory / "raw"
    raw.mkdir(parents=True)
    (root / ".claude" / "hooks").mkdir()
    for name in ("on-session-end.sh", "on-pre-compact.sh"):
        (root / ".claude" / "hooks" / name).write_text(HOOK_SCRIPT)
    (root / ".claude" / "hooks" / "tmux-waiting.sh").write_text("tmux display 'waiting'\n")
    (root / ".claude" / "settings.json").write_text(json.dumps(
        {"model": "opus", "hooks": {**USER_HOOKS, **OLD_HOOKS}}, indent=2))
    files = {
        "active-context.md": f"# Active Context\n\n> Last Session Doc: {POINTED}\n"
                             "> Last Updated: 2026-01-02 09:00\n\n## Focus\nthe API\n".encode(),
        "project-memory.md": b"# Project Memory\n\nPostgres 16.\n",
        POINTED: b"---\ntitle: API work\n---\n\n# API work\n\nEndpoints done.\n",
        OTHER: b"# Notes from before\n\nSet-up.\n",
        ".backup-log": b"[2026-01-02] SessionEnd: saved\n",
        "raw/20260101_100000Z_exit.jsonl": with_id(SHORT.read_bytes(), OLD_ID)
        + secret_line(OLD_ID),
        "raw/20260102_100000Z_exit.jsonl": with_id(TOOL_HEAVY.read_bytes(), PENDING_ID),
    }
    for name, data in files.items():
        (memory / name).parent.mkdir(parents=True, exist_ok=True)
        (memory / name).write_bytes(data)
    (memory / ".pending-backup-exit").write_text(f"{raw / '20260102_100000Z_exit.jsonl'}\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-qm", "claude-memory, committed as its users did")
    return files


def all_objects(memory: Path) -> bytes:
    """The content of every object in the repository, loose or packed."""
    return subprocess.run(["git", "-C", str(memory), "cat-file", "--batch-all-objects",
                           "--batch"], capture_output=True, check=True).stdout


def run(project: Project, *args: str, input: bytes | None = None) -> str:
    done = cmem(*args, cwd=project.root, input=input)
    assert done.returncode == 0, (args, done.stderr.decode())
    return done.stdout.decode()


def test_adopted_claude_memory_keeps_its_workflow(tmp_path: Path, hermetic: Path) -> None:
    root = tmp_path / "old project"
    files = claude_memory_project(root)
    memory = root / ".claude" / "memory"
    settings = root / ".claude" / "settings.json"
    original_settings = settings.read_bytes()

    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr.decode()
    out, notes = done.stdout.decode(), done.stderr.decode()
    project = Project(root, hermetic)

    # init names each thing it changed
    assert f"adopted memory repository {memory}" in out
    assert "imported 2 claude-memory backups from raw/ (redacted)" in out
    assert f"recognised 2 session documents; the last one is {POINTED}" in out
    assert "turned .pending-backup-exit into a pending backup" in out
    backups = sorted((root / ".claude").glob("settings.json.cmem-backup-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == original_settings
    assert (f"removed claude-memory's hooks from {settings} (SessionEnd: bash "
            ".claude/hooks/on-session-end.sh; PreCompact: \"$CLAUDE_PROJECT_DIR\"/.claude/hooks/"
            f"on-pre-compact.sh); the file as it was is {backups[0]}") in out
    command = f"git -C {shlex.quote(str(root))} rm -r --cached -- .claude/memory"
    assert "your project's git tracks .claude/memory" in notes and command in notes

    # no old hook is active; the user's own hooks and the scripts stay
    shared = json.loads(settings.read_text())
    assert shared == {"model": "opus", "hooks": USER_HOOKS}
    local = (root / ".claude" / "settings.local.json").read_text()
    assert "on-session-end" not in local and "on-pre-compact" not in local
    assert (root / ".claude" / "hooks" / "on-session-end.sh").read_text() == HOOK_SCRIPT

    # the old layout stays readable; the markers are gone, their text kept in history
    for name, data in files.items():
        assert (memory / name).read_bytes() == data, name
    assert not (memory / ".pending-backup-exit").exists()
    assert project.git("show", "HEAD:imported/claude-memory/.pending-backup-exit") \
        .startswith(str(memory / "raw"))

    # the pointed document is the last one, the marked backup is pending
    status = json.loads(run(project, "status", "--json"))
    assert status["document"]["trailers"]["Cmem-Document"] == POINTED
    assert {e["session"] for e in status["since_document"] if e["session"]} == {PENDING_ID}
    resume = run(project, "resume")
    assert resume.startswith(f"# Last session document: {POINTED}\n")
    assert "Endpoints done." in resume and "Set-up." not in resume

    # a session under cmem: SessionStart names the document and the pending backup
    transcript = project.transcripts / f"{NEW_ID}.jsonl"
    transcript.write_bytes(with_id(SHORT.read_bytes(), NEW_ID))
    start = run_hook(project, "SessionStart", payload("SessionStart", NEW_ID, transcript, root))
    context = json.loads(start.stdout)["hookSpecificOutput"]["additionalContext"]
    assert f"({POINTED})" in context and f"session {PENDING_ID}" in context
    assert "No session document yet" not in context
    end = run_hook(project, "SessionEnd", payload("SessionEnd", NEW_ID, transcript, root))
    assert end.returncode == 0 and end.stderr == b"", end.stderr
    assert project.git("status", "--porcelain", "--untracked-files=all") == ""

    # coalesce appends to the pointed document; the next document names it as previous
    run(project, "coalesce", "-", input=b"More endpoints: COALESCED-MARKER\n")
    text = project.git("show", f"HEAD:{POINTED}")
    assert text.startswith(files[POINTED].decode().rstrip("\n"))
    assert "Session continuation" in text and "COALESCED-MARKER" in text
    saved = run(project, "doc", "save", "-", input=b"# Next\n\nMore.\n")
    path = re.search(r"sessions/\S+\.md", saved)[0]  # type: ignore[index]
    front = yaml.safe_load(project.git("show", f"HEAD:{path}").split("---\n")[1])
    assert front["previous_session"] == POINTED
    assert project.git("status", "--porcelain", "--untracked-files=all") == ""

    # the secret in raw/ is in no object; the backup itself is there, redacted
    objects = all_objects(memory)
    assert SECRET.encode() not in objects
    assert b"[REDACTED:github-token]" in objects
    git(memory, "fsck", "--strict")

    # the printed command stops the project tracking the memory, which it then never sees
    subprocess.run(shlex.split(command), check=True, capture_output=True)
    assert git(root, "ls-files", ".claude/memory") == ""
    run(project, "doc", "save", "-", input=b"# After\n\nx\n")
    seen = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert seen and all(line.startswith("D  .claude/memory/") or ".claude/settings.json" in line
                        or line == "?? .claude/skills/cmem-recall/SKILL.md"
                        for line in seen), seen


def test_adoption_commits_the_folder_as_it_is(tmp_path: Path) -> None:
    """Files other than raw/ and the pending markers become the first commit byte for byte,
    names and binary content included; running init again adds nothing."""
    root = tmp_path / "legacy"
    memory = root / ".claude" / "memory"
    files = {
        "active-context.md": b"# Active Context\n\nmine\n",
        "sessions/session-2026-01-01-auth.md": b"---\ntitle: auth\n---\nnotes\n",
        ".last-exit-backup": b"raw/backup-1.jsonl\n",
        "odd name \u00e9.txt": b"\x00\xff binary\r\n",
    }
    for name, data in files.items():
        (memory / name).parent.mkdir(parents=True, exist_ok=True)
        (memory / name).write_bytes(data)
    (memory / "raw").mkdir()
    (memory / "raw" / "backup-1.jsonl").write_bytes(with_id(SHORT.read_bytes(), OLD_ID))
    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr
    for name, data in files.items():
        assert git_show(memory, f"HEAD:{name}") == data, name
        assert (memory / name).read_bytes() == data  # nothing rewritten on disk
    assert git_show(memory, "HEAD:project-memory.md")  # the missing one from the template
    assert git_show(memory, "HEAD:raw/backup-1.jsonl") is None  # imported, not copied
    assert git(memory, "ls-tree", "--name-only", f"HEAD:transcripts/{OLD_ID}/main.jsonl")
    assert git(memory, "status", "--porcelain", "--untracked-files=all") == ""
    git(memory, "fsck", "--strict")
    head = git(memory, "rev-parse", "HEAD")
    assert cmem("init", cwd=root).returncode == 0
    assert git(memory, "rev-parse", "HEAD") == head


def test_a_pointer_to_a_missing_document_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    memory = root / ".claude" / "memory"
    (memory / "sessions").mkdir(parents=True)
    (memory / "active-context.md").write_text("> Last Session Doc: sessions/gone.md\n")
    (memory / "sessions" / "kept.md").write_text("# Kept\n")
    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr
    assert b"sessions/gone.md` names no document" in done.stderr
    assert b"the last one is sessions/kept.md" in done.stdout
    resume = cmem("resume", cwd=root).stdout.decode()
    assert resume.startswith("# Last session document: sessions/kept.md")


def git_show(folder: Path, spec: str) -> bytes | None:
    done = subprocess.run(["git", "-C", str(folder), "show", spec], capture_output=True)
    return done.stdout if done.returncode == 0 else None


def test_which_hook_commands_are_claude_memorys(tmp_path: Path) -> None:
    from cmem_git.setup.adoption import is_old_hook

    hooks = tmp_path / ".claude" / "hooks"
    hooks.mkdir(parents=True)
    (hooks / "save.sh").write_text("cp \"$t\" .claude/memory/raw/x.jsonl\n")
    (hooks / "stop.sh").write_text("notify-send 'Claude stopped'\n")  # the user's own
    assert is_old_hook("bash .claude/hooks/save.sh", tmp_path)
    assert is_old_hook('"$CLAUDE_PROJECT_DIR"/.claude/hooks/save.sh --exit', tmp_path)
    assert is_old_hook(f"{hooks}/save.sh", tmp_path)
    assert is_old_hook("bash .claude/hooks/on-session-end.sh", tmp_path)  # gone, by its name
    assert not is_old_hook("bash .claude/hooks/stop.sh", tmp_path)
    assert not is_old_hook("bash .claude/hooks/tmux-waiting.sh", tmp_path)
    assert not is_old_hook("/venv/bin/python -m cmem_git hook stop", tmp_path)
    assert not is_old_hook("echo 'unbalanced", tmp_path)
