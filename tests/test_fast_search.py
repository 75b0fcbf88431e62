"""`cmem search` on a current index without pygit2, and a command line that loads one command.

A warm search must answer within 100 ms, whole process (issue 15); importing pygit2 alone costs
most of that. So when the branch's tip, read from git's files, is the tip the index was built
at, the search runs on the index with the standard library only (read/index_file.py,
git/refs.py), and the `cmem` group imports a command's module only when that command runs
(cli/lazy.py). Everything else (a stale, missing or damaged index, a detached HEAD) takes the
path through pygit2 as before.

Every search here is a real process. The "full" path is the same process with the fast path
switched off (`index_file.read_current` answering None), so the two outputs are compared byte
for byte on a history made by the real hook commands over corpus transcripts; each process also
reports whether it loaded pygit2, so a test knows which path answered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, Answered, Project, fast_or_full, git, payload, run_hook
from test_import import make_session

from cmem_git.cli.options import COMMAND_MODULES
from cmem_git.git.refs import branch_tip
from cmem_git.read import index_file

SWITCH = "cmem_git.read.index_file:read_current"  # the fast path, answering None for "full"

QUERIES = [
    ("decorator",),
    ("the", "-n", "0"),
    ("tool output",),  # a phrase with a space
    ("-i", "DECORATOR"),
    ("--kind", "user", "the"),
    ("--kind", "tool", "--kind", "assistant", "Read"),
    ("--session", "00000000-0000-0000-0000-000000000002", "the"),
    ("--json", "-n", "0", "the"),
    ("-C", "2", "decorator"),
    ("--json", "-C", "1", "-i", "Bash"),
    ("zz",),  # shorter than a trigram: scanned with LIKE
    ("no-such-phrase-anywhere",),  # exit status 1, nothing printed
]


def searched(project: Project, mode: str, *args: str) -> Answered:
    return fast_or_full(project.root, mode, SWITCH, *args)


def hook(project: Project, event: str, sid: str) -> None:
    done = run_hook(project, event, payload(event, sid, project.transcripts / f"{sid}.jsonl",
                                            project.root))
    assert done.returncode == 0 and b"failed" not in done.stdout + done.stderr, done


@pytest.fixture
def indexed(project: Project) -> Project:
    """Five corpus sessions committed by the SessionEnd hook, and one search that built the
    index (through pygit2: there was none)."""
    for index in range(5):
        sid, _ = make_session(project.transcripts, index, 1_700_000_000 + index)
        hook(project, "SessionEnd", sid)
    first = searched(project, "fast", "search", "decorator")
    assert first.status == 0 and "pygit2" in first.loaded, first.err
    assert index_file.path(project.memory / ".git", create=False).is_file()
    return project


def index_tip(project: Project) -> str:
    db = index_file.connect(index_file.path(project.memory / ".git"))
    try:
        return index_file.state(db)["tip"]
    finally:
        db.close()


def assert_fast_equals_full(project: Project) -> None:
    for args in QUERIES:
        fast = searched(project, "fast", "search", *args)
        full = searched(project, "full", "search", *args)
        assert fast.same == full.same, args
        assert "pygit2" not in fast.loaded and "pygit2" in full.loaded, args
        assert fast.status in (0, 1) and fast.err == b"", (args, fast.err)
    assert searched(project, "fast", "search", "decorator").out.count(b"\n") >= 2


# --- the fast path answers exactly what the full path answers ----------------------------------

def test_the_fast_path_prints_byte_for_byte_what_the_full_path_prints(indexed: Project) -> None:
    assert_fast_equals_full(indexed)


def test_a_packed_branch_is_read_from_packed_refs(indexed: Project) -> None:
    indexed.git("pack-refs", "--all")
    assert not (indexed.memory / ".git" / "refs" / "heads" / "main").exists()
    assert "main" in (indexed.memory / ".git" / "packed-refs").read_text()
    assert_fast_equals_full(indexed)


def test_the_search_itself_does_not_import_pygit2(indexed: Project) -> None:
    """The installed entry point, as a user runs it: `-X importtime` lists every module the
    process imported, so a top-level `import pygit2` anywhere on the path shows here."""
    done = subprocess.run([PYTHON, "-X", "importtime", "-m", "cmem_git", "search", "decorator"],
                          cwd=indexed.root, capture_output=True, timeout=300)
    assert done.returncode == 0 and done.stdout.count(b"\n") >= 2, done.stderr.decode()[-2000:]
    imported = [line.rsplit(b"|", 1)[-1].strip() for line in done.stderr.splitlines()]
    assert b"cmem_git.read.index_file" in imported
    assert not [name for name in imported if name.startswith(b"pygit2")]
    assert b"cmem_git.repo.store" not in imported and b"cmem_git.cli.browse" not in imported


# --- everything else takes the path through pygit2, as before ----------------------------------

def test_a_commit_after_the_last_search_is_found_by_the_next(indexed: Project) -> None:
    """A commit the index has not seen (made with git itself, so no hook refreshed the index):
    the tip differs, so the search goes through pygit2 and brings the index up to date, and
    the one after it is fast again."""
    (indexed.memory / "late-notes.md").write_text("the quokka-late-42 decision\n")
    indexed.git("add", "late-notes.md")
    indexed.git("commit", "-q", "-m", "late notes")
    head = indexed.git("rev-parse", "HEAD").strip()
    assert index_tip(indexed) != head
    stale = searched(indexed, "fast", "search", "quokka-late-42")
    assert stale.status == 0 and "pygit2" in stale.loaded, stale.err
    assert b"late-notes.md:1" in stale.out and b"memory" in stale.out
    assert index_tip(indexed) == head
    again = searched(indexed, "fast", "search", "quokka-late-42")
    assert again.same == stale.same and "pygit2" not in again.loaded


def test_a_detached_head_falls_back_and_says_what_it_always_said(indexed: Project) -> None:
    indexed.git("checkout", "-q", "--detach")
    assert branch_tip(indexed.memory / ".git") is None
    fast = searched(indexed, "fast", "search", "decorator")
    full = searched(indexed, "full", "search", "decorator")
    assert fast.same == full.same and "pygit2" in fast.loaded
    assert fast.status == 1 and b"detached" in fast.err


@pytest.mark.parametrize("damage", ["deleted", "garbage", "old version"])
def test_a_missing_or_damaged_index_is_rebuilt_through_pygit2(indexed: Project,
                                                              damage: str) -> None:
    before = searched(indexed, "full", "search", "--json", "-n", "0", "the")
    file = index_file.path(indexed.memory / ".git")
    if damage == "deleted":
        file.unlink()
    elif damage == "garbage":
        file.write_bytes(b"not a database at all" * 100)
    else:
        db = index_file.connect(file)
        db.execute("UPDATE state SET value = '0' WHERE key = 'version'")
        db.close()
    rebuilt = searched(indexed, "fast", "search", "--json", "-n", "0", "the")
    assert rebuilt.same == before.same and "pygit2" in rebuilt.loaded, rebuilt.err
    after = searched(indexed, "fast", "search", "--json", "-n", "0", "the")
    assert after.same == before.same and "pygit2" not in after.loaded


def test_regex_and_reindex_still_go_through_history(indexed: Project) -> None:
    for args in (("--regex", "decor.tor"), ("--reindex", "decorator"), ("--reindex",)):
        done = searched(indexed, "fast", "search", *args)
        assert done.status == 0 and "pygit2" in done.loaded, (args, done.err)
    assert searched(indexed, "fast", "search").status == 2  # no PATTERN: a usage error


# --- the branch's tip from git's files -----------------------------------------------------------

def make_repo(tmp_path: Path, *init: str) -> Path:
    folder = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", *init, str(folder)], check=True)
    (folder / "a").write_text("a\n")
    git(folder, "add", "a")
    git(folder, "commit", "-q", "-m", "one")
    return folder


def test_the_tip_is_what_git_says_loose_packed_or_sha256(tmp_path: Path) -> None:
    folder = make_repo(tmp_path)
    gitdir = folder / ".git"
    head = git(folder, "rev-parse", "HEAD").strip()
    assert branch_tip(gitdir) == head
    git(folder, "tag", "-a", "-m", "t", "v1")  # an annotated tag: a `^peeled` line when packed
    git(folder, "pack-refs", "--all")
    assert branch_tip(gitdir) == head and "^" in (gitdir / "packed-refs").read_text()
    (folder / "b").write_text("b\n")
    git(folder, "add", "b")
    git(folder, "commit", "-q", "-m", "two")  # a loose ref again, newer than the packed line
    assert branch_tip(gitdir) == git(folder, "rev-parse", "HEAD").strip() != head
    other = make_repo(tmp_path / "sha256", "--object-format=sha256")
    assert branch_tip(other / ".git") == git(other, "rev-parse", "HEAD").strip()
    assert len(branch_tip(other / ".git") or "") == 64


@pytest.mark.parametrize("case", ["detached", "no commit yet", "reftable", "outside", "garbage",
                                  "symbolic chain", "no HEAD"])
def test_anything_unusual_gives_none(tmp_path: Path, case: str) -> None:
    folder = make_repo(tmp_path)
    gitdir = folder / ".git"
    if case == "detached":
        git(folder, "checkout", "-q", "--detach")
    elif case == "no commit yet":
        git(folder, "switch", "-q", "--orphan", "empty")
    elif case == "reftable":
        (gitdir / "reftable").mkdir()
    elif case == "outside":
        (gitdir / "HEAD").write_text("ref: refs/heads/../../../../etc/passwd\n")
    elif case == "garbage":
        (gitdir / "refs" / "heads" / "main").write_text("not an id\n")
    elif case == "symbolic chain":
        (gitdir / "refs" / "heads" / "main").write_text("ref: refs/heads/other\n")
    else:
        (gitdir / "HEAD").unlink()
    assert branch_tip(gitdir) is None


# --- the lazy command group ------------------------------------------------------------------

def test_the_table_of_command_modules_is_what_the_modules_register() -> None:
    """A command missing from options.COMMAND_MODULES would never load: the table must name
    every module that registers commands, and each command where it is defined."""
    script = ("import importlib, json\n"
              "from cmem_git.cli.options import cli, COMMAND_MODULES\n"
              "for module in COMMAND_MODULES:\n"
              "    importlib.import_module('cmem_git.cli.' + module)\n"
              "print(json.dumps({n: c.callback.__module__ for n, c in cli.commands.items()}))")
    done = subprocess.run([PYTHON, "-c", script], capture_output=True, check=True)
    registered = json.loads(done.stdout)
    expected = {name: f"cmem_git.cli.{module}" for module, names in COMMAND_MODULES.items()
                for name in names}
    assert registered == expected
    folder = Path(__file__).resolve().parents[1] / "cmem_git" / "cli"
    registering = {f.stem for f in folder.glob("*.py")
                   if re.search(r"^@cli\.(command|group)\(", f.read_text(), re.MULTILINE)}
    assert registering == set(COMMAND_MODULES)


@pytest.mark.parametrize("args, modules", [(("log", "-n", "1"), {"browse"}),
                                           (("status",), {"browse"}),
                                           (("search", "decorator"), {"find"}),
                                           # help loads the command it explains; install.py
                                           # imports devices.py for _report_outcome
                                           (("help", "search"), {"install", "devices", "find"}),
                                           (("doc", "--help"), {"documents"})])
def test_a_command_loads_its_own_module_only(indexed: Project, args: tuple[str, ...],
                                             modules: set[str]) -> None:
    done = searched(indexed, "fast", *args)
    assert done.status == 0, done.err
    assert {m for m in done.loaded if m.startswith("cmem_git.cli.")} == {
        "cmem_git.cli.boundary", "cmem_git.cli.lazy", "cmem_git.cli.options",
        *(f"cmem_git.cli.{module}" for module in modules)}


def test_the_top_level_help_loads_and_lists_every_command(indexed: Project) -> None:
    done = searched(indexed, "fast", "--help")
    assert done.status == 0
    listed = {line.split()[0] for line in done.out.decode().split("Commands:\n")[1].splitlines()}
    assert listed == {name for names in COMMAND_MODULES.values() for name in names}
    assert {f"cmem_git.cli.{m}" for m in COMMAND_MODULES} <= done.loaded


def test_shell_completion_sees_every_command(indexed: Project) -> None:
    env = {**os.environ, "_CMEM_COMPLETE": "bash_complete", "COMP_WORDS": "cmem s",
           "COMP_CWORD": "1"}
    script = "import sys\nfrom cmem_git.cli.options import cli\ncli(prog_name='cmem')"
    done = subprocess.run([PYTHON, "-c", script], env=env, capture_output=True,
                          cwd=indexed.root)
    names = [line.split(",")[1] for line in done.stdout.decode().splitlines()]
    assert names == ["scan", "search", "show", "status", "sync"], done.stderr
