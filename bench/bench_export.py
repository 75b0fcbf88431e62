"""Export benchmark: `cmem export` of a 100 MiB session, and `cmem export --all` run again
with nothing changed, beside baselines measured in the same run.

Baselines: `cmem cat` of the same session (reading it back from history, which every export
must do) and a Python loop that only parses each JSON line of the transcript file (the least
any renderer does). Each cell is a whole process; the peak resident memory of the measured
process is read in a small parent of it (Linux carries a process's peak across fork and exec, so
the benchmark's own would otherwise count).

    python bench/bench_export.py            # 100 MiB, 3 runs
    python bench/bench_export.py --quick    # 10 MiB, 2 runs: a smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import (  # noqa: E402 - the sibling benchmark's content and sandbox
    PYTHON,
    BenchError,
    Project,
    Sandbox,
    Session,
    Transcript,
    _load,
    corpus_lines,
    mib,
    progress,
    sandboxed,
    timed,
)

MIB = 1024 * 1024
CMEM = str(Path(PYTHON).with_name("cmem"))
MEASURE = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, "
           "stdout=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN)"
           ".ru_maxrss)")
PARSE = "import json, sys\nfor line in open(sys.argv[1], 'rb'):\n    json.loads(line)\n"


@dataclass(frozen=True)
class Plan:
    big_mib: int
    small_sessions: int
    runs: int


FULL = Plan(big_mib=100, small_sessions=20, runs=3)
QUICK = Plan(big_mib=10, small_sessions=5, runs=2)


@dataclass(frozen=True)
class Cell:
    wall: list[float]  # ms
    cpu: list[float]  # ms
    rss: list[int]  # KiB

    def text(self) -> str:
        return (f"{statistics.median(self.wall) / 1000:.2f} s [{min(self.wall) / 1000:.2f}]  "
                f"cpu {statistics.median(self.cpu) / 1000:.2f} s  "
                f"peak {max(self.rss) / 1024:.0f} MiB")


def measure(argv: list[str], project: Project, runs: int) -> Cell:
    walls, cpus, peaks = [], [], []
    for _ in range(runs):
        took, done = timed([PYTHON, "-c", MEASURE, *argv], cwd=project.root,
                           env=project.box.env())
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
        walls.append(took.wall)
        cpus.append(took.cpu)
        peaks.append(int(done.stdout.split()[-1]))
    return Cell(walls, cpus, peaks)


def build(box: Sandbox, plan: Plan) -> tuple[Project, Session]:
    lines = corpus_lines()
    project = Project.create(box, "export")
    (project.memory / "cmem.yaml").write_text("device: bench\nredaction: false\n")
    sessions = [Session(project, f"small-{n:03d}", Transcript(f"small-{n:03d}", lines))
                for n in range(plan.small_sessions)]
    big = Session(project, "big-session", Transcript("big-session", lines))
    for session, size in [(s, MIB) for s in sessions] + [(big, plan.big_mib * MIB)]:
        progress(f"backing up {session.sid} ({mib(size)})")
        session.append(size)
        project.hook("SessionEnd", session)
    return project, big


def run(box: Sandbox, plan: Plan) -> dict[str, object]:
    project, big = build(box, plan)
    out = box.root / "out"
    rows: dict[str, object] = {}
    for form in ("html", "md"):
        progress(f"cmem export --format {form}")
        target = out / f"big.{form}"
        cell = measure([CMEM, "export", big.sid, "--format", form, "-o", str(target)],
                       project, plan.runs)
        rows[f"cmem export ({form}, page {mib(target.stat().st_size)})"] = cell
    progress("baselines")
    rows["baseline: cmem cat (read back from history)"] = measure([CMEM, "cat", big.sid],
                                                                 project, plan.runs)
    rows["baseline: python json.loads of every line"] = measure(
        [PYTHON, "-c", PARSE, str(big.path)], project, plan.runs)
    progress("cmem export --all, then again with nothing changed")
    first = measure([CMEM, "export", "--all", "-o", str(out / "site")], project, 1)
    rows[f"cmem export --all, first ({plan.small_sessions + 1} sessions)"] = first
    rows["cmem export --all, again (nothing changed)"] = measure(
        [CMEM, "export", "--all", "-o", str(out / "site")], project, plan.runs)
    return {"size": mib(big.path.stat().st_size), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 MiB, 2 runs")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    load = os.getloadavg()
    started = time.perf_counter()
    done = sandboxed(args.dir, args.keep, lambda box: run(box, plan))
    if done is None:
        return 1
    _, report = done
    print(f"cmem export benchmark: a {report['size']} session, medians of {plan.runs} runs "
          "[fastest]; whole processes")
    print(_load({"before": load, "after": os.getloadavg()}, os.cpu_count() or 1))
    rows = report["rows"]
    assert isinstance(rows, dict)
    width = max(len(label) for label in rows)
    for label, cell in rows.items():
        print(f"{label:<{width}}  {cell.text()}")
    print(f"done in {time.perf_counter() - started:.0f} s")
    print(json.dumps({k: vars(v) for k, v in rows.items()}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
