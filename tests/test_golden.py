"""Golden output of the reading commands on the real corpus (issue 14).

One history is built from tests/data/corpus with fixed clocks, so its commit ids and texts are
the same on every run: an earlier session and a session document, then the compaction excerpt
with its subagents (a Task subagent and the compaction run), a tool-heavy session whose one
large tool output Claude Code spilled to `tool-results/<tool id>.txt`, and a session that ran
a Task subagent. `cmem resume`, `delta`, `log` and `show` run on it as a user runs them, in a
pipe and on a pseudo-terminal 120 columns wide, and must print exactly tests/golden/<name>.

On a terminal times are relative ("12 d ago"): they are written as "<age> ago" before the
comparison, which is the only normalisation. To regenerate after an intended change:

    CMEM_GOLDEN_REGENERATE=1 .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_golden.py

then read `git diff tests/golden` before committing it (tests/golden/README.md).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from pathlib import Path
from unittest import mock

import pygit2
import pytest
from conftest import CORPUS, Project, cmem, git
from test_reading import clean_env, tty

from cmem_git import paths
from cmem_git.capture import checkpoint
from cmem_git.read import docs
from cmem_git.repo import memory
from cmem_git.repo.config import Config
from cmem_git.repo.store import Store

GOLDEN = Path(__file__).resolve().parent / "golden"
REGENERATE = os.environ.get("CMEM_GOLDEN_REGENERATE") == "1"  # read before conftest clears it
SPOTTER = CORPUS / "spotter"
START = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
STEP = dt.timedelta(minutes=10)
DEVICE = "golden"
EARLIER = "0a1b2c3d-0000-4000-8000-000000000001"
COMPACTED = "4d5611e5-241a-462a-8d15-5122611a9569"
TOOLS = "5e6f7a8b-0000-4000-8000-000000000002"
TASKS = "9c8d7e6f-0000-4000-8000-000000000003"
SPILLED = "toolu_01FZ9TWbiy1LPzHm1AAyUazo"  # a Bash call in tool_heavy.jsonl
AGE = re.compile(rb"\d+ (?:s|min|h|d) ago")


def build_log() -> bytes:
    """3,000 lines of server log: the kind of output Claude Code spills to a text file."""
    return b"".join(f"[info] {i:04d} GET /sessions/{i % 7} 200 in {i % 13}ms\n".encode()
                    for i in range(3000))


class Clock:
    """Hands out the fixed times of the history, one per commit."""

    def __init__(self) -> None:
        self.ticks = 0

    def now(self) -> dt.datetime:
        self.ticks += 1
        return START + self.ticks * STEP


def _take(store: Store, folder: Path, event: str, session: str, source: Path,
          size: int | None = None, detail: tuple[str, str] | None = None) -> None:
    transcript = folder / f"{session}.jsonl"
    data = source.read_bytes()
    transcript.write_bytes(data if size is None else data[:size])
    edit = None
    if event == "session-end":
        when = checkpoint.now()
        edit = lambda text: memory.record_exit(text, when, session, "prompt_input_exit")  # noqa: E731
    result = checkpoint.take(store, checkpoint.Request(event, session, transcript, DEVICE,
                                                       detail, edit))
    assert result.commit is not None and not result.problems, result.problems


def _history(project: Project) -> None:
    store = Store.open(project.memory)
    store.filter = checkpoint.redaction(Config())
    folder = project.transcripts
    _take(store, folder, "session-end", EARLIER, SPOTTER / "short.jsonl",
          detail=("Reason", "prompt_input_exit"))
    document = (b"# Terminal embedding\n\n## Summary\n\nSpotter's terminal pane renders "
                b"transcripts.\n\n## Next Steps\n\n- fix scrolling in the xterm pane\n")
    request = checkpoint.Request("document", None, None, DEVICE)
    docs.save(store, project.root, document, None, request, checkpoint.now())
    excerpt = SPOTTER / f"{COMPACTED}.EXCERPT-compact.jsonl"
    first = excerpt.read_bytes()
    _take(store, folder, "pre-compact", COMPACTED, excerpt,
          size=sum(len(x) for x in first.splitlines(keepends=True)[:12]),
          detail=("Trigger", "auto"))
    shutil.copytree(SPOTTER / COMPACTED / "subagents", folder / COMPACTED / "subagents")
    _take(store, folder, "session-end", COMPACTED, excerpt, detail=("Reason", "clear"))
    spill = folder / TOOLS / "tool-results"
    spill.mkdir(parents=True)
    (spill / f"{SPILLED}.txt").write_bytes(build_log())
    _take(store, folder, "stop", TOOLS, SPOTTER / "tool_heavy.jsonl")
    _take(store, folder, "pre-compact", TASKS, SPOTTER / "subagent.jsonl",
          detail=("Trigger", "manual"))


def _retime(project: Project) -> None:
    """The same commits, each made at a fixed time: then their ids are fixed too."""
    repo = pygit2.Repository(str(project.memory))
    old = list(repo.walk(repo.head.target, pygit2.GIT_SORT_TOPOLOGICAL | pygit2.GIT_SORT_REVERSE))
    parents: list[pygit2.Oid] = []
    for index, commit in enumerate(old):
        when = int((START + index * STEP).timestamp())
        who = pygit2.Signature("Golden", "golden@example.com", when, 0)
        parents = [repo.create_commit(None, who, who, commit.message, commit.tree_id, parents)]
    repo.references["refs/heads/main"].set_target(parents[0])


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Project:
    home = tmp_path_factory.mktemp("golden-home")
    (home / ".gitconfig").write_text("[user]\n\tname = Golden\n\temail = golden@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    root = tmp_path_factory.mktemp("golden") / "spotter"
    root.mkdir()
    env = clean_env(home)
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    done = cmem("init", "--device", DEVICE, cwd=root, env=env)
    assert done.returncode == 0, done.stderr.decode()
    project = Project(root, home)
    clock = Clock()
    with mock.patch.dict(os.environ, {"HOME": str(home)}), \
            mock.patch.object(checkpoint, "now", clock.now), \
            mock.patch.object(paths, "transcripts_dir", lambda _: project.transcripts):
        _history(project)
    _retime(project)
    assert git(project.memory, "status", "--porcelain") == ""
    return project


CASES = {
    "resume": ["resume"],
    "resume-cut": ["resume", "--max-chars", "3000"],
    "delta": ["delta"],
    "delta-cut": ["delta", "--max-chars", "2500"],
    "log": ["log"],
    "log-range-path": ["log", "--oneline", "HEAD~4..HEAD", "--", "active-context.md"],
    "show-compaction": ["show", "HEAD~2"],
    "show-attachment": ["show", "HEAD~1"],
    "show-subagent-session": ["show", "HEAD"],
}


def _compare(name: str, output: bytes) -> None:
    path = GOLDEN / name
    if REGENERATE:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(output)
    assert path.is_file(), f"no golden file {path}: regenerate (see this module's docstring)"
    expected = path.read_bytes()
    if output != expected:
        pairs = zip(output.splitlines(), expected.splitlines())
        first = next((i for i, (a, b) in enumerate(pairs) if a != b), None)
        where = f"line {first + 1}" if first is not None else "length"
        pytest.fail(f"{name} differs from {path} at {where}; if the change is intended, "
                    "regenerate: CMEM_GOLDEN_REGENERATE=1 pytest tests/test_golden.py")


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_a_pipe(history: Project, case: str) -> None:
    done = cmem(*CASES[case], cwd=history.root, env=clean_env(history.home))
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    _compare(f"{case}.pipe.txt", done.stdout)


@pytest.mark.parametrize("case", sorted(CASES))
def test_on_a_terminal(history: Project, case: str) -> None:
    code, out = tty(history, CASES[case], rows=1000)
    assert code == 0
    _compare(f"{case}.tty.txt", AGE.sub(b"<age> ago", out))
