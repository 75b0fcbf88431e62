"""`cmem search` (issue 7): everything history holds, including what Claude Code deleted.

Sessions are corpus transcripts with new ids (test_import's helpers), taken in with `cmem import`
as a user would, then changed the ways that make the tip forget: a file deleted from the
projects folder (it stays in the tip, but only history has its rewritten version) and a
transcript rewritten. Commit times are pinned in process where --since needs two eras.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pygit2
import pytest
from conftest import Project, cmem
from test_import import make_session, user_line

from cmem_git.capture import checkpoint
from cmem_git.read import matching, search
from cmem_git.repo.store import Store

OLD = dt.datetime(2020, 5, 1, tzinfo=dt.timezone.utc).timestamp()
NEW = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc).timestamp()


def assistant_line(session_id: str, text: str, tool_input: str = "ls") -> bytes:
    record = {"type": "assistant", "sessionId": session_id, "uuid": "u-" + text[:8],
              "timestamp": "2026-01-05T10:01:00.000Z",
              "message": {"role": "assistant", "content": [
                  {"type": "text", "text": text},
                  {"type": "tool_use", "id": "toolu_1", "name": "Bash",
                   "input": {"command": tool_input}}]}}
    return json.dumps(record).encode() + b"\n"


def tool_result_line(session_id: str, output: str) -> bytes:
    record = {"type": "user", "sessionId": session_id, "uuid": "r-" + output[:8],
              "message": {"role": "user", "content": [
                  {"type": "tool_result", "tool_use_id": "toolu_1", "content": output}]}}
    return json.dumps(record).encode() + b"\n"


def append(path: Path, *lines: bytes) -> None:
    with open(path, "ab") as handle:
        handle.write(b"".join(lines))


def found(project: Project, *args: str) -> tuple[int, list[dict[str, Any]]]:
    done = cmem("search", *args, "--json", cwd=project.root)
    assert done.returncode in (0, 1), done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def history(project: Project) -> dict[str, str]:
    """Three sessions imported; the first then deleted by Claude Code, the second rewritten."""
    ids = {}
    for index, name in enumerate(["gone", "rewritten", "live"]):
        sid, _ = make_session(project.transcripts, index, 1_700_000_000 + index)
        ids[name] = sid
        append(project.transcripts / f"{sid}.jsonl",
               user_line(sid, f"please find the zebra-{name} needle"),
               assistant_line(sid, f"Claude says zebra-{name} back", f"grep zebra-{name}"),
               tool_result_line(sid, f"zebra-{name} found in 3 files"))
    assert cmem("import", cwd=project.root).returncode == 0
    (project.transcripts / f"{ids['gone']}.jsonl").unlink()
    rewritten = project.transcripts / f"{ids['rewritten']}.jsonl"
    rewritten.write_bytes(rewritten.read_bytes().replace(b"zebra-rewritten needle",
                                                         b"something else"))
    append(project.transcripts / f"{ids['live']}.jsonl", user_line(ids["live"], "later words"))
    assert cmem("import", cwd=project.root).returncode == 0
    return ids


def test_finds_a_session_claude_code_deleted(project: Project, history: dict[str, str]) -> None:
    assert not (project.transcripts / f"{history['gone']}.jsonl").exists()
    code, matches = found(project, "zebra-gone needle")
    assert code == 0 and len(matches) == 1
    match = matches[0]
    assert match["session"] == history["gone"] and match["kind"] == "user"
    assert match["file"] == f"transcripts/{history['gone']}/main.jsonl"
    assert "please find the zebra-gone needle" in match["context"]
    assert match["match"] == "zebra-gone needle" and match["timestamp"].startswith("2026-01-05")
    assert match["text"] == "please find the zebra-gone needle"


def test_finds_a_version_that_was_later_rewritten(project: Project,
                                                  history: dict[str, str]) -> None:
    show = project.git("show", f"HEAD:transcripts/{history['rewritten']}/main.jsonl", check=False)
    assert "zebra-rewritten needle" not in show
    code, matches = found(project, "zebra-rewritten needle")
    assert code == 0 and [m["session"] for m in matches] == [history["rewritten"]]


def test_each_record_once_though_its_chunk_was_stored_again(project: Project,
                                                            history: dict[str, str]) -> None:
    """The live session's last chunk was rewritten by the append: its old lines are in two
    blobs, and are shown once, with the time of the commit that first stored them."""
    code, matches = found(project, "zebra-live")
    assert code == 0
    # one row per record and kind: the reply's text, its tool call, the tool's result
    assert sorted(m["kind"] for m in matches) == ["assistant", "tool", "tool", "user"]
    assert len({m["commit"] for m in matches}) == 1


def test_role_filter(project: Project, history: dict[str, str]) -> None:
    for role, expected in (("user", ["please find"]), ("assistant", ["Claude says"]),
                           ("tool", ["grep zebra-live", "found in 3 files"])):
        code, matches = found(project, "zebra-live", "--role", role)
        assert code == 0 and {m["kind"] for m in matches} == {role}
        assert sorted(e for e in expected for m in matches if e in m["context"]) == \
            sorted(expected), role


def test_session_filter(project: Project, history: dict[str, str]) -> None:
    code, matches = found(project, "zebra", "--session", history["live"])
    assert code == 0 and {m["session"] for m in matches} == {history["live"]}
    code, all_matches = found(project, "zebra")
    assert {m["session"] for m in all_matches} == set(history.values())


def test_no_match_exits_1_like_grep(project: Project, history: dict[str, str]) -> None:
    done = cmem("search", "no such words anywhere", cwd=project.root)
    assert done.returncode == 1 and done.stdout == b""
    done = cmem("search", "zebra-gone", "--role", "assistant", "--session", history["live"],
                cwd=project.root)
    assert done.returncode == 1


def test_text_output(project: Project, history: dict[str, str]) -> None:
    done = cmem("search", "ZEBRA-GONE NEEDLE", "-i", cwd=project.root)
    assert done.returncode == 0
    line = done.stdout.decode().strip()
    assert line.startswith(history["gone"][:8]) and " user " in line
    assert "main.jsonl:" in line and "zebra-gone needle" in line and "\x1b[" not in line


def test_regex_and_a_bad_regex(project: Project, history: dict[str, str]) -> None:
    code, matches = found(project, r"zebra-(gone|live) needle", "--regex")
    assert code == 0 and {m["session"] for m in matches} == {history["gone"], history["live"]}
    done = cmem("search", "zebra-(", "--regex", cwd=project.root)
    assert done.returncode == 1 and b"invalid regular expression" in done.stderr


def test_since_uses_when_cmem_stored_it(project: Project, history: dict[str, str]) -> None:
    code, _ = found(project, "zebra", "--since", "2999-01-01")
    assert code == 1
    code, matches = found(project, "zebra", "--since", "1 hour ago")
    assert code == 0 and matches


# --- in process, with pinned commit times ---------------------------------------------------

class Clock:
    """Commits at a chosen time: Store.signature is where cmem gets its committer."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = OLD
        monkeypatch.setattr(Store, "signature",
                            lambda store: pygit2.Signature("t", "t@example.com", int(self.now), 0))


