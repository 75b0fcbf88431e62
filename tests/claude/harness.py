"""Running the real `claude` on a "machine" (a HOME and a project where `cmem init` ran) and
checking, after every step, what the issue asks: `cmem cat` gives back each of Claude Code's
files byte for byte, the memory repository is clean and sound, and no hook failed.

A hook failure can hide in three places, all checked: the hook's exit status in Claude Code's
debug log, cmem's own error log in `.git/cmem/` (cmem exits 0 and reports through a
`systemMessage`, so the status alone proves nothing), and claude's stderr. The debug log also
gives the hook durations as Claude Code measured them (`finished with status 0 (349ms)`); for the
events it logs without a duration (SessionEnd, PreCompact) the time since the line before is an
upper bound.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import MINIMAL_PATH, Project, cmem

from cmem_git.entry import detach

from .mock_api import MockApi

# Claude Code's debug lines for a finished hook, e.g.
# `2026-12-02T01:22:10.477Z [DEBUG] Hooks: SessionStart:startup [cmd] finished with status 0 (349ms)`
_HOOK_LINE = re.compile(r"^(\S+) \[DEBUG\] (?:Hooks: )?([A-Za-z]+)(?::(\w+))? \[(.+?)\] "
                        r"(?:finished|completed) with status (-?\d+)(?: \((\d+)ms\))?", re.M)
_CMEM_DIRS = ("subagents", "tool-results")  # what cmem backs up beside <session>.jsonl
EVERY_TURN = {"SessionStart", "Stop", "SessionEnd"}  # the cmem hooks every `claude -p` runs


@dataclass(frozen=True)
class HookRun:
    event: str
    detail: str | None
    command: str
    status: int
    millis: int
    upper_bound: bool  # True when Claude Code logged no duration (see the module docstring)


# Every cmem hook run and every request the mock API did not know, for pytest's summary.
DURATIONS: list[HookRun] = []
UNKNOWN: set[str] = set()


@dataclass
class Machine(Project):
    """One device: its HOME (with Claude Code's folder) and a project where `cmem init` ran."""

    name: str = "laptop"

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home / ".config")}

    def cmem(self, *args: str) -> bytes:
        done = cmem(*args, cwd=self.root, env=self.env())
        assert done.returncode == 0, f"cmem {' '.join(args)}: {done.stderr.decode()}"
        return done.stdout


def new_machine(base: Path, name: str, project: str) -> Machine:
    home, root = base / name / "home", base / name / project
    home.mkdir(parents=True)
    root.mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Test User\n\temail = test@example.com\n"
                                     "[init]\n\tdefaultBranch = main\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    machine = Machine(root, home, name)
    machine.cmem("init")
    config = machine.memory / "cmem.yaml"  # both "machines" share a host name: tell them apart
    config.write_text(re.sub(r"(?m)^device: .*$", f"device: {name}", config.read_text()))
    return machine


@dataclass
class Run:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    debug: str
    hooks: list[HookRun]
    first_request: int  # index into api.messages() of this run's first model request
    seconds: float  # wall time of the claude process

    @property
    def result(self) -> dict[str, Any]:
        return dict(json.loads(self.stdout))

    @property
    def session_id(self) -> str:
        return str(self.result["session_id"])

    def events(self) -> list[str]:
        return [h.event + (f":{h.detail}" if h.detail else "") for h in self.hooks]


