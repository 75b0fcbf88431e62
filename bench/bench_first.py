#!/usr/bin/env python3
"""First backup of an existing transcript (issue 13, point 2), focused: a few minutes, not an hour.

SPEC's target: the first backup of an existing 100 MiB transcript within 1.5 s whole process
(SessionEnd's default budget) and within 1.0x `git add && git commit` of the same file, measured
in the same run. Each run backs the same transcript up three times, interleaved so that the load
is shared alike: a SessionEnd hook and a PreCompact hook, each in a new project (the first backup
of that project), and `git add && git commit` in a new plain repository. Every figure is a whole
process after a `sync` (outside the clock), as bench_scale.py takes it: wall ms, CPU ms (user +
system, children included: the redaction helper) and peak RSS, with the 1-minute load average
when it ended. SessionEnd returns at once and backs up in a detached child (entry/detach.py),
whose CPU is not counted: its row also says when the backup was done (hook start to the
child's end). PreCompact does the backup in the hook process: that row is the backup's cost.
Each project's background repack has ended before the next figure is taken, as it would have
between sessions.

After the runs, the size of the last PreCompact project's `.git/objects` once its background
repack has ended (the pack a first backup writes is redone with deltas there), beside the git
CLI repository's and `gzip -6` of the transcript.

Run:  python bench/bench_first.py [--mib 100] [--runs 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import (  # noqa: E402
    Project,
    Sandbox,
    Transcript,
    corpus_lines,
    gzip_size,
    machine,
    progress,
    sandboxed,
)
from bench_scale import (  # noqa: E402
    MIB,
    BenchError,
    Measure,
    folder_bytes,
    git_backup,
    hook,
    settle,
    stored_bytes,
    write_transcript,
)

EVENTS = ("SessionEnd", "PreCompact")


def one_run(box: Sandbox, source: Path, sid: str, number: int) -> dict[str, Any]:
    """The three first backups of one run, and the PreCompact project (for the size row)."""
    from cmem_git.entry import detach

    found: dict[str, Any] = {}
    for event in EVENTS:
        project = Project.create(box, f"run{number}-{event}")
        path = project.folder / source.name
        shutil.copyfile(source, path)
        started = time.perf_counter()
        found[event] = hook(project, event, sid, path, foreground=False)  # as installed
        # SessionEnd returns at once and backs up in a detached child (entry/detach.py).
        if not detach.wait(project.memory / ".git", 600):
            raise BenchError(f"the detached {event} hook did not finish in 10 minutes")
        found[event + " done"] = (time.perf_counter() - started) * 1000
        found[event + " stored"] = stored_bytes(project, sid) / MIB
        if found[event + " stored"] * MIB != path.stat().st_size:
            raise BenchError(f"{event} did not store the whole transcript")
        found["project"] = project
        # Its background repack (git/packing.py) runs between sessions: the next figure must
        # not share the two cores with it.
        settle(project)
    found["git"] = git_backup(found["project"], source)
    return found


def sizes(project: Project, source: Path) -> dict[str, float]:
    settle(project)
    return {"cmem .git/objects": folder_bytes(project.memory / ".git" / "objects") / MIB,
            "git .git/objects": folder_bytes(project.git_dir / ".git" / "objects") / MIB,
            "gzip -6": gzip_size(source) / MIB}


def bench(box: Sandbox, mib: int, runs: int) -> dict[str, Any]:
    sid = str(uuid.uuid4())
    source = box.root / f"{sid}.jsonl"
    write_transcript(source, Transcript(sid, corpus_lines()), mib * MIB)
    results: list[dict[str, Any]] = []
    for number in range(runs):
        progress(f"first backup of {mib} MiB, run {number + 1}/{runs}")
        results.append(one_run(box, source, sid, number))
    found: dict[str, Any] = {"mib": source.stat().st_size / MIB, "runs": [
        {k: v for k, v in r.items() if k != "project"} for r in results]}
    found["sizes"] = sizes(results[-1]["project"], source)
    return found


def cell(m: Measure) -> str:
    return f"{m.wall:5.0f} ms, CPU {m.cpu:5.0f} ms, {m.rss_mib:3.0f} MiB, load {m.load:.2f}"


def text(found: dict[str, Any]) -> str:
    out = [f"first backup of {found['mib']:.1f} MiB, {found['machine']['cpus']} CPUs, load at "
           f"start {found['load_start']}, at end {found['load_end']}"]
    for number, run in enumerate(found["runs"], 1):
        out.append(f"run {number}:")
        for event in EVENTS:
            out.append(f"  {event:10s} {cell(run[event])}; stored {run[event + ' stored']:.1f} "
                       f"MiB; wall {run[event].wall / run['git'].wall:.2f}x git; backup done "
                       f"after {run[event + ' done']:.0f} ms")
        out.append(f"  {'git':10s} {cell(run['git'])}")
    for event in (*EVENTS, "git"):
        walls = [r[event].wall for r in found["runs"]]
        cpus = [r[event].cpu for r in found["runs"]]
        done = [r[event + " done"] for r in found["runs"]] if event != "git" else walls
        out.append(f"median {event:10s} wall {statistics.median(walls):5.0f} ms "
                   f"[fastest {min(walls):.0f}], CPU {statistics.median(cpus):5.0f} ms, backup "
                   f"done after {statistics.median(done):.0f} ms [fastest {min(done):.0f}]")
    ratios = [r["PreCompact"].wall / r["git"].wall for r in found["runs"]]
    out.append(f"PreCompact / git wall, median of the runs' ratios: "
               f"{statistics.median(ratios):.2f}x")
    out.append("after the background repack: " + ", ".join(
        f"{k} {v:.1f} MiB" for k, v in found["sizes"].items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="transcript size (default 100)")
    parser.add_argument("--runs", type=int, default=5, help="runs (default 5)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    load_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    done = sandboxed(args.dir, args.keep, lambda box: bench(box, args.mib, args.runs))
    if done is None:
        return 1
    found = done[1]
    found.update(load_start=load_start, machine=machine(),
                 load_end=" ".join(f"{x:.2f}" for x in os.getloadavg()))
    if args.json:
        print(json.dumps(found, default=lambda o: o.__dict__ | {"out": None}, indent=2))
    else:
        print(text(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
