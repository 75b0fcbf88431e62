"""Large transcripts: first backups into one pack, stopped by a deadline and continued, killed
midway; and transcripts kept out of the working tree, including in repositories an older cmem
checked them out in."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2
from conftest import CORPUS, Project, cmem, cmem_command, git, payload, run_hook, stored_file

from cmem_git.capture import backup, checkpoint
from cmem_git.git import chunks
from cmem_git.repo.store import Store

MiB = 1024 * 1024
SID = "5f0c2a8e-1111-4222-8333-944455556666"


def transcript(size: int) -> bytes:
    """Real corpus records in a cycle, each made unique (so no two chunks are equal)."""
    return b"".join(records(size))


def records(size: int) -> Iterator[bytes]:
    lines = [line for path in sorted((CORPUS / "spotter").rglob("*.jsonl"))
             for line in path.read_bytes().splitlines(keepends=True)
             if line.startswith(b"{") and line.endswith(b"\n")]
    total = 0
    for number, line in enumerate(itertools.cycle(lines)):
        record = b'{"n":%d,' % number + line[1:]
        yield record
        total += len(record)
        if total >= size:
            return


def fsck_clean(folder: Path) -> None:
    done = subprocess.run(["git", "-C", str(folder), "fsck", "--full", "--no-dangling"],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr


def test_a_large_first_backup_is_one_pack_and_comes_back_byte_for_byte(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    data = transcript(24 * MiB)
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(data)
    result = checkpoint.take(store, checkpoint.Request("session-end", SID, path, "dev"))
    assert result.commit is not None and result.problems == []
    memory = store.workdir
    assert stored_file(memory, SID) == data
    packs = list((memory / ".git" / "objects" / "pack").glob("*.pack"))
    assert len(packs) == 1
    loose = git(memory, "count-objects", "-v")
    assert "in-pack: " in loose and int(loose.split("in-pack: ")[1].split()[0]) >= 90
    fsck_clean(memory)
    assert git(memory, "status", "--porcelain") == ""
    assert not (memory / backup.ROOT).exists()
    # the same boundaries as cutting the whole file at once
    names = git(memory, "ls-tree", "--name-only", f"HEAD:transcripts/{SID}/main.jsonl").split()
    assert names == [p.name for p in chunks.cut(data)]


def test_a_backup_past_its_deadline_commits_whole_lines_and_the_next_one_continues(
        tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    data = transcript(12 * MiB)
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(data)
    late = checkpoint.Request("session-end", SID, path, "dev", deadline=time.monotonic())
    first = checkpoint.take(store, late)
    assert first.commit is not None
    done = stored_file(store.workdir, SID)
    assert 0 < len(done) < len(data) and data.startswith(done) and done.endswith(b"\n")
    assert any("left for the next hook" in p for p in first.problems), first.problems
    second = checkpoint.take(store, checkpoint.Request("stop", SID, path, "dev"))
    assert second.commit is not None and second.problems == []
    assert stored_file(store.workdir, SID) == data
    names = git(store.workdir, "ls-tree", "--name-only",
                f"HEAD:transcripts/{SID}/main.jsonl").split()
    assert names == [p.name for p in chunks.cut(data)], "boundaries as if done in one go"
    fsck_clean(store.workdir)


def test_a_first_backup_killed_midway_leaves_a_sound_repository_and_the_next_hook_finishes(
        project: Project) -> None:
    data = transcript(40 * MiB)
    path = project.transcripts / f"{SID}.jsonl"
    path.write_bytes(data)
    before = git(project.memory, "rev-parse", "HEAD").strip()
    temp = project.memory / ".git" / "cmem" / "tmp"
    process = subprocess.Popen(
        ["sh", "-c", project.hook_command("SessionEnd")], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=project.root,
        env={"HOME": str(project.home), "PATH": "/usr/bin:/bin",
             "CLAUDE_PROJECT_DIR": str(project.root),
             "CMEM_HOOK_FOREGROUND": "1"},  # the process killed is the one that commits
        start_new_session=True)
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload("SessionEnd", SID, path, project.root)).encode())
    process.stdin.close()
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if temp.is_dir() and any(p.name.startswith("pack-") and p.stat().st_size > 0
                                 for p in temp.iterdir()):
            break
        time.sleep(0.001)
    assert process.poll() is None, "the hook finished before the pack was being written"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert git(project.memory, "rev-parse", "HEAD").strip() == before, "killed before its commit"
    fsck_clean(project.memory)
    assert git(project.memory, "status", "--porcelain") == ""
    # The next hooks go on (each SessionEnd within its budget) until the whole file is stored.
    stored = b""
    for _ in range(60):
        done = run_hook(project, "SessionEnd", payload("SessionEnd", SID, path, project.root))
        assert done.returncode == 0
        now = stored_file(project.memory, SID)
        assert data.startswith(now) and len(now) > len(stored), "each hook makes progress"
        stored = now
        if stored == data:
            break
    assert stored == data
    fsck_clean(project.memory)
    assert git(project.memory, "status", "--porcelain") == ""
    assert not any(temp.glob("pack-*")), "the dead writer's temp pack was cleared"


def test_transcripts_checked_out_by_an_older_cmem_leave_the_working_tree(tmp_path: Path
                                                                          ) -> None:
    memory = tmp_path / "mem"
    store = Store.init(memory)
    data = transcript(MiB)
    path = tmp_path / f"{SID}.jsonl"
    path.write_bytes(data)
    checkpoint.take(store, checkpoint.Request("stop", SID, path, "dev"))
    # What an older cmem left: no sparse checkout, every chunk checked out and in the index.
    git(memory, "config", "--unset", "core.sparseCheckout")
    (memory / ".git" / "info" / "sparse-checkout").unlink()
    git(memory, "update-index", "--no-skip-worktree",
        *git(memory, "ls-files", backup.ROOT).split())
    git(memory, "checkout", "--", backup.ROOT)
    assert (memory / backup.ROOT / SID / "main.jsonl").is_dir()
    stray = memory / backup.ROOT / "notes.txt"
    stray.write_text("not from cmem\n")
    assert git(memory, "status", "--porcelain") == "?? transcripts/notes.txt\n"

    reopened = Store.open(memory)
    assert sorted(p.relative_to(memory).as_posix() for p in (memory / backup.ROOT).rglob("*")) \
        == ["transcripts/notes.txt"], "only the file that is in no commit stays"
    assert any("transcripts/notes.txt" in w for w in reopened.warnings), reopened.warnings
    stray.unlink()
    stray.parent.rmdir()
    assert git(memory, "status", "--porcelain") == ""
    assert git(memory, "config", "core.sparseCheckout").strip() == "true"
    # git's own commands keep them out too, and still read them
    git(memory, "reset", "-q", "--hard")
    assert not (memory / backup.ROOT).exists()
    assert stored_file(memory, SID) == data
    assert f"transcripts/{SID}/main.jsonl" in git(memory, "show", "--stat", "HEAD")
    # the next commit keeps things that way
    path.write_bytes(data + b"{\"type\":\"user\",\"n\":-1}\n")
    checkpoint.take(reopened, checkpoint.Request("stop", SID, path, "dev"))
    assert not (memory / backup.ROOT).exists()
    assert git(memory, "status", "--porcelain") == ""


def test_hooks_leave_only_human_files_in_the_working_tree(project: Project) -> None:
    path = project.transcripts / f"{SID}.jsonl"
    path.write_bytes((CORPUS / "spotter" / "short.jsonl").read_bytes())
    for event in ("SessionStart", "Stop", "PreCompact", "SessionEnd"):
        done = run_hook(project, event, payload(event, SID, path, project.root))
        assert done.returncode == 0, done.stderr
        assert git(project.memory, "status", "--porcelain") == "", event
        assert not (project.memory / backup.ROOT).exists(), event
    files = sorted(p.relative_to(project.memory).as_posix()
                   for p in project.memory.rglob("*") if ".git" not in p.parts and p.is_file())
    assert all(not f.startswith("transcripts/") for f in files), files
    assert stored_file(project.memory, SID) == path.read_bytes()
    assert isinstance(pygit2.Repository(str(project.memory)).head.peel(pygit2.Commit),
                      pygit2.Commit)


def test_cat_and_restore_of_a_large_transcript_are_byte_exact(project: Project,
                                                              tmp_path: Path) -> None:
    data = transcript(24 * MiB)
    path = project.transcripts / f"{SID}.jsonl"
    path.write_bytes(data)
    done = run_hook(project, "PreCompact", payload("PreCompact", SID, path, project.root))
    assert done.returncode == 0 and done.stdout == b"", done.stdout
    shown = cmem("cat", SID[:8], cwd=project.root)
    assert shown.returncode == 0 and shown.stdout == data
    target = tmp_path / "elsewhere"
    restored = cmem("restore", SID[:8], "--to", str(target), cwd=project.root)
    assert restored.returncode == 0, restored.stderr
    assert (target / f"{SID}.jsonl").read_bytes() == data
    again = cmem("restore", SID[:8], "--to", str(target), cwd=project.root)
    assert b"already there" in again.stdout
    with open(target / f"{SID}.jsonl", "ab") as handle:
        handle.write(b'{"type":"user"}\n')
    kept = cmem("restore", SID[:8], "--to", str(target), cwd=project.root)
    assert b"kept" in kept.stdout, "a longer local file is newer, never truncated"
    (target / f"{SID}.jsonl").write_bytes(data[:-10] + b"different\n")
    refused = cmem("restore", SID[:8], "--to", str(target), cwd=project.root)
    assert refused.returncode != 0 and b"different files exist" in refused.stderr


def digest(path: Path) -> str:
    found = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(MiB):
            found.update(block)
    return found.hexdigest()


def test_a_400_mib_transcript_round_trips_byte_for_byte(project: Project, tmp_path: Path) -> None:
    """Issue 13's largest size, through the hook as installed (SessionEnd, detached), then back
    with `cmem cat` and `cmem restore`: the same bytes, compared by digest (files, not memory)."""
    path = project.transcripts / f"{SID}.jsonl"
    with open(path, "wb") as handle:
        handle.writelines(records(400 * MiB))
    done = run_hook(project, "SessionEnd", payload("SessionEnd", SID, path, project.root))
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
    assert project.git("status", "--porcelain") == ""
    shown = tmp_path / "shown.jsonl"
    with open(shown, "wb") as out:
        cat = subprocess.run([*cmem_command(), "cat", SID[:8]], cwd=project.root, stdout=out,
                             stderr=subprocess.PIPE, timeout=600)
    assert cat.returncode == 0, cat.stderr
    expected = digest(path)
    assert digest(shown) == expected
    shown.unlink()
    restored = cmem("restore", SID[:8], "--to", str(tmp_path / "elsewhere"), cwd=project.root)
    assert restored.returncode == 0, restored.stderr
    assert digest(tmp_path / "elsewhere" / f"{SID}.jsonl") == expected
    fsck_clean(project.memory)
