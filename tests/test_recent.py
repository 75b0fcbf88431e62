"""SessionStart's caches: answers kept by tip (recent.py) and the stat cache import fills."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import CORPUS, Project, cmem, payload, run_hook

from cmem_git.capture import checkpoint
from cmem_git.read import context
from cmem_git.repo import history, memory, recent
from cmem_git.repo.store import Store

SID = "0a1b2c3d-0000-4000-8000-000000000001"


def step(store: Store, path: Path, number: int) -> None:
    """One of a mix of commits: Stop backups, active-context edits, session documents."""
    if number % 7 == 3:
        checkpoint.take(store, checkpoint.Request(
            "document", None, None, "dev", files={f"sessions/s-{number}.md": b"# doc\n"},
            trailers=(("Cmem-Document", f"sessions/s-{number}.md"),)))
        return
    edit = (lambda text: text + b"note %d\n" % number) if number % 5 == 1 else None
    with open(path, "ab") as handle:
        handle.write(b'{"type":"user","n":%d}\n' % number)
    checkpoint.take(store, checkpoint.Request("stop", SID, path, "dev", edit_active=edit))


def history_of(folder: Path, count: int) -> tuple[Store, Path]:
    store = Store.init(folder / "mem")
    path = folder / f"{SID}.jsonl"
    path.write_bytes((CORPUS / "spotter" / "short.jsonl").read_bytes())
    for number in range(count):
        step(store, path, number)
    return store, path


def test_kept_answers_agree_with_full_walks(tmp_path: Path) -> None:
    store, path = history_of(tmp_path, 0)
    for number in range(40):
        step(store, path, number)
        tip = store.tip()
        assert tip is not None
        assert history.since_document(store.repo, tip.id) == \
            history._since_document(store.repo, tip.id, 1000), number
        assert context.last_content_change(store.repo, tip.id, memory.ACTIVE) == \
            context._last_content_change(store.repo, tip.id, memory.ACTIVE), number


def test_after_the_first_call_only_new_commits_are_read(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    store, path = history_of(tmp_path, 12)
    tip = store.tip()
    assert tip is not None
    history.since_document(store.repo, tip.id)
    context.last_content_change(store.repo, tip.id, memory.ACTIVE)
    step(store, path, 12)

    def walked(*args: object) -> None:
        raise AssertionError("walked the whole history")

    monkeypatch.setattr(history, "_since_document", walked)
    monkeypatch.setattr(context, "_last_content_change", walked)
    tip = store.tip()
    assert tip is not None
    document, after = history.since_document(store.repo, tip.id)
    assert document is not None and after[0].id == tip.id
    assert context.last_content_change(store.repo, tip.id, memory.ACTIVE) is not None


def test_a_damaged_or_foreign_cache_only_costs_a_walk(tmp_path: Path) -> None:
    store, _ = history_of(tmp_path, 6)
    tip = store.tip()
    assert tip is not None
    expected = history._since_document(store.repo, tip.id, 1000)
    folder = store.gitdir / "cmem" / "recent"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "since-1000.json").write_text(json.dumps({"tip": str(tip.parents[0].id),
                                                        "boundary": None, "after": "x"}))
    assert history.since_document(store.repo, tip.id) == expected
    (folder / "since-1000.json").write_text("not json")
    assert history.since_document(store.repo, tip.id) == expected
    (folder / "since-1000.json").write_text(json.dumps({"tip": "0" * 40}))
    assert history.since_document(store.repo, tip.id) == expected
    assert recent._load(store.repo, "since-1000") is not None


def test_import_fills_the_stat_cache_so_session_start_reads_nothing(project: Project) -> None:
    sessions = []
    for number in range(12):
        sid = f"0a1b2c3d-0000-4000-8000-{number:012d}"
        path = project.transcripts / f"{sid}.jsonl"
        path.write_bytes((CORPUS / "spotter" / "short.jsonl").read_bytes()
                         + b'{"type":"user","n":%d}\n' % number)
        sessions.append(sid)
    done = cmem("import", cwd=project.root)
    assert done.returncode == 0, done.stderr
    seen = json.loads((project.memory / ".git" / "cmem" / "seen.json").read_text())
    assert set(sessions) <= set(seen), "every imported transcript is stamped"
    # Same size and time, other bytes: only a SessionStart that reads the file would notice.
    for sid in sessions:
        path = project.transcripts / f"{sid}.jsonl"
        info = path.stat()
        path.write_bytes(path.read_bytes().replace(b"user", b"USER"))
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    head = project.git("rev-parse", "HEAD")
    hook = run_hook(project, "SessionStart", payload("SessionStart", "fresh-session-id",
                                                     project.transcripts / "none.jsonl",
                                                     project.root))
    assert hook.returncode == 0
    assert project.git("rev-parse", "HEAD") == head, "no transcript was read again"
