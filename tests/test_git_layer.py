"""Unit tests of the ground floors, beside the end-to-end tests: the compare-and-swap branch move
(git/repo.py), trees built in memory (git/trees.py), the repository lock (git/lock.py), working
files following the branch (repo/store.py, repo/worktree.py) and one checkpoint
(capture/checkpoint.py). Real repositories in temp folders, checked with the git CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pygit2
import pytest

from cmem_git.atomic import write_atomic
from cmem_git.capture import checkpoint
from cmem_git.errors import ConcurrentUpdate, LockTimeout, StorageError
from cmem_git.git import command
from cmem_git.git.lock import RepoLock, state_dir
from cmem_git.git.repo import Draft, Repo, open_repository
from cmem_git.git.trees import file_bytes, new_blobs, subtree
from cmem_git.repo.history import entry
from cmem_git.repo.store import Store
from cmem_git.repo.trailers import Trailer


def git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                          check=True).stdout


def repo_at(folder: Path) -> Repo:
    pygit2.init_repository(str(folder), initial_head="main")
    return Repo(open_repository(str(folder)))


def adding(repo: Repo, path: str, data: bytes, calls: list[str] | None = None
           ) -> Callable[[pygit2.Commit | None], Draft]:
    """A builder that sets one file on whatever tip it is given."""
    def build(tip: pygit2.Commit | None) -> Draft:
        if calls is not None:
            calls.append(str(tip.id) if tip else "")
        blob = repo.repo.create_blob(data)
        return Draft(repo.build_tree(tip.tree if tip else None, {path: blob}), f"add {path}")
    return build


# ---------------------------------------------------------------- the branch move


def test_a_commit_is_built_then_the_branch_moves(tmp_path: Path) -> None:
    repo = repo_at(tmp_path)
    first = repo.commit(adding(repo, "a/b.txt", b"one\n"))
    second = repo.commit(adding(repo, "c.txt", b"two\n"))
    assert first is not None and second is not None
    assert git(tmp_path, "rev-list", "main").split() == [str(second), str(first)]
    assert git(tmp_path, "show", "main:a/b.txt") == "one\n"
    git(tmp_path, "fsck", "--strict")


def test_a_builder_that_finds_nothing_moves_nothing(tmp_path: Path) -> None:
    repo = repo_at(tmp_path)
    assert repo.commit(lambda tip: None) is None
    assert repo.tip() is None


def test_the_swap_refuses_a_branch_that_moved(tmp_path: Path) -> None:
    repo = repo_at(tmp_path)
    repo.commit(adding(repo, "a", b"1"))
    stale = repo.tip()
    repo.commit(adding(repo, "b", b"2"))
    moved = repo.tip()
    assert stale is not None and moved is not None
    orphan = repo.repo.create_commit(None, repo.signature(), repo.signature(), "x",
                                     stale.tree.id, [stale.id])
    assert repo._swap(stale, orphan) is False
    assert repo.tip() == moved  # untouched
    assert repo._swap(moved, orphan) is True


def test_losing_the_race_rebuilds_on_the_new_tip(tmp_path: Path) -> None:
    """Another writer moves the branch between our build and our move: the builder runs again
    on the new tip, and both commits are in a linear history."""
    mine, theirs = repo_at(tmp_path), Repo(open_repository(str(tmp_path)))
    calls: list[str] = []
    inner = adding(mine, "mine.txt", b"mine\n", calls)

    def racing(tip: pygit2.Commit | None) -> Draft:
        if not calls:  # the first build: the other writer commits meanwhile
            theirs.commit(adding(theirs, "theirs.txt", b"theirs\n"))
        return inner(tip)

    oid = mine.commit(racing)
    assert len(calls) == 2 and calls[0] == "" and calls[1] != ""
    assert git(tmp_path, "rev-list", "--count", "main").strip() == "2"
    assert git(tmp_path, "ls-tree", "--name-only", str(oid)).split() == ["mine.txt", "theirs.txt"]


def test_a_ref_write_that_fails_is_an_error_not_a_race(tmp_path: Path) -> None:
    """Issue 17: a branch that cannot be written (here: a folder in the way of the ref file,
    as a full disk or a read-only folder would stop it) is a StorageError, not "is another
    program committing?", and nothing moves."""
    repo = repo_at(tmp_path)
    repo.commit(adding(repo, "a", b"1"))
    git(tmp_path, "pack-refs", "--all")
    (tmp_path / ".git" / "refs" / "heads" / "main").mkdir()
    (tmp_path / ".git" / "refs" / "heads" / "main" / "x").write_text("")
    repo = Repo(open_repository(str(tmp_path)))
    before = repo.tip()
    with pytest.raises(StorageError) as raised:
        repo.commit(adding(repo, "b", b"2"))
    assert not isinstance(raised.value, ConcurrentUpdate)
    assert "could not move refs/heads/main" in str(raised.value)
    assert before is not None and repo.tip() == before


def test_gits_own_lock_on_the_branch_is_named(tmp_path: Path) -> None:
    repo = repo_at(tmp_path)
    repo.commit(adding(repo, "a", b"1"))
    (tmp_path / ".git" / "refs" / "heads" / "main.lock").write_text("")
    with pytest.raises(StorageError, match="main.lock exists"):
        repo.commit(adding(repo, "b", b"2"))


# ---------------------------------------------------------------- trees


