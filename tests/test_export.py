"""`cmem export` (issue 16): sessions as HTML and Markdown pages, from history alone.

The history is built the way users get it: the hooks `cmem init` wrote, run as Claude Code runs
them, over the corpus transcripts (the compaction excerpt with its subagent files, a session whose
Task call started a subagent, the short, tool-heavy and old-format files) and one session written
here with hostile strings, record types no corpus file has, invalid lines and a spilled tool
result. Then Claude Code's copies are deleted: every export reads the memory repository only.
What a page shows is checked against the corpus files, never against cmem's own reading.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS, PYTHON, Project, cmem, payload, run_hook

from cmem_git.git.repo import Draft
from cmem_git.publish import page
from cmem_git.repo.store import Store

SPOTTER = CORPUS / "spotter"
SID_A = "4d5611e5-241a-462a-8d15-5122611a9569"  # compaction excerpt + its subagent files
SID_TASK = "491e126e-1e71-469c-ade2-fcc8af567c74"  # a Task call that started agent afb92ff
SID_SHORT = "15f1c0b6-0d3c-4a43-9a0e-2b1f5c1e0001"
SID_TOOLS = "25f1c0b6-0d3c-4a43-9a0e-2b1f5c1e0002"
SID_OLD = "35f1c0b6-0d3c-4a43-9a0e-2b1f5c1e0003"
SID_ODD = "45f1c0b6-0d3c-4a43-9a0e-2b1f5c1e0004"
AGENT = SPOTTER / SID_A / "subagents" / "agent-a2898e3.jsonl"
COMPACT_AGENT = SPOTTER / SID_A / "subagents" / "agent-acompact-e1f845.jsonl"
HOSTILE = ("<script>window.__pwned=1</script> </textarea><img src=x onerror=alert(1)> "
           "\u202eevil\u202c \u2066iso\u2069 \x07bell <!-- c --> & ]]>")
SPILL_ID = "toolu_01SPILL"
SPILLED = ("line one <script>alert('spill')</script>\n" + "é€😀 " * 50 + "\nlast line\n")
TZ = "Asia/Kolkata"  # +05:30: local times differ from UTC in hours and minutes


def record(kind: str, **fields: Any) -> bytes:
    value = {"type": kind, "sessionId": SID_ODD, "timestamp": "2026-03-01T10:00:00.000Z",
             **fields}
    return json.dumps(value).encode() + b"\n"


def message(kind: str, content: Any, **fields: Any) -> bytes:
    return record(kind, message={"role": kind, "content": content}, **fields)


def odd_session() -> bytes:
    """Hostile text everywhere a transcript has text, unknown and invalid records."""
    return b"".join([
        record("ai-title", aiTitle="Hostile <b>title</b> \u202e"),
        message("user", f"first prompt {HOSTILE}"),
        record("attachment", attachment={"type": "whatever"}),
        record("future-record-type", payload={"x": 1}),
        b"{not json at all\n",
        b"[1, 2, 3]\n",
        message("assistant", [{"type": "thinking", "thinking": f"thinking {HOSTILE}"},
                              {"type": "text", "text": f"reply {HOSTILE}"},
                              {"type": "tool_use", "id": SPILL_ID, "name": "Bash",
                               "input": {"command": f"echo '{HOSTILE}'"}},
                              {"type": "mystery_part"}]),
        message("user", [{"type": "tool_result", "tool_use_id": SPILL_ID,
                          "content": "<persisted-output>\nOutput too large (3KB). Full output "
                          f"saved to: {SPILL_ID}.txt\n</persisted-output>"}]),
        message("assistant", [{"type": "tool_use", "id": "toolu_02ERR", "name": "Read",
                               "input": {"file_path": "/x"}}]),
        message("assistant", [{"type": "tool_use", "id": 'x\u202e" onclick="alert(1)',
                               "name": 'Bash\u202e" onmouseover="alert(2)', "input": HOSTILE}]),
        message("user", [{"type": "tool_result", "tool_use_id": "toolu_02ERR",
                          "content": "boom", "is_error": True}]),
        b'{"type": "user", "message": {"role": "user", "content": "lone \\ud800 surrogate"},'
        b' "timestamp": "2026-03-01T10:00:05Z"}\n',
        record("system", subtype="compact_boundary", compactMetadata={"trigger": "manual",
                                                                      "preTokens": 1234}),
        message("user", f"summary {HOSTILE}", isCompactSummary=True),
    ])


@dataclass
class Built:
    project: Project
    env: dict[str, str]
    sessions: dict[str, dict[str, bytes]]  # session -> stored path -> bytes (what Claude had)
    first_backup: str  # the first of SID_TASK's two checkpoints


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "CLAUDE_", "CMEM_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1",
               TZ=TZ)
    return env


def _place(project: Project, sid: str, files: dict[str, bytes]) -> Path:
    main = project.transcripts / f"{sid}.jsonl"
    for name, data in files.items():
        target = main if name == "main.jsonl" else project.transcripts / sid / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return main


def _end(project: Project, sid: str, main: Path) -> None:
    done = run_hook(project, "SessionEnd", payload("SessionEnd", sid, main, project.root))
    assert done.returncode == 0 and not done.stderr, done.stderr


def corpus_sessions() -> dict[str, dict[str, bytes]]:
    return {
        SID_A: {"main.jsonl": (SPOTTER / f"{SID_A}.EXCERPT-compact.jsonl").read_bytes(),
                "subagents/agent-a2898e3.jsonl": AGENT.read_bytes(),
                "subagents/agent-acompact-e1f845.jsonl": COMPACT_AGENT.read_bytes()},
        SID_TASK: {"main.jsonl": (SPOTTER / "subagent.jsonl").read_bytes(),
                   "subagents/agent-afb92ff.jsonl": AGENT.read_bytes()},
        SID_SHORT: {"main.jsonl": (SPOTTER / "short.jsonl").read_bytes()},
        SID_TOOLS: {"main.jsonl": (SPOTTER / "tool_heavy.jsonl").read_bytes()},
        SID_OLD: {"main.jsonl": (CORPUS / "claude-code-log" /
                                 "representative_messages.jsonl").read_bytes()},
        SID_ODD: {"main.jsonl": odd_session(),
                  f"tool-results/{SPILL_ID}.txt": SPILLED.encode()},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    home = tmp_path_factory.mktemp("export-home")
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    root = tmp_path_factory.mktemp("export") / "my project"
    root.mkdir()
    env = clean_env(home)
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    assert cmem("init", cwd=root, env=env).returncode == 0
    project = Project(root, home)
    sessions = corpus_sessions()
    task_main = sessions[SID_TASK]["main.jsonl"]
    half = task_main[:task_main.index(b"\n", len(task_main) // 2) + 1]
    _end(project, SID_TASK, _place(project, SID_TASK, {"main.jsonl": half}))
    first = project.git("rev-parse", "HEAD").strip()
    for sid, files in sessions.items():
        _end(project, sid, _place(project, sid, files))
    document = root / "doc.md"
    document.write_text("# Export work\n\nDid things <script>alert(1)</script>\n")
    done = cmem("doc", "save", str(document), "--session", SID_ODD, cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(home / ".claude" / "projects")  # history alone from here on
    return Built(project, env, sessions, first)


def export(built: Built, *args: str) -> subprocess.CompletedProcess[bytes]:
    return cmem("export", *args, cwd=built.project.root, env=built.env)


def exported(built: Built, tmp_path: Path, sid: str, form: str, *args: str) -> str:
    target = tmp_path / f"{sid}.{form}"
    done = export(built, sid[:8], "--format", form, "-o", str(target), *args)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == f"wrote {target}"
    return target.read_bytes().decode("utf-8")  # strict: lone surrogates must be gone


# ------------------------------------------------------------------- what the corpus holds

def records(data: bytes) -> list[dict[str, Any]]:
    found = []
    for line in data.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def parts(data: bytes, kind: str) -> list[dict[str, Any]]:
    found = []
    for value in records(data):
        content = (value.get("message") or {}).get("content")
        found += [p for p in content if isinstance(p, dict) and p.get("type") == kind] \
            if isinstance(content, list) else []
    return found


def tool_blocks(data: bytes) -> int:
    """Tool calls a page shows for a file: one per call, one per result whose call is not in
    the file (the excerpt)."""
    calls = {p["id"] for p in parts(data, "tool_use")}
    orphans = {p["tool_use_id"] for p in parts(data, "tool_result")} - calls
    return len(parts(data, "tool_use")) + len(orphans)


def prompts(data: bytes) -> list[str]:
    texts = []
    for value in records(data):
        content = (value.get("message") or {}).get("content")
        if value.get("type") != "user" or value.get("isMeta") or value.get("isCompactSummary"):
            continue
        if isinstance(content, str) and content.strip():
            texts.append(content.strip())
        elif isinstance(content, list):
            texts += [str(p["text"]).strip() for p in content
                      if isinstance(p, dict) and p.get("type") == "text" and p["text"].strip()]
    return texts


# ------------------------------------------------------------------- an HTML checker

VOID = {"meta", "br", "img", "input", "link", "hr", "wbr"}
ALLOWED = {"html", "head", "meta", "title", "style", "body", "nav", "a", "h1", "h2", "dl", "dt",
           "dd", "div", "section", "details", "summary", "b", "strong", "code", "pre", "time",
           "span", "main", "script", "button", "br"}


class Page(HTMLParser):
    """The elements of a page, checked while parsing: only our tags, every one closed in
    order, no event-handler attributes, no URL that leaves the file."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self.texts: list[tuple[str, tuple[str, ...]]] = []
        self.scripts: list[str] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag not in ALLOWED:
            self.problems.append(f"unexpected <{tag}>")
        for name, value in values.items():
            if name.startswith("on") or name in ("src", "srcset", "action", "formaction"):
                self.problems.append(f"attribute {name} on <{tag}>")
            if name == "href" and re.match(r"^\s*([a-z][a-z0-9+.-]*:|//)", value, re.I):
                self.problems.append(f"href leaves the file: {value}")
        classes = tuple(c for _, a in self.stack for c in a.get("class", "").split())
        self.elements.append((tag, values, classes))
        if tag not in VOID:
            self.stack.append((tag, values))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1][0] != tag:
            open_tag = self.stack[-1][0] if self.stack else "nothing"
            self.problems.append(f"</{tag}> closes {open_tag}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1][0] == "script":
            self.scripts.append(data)
        classes = tuple(c for _, a in self.stack for c in a.get("class", "").split())
        self.texts.append((data, classes))

    def count(self, tag: str, cls: str) -> int:
        return sum(1 for t, a, _ in self.elements if t == tag and cls in a.get("class", "").split())

    def text(self) -> str:
        return "".join(t for t, _ in self.texts)


def parse(text: str) -> Page:
    parser = Page()
    parser.feed(text)
    parser.close()
    assert parser.problems == []
    assert parser.stack == [], "every element is closed"
    return parser


# ------------------------------------------------------------------- the tests

SESSIONS = [SID_A, SID_TASK, SID_SHORT, SID_TOOLS, SID_OLD, SID_ODD]


@pytest.mark.parametrize("sid", SESSIONS)
def test_every_session_exports_as_html(built: Built, tmp_path: Path, sid: str) -> None:
    text = exported(built, tmp_path, sid, "html")
    found = parse(text)
    files = built.sessions[sid]
    jsonl = [data for name, data in files.items() if name.endswith(".jsonl")]
    assert found.count("details", "tool") == sum(tool_blocks(d) for d in jsonl)
    assert found.count("details", "thinking") == sum(len(parts(d, "thinking")) for d in jsonl)
    shown = found.text()
    for prompt in prompts(files["main.jsonl"]):
        assert _plain(prompt) in _plain(shown)
    assert found.scripts == [page.SCRIPT]
    assert sum(1 for t, _, _ in found.elements if t == "style") == 1
    assert not any(t == "details" and "open" in a for t, a, _ in found.elements), \
        "thinking, tool calls and summaries start closed"
    ids = {a["id"] for _, a, _ in found.elements if "id" in a}
    targets = [a["href"][1:] for t, a, _ in found.elements if a.get("href", "").startswith("#")]
    assert targets and set(targets) <= ids, "every checkpoint on the timeline has its marker"


def _plain(text: str) -> str:
    """Text compared without the hidden characters, and without the codes pages show for
    them."""
    return " ".join(re.sub(r"U\+[0-9A-F]{4}", "", page.HIDDEN.sub("", text)).split())


@pytest.mark.parametrize("sid", SESSIONS)
def test_every_session_exports_as_markdown(built: Built, tmp_path: Path, sid: str) -> None:
    text = exported(built, tmp_path, sid, "md")
    files = built.sessions[sid]
    jsonl = [data for name, data in files.items() if name.endswith(".jsonl")]
    assert text.count("<details><summary><b>") == sum(tool_blocks(d) for d in jsonl) + \
        text.count("<details><summary><b>Summary</b>")
    assert text.count("<details><summary>Thinking") == sum(len(parts(d, "thinking"))
                                                           for d in jsonl)
    assert text.count("<details>") == text.count("</details>")
    outside = _outside_code(text)
    assert "<script" not in outside and "</textarea" not in outside and "<img" not in outside
    for prompt in prompts(files["main.jsonl"]):
        first = _plain(prompt).split(" ")[0]
        assert re.sub(r"<(?=[A-Za-z/!?])", "&lt;", first) in text


def _outside_code(text: str) -> str:
    """Markdown with fenced and indented code removed (where raw HTML is only text)."""
    kept, fence = [], ""
    for line in text.split("\n"):
        opened = re.match(r"^ {0,3}(`{3,}|~{3,})", line)
        if fence:
            if opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
                fence = ""
            continue
        if opened:
            fence = opened[1]
        elif not line.startswith("    "):
            kept.append(line)
    return "\n".join(kept)


def test_hostile_strings_are_escaped(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_ODD, "html")
    for raw in ("<script>window.__pwned", "</textarea>", "<img", "\u202e", "\u2066", "\x07",
                "\ud800", "<b>title"):
        assert raw not in text
    found = parse(text)
    shown = found.text()
    assert "<script>window.__pwned=1</script> </textarea><img src=x onerror=alert(1)>" in shown
    assert "U+202E" in shown and "U+2066" in shown and "U+0007" in shown
    assert found.count("span", "ctl") >= 6
    assert found.elements[[t for t, _, _ in found.elements].index("h1")] and \
        "Hostile <b>title</b>" in shown, "the ai-title record names the page"
    markdown = exported(built, tmp_path, SID_ODD, "md")
    for raw in ("\u202e", "\u2066", "\x07", "\ud800"):
        assert raw not in markdown
    assert "⟦U+202E⟧" in markdown


def test_unknown_and_invalid_records_are_placeholders(built: Built, tmp_path: Path) -> None:
    shown = parse(exported(built, tmp_path, SID_ODD, "html")).text()
    for placeholder in ("[future-record-type record]", "[invalid JSON line, 16 bytes]",
                        "[not a record: [1, 2, 3]]", "[mystery_part content]"):
        assert placeholder in shown
    assert "[attachment" not in shown and "aiTitle" not in shown  # bookkeeping stays out


def test_no_network_resources(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_TASK, "html")
    assert "https://github.com/bradleygolden" in parse(text).text(), "URLs as text are fine"
    head = text[:text.index("<body>")]
    assert re.search(r'http-equiv="Content-Security-Policy" content="default-src \'none\'; '
                     r"style-src 'sha256-[^']+'; script-src 'sha256-[^']+'; img-src 'none'", head)
    markup = re.sub(r">[^<]*<", "><", text)  # the tags only, no text between them
    assert not re.search(r"\b(src|srcset|action|poster|data)\s*=", markup)
    assert not re.search(r"(href|xlink:href)\s*=\s*\"\s*(https?:|//|ftp:|file:)", markup)
    assert "url(" not in page.STYLE and "@import" not in page.STYLE and "fetch(" not in \
        page.SCRIPT and "XMLHttpRequest" not in page.SCRIPT


def test_subagent_is_nested_under_the_task_call(built: Built, tmp_path: Path) -> None:
    found = parse(exported(built, tmp_path, SID_TASK, "html"))
    inside = [(t, a) for t, a, outer in found.elements if "subagent" in outer]
    agent = AGENT.read_bytes()
    assert sum(1 for t, a in inside if t == "details" and "tool" in a.get("class", "")) == \
        tool_blocks(agent)
    task = [a for t, a, _ in found.elements if t == "details" and a.get("data-tool") == "Task"]
    assert len(task) == 1
    sections = [(t, outer) for t, a, outer in found.elements
                if t == "section" and "subagent" in a.get("class", "")]
    assert len(sections) == 1 and "tool" in sections[0][1], "the subagent is inside the call"
    assert "Subagent afb92ff (subagents/agent-afb92ff.jsonl)" in found.text()


def test_compaction_boundary_summary_and_unlinked_agents(built: Built, tmp_path: Path) -> None:
    found = parse(exported(built, tmp_path, SID_A, "html"))
    order = [a.get("class", "") for t, a, _ in found.elements if t in ("div", "details")]
    assert "compaction" in order and order.index("compaction") < order.index("summary")
    shown = found.text()
    assert "Compaction (auto, 170,251 tokens before)" in " ".join(shown.split())
    assert "Compaction run not started by a tool call here " \
        "(subagents/agent-acompact-e1f845.jsonl)" in shown
    assert "Subagent not started by a tool call here (subagents/agent-a2898e3.jsonl)" in shown
    markdown = exported(built, tmp_path, SID_A, "md")
    assert "**── Compaction (auto, 170,251 tokens before)" in markdown


def test_spilled_tool_result_is_inlined_in_its_call(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_ODD, "html")
    found = parse(text)
    spilled = [outer for t, a, outer in found.elements
               if t == "details" and "spilled" in a.get("class", "")]
    assert spilled == [("tool",)]
    assert html.escape(SPILLED) in text
    markdown = exported(built, tmp_path, SID_ODD, "md")
    assert "".join(f"    {line}\n" for line in SPILLED.splitlines()) in markdown


def test_times_are_local(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_ODD, "html")
    assert '<time datetime="2026-03-01T10:00:00Z">2026-03-01 15:30:00 IST</time>' in text
    assert "2026-03-01 15:30:00 IST" in exported(built, tmp_path, SID_ODD, "md")


def test_checkpoints_timeline_and_markers(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_TASK, "html")
    log = built.project.git("log", "--format=%H %(trailers:key=Cmem-Session,valueonly)")
    commits = [line.split()[0] for line in log.splitlines() if line.endswith(SID_TASK)]
    assert len(commits) == 2 and commits[-1] == built.first_backup
    markers = re.findall(r'<div class="checkpoint" id="cp-([0-9a-f]{12})">', text)
    assert markers == [c[:12] for c in reversed(commits)], "oldest first"
    for commit in commits:
        assert f'href="#cp-{commit[:12]}"' in text
    first = text.index(f'id="cp-{built.first_backup[:12]}"')
    task_main = built.sessions[SID_TASK]["main.jsonl"]
    later = prompts(task_main[len(task_main) // 2:])[0]
    assert text.index(html.escape(later.split("\n")[0])) > first, \
        "the first checkpoint's marker comes before what its backup did not hold"


def test_at_an_earlier_revision(built: Built, tmp_path: Path) -> None:
    text = exported(built, tmp_path, SID_TASK, "html", "--at", built.first_backup)
    now = exported(built, tmp_path, SID_TASK, "html")
    assert parse(text).count("details", "tool") < parse(now).count("details", "tool")
    assert f"commit {built.first_backup[:8]}" in text


def test_stdout_and_errors(built: Built) -> None:
    done = export(built, SID_SHORT[:8], "-o", "-", "--format", "md")
    assert done.returncode == 0 and done.stdout.startswith(b"# mix phx.server")
    missing = export(built, "ffffffff")
    assert missing.returncode == 2 and b"hint:" in missing.stderr  # unknown session: a usage error (issue 14)
    both = export(built, SID_SHORT[:8], "--all", "-o", "x")
    assert both.returncode == 2 and b"SESSION" in both.stderr
    assert export(built, "--all").returncode == 2


def test_all_index_documents_and_links(built: Built, tmp_path: Path) -> None:
    folder = tmp_path / "site"
    done = export(built, "--all", "-o", str(folder))
    assert done.returncode == 0, done.stderr
    assert b"6 sessions written, 0 unchanged, 0 removed, 1 documents" in done.stdout
    index = parse((folder / "index.html").read_text())
    hrefs = [a["href"] for t, a, _ in index.elements if t == "a"]
    for sid in SESSIONS:
        assert f"sessions/{sid}.html" in hrefs
        parse((folder / "sessions" / f"{sid}.html").read_text())
    documents = sorted({h for h in hrefs if h.startswith("documents/")})
    assert len(documents) == 1
    doc = parse((folder / documents[0]).read_text())
    assert sorted(a["href"] for t, a, _ in doc.elements if t == "a" and "sessions/" in
                  a["href"]) == sorted(f"../sessions/{sid}.html" for sid in SESSIONS), \
        "it covers every backup before it"
    assert "Did things <script>alert(1)</script>" in doc.text()
    session = (folder / "sessions" / f"{SID_ODD}.html").read_text()
    assert f'href="../{documents[0]}"' in session and 'href="../index.html"' in session
    shown = index.text()
    assert "Hostile <b>title</b>" in shown and "mix phx.server doesnt seem to start" in shown


def test_all_is_incremental(project: Project, tmp_path: Path) -> None:
    env = clean_env(project.home)
    files = corpus_sessions()
    for sid in (SID_SHORT, SID_TOOLS):
        _end(project, sid, _place(project, sid, files[sid]))
    folder = tmp_path / "site"
    first = cmem("export", "--all", "-o", str(folder), cwd=project.root, env=env)
    assert b"2 sessions written, 0 unchanged" in first.stdout
    pages = {p: p.stat().st_mtime_ns for p in (folder / "sessions").iterdir()}
    index = (folder / "index.html").read_text()
    again = cmem("export", "--all", "-o", str(folder), cwd=project.root, env=env)
    assert b"0 sessions written, 2 unchanged" in again.stdout
    assert (folder / "index.html").read_text() == index, "the manifest's facts, as read before"
    assert {p: p.stat().st_mtime_ns for p in pages} == pages
    grown = files[SID_SHORT]["main.jsonl"] + message("user", "one more prompt")
    _end(project, SID_SHORT, _place(project, SID_SHORT, {"main.jsonl": grown}))
    third = cmem("export", "--all", "-o", str(folder), cwd=project.root, env=env)
    assert b"1 sessions written, 1 unchanged" in third.stdout
    assert "one more prompt" in (folder / "sessions" / f"{SID_SHORT}.html").read_text()
    assert (folder / "sessions" / f"{SID_TOOLS}.html").stat().st_mtime_ns == \
        pages[folder / "sessions" / f"{SID_TOOLS}.html"]
    markdown = cmem("export", "--all", "--format", "md", "-o", str(folder), cwd=project.root,
                    env=env)
    assert b"2 sessions written" in markdown.stdout and (folder / "index.md").is_file()
    _drop_session(project, SID_TOOLS)  # as a purge would
    fourth = cmem("export", "--all", "-o", str(folder), cwd=project.root, env=env)
    assert b"0 sessions written, 1 unchanged, 1 removed" in fourth.stdout
    assert not (folder / "sessions" / f"{SID_TOOLS}.html").exists()
    assert SID_TOOLS not in (folder / "index.html").read_text()


def _drop_session(project: Project, sid: str) -> None:
    store = Store.open(project.memory)
    folder = f"transcripts/{sid}/main.jsonl"

    def build(tip: Any) -> Draft:
        gone = {f"{folder}/{entry.name}": None for entry in tip.tree[folder]}
        return Draft(store.build_tree(tip.tree, gone), f"drop {sid}\n")
    assert store.commit(build) is not None
    assert f"transcripts/{sid}" not in project.git("ls-tree", "-r", "--name-only", "HEAD")


def test_output_into_a_folder(built: Built, tmp_path: Path) -> None:
    done = export(built, SID_SHORT[:8], "-o", str(tmp_path))
    assert done.returncode == 0
    assert (tmp_path / f"{SID_SHORT}.html").read_text().endswith("</html>\n")


# ------------------------------------------------------------------- a real browser

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    from browser import Browser, chromium
    binary = chromium()
    if binary is None:
        pytest.skip("no chromium installed (Debian package `chromium`; .ci/run installs it "
                    "when it runs as root)")
    driver = Browser(binary, tmp_path / "profile")
    yield driver
    driver.close()


def test_chromium_renders_the_page(built: Built, tmp_path: Path, browser: Any) -> None:
    path = tmp_path / "task.html"
    assert export(built, SID_TASK[:8], "-o", str(path)).returncode == 0
    expected = tool_blocks(built.sessions[SID_TASK]["main.jsonl"]) + tool_blocks(AGENT.read_bytes())
    browser.open(path.as_uri(), 390, 844)
    assert browser.evaluate("document.documentElement.classList.contains('js')"), \
        "the script ran: its hash in the policy is right"
    assert browser.evaluate("document.querySelectorAll('details.tool').length") == expected
    assert browser.evaluate("document.querySelectorAll('details.tool section.subagent "
                            "details.tool').length") == tool_blocks(AGENT.read_bytes())
    assert browser.evaluate("document.documentElement.scrollWidth") <= 390, "fits a phone"
    first = "document.querySelector('details.tool')"
    shown = f"{first}.querySelector('pre').checkVisibility()"
    height = f"{first}.getBoundingClientRect().height"
    closed = browser.evaluate(height)
    assert browser.evaluate(f"{first}.open") is False and browser.evaluate(shown) is False
    browser.evaluate(f"{first}.querySelector('summary').click()")
    assert browser.evaluate(f"{first}.open") is True and browser.evaluate(shown) is True
    assert browser.evaluate(height) > closed + 20, "opening shows the input and result"
    browser.evaluate("document.querySelector('[data-open=\"0\"]').click()")
    assert browser.evaluate("document.querySelectorAll('details[open]').length") == 0
    browser.evaluate("dispatchEvent(new Event('beforeprint'))")
    assert browser.evaluate("document.querySelectorAll('details:not([open])').length") == 0
    background = "getComputedStyle(document.body).backgroundColor"
    assert browser.evaluate(background) == "rgb(255, 255, 255)"
    browser.call("Emulation.setEmulatedMedia",
                 features=[{"name": "prefers-color-scheme", "value": "dark"}])
    assert browser.evaluate(background) == "rgb(13, 17, 23)"
    screenshot = browser.screenshot()
    assert screenshot.startswith(PNG) and int.from_bytes(screenshot[16:20], "big") == 390
    assert browser.pdf().startswith(b"%PDF")
    requests = [e["params"]["request"]["url"] for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"]
    assert requests == [path.as_uri()], "the page loads nothing but itself"
    assert not [e for e in browser.events if e.get("method") == "Log.entryAdded"], \
        "no policy violation or other error in the console"


def test_chromium_runs_no_transcript_script(built: Built, tmp_path: Path, browser: Any) -> None:
    path = tmp_path / "odd.html"
    assert export(built, SID_ODD[:8], "-o", str(path)).returncode == 0
    browser.open(path.as_uri(), 1000, 800)
    assert browser.evaluate("typeof window.__pwned") == "undefined"
    assert browser.evaluate("document.querySelectorAll('script').length") == 1
    assert browser.evaluate("document.querySelectorAll('img, textarea').length") == 0
    assert "<script>window.__pwned=1</script>" in browser.evaluate("document.body.innerText")
    assert browser.evaluate("document.querySelector('details.spilled').closest('details.tool')"
                            ".id") == f"tool-{SPILL_ID}"


# ------------------------------------------------------------------- a 100 MiB session

# Peak memory is read in a small parent of the export: Linux carries a process's peak RSS
# across fork and exec, so the export's own figure would include the test process's.
MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def _export_on_a_terminal(project: Project, sid: str, target: Path) -> tuple[int, bytes]:
    """Export with stderr on a pseudo-terminal (where the progress bar goes): the export's
    peak resident memory in KiB, and what the terminal showed."""
    master, slave = os.openpty()
    process = subprocess.Popen([PYTHON, "-c", MEASURE, str(Path(PYTHON).parent / "cmem"),
                                "export", sid, "-o", str(target)], cwd=project.root,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                               env=clean_env(project.home))
    os.close(slave)
    shown = []
    with contextlib.suppress(OSError):  # EIO once every writer of the terminal is gone
        while data := os.read(master, 65536):
            shown.append(data)
    out, _ = process.communicate(timeout=600)
    os.close(master)
    assert process.returncode == 0, b"".join(shown)
    return int(out.split()[-1]), b"".join(shown)


def test_a_100_mib_session_exports_in_chunk_memory_with_a_progress_bar(
        project: Project, tmp_path: Path) -> None:
    config = project.memory / "cmem.yaml"
    text = config.read_text()
    assert "\nredaction: true\n" in text
    config.write_text(text.replace("\nredaction: true\n", "\nredaction: false\n"))  # faster
    lines = (SPOTTER / "tool_heavy.jsonl").read_bytes()
    sizes = {"small": 1 << 20, "big": 100 << 20}
    peaks = {}
    for name, size in sizes.items():
        sid = f"{name}-{size}"
        data = lines * (size // len(lines) + 1)
        _end(project, sid, _place(project, sid, {"main.jsonl": data}))
        (project.transcripts / f"{sid}.jsonl").unlink()
        del data
        target = tmp_path / f"{name}.html"
        peaks[name], shown = _export_on_a_terminal(project, sid, target)
        assert target.read_bytes().endswith(b"</html>\n")
        if name == "big":
            assert b"exporting" in shown and b"100%" in shown, shown[-400:]
            with target.open("rb") as page_file:
                calls = sum(piece.count(b'<details class="tool') for piece in
                            iter(lambda: page_file.read(1 << 20), b""))
            assert calls == (size // len(lines) + 1) * tool_blocks(lines)  # (no tag is cut:
            # a read boundary inside one would only lower the count)
    growth = (peaks["big"] - peaks["small"]) * 1024
    assert growth < (sizes["big"] - sizes["small"]) / 8, \
        f"peak memory grew by {growth >> 20} MiB for 99 MiB more transcript"
