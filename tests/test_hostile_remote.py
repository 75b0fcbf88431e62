"""A remote is somebody else's data: nothing it sends is written outside .claude/memory.

Each hostile commit is made the way an attacker would: raw tree objects written with
`git hash-object --literally` into the served bare repository, on top of the history the
victim pushed, then served by a real `git daemon` on 127.0.0.1 (servers.py). The victim runs
`cmem sync`, `cmem status` and the SessionStart hook as a user would. Afterwards: the sync
failed naming the commit, no file appeared or changed outside the memory folder (the
project, HOME, and the folder an absolute name points at are fingerprinted before and after),
the local branch is where it was, and the repository is sound.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
from servers import GitDaemon
from test_sync import Device, context_of, daemon, git_at, laptop, remote_repository, served  # noqa: F401 - fixtures

GIB = 1024 ** 3


# ---------------------------------------------------------------- raw objects


def raw_tree(repo: Path, entries: list[tuple[str, bytes, str]]) -> str:
    """A tree object written as bytes, bypassing every name check git or libgit2 makes."""
    key = lambda e: e[1] + (b"/" if e[0] == "40000" else b"")  # noqa: E731 - git's order
    raw = b"".join(mode.encode() + b" " + name + b"\0" + bytes.fromhex(sha)
                   for mode, name, sha in sorted(entries, key=key))
    return git(repo, "hash-object", "-t", "tree", "--literally", "-w", "--stdin", data=raw)


def git(repo: Path, *args: str, data: bytes | None = None) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], input=data, capture_output=True,
                          check=True)
    return done.stdout.decode().strip()


def blob(repo: Path, data: bytes) -> str:
    return git(repo, "hash-object", "-w", "--stdin", data=data)


def big_blob(repo: Path, size: int) -> str:
    """A blob of `size` zero bytes, hashed from a sparse file (no disk spent on the input)."""
    source = repo / "zeros"
    with open(source, "wb") as handle:
        handle.truncate(size)
    try:
        return git(repo, "-c", "core.compression=1", "hash-object", "-w", str(source))
    finally:
        source.unlink()


def entries_of(repo: Path, rev: str) -> list[tuple[str, bytes, str]]:
    out = subprocess.run(["git", "-C", str(repo), "ls-tree", "-z", rev], capture_output=True,
                         check=True).stdout
    found = []
    for item in out.split(b"\0")[:-1]:
        meta, name = item.split(b"\t", 1)
        mode, _, sha = meta.decode().split()
        found.append((mode.lstrip("0") if mode != "040000" else "40000", name, sha))
    return found


def hostile_entry(repo: Path, case: str, outside: Path) -> tuple[str, bytes, str]:
    """One tree entry of the class `case`, aimed at files outside the memory folder."""
    if case == "huge":
        return "100644", b"huge.md", big_blob(repo, GIB)
    if case == "gitlink":
        return "160000", b"vendor", git(repo, "rev-parse", "main")
    if case in ("absolute", "drive", "symlink"):
        name = {"absolute": str(outside / "pwned").encode(), "drive": b"C:pwned",
                "symlink": b"notes.md"}[case]
        target = str(outside / "pwned").encode() if case == "symlink" else b"pwned\n"
        return "120000" if case == "symlink" else "100644", name, blob(repo, target)
    if case == "dotdot":
        return "40000", b"..", raw_tree(repo, [("100644", b"settings.local.json", blob(
            repo, b'{"hooks": {"SessionStart": "touch pwned"}}'))])
    hooks = raw_tree(repo, [("100644", b"pre-push", blob(repo, b"#!/bin/sh\ntouch pwned\n"))])
    config = blob(repo, b"[core]\n\tpager = touch pwned\n")
    dotgit = raw_tree(repo, [("40000", b"hooks", hooks), ("100644", b"config", config)])
    return "40000", {"dotgit": b".git", "DOTGIT": b".GIT", "dotgit-space": b".git "}[case], dotgit


def hostile_commit(bare: Path, case: str, outside: Path) -> str:
    """A commit on the remote's main, on top of what is there, adding one hostile entry."""
    head = git(bare, "rev-parse", "main")
    tree = raw_tree(bare, entries_of(bare, "main") + [hostile_entry(bare, case, outside)])
    commit = git(bare, "commit-tree", tree, "-p", head, "-m", f"evil: {case}")
    git(bare, "update-ref", "refs/heads/main", commit)
    return commit


