"""Every test gets its own HOME, git identity and Claude folder; none may touch the real ones."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The real Claude Code transcripts of ../shared/corpus, copied byte for byte into the repository
# so that a fresh clone tests against them anywhere (test_corpus_copy checks the copy).
CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
REAL_HOME = Path(os.path.expanduser("~")).resolve()
PYTHON = sys.executable
MINIMAL_PATH = "/usr/bin:/bin"
# A process running the CLI as the `cmem` script does, then saying which modules it loaded (on
# stderr's last line). Its arguments: "fast" or "full", a fast path's switch as
# "module:function", then cmem's arguments; "full" makes the switch answer None, so the same
# command takes the path through pygit2 (tests/test_fast_search.py, test_fast_log.py).
FAST_OR_FULL = """
import importlib, sys
if sys.argv[1] == "full":
    module, name = sys.argv[2].split(":")
    setattr(importlib.import_module(module), name, lambda *args, **kwargs: None)
from cmem_git.cli import main
try:
    status = main(sys.argv[3:])
except SystemExit as stop:
    status = stop.code if isinstance(stop.code, int) else 1
sys.stdout.flush()
sys.stderr.write("\\nloaded: " + " ".join(sorted(m for m in sys.modules if m.startswith(
    ("pygit2", "cmem_git.cli.", "cmem_git.repo")))) + "\\n")
sys.exit(status)
"""


@dataclass
class Answered:
    """One command run through FAST_OR_FULL: what it printed, and the modules it loaded."""

    status: int
    out: bytes
    err: bytes
    loaded: set[str]

    @property
    def same(self) -> tuple[int, bytes, bytes]:
        return self.status, self.out, self.err

    @property
    def pygit2(self) -> bool:
        return "pygit2" in self.loaded


def fast_or_full(cwd: Path, mode: str, switch: str, *args: str,
                 env: dict[str, str] | None = None) -> Answered:
    """`cmem ARGS` in `cwd` by the fast path ("fast") or with `switch` off ("full")."""
    done = subprocess.run([PYTHON, "-c", FAST_OR_FULL, mode, switch, *args], cwd=cwd,
                          capture_output=True, timeout=300, env=env)
    assert b"\nloaded: " in done.stderr, done.stderr.decode()
    err, _, loaded = done.stderr.rpartition(b"\nloaded: ")
    return Answered(done.returncode, done.stdout, err, set(loaded.decode().split()))


def corpus_transcripts() -> list[Path]:
    """Every real transcript in the corpus (main sessions and subagent files)."""
    return sorted(p for p in CORPUS.rglob("*.jsonl"))


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("GIT_", "CLAUDE_", "CMEM_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test User")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test User")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    real_claude = REAL_HOME / ".claude"
    before = _fingerprint(real_claude)
    yield home
    assert _fingerprint(real_claude) == before, "a test touched the real ~/.claude"


def _fingerprint(folder: Path) -> list[tuple[str, int]]:
    if not folder.is_dir():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())[:2000]


@dataclass
class Project:
    """A project folder with cmem set up, and the Claude Code transcript folder for it."""

    root: Path
    home: Path

    @property
    def memory(self) -> Path:
        return self.root / ".claude" / "memory"

    @property
    def transcripts(self) -> Path:
        from cmem_git.paths import encode_project

        folder = self.home / ".claude" / "projects" / encode_project(self.root)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def settings(self) -> dict[str, Any]:
        """The personal settings, where `cmem init` puts its hooks (the shared settings.json
        where there are none, as an earlier cmem left them)."""
        local = self.root / ".claude" / "settings.local.json"
        path = local if local.exists() else local.with_name("settings.json")
        return json.loads(path.read_text())

    def hook_command(self, event: str) -> str:
        """The command cmem wrote into settings.local.json for a Claude Code event."""
        groups = self.settings()["hooks"][event]
        return str(groups[-1]["hooks"][0]["command"])

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.memory, *args, check=check)

    def settle(self, seconds: float = 120) -> None:
        """Wait for the detached repack a hook may have started: it packs loose objects and
        removes emptied object folders, so counting objects meanwhile races with it."""
        from cmem_git.git import packing

        assert packing.wait(self.memory / ".git", seconds), "the background repack did not finish"


def git(folder: Path, *args: str, check: bool = True) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_DIR")}
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                          env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout


def cmem(*args: str, cwd: Path, input: bytes | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """The installed cmem, as a user runs it."""
    return subprocess.run([*cmem_command(), *args], cwd=cwd, input=input, capture_output=True,
                          env=env or dict(os.environ), timeout=300)


def cmem_command() -> list[str]:
    script = Path(PYTHON).parent / "cmem"
    return [str(script)] if script.exists() else [PYTHON, "-m", "cmem_git"]


@pytest.fixture
def project(tmp_path: Path, hermetic: Path) -> Project:
    root = tmp_path / "my project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr.decode()
    return Project(root, hermetic)


def run_hook(project: Project, event: str, payload: dict[str, Any] | bytes,
             cwd: Path | None = None, foreground: bool = False
             ) -> subprocess.CompletedProcess[bytes]:
    """Run the hook exactly as Claude Code does: the command from settings.local.json through a
    shell, JSON on stdin, from another folder, with a PATH that lacks cmem's virtualenv. Then
    wait for the detached process that does the work of Stop, SubagentStop and SessionEnd;
    `foreground` runs it in the hook's own process, whose output a test then sees."""
    from cmem_git.entry import detach

    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
           "CLAUDE_PROJECT_DIR": str(project.root), **({detach.FOREGROUND: "1"} if foreground
                                                       else {})}
    done = subprocess.run(["sh", "-c", project.hook_command(event)], input=data,
                          capture_output=True, cwd=cwd or project.home, env=env, timeout=120)
    gitdir = project.memory / ".git"
    assert not gitdir.is_dir() or detach.wait(gitdir, 120), "a detached hook did not finish"
    return done


