"""The pack writer and the background repack, against real repositories and the git CLI."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pygit2
from conftest import CORPUS, Project, git, git_blobs, payload, run_hook, stored_file
from test_first_backup import fsck_clean
from test_sync import MIB, synthetic

from cmem_git.capture import checkpoint
from cmem_git.git import packing
from cmem_git.git.pack import PackWriter
from cmem_git.git.packing import UNDELTIFIED
from cmem_git.repo.store import Store

SID = "7a1b2c3d-4e5f-4a6b-8c7d-8e9fa0b1c2d3"


def objects(folder: Path) -> dict[str, int]:
    found = {}
    for line in git(folder, "count-objects", "-v").splitlines():
        key, value = line.split(": ")
        found[key] = int(value)
    return found


def stop_commits(store: Store, path: Path, count: int) -> bytes:
    """`count` Stop commits, each after a few KB of records, as a long session makes them."""
    lines = (CORPUS / "spotter" / "tool_heavy.jsonl").read_bytes().splitlines(keepends=True)
    data = b""
    for number in range(count):
        data += b'{"n":%d,' % number + lines[number % len(lines)].lstrip(b"{")
        path.write_bytes(data)
        checkpoint.take(store, checkpoint.Request("stop", SID, path, "dev"))
    return data


def test_the_pack_writer_writes_what_git_reads(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    blobs = [os.urandom(64) * n for n in range(1, 200)] + [b"", b"\n", b"same", b"same"]
    writer = PackWriter(store.repo, workers=3)
    ids = [writer.add(blob) for blob in blobs]
    writer.finish()
    assert ids == [pygit2.hash(blob) for blob in blobs]
    assert git_blobs(store.workdir, [str(oid) for oid in ids]) == blobs
    (pack,) = (store.workdir / ".git" / "objects" / "pack").glob("*.idx")
    verified = git(store.workdir, "verify-pack", "-v", str(pack))
    assert "non delta: 202 objects" in verified, "one entry per distinct blob"
    fsck_clean(store.workdir)


def test_an_abandoned_pack_leaves_nothing(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    writer = PackWriter(store.repo)
    oid = writer.add(b"never committed")
    writer.abandon()
    assert not store.repo.odb.exists(oid)
    assert not list((store.workdir / ".git" / "cmem" / "tmp").iterdir())
    assert not list((store.workdir / ".git" / "objects" / "pack").glob("*.pack"))


def test_the_temp_pack_of_a_writer_that_died_is_cleared_even_unreaped(tmp_path: Path) -> None:
    """A hook killed with its parent is reparented to init, which in a container may never
    reap it: the zombie still answers kill(pid, 0), yet its temp pack is dead."""
    store = Store.init(tmp_path / "mem")
    temp = store.workdir / ".git" / "cmem" / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    zombie = subprocess.Popen(["true"])  # never waited for until the end: a zombie
    while Path(f"/proc/{zombie.pid}/stat").read_bytes().rpartition(b")")[2].split()[0] != b"Z":
        time.sleep(0.01)
    live = temp / f"pack-{os.getpid()}-1"
    dead = temp / f"pack-{zombie.pid}-1"
    for path in (live, dead):
        path.write_bytes(b"PACK")
    PackWriter(store.repo).abandon()
    assert not dead.exists() and live.exists()
    zombie.wait()


def test_many_loose_objects_get_packed_in_the_background(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    path = tmp_path / f"{SID}.jsonl"
    data = stop_commits(store, path, 40)
    before = objects(store.workdir)
    assert before["count"] >= 150 and before["packs"] == 0
    assert not packing.start_if_due(store.gitdir, loose_limit=10 ** 6), "not due: nothing runs"
    assert packing.start_if_due(store.gitdir, loose_limit=50)
    assert packing.wait(store.gitdir, 120), "the background repack finished"
    after = objects(store.workdir)
    assert after["packs"] == 1 and after["count"] == 0, after
    assert after["size-pack"] < before["size"] / 3, (before, after)  # deltas between versions
    fsck_clean(store.workdir)
    assert stored_file(store.workdir, SID) == data
    assert git(store.workdir, "status", "--porcelain") == ""


def test_a_full_repack_keeps_objects_no_commit_names_yet(tmp_path: Path) -> None:
    """A hook may have written a pack for a commit it has not made yet."""
    store = Store.init(tmp_path / "mem")
    stop_commits(store, tmp_path / f"{SID}.jsonl", 3)
    writer = PackWriter(store.repo)
    pending = writer.add(b"a chunk whose commit is still being built\n")
    writer.finish()
    packing.repack(store.gitdir, full=True)
    assert store.repo.odb.exists(pending)
    fsck_clean(store.workdir)


def test_a_hook_starts_the_repack_when_it_is_due(project: Project) -> None:
    store = Store.open(project.memory)
    path = project.transcripts / f"{SID}.jsonl"
    stop_commits(store, path, 5)
    # Past the limit: the next hook (a real process) starts the detached repack.
    for index in range(packing.LOOSE_LIMIT + 100):
        store.repo.create_blob(b"filler %d\n" % index)
    assert packing.due(store.gitdir)
    done = run_hook(project, "Stop", payload("Stop", SID, path, project.root))
    assert done.returncode == 0 and done.stdout == b"", done.stdout
    assert packing.wait(store.gitdir, 120)
    assert objects(project.memory)["packs"] >= 1
    fsck_clean(project.memory)
    assert git(project.memory, "status", "--porcelain") == ""


def test_a_first_backups_pack_is_redone_with_deltas(project: Project) -> None:
    """The pack a first backup writes holds whole blobs, which git would push whole: the
    background repack redoes it with deltas, and every object stays readable meanwhile."""
    data = synthetic(16 * MIB)
    path = project.transcripts / f"{SID}.jsonl"
    path.write_bytes(data)
    done = run_hook(project, "PreCompact", payload("PreCompact", SID, path, project.root))
    assert done.returncode == 0 and done.stdout == b"", done.stdout
    project.settle()
    assert not list((project.memory / ".git" / "cmem").glob(f"{UNDELTIFIED}*"))
    packed = objects(project.memory)["size-pack"] * 1024
    assert packed < len(data) / 8, f"{packed} bytes of packs for {len(data)} of transcript"
    assert stored_file(project.memory, SID) == data
    fsck_clean(project.memory)
    assert git(project.memory, "status", "--porcelain") == ""


def test_loose_objects_a_repack_cannot_pack_do_not_start_another(tmp_path: Path) -> None:
    """Unreachable loose objects stay until they are two weeks old, as in git gc."""
    store = Store.init(tmp_path / "mem")
    stop_commits(store, tmp_path / f"{SID}.jsonl", 3)
    for index in range(600):
        store.repo.create_blob(b"unreachable %d\n" % index)
    assert packing.due(store.gitdir, loose_limit=100)
    assert packing.start_if_due(store.gitdir, loose_limit=100)
    assert packing.wait(store.gitdir, 120)
    assert objects(store.workdir)["count"] >= 600, "unreachable and recent: kept loose"
    assert not packing.due(store.gitdir, loose_limit=100), "no repack that would change nothing"
    stop_commits(store, tmp_path / f"{SID}.jsonl", 30)
    assert packing.due(store.gitdir, loose_limit=100), "new loose objects count again"
