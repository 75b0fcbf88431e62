"""The read side (issue 3): log, show, cat, diff, delta, status and revisions.

The history these tests read is built the way users get it: the hook commands `cmem init` wrote
into settings.json, run as Claude Code runs them (conftest.run_hook), over ../shared/corpus
transcripts grown in steps: the compaction EXCERPT cut mid-line, its subagent files appearing
beside it, a /clear into a second session and a third session whose file has no final newline.
What each command prints is checked against the corpus bytes, never against cmem's own reading.

The delta property test calls the core in process (checkpoint.take) so that hypothesis can try
many growth patterns quickly; the same property is then checked through the CLI on the history
the real hooks built.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import CORPUS, PYTHON, Project, cmem, git, payload, run_hook
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cmem_git.capture import checkpoint
from cmem_git.git import chunks
from cmem_git.read import delta, reading
from cmem_git.repo.store import Store

SPOTTER = CORPUS / "spotter"
SESSION_A = "4d5611e5-241a-462a-8d15-5122611a9569"  # the compaction excerpt and its subagents
SESSION_B = "7f3e2a10-5b6c-4d8e-9f01-23456789abcd"  # after /clear
SESSION_C = "c0ffee00-1111-4222-8333-444455556666"  # an old-format file, no final newline
EXCERPT = (SPOTTER / f"{SESSION_A}.EXCERPT-compact.jsonl").read_bytes()
AGENT = (SPOTTER / SESSION_A / "subagents" / "agent-a2898e3.jsonl").read_bytes()
COMPACT_AGENT = (SPOTTER / SESSION_A / "subagents" / "agent-acompact-e1f845.jsonl").read_bytes()
SHORT = (SPOTTER / "short.jsonl").read_bytes()
OLD_FORMAT = (CORPUS / "claude-code-log" / "representative_messages.jsonl").read_bytes()
ANSI = re.compile(rb"\x1b\[[0-9;]*m")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


# ---------------------------------------------------------------- lines of a growing transcript


def split_lines(data: bytes) -> list[bytes]:
    """A JSONL file's records; a last line without a newline is a record too."""
    parts = data.split(b"\n")
    return parts[:-1] if parts[-1] == b"" else parts


def line_start(data: bytes, index: int) -> int:
    """Byte offset where line `index` of `data` begins."""
    offset = 0
    for _ in range(index):
        offset = data.index(b"\n", offset) + 1
    return offset


def stored_end(data: bytes, cut: int) -> int:
    """How much of `data[:cut]` a backup holds: whole lines, plus a last line cut just before its
    newline (it is already a complete record; the backup's documented rule)."""
    start = data.rfind(b"\n", 0, cut) + 1
    complete = cut > start and (cut == len(data) or data[cut:cut + 1] == b"\n")
    return cut if complete else start


def appended(old: bytes, new: bytes) -> list[bytes]:
    """The records in `new` that `old` (a prefix of it) did not hold yet."""
    assert new.startswith(old)
    return split_lines(new)[len(split_lines(old)):]


def stored_path(session: str, name: str = "main.jsonl") -> str:
    return f"transcripts/{session}/{name}"


# ---------------------------------------------------------------- a history built by real hooks


@dataclass
class Step:
    """One hook run: the event, its session, and how far each of the session's files has grown
    (file name relative to the session -> (corpus bytes, cut))."""

    event: str
    session: str
    files: dict[str, tuple[bytes, int]]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Built:
    project: Project
    commits: list[str]  # oldest first: init, then one per step
    stored: list[dict[str, bytes]]  # what each commit holds, per stored transcript path
    events: list[str]


def _steps() -> list[Step]:
    agent_half = len(AGENT) // 2  # lands mid-line
    return [
        # a long session, backed up by Stop mid-line
        Step("Stop", SESSION_A, {"main": (EXCERPT, line_start(EXCERPT, 10) + 100)}),
        # up to the compaction: the boundary line is half written, the compaction agent started
        Step("PreCompact", SESSION_A, {
            "main": (EXCERPT, line_start(EXCERPT, 21) + 200),
            "subagents/agent-acompact-e1f845.jsonl":
                (COMPACT_AGENT, line_start(COMPACT_AGENT, 3) + 50)}),
        # after the compaction, a Task subagent half way
        Step("Stop", SESSION_A, {
            "main": (EXCERPT, line_start(EXCERPT, 31)),
            "subagents/agent-acompact-e1f845.jsonl": (COMPACT_AGENT, len(COMPACT_AGENT)),
            "subagents/agent-a2898e3.jsonl": (AGENT, agent_half)}),
        # /clear ends session A ...
        Step("SessionEnd", SESSION_A, {
            "main": (EXCERPT, len(EXCERPT)),
            "subagents/agent-acompact-e1f845.jsonl": (COMPACT_AGENT, len(COMPACT_AGENT)),
            "subagents/agent-a2898e3.jsonl": (AGENT, len(AGENT))}, {"reason": "clear"}),
        # ... and starts session B, whose first lines SessionStart backs up
        Step("SessionStart", SESSION_B, {"main": (SHORT, line_start(SHORT, 6) + 7)},
             {"source": "clear"}),
        Step("Stop", SESSION_B, {"main": (SHORT, len(SHORT))}),
        # session B exits: only active-context.md changes (the exit line)
        Step("SessionEnd", SESSION_B, {"main": (SHORT, len(SHORT))}),
        # a third session, a file that ends without a newline
        Step("PreCompact", SESSION_C, {"main": (OLD_FORMAT, len(OLD_FORMAT))}),
    ]


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_", "CLAUDE_", "CMEM_")) and k not in ("NO_COLOR", "PAGER")}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    return env


