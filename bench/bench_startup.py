#!/usr/bin/env python3
"""Start-up benchmark: `cmem --version`, `cmem log -n 20` and a warm `cmem search` as whole
processes, this tree against another one (e.g. the commit before a change), interleaved run by
run so that both see the same load, beside `python -c pass`, `python -c "import sqlite3"` and
`git log -n 20` in the memory repository (the same for both trees: git is no tree's).

Run it in a project whose memory is set up (and whose search index is current: search once
first), with the Python that has cmem installed:

    git archive OLD_COMMIT | tar -x -C /tmp/cmem-old
    python bench/bench_startup.py --old /tmp/cmem-old --word quokka-7f3a9 [--runs 20]

The other tree is put first on PYTHONPATH, so its cmem_git is the one imported. Each cell:
median wall [fastest] and median CPU (user + system) of the process, with the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time


def one(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def cell(label: str, runs: list[tuple[float, float]]) -> str:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return (f"{label}: {statistics.median(walls) * 1000:4.0f} ms [{min(walls) * 1000:4.0f}] "
            f"CPU {statistics.median(cpus) * 1000:4.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", required=True, help="a source tree of cmem to compare with")
    parser.add_argument("--word", default="decorator", help="what `cmem search` looks for")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    python = [sys.executable]
    commands = {
        "python -c pass": [*python, "-c", "pass"],
        "python -c 'import sqlite3'": [*python, "-c", "import sqlite3"],
        "cmem --version": [*python, "-m", "cmem_git", "--version"],
        "git log -n 20": ["git", "-C", ".claude/memory", "log", "-n", "20"],
        "cmem log -n 20": [*python, "-m", "cmem_git", "log", "-n", "20"],
        f"cmem search {args.word}": [*python, "-m", "cmem_git", "search", args.word],
    }
    trees = {"other tree": {**os.environ, "PYTHONPATH": args.old}, "this tree": dict(os.environ)}
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.runs} runs "
          f"each, interleaved; in {os.getcwd()}")
    for name, argv in commands.items():
        found: dict[str, list[tuple[float, float]]] = {label: [] for label in trees}
        for _ in range(args.runs):
            for label, env in trees.items():
                found[label].append(one(argv, env))
        print(f"{name:<30} " + " | ".join(cell(label, runs) for label, runs in found.items()))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
