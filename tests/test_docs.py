"""Session documents and the resume workflow (issue 4), end to end.

Everything runs the installed `cmem` and the hook commands `cmem init` wrote into settings.json
as subprocesses, on real transcripts from the corpus; results are read back with the git CLI.
The fault-injection tests kill `cmem doc save` with SIGKILL at each step of a commit (objects
written, branch moved, working files half updated, index lock held) and check that the next
cmem command leaves the document and its `> Last Session Doc:` pointer both there or both
absent, in HEAD and in the working files, with a clean `git status` and `git fsck`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import CORPUS, MINIMAL_PATH, PYTHON, Project, cmem, payload, run_hook

SPOTTER = CORPUS / "spotter"
SHORT = SPOTTER / "short.jsonl"
TOOL_HEAVY = SPOTTER / "tool_heavy.jsonl"
SUBAGENT = SPOTTER / "subagent.jsonl"
COMPACT_ID = "4d5611e5-241a-462a-8d15-5122611a9569"
COMPACT = SPOTTER / f"{COMPACT_ID}.EXCERPT-compact.jsonl"
AGENT = SPOTTER / COMPACT_ID / "subagents" / "agent-a2898e3.jsonl"
CMEM_SCRIPT = Path(PYTHON).parent / "cmem"
_POINTER = re.compile(r"^> Last Session Doc: (.*)$", re.MULTILINE)
_NAME = re.compile(r"sessions/session-(\d{4}-\d\d-\d\d-\d{6})-([a-z0-9-]+)\.md")


# ---------------- reading the memory repository with the git CLI


def run_cmem(project: Project, *args: str, input: bytes | None = None,
             env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = cmem(*args, cwd=cwd or project.root, input=input,
                env={**os.environ, **(env or {})})
    assert done.returncode == 0, (args, done.returncode, done.stderr.decode())
    return done.stdout.decode()


def show(project: Project, spec: str) -> bytes | None:
    """The blob at `REV:PATH`, or None when the commit has no such file."""
    done = subprocess.run(["git", "-C", str(project.memory), "show", spec],
                          capture_output=True)
    return done.stdout if done.returncode == 0 else None


def trailers(project: Project, rev: str = "HEAD") -> dict[str, str]:
    text = project.git("log", "-1", "--format=%(trailers:only,unfold)", rev)
    return dict(line.split(": ", 1) for line in text.splitlines() if line.strip())


def head(project: Project) -> str:
    return project.git("rev-parse", "HEAD").strip()


def documents_in(project: Project, rev: str = "HEAD") -> set[str]:
    listing = project.git("ls-tree", "-r", "--name-only", rev, "--", "sessions/")
    return set(listing.split())


def documents_on_disk(project: Project) -> set[str]:
    folder = project.memory / "sessions"
    return {f"sessions/{p.name}" for p in folder.iterdir()} if folder.is_dir() else set()


def pointer(text: bytes | None) -> str | None:
    match = _POINTER.search((text or b"").decode())
    return match[1].strip() if match else None


def stored_transcript(project: Project, sid: str, rev: str = "HEAD",
                      name: str = "main.jsonl") -> bytes:
    """A transcript as committed: its chunk blobs concatenated in name order."""
    folder = f"transcripts/{sid}/{name}"
    done = subprocess.run(["git", "-C", str(project.memory), "ls-tree", "--name-only",
                           f"{rev}:{folder}"], capture_output=True, text=True)
    if done.returncode != 0:
        return b""
    return b"".join(show(project, f"{rev}:{folder}/{chunk}") or b""
                    for chunk in sorted(done.stdout.split()))


def assert_healthy(project: Project) -> None:
    assert project.git("status", "--porcelain") == ""
    done = subprocess.run(["git", "-C", str(project.memory), "fsck", "--strict"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr.lower(), done.stderr


def front_matter(data: bytes) -> tuple[dict[str, Any], bytes]:
    match = re.match(rb"---\n(.*?)\n---\n", data, re.DOTALL)
    assert match, data[:200]
    value = yaml.safe_load(match[1])
    assert isinstance(value, dict)
    return value, data[match.end():]


def commit_time(project: Project, rev: str = "HEAD") -> dt.datetime:
    seconds = int(project.git("log", "-1", "--format=%ct", rev).strip())
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


def save(project: Project, text: str, *args: str, env: dict[str, str] | None = None) -> str:
    """`cmem doc save - ARGS` with `text` on stdin; the path it saved."""
    out = run_cmem(project, "doc", "save", "-", *args, input=text.encode(), env=env)
    match = re.search(r"saved (sessions/\S+\.md)", out)
    assert match, out
    return match[1]


# ---------------- transcripts growing as Claude Code writes them


def corpus_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def append(path: Path, data: bytes | list[bytes]) -> None:
    with open(path, "ab") as handle:
        handle.write(data if isinstance(data, bytes) else b"".join(data))


def hook(project: Project, event: str, sid: str, transcript: Path, **extra: Any) -> dict[str, Any]:
    done = run_hook(project, event, payload(event, sid, transcript, project.root, **extra))
    assert done.returncode == 0, done.stderr
    assert b"failed" not in done.stderr + done.stdout, (done.stdout, done.stderr)
    return json.loads(done.stdout) if done.stdout.strip() else {}


def start_context(project: Project, sid: str, **extra: Any) -> str:
    """A new session's SessionStart: the additionalContext cmem gives Claude."""
    transcript = project.transcripts / f"{sid}.jsonl"  # a fresh session: no file yet
    output = hook(project, "SessionStart", sid, transcript, **extra)
    context = output["hookSpecificOutput"]["additionalContext"]
    assert isinstance(context, str)
    return context


