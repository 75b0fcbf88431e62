"""Many hooks at once, hooks killed mid-way, and locks left behind: real hook processes against
real git.

Every hook here is the command cmem wrote into settings.json, run through `sh -c` with JSON on
stdin, as Claude Code runs it. Many run at the same time through small worker scripts, so the
races are the ones that happen between real processes (separate pygit2 handles, separate index
reads), not threads in one interpreter.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import CORPUS, MINIMAL_PATH, PYTHON, Project, cmem, payload, run_hook

from cmem_git.entry import detach

SHORT = CORPUS / "spotter" / "short.jsonl"


# ---------------------------------------------------------------- helpers


def hook_env(project: Project) -> dict[str, str]:
    """The environment run_hook gives a hook: Claude Code's, not the test's. In the foreground:
    what these tests race and kill is the process that commits (Stop and SessionEnd would
    otherwise hand it to a detached child, out of the test's reach)."""
    return {"HOME": str(project.home), "PATH": MINIMAL_PATH,
            "CLAUDE_PROJECT_DIR": str(project.root), detach.FOREGROUND: "1"}


def spawn_hook(project: Project, event: str, data: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start a hook without waiting; in its own process group so SIGKILL reaches the Python
    process even when `sh` forks instead of exec'ing it."""
    process = subprocess.Popen(["sh", "-c", project.hook_command(event)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=project.home, env=hook_env(project), start_new_session=True)
    assert process.stdin is not None
    process.stdin.write(json.dumps(data).encode())
    process.stdin.close()
    process.stdin = None  # communicate() must not flush it again
    return process


def record(tag: str, number: int, pad: int = 40) -> bytes:
    """A distinct transcript line, shaped like a Claude Code record."""
    line = {"type": "user", "uuid": f"{tag}-{number:06d}", "sessionId": tag,
            "message": {"role": "user", "content": f"{tag} line {number} " + "x" * pad}}
    return json.dumps(line).encode() + b"\n"


def stored_transcript(project: Project, session: str, commit: str = "HEAD") -> bytes | None:
    """The main transcript as stored in `commit`: its chunks concatenated in name order."""
    repo = pygit2.Repository(str(project.memory))
    tree = repo.revparse_single(commit).peel(pygit2.Tree)
    try:
        folder = tree[f"transcripts/{session}/main.jsonl"]
    except KeyError:
        return None
    assert isinstance(folder, pygit2.Tree)
    chunks = [repo[entry.id] for entry in sorted(folder, key=lambda entry: entry.name or "")]
    return b"".join(bytes(chunk.data) for chunk in chunks if isinstance(chunk, pygit2.Blob))


def whole_lines(data: bytes) -> bytes:
    return data[:data.rfind(b"\n") + 1]


def commit_count(project: Project) -> int:
    return int(project.git("rev-list", "--count", "HEAD"))


def fsck_errors(project: Project) -> str:
    """What `git fsck --strict` finds wrong; dangling objects (a killed hook's, or a commit
    that lost its compare-and-swap) are not errors."""
    fsck = subprocess.run(["git", "-C", str(project.memory), "fsck", "--strict", "--no-progress"],
                          capture_output=True, text=True)
    errors = [line for line in (fsck.stdout + fsck.stderr).splitlines()
              if line.startswith(("error", "fatal", "missing", "broken", "bad"))]
    return fsck.stdout + fsck.stderr if fsck.returncode != 0 or errors else ""


def assert_repository_sound(project: Project) -> None:
    """fsck is clean, HEAD resolves, and index and working files match HEAD."""
    assert fsck_errors(project) == ""
    project.git("rev-parse", "--verify", "HEAD^{commit}")
    assert project.git("status", "--porcelain") == ""


def leftover_locks(project: Project) -> list[str]:
    gitdir = project.memory / ".git"
    found = [p for p in gitdir.glob("*.lock")] + list((gitdir / "refs").rglob("*.lock"))
    if (gitdir / "cmem" / "writing").exists():
        found.append(gitdir / "cmem" / "writing")
    return sorted(str(p.relative_to(gitdir)) for p in found)


def first_parent_history(project: Project) -> list[str]:
    """Commit ids from the first commit to HEAD along first parents."""
    return project.git("rev-list", "--first-parent", "--reverse", "HEAD").split()


def trailers(project: Project, commit: str) -> dict[str, str]:
    repo = pygit2.Repository(str(project.memory))
    found = repo.revparse_single(commit).peel(pygit2.Commit)
    return dict(found.message_trailers)


# A worker: waits for "go" on stdin, then `count` times appends one distinct line to its
# transcript and runs a hook on it (PreCompact and SessionEnd alternating), reporting each run as
# one JSON line. Appending is one O_APPEND write of a whole line, as Claude Code writes records.
WORKER = textwrap.dedent("""\
    import json, os, subprocess, sys
    spec = json.loads(sys.argv[1])
    sys.stdin.readline()
    for number in range(spec["count"]):
        line = {"type": "user", "uuid": f"{spec['tag']}-{number:06d}", "sessionId": spec["session"],
                "message": {"role": "user", "content": f"{spec['tag']} line {number}"}}
        fd = os.open(spec["transcript"], os.O_WRONLY | os.O_APPEND)
        os.write(fd, json.dumps(line).encode() + b"\\n")
        os.close(fd)
        event = ("PreCompact", "SessionEnd")[number % 2]
        data = {"session_id": spec["session"], "transcript_path": spec["transcript"],
                "cwd": spec["cwd"], "hook_event_name": event,
                **({"trigger": "auto"} if event == "PreCompact" else {"reason": "clear"})}
        done = subprocess.run(["sh", "-c", spec["commands"][event]], capture_output=True,
                              input=json.dumps(data).encode(), cwd=spec["home"], env=spec["env"])
        print(json.dumps({"tag": spec["tag"], "n": number, "event": event, "rc": done.returncode,
                          "out": done.stdout.decode(errors="replace"),
                          "err": done.stderr.decode(errors="replace")}), flush=True)
""")


@dataclass
class Worker:
    tag: str
    session: str
    transcript: Path
    process: subprocess.Popen[str]


def start_workers(project: Project, tmp_path: Path, sessions: list[tuple[str, str, Path]],
                  count: int) -> list[Worker]:
    """One worker per (tag, session, transcript); all released at once."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    commands = {event: project.hook_command(event) for event in ("PreCompact", "SessionEnd")}
    workers = []
    for tag, session, transcript in sessions:
        spec = {"tag": tag, "session": session, "transcript": str(transcript), "count": count,
                "cwd": str(project.root), "home": str(project.home), "env": hook_env(project),
                "commands": commands}
        process = subprocess.Popen([PYTHON, str(script), json.dumps(spec)], text=True,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=hook_env(project))
        workers.append(Worker(tag, session, transcript, process))
    for worker in workers:
        assert worker.process.stdin is not None
        worker.process.stdin.write("go\n")
        worker.process.stdin.close()
        worker.process.stdin = None  # communicate() must not flush it again
    return workers


def finish_workers(workers: list[Worker], timeout: float = 240) -> list[dict[str, Any]]:
    runs = []
    try:
        for worker in workers:
            out, err = worker.process.communicate(timeout=timeout)
            assert worker.process.returncode == 0, err
            runs += [json.loads(line) for line in out.splitlines()]
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
    return runs


def assert_hooks_quiet(runs: list[dict[str, Any]]) -> None:
    """Every hook exited 0 and had nothing to report: no lock timeout, no failed swap."""
    noisy = [r for r in runs if r["rc"] != 0 or r["out"] or r["err"]]
    assert not noisy, noisy[:3]


# ---------------------------------------------------------------- 1. many sessions at once

WORKERS = 8
HOOKS_EACH = 25


@dataclass
class Crowd:
    """A repository after WORKERS processes ran HOOKS_EACH hooks each, all at the same time."""

    project: Project
    sessions: list[tuple[str, str, Path]]  # (worker tag, session id, transcript)
    runs: list[dict[str, Any]]
    before: int  # commits made by init


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crowd]:
    """One run of 200 concurrent hooks, examined by several tests. Module-scoped, so it sets
    up its own HOME and git identity the way conftest's `hermetic` does for a test."""
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("crowd-home")
        for name in list(os.environ):
            if name.startswith(("GIT_", "CLAUDE_", "CMEM_")):
                patch.delenv(name)
        patch.setenv("HOME", str(home))
        patch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
        patch.setenv("GIT_CONFIG_NOSYSTEM", "1")
        (home / ".gitconfig").write_text("[user]\n\tname = Test User\n"
                                         "\temail = test@example.com\n")
        root = tmp_path_factory.mktemp("crowd") / "my project"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        done = cmem("init", cwd=root)
        assert done.returncode == 0, done.stderr.decode()
        project = Project(root, home)
        sessions = []
        for number in range(WORKERS):
            transcript = project.transcripts / f"sess-{number}.jsonl"
            transcript.write_bytes(SHORT.read_bytes())
            sessions.append((f"w{number}", f"sess-{number}", transcript))
        before = commit_count(project)
        runs = finish_workers(start_workers(project, root.parent, sessions, HOOKS_EACH))
        yield Crowd(project, sessions, runs, before)


def test_concurrent_hooks_on_separate_sessions_lose_no_commit(crowd: Crowd) -> None:
    """Every hook appended a line nobody else had stored, so every hook must be its own commit,
    on one straight line of history, whatever order they raced in."""
    project = crowd.project
    assert len(crowd.runs) == WORKERS * HOOKS_EACH
    assert_hooks_quiet(crowd.runs)
    assert commit_count(project) == crowd.before + WORKERS * HOOKS_EACH
    assert len(first_parent_history(project)) == commit_count(project)  # no merges, no forks
    base = len(SHORT.read_bytes().splitlines())
    for tag, session, transcript in crowd.sessions:
        content = transcript.read_bytes()
        assert stored_transcript(project, session) == content
        lines = content.splitlines()
        assert len(lines) == len(set(lines)) == base + HOOKS_EACH
        for number in range(HOOKS_EACH):
            assert sum(f'"{tag}-{number:06d}"'.encode() in line for line in lines) == 1
    assert_repository_sound(project)
    assert leftover_locks(project) == []
    # Each commit stores exactly one more line of exactly the session it names.
    lengths: dict[str, list[int]] = {session: [] for _, session, _ in crowd.sessions}
    for commit in first_parent_history(project)[crowd.before:]:
        found = trailers(project, commit)
        lengths[found["Cmem-Session"]].append(int(found["Cmem-Transcript-Lines"]))
    expected = list(range(base + 1, base + HOOKS_EACH + 1))
    assert all(found == expected for found in lengths.values()), lengths


def test_concurrent_hooks_never_revert_the_memory_files(crowd: Crowd) -> None:
    """Only SessionEnd edits active-context.md (its exit line); nobody else touches the memory
    files. So a PreCompact commit must never change them: if one does, it took a stale read of
    the working file (one the previous commit had not synced yet) for a user's edit, and put an
    older version back in HEAD and on disk."""
    repo = pygit2.Repository(str(crowd.project.memory))
    reverted = []
    for commit in first_parent_history(crowd.project)[crowd.before:]:
        found = repo.revparse_single(commit).peel(pygit2.Commit)
        if dict(found.message_trailers).get("Cmem-Event") != "pre-compact":
            continue
        parent = found.parents[0]
        for name in ("active-context.md", "project-memory.md"):
            if found.tree[name].id != parent.tree[name].id:
                older = [p.id for p in parent.parents if p.tree[name].id == found.tree[name].id]
                reverted.append(f"{commit[:10]} set {name} back to "
                                f"{'its grandparent' if older else 'an older'}'s version")
    assert reverted == [], f"{len(reverted)} PreCompact commits rewrote a memory file: {reverted}"


# ---------------------------------------------------------------- 2. one session, many hooks


def test_concurrent_hooks_on_one_transcript_only_ever_grow_it(project: Project,
                                                              tmp_path: Path) -> None:
    """Several processes append to the same transcript and hook on it at once. Whatever order
    the commits land in, the stored copy never goes back to an older read of the file."""
    session = "shared-session"
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    before = commit_count(project)
    workers, hooks_each = 4, 15

    runs = finish_workers(start_workers(
        project, tmp_path, [(f"s{n}", session, transcript) for n in range(workers)], hooks_each))
    assert_hooks_quiet(runs)
    final_hook = run_hook(project, "PreCompact",
                          payload("PreCompact", session, transcript, project.root))
    assert final_hook.returncode == 0 and final_hook.stdout == b"", final_hook.stdout

    final = transcript.read_bytes()
    lines = final.splitlines()
    expected_lines = len(SHORT.read_bytes().splitlines()) + workers * hooks_each
    assert len(lines) == len(set(lines)) == expected_lines
    assert stored_transcript(project, session) == final
    sizes = []
    for commit in first_parent_history(project)[before:]:
        stored = stored_transcript(project, session, commit)
        assert stored is not None and final.startswith(stored), commit
        sizes.append(len(stored))
    assert sizes == sorted(sizes), f"the stored transcript shrank along history: {sizes}"
    # Enough commits stored a new version to make the check above mean something.
    assert len(set(sizes)) >= 10, sizes
    assert_repository_sound(project)
    assert leftover_locks(project) == []


# ---------------------------------------------------------------- 3. SIGKILL at random moments

KILL_TRIALS = 50


def append_records(transcript: Path, tag: str, start: int, size: int,
                   rng: random.Random) -> int:
    """Append about `size` bytes of distinct records whose text does not compress away, as
    real tool output does not; returns the next record number."""
    data = bytearray()
    number = start
    while len(data) < size:
        data += record(tag, number, pad=0)[:-3] + rng.randbytes(600).hex().encode() + b'"}}\n'
        number += 1
    with open(transcript, "ab") as handle:
        handle.write(data)
    return number


def loose_objects(project: Project) -> int:
    objects = project.memory / ".git" / "objects"
    return sum(len(os.listdir(d)) for d in objects.iterdir() if len(d.name) == 2)


def head_id(project: Project) -> str:
    return project.git("rev-parse", "HEAD").strip()


def timed_hook(project: Project, event: str, session: str, transcript: Path) -> float:
    started = time.monotonic()
    done = run_hook(project, event, payload(event, session, transcript, project.root))
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b"", done
    return time.monotonic() - started


def test_hook_killed_at_any_moment_leaves_a_sound_repository(project: Project) -> None:
    rng = random.Random(20240611)
    session = "killed-session"
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    number = append_records(transcript, "k", 0, 4 << 20, rng)
    # An undisturbed hook that backs up half a MiB takes `typical`; one with nothing new to
    # read takes `idle`, which is roughly when a hook starts writing. Most kills aim between.
    busy, idle = [], []
    for _ in range(3):
        number = append_records(transcript, "k", number, 512 << 10, rng)
        busy.append(timed_hook(project, "PreCompact", session, transcript))
        idle.append(timed_hook(project, "PreCompact", session, transcript))
    typical, start = sorted(busy)[1], sorted(idle)[1] * 0.8

    outcomes: dict[str, int] = {}
    problems: list[str] = []
    rest = b""  # the second half of a line left half-written by the previous trial
    for trial in range(KILL_TRIALS):
        # Grow the transcript, sometimes leaving a half-written last line as Claude Code can.
        with open(transcript, "ab") as handle:
            handle.write(rest)
        number = append_records(transcript, "k", number, rng.randrange(64 << 10, 512 << 10), rng)
        rest = b""
        if trial % 3 == 0:
            line = record("k", number)
            cut = rng.randrange(1, len(line) - 1)
            with open(transcript, "ab") as handle:
                handle.write(line[:cut])
            rest, number = line[cut:], number + 1

        project.settle()
        before = Before.read(project)
        event = ("PreCompact", "SessionEnd")[trial % 2]
        process = spawn_hook(project, event, payload(event, session, transcript, project.root))
        _kill(project, process, trial % 3, rng, start, typical)
        project.settle()
        outcome = _outcome(project, process.returncode, before)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

        problems += [f"trial {trial} ({outcome}): {p}"
                     for p in _after_kill(project, event, session, transcript, before.head)]

    summary = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items()))
    print(f"\n{KILL_TRIALS} kills, hook {typical * 1000:.0f} ms, idle {start / 0.8 * 1000:.0f} ms:"
          f" {summary}")
    assert problems == [], f"{len(problems)} problems in {KILL_TRIALS} trials ({summary}):\n" \
        + "\n".join(problems)
    midway = sum(count for name, count in outcomes.items() if name.startswith(MIDWAY))
    assert midway >= KILL_TRIALS // 4, summary
    assert_repository_sound(project)


def _after_kill(project: Project, event: str, session: str, transcript: Path,
                head: str) -> list[str]:
    """What is wrong after a kill, and after the next, undisturbed hook."""
    errors = fsck_errors(project)
    if errors:
        return [f"git fsck --strict: {errors}"]
    if project.git("rev-parse", "--verify", "HEAD^{commit}", check=False) == "":
        return ["HEAD does not resolve to a commit"]
    moved = head_id(project) != head
    # The next hook has nothing new to read: whatever the killed one left is for it to finish.
    done = run_hook(project, event, payload(event, session, transcript, project.root))
    problems = []
    if done.returncode != 0 or done.stdout or done.stderr:
        problems.append(f"next hook: exit {done.returncode}, {done.stdout!r}, {done.stderr!r}")
    status = project.git("status", "--porcelain")
    if status:
        lines = status.splitlines()
        problems.append(f"git status after the next hook (branch moved by the killed one: "
                        f"{moved}): {len(lines)} lines, e.g. {lines[0]!r}")
    if leftover_locks(project):
        problems.append(f"left after the next hook: {leftover_locks(project)}")
    if stored_transcript(project, session) != whole_lines(transcript.read_bytes()):
        problems.append("stored transcript is not the file's whole lines")
    return problems


def _kill(project: Project, process: subprocess.Popen[bytes], aim: int, rng: random.Random,
          start: float, typical: float) -> None:
    """SIGKILL the hook's process group after a random delay: anywhere in [0, typical] (aim 0),
    after it has likely started (aim 1), or within a few ms of it taking the repository lock,
    where it moves the branch and rewrites the index and memory files (aim 2: a window of a
    few ms, since transcripts are never checked out). The wall-clock phases of a hook vary by
    more than the length of that last one on a busy machine, so aim 2
    watches for the lock marker, which holds the writer's pid, rather than guessing."""
    if aim == 2:
        marker = project.memory / ".git" / "cmem" / "writing"
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:
            if _written_by(marker, process.pid):
                break
            time.sleep(0.0005)
        # Within half a ms: the locked phase itself takes only a few ms (no transcript is
        # checked out), and a later kill mostly finds the commit complete.
        time.sleep(rng.uniform(0, 0.0005))
    else:
        time.sleep(rng.uniform(0 if aim == 0 else min(start, typical / 2), typical))
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate(timeout=60)


def _written_by(marker: Path, group: int) -> bool:
    """Whether the marker holds the pid of a process in the hook's process group."""
    try:
        return os.getpgid(int(marker.read_text())) == group
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class Before:
    """What a trial's hook found: the branch, the loose object count, the lock marker."""

    head: str
    objects: int
    marker: str | None

    @classmethod
    def read(cls, project: Project) -> Before:
        return cls(head_id(project), loose_objects(project), _marker(project))


def _marker(project: Project) -> str | None:
    try:
        return (project.memory / ".git" / "cmem" / "writing").read_text()
    except FileNotFoundError:
        return None


MIDWAY = "killed mid-way"


def _outcome(project: Project, returncode: int, before: Before) -> str:
    if returncode != -signal.SIGKILL:
        assert returncode == 0
        return "finished before the kill"
    holding = _marker(project) not in (None, before.marker)  # its marker: it held the lock
    if head_id(project) != before.head:
        return (f"{MIDWAY}, after moving the branch, holding the lock" if holding
                else "killed after its commit was complete and the lock released")
    if holding:
        return f"{MIDWAY}, holding the lock, before moving the branch"
    if loose_objects(project) != before.objects:
        return f"{MIDWAY}, after writing objects, before taking the lock"
    return "killed before writing anything"


# ---------------------------------------------------------------- 4. locks left behind


def committed_session(project: Project, session: str) -> Path:
    """A session whose transcript is backed up, index and working files in step."""
    transcript = project.transcripts / f"{session}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    first = run_hook(project, "PreCompact", payload("PreCompact", session, transcript,
                                                    project.root))
    assert first.returncode == 0 and first.stdout == b"", first.stdout
    assert project.git("status", "--porcelain") == ""
    return transcript


def dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def leave_git_locks(project: Project, names: tuple[str, ...]) -> None:
    """Lock files as git or libgit2 leave them: the new content, never renamed into place."""
    gitdir = project.memory / ".git"
    for name in names:
        content = (gitdir / "index").read_bytes() if name == "index.lock" else \
            (project.git("rev-parse", "HEAD~1").encode())
        (gitdir / name).write_bytes(content)


@pytest.mark.parametrize("new_lines", [1, 0], ids=["with-new-lines", "nothing-new"])
def test_stale_locks_of_a_dead_cmem_are_cleared_by_the_next_hook(project: Project,
                                                                 new_lines: int) -> None:
    """A cmem killed while libgit2 held index.lock and the branch's lock leaves them, with its
    marker. The next hook clears them and succeeds, also when it has nothing new to commit:
    otherwise the user's own `git` in .claude/memory keeps failing on index.lock."""
    session = "stale-locks"
    transcript = committed_session(project, session)
    for number in range(new_lines):
        with open(transcript, "ab") as handle:
            handle.write(record(session, number))
    before = commit_count(project)
    gitdir = project.memory / ".git"
    leave_git_locks(project, ("index.lock", "refs/heads/main.lock"))
    (gitdir / "cmem" / "writing").write_text(str(dead_pid()))

    done = run_hook(project, "PreCompact", payload("PreCompact", session, transcript,
                                                   project.root))

    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b"", done
    assert leftover_locks(project) == []
    assert commit_count(project) == before + (1 if new_lines else 0)
    assert stored_transcript(project, session) == transcript.read_bytes()
    assert_repository_sound(project)
    # The user's git works again.
    (project.memory / "notes.txt").write_text("mine\n")
    project.git("add", "notes.txt")