def write_session(project: Project, session: str, files: dict[str, tuple[bytes, int]]) -> Path:
    main = project.transcripts / f"{session}.jsonl"
    for name, (data, cut) in files.items():
        target = main if name == "main" else project.transcripts / session / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[:cut])
    return main


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """One history for the read-only tests (built once: each hook is a real process)."""
    home = tmp_path_factory.mktemp("built-home")
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    root = tmp_path_factory.mktemp("built") / "my project"
    root.mkdir()
    env = clean_env(home)
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    done = cmem("init", cwd=root, env=env)
    assert done.returncode == 0, done.stderr.decode()
    project = Project(root, home)
    config = project.memory / "cmem.yaml"
    text = config.read_text()
    assert "stop_throttle_minutes: 10" in text
    config.write_text(text.replace("stop_throttle_minutes: 10", "stop_throttle_minutes: 0"))

    commits = [git(project.memory, "rev-parse", "HEAD").strip()]
    stored: list[dict[str, bytes]] = [{}]
    events = ["init"]
    for step in _steps():
        main = write_session(project, step.session, step.files)
        data = payload(step.event, step.session, main, root, **step.extra)
        done = run_hook(project, step.event, data)
        assert done.returncode == 0 and done.stderr == b"", done.stderr
        if step.event != "SessionStart":
            assert done.stdout == b"", done.stdout
        head = git(project.memory, "rev-parse", "HEAD").strip()
        assert head != commits[-1], f"{step.event} for {step.session} made no commit"
        commits.append(head)
        now = dict(stored[-1])
        for name, (source, cut) in step.files.items():
            path = stored_path(step.session, "main.jsonl" if name == "main" else name)
            now[path] = source[:stored_end(source, cut)]
        stored.append(now)
        events.append(step.event)
    assert project.git("status", "--porcelain") == ""
    # The hooks ran within a second or two, so several commits share a commit time. Each test
    # below reads the history in one order only if the commits are a second apart;
    # test_history_order_when_commits_share_a_second covers the shared seconds on their own.
    start = int(time.time()) - len(commits)
    commits = retime(project, [start + index for index in range(len(commits))])
    return Built(project, commits, stored, events)


def retime(project: Project, times: list[int]) -> list[str]:
    """Rewrite the branch with the same trees, messages and order, commit i (oldest first) made
    at times[i]; returns the new ids, oldest first."""
    repo = pygit2.Repository(str(project.memory))
    old = list(repo.walk(repo.head.target, pygit2.GIT_SORT_TOPOLOGICAL | pygit2.GIT_SORT_REVERSE))
    assert len(old) == len(times)
    parents: list[pygit2.Oid] = []
    made = []
    for commit, when in zip(old, times):
        who = pygit2.Signature(commit.author.name, commit.author.email, when, 0)
        oid = repo.create_commit(None, who, who, commit.message, commit.tree_id, parents)
        parents = [oid]
        made.append(str(oid))
    repo.references["refs/heads/main"].set_target(parents[0])
    assert project.git("status", "--porcelain") == ""
    return made


def copy_of(built: Built, tmp_path: Path, home: Path) -> Project:
    """A private copy of the built project, for tests that change it."""
    root = tmp_path / "copy" / "my project"
    shutil.copytree(built.project.root, root, symlinks=True)
    return Project(root, home)


def run(project: Project, *args: str, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[bytes]:
    return cmem(*args, cwd=project.root, env=env)


def ok(project: Project, *args: str) -> bytes:
    done = run(project, *args)
    assert done.returncode == 0, (args, done.stderr.decode())
    return done.stdout


def log_json(project: Project, *args: str) -> list[dict[str, Any]]:
    out = ok(project, "log", "--json", *args).decode()
    return [json.loads(line) for line in out.splitlines()]


# ---------------------------------------------------------------- delta: a property


MAIN_FILE = "main.jsonl"
SUB_FILE = "subagents/agent-a2898e3.jsonl"
SOURCES = {MAIN_FILE: EXCERPT, SUB_FILE: AGENT}


def cut_points(data: bytes) -> st.SearchStrategy[int]:
    """Anywhere, with extra weight where growth is tricky: line starts, just before a newline
    (a complete record without its newline) and just after it."""
    newlines = [i for i, byte in enumerate(data) if byte == 0x0A]
    return st.one_of(st.integers(0, len(data)), st.sampled_from(newlines),
                     st.sampled_from([i + 1 for i in newlines]))


growth = st.lists(st.fixed_dictionaries({MAIN_FILE: cut_points(EXCERPT),
                                         SUB_FILE: cut_points(AGENT)}),
                  min_size=1, max_size=6)


def _take(store: Store, folder: Path, cuts: dict[str, int], chunk_size: int = chunks.CHUNK_SIZE
          ) -> pygit2.Oid | None:
    main = folder / f"{SESSION_A}.jsonl"
    sub = folder / SESSION_A / SUB_FILE
    sub.parent.mkdir(parents=True, exist_ok=True)
    main.write_bytes(EXCERPT[:cuts[MAIN_FILE]])
    sub.write_bytes(AGENT[:cuts[SUB_FILE]])
    request = checkpoint.Request("stop", SESSION_A, main, "prop", chunk_size=chunk_size)
    return checkpoint.take(store, request).commit


def grow(folder: Path, steps: list[dict[str, int]], chunk_size: int
         ) -> tuple[Store, list[pygit2.Commit], list[dict[str, bytes]]]:
    """Back up after each growth step; (store, commits, what each commit should hold)."""
    store = Store.init(folder / "memory")
    commits: list[pygit2.Commit] = []
    expected: list[dict[str, bytes]] = []
    cuts = {name: 0 for name in SOURCES}
    for step in steps:
        cuts = {name: max(cuts[name], step[name]) for name in SOURCES}  # files only grow
        holds = {name: data[:stored_end(data, cuts[name])] for name, data in SOURCES.items()}
        oid = _take(store, folder, cuts, chunk_size)
        if oid is None:  # nothing new: then nothing may have been due
            assert holds == (expected[-1] if expected else {n: b"" for n in SOURCES})
            continue
        commit = store.repo[oid]
        assert isinstance(commit, pygit2.Commit)
        commits.append(commit)
        expected.append(holds)
    return store, commits, expected


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          database=None)
@given(steps=growth, chunk_size=st.sampled_from([512, 4096, chunks.CHUNK_SIZE]))
# the smallest growth that shows a record ending exactly where one backup stopped
@example(steps=[{MAIN_FILE: EXCERPT.index(b"\n"), SUB_FILE: 0},
                {MAIN_FILE: line_start(EXCERPT, 3), SUB_FILE: 0}],
         chunk_size=chunks.CHUNK_SIZE)
