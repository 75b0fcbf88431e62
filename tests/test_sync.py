"""Several devices, one remote: sync, merge, automatic sync from the hooks, restore.

Each device is a project folder with its own HOME (so its own ~/.claude/projects), set up as a
user does (`git init`, `cmem init --device NAME`, `cmem remote add`). Every cmem command is the
installed `cmem` and every hook the command `cmem init` wrote into settings.json, run as Claude
Code runs it (conftest.run_hook). The remotes are real: a bare repository on disk (path URL),
`git daemon` with receive-pack (git://) and `git http-backend` behind a small HTTP server
(http://), all on 127.0.0.1 and started and stopped by the tests (servers.py). Results are read
back with the git CLI: trees, trailers, `git fsck --strict`, `git status --porcelain`, and each
transcript's chunk blobs concatenated in name order.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, PYTHON, Project, cmem, payload, run_hook
from conftest import git_blobs as blobs
from conftest import stored_file as stored
from servers import GitDaemon, HttpGit, bare_repository, reject_pushes

SPOTTER = CORPUS / "spotter"
COMPACT_SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"
NAMESPACE = uuid.UUID("6f1c2a52-0000-4000-8000-00000000a5c5")
MARKERS = ("<<<<<<<", ">>>>>>>", "=======")
MIB = 1024 * 1024
# The thirty rounds' seed; read at import, before the hermetic fixture clears CMEM_*.
SEED = int(os.environ.get("CMEM_SYNC_SEED", "5"))
CHUNK = re.compile(r"\d{12}-\d{9}")  # chunk file names: <byte offset>-<line offset>


# ---------------------------------------------------------------- devices


def new_home(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                       "[init]\n\tdefaultBranch = main\n")
    return folder


@dataclass
class Device:
    """One machine: a project with cmem set up, under its own HOME."""

    name: str
    project: Project

    @property
    def root(self) -> Path:
        return self.project.root

    @property
    def memory(self) -> Path:
        return self.project.memory

    @property
    def env(self) -> dict[str, str]:
        home = self.project.home
        return {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}

    @property
    def claude_folder(self) -> Path:
        """~/.claude/projects/<encoded project> of this device (not created here)."""
        from cmem_git.paths import encode_project

        return self.project.home / ".claude" / "projects" / encode_project(self.root)

    def run(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return cmem(*args, cwd=self.root, input=input, env=self.env)

    def ok(self, *args: str, input: bytes | None = None) -> str:
        done = self.run(*args, input=input)
        assert done.returncode == 0, (self.name, args, done.stdout, done.stderr)
        return done.stdout.decode()

    def git(self, *args: str) -> str:
        return self.project.git(*args)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def tree(self) -> str:
        return self.git("rev-parse", "HEAD^{tree}").strip()

    def hook(self, event: str, sid: str, transcript: Path | None = None,
             **extra: Any) -> subprocess.CompletedProcess[bytes]:
        path = transcript or self.claude_folder / f"{sid}.jsonl"
        return run_hook(self.project, event, payload(event, sid, path, self.root, **extra))


def make_device(base: Path, name: str, home: Path | None = None) -> Device:
    root = base / name / "project"
    root.mkdir(parents=True)
    home = home or new_home(base / name / "home")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    device = Device(name, Project(root, home))
    device.ok("init", "--device", name)
    return device


@pytest.fixture
def laptop(tmp_path: Path, hermetic: Path) -> Iterator[Device]:
    device = make_device(tmp_path, "laptop", hermetic)
    yield device
    stop_background(device)


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Device]:
    device = make_device(tmp_path, "desktop")
    yield device
    stop_background(device)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    with GitDaemon(served(tmp_path)) as server:
        yield server


@pytest.fixture
def http_git(tmp_path: Path) -> Iterator[HttpGit]:
    with HttpGit(served(tmp_path)) as server:
        yield server


def served(tmp_path: Path) -> Path:
    folder = tmp_path / "served"
    folder.mkdir(exist_ok=True)
    return folder


def remote_repository(tmp_path: Path, *, http: bool = False) -> Path:
    return bare_repository(served(tmp_path) / "memory.git", http=http)


# ---------------------------------------------------------------- background syncs


def background_syncs(device: Device) -> list[int]:
    """Pids of the detached `cmem hook background-sync` processes working on this device."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if b"background-sync" not in (entry / "cmdline").read_bytes():
                continue
            if Path(os.readlink(entry / "cwd")) != device.root.resolve():
                continue
        except OSError:
            continue  # ended meanwhile, or a zombie
        found.append(int(entry.name))
    return found