FOREIGN = pytest.mark.parametrize(
    "names", [("index.lock", "refs/heads/main.lock"), ("index.lock",)],
    ids=["index-and-branch", "index-only"])
EVENTS = pytest.mark.parametrize("event", ["PreCompact", "SessionEnd"])


@dataclass
class Blocked:
    transcript: Path
    head: str  # the branch before the hook
    held: dict[str, bytes]  # the other program's lock files
    done: subprocess.CompletedProcess[bytes]


def hook_under_foreign_locks(project: Project, event: str, names: tuple[str, ...]) -> Blocked:
    """A hook with a new line to back up, run while another program holds `names`."""
    session = "foreign-locks"
    transcript = committed_session(project, session)
    with open(transcript, "ab") as handle:
        handle.write(record(session, 1))
    leave_git_locks(project, names)
    held = {name: (project.memory / ".git" / name).read_bytes() for name in names}
    head = head_id(project)
    done = run_hook(project, event, payload(event, session, transcript, project.root),
                    foreground=True)
    return Blocked(transcript, head, held, done)


@FOREIGN
@EVENTS
def test_locks_held_by_someone_else_are_reported_and_left_alone(
        project: Project, names: tuple[str, ...], event: str) -> None:
    """Without cmem's marker a lock file belongs to another program (the user's `git commit`
    in .claude/memory, or an editor's `git status`): the hook must not delete it, must not
    break the repository, exits 0 and says, truthfully, what happened."""
    gitdir = project.memory / ".git"
    blocked = hook_under_foreign_locks(project, event, names)

    assert blocked.done.returncode == 0
    message = _channel_message(event, blocked.done)
    # e.g. "failed to lock file '…/refs/heads/main.lock' for writing", "the index is locked"
    assert message.startswith("cmem") and "lock" in message, message
    assert {name: (gitdir / name).read_bytes() for name in names} == blocked.held
    assert not (gitdir / "cmem" / "writing").exists()
    assert fsck_errors(project) == ""
    project.git("rev-parse", "--verify", "HEAD^{commit}")
    pending = (gitdir / "cmem" / "errors.jsonl").read_text().splitlines()
    assert json.loads(pending[-1])["event"] == {"PreCompact": "pre-compact",
                                                "SessionEnd": "session-end"}[event]
    if head_id(project) != blocked.head:  # the backup is in, only the index could not follow
        assert "othing was committed" not in message, \
            f"the message denies a commit that was made ({head_id(project)[:10]}): {message}"