def pending_in_context(context: str) -> dict[str, tuple[list[str], int]]:
    """session -> (events listed, records) from SessionStart's pending backups."""
    lines = context.splitlines()
    if any(line.startswith("Nothing pending: ") for line in lines):
        assert not any(line.startswith("Backups not in") for line in lines), context
        return {}
    at = next(i for i, line in enumerate(lines) if line.startswith("Backups not in"))
    count, sessions, records = map(int, re.findall(r"\d+", lines[at])[:3])
    found = {}
    for line in lines[at + 1:]:
        if not line.startswith("- session "):
            break
        match = re.fullmatch(r"- session (\S+): (.*); \+(\d+) records?", line)
        assert match, line
        events = re.findall(r"([a-z-]+) \d+ (?:s|min|h|d) ago", match[2])
        found[match[1]] = (events, int(match[3]))
    assert len(found) == sessions, context
    assert sum(len(events) for events, _ in found.values()) == count, context
    assert sum(n for _, n in found.values()) == records, context
    return found


def pending_from_git(project: Project, since: str) -> dict[str, tuple[list[str], int]]:
    """The same, computed with git from the commits after `since`."""
    found: dict[str, tuple[list[str], int]] = {}
    for rev in project.git("rev-list", f"{since}..HEAD").split():
        found_trailers = trailers(project, rev)
        session = found_trailers.get("Cmem-Session")
        if session:
            events, records = found.get(session, ([], 0))
            found[session] = (events + [found_trailers["Cmem-Event"]],
                              records + int(found_trailers.get("Cmem-Added-Lines", "0")))
    return found


def status_pending(project: Project) -> list[dict[str, Any]]:
    data = json.loads(run_cmem(project, "status", "--json"))
    return [item for item in data["since_document"] if item["session"]]


# ---------------- a user's day


