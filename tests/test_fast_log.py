"""`cmem log` without pygit2: history read by `git log`, printed as libgit2's walk prints it.

`cmem log -n 20` on 10,000 commits has 150 ms, whole process (issue 13), and importing pygit2
alone takes most of that. So when the repository is plain, the entries come from `git log`
(repo/quicklog.py, git/gitlog.py) with their trailers read as libgit2 reads them
(git/message.py), and anything else takes the path through pygit2 as before.

Every `cmem log` here is a real process. The "full" path is the same process with the git log
path switched off (`quicklog.plain_tip` answering None), so the two outputs (exit status,
stdout, stderr) are compared byte for byte, over histories made by the real hook commands from
corpus transcripts on two devices that merge through `cmem sync`; each process also reports
whether it loaded pygit2, so a test knows which path answered. The order of the walk and the
trailers are checked against libgit2 itself on histories and messages made to be awkward.
"""

from __future__ import annotations

import fcntl
import os
import pty
import random
import select
import shutil
import struct
import subprocess
import termios
import time
from pathlib import Path

import pygit2
import pytest
from conftest import PYTHON, Answered, Project, fast_or_full, git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sync import (
    Device,
    append,
    corpus_lines,
    make_device,
    manual_sync_only,
    pair,
    quiet,
    remote_repository,
    session_id,
    stop_background,
)

from cmem_git.git import gitlog, message
from cmem_git.repo import quicklog
from cmem_git.repo.history import ORDER

SWITCH = "cmem_git.repo.quicklog:plain_tip"  # the git log path, answering None for "full"

SESSIONS = [session_id(f"fast-log-{n}") for n in range(3)]

# Asked of both paths; the git log path must answer every one of them.
QUERIES = [
    (),
    ("-n", "20"),
    ("-n", "1"),
    ("-n", "0"),
    ("--oneline",),
    ("--json",),
    ("--json", "-n", "3"),
    ("--oneline", "-n", "7"),
    ("--event", "session-end"),
    ("--event", "merge", "--json"),
    ("--event", "document", "--oneline"),
    ("--session", SESSIONS[1][:6]),
    ("--session", SESSIONS[0], "--event", "pre-compact", "--json"),
    ("--since", "2000-01-01", "-n", "4"),
    ("--until", "2000-01-01"),
    ("--since", "1 hour ago", "--until", "now", "--oneline"),
    ("--event", "no-such-event"),  # exit status 2, the events listed
    ("--session", "zzzz"),
    ("-n", "0", "--session", "zzzz"),
    ("--since", "not a time"),
]
# Left to libgit2: ranges and paths (and --graph, drawn by git with relative dates).
FULL_ONLY = [("HEAD~2",), ("HEAD~3..HEAD", "--oneline"), ("--", "active-context.md"),
             ("sessions",)]


def logged(device: Device, mode: str, *args: str,
           env: dict[str, str] | None = None) -> Answered:
    return fast_or_full(device.root, mode, SWITCH, "log", *args, env=env or device.env)


def assert_parity(device: Device, queries: list[tuple[str, ...]], fast: bool = True) -> None:
    """Both paths print the same bytes; the git log path answers without pygit2 (when `fast`)
    and the full path with it."""
    for args in queries:
        quick, full = logged(device, "fast", *args), logged(device, "full", *args)
        assert quick.same == full.same, (args, quick.same, full.same)
        assert quick.pygit2 != fast and full.pygit2, args


# --- histories made by the hooks, merged by sync -------------------------------------------

_BUILT: list[Path] = []  # the history below, built once and copied for each test


