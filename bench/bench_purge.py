#!/usr/bin/env python3
"""Purge benchmark: `cmem purge --secret` (dry run, then for real, no remote) on a memory
repository of SESSIONS sessions each backed up ROUNDS times by the real SessionEnd hook, with
the secret in one record of one session in the first round. Every cell is a whole `cmem`
process. Everything happens in a temporary folder with its own HOME.

    python bench/bench_purge.py [--sessions 20] [--rounds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPOTTER = ROOT / "tests" / "data" / "corpus" / "spotter"
SECRET = "hunter2-internal-bench-5521"
CMEM = [sys.executable, "-m", "cmem_git"]


def run(args: list[str], cwd: Path, env: dict[str, str], data: bytes | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, input=data, capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed: {done.stderr.decode()}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    lines = [line + b"\n" for line in (SPOTTER / "tool_heavy.jsonl").read_bytes().splitlines()]
    with tempfile.TemporaryDirectory() as folder:
        home, project = Path(folder) / "home", Path(folder) / "project"
        home.mkdir()
        project.mkdir()
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
               "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
               "GIT_COMMITTER_EMAIL": "b@x"}
        subprocess.run(["git", "init", "-q", str(project)], check=True)
        run(CMEM + ["init", "--device", "bench"], project, env)
        from cmem_git.paths import encode_project
        claude = home / ".claude" / "projects" / encode_project(project)
        claude.mkdir(parents=True, exist_ok=True)
        for round_ in range(options.rounds):
            for number in range(options.sessions):
                sid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench-{number}"))
                extra = [json.dumps({"type": "user", "sessionId": sid, "message": {
                    "role": "user", "content": f"password {SECRET}"}}).encode() + b"\n"] \
                    if (round_, number) == (0, 3) else []
                with open(claude / f"{sid}.jsonl", "ab") as handle:
                    handle.writelines(lines[round_ * 5:round_ * 5 + 5] + extra)
                payload = {"session_id": sid, "transcript_path": str(claude / f"{sid}.jsonl"),
                           "cwd": str(project), "hook_event_name": "SessionEnd",
                           "reason": "other"}
                run(CMEM + ["hook", "session-end"], project,
                    {**env, "CLAUDE_PROJECT_DIR": str(project), "CMEM_HOOK_FOREGROUND": "1"},
                    json.dumps(payload).encode())
        memory = project / ".claude" / "memory"
        commits = subprocess.run(["git", "-C", str(memory), "rev-list", "--count", "HEAD"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        dry = run(CMEM + ["purge", "--secret", SECRET, "--dry-run"], project, env)
        real = run(CMEM + ["purge", "--secret", SECRET, "--yes", "--no-push"], project, env)
        print(f"{commits} commits: purge --dry-run {dry:.2f} s, purge {real:.2f} s "
              f"(includes the 1 s wait for the prune cutoff, git gc); load {os.getloadavg()}")


if __name__ == "__main__":
    main()
