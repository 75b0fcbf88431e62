"""The Claude Code hook events cmem acts on: one table, from which the installed settings
(setup/settings.py), the config's on/off switches (config.py) and the hook dispatcher
(entry/hooks.py, which adds a handler per name) all derive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class HookEvent:
    name: str  # cmem's: `cmem hook NAME`, the Cmem-Event trailer, `cmem log --event`
    claude: str  # Claude Code's: the key in settings.json, hookEventName in the payload
    detail: str | None  # the payload field that says why the event fired
    trailer: str | None  # the trailer that records the detail: Cmem-<trailer>
    timeout: int  # seconds Claude Code gives the hook, as installed in settings.json
    budget: float  # seconds a long transcript is stored for before the hook commits what is done
    wait: float | None  # seconds to wait for the repository lock (None: the lock's default)
    channel: Literal["stdout", "stderr"]  # where a problem is reported (see `hooks._channel`)
    throttled: bool = False  # at most one commit per session per `stop_throttle_minutes`
    detached: bool = False  # Claude need not wait: the work runs in a process of its own (detach.py)

    @property
    def config_key(self) -> str:
        """Its switch in cmem.yaml's `events:` (`pre-compact` -> `pre_compact`)."""
        return self.name.replace("-", "_")


EVENTS = (
    # SessionStart prints context (stdout) and catches up on what earlier sessions left.
    HookEvent("session-start", "SessionStart", "source", "Source", timeout=30, budget=8.0,
              wait=None, channel="stdout"),
    # Compaction waits for the hook, and the transcript is rewritten right after it.
    HookEvent("pre-compact", "PreCompact", "trigger", "Trigger", timeout=60, budget=30.0,
              wait=None, channel="stdout"),
    # SessionEnd hooks share a 1.5 s budget unless one sets its own timeout (up to 60 s), and
    # Claude Code discards their output. Detached, the work outlives both the budget and
    # Claude Code; run in the foreground (CMEM_HOOK_FOREGROUND), it waits briefly for the lock,
    # stores for under a second, and leaves the rest to the next SessionStart.
    HookEvent("session-end", "SessionEnd", "reason", "Reason", timeout=5, budget=0.9,
              wait=0.8, channel="stderr", detached=True),
    HookEvent("stop", "Stop", None, None, timeout=30, budget=30.0, wait=None, channel="stdout",
              throttled=True, detached=True),
    # A long turn of subagents reaches Stop only at its end; SubagentStop commits during it,
    # throttled as Stop is. Compaction runs as a forked agent, so SubagentStop fires for it too,
    # with an agent_transcript_path Claude Code never writes: cmem backs up the session's own
    # files and ignores that path. (No PostCompact hook: Claude Code 2.1 writes the compaction
    # summary after PostCompact and SessionStart `compact` have run, so it would find nothing
    # new; tests/claude/test_sessions.py::test_compact checks that this still holds.)
    HookEvent("subagent-stop", "SubagentStop", "agent_id", "Agent", timeout=30, budget=30.0,
              wait=None, channel="stdout", throttled=True, detached=True),
)
BY_NAME = {event.name: event for event in EVENTS}