@FOREIGN
@EVENTS
def test_after_someone_elses_lock_is_gone_the_next_hook_catches_up(
        project: Project, names: tuple[str, ...], event: str) -> None:
    """Once the other program is done, the next hook leaves index, working files and the
    stored transcript exactly in step with HEAD, whatever the blocked hook had got to."""
    transcript = hook_under_foreign_locks(project, event, names).transcript
    for name in names:  # the other program finishes
        (project.memory / ".git" / name).unlink()
    with open(transcript, "ab") as handle:
        handle.write(record("foreign-locks", 2))

    again = run_hook(project, event, payload(event, "foreign-locks", transcript, project.root))

    assert again.returncode == 0 and again.stdout == b"" and again.stderr == b"", again
    assert stored_transcript(project, "foreign-locks") == transcript.read_bytes()
    assert_repository_sound(project)


def _channel_message(event: str, done: subprocess.CompletedProcess[bytes]) -> str:
    """The problem as the user sees it: systemMessage on stdout, or stderr for SessionEnd,
    whose output Claude Code discards except for what lands in the log."""
    if event == "SessionEnd":
        return done.stderr.decode()
    assert done.stdout, done.stderr
    return str(json.loads(done.stdout)["systemMessage"])


# ---------------------------------------------------------------- 5. a live lock

