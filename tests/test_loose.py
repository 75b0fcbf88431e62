"""git/loose.py: a hook's new chunks as loose objects, compressed in a worker thread.

What it writes must be what libgit2's `create_blob` writes (same ids, same bytes, same modes),
read back by the git CLI, pass through redaction as every blob does, and leave nothing half
written when a write fails. (A hook killed at any moment of such a write:
test_concurrency.test_hook_killed_at_any_moment_leaves_a_sound_repository.)
"""

from __future__ import annotations

import os
import stat
import zlib
from pathlib import Path

import pygit2
import pytest
from conftest import git_blobs
from test_first_backup import fsck_clean

from cmem_git.capture import checkpoint
from cmem_git.errors import StorageError
from cmem_git.git.loose import LooseWriter
from cmem_git.repo.config import Config
from cmem_git.repo.store import Store

AWS_KEY = "AKIAZ7QWERTYUIOPASDF"  # the shape of an AWS access key id, not a real one


def loose_path(store: Store, oid: pygit2.Oid) -> Path:
    return store.gitdir / "objects" / str(oid)[:2] / str(oid)[2:]


def blobs() -> list[bytes]:
    chunk = b"".join(b'{"type":"user","n":%d,"text":"%s"}\n' % (n, os.urandom(40).hex().encode())
                     for n in range(4000))
    return [chunk, chunk[:1000], b"", b"\n", b"same", b"same", os.urandom(300_000)]


def test_objects_are_the_ones_create_blob_writes(tmp_path: Path) -> None:
    mine, theirs = Store.init(tmp_path / "mine"), Store.init(tmp_path / "theirs")
    data = blobs()
    writer = LooseWriter(mine.repo)
    ids = [writer.add(blob) for blob in data]
    writer.finish()
    assert ids == [theirs.repo.create_blob(blob) for blob in data]
    for oid in ids:
        written, expected = loose_path(mine, oid), loose_path(theirs, oid)
        assert zlib.decompress(written.read_bytes()) == zlib.decompress(expected.read_bytes())
        assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(expected.stat().st_mode)
        assert stat.S_IMODE(written.parent.stat().st_mode) == \
            stat.S_IMODE(expected.parent.stat().st_mode)
    assert git_blobs(mine.workdir, [str(oid) for oid in ids]) == data
    assert [mine.repo[oid].data for oid in ids] == data
    fsck_clean(mine.workdir)
    assert not [p for p in (mine.gitdir / "objects").rglob("*") if "tmp" in p.name]


def test_an_object_already_there_is_left_alone(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    oid = store.repo.create_blob(b"kept")
    before = loose_path(store, oid).stat()
    writer = LooseWriter(store.repo)
    assert writer.add(b"kept") == oid
    writer.finish()
    after = loose_path(store, oid).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_blobs_pass_the_stores_redaction(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    store.filter = checkpoint.redaction(Config(device="t"))
    writer = LooseWriter(store.repo)
    oid = writer.add(f'{{"text":"key {AWS_KEY} here"}}\n'.encode())
    writer.finish()
    stored = bytes(store.repo[oid].data)
    assert AWS_KEY.encode() not in stored and b"[REDACTED:aws-access-key]" in stored
    assert oid in store.repo.clean and store.repo.redacted[oid] == 1  # not redacted again


def test_a_failed_write_fails_finish_and_leaves_no_temp_file(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    data = b"cannot be stored"
    blocked = store.gitdir / "objects" / str(pygit2.hash(data))[:2]
    blocked.write_bytes(b"")  # a file where its fan-out folder goes: even root cannot write
    writer = LooseWriter(store.repo)
    writer.add(b"stored before")
    writer.add(data)
    writer.add(b"after a failure: not written")
    with pytest.raises(StorageError, match="could not write to"):
        writer.finish()
    assert store.repo.odb.exists(pygit2.hash(b"stored before"))
    assert not store.repo.odb.exists(pygit2.hash(b"after a failure: not written"))
    assert not [p for p in (store.gitdir / "objects").rglob("*") if "tmp" in p.name]


def test_an_abandoned_writer_stops(tmp_path: Path) -> None:
    store = Store.init(tmp_path / "mem")
    writer = LooseWriter(store.repo)
    writer.abandon()
    assert not writer._worker.is_alive()
    fsck_clean(store.workdir)


def test_without_hard_links_the_object_is_renamed_into_place(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    """Some file systems refuse hard links (EPERM): git then renames, and so does the writer."""
    def refuse(source: object, target: object) -> None:
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr(os, "link", refuse)
    store = Store.init(tmp_path / "mem")
    writer = LooseWriter(store.repo)
    oid = writer.add(b"renamed")
    writer.finish()
    assert bytes(store.repo[oid].data) == b"renamed"
    assert not [p for p in (store.gitdir / "objects").rglob("*") if "tmp" in p.name]
    fsck_clean(store.workdir)