def test_delta_between_any_two_commits_is_exactly_the_lines_appended(
        steps: list[dict[str, int]], chunk_size: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cmem-delta-") as folder:
        check_growth(Path(folder), steps, chunk_size)


def check_growth(folder: Path, steps: list[dict[str, int]], chunk_size: int) -> None:
    store, commits, expected = grow(folder, steps, chunk_size)
    olds: list[pygit2.Commit | None] = [None, *commits]
    holds: list[dict[str, bytes]] = [{n: b"" for n in SOURCES}, *expected]
    for i, old in enumerate(olds):
        for j in range(i + 1, len(olds)):
            new = olds[j]
            assert new is not None
            found = {d.file: d for d in delta.between(store.repo, old, new)}
            for name in SOURCES:
                want = appended(holds[i][name], holds[j][name])
                got = found[name].records if name in found else []
                assert got == want, (name, i, j, len(got), len(want))
                if name in found:  # the added bytes, where the newer version has them
                    item = found[name]
                    assert not item.rewritten
                    assert item.start >= len(holds[i][name])
                    assert holds[j][name][item.start:] == item.data
            # and each commit gives the file back byte for byte, whatever the chunk size
            for name in SOURCES:
                path = stored_path(SESSION_A, name)
                data = reading.file_at(store, new, path) if holds[j][name] else b""
                assert data == holds[j][name]


def test_delta_after_a_record_stored_without_its_newline(tmp_path: Path) -> None:
    """A backup may end with a complete record whose newline was not written yet (the backup
    takes it). When the newline and the next record arrive, the delta is that next record only:
    no empty record in front of it, and `--jsonl` prints no blank line."""
    store = Store.init(tmp_path / "memory")
    transcript = tmp_path / "s.jsonl"
    first, second = b'{"type":"user","n":1}', b'{"type":"user","n":2}'
    transcript.write_bytes(first)
    old = checkpoint.take(store, checkpoint.Request("stop", "s", transcript, "d")).commit
    transcript.write_bytes(first + b"\n" + second + b"\n")
    new = checkpoint.take(store, checkpoint.Request("stop", "s", transcript, "d")).commit
    assert old is not None and new is not None
    found = delta.between(store.repo, store.repo[old], store.repo[new])
    assert [d.records for d in found] == [[second]]


# ---------------------------------------------------------------- delta on the hook-built history


def test_history_holds_each_step_byte_for_byte(built: Built) -> None:
    store = Store.open(built.project.memory)
    for commit, holds in zip(built.commits, built.stored):
        for path, data in holds.items():
            session, name = path.split("/", 2)[1:]
            found = reading.session_file(store, store.repo[commit], session[:8], name)
            assert found == data, (commit[:8], path)
    # and through the CLI, as of the commit whose files were cut mid-line
    commit = built.commits[3]
    for path, data in built.stored[3].items():
        session, name = path.split("/", 2)[1:]
        assert ok(built.project, "cat", session[:8], "--file", name, "--at", commit) == data
        assert ok(built.project, "show", f"{commit}:{path}") == data


def test_cat_gives_back_claude_codes_files(built: Built) -> None:
    p = built.project
    assert ok(p, "cat", SESSION_A) == EXCERPT
    assert ok(p, "cat", SESSION_A[:6], "--file", "subagents/agent-a2898e3.jsonl") == AGENT
    assert ok(p, "cat", SESSION_A[:6], "--file",
              "subagents/agent-acompact-e1f845.jsonl") == COMPACT_AGENT
    assert ok(p, "cat", SESSION_B[:4]) == SHORT
    assert ok(p, "cat", SESSION_C) == OLD_FORMAT  # no final newline added
    # as of an older commit: the half-grown file, whole lines only
    step2 = built.commits[2]
    assert ok(p, "cat", SESSION_A, "--at", step2) == built.stored[2][stored_path(SESSION_A)]
    assert ok(p, "cat", SESSION_A, "--at", step2).endswith(b"\n")


def test_cat_errors(built: Built) -> None:
    done = run(built.project, "cat", "ffffffff")
    assert done.returncode == 2 and b"no session matches" in done.stderr
    assert b"hint:" in done.stderr
    done = run(built.project, "cat", SESSION_A, "--file", "subagents/agent-nope.jsonl")
    assert done.returncode == 1 and done.stdout == b""
    assert b"does not exist" in done.stderr


def expected_delta(built: Built, i: int, j: int) -> list[tuple[str, list[bytes]]]:
    """(stored path, records) appended from commit i to commit j, in the order cmem gives them:
    sessions by first commit after i, main transcript first, then subagents by name."""
    order: list[str] = []
    for k in range(i + 1, j + 1):
        session = _session_of(built, k)
        if session and session not in order:
            order.append(session)
    found = [(path, appended(built.stored[i].get(path, b""), data))
             for path, data in built.stored[j].items()]
    return sorted([(path, records) for path, records in found if records],
                  key=lambda item: (order.index(item[0].split("/")[1]),
                                    not item[0].endswith("/main.jsonl"), item[0]))


def _session_of(built: Built, k: int) -> str | None:
    if k == 0:
        return None
    return _steps()[k - 1].session


def test_delta_jsonl_since_every_commit(built: Built) -> None:
    last = len(built.commits) - 1
    for i, commit in enumerate(built.commits):
        out = ok(built.project, "delta", "--since", commit, "--jsonl")
        want = b"".join(r + b"\n" for _, records in expected_delta(built, i, last)
                        for r in records)
        assert out == want, f"delta --since {commit[:8]} (commit {i})"


def test_diff_json_between_any_two_commits(built: Built) -> None:
    """In process for every pair (the same code the CLI runs), through the CLI for a few."""
    store = Store.open(built.project.memory)
    for i in range(len(built.commits)):
        for j in range(i + 1, len(built.commits)):
            found = reading.changes_json(reading.changes(store, built.commits[i],
                                                         built.commits[j]))
            got = [(f"transcripts/{t['session']}/{t['file']}",
                    [line.encode() for line in t["lines"]]) for t in found["transcripts"]]
            assert got == expected_delta(built, i, j), (i, j)
            assert not any(t["rewritten"] for t in found["transcripts"])
    for i, j in ((0, 8), (2, 3), (3, 6)):
        found = json.loads(ok(built.project, "diff", "--json", built.commits[i],
                              built.commits[j]))
        got = [(f"transcripts/{t['session']}/{t['file']}",
                [line.encode() for line in t["lines"]]) for t in found["transcripts"]]
        assert got == expected_delta(built, i, j)
        assert [t["records"] for t in found["transcripts"]] == \
            [len(r) for _, r in expected_delta(built, i, j)]


def test_delta_across_compaction_includes_records_after_the_boundary(built: Built) -> None:
    before, after = built.commits[2], built.commits[4]  # PreCompact, then the session's end
    out = ok(built.project, "delta", "--since", before, "--jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    kinds = [(r.get("type"), r.get("subtype"), r.get("isCompactSummary")) for r in records]
    boundary = kinds.index(("system", "compact_boundary", None))
    assert kinds[boundary + 1] == ("user", None, True)
    # everything after the boundary of the main transcript, though its timestamps go back
    main_tail = split_lines(EXCERPT)[21:]
    assert out.splitlines()[boundary:boundary + len(main_tail)] == main_tail
    # the rendered delta marks the compaction and does not print the summary in full
    text = ok(built.project, "delta", "--since", before, "--max-chars", "0").decode()
    assert "──── compaction (auto) ────" in text
    assert "[compaction summary for the next context]" in text
    between = ok(built.project, "diff", before, after).decode()
    assert "──── compaction (auto) ────" in between


def test_delta_across_clear_gives_every_session_since(built: Built) -> None:
    since = built.commits[3]  # session A not ended yet, B and C not started
    text = ok(built.project, "delta", "--since", since, "--max-chars", "0").decode()
    heads = re.findall(r"^## Session (\S+): (\d+) records added", text, re.MULTILINE)
    main = len(split_lines(EXCERPT)) - 31
    agent = len(appended(built.stored[3][stored_path(SESSION_A, SUB_FILE)], AGENT))
    assert heads == [(SESSION_A, str(main + agent)), (SESSION_B, str(len(split_lines(SHORT)))),
                     (SESSION_C, str(len(split_lines(OLD_FORMAT))))]
    # the subagent in one line; prompts and tool calls rendered
    assert re.search(rf"^- subagent agent-a2898e3 \(\+{agent} records, \d+ tool calls\); "
                     "answered: ", text, re.MULTILINE)
    assert "**User:**" in text and "→ " in text


def test_delta_for_subagents(built: Built) -> None:
    i, j = 2, 3  # the Task subagent appears, the compaction agent finishes
    out = ok(built.project, "diff", "--raw", built.commits[i], built.commits[j]).decode()
    assert "=== session 4d5611e5-241a-462a-8d15-5122611a9569 subagents/agent-a2898e3.jsonl" in out
    stat = ok(built.project, "diff", "--stat", built.commits[i], built.commits[j]).decode()
    half = built.stored[3][stored_path(SESSION_A, SUB_FILE)]
    assert f"{SESSION_A} subagents/agent-a2898e3.jsonl: +{len(split_lines(half))} records" \
        in stat
    compact_rest = appended(built.stored[2][stored_path(SESSION_A,
                                                        "subagents/agent-acompact-e1f845.jsonl")],
                            COMPACT_AGENT)
    assert f"subagents/agent-acompact-e1f845.jsonl: +{len(compact_rest)} records" in stat
    for record in split_lines(half):
        assert json.loads(record)["isSidechain"] is True


def test_delta_markdown_is_bounded_and_says_what_it_left_out(built: Built) -> None:
    text = ok(built.project, "delta", "--max-chars", "4000").decode()
    assert len(text) <= 4000
    assert re.search(r"^… left out to fit 4,000 characters: [^;]*\d+ (earlier messages?|tool "
                     r"calls?); `cmem delta --max-chars 0` shows everything\.$", text,
                     re.MULTILINE)
    everything = ok(built.project, "delta", "--max-chars", "0").decode()
    assert len(everything) > 4000 and "left out" not in everything
    # newest kept: the last session's last record
    assert everything.rstrip().endswith(text.rstrip()[-200:])


def test_delta_default_is_since_the_last_session_document(built: Built, tmp_path: Path,
                                                         hermetic: Path) -> None:
    project = copy_of(built, tmp_path, hermetic)
    # no document yet: everything from the beginning
    assert ok(project, "delta", "--jsonl") == ok(project, "delta", "--since", built.commits[0],
                                                 "--jsonl")
    document_commit(project, "auth refactor")
    assert ok(project, "delta", "--jsonl") == b""
    assert ok(project, "delta").decode() == "Nothing added.\n"
    grown = SHORT + b'{"type":"user","message":{"role":"user","content":"after the doc"}}\n'
    transcript = project.transcripts / f"{SESSION_B}.jsonl"
    transcript.write_bytes(grown)
    done = run_hook(project, "PreCompact", payload("PreCompact", SESSION_B, transcript,
                                                   project.root))
    assert done.returncode == 0, done.stderr
    assert ok(project, "delta", "--jsonl") == split_lines(grown)[-1] + b"\n"
    assert "**User:** after the doc" in ok(project, "delta").decode()


def document_commit(project: Project, title: str) -> str:
    """A session-document commit as the document writer makes it: the file and trailers."""
    sessions = project.memory / "sessions"
    sessions.mkdir(exist_ok=True)
    name = f"session-20261121T120000Z-{title.replace(' ', '-')}.md"
    (sessions / name).write_text(f"# {title}\n\nWhat happened.\n")
    project.git("add", f"sessions/{name}")
    project.git("commit", "-q", "-m", f"document: {title}", "-m",
                f"Cmem-Event: document\nCmem-Title: {title}\nCmem-Device: vm")
    return project.git("rev-parse", "HEAD").strip()


# ---------------------------------------------------------------- log


def test_log_lists_every_commit_newest_first(built: Built) -> None:
    entries = log_json(built.project)
    assert [e["commit"] for e in entries] == built.commits[::-1]
    assert git(built.project.memory, "rev-list", "HEAD").split() == built.commits[::-1]
    wanted = ["pre-compact", "session-end", "stop", "session-start", "session-end", "stop",
              "pre-compact", "stop", "init"]
    assert [e["event"] for e in entries] == wanted
    newest = entries[0]
    assert newest["session"] == SESSION_C
    assert newest["trailers"]["Cmem-Event"] == "pre-compact"
    assert newest["trailers"]["Cmem-Trigger"] == "auto"
    assert newest["trailers"]["Cmem-Transcript-Bytes"] == str(len(OLD_FORMAT))
    assert newest["trailers"]["Cmem-Added-Bytes"] == str(len(OLD_FORMAT))
    assert entries[4]["trailers"]["Cmem-Reason"] == "clear"
    assert all(e["trailers"]["Cmem-Device"] for e in entries)


def test_log_text_in_a_pipe(built: Built) -> None:
    out = ok(built.project, "log").decode()
    lines = out.splitlines()
    assert len(lines) == len(built.commits)
    first = lines[0].split()
    assert first[0] == built.commits[-1][:8]
    assert ISO.fullmatch(first[1])  # exact times for scripts, not "5 s ago"
    assert first[2:4] == ["pre-compact", SESSION_C[:8]]
    assert "records, +7.7 KiB" in lines[0]
    assert f"+{len(split_lines(SHORT)) - 6} records, +6.3 KiB" in lines[2]
    assert "active-context.md" in lines[1]  # session B's exit: only the memory file changed


def test_log_options(built: Built) -> None:
    p = built.project
    assert len(ok(p, "log", "-n", "3").splitlines()) == 3
    assert [e["commit"] for e in log_json(p, "-n", "2")] == built.commits[:-3:-1]
    by_session = log_json(p, "--session", SESSION_A[:5])
    assert [e["commit"] for e in by_session] == built.commits[4:0:-1]
    assert {e["session"] for e in by_session} == {SESSION_A}
    assert [e["commit"] for e in log_json(p, "--session", "7f3e", "-n", "1")] == \
        [built.commits[7]]
    assert [e["event"] for e in log_json(p, "--event", "pre-compact")] == ["pre-compact"] * 2
    for wrong in (["--event", "no-such-event"], ["--session", "zzzz"]):
        done = run(p, "log", *wrong)
        assert done.returncode == 2 and done.stdout == b"", wrong
        assert b"cmem: error: " in done.stderr and b"hint: " in done.stderr, wrong
    added = {path: appended(built.stored[3].get(path, b""), data)
             for path, data in built.stored[4].items()}
    size = sum(len(data) - len(built.stored[3].get(path, b""))
               for path, data in built.stored[4].items())
    oneline = ok(p, "log", "--oneline", "--event", "session-end").decode().splitlines()
    assert oneline == [f"{built.commits[7][:8]} session-end {SESSION_B[:8]} active-context.md",
                       f"{built.commits[4][:8]} session-end {SESSION_A[:8]} "
                       f"+{sum(map(len, added.values()))} records, +{size / 1024:.1f} KiB, "
                       "active-context.md"]


def test_log_and_diff_count_the_same_records(built: Built) -> None:
    """The old-format file ends without a newline: its last record is stored (it is complete),
    so it counts as a record in `cmem log` as it does in `cmem diff --stat`."""
    records = len(split_lines(OLD_FORMAT))
    stat = ok(built.project, "diff", "--stat", "HEAD~1", "HEAD").decode()
    assert stat.startswith(f"{SESSION_C} main.jsonl: +{records} records")
    assert f"+{records} records" in ok(built.project, "log", "-n", "1").decode()


@pytest.fixture
def spread(built: Built, tmp_path: Path, hermetic: Path) -> tuple[Project, list[str], float]:
    """A copy of the history whose commits are spread over time: the newest 30 minutes old,
    each older one an hour before the next. Returns (project, commits oldest first, now)."""
    project = copy_of(built, tmp_path, hermetic)
    now = time.time()
    count = len(built.commits)
    made = retime(project, [int(now - 1800 - 3600 * (count - 1 - i)) for i in range(count)])
    return project, made, now


def test_history_order_when_commits_share_a_second(built: Built, tmp_path: Path,
                                                   hermetic: Path) -> None:
    """Hooks commit many times a second (SessionEnd then SessionStart on /clear). Newest first
    must still mean child before parent, for log, `session:`, status and the delta's order."""
    project = copy_of(built, tmp_path, hermetic)
    same = int(time.time()) - 60
    commits = retime(project, [same] * len(built.commits))
    status = json.loads(ok(project, "status", "--json"))
    found = {
        "log": [e["commit"][:8] for e in log_json(project)],
        "session:": json.loads(ok(project, "diff", "--json", f"session:{SESSION_A[:8]}"))["old"],
        "last stop": status["last_by_event"]["stop"]["commit"][:8],
        "delta in order": ok(project, "delta", "--since", commits[3], "--jsonl") == b"".join(
            r + b"\n" for _, records in expected_delta(built, 3, 8) for r in records),
    }
    assert found == {
        "log": [c[:8] for c in commits[::-1]],
        "session:": commits[4][:8],
        "last stop": commits[6][:8],
        "delta in order": True,
    }


def test_log_since_and_until(spread: tuple[Project, list[str], float]) -> None:
    project, commits, now = spread
    newest_first = commits[::-1]
    assert [e["commit"] for e in log_json(project, "--since", "2 hours ago")] == \
        newest_first[:2]
    assert [e["commit"] for e in log_json(project, "--until", "2 hours ago")] == \
        newest_first[2:]
    assert [e["commit"] for e in log_json(project, "--since", "200 minutes ago",
                                          "--until", "1 hour ago")] == newest_first[1:3]
    iso = dt.datetime.fromtimestamp(now - 3 * 3600, dt.timezone.utc)
    assert [e["commit"] for e in log_json(project, "--since", iso.isoformat())] == \
        newest_first[:3]
    assert [e["commit"] for e in log_json(
        project, "--until", iso.strftime("%Y-%m-%dT%H:%M:%S+00:00"))] == newest_first[3:]
    assert log_json(project, "--since", "yesterday")  # midnight UTC yesterday: some commits
    done = run(project, "log", "--since", "last blue moon")
    assert done.returncode == 1 and b"cannot read 'last blue moon' as a time" in done.stderr


def test_revision_at_a_time(spread: tuple[Project, list[str], float]) -> None:
    project, commits, now = spread
    assert json.loads(ok(project, "diff", "--json", "@{2 hours ago}", "HEAD"))["old"] == \
        commits[-3][:8]
    iso = dt.datetime.fromtimestamp(now - 150 * 60, dt.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(ok(project, "diff", "--json", f"@{{{iso}}}"))["old"] == commits[-3][:8]
    assert ok(project, "show", "@{3 hours ago}").startswith(f"commit {commits[-4]}".encode())
    done = run(project, "show", "@{2 years ago}")
    assert done.returncode == 1 and b"no commit at or before" in done.stderr


def test_show_at_a_time_with_a_clock_time(spread: tuple[Project, list[str], float]) -> None:
    """`@{2026-11-20 14:00}` holds a colon: it is a revision, not REV:PATH."""
    project, commits, now = spread
    # to the minute, 140 minutes ago: the newest commit at or before is the one 150 minutes old
    iso = dt.datetime.fromtimestamp(now - 140 * 60, dt.timezone.utc).strftime("%Y-%m-%d %H:%M")
    out = ok(project, "show", f"@{{{iso}}}")
    assert out.startswith(f"commit {commits[-3]}".encode())


def test_log_relative_times_on_a_terminal(spread: tuple[Project, list[str], float]) -> None:
    project, commits, _ = spread
    code, out = tty(project, ["log", "-n", "2"], rows=100)
    assert code == 0
    plain = ANSI.sub(b"", out).decode()
    assert re.search(r"30 min ago", plain) and re.search(r"2 h ago", plain)
    assert not ISO.search(plain)


def test_log_graph_draws_with_git(built: Built) -> None:
    out = ok(built.project, "log", "--graph", "-n", "3").decode()
    assert len(out.splitlines()) == 3
    assert all(line.startswith("* ") for line in out.splitlines())
    assert built.commits[-1][:7] in out and "pre-compact" in out


# ---------------------------------------------------------------- show and revisions


def test_show_a_commit(built: Built) -> None:
    out = ok(built.project, "show", built.commits[4]).decode()
    assert out.startswith(f"commit {built.commits[4]}\n")
    assert "Cmem-Event: session-end" in out and "Cmem-Reason: clear" in out
    # like git show: the records each transcript gained, then the memory file's patch
    gained = re.findall(r"^=== session (\S+) (\S+): \+(\d+) records$", out, re.MULTILINE)
    assert gained == [(SESSION_A, "main.jsonl", str(len(appended(
                          built.stored[3][stored_path(SESSION_A)], EXCERPT)))),
                      (SESSION_A, SUB_FILE, str(len(appended(
                          built.stored[3][stored_path(SESSION_A, SUB_FILE)], AGENT))))]
    assert "**Claude:**" in out and "\n+++ b/active-context.md\n" in out
    assert re.search(r"^\+> Last Session End: .* clear · session " + SESSION_A, out, re.MULTILINE)
    assert ok(built.project, "show") == ok(built.project, "show", "HEAD")


def test_show_rev_path_reassembles_transcripts(built: Built) -> None:
    p = built.project
    assert ok(p, "show", f"HEAD:{stored_path(SESSION_A)}") == EXCERPT
    assert ok(p, "show", f"HEAD~1:{stored_path(SESSION_A, SUB_FILE)}") == AGENT
    assert ok(p, "show", f"HEAD~6:{stored_path(SESSION_A)}") == \
        built.stored[2][stored_path(SESSION_A)]
    listing = ok(p, "show", f"HEAD:transcripts/{SESSION_A}").decode().split()
    assert listing == ["main.jsonl/", "subagents/"]  # the main transcript's chunk folder
    memory_file = ok(p, "show", "HEAD:active-context.md").decode()
    assert f"session {SESSION_B}" in memory_file  # the exit line of session B's end
    done = run(p, "show", "HEAD:no/such/file")
    assert done.returncode == 1 and b"does not exist" in done.stderr


def test_revisions(built: Built) -> None:
    p = built.project
    head = ok(p, "show").splitlines()[0]

    def first_line(spec: str) -> bytes:
        return ok(p, "show", spec).splitlines()[0]

    assert head == f"commit {built.commits[-1]}".encode()
    assert first_line("HEAD~1") == f"commit {built.commits[-2]}".encode()
    assert first_line("main~2") == f"commit {built.commits[-3]}".encode()
    assert first_line(built.commits[3][:10]) == f"commit {built.commits[3]}".encode()
    # a bare session prefix: that session's latest backup
    assert first_line(SESSION_A[:8]) == f"commit {built.commits[4]}".encode()
    # session:<prefix> (through diff: see test_show_session_revision), with git's suffixes
    assert json.loads(ok(p, "diff", "--json", f"session:{SESSION_B[:6]}"))["old"] == \
        built.commits[7][:8]
    assert json.loads(ok(p, "diff", "--json", f"session:{SESSION_A[:8]}~1"))["old"] == \
        built.commits[3][:8]
    assert json.loads(ok(p, "diff", "--json", "HEAD~2", "HEAD~1"))["new"] == \
        built.commits[-2][:8]


def test_show_session_revision(built: Built) -> None:
    """`session:<prefix>` is a revision of its own; its colon does not start a PATH."""
    out = ok(built.project, "show", f"session:{SESSION_A[:8]}")
    assert out.startswith(f"commit {built.commits[4]}".encode())


def test_unknown_revisions_exit_1_with_a_hint(built: Built) -> None:
    for spec in ("nosuchthing", "HEAD~40", "session:ffff", "@{tomorrow-ish}", "^^^"):
        done = run(built.project, "show", spec)
        assert done.returncode == 1, spec
        assert done.stdout == b""
        assert done.stderr.startswith(b"cmem: error: "), (spec, done.stderr)
        assert b"hint: " in done.stderr and b"Traceback" not in done.stderr
    done = run(built.project, "diff", "nosuchthing")
    assert done.returncode == 1 and b"no commit, branch or session matches 'nosuchthing'" \
        in done.stderr
    done = run(built.project, "delta", "--since", "HEAD~40")
    assert done.returncode == 1 and b"unknown revision 'HEAD~40'" in done.stderr


def test_doc_revision(built: Built, tmp_path: Path, hermetic: Path) -> None:
    done = run(built.project, "show", "doc")
    assert done.returncode == 1
    assert b"no session document yet" in done.stderr and b"hint:" in done.stderr
    project = copy_of(built, tmp_path, hermetic)
    commit = document_commit(project, "auth refactor")
    assert ok(project, "show", "doc").startswith(f"commit {commit}".encode())
    assert ok(project, "show", "doc~1").startswith(f"commit {built.commits[-1]}".encode())
    entries = log_json(project, "-n", "1")
    assert entries[0]["summary"] == "session document 'auth refactor'"
    assert "session document 'auth refactor'" in ok(project, "log", "-n", "1").decode()


def test_help_revisions_documents_the_forms(built: Built) -> None:
    out = ok(built.project, "help", "revisions").decode()
    for form in ("HEAD~3", "doc", "session:", "@{2 hours ago}"):
        assert form in out


# ---------------------------------------------------------------- diff


def test_diff_without_revisions_shows_uncommitted_memory_edits(built: Built, tmp_path: Path,
                                                                hermetic: Path) -> None:
    project = copy_of(built, tmp_path, hermetic)
    assert ok(project, "diff") == b"no changes\n"
    active = project.memory / "active-context.md"
    before = active.read_text()
    active.write_text(before.replace("## Next Steps", "## Next Steps\n- ship the read side"))
    out = ok(project, "diff").decode()
    assert out.startswith("--- a/active-context.md\n+++ b/active-context.md\n@@ ")
    assert "\n+- ship the read side\n" in out
    assert not ANSI.search(out.encode())
    assert ok(project, "diff", "--stat").decode() == "active-context.md: +1 -0 lines\n"
    found = json.loads(ok(project, "diff", "--json"))
    assert found["transcripts"] == [] and [f["path"] for f in found["files"]] == \
        ["active-context.md"]
    # the same diff as git's own view of the working file
    assert "+- ship the read side" in project.git("diff")
    # once a hook committed it, nothing is left
    transcript = project.transcripts / f"{SESSION_B}.jsonl"
    transcript.write_bytes(SHORT)
    run_hook(project, "Stop", payload("Stop", SESSION_B, transcript, project.root))
    assert ok(project, "diff") == b"no changes\n"
    assert "\n+- ship the read side" in ok(project, "diff", "HEAD~1").decode()


def test_diff_between_commits_renders_records(built: Built) -> None:
    p = built.project
    a, b = built.commits[5], built.commits[6]  # session B: first lines, then the rest
    text = ok(p, "diff", a, b).decode()
    assert text.startswith(f"=== session {SESSION_B} main.jsonl: +"
                           f"{len(appended(built.stored[5][stored_path(SESSION_B)], SHORT))}"
                           " records\n")
    assert "_(thinking)_" not in text
    thinking = ok(p, "diff", "--thinking", built.commits[0], b).decode()
    assert "_(thinking)_" in thinking
    raw = ok(p, "diff", "--raw", a, b).splitlines()[1:]
    assert raw == appended(built.stored[5][stored_path(SESSION_B)], SHORT)
    # a memory file between revisions: a unified diff
    out = ok(p, "diff", built.commits[6], built.commits[7]).decode()
    assert "--- a/active-context.md" in out and "+> Last Session End:" in out
    assert ok(p, "diff", "--stat", built.commits[6], built.commits[7]).decode() == \
        "active-context.md: +1 -1 lines\n"
    assert ok(p, "diff", "HEAD", "HEAD") == b"no changes\n"


# ---------------------------------------------------------------- status


def test_status(built: Built) -> None:
    data = json.loads(ok(built.project, "status", "--json"))
    assert data["head"] == built.commits[-1] and data["branch"] == "main"
    assert Path(data["repository"]) == built.project.memory
    assert set(data["last_by_event"]) == {"init", "stop", "pre-compact", "session-end",
                                          "session-start"}
    assert data["last_by_event"]["session-end"]["commit"] == built.commits[7]
    assert data["document"] is None
    assert len(data["since_document"]) == len(built.commits)
    assert data["remote"] is None and data["errors"] == [] and data["uncommitted"] == []
    assert 0 <= data["active_context_age_seconds"] < 600
    text = ok(built.project, "status").decode()
    assert "document   none yet" in text
    assert "since then 8 backups in 3 sessions" in text
    assert f"head       {built.commits[-1][:8]}" in text


def test_status_after_a_document_with_a_remote_and_a_hook_error(
        built: Built, tmp_path: Path, hermetic: Path) -> None:
    project = copy_of(built, tmp_path, hermetic)
    document_commit(project, "auth refactor")
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    project.git("remote", "add", "origin", str(remote))
    project.git("push", "-q", "origin", "main")
    # a later backup, and a hook that cannot back up what it was given
    transcript = project.transcripts / f"{SESSION_B}.jsonl"
    transcript.write_bytes(SHORT + SHORT.splitlines(keepends=True)[0])
    run_hook(project, "Stop", payload("Stop", SESSION_B, transcript, project.root))
    missing = project.transcripts / "not-there.jsonl"
    done = run_hook(project, "PreCompact", payload("PreCompact", SESSION_B, missing,
                                                   project.root))
    assert b"systemMessage" in done.stdout
    data = json.loads(ok(project, "status", "--json"))
    assert data["document"]["subject"] == "document: auth refactor"
    assert [e["event"] for e in data["since_document"]] == ["stop"]
    assert data["remote"] == {"name": "origin", "url": str(remote), "ahead": 1, "behind": 0}
    assert len(data["errors"]) == 1 and "does not exist" in data["errors"][0]["message"]
    text = ok(project, "status").decode()
    assert "document   document: auth refactor" in text
    assert "since then 1 backup in 1 session\n" in text
    assert f"remote     origin {remote} ahead 1 behind 0" in text
    assert "hook error pre-compact:" in text


# ---------------------------------------------------------------- a terminal and a pipe


def tty(project: Project, args: list[str], rows: int = 100, env: dict[str, str] | None = None
        ) -> tuple[int, bytes]:
    """Run cmem with stdout on a pseudo-terminal of `rows` lines; (exit status, output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, 120, 0, 0))
    environ = clean_env(project.home) if env is None else env
    environ.setdefault("TERM", "xterm-256color")
    process = subprocess.Popen([str(Path(PYTHON).parent / "cmem"), *args], cwd=project.root,
                               stdin=slave, stdout=slave, stderr=subprocess.PIPE, env=environ)
    os.close(slave)
    out = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer of the terminal is gone
            break
        if not data:
            break
        out.append(data)
    process.wait(timeout=60)
    os.close(master)
    assert process.stderr is not None
    assert process.stderr.read() == b""
    return process.returncode, b"".join(out).replace(b"\r\n", b"\n")


@pytest.fixture
def pager(tmp_path: Path) -> Path:
    """A pager that says it ran, then shows its input."""
    script = tmp_path / "pager"
    script.write_text("#!/bin/sh\necho PAGER-RAN\ncat\n")
    script.chmod(0o755)
    return script


def test_colour_on_a_terminal_and_not_with_no_color(built: Built) -> None:
    code, out = tty(built.project, ["log"], rows=100)
    assert code == 0
    assert b"\x1b[33m" + built.commits[-1][:8].encode() + b"\x1b[0m" in out
    assert b"PAGER-RAN" not in out
    env = clean_env(built.project.home)
    env["NO_COLOR"] = "1"
    code, plain = tty(built.project, ["log"], rows=100, env=env)
    assert code == 0 and not ANSI.search(plain)
    assert built.commits[-1][:8].encode() in plain
    code, out = tty(built.project, ["diff", built.commits[6], built.commits[7]], rows=100)
    assert b"\x1b[32m+> Last Session End:" in out and b"\x1b[31m-> Last Session End:" in out


def test_no_colour_and_no_pager_on_a_pipe(built: Built, pager: Path) -> None:
    env = clean_env(built.project.home)
    env.update(PAGER=str(pager), TERM="xterm-256color")
    for args in (["log"], ["show"], ["diff", built.commits[0]], ["status"],
                 ["diff", built.commits[6], built.commits[7]], ["delta"]):
        done = run(built.project, *args, env=env)
        assert done.returncode == 0, args
        assert not ANSI.search(done.stdout), args
        assert b"PAGER-RAN" not in done.stdout, args
        assert done.stdout.strip(), args


def test_pager_on_a_terminal_for_long_output(built: Built, pager: Path) -> None:
    env = clean_env(built.project.home)
    env["PAGER"] = str(pager)
    code, out = tty(built.project, ["show", "HEAD~4"], rows=12, env=dict(env))
    assert code == 0
    assert out.startswith(b"PAGER-RAN\n")
    assert f"commit {built.commits[4]}".encode() in out
    code, out = tty(built.project, ["log", "-n", "2"], rows=12, env=dict(env))
    assert code == 0 and b"PAGER-RAN" not in out  # short output: no pager


# ---------------------------------------------------------------- odd records through the CLI


ODD_LINES = [
    b'{"type":"brand-new-kind","uuid":"n1"}',
    b'{"type":"user","message":{"role":"user","content":42}}',
    b'{"type":"assistant","message":{"content":[7,null,{"type":"mystery"}]}}',
    b'{"uuid":"no-type"}',
    b'[1,2,3]',
    b'"just a string"',
    b'{"type":"user","message":{"role":"user","content":"' + b"w" * 300_000 + b'"}}',
]


def test_odd_records_render_as_placeholders_in_delta_and_diff(project: Project) -> None:
    transcript = project.transcripts / "odd-session.jsonl"
    body = SHORT + b"".join(line + b"\n" for line in ODD_LINES)
    transcript.write_bytes(body)
    done = run_hook(project, "PreCompact", payload("PreCompact", "odd-session", transcript,
                                                   project.root))
    assert done.returncode == 0 and done.stdout == b"", done.stdout
    assert ok(project, "cat", "odd") == body
    text = ok(project, "delta", "--max-chars", "0").decode()
    for placeholder in ("[brand-new-kind record]", "[user record without content]",
                        "[int content]", "[mystery content]", "[untyped record]",
                        "[not a record: [1, 2, 3]]", '[not a record: "just a string"]'):
        assert placeholder in text
    assert "**User:** www" in text
    assert ok(project, "diff", "HEAD~1").decode().count("[int content]") == 1
    assert ok(project, "delta", "--jsonl") == body


def test_delta_survives_a_record_whose_type_is_not_a_string(project: Project) -> None:
    """A record such as {"type": ["a"]} is unknown, not fatal: `cmem delta` and `cmem diff`
    still exit 0 and show a placeholder for it."""
    transcript = project.transcripts / "odd-type.jsonl"
    body = SHORT + b'{"type":["a","list"]}\n{"type":{"nested":1}}\n'
    transcript.write_bytes(body)
    run_hook(project, "PreCompact", payload("PreCompact", "odd-type", transcript, project.root))
    assert ok(project, "cat", "odd-type") == body
    for args in (["delta"], ["diff", "HEAD~1"]):
        done = run(project, *args)
        assert done.returncode == 0, (args, done.stderr.decode())
        assert b"record]" in done.stdout and b"Traceback" not in done.stdout