def test_trees_are_rewritten_only_along_changed_paths(tmp_path: Path) -> None:
    repo = repo_at(tmp_path)
    blob = repo.repo.create_blob(b"x")
    base = repo.repo[repo.build_tree(None, {"keep/one": blob, "change/two": blob})]
    assert isinstance(base, pygit2.Tree)
    other = repo.repo.create_blob(b"y")
    new = repo.repo[repo.build_tree(base, {"change/two": other, "change/three": None})]
    assert isinstance(new, pygit2.Tree)
    assert subtree(new, "keep") == subtree(base, "keep")  # the same object, not rebuilt
    assert new_blobs(base, new) == [("change/two", other)]
    assert file_bytes(new, "change/two") == b"y" and file_bytes(new, "nothing") is None
    emptied = repo.repo[repo.build_tree(new, {"change/two": None})]
    assert isinstance(emptied, pygit2.Tree) and subtree(emptied, "change") is None


# ---------------------------------------------------------------- the lock


def test_the_repository_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    gitdir = tmp_path / ".git"
    gitdir.mkdir()
    with RepoLock(gitdir) as held:
        assert (state_dir(gitdir) / "writing").read_text() == str(os.getpid())
        with pytest.raises(LockTimeout):
            with RepoLock(gitdir, wait=0.05):
                pass
        assert held.marker.exists()
    assert not (state_dir(gitdir) / "writing").exists()
    with RepoLock(gitdir, wait=0):  # free again
        pass


def test_state_dir_is_created_only_when_asked(tmp_path: Path) -> None:
    assert state_dir(tmp_path, create=False) == tmp_path / "cmem"
    assert not (tmp_path / "cmem").exists()
    assert state_dir(tmp_path).is_dir() and (tmp_path / "cmem").stat().st_mode & 0o777 == 0o700


# ---------------------------------------------------------------- atomic writes


def test_write_atomic_replaces_a_symlink_not_its_target(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "file"
    link.symlink_to(victim)
    write_atomic(link, "new", fsync=True)
    assert victim.read_text() == "keep"
    assert not link.is_symlink() and link.read_text() == "new"
    assert link.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "victim"]  # no temp left


def test_a_failing_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")

    def parts() -> Iterator[bytes]:
        yield b"half"
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, parts(), mode=0o644)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["file"]


# ---------------------------------------------------------------- working files


def test_working_files_follow_the_branch_and_keep_an_edit(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "memory")
    store.commit(adding(store, "notes.md", b"first\n"))
    assert (store.workdir / "notes.md").read_bytes() == b"first\n"
    (store.workdir / "notes.md").write_bytes(b"edited by the user\n")
    store.commit(adding(store, "notes.md", b"second\n"))  # built without reading the edit
    assert (store.workdir / "notes.md").read_bytes() == b"edited by the user\n"
    store.commit(adding(store, "other.md", b"x\n"))
    assert (store.workdir / "other.md").read_bytes() == b"x\n"
    assert git(store.workdir, "status", "--porcelain") == " M notes.md\n"


def test_transcripts_stay_out_of_the_working_tree(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "memory")
    store.commit(adding(store, "transcripts/s/main.jsonl/000000000000-000000000", b"{}\n"))
    assert not (store.workdir / "transcripts").exists()
    assert git(store.workdir, "status", "--porcelain") == ""
    git(store.workdir, "fsck", "--strict")


# ---------------------------------------------------------------- a checkpoint


def test_a_checkpoint_commits_the_transcript_with_its_trailers(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "memory")
    transcript = tmp_path / "session.jsonl"
    lines = b"".join(b'{"n": %d}\n' % i for i in range(40))
    transcript.write_bytes(lines + b'{"half')  # a half-written last line waits
    request = checkpoint.Request("pre-compact", "s-1", transcript, "laptop",
                                 detail=("Trigger", "manual"), chunk_size=64)
    result = checkpoint.take(store, request)
    assert result.commit is not None and not result.problems
    commit = store.repo[result.commit]
    assert isinstance(commit, pygit2.Commit)
    trailers = entry(commit).trailers
    assert trailers[Trailer.EVENT] == "pre-compact" and trailers[Trailer.SESSION] == "s-1"
    assert trailers[Trailer.TRIGGER] == "manual" and trailers[Trailer.DEVICE] == "laptop"
    assert trailers[Trailer.TRANSCRIPT_BYTES] == str(len(lines))
    folder = f"{result.commit}:transcripts/s-1/main.jsonl"
    names = git(store.workdir, "ls-tree", "--name-only", folder)
    assert len(names.split()) > 5  # 64-byte chunks: the chunk size was passed, not patched
    stored = git(store.workdir, "cat-file", "-p", f"{folder}/{names.split()[0]}")
    assert stored.encode() == lines[:len(stored)]
    assert checkpoint.take(store, request).commit is None  # nothing new: no commit


# ---------------------------------------------------------------- git processes


def test_git_processes_cannot_be_pointed_at_another_repository(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hook runs inside whatever started Claude Code; a GIT_DIR set there (a rebase's exec)
    must not redirect the git cmem starts. Auth and ssh settings pass through."""
    mine, other = repo_at(tmp_path / "mine"), repo_at(tmp_path / "other")
    monkeypatch.setenv("GIT_DIR", str(other.gitdir))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other.gitdir / "index"))
    monkeypatch.setenv("GIT_SSH_COMMAND", "ssh -i key")
    env = command.no_git_env({"LC_ALL": "C"})
    assert "GIT_DIR" not in env and "GIT_INDEX_FILE" not in env
    assert env["GIT_SSH_COMMAND"] == "ssh -i key" and env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["LC_ALL"] == "C"
    done = command.run_text("-C", str(mine.workdir), "rev-parse", "--absolute-git-dir")
    assert done.returncode == 0 and Path(done.stdout.strip()) == mine.gitdir.resolve()