def test_a_day_with_two_compactions_a_document_and_a_coalesce(project: Project) -> None:
    folder = project.transcripts
    earlier, sid = "0d4f8a52-1c3e-4d0b-9a51-000000000e01", "0d4f8a52-1c3e-4d0b-9a51-0000000a11ce"
    # A session in the morning, ended before the document: its work is in the document.
    morning = folder / f"{earlier}.jsonl"
    morning.write_bytes(SHORT.read_bytes())
    hook(project, "SessionStart", earlier, morning)
    hook(project, "SessionEnd", earlier, morning)

    # The main session, growing, compacted twice.
    transcript = folder / f"{sid}.jsonl"
    heavy, excerpt = corpus_lines(TOOL_HEAVY), corpus_lines(COMPACT)
    transcript.write_bytes(b"".join(heavy[:20]))
    hook(project, "SessionStart", sid, transcript)
    append(transcript, heavy[20:])
    hook(project, "PreCompact", sid, transcript)
    append(transcript, excerpt[21:23])  # compact_boundary and the summary Claude Code writes
    hook(project, "SessionStart", sid, transcript, source="compact")
    append(transcript, excerpt[:21])
    hook(project, "PreCompact", sid, transcript, trigger="manual")
    append(transcript, excerpt[21:])
    hook(project, "SessionStart", sid, transcript, source="compact")
    append(transcript, excerpt[41:])  # a little more work, not yet backed up by any hook
    compactions = project.git("log", "--format=%(trailers:key=Cmem-Trigger,valueonly)",
                              "--grep=Cmem-Event: pre-compact").split()
    assert compactions == ["manual", "auto"]
    assert {item["session"] for item in status_pending(project)} == {earlier, sid}

    # /document-and-save, run by Claude inside the session.
    document = ("# Phoenix startup and bead spotter-dov\n\nDOC-BODY-MARKER: the server starts "
                "in the background now.\n\n## Next Steps\n\n- the subagent's beads\n")
    path = save(project, document, env={"CLAUDE_CODE_SESSION_ID": sid})
    documented = head(project)
    assert trailers(project)["Cmem-Event"] == "document"
    assert trailers(project)["Cmem-Session"] == sid
    assert stored_transcript(project, sid) == transcript.read_bytes()
    assert status_pending(project) == []

    # More work: the transcript grows, a subagent runs; then the session ends.
    more = corpus_lines(SUBAGENT)
    append(transcript, more)
    agent = folder / sid / "subagents" / AGENT.name
    agent.parent.mkdir(parents=True)
    agent.write_bytes(AGENT.read_bytes())
    hook(project, "SessionEnd", sid, transcript)
    added = len(more) + len(corpus_lines(AGENT))

    # The next SessionStart lists exactly the backups since the document.
    context = start_context(project, "0d4f8a52-1c3e-4d0b-9a51-0000000000b2")
    assert f"({path})" in context
    listed = pending_in_context(context)
    assert listed == pending_from_git(project, documented)
    assert listed == {sid: (["session-end"], added)}
    assert earlier not in context

    # /resume-latest: the document, then only the records since it.
    resumed = run_cmem(project, "resume", "--max-chars", "200000")
    assert resumed.startswith(f"# Last session document: {path}\n")
    before, since = resumed.split("\n# What happened since\n", 1)
    assert "DOC-BODY-MARKER" in before and "previous_session" in before
    assert f"## Session {sid}: {len(more) + len(corpus_lines(AGENT))} records added" in since
    assert f"- subagent {AGENT.stem} (+{len(corpus_lines(AGENT))} records, " in since
    assert "handgemacht:create-beads" in since  # the first user prompt after the document
    for earlier_prompt in ("mix phx.server doesnt seem to start", "start phoenix in background",
                           "Work on bead spotter-dov", "compaction summary"):
        assert earlier_prompt not in since, earlier_prompt
    assert earlier not in resumed
    budgeted = run_cmem(project, "resume")  # the default budget fits SessionStart's context
    assert budgeted.startswith(f"# Last session document: {path}\n")
    assert "DOC-BODY-MARKER" in budgeted and len(budgeted) <= 10_000

    # /coalesce folds the work since into the document, in one commit.
    run_cmem(project, "coalesce", "-", input=b"COALESCE-MARKER: beads created by a subagent.\n")
    assert trailers(project)["Cmem-Coalesce"] == "yes"
    assert project.git("rev-list", "--count", f"{documented}..HEAD").strip() == "2"
    text = show(project, f"HEAD:{path}") or b""
    assert text.startswith(show(project, f"{documented}:{path}").rstrip(b"\n"))  # type: ignore
    assert re.search(rb"\n## Session continuation \([^)]*UTC\)\n\nCOALESCE-MARKER", text)
    assert (project.memory / path).read_bytes() == text
    assert pointer(show(project, "HEAD:active-context.md")) == path
    assert documents_in(project) == {path}

    # Nothing pending any more.
    context = start_context(project, "0d4f8a52-1c3e-4d0b-9a51-0000000000c3")
    assert pending_in_context(context) == {}
    assert "Nothing pending: no backups since the last session document." in context
    assert status_pending(project) == []
    assert_healthy(project)


# ---------------- doc save


