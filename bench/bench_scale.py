#!/usr/bin/env python3
"""Scale benchmarks (issue 13): every row of the issue's table, cmem beside its baseline, one run.

1. first backup of an existing transcript (48 and 100 MiB; 400 MiB for memory), whole hook
   process: SessionEnd (within its budget, how much it stored) and PreCompact (the whole file),
   beside `git add && git commit` of the same file with the git CLI.
2. the whole `.claude/memory` folder after 1,000 Stop commits of 2-5 KB on a 7.5 MiB
   transcript, and after 50 SessionEnd backups of a transcript growing 1 MiB at a time, against
   `gzip -6` of the final transcript (the background repack allowed to finish first).
3. SessionStart with nothing to do at 1 session, and at 1,000 sessions with 10,000 commits;
   the first three SessionStarts after `cmem import` of 1,000 sessions.
4. `cmem cat` of a 105 MiB transcript beside `git cat-file blob`; `cmem delta` with no session
   document; `cmem log -n 20` on 10,000 commits beside `git log -n 20`.

Every figure is a whole process (wall ms, CPU ms of the process and its children, peak RSS),
started after a `sync` outside the clock, and printed with the load average when it was taken:
the machine may be shared, so ratios to a baseline measured beside it say more than absolute
times. Sandbox, tripwire and transcript content are bench_hooks.py's.

Run:  python bench/bench_scale.py [--quick] [--json] [--runs N] [--keep] [--only starts,import,...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import (  # noqa: E402 - the sibling benchmark's content, sandbox and helpers
    GIT_SCRIPT,
    PYTHON,
    BenchError,
    Project,
    Sandbox,
    Transcript,
    corpus_lines,
    gzip_size,
    machine,
    payload,
    progress,
    sandboxed,
    shell,
)
from bench_read import Plan as HistoryPlan  # noqa: E402
from bench_read import Writer, build_history

MIB = 1024 * 1024
CMEM = str(Path(PYTHON).with_name("cmem"))


@dataclass(frozen=True)
class Plan:
    first_mib: tuple[int, ...]  # first backups, timed
    memory_mib: int  # first backup measured for peak RSS
    stops: int  # Stop commits of 2-5 KB
    stop_base_mib: float  # the transcript they start from
    growth: int  # backups growing 1 MiB each
    sessions: int  # SessionStart and import rows
    commits: int
    cat_mib: int
    runs: int


FULL = Plan((48, 100), 400, 1000, 7.5, 50, 1000, 10_000, 105, 7)
QUICK = Plan((8, 16), 40, 400, 1.0, 8, 100, 1000, 16, 3)


@dataclass
class Measure:
    """One whole process: wall and CPU ms, peak RSS of the largest child, load average then."""

    wall: float
    cpu: float
    rss_mib: float
    load: float
    out: bytes = b""


def run(argv: list[str], cwd: Path, box: Sandbox, data: bytes | None = None,
        **env: str) -> Measure:
    """The figures of one whole process. RUSAGE_CHILDREN's maxrss is the largest child so far,
    so each measured process is started from a fresh helper that reports its own child."""
    os.sync()
    helper = ("import resource, subprocess, sys, time, json; a = json.loads(sys.argv[1]); "
              "t = time.perf_counter(); d = subprocess.run(a, input=sys.stdin.buffer.read() or None,"
              " stdout=subprocess.PIPE); w = time.perf_counter() - t; "
              "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
              "sys.stderr.write(json.dumps([w, u.ru_utime + u.ru_stime, u.ru_maxrss, "
              "d.returncode])); sys.stdout.buffer.write(d.stdout)")
    done = subprocess.run([sys.executable, "-c", helper, json.dumps(argv)], input=data or b"",
                          capture_output=True, cwd=cwd, env=box.env(**env), timeout=1800)
    wall, cpu, rss, code = json.loads(done.stderr.decode().strip().splitlines()[-1])
    if code != 0:
        raise BenchError(f"{' '.join(argv)} exited {code}")
    return Measure(wall * 1000, cpu * 1000, rss / 1024, os.getloadavg()[0], done.stdout)


def median(items: list[Measure]) -> Measure:
    def mid(values: list[float]) -> float:
        return statistics.median(values)

    return Measure(mid([m.wall for m in items]), mid([m.cpu for m in items]),
                   max(m.rss_mib for m in items), mid([m.load for m in items]))


def hook(project: Project, event: str, sid: str, path: Path, foreground: bool = True
         ) -> Measure:
    """By default in the foreground: the figure is the work's (installed, Stop and SessionEnd
    return at once and commit in a detached child; bench_hooks.py row 3d times that)."""
    data = json.dumps(payload(event, sid, path, project.root)).encode()
    return run(["sh", "-c", project.command(event)], project.root, project.box, data,
               CLAUDE_PROJECT_DIR=str(project.root),
               CMEM_HOOK_FOREGROUND="1" if foreground else "")


def git_backup(project: Project, source: Path) -> Measure:
    """The baseline: the same file committed whole by the git CLI in a plain repository."""
    shutil.copyfile(source, project.git_dir / "t.jsonl")
    return run(shell(GIT_SCRIPT, "t.jsonl"), project.git_dir, project.box)


def write_transcript(path: Path, content: Transcript, size: int) -> None:
    with open(path, "ab") as handle:
        while size > 0:
            block = content.take(min(size, 4 * MIB))
            handle.write(block)
            size -= len(block)


def stored_bytes(project: Project, sid: str) -> int:
    from cmem_git.capture import backup
    from cmem_git.repo.store import Store

    store = Store.open(project.memory)
    tip = store.tip()
    return backup.covered(store.repo, tip.tree if tip else None,
                          f"{backup.session_folder(sid)}/{backup.MAIN}")


def folder_bytes(folder: Path) -> int:
    """Bytes on disk of the whole folder (objects, index and working files), as `du` counts."""
    done = subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) * 1024


def settle(project: Project) -> None:
    """Let a background repack the hooks started finish, as it would between sessions."""
    from cmem_git.git import packing

    if not packing.wait(project.memory / ".git", 600):
        raise BenchError("the background repack did not finish in 10 minutes")


# ---------------------------------------------------------------- rows


def first_backups(box: Sandbox, lines: list[bytes], plan: Plan) -> list[dict[str, Any]]:
    rows = []
    for size in plan.first_mib + (plan.memory_mib,):
        for event in ("SessionEnd", "PreCompact"):
            project = Project.create(box, f"first-{size}-{event}")
            sid = str(uuid.uuid4())
            path = project.folder / f"{sid}.jsonl"
            write_transcript(path, Transcript(sid, lines), size * MIB)
            progress(f"first backup, {size} MiB, {event}")
            cmem = hook(project, event, sid, path)
            git = git_backup(project, path)
            rows.append({"row": f"first backup {size} MiB, {event}", "cmem": cmem, "git": git,
                         "stored_mib": stored_bytes(project, sid) / MIB,
                         "file_mib": path.stat().st_size / MIB})
            shutil.rmtree(project.root)
            shutil.rmtree(project.git_dir)
    return rows


def stop_commits(box: Sandbox, lines: list[bytes], plan: Plan) -> dict[str, Any]:
    """Stop commits as a long session makes them, a few KB apart, made in process the way the
    Stop hook makes them (checkpoint, then the packing check; Claude Code runs Stop with
    `async: true`, so its time is not the row); then the folder, once the repack ends."""
    import random

    from cmem_git.capture import checkpoint
    from cmem_git.git import packing
    from cmem_git.repo.store import Store

    project = Project.create(box, "stops")
    store = Store.open(project.memory)
    sid = str(uuid.uuid4())
    path = project.folder / f"{sid}.jsonl"
    content = Transcript(sid, lines)
    write_transcript(path, content, int(plan.stop_base_mib * MIB))
    rnd = random.Random(13)
    for number in range(plan.stops):
        write_transcript(path, content, rnd.randint(2000, 5000))
        if checkpoint.take(store, checkpoint.Request("stop", sid, path, "bench")).commit is None:
            raise BenchError("a Stop commit committed nothing")
        packing.start_if_due(store.gitdir)
        if number % 100 == 99:
            progress(f"stop commits: {number + 1}/{plan.stops}")
    settle(project)
    return {"row": f"{plan.stops} Stop commits of 2-5 KB", "folder": folder_bytes(project.memory),
            "gzip": gzip_size(path), "objects": _objects(project.memory)}


def growth(box: Sandbox, lines: list[bytes], plan: Plan) -> dict[str, Any]:
    project = Project.create(box, "growth")
    sid = str(uuid.uuid4())
    path = project.folder / f"{sid}.jsonl"
    content = Transcript(sid, lines)
    for _ in range(plan.growth):
        write_transcript(path, content, MIB)
        hook(project, "SessionEnd", sid, path)
    settle(project)
    if stored_bytes(project, sid) != path.stat().st_size:
        raise BenchError("the growing transcript is not stored whole")
    return {"row": f"{plan.growth} growing backups", "folder": folder_bytes(project.memory),
            "gzip": gzip_size(path), "objects": _objects(project.memory)}


def _objects(memory: Path) -> dict[str, int]:
    done = subprocess.run(["git", "-C", str(memory), "count-objects", "-v"], capture_output=True,
                          text=True, check=True)
    return {k: int(v) for k, v in (line.split(": ") for line in done.stdout.splitlines())}


def session_starts(box: Sandbox, lines: list[bytes], plan: Plan
                   ) -> tuple[list[dict[str, Any]], Project]:
    """SessionStart at 1 session, then at `plan.sessions` with a long history (which the
    `cmem log` row reuses: building it is most of a full run)."""
    rows = []
    small = Project.create(box, "start-small")
    sid = str(uuid.uuid4())
    write_transcript(small.folder / f"{sid}.jsonl", Transcript(sid, lines), 100_000)
    rows.append(_starts(small, "1 session", plan.runs))
    progress(f"history of {plan.commits} commits")
    big, _ = build_history(box, lines, HistoryPlan(plan.commits, 1, MIB, plan.runs))
    have = len(list(big.folder.glob("*.jsonl")))
    writer = Writer(big)  # the extra sessions backed up as a hook would, before the clock
    for _ in range(max(plan.sessions - have, 0)):
        sid = str(uuid.uuid4())
        path = big.folder / f"{sid}.jsonl"
        write_transcript(path, Transcript(sid, lines), 20_000)
        writer.commit("session-end", sid, path, ("Reason", "other"))
    rows.append(_starts(big, f"{plan.sessions} sessions, {plan.commits}+ commits", plan.runs))
    return rows, big


def _starts(project: Project, label: str, runs: int) -> dict[str, Any]:
    """SessionStart for a new session (its file does not exist yet), once to settle what it
    finds, then `runs` times with nothing to do; `python -c pass` beside it."""
    path = project.folder / "none.jsonl"
    first = hook(project, "SessionStart", str(uuid.uuid4()), path)
    settle(project)
    timed = [hook(project, "SessionStart", str(uuid.uuid4()), path) for _ in range(runs)]
    python = [run([PYTHON, "-c", "pass"], project.root, project.box) for _ in range(runs)]
    return {"row": f"SessionStart, nothing to do, {label}", "cmem": median(timed),
            "first": first, "python": median(python)}


def after_import(box: Sandbox, lines: list[bytes], plan: Plan) -> dict[str, Any]:
    project = Project.create(box, "import")
    for _ in range(plan.sessions):
        sid = str(uuid.uuid4())
        write_transcript(project.folder / f"{sid}.jsonl", Transcript(sid, lines), 20_000)
    progress(f"cmem import of {plan.sessions} sessions")
    imported = run([CMEM, "import"], project.root, project.box)
    path = project.folder / "none.jsonl"
    starts = [hook(project, "SessionStart", str(uuid.uuid4()), path) for _ in range(3)]
    return {"row": f"first 3 SessionStarts after import of {plan.sessions}", "import": imported,
            "starts": starts}


def reads(box: Sandbox, lines: list[bytes], plan: Plan) -> list[dict[str, Any]]:
    project = Project.create(box, "reads")
    sid = str(uuid.uuid4())
    path = project.folder / f"{sid}.jsonl"
    write_transcript(path, Transcript(sid, lines), plan.cat_mib * MIB)
    hook(project, "PreCompact", sid, path)
    git_backup(project, path)
    cat = [run([CMEM, "cat", sid], project.root, box) for _ in range(plan.runs)]
    if cat[0].out != path.read_bytes():
        raise BenchError("cmem cat did not print the transcript")
    git = [run(["git", "cat-file", "blob", "HEAD:t.jsonl"], project.git_dir, box)
           for _ in range(plan.runs)]
    delta = [run([CMEM, "delta"], project.root, box) for _ in range(plan.runs)]
    return [{"row": f"cmem cat, {plan.cat_mib} MiB", "cmem": median(cat), "git": median(git)},
            {"row": f"cmem delta, no document, {plan.cat_mib} MiB", "cmem": median(delta),
             "printed": len(delta[0].out)}]


def log_rows(box: Sandbox, project: Project, plan: Plan) -> dict[str, Any]:
    settle(project)
    commits = sum(1 for _ in subprocess.run(
        ["git", "-C", str(project.memory), "rev-list", "HEAD"], capture_output=True,
        text=True, check=True).stdout.splitlines())
    cmem = [run([CMEM, "log", "-n", "20"], project.root, box) for _ in range(plan.runs)]
    git = [run(["git", "log", "-n", "20"], project.memory, box) for _ in range(plan.runs)]
    version = [run([CMEM, "--version"], project.root, box) for _ in range(plan.runs)]
    return {"row": f"cmem log -n 20, {commits} commits", "cmem": median(cmem),
            "git": median(git), "version": median(version)}


# ---------------------------------------------------------------- report


def cell(m: Measure) -> str:
    return f"{m.wall:.0f} ms (CPU {m.cpu:.0f}, {m.rss_mib:.0f} MiB; load {m.load:.1f})"


def text(found: dict[str, Any]) -> str:
    out = [f"bench_scale ({found['plan']}), {found['machine']['cpus']} CPUs, "
           f"load at start {found['load_start']}, at end {found['load_end']}", ""]
    for row in found.get("first", []):
        ratio = row["cmem"].wall / row["git"].wall
        out.append(f"{row['row']}: cmem {cell(row['cmem'])}, stored {row['stored_mib']:.1f} of "
                   f"{row['file_mib']:.1f} MiB | git add+commit {cell(row['git'])} | "
                   f"wall {ratio:.2f}x, CPU {row['cmem'].cpu / row['git'].cpu:.2f}x")
    for row in [found[key] for key in ("stops", "growth") if key in found]:
        out.append(f"{row['row']}: whole .claude/memory {row['folder'] / MIB:.1f} MiB = "
                   f"{row['folder'] / row['gzip']:.2f}x gzip -6 ({row['gzip'] / MIB:.1f} MiB); "
                   f"loose {row['objects']['count']}, packs {row['objects']['packs']}")
    for row in found.get("starts", []):
        out.append(f"{row['row']}: cmem {cell(row['cmem'])} | python -c pass "
                   f"{cell(row['python'])} | first {row['first'].wall:.0f} ms")
    if "import" in found:
        row = found["import"]
        out.append(f"{row['row']}: " + ", ".join(f"{m.wall:.0f} ms" for m in row["starts"])
                   + f" (import itself {row['import'].wall / 1000:.1f} s)")
    if "reads" in found:
        cat, delta = found["reads"]
        out.append(f"{cat['row']}: cmem {cell(cat['cmem'])} | git cat-file {cell(cat['git'])}")
        out.append(f"{delta['row']}: cmem {cell(delta['cmem'])}, printed {delta['printed']} "
                   "bytes")
    if "log" in found:
        log = found["log"]
        out.append(f"{log['row']}: cmem {cell(log['cmem'])} | git log {cell(log['git'])} | "
                   f"cmem --version {cell(log['version'])}")
    return "\n".join(out)


ROWS = ("first", "stops", "growth", "starts", "import", "reads", "log")


def run_all(box: Sandbox, plan: Plan, only: set[str]) -> dict[str, Any]:
    lines = corpus_lines()
    found: dict[str, Any] = {"load_start": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    wanted = {
        "first": lambda: first_backups(box, lines, plan),
        "stops": lambda: stop_commits(box, lines, plan),
        "growth": lambda: growth(box, lines, plan),
        "import": lambda: after_import(box, lines, plan),
        "reads": lambda: reads(box, lines, plan)}
    for name in ROWS:
        if name in only and name in wanted:
            found[name] = wanted[name]()
        elif name == "starts" and only & {"starts", "log"}:
            found["starts"], history = session_starts(box, lines, plan)
            if "log" in only:
                found["log"] = log_rows(box, history, plan)
    found["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--runs", type=int, help="timed runs per row")
    parser.add_argument("--only", help=f"comma-separated rows to run, of {', '.join(ROWS)} "
                        "(default: all)")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = Plan(**{**plan.__dict__, "runs": args.runs})
    started = time.perf_counter()
    only = set(args.only.split(",")) if args.only else set(ROWS)
    if only - set(ROWS):
        parser.error(f"unknown rows: {', '.join(sorted(only - set(ROWS)))}")
    done = sandboxed(args.dir, args.keep, lambda box: run_all(box, plan, only))
    if done is None:
        return 1
    found = done[1]
    found.update(plan="quick" if args.quick else "full", machine=machine(),
                 seconds=time.perf_counter() - started,
                 command=" ".join(["python", "bench/bench_scale.py", *(argv or sys.argv[1:])]))
    if args.json:
        print(json.dumps(found, default=lambda o: o.__dict__ | {"out": None}, indent=2))
    else:
        print(text(found))
        print(f"\n{found['command']}: {found['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