def payload(event: str, session_id: str, transcript: Path, cwd: Path, **extra: Any
            ) -> dict[str, Any]:
    detail = {"SessionStart": {"source": "startup"}, "PreCompact": {"trigger": "auto"},
              "SessionEnd": {"reason": "prompt_input_exit"}, "Stop": {},
              "SubagentStop": {"agent_id": "a4bea7a21339c48a1", "agent_type": ""}}[event]
    return {"session_id": session_id, "transcript_path": str(transcript), "cwd": str(cwd),
            "hook_event_name": event, **detail, **extra}


def copy_session(source: Path, folder: Path, session_id: str) -> Path:
    target = folder / f"{session_id}.jsonl"
    shutil.copyfile(source, target)
    return target


CHUNK = re.compile(r"\d{12}-\d{9}")


def git_blobs(folder: Path, specs: list[str]) -> list[bytes]:
    """The bytes of each `<rev>:<path>` blob, through one `git cat-file --batch`."""
    if not specs:
        return []
    done = subprocess.run(["git", "-C", str(folder), "cat-file", "--batch"],
                          input="".join(s + "\n" for s in specs).encode(), capture_output=True,
                          check=True)
    out, pos, found = done.stdout, 0, []
    for spec in specs:
        eol = out.index(b"\n", pos)
        header = out[pos:eol].split()
        assert len(header) == 3 and header[1] == b"blob", (spec, header)
        size = int(header[2])
        found.append(out[eol + 1:eol + 1 + size])
        pos = eol + 1 + size + 1
    return found


def stored_file(folder: Path, sid: str, rel: str = "main.jsonl", rev: str = "HEAD") -> bytes:
    """A stored transcript, read with the git CLI: its chunk blobs concatenated in name order."""
    where = f"{rev}:transcripts/{sid}/{rel}"
    names = sorted(n for n in git(folder, "ls-tree", "--name-only", where).split()
                   if CHUNK.fullmatch(n))
    assert names, f"no chunks at {where} in {folder}"
    return b"".join(git_blobs(folder, [f"{where}/{n}" for n in names]))