def test_doc_save_front_matter_name_and_pointer_in_one_commit(project: Project) -> None:
    subprocess.run(["git", "-C", str(project.root), "checkout", "-q", "-b", "feature/login"],
                   check=True)
    subprocess.run(["git", "-C", str(project.root), "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True)
    # An edit Claude made and nobody committed yet is taken into the same commit.
    active = project.memory / "active-context.md"
    active.write_text(active.read_text().replace("What is being worked on right now, and why.",
                                                 "FOCUS-MARKER: the login bug"))
    before = head(project)
    document = textwrap.dedent("""\
        ---
        title: From the front matter
        status: done
        tags: [auth, bug]
        date: 1999-01-01
        branch: invented-by-claude
        previous_session: sessions/made-up.md
        ticket: ABC-123
        reviewers:
          - ann
          - bob
        ---

        # A heading that is not the title

        BODY-MARKER
        """)
    path = save(project, document)
    saved_at = commit_time(project)

    name = _NAME.fullmatch(path)
    assert name, path
    assert name[2] == "from-the-front-matter"
    stamp = dt.datetime.strptime(name[1], "%Y-%m-%d-%H%M%S").replace(tzinfo=dt.timezone.utc)
    assert abs((saved_at - stamp).total_seconds()) <= 2
    assert project.git("rev-list", "--count", f"{before}..HEAD").strip() == "1"
    assert set(project.git("diff-tree", "-r", "--no-commit-id", "--name-only", "HEAD~1",
                           "HEAD").split()) == {path, "active-context.md"}
    assert trailers(project)["Cmem-Event"] == "document"
    assert trailers(project)["Cmem-Title"] == "From the front matter"

    data = show(project, f"HEAD:{path}")
    assert data is not None and (project.memory / path).read_bytes() == data
    front, body = front_matter(data)
    assert front["title"] == "From the front matter"
    assert front["date"] == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")  # cmem's, not the given one
    assert front["project"] == project.root.name
    assert front["status"] == "done" and front["tags"] == ["auth", "bug"]
    assert front["branch"] == "feature/login"
    assert front["previous_session"] is None
    assert front["ticket"] == "ABC-123" and front["reviewers"] == ["ann", "bob"]
    assert body.lstrip(b"\n") == b"# A heading that is not the title\n\nBODY-MARKER\n"

    pointed = show(project, "HEAD:active-context.md") or b""
    assert pointer(pointed) == path
    assert f"> Last Updated: {stamp:%Y-%m-%d %H:%M} UTC".encode() in pointed
    assert b"FOCUS-MARKER" in pointed
    assert active.read_bytes() == pointed

    # The next document points back at this one; defaults where the text gives none.
    second = save(project, "# Second session\n\nmore\n")
    front, _ = front_matter(show(project, f"HEAD:{second}") or b"")
    assert front["previous_session"] == path
    assert front["status"] == "in-progress" and front["tags"] == []
    assert front["title"] == "Second session" and front["project"] == project.root.name
    assert pointer(show(project, "HEAD:active-context.md")) == second
    assert documents_in(project) == {path, second}
    assert_healthy(project)


def test_doc_save_title_from_option_front_matter_or_heading(project: Project) -> None:
    with_front = "---\ntitle: Front Title\n---\n\n# Heading Title\n"
    cases = [(with_front, ["--title", "Option: Title!"], "Option: Title!", "option-title"),
             (with_front, [], "Front Title", "front-title"),
             ("intro line\n\n# Heading Title\n\ntext\n", [], "Heading Title", "heading-title"),
             ("no heading at all\n", [], "session", "session")]
    for text, args, title, slug in cases:
        path = save(project, text, *args)
        assert _NAME.fullmatch(path)[2] == slug, path  # type: ignore[index]
        assert trailers(project)["Cmem-Title"] == title
        front, _ = front_matter(show(project, f"HEAD:{path}") or b"")
        assert front["title"] == title


def test_doc_save_reads_a_file_or_stdin(project: Project) -> None:
    notes = project.root / "notes"
    notes.mkdir()
    (notes / "doc.md").write_text("# From a file\n\nFILE-MARKER\n")
    (project.root / "src").mkdir()
    # A relative FILE, from a subfolder of the project.
    out = run_cmem(project, "doc", "save", "../notes/doc.md", cwd=project.root / "src")
    path = re.search(r"saved (\S+)", out)[1]  # type: ignore[index]
    assert b"FILE-MARKER" in (show(project, f"HEAD:{path}") or b"")
    out = run_cmem(project, "doc", "save", input=b"# From stdin\n\nSTDIN-MARKER\n")
    path = re.search(r"saved (\S+)", out)[1]  # type: ignore[index]
    assert b"STDIN-MARKER" in (show(project, f"HEAD:{path}") or b"")
    path = save(project, "# Dash\n\nDASH-MARKER\n")
    assert b"DASH-MARKER" in (show(project, f"HEAD:{path}") or b"")
    assert len(documents_in(project)) == 3
    assert_healthy(project)


@pytest.mark.parametrize("how", ["stdin", "dash", "file"])
@pytest.mark.parametrize("text", [b"", b"  \n\t\n"])
def test_doc_save_refuses_empty_text(project: Project, how: str, text: bytes) -> None:
    before = head(project)
    args = ["doc", "save"]
    if how == "dash":
        args.append("-")
    if how == "file":
        (project.root / "empty.md").write_bytes(text)
        args.append("empty.md")
    done = cmem(*args, cwd=project.root, input=text)
    assert done.returncode == 2, done.stderr
    assert b"empty" in done.stderr and b"nothing to save" in done.stderr
    assert head(project) == before
    assert not (project.memory / "sessions").exists()
    assert_healthy(project)


def test_doc_save_of_a_missing_file_is_a_clear_error(project: Project) -> None:
    before = head(project)
    done = cmem("doc", "save", "no-such-doc.md", cwd=project.root)
    assert done.returncode in (1, 2), done.stderr
    assert b"no-such-doc.md" in done.stderr
    assert b"internal error" not in done.stderr, done.stderr
    assert head(project) == before


@pytest.mark.parametrize("how", ["env", "option"])
def test_doc_save_backs_up_the_running_session_in_the_same_commit(project: Project,
                                                                   how: str) -> None:
    sid = "5e55b0c8-77aa-4e1f-8a61-00000000d0c5"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(TOOL_HEAVY.read_bytes())
    before = head(project)
    if how == "env":
        path = save(project, "# With the transcript\n", env={"CLAUDE_CODE_SESSION_ID": sid})
    else:
        path = save(project, "# With the transcript\n", "--session", sid)
    assert project.git("rev-list", "--count", f"{before}..HEAD").strip() == "1"
    found = trailers(project)
    assert found["Cmem-Event"] == "document" and found["Cmem-Session"] == sid
    assert found["Cmem-Transcript-Lines"] == str(len(corpus_lines(TOOL_HEAVY)))
    assert stored_transcript(project, sid) == transcript.read_bytes()
    assert stored_transcript(project, sid, "HEAD~1") == b""
    changed = project.git("diff-tree", "-r", "--no-commit-id", "--name-only", "HEAD~1",
                          "HEAD").split()
    assert path in changed and "active-context.md" in changed
    assert any(p.startswith(f"transcripts/{sid}/main.jsonl/") for p in changed)
    assert status_pending(project) == []
    assert_healthy(project)


def test_doc_save_without_a_session_backs_up_no_transcript(project: Project) -> None:
    sid = "5e55b0c8-77aa-4e1f-8a61-00000000d0c6"
    (project.transcripts / f"{sid}.jsonl").write_bytes(SHORT.read_bytes())
    save(project, "# Alone\n")
    assert "Cmem-Session" not in trailers(project)
    assert project.git("ls-tree", "HEAD", "transcripts") == ""


def test_doc_save_in_the_same_second_never_overwrites(project: Project) -> None:
    from cmem_git.capture import checkpoint
    from cmem_git.read import docs
    from cmem_git.repo.store import Store

    store = Store.open(project.memory)
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    request = checkpoint.Request("document", None, None, "test-device")
    first = docs.save(store, project.root, b"# Same Title\n\none\n", None, request, when)
    second = docs.save(store, project.root, b"# Same Title\n\ntwo\n", None, request, when)
    assert first.path == "sessions/session-2026-01-02-030405-same-title.md"
    assert second.path == "sessions/session-2026-01-02-030405-same-title-2.md"
    assert b"one" in (show(project, f"HEAD:{first.path}") or b"")
    assert b"two" in (show(project, f"HEAD:{second.path}") or b"")
    front, _ = front_matter(show(project, f"HEAD:{second.path}") or b"")
    assert front["date"] == "2026-01-02T03:04:05Z" and front["previous_session"] == first.path
    assert_healthy(project)


# ---------------- fault injection: SIGKILL at each step of `doc save`

_KILLER = textwrap.dedent("""\
    import os, signal, sys
    import pygit2
    from cmem_git import atomic, cli
    from cmem_git.repo import store, worktree

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    point = sys.argv[1]
    if point == "objects":  # blobs and trees written, the commit object not yet
        def prepare(self, build, tip):
            build(tip)
            die()
        store.Store._prepare = prepare
    elif point == "commit":  # every object written, the branch not yet moved
        store.Store._swap = lambda self, old, new: die()
    elif point == "ref":  # the branch moved, index and working files not yet updated
        swap = store.Store._swap
        def moved(self, old, new):
            if swap(self, old, new):
                die()
            return False
        store.Store._swap = moved
    elif point.startswith("write-"):  # the Nth working file about to be replaced
        wanted, count, write = int(point[6:]), [0], worktree.write_file
        def nth(repo, path, data):
            count[0] += 1
            if count[0] == wanted:
                die()
            write(repo, path, data)
        worktree.write_file = nth
    elif point == "rename":  # a temp file written, not yet renamed into place
        class Os:
            def __getattr__(self, name):
                return getattr(os, name)
            replace = staticmethod(die)
        atomic.os = Os()  # every working file is written by atomic.write_atomic
    elif point == "index":  # working files written, the index being written (its lock held)
        def write(self):
            open(os.path.join(self._repo.path, "index.lock"), "w").close()
            die()
        pygit2.Index.write = write
    else:
        raise SystemExit(f"unknown point {point}")
    sys.exit(cli.main(sys.argv[2:]))
    """)
# Whether the new document stands once the process died there.
# A save writes two working files (the document, active-context.md); transcripts are never
# checked out, so there is no third.
_POINTS = {"objects": False, "commit": False, "ref": True, "write-1": True, "write-2": True,
           "rename": True, "index": True}
_KILLED_TITLE = "Killed mid-save"


def killed_save(project: Project, point: str, sid: str) -> None:
    (project.root / "doc.md").write_text(f"# {_KILLED_TITLE}\n\nKILLED-MARKER\n")
    env = {**os.environ, "CLAUDE_CODE_SESSION_ID": sid}
    done = subprocess.run([PYTHON, "-c", _KILLER, point, "doc", "save", "doc.md"],
                          cwd=project.root, env=env, capture_output=True, timeout=60)
    assert done.returncode == -9, (point, done.returncode, done.stderr.decode())


def assert_document_and_pointer_agree(project: Project, first: str, stands: bool) -> str:
    """Both the new document and its pointer, or neither, in HEAD and in the working files."""
    in_head = documents_in(project)
    head_pointer = pointer(show(project, "HEAD:active-context.md"))
    new = in_head - {first}
    if stands:
        assert len(new) == 1, in_head
        (path,) = new
        assert _NAME.fullmatch(path)[2] == "killed-mid-save"  # type: ignore[index]
        assert b"KILLED-MARKER" in (show(project, f"HEAD:{path}") or b"")
    else:
        assert in_head == {first}
        path = first
    assert head_pointer == path
    assert documents_on_disk(project) == in_head
    assert pointer((project.memory / "active-context.md").read_bytes()) == path
    assert (project.memory / path).read_bytes() == show(project, f"HEAD:{path}")
    return path


# The next command is `cmem status` everywhere, and also the next hook where the files were
# left behind HEAD.
_CASES = [(point, "status") for point in sorted(_POINTS)] + [
    (point, "hook") for point in ("ref", "write-2", "index")]


@pytest.mark.parametrize(("point", "next_command"), _CASES)
def test_doc_save_killed_leaves_document_and_pointer_together(project: Project, point: str,
                                                              next_command: str) -> None:
    sid = "6b1d7c1e-0a0b-4c0d-8e0f-00000000dead"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    first = save(project, "# First document\n")
    append(transcript, corpus_lines(TOOL_HEAVY))  # so the killed save has a transcript to write
    before = head(project)

    killed_save(project, point, sid)
    gitdir = project.memory / ".git"
    # Objects are written before the lock is taken; every later point dies holding it.
    assert (gitdir / "cmem" / "writing").exists() == (point != "objects")
    if point == "index":
        assert (gitdir / "index.lock").exists()
    if point == "rename":
        assert any((gitdir / "cmem" / "tmp").glob("*"))
    # HEAD itself is never half there: it is the old commit or the complete new one.
    assert (head(project) != before) == _POINTS[point]
    if _POINTS[point]:
        assert project.git("rev-parse", "HEAD~1").strip() == before
        assert stored_transcript(project, sid) == transcript.read_bytes()

    if next_command == "status":
        run_cmem(project, "status")
    else:
        hook(project, "SessionStart", sid, transcript, source="resume")
    path = assert_document_and_pointer_agree(project, first, _POINTS[point])
    assert_healthy(project)
    assert not (gitdir / "index.lock").exists()
    assert not (gitdir / "cmem" / "writing").exists()
    assert not any((gitdir / "cmem" / "tmp").glob("*"))

    # Nothing is left that blocks the next save.
    third = save(project, "# After the crash\n")
    front, _ = front_matter(show(project, f"HEAD:{third}") or b"")
    assert front["previous_session"] == path
    assert pointer(show(project, "HEAD:active-context.md")) == third
    assert_healthy(project)


def test_doc_save_killed_then_active_context_edited_keeps_the_pointer(project: Project) -> None:
    """/document-and-save tells Claude to update active-context.md right after the save. When
    the save died after its commit but before the file update, Claude edits the file as it is on
    disk (without the new pointer); the next hook must not commit the pointer away."""
    sid = "6b1d7c1e-0a0b-4c0d-8e0f-00000000beef"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    first = save(project, "# First document\n")
    killed_save(project, "ref", sid)
    active = project.memory / "active-context.md"
    active.write_text(active.read_text().replace("What is being worked on right now, and why.",
                                                 "EDIT-MARKER: after the document"))
    hook(project, "SessionStart", sid, transcript, source="resume")
    run_cmem(project, "status")
    assert b"EDIT-MARKER" in (show(project, "HEAD:active-context.md") or b"")
    assert_document_and_pointer_agree(project, first, True)


# ---------------- discard and fresh-start


def test_discard_marks_pending_as_dealt_with_and_deletes_nothing(project: Project) -> None:
    first = save(project, "# Before the backups\n\nDOC-MARKER\n")
    sid = "7c2e8d2f-1b1c-4d1e-9f10-000000d15ca2"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    hook(project, "SessionStart", sid, transcript)
    append(transcript, corpus_lines(TOOL_HEAVY))
    hook(project, "PreCompact", sid, transcript)
    pending = status_pending(project)
    assert [item["event"] for item in pending] == ["pre-compact", "session-start"]
    history = project.git("rev-list", "HEAD").split()

    out = run_cmem(project, "discard")
    assert f"marked {len(pending)} pending backups" in out
    assert trailers(project)["Cmem-Event"] == "discard"
    assert project.git("rev-list", "HEAD").split()[1:] == history  # one commit on top
    assert project.git("diff", "HEAD~1", "HEAD") == ""  # it changes no file
    assert stored_transcript(project, sid) == transcript.read_bytes()
    assert documents_in(project) == {first}
    assert status_pending(project) == []
    context = start_context(project, "7c2e8d2f-1b1c-4d1e-9f10-0000000000b2")
    assert pending_in_context(context) == {}
    assert "cmem discard" in context
    resumed = run_cmem(project, "resume")
    assert "DOC-MARKER" in resumed and resumed.endswith("Nothing since.\n")
    assert_healthy(project)


def test_fresh_start_restores_templates_and_keeps_an_uncommitted_edit(project: Project) -> None:
    from cmem_git.repo import memory

    active, facts = project.memory / "active-context.md", project.memory / "project-memory.md"
    active.write_text(active.read_text() + "\nUNCOMMITTED-EDIT\n")
    facts.write_text("# Project Memory\n\nFACTS-MARKER\n")
    before = head(project)
    out = run_cmem(project, "fresh-start", "--yes")
    assert "reset" in out
    commits = project.git("rev-list", f"{before}..HEAD").split()
    assert len(commits) == 2  # the edits first, then the reset
    assert trailers(project)["Cmem-Event"] == "fresh-start"
    assert b"UNCOMMITTED-EDIT" in (show(project, "HEAD~1:active-context.md") or b"")
    assert b"FACTS-MARKER" in (show(project, "HEAD~1:project-memory.md") or b"")
    for name, path in ((memory.ACTIVE, active), (memory.PROJECT, facts)):
        assert show(project, f"HEAD:{name}") == memory.template(name)
        assert path.read_bytes() == memory.template(name)
    assert status_pending(project) == []
    assert_healthy(project)


# ---------------- the slash commands `cmem init` installs

_COMMANDS = ("coalesce.md", "discard-backup.md", "document-and-save.md", "resume-latest.md")


def command_file(project: Project, name: str) -> tuple[dict[str, Any], str]:
    text = (project.home / ".claude" / "commands" / name).read_text()
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, f"{name} has no front matter"
    front = yaml.safe_load(match[1])
    assert isinstance(front, dict), name
    return front, text[match.end():]


def allowed_prefixes(front: dict[str, Any]) -> list[str]:
    """`Bash(<command prefix>:*)` entries of allowed-tools, as command prefixes."""
    tools = front["allowed-tools"]
    entries = tools if isinstance(tools, list) else [t.strip() for t in tools.split(",")]
    prefixes = []
    for entry in entries:
        match = re.fullmatch(r"Bash\((.+):\*\)", entry)
        assert match, entry
        prefixes.append(match[1])
    return prefixes


def commands_in(body: str) -> list[str]:
    """Every cmem command line the body asks Claude to run: inline code and sh blocks."""
    script = shlex.quote(str(CMEM_SCRIPT))
    blocks = re.findall(r"```sh\n(.*?)```", body, re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", body, flags=re.DOTALL))
    found = [code for code in inline if code.startswith(script + " ")]
    return found + [block for block in blocks if block.startswith(script + " ")]


def test_slash_commands_are_valid_claude_code_command_files(project: Project) -> None:
    folder = project.home / ".claude" / "commands"  # personal: they name this machine's cmem
    assert sorted(p.name for p in folder.iterdir()) == sorted(_COMMANDS)
    script = shlex.quote(str(CMEM_SCRIPT))
    for name in _COMMANDS:
        front, body = command_file(project, name)
        assert isinstance(front.get("description"), str) and front["description"].strip()
        assert "{{" not in body and "{{" not in str(front), name
        prefixes = allowed_prefixes(front)
        assert prefixes, name
        for prefix in prefixes:
            words = shlex.split(prefix)
            assert Path(words[0]).is_absolute() and os.access(words[0], os.X_OK), prefix
            assert prefix.startswith(script + " "), prefix
            done = subprocess.run([*words, "--help"], capture_output=True,
                                  env={"HOME": os.environ["HOME"], "PATH": MINIMAL_PATH})
            assert done.returncode == 0, (prefix, done.stderr)
        commands = commands_in(body)
        assert commands, f"{name} runs no cmem command"
        for command in commands:
            first_line = command.split("\n", 1)[0]
            assert any(first_line == prefix or first_line.startswith(prefix + " ")
                       for prefix in prefixes), \
                f"{name}: {command!r} is not allowed by {prefixes}"


def run_claude_bash(project: Project, command: str, arguments: str = "") -> str:
    """A command as Claude Code's Bash tool runs it: through a shell, from the project, with
    `$ARGUMENTS` replaced by the slash command's arguments and `...` by what Claude wrote."""
    command = command.replace("$ARGUMENTS", arguments)
    command = command.replace("\n...\n", "\n## Summary\n\nWritten by Claude: SLASH-MARKER\n")
    done = subprocess.run(["sh", "-c", command], cwd=project.root, capture_output=True,
                          env={"HOME": os.environ["HOME"], "PATH": MINIMAL_PATH})
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout.decode()


def test_every_cmem_command_in_the_slash_commands_succeeds(project: Project) -> None:
    sid = "8d3f9e30-2c2d-4e2f-8021-00000005ac5d"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    hook(project, "SessionStart", sid, transcript)
    append(transcript, corpus_lines(TOOL_HEAVY))
    hook(project, "PreCompact", sid, transcript)
    ran: list[str] = []
    for name in ("document-and-save.md", "coalesce.md", "resume-latest.md",
                 "discard-backup.md"):
        _, body = command_file(project, name)
        for command in commands_in(body):
            out = run_claude_bash(project, command, arguments="Slash Title")
            ran.append(command.split("\n")[0])
            if " delta " in command and name == "document-and-save.md":
                assert "start phoenix in background" in out
            if " doc save " in command:
                path = re.search(r"saved (\S+)", out)[1]  # type: ignore[index]
                assert trailers(project)["Cmem-Title"] == "Slash Title"
                assert b"SLASH-MARKER" in (show(project, f"HEAD:{path}") or b"")
                assert pointer(show(project, "HEAD:active-context.md")) == path
            if " coalesce " in command:
                text = show(project, f"HEAD:{path}") or b""
                assert text.count(b"SLASH-MARKER") == 2 and b"Session continuation" in text
            if " resume " in command:
                assert out.startswith(f"# Last session document: {path}")
    assert len(ran) == 6, ran
    assert_healthy(project)


def test_document_and_save_without_arguments_takes_the_heading(project: Project) -> None:
    _, body = command_file(project, "document-and-save.md")
    (command,) = [c for c in commands_in(body) if " doc save " in c]
    command = command.replace("# <title>", "# Heading Of The Document")
    run_claude_bash(project, command, arguments="")
    assert trailers(project)["Cmem-Title"] == "Heading Of The Document"


def test_init_keeps_a_users_command_file_unless_forced(project: Project) -> None:
    folder = project.home / ".claude" / "commands"
    installed = {name: (folder / name).read_bytes() for name in _COMMANDS}
    mine = b"---\ndescription: my own coalescing\n---\n\nSummarise the day my way.\n"
    (folder / "coalesce.md").write_bytes(mine)
    done = cmem("init", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert (folder / "coalesce.md").read_bytes() == mine
    assert b"kept your" in done.stderr and b"--force" in done.stderr
    assert {n: (folder / n).read_bytes() for n in _COMMANDS if n != "coalesce.md"} == \
        {n: data for n, data in installed.items() if n != "coalesce.md"}
    done = cmem("init", "--force", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert (folder / "coalesce.md").read_bytes() == installed["coalesce.md"]


def test_init_keeps_a_users_command_file_that_mentions_cmem(project: Project) -> None:
    """A user's own /coalesce that happens to call cmem is still the user's file."""
    target = project.home / ".claude" / "commands" / "coalesce.md"
    mine = (b"---\ndescription: my coalesce\nallowed-tools: Bash(cmem delta:*)\n---\n\n"
            b"Run `cmem delta` and summarise it in the team's format.\n")
    target.write_bytes(mine)
    done = cmem("init", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == mine


def test_init_keeps_a_users_command_file_in_a_new_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / ".claude" / "commands").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    mine = b"# my resume\n"
    (root / ".claude" / "commands" / "resume-latest.md").write_bytes(mine)
    done = cmem("init", cwd=root)
    assert done.returncode == 0, done.stderr
    assert (root / ".claude" / "commands" / "resume-latest.md").read_bytes() == mine
    assert (Path(os.environ["HOME"]) / ".claude" / "commands" / "coalesce.md").is_file()


def test_init_claude_md_adds_the_import_once(project: Project) -> None:
    claude_md = project.root / "CLAUDE.md"
    claude_md.write_text("# My project\n\nRun tests with make.")  # no final newline
    done = cmem("init", "--claude-md", cwd=project.root)
    assert done.returncode == 0, done.stderr
    text = claude_md.read_text()
    assert text.startswith("# My project\n\nRun tests with make.\n")
    assert text.splitlines().count("@.claude/memory/active-context.md") == 1
    done = cmem("init", "--claude-md", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert claude_md.read_text() == text
    plain = cmem("init", cwd=project.root)  # without the flag CLAUDE.md is left alone
    assert plain.returncode == 0 and claude_md.read_text() == text


def test_init_claude_md_creates_the_file(project: Project) -> None:
    assert not (project.root / "CLAUDE.md").exists()
    done = cmem("init", "--claude-md", cwd=project.root)
    assert done.returncode == 0, done.stderr
    assert (project.root / "CLAUDE.md").read_text() == "@.claude/memory/active-context.md\n"