def take(store: Store, sid: str, path: Path) -> None:
    checkpoint.take(store, checkpoint.Request("import", sid, path, "laptop"))


def run(store: Store, pattern: str, **options: Any) -> list[search.Match]:
    return list(search.search(store, search.Query(pattern, **options)))


@pytest.fixture
def store(project: Project) -> Store:
    return Store.open(project.memory)


def test_since_skips_lines_stored_before_even_in_a_newer_chunk(
        project: Project, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(monkeypatch)
    sid, _ = make_session(project.transcripts, 0, 1_700_000_000)
    path = project.transcripts / f"{sid}.jsonl"
    append(path, user_line(sid, "needle from long ago"))
    take(store, sid, path)
    clock.now = NEW
    append(path, user_line(sid, "needle of today"))
    take(store, sid, path)
    every = run(store, "needle")
    assert [(m.context, m.stored) for m in every] == [
        ("needle from long ago", int(OLD)), ("needle of today", int(NEW))]
    recent = run(store, "needle", since=NEW - 86400)
    assert [m.context for m in recent] == ["needle of today"]


def test_documents_and_memory_files_are_searched(project: Project, store: Store) -> None:
    (project.memory / "active-context.md").write_text("# Active Context\nworking on the "
                                                      "frobnicator rewrite\n")
    request = checkpoint.Request("import", None, None, "laptop",
                                 files={"sessions/session-x.md": b"# notes\nfrobnicator plan\n"})
    checkpoint.take(store, request)
    (project.memory / "active-context.md").write_text("# Active Context\nsomething else\n")
    checkpoint.take(store, checkpoint.Request("import", None, None, "laptop"))
    matches = run(store, "frobnicator")
    assert sorted((m.file, m.role, m.line) for m in matches) == [
        ("active-context.md", "document", 2), ("sessions/session-x.md", "document", 2)]
    assert run(store, "frobnicator", role="user") == []  # documents have no role


def test_json_escapes_and_non_ascii(project: Project, store: Store) -> None:
    sid, _ = make_session(project.transcripts, 0, 1_700_000_000)
    path = project.transcripts / f"{sid}.jsonl"
    append(path, user_line(sid, 'he said "ship it"\nthen \\o/ left'),
           user_line(sid, "Été à Zürich"))
    take(store, sid, path)
    assert [m.role for m in run(store, 'said "ship it"\nthen \\o/')] == ["user"]
    assert len(run(store, "ÉTÉ À ZÜRICH", ignore_case=True)) == 1
    assert run(store, "ÉTÉ À ZÜRICH") == []


def test_ascii_escaped_json_is_found_too(project: Project, store: Store) -> None:
    """Some writers escape non-ASCII as \\uXXXX (Python's json.dumps does)."""
    sid = "escaped"
    path = project.transcripts / f"{sid}.jsonl"
    path.write_bytes(json.dumps({"type": "user", "sessionId": sid,
                                 "message": {"content": "naïve café"}}).encode() + b"\n")
    assert b"\\u00ef" in path.read_bytes()
    take(store, sid, path)
    assert [m.context for m in run(store, "naïve café")] == ["naïve café"]


def test_subagents_and_tool_results(project: Project, store: Store) -> None:
    sid, files = make_session(project.transcripts, 3, 1_700_000_000)  # has subagents
    tool = project.transcripts / sid / "tool-results" / "toolu_9.txt"
    tool.parent.mkdir(parents=True)
    tool.write_bytes(b"line one\nthe quasar output\n")
    take(store, sid, project.transcripts / f"{sid}.jsonl")
    matches = run(store, "quasar")
    assert [(m.file.split("/", 2)[2], m.role, m.line) for m in matches] == [
        ("tool-results/toolu_9.txt", "tool", 2)]
    assert b"Very thorough exploration" in files["subagents/agent-a2898e3.jsonl"]
    agent = run(store, "Very thorough exploration", session=sid[:6], role="user")
    assert ("subagents/agent-a2898e3.jsonl", 1) in [(m.file.split("/", 2)[2], m.line)
                                                   for m in agent]
    assert run(store, "Very thorough exploration", session="ffff") == []


def test_an_empty_memory_finds_nothing(project: Project, store: Store) -> None:
    assert run(store, "anything") == []



def test_the_process_pool_finds_what_the_serial_scan_finds(
        project: Project, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large history is scanned by forked workers; the matches, their order and their
    times must not depend on that."""
    for index in range(6):
        sid, _ = make_session(project.transcripts, index, 1_700_000_000 + index)
        path = project.transcripts / f"{sid}.jsonl"
        append(path, user_line(sid, f"needle number {index}"))
        take(store, sid, path)
        append(path, user_line(sid, f"second needle {index}"))
        take(store, sid, path)
    serial = [(m.session, m.file, m.line, m.context, m.stored) for m in run(store, "needle")]
    monkeypatch.setattr(matching, "POOL_FROM", 1)
    pooled = [(m.session, m.file, m.line, m.context, m.stored) for m in run(store, "needle")]
    assert len(serial) == 12 and pooled == serial
    assert [m.context for m in run(store, "NEEDLE NUMBER 3", ignore_case=True)] == \
        ["needle number 3"]
