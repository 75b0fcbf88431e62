#!/usr/bin/env python3
"""Recall benchmark (issue 15): `cmem search` on its index beside grep, ripgrep and git grep.

For each scale (by default 100 sessions / 100 MiB and 1,000 sessions / 1 GiB of transcripts),
a memory is built the way bench_import_search.py builds it (corpus records in a cycle, each
made unique, taken in by `cmem import`; a tenth of the sessions then grow and are imported
again, so history holds rewritten last chunks; a rare word in 3 sessions). Then, each a whole
process with a warm page cache, median of --runs:

- the first index build (`cmem search --reindex`), and the index's size beside `.git`'s;
- `cmem search` warm (index current): the rare word, -i, --kind user --json, a common word
  ranked with -n 20;
- the search right after one more session was committed (it updates the index first);
- the scanning search it replaces (`--regex`, one run);
- baselines: `grep -rF` over the plain transcript folder, `rg -F` when installed, and
  `git grep -F` over the memory repository's tip (no history, chunks not reassembled);
- floors: `python -c pass`, `python -c "import sqlite3"` and `cmem --version`, the start-up
  part that no query can avoid.

Everything happens in a temporary folder with its own HOME; the real ~/.claude is never touched.

Run:  python bench/bench_recall.py [--scales 100:0.1,1000:1] [--runs N] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_import_search import (  # noqa: E402
    MIB,
    PYTHON,
    RARE,
    Box,
    _fingerprint,
    build_large,
    cmem_argv,
    du,
    grow,
    rare_record,
)

COMMON = "function"


def bench_scale(box: Box, sessions: int, size: int, runs: int) -> dict[str, Any]:
    root, folder = box.project(f"recall-{sessions}")
    total = build_large(folder, sessions, size)
    box.run(cmem_argv("import"), root)
    total += grow(folder, 10)
    box.run(cmem_argv("import"), root)
    memory = root / ".claude" / "memory"
    build, build_cpu, _ = timed_cpu(box, cmem_argv("search", "--reindex"), root)
    index = memory / ".git" / "cmem" / "index.sqlite"
    found: dict[str, Any] = {"sessions": sessions, "bytes": total, "build_s": build,
                             "build_cpu_s": build_cpu,
                             "index_bytes": index.stat().st_size,
                             "git_bytes": du(memory / ".git") - index.stat().st_size,
                             "commits": int(box.run(["git", "rev-list", "--count", "HEAD"],
                                                    memory))}
    found["median_s"] = _searches(box, root, folder, memory, runs)
    found["after_commit_s"] = _after_commit(box, root, folder, runs)
    found["regex_scan_s"], _ = box.timed(cmem_argv("search", "--regex", RARE), root, ok=(0, 1))
    return found


def _searches(box: Box, root: Path, folder: Path, memory: Path, runs: int) -> dict[str, float]:
    searches = {
        f"cmem search {RARE}": (cmem_argv("search", RARE), root),
        f"cmem search -i {RARE.upper()}": (cmem_argv("search", "-i", RARE.upper()), root),
        f"cmem search --kind user --json {RARE}": (cmem_argv("search", "--kind", "user",
                                                             "--json", RARE), root),
        f"cmem search -n 20 {COMMON} (common word)": (cmem_argv("search", "-n", "20", COMMON),
                                                       root),
        f"grep -rF {RARE} <projects folder>": (["grep", "-rF", RARE, str(folder)], root),
        f"git grep -F {RARE} HEAD (tip only)": (["git", "grep", "-F", RARE, "HEAD"], memory),
        # floors: the interpreter alone, with sqlite3, and cmem's command-line start-up
        "python -c pass": ([PYTHON, "-c", "pass"], root),
        "python -c 'import sqlite3'": ([PYTHON, "-c", "import sqlite3"], root),
        "cmem --version": (cmem_argv("--version"), root),
    }
    if shutil.which("rg"):
        searches[f"rg -F {RARE} <projects folder>"] = (["rg", "-F", RARE, str(folder)], root)
    medians = {}
    for name, (argv, cwd) in searches.items():
        times, cpus, out = [], [], ""
        for _ in range(runs):
            elapsed, cpu, out = timed_cpu(box, argv, cwd)
            times.append(elapsed)
            cpus.append(cpu)
        medians[name] = statistics.median(times)
        medians[name + " [CPU]"] = statistics.median(cpus)
        if name == f"cmem search {RARE}" and len(out.splitlines()) != 3:
            raise SystemExit(f"cmem search found {len(out.splitlines())} hits of {RARE}, not 3")
    return medians


def timed_cpu(box: Box, argv: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall time, and the user + system CPU time of the process: on a loaded machine the
    CPU time shows the command's own cost (waiting for a core is not in it)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed, out = box.timed(argv, cwd, ok=(0, 1))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return elapsed, cpu, out


def _after_commit(box: Box, root: Path, folder: Path, runs: int) -> float:
    """One session more committed (by `cmem import`, as a hook would), then the search that
    must find it: the index is updated from that commit inside the timed process."""
    times = []
    for run in range(runs):
        sid = f"late-{run}"
        (folder / f"{sid}.jsonl").write_bytes(rare_record(sid))
        box.run(cmem_argv("import"), root)
        elapsed, out = box.timed(cmem_argv("search", "--session", sid, RARE), root)
        if sid[:8] not in out:
            raise SystemExit(f"the search after the commit did not find {sid}: {out}")
        times.append(elapsed)
    return statistics.median(times)


def report(found: dict[str, Any]) -> str:
    load = found["load"]
    lines = [f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
             f"{load[0]:.1f} before, {load[1]:.1f} after (other work slows every row)"]
    for scale in found["scales"]:
        lines += ["", f"{scale['sessions']} sessions, {scale['bytes'] / MIB:.0f} MiB of "
                  f"transcripts, {scale['commits']} commits, .git {scale['git_bytes'] / MIB:.0f}"
                  f" MiB; index {scale['index_bytes'] / MIB:.0f} MiB "
                  f"({scale['index_bytes'] / scale['git_bytes']:.2f}x .git)",
                  f"   first index build (cmem search --reindex)     {scale['build_s']:8.3f} s "
                  f"({scale['build_cpu_s']:.3f} s CPU)",
                  f"   median of {found['runs']} runs, whole process, warm:"]
        lines[-1] += "  wall (CPU)"
        for name, seconds in scale["median_s"].items():
            if not name.endswith(" [CPU]"):
                cpu = scale["median_s"][name + " [CPU]"]
                lines.append(f"   {name:<46} {seconds:8.3f} s ({cpu:.3f} s)")
        lines.append(f"   {'cmem search right after a new commit':<46} "
                     f"{scale['after_commit_s']:8.3f} s")
        lines.append(f"   {'cmem search --regex (history scan), 1 run':<46} "
                     f"{scale['regex_scan_s']:8.3f} s")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="100:0.1,1000:1",
                        help="sessions:GiB pairs, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", help="where the temporary folder goes")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    scales = [(int(s), float(g)) for s, g in (p.split(":") for p in args.scales.split(","))]
    real_claude = Path.home() / ".claude"
    before = _fingerprint(real_claude)
    box = Box(args.dir)
    load = os.getloadavg()[0]
    try:
        found: dict[str, Any] = {"runs": args.runs, "scales": []}
        for sessions, gib in scales:
            found["scales"].append(bench_scale(box, sessions, int(gib * 1024 * MIB), args.runs))
            found["load"] = [load, os.getloadavg()[0]]
            print(report({**found, "scales": found["scales"][-1:]}), file=sys.stderr,
                  flush=True)  # a long run shows each scale as soon as it is measured
    finally:
        if not args.keep:
            shutil.rmtree(box.root, ignore_errors=True)
    if _fingerprint(real_claude) != before:
        raise SystemExit("the real ~/.claude changed during the run: figures void")
    print(json.dumps(found, indent=2) if args.json else report(found), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