# ---------------------------------------------------------------- what may change


def fingerprint(*folders: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file and link under `folders`, outside the `skip` folders."""
    found = {}
    for folder in folders:
        for path in [folder, *folder.rglob("*")] if folder.exists() else []:
            if any(path == s or s in path.parents for s in skip):
                continue
            info = path.lstat()
            found[str(path)] = (info.st_size, info.st_mtime_ns if not path.is_dir() else 0)
    return found


def outside_memory(device: Device, outside: Path) -> dict[str, tuple[int, int]]:
    return fingerprint(device.root, device.project.home, outside,
                       skip=(device.memory, device.root / ".git"))


CASES = ["dotdot", "dotgit", "DOTGIT", "dotgit-space", "absolute", "drive", "symlink", "gitlink",
         "huge"]


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    yield folder
    assert not (folder / "pwned").exists()


@pytest.mark.parametrize("case", CASES)
def test_a_hostile_remote_writes_nothing_outside_memory(tmp_path: Path, laptop: Device,
                                                         daemon: GitDaemon, outside: Path,
                                                         case: str) -> None:
    bare = remote_repository(tmp_path)
    laptop.ok("remote", "add", "origin", daemon.url("memory.git"))
    laptop.ok("sync")
    evil = hostile_commit(bare, case, outside)
    head, before = laptop.head(), outside_memory(laptop, outside)

    done = laptop.run("sync")
    error = done.stderr.decode()
    assert done.returncode == 1, (done.stdout, error)
    assert evil in error and "refused" in error, error
    assert outside_memory(laptop, outside) == before
    assert_intact(laptop, head, evil)

    status = laptop.run("status")
    assert status.returncode == 0, status.stderr
    started = context_of(laptop.hook("SessionStart", "6f1c2a52-0000-4000-8000-00000000beef",
                                     source="startup"))
    assert "refused" in started.get("systemMessage", ""), started
    assert outside_memory(laptop, outside) == before
    assert_intact(laptop, head, evil)
    assert git_at(bare, "rev-parse", "main").strip() == evil  # nothing was pushed over it


def assert_intact(device: Device, head: str, evil: str) -> None:
    """The branch is where it was (or moved by the hook's own commit, never to the hostile
    side), the files match it, and no ref reaches the hostile commit."""
    assert device.git("merge-base", "--is-ancestor", head, "HEAD") == ""
    assert device.git("status", "--porcelain") == ""
    assert device.git("fsck", "--connectivity-only", "--no-dangling") == ""
    assert git_at(device.memory, "for-each-ref", "--contains", evil, check=False) == ""
    assert not (device.memory / "notes.md").exists() and not (device.memory / "vendor").exists()


def test_the_next_command_repairs_a_poisoned_branch_without_writing_outside(
        laptop: Device, outside: Path) -> None:
    """A repository that already holds a hostile commit (made by an older cmem, or by hand)
    and the flag that makes the next cmem bring the working files up to date: that repair
    writes only ordinary paths, inside the memory folder."""
    repo = laptop.memory
    for case in ("dotdot", "absolute", "dotgit"):
        head = laptop.head()
        tree = raw_tree(repo, entries_of(repo, "HEAD") + [hostile_entry(repo, case, outside)])
        git(repo, "update-ref", "refs/heads/main", git(repo, "commit-tree", tree, "-p", head,
                                                       "-m", f"by hand: {case}"))
        (repo / ".git" / "cmem" / "unsynced").touch()
        before = outside_memory(laptop, outside)
        assert laptop.run("status").returncode == 0
        assert outside_memory(laptop, outside) == before
        settings = laptop.root / ".claude" / "settings.local.json"  # cmem init's own hooks
        assert not settings.exists() or b"pwned" not in settings.read_bytes()
        assert not (repo / ".git" / "hooks" / "pre-push").exists()


# ---------------------------------------------------------------- the checks themselves


@pytest.mark.parametrize("case", CASES[:-1])
def test_intake_refuses_each_class_even_when_git_let_it_in(tmp_path: Path, outside: Path,
                                                             case: str) -> None:
    """The second line behind git's own object check: the same objects, put straight into
    the local repository (as a git without transfer.fsckObjects would)."""
    from cmem_git.git import intake

    repo_path = tmp_path / "repo"
    pygit2.init_repository(str(repo_path), initial_head="main")
    ours = blob(repo_path, b"ours\n")
    base = git(repo_path, "commit-tree", raw_tree(repo_path, [("100644", b"a.md", ours)]),
               "-m", "base")
    git(repo_path, "update-ref", "refs/heads/main", base)
    tree = raw_tree(repo_path, [("100644", b"a.md", ours),
                                hostile_entry(repo_path, case, outside)])
    evil = git(repo_path, "commit-tree", tree, "-p", base, "-m", "evil")
    repo = pygit2.Repository(str(repo_path))
    with pytest.raises(intake.UntrustedCommit) as refused:
        intake.check(repo, "origin", pygit2.Oid(hex=evil), pygit2.Oid(hex=base))
    assert evil in str(refused.value)
    intake.check(repo, "origin", pygit2.Oid(hex=base), None)  # the good commit passes


def test_intake_refuses_a_blob_over_the_limit(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from cmem_git.git import intake

    repo_path = tmp_path / "repo"
    pygit2.init_repository(str(repo_path), initial_head="main")
    tree = raw_tree(repo_path, [("100644", b"big.md", blob(repo_path, b"x" * 5000))])
    commit = git(repo_path, "commit-tree", tree, "-m", "big")
    monkeypatch.setattr(intake, "MAX_BLOB", 4096)
    with pytest.raises(intake.UntrustedCommit, match="over cmem's limit"):
        intake.check(pygit2.Repository(str(repo_path)), "origin", pygit2.Oid(hex=commit), None)


@pytest.mark.parametrize("relative", ["../x", "a/../../x", ".git/config", ".GIT/hooks/x",
                                      "/etc/x", "a//b", "", "C:x", "a\\..\\x", ".gitattributes"])
def test_sandbox_writes_only_ordinary_paths_inside(tmp_path: Path, relative: str) -> None:
    from cmem_git.git import sandbox

    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(sandbox.OutsideFolder):
        sandbox.write(root, relative, b"x")
    assert [p.name for p in tmp_path.rglob("*")] == ["root"]


def test_sandbox_never_writes_through_a_symlinked_folder(tmp_path: Path) -> None:
    from cmem_git.git import sandbox

    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    root.mkdir()
    elsewhere.mkdir()
    (root / "sessions").symlink_to(elsewhere)
    with pytest.raises(sandbox.OutsideFolder, match="symbolic link"):
        sandbox.write(root, "sessions/x.md", b"x")
    assert list(elsewhere.iterdir()) == []
    assert sandbox.write(root, "ok/x.md", b"x") == root.resolve() / "ok" / "x.md"


def test_no_git_hook_runs_on_sync(tmp_path: Path, laptop: Device, daemon: GitDaemon,
                                   outside: Path) -> None:
    """Hooks in the memory repository (however they got there) are never run by a fetch or
    push cmem makes."""
    remote_repository(tmp_path)
    laptop.ok("remote", "add", "origin", daemon.url("memory.git"))
    for name in ("pre-push", "reference-transaction", "post-checkout", "post-merge"):
        hook = laptop.memory / ".git" / "hooks" / name
        hook.write_text(f"#!/bin/sh\ntouch {outside / 'pwned'}\n")
        hook.chmod(0o755)
    laptop.ok("sync")
    assert git_at(laptop.memory, "ls-remote", daemon.url("memory.git"), "main").split()[0] \
        == laptop.head()