@dataclass
class Claude:
    """`claude -p` on a machine, offline against the mock API."""

    binary: Path
    api: MockApi
    logs: Path
    runs: list[Run] = field(default_factory=list)

    def __call__(self, machine: Machine, prompt: str, *args: str, check: bool = True,
                 env: dict[str, str] | None = None) -> Run:
        debug = self.logs / f"debug-{len(self.runs):02d}.log"
        command = [str(self.binary), "-p", prompt, "--output-format", "json",
                   "--dangerously-skip-permissions", "--debug-file", str(debug), *args]
        first = len(self.api.messages())
        started = time.perf_counter()
        done = subprocess.run(command, cwd=machine.root, env={**self._env(machine), **(env or {})},
                              capture_output=True, text=True, timeout=180,
                              stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - started  # claude itself, not the detached work after it
        gitdir = machine.memory / ".git"  # Stop and SessionEnd commit in detached processes
        assert not gitdir.is_dir() or detach.wait(gitdir, 120), "a detached hook did not finish"
        text = debug.read_text(errors="replace") if debug.exists() else ""
        run = Run(command, done.returncode, done.stdout, done.stderr, text, hook_runs(text), first,
                  seconds)
        self.runs.append(run)
        DURATIONS.extend(h for h in cmem_hooks(run) if h.status == 0)
        UNKNOWN.update(self.api.unknown())
        if check:
            assert done.returncode == 0, f"claude failed ({done.returncode}): {done.stderr}"
        return run

    def _env(self, machine: Machine) -> dict[str, str]:
        env = {"HOME": str(machine.home), "PATH": MINIMAL_PATH, "LANG": "C.UTF-8",
               "ANTHROPIC_BASE_URL": self.api.url, "ANTHROPIC_API_KEY": "sk-ant-mock-key",
               # No traffic but to the mock: no telemetry, updates, error reports or the rest.
               "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
               "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1",
               "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
               "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1", "GIT_CONFIG_NOSYSTEM": "1"}
        if os.geteuid() == 0:  # --dangerously-skip-permissions is refused as root otherwise
            env["IS_SANDBOX"] = "1"
        return env


def hook_runs(debug: str) -> list[HookRun]:
    found, previous = [], _line_times(debug)
    for match in _HOOK_LINE.finditer(debug):
        stamp, event, detail, command, status, millis = match.groups()
        bound = millis is None
        if bound:
            before = previous.get(match.start())
            millis = str(int((_time(stamp) - before) * 1000)) if before else "0"
        found.append(HookRun(event, detail, command, int(status), int(millis), bound))
    return found


def _line_times(debug: str) -> dict[int, float]:
    """Offset of each line -> the time of the line before it."""
    times, offset, last = {}, 0, None
    for line in debug.splitlines(keepends=True):
        stamp = line.split(" ", 1)[0]
        if last is not None:
            times[offset] = last
        try:
            last = _time(stamp)
        except ValueError:
            pass
        offset += len(line)
    return times


def _time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def cmem_hooks(run: Run) -> list[HookRun]:
    return [h for h in run.hooks if "cmem_git hook" in h.command or "cmem hook" in h.command]


def verify(machine: Machine, run: Run, events: set[str]) -> None:
    """Everything the issue asks after each step; `events` must each have run a cmem hook."""
    hooks_succeeded(machine, run, events)
    backups_match(machine)
    repository_clean(machine)


def hooks_succeeded(machine: Machine, run: Run, events: set[str], expected: str = "") -> None:
    """`expected`: a notice the step must show the user (a `systemMessage` holding it); any
    other `systemMessage` is a problem a hook reported."""
    failed = [h for h in run.hooks if h.status != 0]
    assert not failed, f"hooks failed: {failed}\n{run.stderr}"
    ran = {h.event for h in cmem_hooks(run)}
    assert events <= ran, f"cmem hooks that did not run: {events - ran} (ran: {run.events()})"
    assert "cmem" not in run.stderr, run.stderr
    messages = [line for line in run.debug.splitlines() if '"systemMessage"' in line]
    problems = [line for line in messages if not expected or expected not in line]
    assert not problems, "a hook reported a problem: " + "\n".join(problems)
    assert not expected or messages, f"no hook told the user {expected!r}"
    logged = {name: read(machine.memory / ".git" / "cmem" / name)
              for name in ("errors.jsonl", "errors.reported.jsonl", "cmem.log")}
    assert not any(logged.values()), f"cmem recorded hook errors: {logged}"


def read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def backups_match(machine: Machine) -> None:
    """`cmem cat` of every file Claude Code keeps for a session equals the file, byte for byte."""
    sessions = sorted(machine.transcripts.glob("*.jsonl"))
    assert sessions, f"Claude Code wrote no transcript in {machine.transcripts}"
    for main in sessions:
        sid = main.stem
        assert machine.cmem("cat", sid) == main.read_bytes(), f"cmem cat {sid} differs"
        for path in session_files(machine.transcripts / sid):
            name = path.relative_to(machine.transcripts / sid).as_posix()
            assert machine.cmem("cat", sid, "--file", name) == path.read_bytes(), name


def session_files(folder: Path) -> list[Path]:
    """The files beside a session's main transcript; a kind of folder cmem does not back up
    (a new Claude Code version might add one) fails the check rather than go unnoticed."""
    if not folder.is_dir():
        return []
    unknown = [p.name for p in folder.iterdir() if p.name not in _CMEM_DIRS]
    assert not unknown, f"Claude Code keeps files cmem does not back up: {folder}/{unknown}"
    return sorted(p for p in folder.rglob("*") if p.is_file())


def repository_clean(machine: Machine) -> None:
    wait_for_background_sync(machine)
    assert machine.git("status", "--porcelain") == ""
    machine.git("fsck", "--strict", "--no-progress")


def wait_for_background_sync(machine: Machine, timeout: float = 60) -> None:
    """SessionEnd pushes from a detached process (it outlives claude); wait until it is gone."""
    deadline = time.monotonic() + timeout
    while _background_syncs(machine):
        assert time.monotonic() < deadline, f"background sync of {machine.name} still running"
        time.sleep(0.05)


def _background_syncs(machine: Machine) -> list[int]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"background-sync" in (proc / "cmdline").read_bytes() and \
                    str(machine.root).encode() in (proc / "environ").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found
