"""The helper process that redacts part of a large backup (capture/helper.py): the same bytes
in the same order as redacting in this process, a fallback when it fails, nothing left running,
and a repository a SIGKILL of the hook alone leaves sound while its helper goes too."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Project, git, payload, run_hook, stored_file
from test_first_backup import SID, MiB, fsck_clean, transcript

from cmem_git.capture import checkpoint, helper
from cmem_git.git import chunks
from cmem_git.repo.config import Config

SECRET = "ghp_" + "Zq8Lm2Xv7Rt4Ws9Yp3Kd6Fh1Jb5Nc0Ge2Aa"


def pieces_with_secrets() -> list[chunks.Piece]:
    """Real records cut into chunks, a secret in every third one (helper's and ours alike)."""
    pieces = chunks.cut(transcript(3 * MiB), size=64 * 1024)
    record = json.dumps({"type": "user", "message": {"content": f"token: {SECRET}"}}).encode()
    return [chunks.Piece(p.offset, p.line, p.data + record + b"\n" if n % 3 == 0 else p.data)
            for n, p in enumerate(pieces)]


def data(piece: chunks.Piece) -> bytes:
    return piece.data


def test_the_helper_gives_what_redacting_here_gives_in_order() -> None:
    assert helper.usable(), "pytest runs single-threaded on Linux with two cores or more"
    change = checkpoint.redaction(Config())
    assert change is not None
    pieces = pieces_with_secrets()
    here: list[int] = []
    kept: list[bytes] = []

    def counted(chunk: bytes) -> tuple[bytes, int]:
        here.append(os.getpid())  # the helper's calls are appended in its own copy
        return change(chunk)

    results = list(helper.redacted(pieces, data, counted, kept.append))
    assert [piece for piece, _ in results] == pieces
    assert [result for _, result in results] == [change(p.data) for p in pieces]
    assert sum(count for _, (_, count) in results) >= len(pieces) // 3
    assert not any(SECRET.encode() in new for _, (new, _) in results)
    done_here = len(here) - 1  # one call compiles the rules before the fork
    assert 0 < done_here < len(pieces), "the helper redacted some of the chunks"
    assert len(kept) == len(pieces), "every result is kept, the helper's too, in this process"


def test_a_helper_that_fails_leaves_the_chunks_to_this_process(tmp_path: Path) -> None:
    change = checkpoint.redaction(Config())
    assert change is not None
    parent = os.getpid()
    pieces = pieces_with_secrets()

    def dies_in_the_helper(chunk: bytes) -> tuple[bytes, int]:
        if os.getpid() != parent and chunk:
            (tmp_path / "helper").write_text(str(os.getpid()))
            os._exit(3)  # the helper dies on its first chunk
        return change(chunk)

    results = list(helper.redacted(pieces, data, dies_in_the_helper, lambda _: None))
    assert [result for _, result in results] == [change(p.data) for p in pieces]
    pid = int((tmp_path / "helper").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not a zombie


def test_closing_early_stops_the_helper() -> None:
    change = checkpoint.redaction(Config())
    assert change is not None
    before = set(_children(os.getpid()))
    results = helper.redacted(pieces_with_secrets(), data, change, lambda _: None)
    for _ in range(8):
        next(results)
    (pid,) = set(_children(os.getpid())) - before
    results.close()  # a backup past its deadline stops after whole chunks
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def test_a_hook_killed_alone_takes_its_helper_with_it_and_the_next_hook_finishes(
        project: Project) -> None:
    """SIGKILL to the hook process only (not its group): the helper sees its pipe close and
    exits; the repository is untouched and the next hook stores the whole file."""
    data_ = transcript(40 * MiB)
    path = project.transcripts / f"{SID}.jsonl"
    path.write_bytes(data_)
    before = git(project.memory, "rev-parse", "HEAD").strip()
    process = subprocess.Popen(  # the hook's own command without `sh -c`: its pid is the hook's
        shlex.split(project.hook_command("PreCompact")), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=project.root,
        env={"HOME": str(project.home), "PATH": "/usr/bin:/bin",
             "CLAUDE_PROJECT_DIR": str(project.root)})
    assert process.stdin is not None
    process.stdin.write(json.dumps(payload("PreCompact", SID, path, project.root)).encode())
    process.stdin.close()
    helpers: list[int] = []
    deadline = time.monotonic() + 60
    while process.poll() is None and not helpers and time.monotonic() < deadline:
        helpers = _children(process.pid)
        time.sleep(0.001)
    assert helpers, "the hook forked no helper (or finished first)"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    for _ in range(3000):  # the helper exits at its next read, once its current chunk is done
        if not Path(f"/proc/{helpers[0]}").exists() or \
                Path(f"/proc/{helpers[0]}/stat").read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the helper outlived its hook")
    assert git(project.memory, "rev-parse", "HEAD").strip() == before
    fsck_clean(project.memory)
    done = run_hook(project, "PreCompact", payload("PreCompact", SID, path, project.root))
    assert done.returncode == 0 and done.stdout == b"", done.stdout
    assert stored_file(project.memory, SID) == data_
    fsck_clean(project.memory)
    assert git(project.memory, "status", "--porcelain") == ""
