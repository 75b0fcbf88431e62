"""Reading what matters (issue 14): transcript files by kind, the conversation first within
one meaning of --max-chars, git-shaped log and show, errors that say what was wrong, no-op
commands that commit nothing, and a --help for every command.

Histories are made by the real hook commands (conftest.run_hook) over corpus transcripts; the
commands run as the installed `cmem`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import click
import pytest
from conftest import CORPUS, Project, cmem, payload, run_hook

from cmem_git.cli import main
from cmem_git.cli.options import cli

SPOTTER = CORPUS / "spotter"
TOOL_HEAVY = SPOTTER / "tool_heavy.jsonl"
SPILLED = "toolu_01FZ9TWbiy1LPzHm1AAyUazo"  # a Bash call in tool_heavy.jsonl
SESSION = "5e6f7a8b-0000-4000-8000-00000000aaaa"
OTHER = "5e6f7a8b-0000-4000-8000-00000000bbbb"
BUILD_LOG = b"".join(f"[build] step {i}: compiling module_{i}.ex\n".encode()
                     for i in range(3000))


def ok(project: Project, *args: str, input: bytes | None = None) -> str:
    done = cmem(*args, cwd=project.root, input=input)
    assert done.returncode == 0, (args, done.stderr.decode())
    return done.stdout.decode()


def head(project: Project) -> str:
    return project.git("rev-parse", "HEAD").strip()


def hook(project: Project, event: str, session: str, **extra: str) -> None:
    transcript = project.transcripts / f"{session}.jsonl"
    done = run_hook(project, event, payload(event, session, transcript, project.root, **extra))
    assert done.returncode == 0 and b"failed" not in done.stdout + done.stderr, done


def spilled_session(project: Project) -> Path:
    """A session whose one Bash call spilled a 3,000-line build log to tool-results/."""
    shutil.copyfile(TOOL_HEAVY, project.transcripts / f"{SESSION}.jsonl")
    folder = project.transcripts / SESSION / "tool-results"
    folder.mkdir(parents=True)
    (folder / f"{SPILLED}.txt").write_bytes(BUILD_LOG)
    hook(project, "SessionEnd", SESSION)
    return folder / f"{SPILLED}.txt"


# ---------------------------------------------------------------- transcript files by kind


def test_spilled_tool_output_is_an_attachment_not_records(project: Project) -> None:
    spilled_session(project)
    records = len(TOOL_HEAVY.read_bytes().splitlines())
    stored = f"transcripts/{SESSION}/tool-results/{SPILLED}.txt"
    outputs = {"resume": ok(project, "resume", "--max-chars", "30000"),
               "delta": ok(project, "delta"),
               "diff": ok(project, "diff", "HEAD~1", "HEAD")}
    for name, out in outputs.items():
        assert "invalid JSON" not in out, name
        assert "**User:** start phoenix in background" in out, name
        assert "[build] step" not in out, name  # the text itself only on request
        notes = [line for line in out.splitlines() if f"tool-results/{SPILLED}.txt (" in line]
        assert len(notes) == 1, (name, notes)
        assert "3000 lines" in notes[0] and f":{stored}`" in notes[0], notes[0]
    # in the conversation, the note sits on the tool call that spilled it
    for name in ("resume", "delta"):
        call = next(line for line in outputs[name].splitlines() if SPILLED in line)
        assert call.startswith("→ Bash(tail -5 "), call
    # the full text, on request
    rev = re.search(r"`cmem show (\w+):", outputs["delta"])
    assert rev is not None
    assert cmem("show", f"{rev[1]}:{stored}", cwd=project.root).stdout == BUILD_LOG
    # log and commit subjects count records, not lines of text
    subject = project.git("log", "-1", "--format=%s")
    assert f"+{records} records" in subject, subject
    assert f"+{records} records" in ok(project, "log", "-n", "1")
    trailers = project.git("log", "-1", "--format=%(trailers:key=Cmem-Added-Lines,valueonly)")
    assert trailers.strip() == str(records)
    stat = ok(project, "diff", "--stat", "HEAD~1", "HEAD")
    assert f"{SESSION} main.jsonl: +{records} records" in stat
    assert f"{SESSION} tool-results/{SPILLED}.txt: +3000 lines of attachment" in stat
    data = json.loads(ok(project, "diff", "--json", "HEAD~1", "HEAD"))
    kinds = {t["file"]: (t["kind"], t["records"]) for t in data["transcripts"]}
    assert kinds == {"main.jsonl": ("transcript", records),
                     f"tool-results/{SPILLED}.txt": ("attachment", 0)}
    jsonl = cmem("delta", "--jsonl", cwd=project.root).stdout
    assert all(json.loads(line) for line in jsonl.splitlines())  # only records


def test_an_attachment_without_its_call_is_a_line_of_its_own(project: Project) -> None:
    path = spilled_session(project)
    with open(path, "ab") as handle:
        handle.write(b"[build] done\n")
    hook(project, "PreCompact", SESSION)
    out = ok(project, "delta", "--since", "HEAD~1")
    assert out.count("\n- attachment tool-results/") == 1 and "(+1 lines" not in out
    assert "(+1 line," in out


# ---------------------------------------------------------------- the conversation first


def record(kind: str, content: object) -> bytes:
    return json.dumps({"type": kind, "message": {"role": kind, "content": content}}).encode()


def busy_session(turns: int) -> bytes:
    """`turns` exchanges, each a request, three tool calls with their results, an answer."""
    lines = []
    for turn in range(turns):
        lines.append(record("user", f"request {turn}: please do thing {turn}"))
        for call in range(3):
            tool_id = f"toolu_{turn:03d}{call}"
            lines.append(record("assistant", [{"type": "tool_use", "id": tool_id,
                                               "name": "Bash",
                                               "input": {"command": f"make step{call} " * 8}}]))
            lines.append(record("user", [{"type": "tool_result", "tool_use_id": tool_id,
                                          "content": "ok\n" * 40}]))
        lines.append(record("assistant", [{"type": "text", "text": f"answer {turn}: done"}]))
    return b"\n".join(lines) + b"\n"


def test_newest_kept_and_words_before_tool_calls(project: Project) -> None:
    (project.transcripts / f"{SESSION}.jsonl").write_bytes(busy_session(60))
    hook(project, "SessionEnd", SESSION)
    everything = ok(project, "delta", "--max-chars", "0")
    assert "left out" not in everything and "request 0:" in everything
    calls = [line for line in everything.splitlines() if line.startswith("→ Bash(")]
    assert len(calls) == 180  # one line per tool call, its result on the same line
    assert all(line.endswith("↳ ok / ok / ok … (+37 lines)") for line in calls), calls[0]
    cut = ok(project, "delta", "--max-chars", "3000")
    assert len(cut) <= 3000 and "answer 59: done" in cut  # the newest is kept
    assert "request 0:" not in cut
    kept = [int(n) for n in re.findall(r"request (\d+):", cut)]
    assert kept == list(range(kept[0], 60))  # a contiguous, newest stretch
    assert all(f"answer {n}: done" in cut for n in kept)  # every message of it ...
    assert cut.count("→ Bash(") < 3 * len(kept)  # ... but not every tool call
    note = cut.splitlines()[0]
    assert re.fullmatch(r"… left out to fit 3,000 characters: \d+ earlier messages and \d+ "
                        r"tool calls; `cmem delta --max-chars 0` shows everything\.", note), note


def test_max_chars_has_one_meaning(project: Project) -> None:
    (project.transcripts / f"{SESSION}.jsonl").write_bytes(busy_session(60))
    hook(project, "SessionEnd", SESSION)
    for command in ("resume", "delta"):
        unlimited = ok(project, command, "--max-chars", "0")
        assert "left out" not in unlimited and "request 0:" in unlimited, command
        bounded = ok(project, command, "--max-chars", "2500")
        assert len(bounded) <= 2500 and "left out" in bounded, command
        assert f"`cmem {command} --max-chars 0` shows everything" in bounded
        done = cmem(command, "--max-chars", "-1", cwd=project.root)
        assert done.returncode == 2 and b"-1" in done.stderr, command
        helped = ok(project, command, "--help")
        assert "0: no limit" in " ".join(helped.split()), command


def test_resume_summarises_subagents_and_marks_compaction(project: Project) -> None:
    session = "4d5611e5-241a-462a-8d15-5122611a9569"
    excerpt = SPOTTER / f"{session}.EXCERPT-compact.jsonl"
    shutil.copyfile(excerpt, project.transcripts / f"{session}.jsonl")
    shutil.copytree(SPOTTER / session / "subagents",
                    project.transcripts / session / "subagents")
    hook(project, "SessionEnd", session)
    out = ok(project, "resume", "--max-chars", "0")
    assert "──── compaction (auto) ────" in out
    assert "[compaction summary for the next context]" in out
    agent = len((SPOTTER / session / "subagents" / "agent-a2898e3.jsonl").read_bytes()
                .splitlines())
    line = next(x for x in out.splitlines() if x.startswith("- subagent agent-a2898e3 "))
    assert line.startswith(f"- subagent agent-a2898e3 (+{agent} records, ")
    assert "asked: Very thorough exploration." in line and "answered: " in line
    assert "- compaction run agent-acompact-e1f845 (+5 records)" in out
    assert "isSidechain" not in out and len(out) < 20_000


# ---------------------------------------------------------------- log and show, like git


def test_log_revision_range_and_path(project: Project) -> None:
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{SESSION}.jsonl")
    hook(project, "PreCompact", SESSION)
    first = head(project)
    hook(project, "SessionEnd", SESSION)  # the exit line: active-context.md changes
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{OTHER}.jsonl")
    hook(project, "Stop", OTHER)
    git_ids = project.git("rev-list", "HEAD").split()

    def ids(*args: str) -> list[str]:
        return [json.loads(x)["commit"] for x in ok(project, "log", "--json", *args).splitlines()]

    assert ids() == git_ids
    assert ids(first) == project.git("rev-list", first).split()
    assert ids(f"{first}..HEAD") == project.git("rev-list", f"{first}..HEAD").split()
    assert ids("HEAD~1..") == git_ids[:1]
    touched = project.git("rev-list", "HEAD", "--", "active-context.md").split()
    assert ids("--", "active-context.md") == touched
    assert ids("active-context.md") == touched  # no revision of that name: a path, as in git
    assert ids("HEAD~1", "--", f"transcripts/{SESSION}") == \
        project.git("rev-list", "HEAD~1", "--", f"transcripts/{SESSION}").split()
    assert ids(f"session:{OTHER}") == git_ids  # cmem's own revisions work too


@pytest.mark.parametrize("args, words", [
    (["--session", "zzzz"], b"no session matches 'zzzz'"),
    (["--event", "bogus"], b"unknown event 'bogus'"),
    (["-n", "-3"], b"-3"),
    (["nosuchrev"], b"nosuchrev"),
    (["HEAD", "HEAD~1"], b"one revision or range at a time"),
])
def test_log_errors_say_what_was_wrong(project: Project, args: list[str], words: bytes) -> None:
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{SESSION}.jsonl")
    hook(project, "Stop", SESSION)
    done = cmem("log", *args, cwd=project.root)
    assert done.returncode == (1 if args == ["nosuchrev"] else 2), done
    assert done.stdout == b"" and words in done.stderr, done.stderr
    assert b"hint: " in done.stderr or b"Try 'cmem log --help'" in done.stderr


def test_show_gives_records_and_patch(project: Project) -> None:
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{SESSION}.jsonl")
    hook(project, "SessionEnd", SESSION)
    out = ok(project, "show")
    records = len((SPOTTER / "short.jsonl").read_bytes().splitlines())
    assert f"\n=== session {SESSION} main.jsonl: +{records} records\n" in out
    assert "**User:** " in out
    patch = out.split("--- a/active-context.md\n", 1)[1]
    assert patch.startswith("+++ b/active-context.md\n@@ ")
    assert re.search(rf"^\+> Last Session End: .* session {SESSION}$", patch, re.MULTILINE)
    git_patch = project.git("show", "--format=", "HEAD", "--", "active-context.md")
    assert [s for s in patch.splitlines() if s[:1] in "+-" and s[:3] not in ("+++", "---")] == \
        [s for s in git_patch.splitlines() if s[:1] in "+-" and s[:3] not in ("+++", "---")]


# ---------------------------------------------------------------- no-ops, words, help


def test_discard_with_nothing_pending_commits_nothing(project: Project) -> None:
    tip = head(project)
    assert ok(project, "discard") == \
        "nothing to discard: no backups since the last session document\n"
    assert head(project) == tip
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{SESSION}.jsonl")
    hook(project, "Stop", SESSION)
    out = ok(project, "discard")
    assert out.startswith("marked 1 pending backup as dealt with (")
    assert head(project) != tip
    tip = head(project)
    ok(project, "discard")
    assert head(project) == tip


def test_fresh_start_with_nothing_to_reset_commits_nothing(project: Project) -> None:
    tip = head(project)
    out = ok(project, "fresh-start", "--yes")
    assert out == "nothing to do: the memory files are the templates and nothing is pending\n"
    assert head(project) == tip
    (project.memory / "active-context.md").write_text("# Edited\n")
    assert ok(project, "fresh-start", "--yes").startswith("memory files reset (")
    assert head(project) != tip and project.git("status", "--porcelain") == ""


def test_status_words_agree_with_their_numbers(project: Project) -> None:
    shutil.copyfile(SPOTTER / "short.jsonl", project.transcripts / f"{SESSION}.jsonl")
    hook(project, "Stop", SESSION)
    assert "since then 1 backup in 1 session\n" in ok(project, "status")


def test_help_command(project: Project) -> None:
    top = ok(project, "help")
    assert top.startswith("Usage: cmem [OPTIONS] COMMAND [ARGS]...") and "cmem cmem" not in top
    assert top == ok(project, "--help")
    assert ok(project, "help", "log") == ok(project, "log", "--help")
    assert ok(project, "help", "log").startswith("Usage: cmem log [OPTIONS] [REV | A..B]")
    done = cmem("help", "nothing-like-it", cwd=project.root)
    assert done.returncode == 2 and b"no help topic" in done.stderr


def test_uninstall_twice(project: Project) -> None:
    first = ok(project, "uninstall")
    assert "removed" in first.lower() or "settings.json" in first
    second = ok(project, "uninstall")
    assert second.startswith("nothing to do: cmem's hooks are not in .claude/settings.local.json")
    assert "already set up" not in second


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in sorted(group.commands.items()):
        found.append(prefix + (name,))
        if isinstance(command, click.Group):
            found += commands(command, prefix + (name,))
    return found


@pytest.mark.parametrize("path", commands(cli), ids=" ".join)
def test_every_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    """Every command's --help works, names itself right and explains every option."""
    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: cmem {' '.join(path)} "), out
    blocks = out.split("\n\n")
    assert len(blocks) > 1 and blocks[1].strip(), f"{path}: no description"
    options = out.split("Options:\n", 1)[1] if "Options:\n" in out else ""
    for line in options.splitlines():
        if line.startswith("  -"):
            assert re.match(r"  \S.*\S\s{2,}\S", line) or "--help" in line, \
                f"{path}: an option without help: {line!r}"


def test_every_help_through_the_installed_command(project: Project) -> None:
    """The same, as a user runs it: one process for the top level, one per command group."""
    for path in [p for p in commands(cli) if len(p) == 1]:
        done = subprocess.run([*_command(), *path, "--help"], capture_output=True,
                              cwd=project.root)
        assert done.returncode == 0 and done.stdout.startswith(b"Usage: cmem "), path


def _command() -> list[str]:
    from conftest import PYTHON
    script = Path(PYTHON).parent / "cmem"
    return [str(script)] if script.exists() else [PYTHON, "-m", "cmem_git"]