# Another cmem process: takes the repository lock, holds it, and says where the branch was
# the moment before it let go.
HOLDER = textwrap.dedent("""\
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    with open(sys.argv[3]) as ref:
        print(ref.read().strip(), flush=True)
""")


def hold_lock(project: Project, seconds: float) -> subprocess.Popen[str]:
    gitdir = project.memory / ".git"
    holder = subprocess.Popen([PYTHON, "-c", HOLDER, str(gitdir / "cmem" / "lock"), str(seconds),
                               str(gitdir / "refs" / "heads" / "main")],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


# PreCompact waits up to 10 s; SessionEnd, whose hooks share a 1.5 s budget, up to 0.8 s.
@pytest.mark.parametrize("event,hold", [("PreCompact", 1.5), ("SessionEnd", 0.6)])
def test_a_live_lock_released_in_time_is_waited_for(project: Project, event: str,
                                                     hold: float) -> None:
    session = "live-lock"
    transcript = committed_session(project, session)
    with open(transcript, "ab") as handle:
        handle.write(record(session, 1))
    before, head = commit_count(project), head_id(project)

    holder = hold_lock(project, hold)
    done = run_hook(project, event, payload(event, session, transcript, project.root))
    at_release, _ = holder.communicate(timeout=10)

    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b"", done
    assert at_release.strip() == head, "the branch moved while another process held the lock"
    assert commit_count(project) == before + 1
    assert stored_transcript(project, session) == transcript.read_bytes()
    assert_repository_sound(project)


def test_a_lock_held_past_the_bound_is_given_up_and_reported(project: Project) -> None:
    """SessionEnd hooks share a 1.5 s budget, so SessionEnd in the foreground waits 0.8 s at
    most (detached, it waits as any command does); the next SessionStart tells the user and
    backs up what SessionEnd could not."""
    session = "held-lock"
    transcript = committed_session(project, session)
    with open(transcript, "ab") as handle:
        handle.write(record(session, 1))
    head = head_id(project)

    holder = hold_lock(project, 4)
    started = time.monotonic()
    done = run_hook(project, "SessionEnd", payload("SessionEnd", session, transcript,
                                                   project.root), foreground=True)
    took = time.monotonic() - started

    assert holder.poll() is None, f"the hook waited for the holder to let go ({took:.1f} s)"
    assert done.returncode == 0 and done.stdout == b""
    message = done.stderr.decode()
    assert "held by another cmem process" in message and "waited 0.8 s" in message, message
    assert head_id(project) == head
    assert project.git("status", "--porcelain") == ""
    holder.kill()
    holder.wait()

    start = run_hook(project, "SessionStart", payload("SessionStart", session, transcript,
                                                      project.root))
    assert start.returncode == 0, start.stderr
    output = json.loads(start.stdout)
    context = output["hookSpecificOutput"]["additionalContext"]
    assert "session-end" in context and "held by another cmem process" in context, context
    assert output.get("systemMessage"), output
    assert stored_transcript(project, session) == transcript.read_bytes()
    assert_repository_sound(project)
    # Reported once: the SessionStart after that has nothing to repeat.
    later = run_hook(project, "SessionStart", payload("SessionStart", session, transcript,
                                                      project.root))
    assert "held by another cmem process" not in later.stdout.decode()
