"""The real Claude Code, offline against the mock API, in a project where `cmem init` ran.

After every step: each of Claude Code's files comes back from `cmem cat` byte for byte, the
memory repository is clean (`git status --porcelain`, `git fsck`) and no hook failed
(harness.verify). The prompts script the mock: see mock_api.py.
"""

from __future__ import annotations

import json

from conftest import git

from .harness import Claude, Machine, verify

EVERY_TURN = {"SessionStart", "Stop", "SessionEnd"}


def trailers(machine: Machine, session: str) -> list[dict[str, str]]:
    """The trailers of every commit for a session, newest first (read with the git CLI)."""
    out = git(machine.memory, "log", "--format=%(trailers:unfold)%x00")
    commits = [dict(line.split(": ", 1) for line in block.strip().splitlines() if ": " in line)
               for block in out.split("\0") if block.strip()]
    return [c for c in commits if c.get("Cmem-Session") == session]


def test_print_mode_session(claude: Claude, machine: Machine) -> None:
    run = claude(machine, "hello MARK-print")
    verify(machine, run, EVERY_TURN)
    assert run.result["result"].startswith("reply to: hello MARK-print")
    # cmem's SessionStart context reached the model
    assert "# cmem: session memory" in claude.api.sent_text(run.first_request)
    events = [(c["Cmem-Event"], c.get("Cmem-Reason")) for c in trailers(machine, run.session_id)]
    # print mode ends with SessionEnd reason "other"
    assert ("session-end", "other") in events


def test_resume_and_continue(claude: Claude, machine: Machine) -> None:
    first = claude(machine, "remember MARK-first")
    verify(machine, first, EVERY_TURN)
    resumed = claude(machine, "and MARK-second", "--resume", first.session_id)
    verify(machine, resumed, EVERY_TURN)
    assert "MARK-first" in claude.api.sent_text(resumed.first_request)
    continued = claude(machine, "then MARK-third", "--continue")
    verify(machine, continued, EVERY_TURN)
    sent = claude.api.sent_text(continued.first_request)
    assert "MARK-first" in sent and "MARK-second" in sent
    starts = [h.detail for h in continued.hooks if h.event == "SessionStart"]
    assert starts == ["resume"]


def test_bash_tool_and_spilled_output(claude: Claude, machine: Machine) -> None:
    small = claude(machine, "MOCK:bash echo MARK-small-output")
    verify(machine, small, EVERY_TURN)
    big = claude(machine, "MOCK:bash seq 1 80000")
    verify(machine, big, EVERY_TURN)
    spilled = list((machine.transcripts / big.session_id / "tool-results").iterdir())
    assert spilled, "Claude Code kept the large output in its transcript, not tool-results/"
    assert b"\n79999\n" in spilled[0].read_bytes()


def test_subagent(claude: Claude, machine: Machine) -> None:
    run = claude(machine, "MOCK:agent say MARK-from-subagent")
    verify(machine, run, EVERY_TURN)
    agents = list((machine.transcripts / run.session_id / "subagents").glob("*.jsonl"))
    assert agents and b"MARK-from-subagent" in agents[0].read_bytes()


def test_compact(claude: Claude, machine: Machine) -> None:
    first = claude(machine, "work on MARK-before-compact MOCK:bash echo done")
    verify(machine, first, EVERY_TURN)
    compacted = claude(machine, "/compact", "--resume", first.session_id)
    verify(machine, compacted, EVERY_TURN - {"Stop"} | {"PreCompact"})
    events = compacted.events()
    assert events.index("PreCompact:manual") < events.index("SessionStart:compact")
    summary = [r for r in claude.api.messages()[compacted.first_request:] if r.reply == "compact"]
    assert summary and "MARK-before-compact" in json.dumps(summary[0].body)
    pre = [c for c in trailers(machine, first.session_id) if c["Cmem-Event"] == "pre-compact"]
    assert pre and pre[0].get("Cmem-Trigger") == "manual"
