"""`cmem purge`: a session, a file or a secret out of all history, on two devices and a remote.

Memory repositories are built by the real hooks (SessionEnd on corpus transcripts) and the
installed `cmem`; the remote is a bare repository. The secret is one no redaction rule knows
(an internal password), which is how a secret ends up in a mirror in the first place. Results are
read with the git CLI: every object (`git cat-file --batch-all-objects --batch`), every file
under .git, `git fsck --strict`, `git status --porcelain`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import Project, git
from servers import bare_repository
from test_sync import (  # noqa: F401
    SPOTTER,
    Device,
    append,
    assert_healthy,
    desktop,
    laptop,
    pair,
    quiet,
    session_id,
    stored,
    trailers,
    wait_background,
)

SECRET = "hunter2-internal-XYZ-7731"
MARKER = b"[REDACTED:purged]"


def secret_line(sid: str) -> bytes:
    record = {"type": "user", "sessionId": sid, "uuid": f"{sid[:8]}-secret",
              "timestamp": "2026-11-20T10:00:00.000Z",
              "message": {"role": "user", "content": f"the staging db password is {SECRET}, "
                          "use it for the migration"}}
    return json.dumps(record).encode() + b"\n"


def backed_up(device: Device, name: str, source: str, secret: bool) -> tuple[str, bytes]:
    """A session written as Claude Code writes it, backed up by the real SessionEnd hook."""
    sid = session_id(name)
    data = (SPOTTER / source).read_bytes() + (secret_line(sid) if secret else b"")
    append(device.claude_folder / f"{sid}.jsonl", data)
    quiet(device.hook("SessionEnd", sid))
    wait_background(device)
    return sid, data


def objects_holding(folder: Path, needle: bytes) -> int:
    """Objects of the repository (reachable or not, loose or packed) whose bytes hold it."""
    done = subprocess.run(["git", "-C", str(folder), "cat-file", "--batch-all-objects",
                           "--batch"], capture_output=True, check=True)
    return done.stdout.count(needle)


def reachable_holding(folder: Path, needle: bytes) -> int:
    listed = git(folder, "rev-list", "--objects", "--all", "--reflog")
    names = "".join(line.split()[0] + "\n" for line in listed.splitlines() if line)
    done = subprocess.run(["git", "-C", str(folder), "cat-file", "--batch"],
                          input=names.encode(), capture_output=True, check=True)
    return done.stdout.count(needle)


def files_holding(gitdir: Path, needle: bytes) -> list[str]:
    return [str(p) for p in gitdir.rglob("*") if p.is_file() and needle in p.read_bytes()]


def assert_gone(folder: Path, gitdir: Path) -> None:
    assert objects_holding(folder, SECRET.encode()) == 0
    assert files_holding(gitdir, SECRET.encode()) == []


def test_purge_of_a_secret_on_two_devices(tmp_path: Path, laptop: Device,
                                          desktop: Device) -> None:
    bare = bare_repository(tmp_path / "memory.git")
    pair(laptop, desktop, str(bare))
    leaked, original = backed_up(laptop, "leaked", "tool_heavy.jsonl", secret=True)
    desktop.ok("doc", "save", "--title", "meanwhile", input=b"# Meanwhile\n\nother work\n")
    other, _ = backed_up(laptop, "other", "short.jsonl", secret=False)
    desktop.ok("sync")  # a merge of the two devices, after the secret came in
    laptop.ok("sync")
    assert objects_holding(bare, SECRET.encode()) > 0
    # The desktop's own commit after the shared history, not pushed yet, holds it too.
    desktop.ok("doc", "save", "--title", "migration notes",
               input=f"# Migration\n\nOn staging we log in with {SECRET} for now.\n".encode())
    untouched = laptop.git("rev-parse", f"HEAD:transcripts/{other}").strip()
    before = laptop.git("rev-list", "--reverse", "HEAD").split()
    merges = laptop.git("rev-list", "--merges", "HEAD").split()

    done = laptop.run("purge", "--secret", "-", "--yes", "--json", input=SECRET.encode() + b"\n")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["pushed"] and report["matches"] >= 1 and report["sessions"] == [leaked]
    assert SECRET not in done.stdout.decode() + done.stderr.decode()

    # Laptop: nothing left anywhere under .git, other session byte-identical, history kept.
    assert_gone(laptop.memory, laptop.memory / ".git")
    assert laptop.git("rev-parse", f"HEAD:transcripts/{other}").strip() == untouched
    assert stored(laptop.memory, leaked) == original.replace(SECRET.encode(), MARKER)
    after = laptop.git("rev-list", "--reverse", "HEAD~1").split()
    first = before.index(report["first_rewritten"])
    assert after[:first] == before[:first] and len(after) == len(before)
    assert set(merges) & set(before[first:]), "no merge in the rewritten part"
    assert len(laptop.git("rev-list", "--merges", "HEAD").split()) == len(merges)
    purge_trailers = trailers(laptop.memory)
    assert purge_trailers["Cmem-Event"] == "purge"
    assert purge_trailers["Cmem-Purge-Of"] == before[-1]
    assert purge_trailers["Cmem-Purged"].startswith("secret sha256:")
    assert_healthy(laptop)

    # The remote holds the rewritten history only.
    assert git(bare, "rev-parse", "main").strip() == laptop.head()
    git(bare, "gc", "--prune=now", "--quiet")
    assert objects_holding(bare, SECRET.encode()) == 0

    # The desktop follows: its own unpushed document is purged too, nothing comes back.
    desktop.ok("sync")
    assert_gone(desktop.memory, desktop.memory / ".git")
    assert desktop.git("rev-parse", f"HEAD:transcripts/{other}").strip() == untouched
    assert laptop.head() in desktop.git("rev-list", "HEAD").split()
    docs = desktop.git("ls-tree", "-r", "--name-only", "HEAD", "sessions").split()
    saved = [d for d in docs if d.endswith("migration-notes.md")]
    assert saved and MARKER in (desktop.memory / saved[0]).read_bytes()
    assert_healthy(desktop)
    laptop.ok("sync")
    assert laptop.tree() == desktop.tree()
    assert_gone(laptop.memory, laptop.memory / ".git")
    git(bare, "gc", "--prune=now", "--quiet")
    assert objects_holding(bare, SECRET.encode()) == 0
    assert_healthy(laptop)


def test_a_purge_kept_local_is_not_undone_by_the_next_sync(tmp_path: Path,
                                                            laptop: Device) -> None:
    bare = bare_repository(tmp_path / "memory.git")
    laptop.ok("remote", "add", "origin", str(bare))
    backed_up(laptop, "leaked-3", "short.jsonl", secret=True)
    laptop.ok("sync")
    remote_tip = git(bare, "rev-parse", "main").strip()
    assert laptop.ok("purge", "--secret", SECRET, "--yes", "--no-push")
    assert_gone(laptop.memory, laptop.memory / ".git")
    done = laptop.run("sync")
    assert done.returncode == 1 and b"would bring back what was purged" in done.stderr
    assert b"--force-with-lease" in done.stderr
    assert git(bare, "rev-parse", "main").strip() == remote_tip
    # Fetched, so on disk until the next gc, but reachable from no ref or reflog.
    assert reachable_holding(laptop.memory, SECRET.encode()) == 0
    assert laptop.git("rev-parse", "origin/main").strip() != remote_tip


def test_purge_of_a_session_and_a_path(laptop: Device) -> None:
    gone, _ = backed_up(laptop, "to-remove", "short.jsonl", secret=False)
    kept, _ = backed_up(laptop, "to-keep", "tool_heavy.jsonl", secret=False)
    laptop.ok("doc", "save", "--title", "private notes", input=b"# Private\n\nnothing here\n")
    kept_tree = laptop.git("rev-parse", f"HEAD:transcripts/{kept}").strip()
    first = laptop.git("rev-list", "--reverse", "HEAD").split()[0]

    assert laptop.run("purge", "--session", "ffffffff", "--yes").returncode == 2
    assert laptop.run("purge", "--path", "no/such/file.md", "--yes").returncode == 2
    missing = laptop.run("purge", "--secret", "never-written-anywhere", "--yes")
    assert missing.returncode == 1 and b"nothing to purge" in missing.stderr

    done = laptop.run("purge", "--session", gone[:8], "--yes")
    assert done.returncode == 0, done.stderr
    assert laptop.git("log", "--all", "--format=%H", "--", f"transcripts/{gone}") == ""
    assert laptop.git("rev-parse", f"HEAD:transcripts/{kept}").strip() == kept_tree
    assert laptop.git("rev-list", "--reverse", "HEAD").split()[0] == first
    assert trailers(laptop.memory)["Cmem-Purged"] == f"session {gone}"
    assert_healthy(laptop)

    doc = next(d for d in laptop.git("ls-tree", "-r", "--name-only", "HEAD").split()
               if d.endswith("private-notes.md"))
    assert laptop.ok("purge", "--path", doc, "--yes", "--no-push")
    assert laptop.git("log", "--all", "--format=%H", "--", doc) == ""
    assert not (laptop.memory / doc).exists()
    assert_healthy(laptop)


def test_dry_run_writes_nothing(laptop: Device) -> None:
    sid, _ = backed_up(laptop, "dry", "short.jsonl", secret=True)
    gitdir = laptop.memory / ".git"
    snapshot = sorted((str(p), p.stat().st_mtime_ns) for p in gitdir.rglob("*") if p.is_file()
                      and p.name not in ("lock", "writing"))
    done = laptop.run("purge", "--secret", SECRET, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["dry_run"] and report["matches"] >= 1 and report["sessions"] == [sid]
    assert sorted((str(p), p.stat().st_mtime_ns) for p in gitdir.rglob("*") if p.is_file()
                  and p.name not in ("lock", "writing")) == snapshot
    assert objects_holding(laptop.memory, SECRET.encode()) > 0


def test_a_hook_committing_during_the_purge_is_kept(laptop: Device,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from cmem_git.remote import purge
    from cmem_git.remote.rewriting import Selector
    from cmem_git.repo.store import Store

    leaked, _ = backed_up(laptop, "leaked-2", "short.jsonl", secret=True)
    late = session_id("late")
    append(laptop.claude_folder / f"{late}.jsonl", (SPOTTER / "short.jsonl").read_bytes()
           + secret_line(late))
    original = Store.lock
    ran: list[bool] = []

    def lock_after_a_hook(self: Store, wait: float | None = None) -> object:
        if not ran:  # between the rewrite and the move: a hook commits on the old tip
            ran.append(True)
            quiet(laptop.hook("SessionEnd", late))
        return original(self, wait)

    monkeypatch.setattr(Store, "lock", lock_after_a_hook)
    monkeypatch.chdir(laptop.root)
    store = Store.open(laptop.memory)
    purge.purge(store, [Selector("secret", SECRET)], "laptop", None)
    assert ran
    files = laptop.git("ls-tree", "-r", "--name-only", "HEAD", "transcripts").split()
    assert any(f.startswith(f"transcripts/{late}/") for f in files)
    assert any(f.startswith(f"transcripts/{leaked}/") for f in files)
    assert MARKER in stored(laptop.memory, late)
    assert_gone(laptop.memory, laptop.memory / ".git")
    assert_healthy(laptop)


def test_help_explains(project: Project) -> None:
    from conftest import cmem

    done = cmem("purge", "--help", cwd=project.root)
    assert done.returncode == 0
    assert b"--force-with-lease" in done.stdout and b"--secret" in done.stdout


def test_a_secret_written_with_json_escapes_is_found(laptop: Device) -> None:
    secret = 'q"uoted\\internal-9911'
    sid = session_id("escaped")
    record = {"type": "user", "sessionId": sid, "message": {"role": "user",
                                                            "content": f"key is {secret}"}}
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes()
           + json.dumps(record).encode() + b"\n")
    quiet(laptop.hook("SessionEnd", sid))
    escaped = json.dumps(secret)[1:-1].encode()
    assert objects_holding(laptop.memory, escaped) > 0
    done = laptop.run("purge", "--secret", "-", "--yes", input=secret.encode())
    assert done.returncode == 0, done.stderr
    assert objects_holding(laptop.memory, escaped) == 0
    json.loads(stored(laptop.memory, sid).splitlines()[-1])  # still a JSON record
    assert_healthy(laptop)


def test_a_cleanup_cut_short_is_finished_later(laptop: Device,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from cmem_git.remote import purge
    from cmem_git.remote.rewriting import Selector
    from cmem_git.repo.store import Store

    backed_up(laptop, "interrupted", "short.jsonl", secret=True)
    monkeypatch.setattr(purge, "_git", lambda store, *args: (_ for _ in ()).throw(
        KeyboardInterrupt()))
    store = Store.open(laptop.memory)
    with pytest.raises(KeyboardInterrupt):
        purge.purge(store, [Selector("secret", SECRET)], "laptop", None)
    assert (laptop.memory / ".git" / "cmem" / "purge-cleanup").exists()
    assert objects_holding(laptop.memory, SECRET.encode()) > 0  # unreachable, not yet pruned
    monkeypatch.undo()
    purge.finish_cleanup(Store.open(laptop.memory))
    assert not (laptop.memory / ".git" / "cmem" / "purge-cleanup").exists()
    assert_gone(laptop.memory, laptop.memory / ".git")
    assert_healthy(laptop)


def test_a_session_purge_is_followed_by_the_other_device(tmp_path: Path, laptop: Device,
                                                         desktop: Device) -> None:
    bare = bare_repository(tmp_path / "memory.git")
    pair(laptop, desktop, str(bare))
    gone, _ = backed_up(laptop, "private", "short.jsonl", secret=False)
    kept, _ = backed_up(laptop, "public", "tool_heavy.jsonl", secret=False)
    desktop.ok("sync")
    mine, _ = backed_up(desktop, "desktop-own", "subagent.jsonl", secret=False)  # pushed
    laptop.ok("sync")
    desktop.ok("doc", "save", "--title", "local only", input=b"# Local\n\nnot pushed\n")
    kept_tree = laptop.git("rev-parse", f"HEAD:transcripts/{kept}").strip()

    assert laptop.ok("purge", "--session", gone, "--yes")
    desktop.ok("sync")
    laptop.ok("sync")
    for device in (laptop, desktop):
        assert device.git("log", "--all", "--format=%H", "--", f"transcripts/{gone}") == ""
        assert device.git("rev-parse", f"HEAD:transcripts/{kept}").strip() == kept_tree
        files = device.git("ls-tree", "-r", "--name-only", "HEAD").split()
        assert any(f.startswith(f"transcripts/{mine}/") for f in files)
        assert any(f.endswith("local-only.md") for f in files)
        assert_healthy(device)
    assert laptop.tree() == desktop.tree()
    assert git(bare, "rev-parse", "main").strip() == laptop.head()


def test_a_device_that_never_saw_the_secret_just_merges(tmp_path: Path, laptop: Device,
                                                        desktop: Device) -> None:
    bare = bare_repository(tmp_path / "memory.git")
    pair(laptop, desktop, str(bare))
    desktop.ok("doc", "save", "--title", "before", input=b"# Before\n\nwritten offline\n")
    backed_up(laptop, "leaked-4", "short.jsonl", secret=True)  # pushed in the background
    assert laptop.ok("purge", "--secret", SECRET, "--yes")
    desktop.ok("sync")
    assert laptop.head() in desktop.git("rev-parse", "HEAD^@").split()  # an ordinary merge
    assert_gone(desktop.memory, desktop.memory / ".git")
    assert_healthy(desktop)


def test_a_memory_file_holding_the_secret_is_rewritten_on_disk(laptop: Device) -> None:
    backed_up(laptop, "leaked-5", "short.jsonl", secret=True)
    context = laptop.memory / "active-context.md"
    context.write_text(context.read_text() + f"\nstaging login: {SECRET}\n")  # not committed
    assert laptop.ok("purge", "--secret", SECRET, "--yes")
    assert SECRET not in context.read_text() and MARKER.decode() in context.read_text()
    assert_gone(laptop.memory, laptop.memory / ".git")
    assert_healthy(laptop)
