"""The search index (issue 15): derived from history, current after every commit, rebuilt from
anything, and safe while hooks commit and searches read at the same time.

Sessions are real corpus transcripts with new ids, committed the way Claude Code makes cmem
commit them: the hook command from settings.json run through a shell with the event's JSON on
stdin. Results are compared through `cmem search --json`, as a script would read them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import Project, cmem, payload, run_hook
from test_import import make_session, user_line
from test_search import append

from cmem_git.capture import checkpoint
from cmem_git.capture.backup import ROOT
from cmem_git.read import recall, search_index, transcript
from cmem_git.repo.store import Store

QUERIES = ["marker-", "Read", "the", "tool output", "zz"]


def found(project: Project, *args: str) -> list[dict[str, Any]]:
    done = cmem("search", *args, "--json", "-n", "0", cwd=project.root)
    assert done.returncode in (0, 1), done.stderr.decode()
    assert done.stderr == b"", done.stderr.decode()
    return json.loads(done.stdout) if done.stdout.strip() else []


def answers(project: Project) -> dict[str, list[dict[str, Any]]]:
    return {query: found(project, query) for query in QUERIES}


def index_file(project: Project) -> Path:
    return project.memory / ".git" / "cmem" / search_index.NAME


def hook(project: Project, event: str, sid: str) -> None:
    transcript = project.transcripts / f"{sid}.jsonl"
    done = run_hook(project, event, payload(event, sid, transcript, project.root))
    assert done.returncode == 0 and b"failed" not in done.stdout + done.stderr, done


def session(project: Project, index: int) -> str:
    sid, _ = make_session(project.transcripts, index, 1_700_000_000 + index)
    return sid


# --- concurrency and completeness -----------------------------------------------------------

def test_hooks_commit_while_searches_run_and_every_record_is_found(project: Project) -> None:
    sids = [session(project, index) for index in range(4)]
    errors: list[str] = []
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            done = cmem("search", "marker-", "--json", "-n", "0", cwd=project.root)
            if done.returncode not in (0, 1) or done.stderr:
                errors.append(done.stderr.decode())

    def writer(sid: str) -> None:
        for round_ in range(3):
            append(project.transcripts / f"{sid}.jsonl",
                   user_line(sid, f"marker-{sid[-4:]}-{round_} said in round {round_}"))
            hook(project, "Stop" if round_ < 2 else "SessionEnd", sid)

    readers = [threading.Thread(target=searcher) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(sid,)) for sid in sids]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    hits = found(project, "marker-")
    expected = {(sid, f"marker-{sid[-4:]}-{r} said in round {r}") for sid in sids for r in range(3)}
    assert {(h["session"], h["text"]) for h in hits} == expected
    assert project.git("status", "--porcelain") == ""
    assert "index.sqlite" not in project.git("ls-tree", "-r", "--name-only", "HEAD")


def test_every_committed_record_is_findable(project: Project) -> None:
    """Each text a record holds (user, Claude, tool call and result, summaries, subagents) is
    found at its session, file and line, by a phrase taken from it."""
    for index in range(4):
        sid = session(project, index)
        hook(project, "SessionEnd", sid)
    store = Store.open(project.memory)
    expected = list(_records(store))
    assert len(expected) > 200 and {kind for *_, kind, _ in expected} >= {
        "user", "assistant", "tool", "summary"}
    assert any("/subagents/" in file for _, file, *_ in expected)
    with search_index.current(store) as db:
        for sid, file, line, kind, text in expected:
            ask = recall.Ask(text, session=sid, kinds=(kind,), limit=None)
            places = {(h.file, h.line) for h in recall.find(db, ask)}
            assert (file, line) in places, (sid, file, line, kind, text)


def _records(store: Store) -> Any:
    """(session, file, line, kind, a phrase of 3-40 characters) for every text of every
    record in the tip, read back from git."""
    tip = store.tip()
    assert tip is not None
    for path, data in _transcripts(store.repo, tip.tree):
        sid = path.split("/")[1]
        for number, line in enumerate(data.split(b"\n"), 1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            for kind, text in transcript.pieces(record):
                phrase = text.strip()[:40].strip()
                if kind != "meta" and len(phrase) >= 3:
                    yield sid, path, number, kind, phrase


def _transcripts(repo: pygit2.Repository, tree: pygit2.Tree) -> Any:
    from cmem_git.git import chunks
    sessions = tree[ROOT]
    assert isinstance(sessions, pygit2.Tree)
    for session_tree in sessions:
        stack = [(f"{ROOT}/{session_tree.name}", repo[session_tree.id])]
        while stack:
            prefix, folder = stack.pop()
            listing = chunks.listing(repo, folder)
            if listing and prefix.endswith(".jsonl"):
                yield prefix, chunks.read_range(repo, listing)
                continue
            stack += [(f"{prefix}/{e.name}", repo[e.id]) for e in folder if e.type_str == "tree"]


# --- rebuilt from anything ------------------------------------------------------------------

@pytest.fixture
def indexed(project: Project) -> dict[str, list[dict[str, Any]]]:
    for index in range(3):
        sid = session(project, index)
        append(project.transcripts / f"{sid}.jsonl", user_line(sid, f"marker-{index} here"))
        hook(project, "SessionEnd", sid)
    before = answers(project)
    assert all(before[q] for q in QUERIES[:4]) and index_file(project).is_file()
    return before


def test_reindex_gives_identical_results(project: Project,
                                         indexed: dict[str, list[dict[str, Any]]]) -> None:
    done = cmem("search", "--reindex", cwd=project.root)
    assert done.returncode == 0, done.stderr.decode()
    assert answers(project) == indexed


@pytest.mark.parametrize("damage", ["garbage", "truncated", "deleted", "stale journal",
                                    "wrong version", "empty", "full-text pages lost"])
def test_a_damaged_index_is_rebuilt_silently(project: Project, damage: str,
                                             indexed: dict[str, list[dict[str, Any]]]) -> None:
    file = index_file(project)
    if damage == "garbage":
        file.write_bytes(os.urandom(8192))
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[:5000])
    elif damage == "deleted":
        file.unlink()
    elif damage == "stale journal":
        file.unlink()
        file.with_name(file.name + "-journal").write_bytes(os.urandom(4096))
    elif damage == "full-text pages lost":  # opens fine; only a query finds it malformed
        with sqlite3.connect(file) as db:
            db.execute("DELETE FROM fts_data WHERE id > 10")
    elif damage == "wrong version":
        with sqlite3.connect(file) as db:
            db.execute("UPDATE state SET value = '0' WHERE key = 'version'")
    else:
        file.write_bytes(b"")
    assert answers(project) == indexed  # found() also checks exit status and an empty stderr
    with sqlite3.connect(file) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_build_killed_midway_leaves_nothing_that_matters(
        project: Project, indexed: dict[str, list[dict[str, Any]]]) -> None:
    """A killed build leaves its temporary file; the index in place is the old one."""
    left = index_file(project).with_name(f"{search_index.NAME}.99999.tmp")
    left.write_bytes(b"half a database")
    assert answers(project) == indexed
    assert cmem("search", "--reindex", cwd=project.root).returncode == 0
    assert not left.exists() and answers(project) == indexed


# --- history the tip forgot, commits the index has not seen ---------------------------------

def test_a_deleted_transcript_stays_searchable(project: Project,
                                               indexed: dict[str, list[dict[str, Any]]]) -> None:
    sid = indexed["marker-"][0]["session"]
    (project.transcripts / f"{sid}.jsonl").unlink()
    assert cmem("search", "--reindex", cwd=project.root).returncode == 0
    assert [h["session"] for h in found(project, indexed["marker-"][0]["text"])] == [sid]


def test_a_session_committed_after_the_last_build_is_found_by_the_next_search(
        project: Project, indexed: dict[str, list[dict[str, Any]]]) -> None:
    inode = index_file(project).stat().st_ino
    sid = session(project, 5)
    append(project.transcripts / f"{sid}.jsonl", user_line(sid, "a late quetzal sighting"))
    store = Store.open(project.memory)
    checkpoint.take(store, checkpoint.Request("session-end", sid,
                                              project.transcripts / f"{sid}.jsonl", "laptop"))
    hits = found(project, "late quetzal")
    assert [(h["session"], h["kind"]) for h in hits] == [(sid, "user")]
    assert index_file(project).stat().st_ino == inode  # updated in place, not rebuilt
    assert found(project, "marker-") == indexed["marker-"]


def test_the_stop_hook_updates_the_index_itself(project: Project,
                                                indexed: dict[str, list[dict[str, Any]]]) -> None:
    sid = indexed["marker-"][0]["session"]
    append(project.transcripts / f"{sid}.jsonl", user_line(sid, "stop hook words"))
    hook(project, "Stop", sid)
    tip = project.git("rev-parse", "HEAD").strip()
    with sqlite3.connect(index_file(project)) as db:
        assert db.execute("SELECT value FROM state WHERE key = 'tip'").fetchone() == (tip,)


def test_rewritten_history_rebuilds_the_index(project: Project,
                                              indexed: dict[str, list[dict[str, Any]]]) -> None:
    """After history is rewritten (a purge), what it no longer holds is not found."""
    first = project.git("rev-list", "--max-parents=0", "HEAD").strip()
    project.git("update-ref", "refs/heads/main", first)
    assert found(project, "marker-") == []
    assert found(project, "Active Context")


# --- queries, in process --------------------------------------------------------------------

def test_filters_ranking_context_and_short_phrases(project: Project) -> None:
    store = Store.open(project.memory)
    sid = "s-filters"
    path = project.transcripts / f"{sid}.jsonl"
    path.write_bytes(user_line(sid, "one: the kestrel plan"))
    checkpoint.take(store, checkpoint.Request("stop", sid, path, "laptop"))
    append(path, user_line(sid, "two: the kestrel plan"), user_line(sid, "ok"))
    checkpoint.take(store, checkpoint.Request("stop", sid, path, "laptop"))
    (project.memory / "project-memory.md").write_text("# Memory\nKestrel decided: use plan B\n")
    checkpoint.take(store, checkpoint.Request("stop", None, None, "laptop"))
    with search_index.current(store) as db:
        def ask(text: str, **options: Any) -> list[recall.Hit]:
            return recall.find(db, recall.Ask(text, **options))

        ranked = ask("kestrel plan")
        assert [h.body for h in ranked] == ["two: the kestrel plan", "one: the kestrel plan"]
        assert [h.kind for h in ask("kestrel", ignore_case=True)].count("memory") == 1
        assert [h.kind for h in ask("Kestrel")] == ["memory"]  # case-sensitive by default
        assert [h.line for h in ask("kestrel", kinds=("user",))] == [2, 1]
        assert ask("kestrel", session="s-fil", limit=1)[0].line == 2
        assert ask("kestrel", session="other") == []
        assert ask("kestrel", since=ranked[0].time + 1) == []
        assert [h.line for h in ask("ok")] == [3]  # shorter than a trigram
        context = ask("two:", context=1)[0].nearby
        assert [(n.line, n.text) for n in context] == [(1, "one: the kestrel plan"), (3, "ok")]
        assert ask("kestrel", limit=1)[0].snippet == "two: the kestrel plan"


def test_an_empty_memory_finds_nothing(project: Project) -> None:
    assert found(project, "anything") == []
    done = cmem("search", "anything", cwd=project.root)
    assert done.returncode == 1 and done.stdout == b""


def test_text_output_with_context_lines(project: Project,
                                        indexed: dict[str, list[dict[str, Any]]]) -> None:
    done = cmem("search", "marker-1 here", "-C", "1", cwd=project.root)
    assert done.returncode == 0
    first, *rest = done.stdout.decode().splitlines()
    assert " user " in first and "main.jsonl:" in first and "\x1b[" not in first
    assert rest and all(line.startswith("    ") for line in rest)
