#!/usr/bin/env python3
"""Per-session overhead under the real Claude Code (issue 13, point 6): one-prompt `claude -p`
sessions, offline against the mock Messages API of tests/claude, in a project where `cmem init`
ran beside the same project without cmem's hooks. Runs alternate between the two, so that both
see the same load. Target: a session with cmem ≤ 1.3x a session without.

    python bench/bench_client.py [--runs 9]

The binary is the one the claude tier uses (tests/claude/client.py: `$CMEM_CLAUDE`, the pinned
version in the cache, `claude` on PATH, else `npm install` of the pinned version). Each row:
median wall [fastest] of the `claude` process, and the hook durations Claude Code logged. Work a
hook handed to a detached process (packing, a push, the backup of Stop and SessionEnd) is not in
the session's time, by design; the benchmark waits for it between runs, so that it does not
load the next one, and checks that each session's SessionEnd commit landed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests")]

from claude import client  # noqa: E402
from claude.harness import Claude, Machine, cmem_hooks, new_machine  # noqa: E402
from claude.mock_api import MockApi  # noqa: E402

from cmem_git.entry import detach  # noqa: E402
from cmem_git.git import packing  # noqa: E402


def plain_machine(base: Path) -> Machine:
    """The same project, without cmem: a git repository and a HOME."""
    home, root = base / "plain" / "home", base / "plain" / "my project"
    home.mkdir(parents=True)
    root.mkdir(parents=True)
    (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return Machine(root, home, "plain")


def settle(machine: Machine) -> None:
    gitdir = machine.memory / ".git"
    if gitdir.is_dir():
        assert detach.wait(gitdir, 120), "a detached hook did not finish"
        assert packing.wait(gitdir, 120), "the background repack did not finish"


def session_ends(machine: Machine) -> int:
    done = subprocess.run(["git", "-C", str(machine.memory), "log", "--format=%B"],
                          capture_output=True, text=True, check=True)
    return done.stdout.count("Cmem-Event: session-end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    binary = client.find()
    print(f"# {client.version(binary)}; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.2f} at the start")
    walls: dict[str, list[float]] = defaultdict(list)
    hooks: dict[str, list[int]] = defaultdict(list)
    with tempfile.TemporaryDirectory() as tmp, MockApi() as api:
        logs = Path(tmp) / "logs"
        logs.mkdir()
        claude = Claude(binary, api, logs)
        machines = {"cmem": new_machine(Path(tmp), "cmem", "my project"),
                    "without": plain_machine(Path(tmp))}
        for machine in machines.values():  # warm the page cache and Claude Code's own files
            claude(machine, "warm up")
            settle(machine)
        for number in range(args.runs):
            for label, machine in machines.items():
                run = claude(machine, f"hello {number}")
                walls[label].append(run.seconds)
                for hook in cmem_hooks(run):
                    hooks[hook.event].append(hook.millis)
                settle(machine)
        ends = session_ends(machines["cmem"])
    assert ends == args.runs + 1, f"{ends} SessionEnd commits for {args.runs + 1} sessions"
    for label, values in walls.items():
        print(f"claude -p, {label:8}: {statistics.median(values) * 1000:5.0f} ms "
              f"[{min(values) * 1000:5.0f}]")
    ratio = statistics.median(walls["cmem"]) / statistics.median(walls["without"])
    print(f"ratio: {ratio:.2f}x (target <= 1.3x: {'met' if ratio <= 1.3 else 'NOT met'})")
    for event, values in sorted(hooks.items()):
        print(f"  {event:12} as Claude Code logged it: median {statistics.median(values):4.0f} ms, "
              f"max {max(values)} ms")
    print(f"# load average {os.getloadavg()[0]:.2f} at the end; {args.runs} runs each")


if __name__ == "__main__":
    main()