@pytest.fixture
def merged(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Device:
    """The laptop of two devices that backed up corpus transcripts with the real hooks, saved
    a session document and merged their histories in four `cmem sync` rounds: a copy of its
    own for each test (folders, HOME and remote together)."""
    if not _BUILT:
        _BUILT.append(_two_devices(tmp_path_factory.mktemp("merged")))
    shutil.copytree(_BUILT[0], tmp_path / "world", symlinks=True)
    laptop = tmp_path / "world" / "laptop"
    return Device("laptop", Project(laptop / "project", laptop / "home"))


def _two_devices(base: Path) -> Path:
    laptop, desktop = make_device(base, "laptop"), make_device(base, "desktop")
    try:
        pair(laptop, desktop, str(remote_repository(base)))
        for device in (laptop, desktop):
            manual_sync_only(device)
        lines = iter(corpus_lines())
        for round_ in range(4):
            for device, sid in ((laptop, SESSIONS[0]), (desktop, SESSIONS[1 + round_ % 2])):
                append(device.claude_folder / f"{sid}.jsonl",
                       b"".join(next(lines) for _ in range(5)))
                quiet(device.hook("PreCompact" if round_ == 1 else "SessionEnd", sid))
            if round_ == 2:
                desktop.ok("doc", "save", "--title", "Half way", input=b"# Half way\n\nDone.\n")
            laptop.ok("sync")
            desktop.ok("sync")
    finally:
        stop_background(laptop)
        stop_background(desktop)
    return base


def test_the_git_log_path_prints_byte_for_byte_what_libgit2s_walk_prints(merged: Device
                                                                           ) -> None:
    merges = merged.git("log", "--merges", "--format=%H").split()
    times = merged.git("log", "--format=%ct").split()
    assert len(merges) >= 3 and len(times) > 12
    assert len(set(times)) < len(times)  # commits that share a second: the order's hard case
    assert_parity(merged, QUERIES)
    assert_parity(merged, FULL_ONLY, fast=False)
    oneline = logged(merged, "fast", "--oneline").out.decode().splitlines()
    assert [line.split()[0] for line in oneline] == [c[:8] for c in merged.git(
        "log", "--format=%H").split()]
    assert sum(" merge " in line for line in oneline) == len(merges)
    graph = logged(merged, "fast", "--graph", "-n", "5")
    assert graph.status == 0 and b"|\\" in graph.out and graph.pygit2


def test_after_gc_packed_refs_and_objects_read_the_same(merged: Device) -> None:
    merged.git("gc", "-q")
    assert not (merged.memory / ".git" / "refs" / "heads" / "main").exists()
    assert_parity(merged, QUERIES[:8])


def test_a_shallow_history_ends_where_both_say_it_ends(merged: Device) -> None:
    every = int(merged.git("rev-list", "--count", "HEAD"))
    cut = merged.git("rev-parse", "HEAD~4").strip()
    (merged.memory / ".git" / "shallow").write_text(cut + "\n")
    assert_parity(merged, [(), ("--json",), ("--event", "init")])
    assert logged(merged, "fast").out.count(b"\n") < every


# --- messages libgit2 reads in its own way ---------------------------------------------------

ODD_MESSAGES = [
    "subject only",
    "subject\n\nCmem-Event: stop\nCmem-Session: abc-1\n continued value\n",
    "subject\n\nbody line\nCmem-Event: stop\n\nSigned-off-by: A <a@example.com>\nnot one\n",
    "subject\n\nCmem-Event: document\nCmem-Title: Été à Zürich\n# a comment\n\n",
    "subject\n\nCmem-Event: stop\n---\nCmem-Event: session-end\n",
    "subject\n\nCmem-Event: stop\nCmem-Event: pre-compact\nCmem-Device:\n",
    "subject\nstill the title\nCmem-Event: stop\n",
    "Cmem-Event: stop\n",
    "subject\n\nCmem-Event : stop\nCmem-Session:abc\nCmem-Device:\tdesk\nKey:",
]


def test_odd_messages_are_read_as_libgit2_reads_them(merged: Device) -> None:
    """Commits made with git itself (a user's, or another tool's) on top of cmem's."""
    for index, text in enumerate(ODD_MESSAGES):
        (merged.memory / "notes.md").write_text(f"note {index}\n")
        merged.git("add", "notes.md")
        merged.git("commit", "-q", "--cleanup=verbatim", "-m", text)
    assert_parity(merged, [(), ("--json",), ("--oneline",), ("--event", "stop", "--json"),
                           ("--session", "abc", "--oneline")])


# --- everything unusual takes the path through pygit2, with the same output -----------------

def _damage(device: Device, case: str) -> None:
    gitdir = device.memory / ".git"
    if case == "detached":
        device.git("checkout", "-q", "--detach")
    elif case == "no commit yet":
        device.git("switch", "-q", "--orphan", "empty")
    elif case == "latin-1 message":
        (device.memory / "notes.md").write_text("x\n")
        device.git("add", "notes.md")
        subprocess.run(["git", "-C", str(device.memory), "-c", "i18n.commitEncoding=ISO-8859-1",
                        "commit", "-q", "-F", "-"], input=b"caf\xe9\n", check=True)
    elif case == "not UTF-8":
        tree = device.git("rev-parse", "HEAD^{tree}").strip()
        head = device.git("rev-parse", "HEAD").strip()
        raw = (f"tree {tree}\nparent {head}\nauthor A <a@example.com> 1800000000 +0000\n"
               f"committer A <a@example.com> 1800000000 +0000\n\n").encode() + b"caf\xe9 \xff\n"
        done = subprocess.run(["git", "-C", str(device.memory), "hash-object", "-t", "commit",
                               "-w", "--stdin"], input=raw, capture_output=True, check=True)
        device.git("update-ref", "refs/heads/main", done.stdout.decode().strip())
    elif case == "interrupted write":
        (gitdir / "cmem").mkdir(exist_ok=True)
        (gitdir / "cmem" / "unsynced").write_text("")
    elif case == "transcripts not hidden":
        device.git("config", "--unset", "core.sparseCheckout")
    elif case == "grafts":
        (gitdir / "info" / "grafts").write_text(device.git("rev-parse", "HEAD~1").strip() + "\n")
    elif case == "core.worktree":
        device.git("config", "core.worktree", str(device.root))
    elif case == "config include":
        device.git("config", "include.path", str(device.root / "missing.gitconfig"))
    elif case == "replace ref":
        head, older = device.git("rev-parse", "HEAD", "HEAD~3").split()
        device.git("replace", head, older)


@pytest.mark.parametrize("case", ["detached", "no commit yet", "latin-1 message", "not UTF-8",
                                  "grafts", "core.worktree", "config include"])
def test_unusual_repositories_take_the_full_path(merged: Device, case: str) -> None:
    _damage(merged, case)
    assert_parity(merged, [("--json",), ("-n", "3"), ("--event", "nope")], fast=False)


@pytest.mark.parametrize("case", ["interrupted write", "transcripts not hidden"])
def test_a_repository_to_repair_is_opened_by_the_store_first(merged: Device, case: str) -> None:
    """The Store repairs what a killed cmem left, or hides transcripts an older cmem checked
    out, when it opens the repository; after that the git log path answers again."""
    before = logged(merged, "full", "--json")
    _damage(merged, case)
    first = logged(merged, "fast", "--json")
    assert first.pygit2 and first.same == before.same, (case, first.err)
    assert merged.git("config", "core.sparseCheckout").strip() == "true"
    assert not (merged.memory / ".git" / "cmem" / "unsynced").exists()
    assert_parity(merged, [("--json",), ("--event", "nope")])


def test_replace_refs_are_not_followed_by_either_path(merged: Device) -> None:
    """libgit2 does not read refs/replace; git is told not to."""
    _damage(merged, "replace ref")
    assert_parity(merged, [(), ("--json", "-n", "4")])


def test_without_git_on_path_it_falls_back(merged: Device) -> None:
    env = {**merged.env, "PATH": str(merged.root / "no-such-folder")}
    quick, full = (logged(merged, mode, "--json", env=env) for mode in ("fast", "full"))
    assert quick.same == full.same and quick.status == 0 and quick.out.count(b"\n") > 10
    assert quick.pygit2


def test_log_itself_does_not_import_pygit2(merged: Device) -> None:
    """The installed entry point, as a user runs it: `-X importtime` lists every module."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-m", "cmem_git", "log", "-n", "10"],
                          cwd=merged.root, capture_output=True, timeout=300, env=merged.env)
    assert done.returncode == 0 and done.stdout.count(b"\n") == 10, done.stderr[-2000:]
    imported = [line.rsplit(b"|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert b"cmem_git.repo.quicklog" in imported
    assert not [name for name in imported if name.startswith(b"pygit2")]
    assert b"cmem_git.repo.store" not in imported and b"cmem_git.read.revisions" not in imported


# --- on a terminal: the pager, as before ---------------------------------------------------

def test_on_a_terminal_a_long_log_goes_through_the_pager(merged: Device, tmp_path: Path
                                                         ) -> None:
    """stdout a terminal of 10 rows: more lines than that go to $PAGER (click's
    echo_via_pager, which takes the colours out for a pager other than less -R); a log that
    fits is written straight to the terminal, in colour. Times are relative on a terminal."""
    paged = tmp_path / "paged.txt"
    pager = tmp_path / "pager.sh"
    pager.write_text(f"#!/bin/sh\ncat > '{paged}'\n")
    pager.chmod(0o755)
    env = {**merged.env, "PAGER": str(pager), "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    shown = on_terminal(merged, env, "log")
    lines = paged.read_text().splitlines()
    assert lines.pop() == ""  # click's echo_via_pager ends with a newline of its own
    assert len(lines) == int(merged.git("rev-list", "--count", "HEAD")) > 10
    assert all(" ago " in line for line in lines)
    assert lines[0].startswith(merged.git("rev-parse", "--short=8", "HEAD").strip())
    assert "\x1b[" not in shown + paged.read_text()
    paged.unlink()
    short = on_terminal(merged, env, "log", "-n", "3")
    assert not paged.exists() and short.count("\n") == 3 and short.count(" ago\x1b[0m ") == 3
    assert "\x1b[33m" in short


def on_terminal(device: Device, env: dict[str, str], *args: str) -> str:
    """Run `cmem ARGS` with a pseudo-terminal of 10 rows as stdin, stdout and stderr; what
    it wrote there."""
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 10, 100, 0, 0))
    process = subprocess.Popen([PYTHON, "-m", "cmem_git", *args], cwd=device.root, env=env,
                               stdin=child, stdout=child, stderr=child)
    os.close(child)
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([parent], [], [], 0.5)
        if ready:
            try:
                piece = os.read(parent, 1 << 16)
            except OSError:  # the terminal closed: the process is done
                break
            if not piece:
                break
            out += piece
        elif process.poll() is not None:
            break
    assert process.wait(timeout=60) == 0, out
    os.close(parent)
    return out.decode().replace("\r\n", "\n")


# --- the walk's order and the trailers, against libgit2 itself -------------------------------

def _dag(folder: Path, rnd: random.Random) -> list[str]:
    """Commits made with `git commit-tree`: merges of up to three parents, many in the same
    second, and clocks that run ahead or behind (parents newer than their children)."""
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    tree = git(folder, "write-tree").strip()
    ids: list[str] = []
    for number in range(rnd.randint(1, 40)):
        parents = rnd.sample(ids, min(len(ids), rnd.choice([1, 1, 1, 2, 2, 3]))) if ids else []
        if parents and rnd.random() < 0.05:
            parents = []  # a second root
        when = 1_700_000_000 + rnd.choice([0, 0, 1, 2, number, -number, 5 * number])
        env = {**os.environ, "GIT_COMMITTER_DATE": f"{when} +0000",
               "GIT_AUTHOR_DATE": f"{when} +0000"}
        args = [a for p in parents for a in ("-p", p)]
        done = subprocess.run(["git", "-C", str(folder), "commit-tree", tree, "-m",
                               f"c{number}", *args], env=env, capture_output=True, check=True)
        ids.append(done.stdout.decode().strip())
    return ids


@pytest.mark.parametrize("seed", range(12))
def test_git_logs_order_is_libgit2s_unsorted_walk(tmp_path: Path, seed: int) -> None:
    rnd = random.Random(seed)
    ids = _dag(tmp_path / "dag", rnd)
    repo = pygit2.Repository(str(tmp_path / "dag"))
    for tip in {ids[-1], rnd.choice(ids)}:
        walked = [str(c.id) for c in repo.walk(pygit2.Oid(hex=tip), ORDER)]
        assert [c.id for c in gitlog.commits(tmp_path / "dag" / ".git", tip)] == walked
        assert [c.id for c in gitlog.commits(tmp_path / "dag" / ".git", tip, 5)] == walked[:5]


_LINES = st.one_of(
    st.sampled_from(["subject", "", "Cmem-Event: stop", "Cmem-Session: abc", "Key : v",
                     "Signed-off-by: A <a@b.c>", "(cherry picked from commit 1a2b)", "# note",
                     "---", "--- x", "---x", "Conflicts:", "\tpath", " continued", "Bad line",
                     ":x", "Key:", "Key:\tv", "K-1: x", "x y: z", "Tïtle: é", "é: x", " "]),
    st.text(alphabet="aK-: \t#\x0b\r\né1(", max_size=10))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                    HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_LINES, max_size=10), end=st.sampled_from(["", "\n", "\n\n", " "]))
def test_trailers_are_libgit2s(tmp_path: Path, lines: list[str], end: str) -> None:
    repo = _scratch(tmp_path)
    signature = pygit2.Signature("a", "a@example.com", 1, 0)
    text = "\n".join(lines) + end
    oid = repo.create_commit(None, signature, signature, text, repo.TreeBuilder().write(), [])
    commit = repo[oid]
    assert isinstance(commit, pygit2.Commit)
    found = {key.decode(): value.decode() for key, value in
             message.trailers(commit.raw_message.lstrip(b"\n"))}
    assert list(found.items()) == list(commit.message_trailers.items()), repr(text)


def _scratch(tmp_path: Path) -> pygit2.Repository:
    folder = tmp_path / "scratch.git"
    if folder.exists():
        return pygit2.Repository(str(folder))
    return pygit2.init_repository(str(folder), bare=True)


def test_only_a_plain_config_lets_git_log_answer(project: Project) -> None:
    """What `cmem init` writes is plain; a setting that moves or reshapes the repository, or a
    line this reading does not understand, is not (the Store opens it instead)."""
    config = project.memory / ".git" / "config"
    written = config.read_text()
    assert quicklog.plain_tip(project.memory) == project.git("rev-parse", "HEAD").strip()
    for extra in ["[core]\n\tsparseCheckout = false\n", "[core]\n\tbare = true\n",
                  "[core]\n\tworktree = /elsewhere\n", "[includeIf \"gitdir:~/\"]\n\tpath = x\n",
                  "[core]\n\tnote = a \\\n\tcontinued line\n"]:
        config.write_text(written + extra)
        assert quicklog.plain_tip(project.memory) is None, extra
    config.write_text(written + "[remote \"origin\"]\n\turl = /a path; with # marks\n")
    assert quicklog.plain_tip(project.memory) is not None