def wait_background(device: Device, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while background_syncs(device):
        assert time.monotonic() < deadline, f"background sync of {device.name} still running"
        time.sleep(0.05)


def pushed(device: Device, bare: Path) -> None:
    """The background sync a SessionEnd started has pushed the device's tip; if not, say what
    it logged (it steps aside when another sync holds the network lock)."""
    wait_background(device)
    log = device.memory / ".git" / "cmem" / "sync.log"
    said = (log.read_text(errors="replace") if log.exists() else "(no sync.log)") + \
        f"\npending errors: {pending_errors(device)}"
    assert git_at(bare, "rev-parse", "main").strip() == device.head(), said


def stop_background(device: Device) -> None:
    """Teardown: a background sync this test started must not outlive it."""
    try:
        wait_background(device, timeout=30)
    finally:
        for pid in background_syncs(device):
            os.kill(pid, 9)


def pending_errors(device: Device) -> list[dict[str, Any]]:
    path = device.memory / ".git" / "cmem" / "errors.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# ---------------------------------------------------------------- reading repositories


def git_at(folder: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    if check:
        assert done.returncode == 0, (folder, args, done.stderr)
    return done.stdout


def files_in(folder: Path, rev: str = "HEAD", under: str = "") -> list[str]:
    args = ["ls-tree", "-r", "--name-only", rev] + ([under] if under else [])
    return git_at(folder, *args).split("\n")[:-1]


def trailers(folder: Path, rev: str = "HEAD") -> dict[str, str]:
    text = git_at(folder, "log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in text.splitlines() if line.strip())


def assert_fsck(folder: Path) -> None:
    done = subprocess.run(["git", "-C", str(folder), "fsck", "--strict"], capture_output=True,
                          text=True)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    bad = [line for line in report.splitlines()
           if line and not line.startswith(("dangling ", "Checking ", "notice: "))]
    assert not bad, report


def assert_healthy(device: Device) -> None:
    assert device.git("status", "--porcelain") == "", device.git("status")
    assert_fsck(device.memory)


def lines_of(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True)


def assert_in_order(part: list[bytes], whole: list[bytes]) -> None:
    """`part` is a subsequence of `whole`."""
    position = {line: index for index, line in enumerate(whole)}
    indexes = [position[line] for line in part]
    assert indexes == sorted(indexes), "lines out of order"


def assert_merged_lines(merged: bytes, sides: list[bytes]) -> None:
    """Every line of every side exactly once, each side's lines in their order."""
    got = lines_of(merged)
    assert len(got) == len(set(got)), "a line is there twice"
    missing = {line for side in sides for line in lines_of(side)} - set(got)
    assert not missing, f"{len(missing)} lines lost, e.g. {sorted(missing)[0][:120]!r}"
    assert set(got) <= {line for side in sides for line in lines_of(side)}
    for side in sides:
        assert_in_order(lines_of(side), got)


# ---------------------------------------------------------------- transcripts


def corpus_lines() -> list[bytes]:
    """Every line of the corpus, each ending with a newline; all are distinct."""
    found: list[bytes] = []
    for path in sorted(CORPUS.rglob("*.jsonl")):
        found += [line if line.endswith(b"\n") else line + b"\n"
                  for line in path.read_bytes().splitlines(keepends=True) if line.strip()]
    assert len(found) == len(set(found)) > 300
    return found


def session_id(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def append(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:
        handle.write(data)


def quiet(done: subprocess.CompletedProcess[bytes]) -> None:
    """A hook that went well: exit 0, nothing on stderr, no systemMessage."""
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", done.stderr
    if done.stdout:
        assert "systemMessage" not in json.loads(done.stdout), done.stdout


def context_of(done: subprocess.CompletedProcess[bytes]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    value = json.loads(done.stdout)
    assert isinstance(value, dict)
    return value


def connect(device: Device, url: str) -> None:
    device.ok("remote", "add", "origin", url)
    device.ok("sync")


def pair(laptop: Device, desktop: Device, url: str) -> None:
    """Both devices on one remote, in step."""
    connect(laptop, url)
    connect(desktop, url)
    laptop.ok("sync")
    assert laptop.head() == desktop.head()


# ================================================================ 1. each transport


@pytest.mark.parametrize("transport", ["path", "git", "http"])
def test_two_devices_sync_over_each_transport(tmp_path: Path, laptop: Device, desktop: Device,
                                              transport: str) -> None:
    bare = remote_repository(tmp_path, http=transport == "http")
    with Served(transport, tmp_path) as url_of:
        url = url_of(bare)
        pair(laptop, desktop, url)
        sid = session_id(f"transport-{transport}")
        transcript = laptop.claude_folder / f"{sid}.jsonl"
        data = (SPOTTER / "tool_heavy.jsonl").read_bytes()
        append(transcript, data)
        quiet(laptop.hook("SessionEnd", sid))
        pushed(laptop, bare)  # the SessionEnd hook's background sync pushed the backup
        assert pending_errors(laptop) == []

        assert "fast-forward from origin" in desktop.ok("pull")
        assert stored(desktop.memory, sid) == data
        assert desktop.ok("doc", "save", "--title", f"over {transport}",
                          input=b"# Over the wire\n\nDone.\n").startswith("saved sessions/")
        assert "pushed to origin" in desktop.ok("push")
        assert "fast-forward from origin" in laptop.ok("sync")
        assert laptop.tree() == desktop.tree() == git_at(bare, "rev-parse",
                                                         "main^{tree}").strip()
        assert any(f.endswith("over-" + transport + ".md")
                   for f in files_in(laptop.memory, under="sessions"))
        assert "up to date with origin" in laptop.ok("sync")
        for device in (laptop, desktop):
            assert_healthy(device)
        assert_fsck(bare)


class Served:
    """A URL maker for the transport: the bare repository's path, or a server serving it."""

    def __init__(self, transport: str, tmp_path: Path) -> None:
        self.transport = transport
        self.root = served(tmp_path)
        self.server: GitDaemon | HttpGit | None = None

    def __enter__(self) -> Callable[[Path], str]:
        if self.transport == "git":
            self.server = GitDaemon(self.root).start()
        elif self.transport == "http":
            self.server = HttpGit(self.root).start()
        server = self.server
        if server is None:
            return str
        return lambda bare: server.url(bare.relative_to(self.root).as_posix())

    def __exit__(self, *exc: object) -> None:
        if self.server is not None:
            self.server.stop()


# ================================================================ 2. thirty interleaved rounds


@dataclass
class Open:
    sid: str
    path: Path
    partial: bytes = b""  # the second half of a line whose first half is in the file


@dataclass
class World:
    laptop: Device
    desktop: Device
    pool: Iterator[bytes]
    open: dict[str, Open | None] = field(default_factory=dict)
    sessions: dict[str, dict[str, Path]] = field(default_factory=dict)  # sid -> device -> file
    documents: list[str] = field(default_factory=list)  # a marker line in each document
    notes: list[str] = field(default_factory=list)  # lines added to project-memory.md
    log: list[str] = field(default_factory=list)

    def devices(self) -> list[Device]:
        return [self.laptop, self.desktop]

    def start(self, device: Device, sid: str, source: str) -> Open:
        path = device.claude_folder / f"{sid}.jsonl"
        quiet(device.hook("SessionStart", sid, path, source=source))
        self.sessions.setdefault(sid, {})[device.name] = path
        opened = self.open[device.name] = Open(sid, path)
        return opened

    def grow(self, device: Device, count: int, half: bool) -> None:
        current = self.open.get(device.name) or self.start(
            device, session_id(f"{device.name}-{len(self.sessions)}"), "startup")
        data = current.partial + b"".join(next(self.pool) for _ in range(count))
        current.partial = b""
        if half:  # Claude Code writes asynchronously: the last line may be half there
            line = next(self.pool)
            data, current.partial = data + line[:len(line) // 2], line[len(line) // 2:]
        append(current.path, data)

    def finish_line(self, device: Device) -> Open | None:
        current = self.open.get(device.name)
        if current is not None and current.partial:
            append(current.path, current.partial)
            current.partial = b""
        return current

    def end(self, device: Device) -> None:
        current = self.finish_line(device)
        if current is None:
            return self.sync(device)
        quiet(device.hook("SessionEnd", current.sid, current.path))
        wait_background(device)
        self.open[device.name] = None

    def precompact(self, device: Device) -> None:
        current = self.open.get(device.name)
        if current is None:
            return self.grow(device, 2, False)
        quiet(device.hook("PreCompact", current.sid, current.path))

    def document(self, device: Device, number: int) -> None:
        marker = f"Decision {number} recorded on {device.name}: {uuid.uuid4()}"
        self.documents.append(marker)
        text = f"# Work of round {number}\n\n{marker}\n".encode()
        current = self.open.get(device.name)
        session = ["--session", current.sid] if current else []
        device.ok("doc", "save", "--title", f"round {number} {device.name}", *session,
                  input=text)

    def note(self, device: Device, number: int) -> None:
        line = f"- note {number} from {device.name}"
        self.notes.append(line)
        with open(device.memory / "project-memory.md", "a") as handle:
            handle.write(line + "\n")

    def sync(self, device: Device) -> None:
        device.ok("sync")


def test_thirty_interleaved_rounds_on_two_devices(tmp_path: Path, laptop: Device,
                                                  desktop: Device, daemon: GitDaemon) -> None:
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, daemon.url("memory.git"))
    rng = random.Random(SEED)
    pool = corpus_lines()
    rng.shuffle(pool)
    world = World(laptop, desktop, iter(pool))

    # A session of the laptop, resumed on the desktop and continued on both.
    shared = session_id("resumed")
    world.start(laptop, shared, "startup")
    world.grow(laptop, 6, False)
    world.end(laptop)
    desktop.ok("sync")
    assert "wrote" in desktop.ok("restore", shared)
    for device, count in ((laptop, 3), (desktop, 4)):
        world.start(device, shared, "resume")
        world.grow(device, count, False)

    actions = ["grow", "grow", "precompact", "end", "document", "note", "sync", "sync"]
    for number in range(30):
        device = rng.choice(world.devices())
        action = rng.choice(actions)
        world.log.append(f"{number}: {device.name} {action}")
        if action == "grow":
            world.grow(device, rng.randint(1, 5), rng.random() < 0.3)
        elif action == "precompact":
            world.precompact(device)
        elif action == "end":
            world.end(device)
        elif action == "document":
            world.document(device, number)
        elif action == "note":
            world.note(device, number)
        else:
            world.sync(device)

    for device in world.devices():
        world.end(device)
    for device in (laptop, desktop, laptop):
        device.ok("sync")
    check_world(world, bare)


def check_world(world: World, bare: Path) -> None:
    laptop, desktop = world.laptop, world.desktop
    rounds = "\n".join(world.log)
    assert laptop.tree() == desktop.tree() == git_at(bare, "rev-parse", "main^{tree}").strip(), \
        rounds
    assert laptop.head() == desktop.head()
    both = [sid for sid, where in world.sessions.items() if len(where) == 2]
    assert both == [session_id("resumed")]
    for sid, where in world.sessions.items():
        if len(where) == 1:
            local = next(iter(where.values())).read_bytes()
            assert stored(laptop.memory, sid) == local, f"session {sid} differs\n{rounds}"
    documents = blobs(laptop.memory, [f"HEAD:{f}" for f in
                                      files_in(laptop.memory, under="sessions")])
    for marker in world.documents:
        assert sum(marker.encode() in text for text in documents) == 1, marker
    project_memory = (laptop.memory / "project-memory.md").read_text()
    for note in world.notes:
        assert project_memory.count(note + "\n") == 1, note
    for name in ("active-context.md", "project-memory.md"):
        text = blobs(laptop.memory, [f"HEAD:{name}"])[0].decode()
        assert not [m for m in MARKERS if m in text], text
    for device in world.devices():
        assert_healthy(device)
        assert pending_errors(device) == []
    assert_fsck(bare)
    # Last, the session continued on both devices: every line of both sides, once, in order.
    where = world.sessions[session_id("resumed")]
    assert_merged_lines(stored(laptop.memory, session_id("resumed")),
                        [path.read_bytes() for path in where.values()])


def manual_sync_only(device: Device) -> None:
    config = device.memory / "cmem.yaml"
    text = config.read_text()
    assert "auto_sync: true" in text
    config.write_text(text.replace("auto_sync: true", "auto_sync: false"))


@pytest.mark.parametrize("order", ["backup-then-pull", "pull-then-backup"])
def test_session_continued_on_both_devices_keeps_every_line(tmp_path: Path, laptop: Device,
                                                            desktop: Device,
                                                            order: str) -> None:
    """A session of the laptop is restored and continued on the desktop while the laptop
    continues it too. Whether the laptop backs up its lines before or after it pulls the
    desktop's, and whichever device's lines grow after the merge, the memory ends with every
    line of both transcripts once, each device's lines in their order."""
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, str(bare))
    for device in (laptop, desktop):
        manual_sync_only(device)
    lines = iter(corpus_lines())
    sid = session_id(f"continued-{order}")
    on_laptop = laptop.claude_folder / f"{sid}.jsonl"
    append(on_laptop, b"".join(next(lines) for _ in range(6)))
    quiet(laptop.hook("SessionEnd", sid))
    laptop.ok("sync")

    desktop.ok("sync")
    desktop.ok("restore", sid)
    on_desktop = desktop.claude_folder / f"{sid}.jsonl"
    append(on_desktop, b"".join(next(lines) for _ in range(4)))
    quiet(desktop.hook("SessionEnd", sid))
    desktop.ok("sync")

    append(on_laptop, b"".join(next(lines) for _ in range(3)))
    if order == "backup-then-pull":
        quiet(laptop.hook("SessionEnd", sid))
        laptop.ok("sync")  # merges the two versions
    else:
        laptop.ok("pull")  # a fast-forward to the desktop's version
        quiet(laptop.hook("SessionEnd", sid))
        laptop.ok("sync")
    desktop.ok("sync")
    assert laptop.tree() == desktop.tree()
    assert_merged_lines(stored(laptop.memory, sid), [on_laptop.read_bytes(),
                                                     on_desktop.read_bytes()])

    # The laptop goes on once more after the merge; the desktop does not.
    append(on_laptop, b"".join(next(lines) for _ in range(2)))
    quiet(laptop.hook("SessionEnd", sid))
    laptop.ok("sync")
    desktop.ok("sync")
    assert laptop.tree() == desktop.tree()
    assert_merged_lines(stored(laptop.memory, sid), [on_laptop.read_bytes(),
                                                     on_desktop.read_bytes()])
    for device in (laptop, desktop):
        assert_healthy(device)


# ================================================================ 3. both edit active-context.md


PLACEHOLDER = "What is being worked on right now, and why."


def edit_active(device: Device, old: str, new: str) -> None:
    path = device.memory / "active-context.md"
    text = path.read_text()
    assert text.count(old) == 1, text
    path.write_text(text.replace(old, new))


def commit_locally(device: Device) -> None:
    """A hook commit (it takes in the memory files), without any network."""
    sid = session_id(f"local-{device.name}")
    append(device.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
    quiet(device.hook("PreCompact", sid))


def test_both_devices_edit_active_context(tmp_path: Path, laptop: Device,
                                          desktop: Device) -> None:
    """The same line edited on both: each device merges the other's commit on its own, and
    both reach the same tree, with both versions readable and no conflict markers."""
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, str(bare))
    ours, theirs = "Focus on laptop: the parser rewrite.", "Focus on desktop: the network layer."
    edit_active(laptop, PLACEHOLDER, ours)
    edit_active(desktop, PLACEHOLDER, theirs)
    laptop.ok("sync")  # the remote now has the laptop's edit
    commit_locally(desktop)
    desktop_edit = desktop.head()

    # The laptop merges the desktop's commit (fetched from its repository by path) ...
    laptop.ok("remote", "add", "desktop", str(desktop.memory))
    by_laptop = laptop.run("pull", "desktop")
    # ... and the desktop merges the laptop's, from the remote.
    by_desktop = desktop.run("sync")
    for done, merger, other in ((by_laptop, laptop, desktop), (by_desktop, desktop, laptop)):
        assert done.returncode == 0, done.stderr
        assert "merge from" in done.stdout.decode()
        warning = done.stderr.decode()
        assert "warning: active-context.md was changed on both devices" in warning, warning
        found = trailers(merger.memory)
        assert found["Cmem-Event"] == "merge"
        assert found["Cmem-Conflicts"] == "active-context.md"
        assert found["Cmem-Device"] == merger.name
        assert found["Cmem-Merged-Device"] == other.name
        assert len(merger.git("rev-list", "--parents", "-1", "HEAD").split()) == 3
    assert git_at(laptop.memory, "rev-parse", "HEAD^2").strip() == desktop_edit
    assert laptop.tree() == desktop.tree(), "the merge depends on which device made it"

    merged = (laptop.memory / "active-context.md").read_text()
    assert merged == (desktop.memory / "active-context.md").read_text()
    assert merged.count(ours + "\n") == 1 and merged.count(theirs + "\n") == 1, merged
    assert PLACEHOLDER not in merged
    assert not [m for m in MARKERS if m in merged], merged
    for heading in ("# Active Context", "## Current Focus", "## Recent Decisions",
                    "## Open Questions", "## Next Steps"):
        assert merged.count(heading + "\n") == 1, merged

    # Both merges meet: the result is the same tree, nothing doubled, on every side.
    laptop.ok("sync")
    desktop.ok("sync")
    assert laptop.head() == desktop.head() == git_at(bare, "rev-parse", "main").strip()
    assert (laptop.memory / "active-context.md").read_text() == merged
    for device in (laptop, desktop):
        assert_healthy(device)
    assert_fsck(bare)


def test_edits_of_different_sections_merge_cleanly(tmp_path: Path, laptop: Device,
                                                   desktop: Device) -> None:
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, str(bare))
    edit_active(laptop, "## Open Questions\n", "## Open Questions\n\n- laptop asks why\n")
    edit_active(desktop, "## Next Steps\n", "## Next Steps\n\n- desktop does this next\n")
    laptop.ok("sync")
    done = desktop.run("sync")
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"", "a clean three-way merge is not a conflict"
    assert "Cmem-Conflicts" not in trailers(desktop.memory)
    assert trailers(desktop.memory)["Cmem-Merged-Device"] == "laptop"
    laptop.ok("sync")
    text = (laptop.memory / "active-context.md").read_text()
    assert "- laptop asks why\n" in text and "- desktop does this next\n" in text
    assert text.index("- laptop asks why") < text.index("## Next Steps") < text.index("- desktop")
    assert laptop.tree() == desktop.tree()


def test_exit_lines_of_two_devices_are_not_a_conflict(tmp_path: Path, laptop: Device,
                                                      desktop: Device) -> None:
    """Each SessionEnd sets cmem's own `> Last Session End:` line. Sessions ended on both
    devices between syncs must not be reported as an edit conflict for the user to combine,
    nor leave two such lines (set_line only ever replaces the first one)."""
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, str(bare))
    for device in (laptop, desktop):
        manual_sync_only(device)
        sid = session_id(f"exit-{device.name}")
        append(device.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
        quiet(device.hook("SessionEnd", sid))
    laptop.ok("sync")
    done = desktop.run("sync")
    assert done.returncode == 0, done.stderr
    laptop.ok("sync")
    text = (desktop.memory / "active-context.md").read_text()
    assert text.count("> Last Session End:") == 1, text
    assert "Cmem-Conflicts" not in trailers(desktop.memory)
    assert done.stderr == b"", done.stderr


# ================================================================ 4. a push the server refuses


def test_push_rejected_by_a_server_hook_is_a_failure(tmp_path: Path, laptop: Device,
                                                     daemon: GitDaemon) -> None:
    bare = remote_repository(tmp_path)
    connect(laptop, daemon.url("memory.git"))
    accepted = git_at(bare, "rev-parse", "main").strip()
    assert accepted == laptop.head()
    reject_pushes(bare, "policy: pushes to this memory are closed")
    edit_active(laptop, PLACEHOLDER, "A change the server will refuse.")
    commit_locally(laptop)

    for command in ("push", "sync"):
        done = laptop.run(command)
        out, err = done.stdout.decode(), done.stderr.decode()
        assert done.returncode == 1, (command, out, err)
        assert "policy: pushes to this memory are closed" in err, err
        assert "pushed to" not in out and "up to date" not in out, out
        assert git_at(bare, "rev-parse", "main").strip() == accepted

    # SessionEnd hands the push to a background process, which records the failure ...
    sid = session_id("rejected")
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
    quiet(laptop.hook("SessionEnd", sid))
    wait_background(laptop)
    recorded = pending_errors(laptop)
    assert [e["event"] for e in recorded] == ["background sync"], recorded
    assert "policy: pushes to this memory are closed" in recorded[0]["message"]
    assert git_at(bare, "rev-parse", "main").strip() == accepted

    # ... and the next SessionStart, whose own sync is refused too, says both.
    started = context_of(laptop.hook("SessionStart", session_id("next"), source="startup"))
    context = started["hookSpecificOutput"]["additionalContext"]
    assert "background sync" in context and "sync with origin failed" in context, context
    assert context.count("policy: pushes to this memory are closed") >= 2, context
    assert "sync" in started.get("systemMessage", ""), started
    assert git_at(bare, "rev-parse", "main").strip() == accepted


def test_a_refused_push_is_reported_without_git_progress_output(tmp_path: Path,
                                                                laptop: Device) -> None:
    """cmem pushes with --progress to count the bytes sent; those progress meters are not
    part of the failure: the user (and Claude, through SessionStart's context, which is
    capped at 10,000 characters) should get git's message, not dozens of meter lines."""
    bare = remote_repository(tmp_path)
    connect(laptop, str(bare))
    reject_pushes(bare, "policy: read only")
    edit_active(laptop, PLACEHOLDER, "Refused.")
    commit_locally(laptop)
    done = laptop.run("push")
    err = done.stderr.decode()
    assert done.returncode == 1 and "policy: read only" in err, err
    noise = [line for line in err.splitlines()
             if re.match(r"(Enumerating|Counting|Compressing|Writing) objects|Total \d", line)]
    assert not noise, err


def test_session_start_reports_an_earlier_background_failure(tmp_path: Path, laptop: Device,
                                                             daemon: GitDaemon) -> None:
    """The failure of a background sync reaches the next SessionStart even when that
    SessionStart's own sync works again."""
    bare = remote_repository(tmp_path)
    connect(laptop, daemon.url("memory.git"))
    reject_pushes(bare, "quota exceeded")
    sid = session_id("quota")
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
    quiet(laptop.hook("SessionEnd", sid))
    wait_background(laptop)
    (bare / "hooks" / "pre-receive").unlink()

    started = context_of(laptop.hook("SessionStart", session_id("after"), source="startup"))
    context = started["hookSpecificOutput"]["additionalContext"]
    assert re.search(r"- background sync .* ago: .*quota exceeded", context, re.DOTALL), context
    assert "Sync: pushed to origin." in context, context
    assert git_at(bare, "rev-parse", "main").strip() == laptop.head()
    assert pending_errors(laptop) == []  # reported once


# ================================================================ 5. SessionEnd and the network


def test_session_end_does_not_wait_on_the_network(tmp_path: Path, laptop: Device,
                                                  daemon: GitDaemon,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bare = remote_repository(tmp_path)
    connect(laptop, daemon.url("memory.git"))
    sid = session_id("hanging network")
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "subagent.jsonl").read_bytes())
    before = git_at(bare, "rev-parse", "main").strip()

    daemon.pause()  # connections are accepted by the kernel and then never answered
    try:
        start = time.monotonic()
        done = laptop.hook("SessionEnd", sid)
        took = time.monotonic() - start
        quiet(done)
        committed = laptop.head()
        assert trailers(laptop.memory)["Cmem-Event"] == "session-end"
        assert background_syncs(laptop), "no background sync is waiting on the network"
        time.sleep(0.3)
        assert git_at(bare, "rev-parse", "main").strip() == before
    finally:
        daemon.resume()
    with capsys.disabled():
        print(f"\n[sync figures] SessionEnd hook with a hanging remote: {took * 1000:.0f} ms")
    # No timed assertion (the machine is shared): that the hook returned while its push was
    # still waiting on the paused daemon, in a process of its own, is the proof it did not wait.

    deadline = time.monotonic() + 30
    while git_at(bare, "rev-parse", "main").strip() != committed:
        assert time.monotonic() < deadline, "the background sync never pushed"
        time.sleep(0.1)
    wait_background(laptop)
    assert pending_errors(laptop) == []
    assert stored(bare, sid) == (SPOTTER / "subagent.jsonl").read_bytes()


# ================================================================ 6. restore on another machine


def restore_case() -> tuple[str, dict[str, bytes]]:
    """The compaction session with its two subagents and a spilled tool result, as Claude
    Code keeps them: name relative to the project folder -> bytes."""
    sid = COMPACT_SESSION
    files = {f"{sid}.jsonl": (SPOTTER / f"{sid}.EXCERPT-compact.jsonl").read_bytes()}
    for path in sorted((SPOTTER / sid / "subagents").glob("*.jsonl")):
        files[f"{sid}/subagents/{path.name}"] = path.read_bytes()
    files[f"{sid}/tool-results/toolu_01.txt"] = b"total 8\r\n\xe2\x9c\x93 no final newline"
    return sid, files


def local_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_restore_round_trip(tmp_path: Path, laptop: Device, desktop: Device,
                            http_git: HttpGit) -> None:
    bare = remote_repository(tmp_path, http=True)
    pair(laptop, desktop, http_git.url("memory.git"))
    sid, files = restore_case()
    main = laptop.claude_folder / f"{sid}.jsonl"
    half = b"".join(lines_of(files[f"{sid}.jsonl"])[:20])
    append(main, half)
    for name, data in files.items():
        if name != f"{sid}.jsonl":
            append(laptop.claude_folder / name, data)
    quiet(laptop.hook("PreCompact", sid))
    append(main, files[f"{sid}.jsonl"][len(half):])
    quiet(laptop.hook("SessionEnd", sid))
    pushed(laptop, bare)
    assert local_files(laptop.claude_folder) == files

    assert not (desktop.project.home / ".claude" / "projects").exists()  # no transcripts yet
    desktop.ok("sync")
    out = desktop.ok("restore", sid[:8])
    assert out.count("wrote ") == len(files), out
    assert f"claude --resume {sid}" in out
    assert local_files(desktop.claude_folder) == files  # byte for byte
    assert desktop.claude_folder != laptop.claude_folder
    assert git_at(bare, "rev-parse", "main").strip() == desktop.head()

    again = desktop.ok("restore", sid)
    assert "wrote" not in again and again.count("already there: ") == len(files), again

    subagent = desktop.claude_folder / f"{sid}/subagents/agent-acompact-e1f845.jsonl"
    subagent.write_bytes(b'{"type":"user","note":"a different local file"}\n')
    refused = desktop.run("restore", sid)
    assert refused.returncode == 1, refused.stdout
    assert "different files exist" in refused.stderr.decode() and "--force" in \
        refused.stderr.decode()
    assert subagent.read_bytes() == b'{"type":"user","note":"a different local file"}\n'
    assert "wrote" in desktop.ok("restore", sid, "--force")
    assert local_files(desktop.claude_folder) == files

    longer = files[f"{sid}.jsonl"] + b'{"type":"user","message":"continued here"}\n'
    (desktop.claude_folder / f"{sid}.jsonl").write_bytes(longer)
    for extra in ([], ["--force"]):
        done = desktop.ok("restore", sid, *extra)
        assert "the local file is newer" in done, done
        assert (desktop.claude_folder / f"{sid}.jsonl").read_bytes() == longer

    elsewhere = tmp_path / "elsewhere"
    desktop.ok("restore", sid, "--to", str(elsewhere))
    assert local_files(elsewhere) == files
    assert_healthy(desktop)


# ================================================================ 7. remotes and credentials


def test_remote_add_refuses_a_password(laptop: Device) -> None:
    secret = "s3cret-t0ken"
    for url in (f"https://me:{secret}@example.com/memory.git",
                f"ssh://git:{secret}@example.com:2222/memory.git"):
        done = laptop.run("remote", "add", "origin", url)
        err = done.stderr.decode()
        assert done.returncode == 1, done.stdout
        assert "password" in err and "credential helper" in err, err
        assert secret not in err + done.stdout.decode()
        assert secret not in (laptop.memory / ".git" / "config").read_text()
        assert git_at(laptop.memory, "config", "--get-regexp", r"^remote\.", check=False) == ""
    assert laptop.ok("remote", "show") == ""

    laptop.ok("remote", "add", "origin", "https://me@example.com/memory.git")
    laptop.ok("remote", "add", "backup", "git@example.com:me/memory.git")
    assert sorted(laptop.ok("remote", "show").splitlines()) == [
        "backup\tgit@example.com:me/memory.git", "origin\thttps://me@example.com/memory.git"]
    assert laptop.run("remote", "add", "origin", "/elsewhere").returncode == 1
    laptop.ok("remote", "remove", "backup")
    assert laptop.ok("remote", "show") == "origin\thttps://me@example.com/memory.git\n"


def test_sync_without_remote_says_what_to_do(laptop: Device) -> None:
    for command in ("sync", "push", "pull"):
        done = laptop.run(command)
        assert done.returncode == 1
        assert "no remote configured" in done.stderr.decode()
        assert "cmem remote add" in done.stderr.decode()


def cmem_argv() -> list[str]:
    script = Path(PYTHON).parent / "cmem"
    return [str(script)] if script.exists() else [PYTHON, "-m", "cmem_git"]


def test_concurrent_syncs_of_two_devices_both_succeed(tmp_path: Path, laptop: Device,
                                                      desktop: Device,
                                                      daemon: GitDaemon) -> None:
    """A push that loses the race to the other device fetches, merges and pushes again."""
    bare = remote_repository(tmp_path)
    pair(laptop, desktop, daemon.url("memory.git"))
    for round_ in range(3):
        for device in (laptop, desktop):
            with open(device.memory / "project-memory.md", "a") as handle:
                handle.write(f"- {device.name} round {round_}\n")
        running = [subprocess.Popen([*cmem_argv(), "sync"],
                                    cwd=d.root, env=d.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE) for d in (laptop, desktop)]
        for process in running:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
    laptop.ok("sync")
    desktop.ok("sync")
    assert laptop.tree() == desktop.tree() == git_at(bare, "rev-parse", "main^{tree}").strip()
    text = (laptop.memory / "project-memory.md").read_text()
    for round_ in range(3):
        for name in ("laptop", "desktop"):
            assert text.count(f"- {name} round {round_}\n") == 1, text
    assert_fsck(bare)


# ================================================================ 8. what a push sends


def synthetic(size: int) -> bytes:
    """Corpus records with fresh uuids, so the content does not repeat within zlib's window."""
    out, total, lines = [], 0, corpus_lines()
    field_ = re.compile(rb'"uuid":"[^"]*"')
    while total < size:
        for line in lines:
            line = field_.sub(b'"uuid":"%s"' % str(uuid.uuid4()).encode(), line)
            out.append(line)
            total += len(line)
            if total >= size:
                break
    return b"".join(out)


def sent_bytes(output: str) -> int:
    found = re.search(r"pushed to origin \((\d+) bytes sent\)", output)
    assert found, output
    return int(found[1])


def test_incremental_push_and_no_op_sync(tmp_path: Path, laptop: Device, daemon: GitDaemon,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    remote_repository(tmp_path)
    laptop.ok("remote", "add", "origin", daemon.url("memory.git"))
    sid = session_id("large")
    transcript = laptop.claude_folder / f"{sid}.jsonl"
    append(transcript, synthetic(16 * MIB))
    quiet(laptop.hook("PreCompact", sid))
    first = sent_bytes(laptop.ok("push"))
    assert first < 2 * MIB, f"the first push sent {first} bytes for a 16 MiB session"

    append(transcript, synthetic(MIB))
    quiet(laptop.hook("PreCompact", sid))
    incremental = sent_bytes(laptop.ok("push"))

    laptop.ok("sync")
    times = []
    for _ in range(5):
        start = time.monotonic()
        out = laptop.ok("sync")
        times.append(time.monotonic() - start)
        assert out == "up to date with origin\n", out
    no_op = statistics.median(times)
    with capsys.disabled():
        print(f"\n[sync figures] first push of a 16 MiB transcript: {first} bytes sent; "
              f"incremental push after a 1 MiB append: {incremental} bytes sent "
              f"({incremental / MIB:.2f} MiB, target <= 2 MiB); no-op `cmem sync` against "
              f"git daemon: median {no_op * 1000:.0f} ms of {len(times)} "
              f"(fastest {min(times) * 1000:.0f} ms)")
    assert 0 < incremental <= 2 * MIB
    assert incremental < first / 3
    assert no_op < 5.0
