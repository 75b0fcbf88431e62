#!/usr/bin/env python3
"""Read-side benchmarks: `cmem log` on a long history and the records added since a commit,
cmem beside what the same question costs with git and the file system, measured in the same run.

SPEC "Performance targets":
  * `cmem log -n 20` on 10,000 commits: <= 150 ms, whole process (issue 13). Baseline: `git log
    -n 20` on the same repository, run right after it; the 1-minute load average is sampled at
    every run and printed in the row. `cmem log -n 20 HEAD` (a revision: the path through
    pygit2, what `cmem log` always took before it read history with `git log`) for context.
    The 10,000 commits are cmem's own, made in process by `checkpoint.take` (what every hook
    calls) for sessions whose transcripts grow a few records per commit, with the events a
    project sees (stop, pre-compact, session-end with its exit line in active-context.md,
    resumed sessions, now and then a session document), so every commit has cmem's trailers
    and the trees a real memory repository has. Made in process, where no hook starts a
    background repack, the repository is timed loose, as it is at worst between two repacks.
  * records added since a commit, the last 1 MiB of a 100 MiB transcript: <= 50 ms in process
    (`delta.between(repo, old, new)`, new = old + 1 MiB of records appended). Baselines: the
    last 1 MiB read in Python (in process), `tail -c` of the file, and `git diff old new` with
    the git CLI on a plain repository holding the whole file. `cmem delta --since OLD --jsonl`
    is timed as a whole process too.

Everything happens in a temporary folder with its own HOME (the real ~/.claude is never read or
written; a tripwire checks); projects are set up with `git init` and a real `cmem init`.
Transcript content is bench_hooks.py's: real corpus records with fresh ids. Whole processes are
started directly (no shell) with stdout to a pipe, after a `sync` outside the clock.

Run:  python bench/bench_read.py [--quick] [--json] [--runs N] [--commits N] [--log-only] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import (  # noqa: E402 - the sibling benchmark's content, sandbox and report
    PYTHON,
    BenchError,
    Figure,
    Project,
    Sample,
    Sandbox,
    Session,
    Transcript,
    _load,
    corpus_lines,
    disk_usage,
    fig,
    machine,
    mib,
    ms,
    progress,
    sandboxed,
    timed,
)

MIB = 1024 * 1024
LOG_TARGET = 150.0  # ms, whole process
DELTA_TARGET = 50.0  # ms, in process
CMEM = str(Path(PYTHON).with_name("cmem"))  # the console script next to the interpreter


@dataclass(frozen=True)
class Plan:
    commits: int  # history length for `cmem log`
    big_mib: int  # transcript for the delta rows
    append: int  # bytes appended before each delta measurement
    runs: int


FULL = Plan(commits=10_000, big_mib=100, append=MIB, runs=9)
QUICK = Plan(commits=1_000, big_mib=10, append=MIB, runs=3)


# ---------------------------------------------------------------- timing


def in_process(call: Callable[[], Any]) -> tuple[Sample, Any]:
    """Wall and CPU time of one call in this process, dirty pages flushed first."""
    os.sync()
    cpu, start = time.process_time(), time.perf_counter()
    value = call()
    wall = time.perf_counter() - start
    return Sample(wall * 1000, (time.process_time() - cpu) * 1000), value


def process(argv: list[str], cwd: Path, box: Sandbox) -> tuple[Sample, bytes]:
    """One whole process, stdout to a pipe; it must succeed."""
    took, done = timed(argv, cwd=cwd, env=box.env())
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed (exit {done.returncode}): "
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return took, done.stdout


# ---------------------------------------------------------------- a long, realistic history


@dataclass
class Built:
    commits: int
    sessions: int
    seconds: float
    events: dict[str, int]
    transcript_bytes: int
    loose_objects: int
    git_du: int

    @property
    def per_commit(self) -> float:
        return self.seconds * 1000 / max(self.commits, 1)


class Writer:
    """Makes cmem commits in process the way the hooks make them."""

    def __init__(self, project: Project) -> None:
        from cmem_git.repo.store import Store

        self.project = project
        self.store = Store.open(project.memory)
        self.events: Counter[str] = Counter()

    def commit(self, event: str, sid: str, path: Path, detail: tuple[str, str] | None = None,
               exit_line: bool = False) -> None:
        from cmem_git.capture import checkpoint
        from cmem_git.repo import memory

        edit = None
        if exit_line:
            when, reason = checkpoint.now(), detail[1] if detail else "other"
            edit = lambda text: memory.record_exit(text, when, sid, reason)  # noqa: E731
        request = checkpoint.Request(event, sid, path, "bench", detail, edit)
        result = checkpoint.take(self.store, request)
        if result.commit is None or result.problems:
            raise BenchError(f"{event} commit of {sid[:8]} failed: {result.problems}")
        self.events[event] += 1

    def document(self, sid: str, path: Path, number: int) -> None:
        from cmem_git.capture import checkpoint
        from cmem_git.read import docs

        text = (f"# Session {number}: parser work\n\n## Done\n- fixed the tokenizer\n"
                f"- {number} tests pass\n\n## Next\n- the error messages\n").encode()
        docs.save(self.store, self.project.root, text, None,
                  checkpoint.Request("document", sid, path, "bench"))
        self.events["document"] += 1

    def count(self) -> int:
        tip = self.store.tip()
        return sum(1 for _ in self.store.repo.walk(tip.id)) if tip is not None else 0


def build_history(box: Sandbox, lines: list[bytes], plan: Plan) -> tuple[Project, Built]:
    """`plan.commits` commits in all (cmem init's included): sessions of 20 to 80 checkpoints,
    each after 0.5 to 6 KB of new records; one session in ten resumes an earlier one, one in
    fifteen ends with a session document."""
    project = Project.create(box, "history")
    writer = Writer(project)
    rnd = random.Random(20261121)
    total = writer.count()
    started = time.perf_counter()
    sessions: list[tuple[str, Transcript]] = []
    last_report = started
    while total < plan.commits:
        resumed = bool(sessions) and rnd.random() < 0.1
        if resumed:
            sid, content = rnd.choice(sessions)
        else:
            sid = str(uuid.uuid4())
            content = Transcript(sid, lines)
            sessions.append((sid, content))
        path = project.folder / f"{sid}.jsonl"
        length = rnd.randint(20, 80)
        for step in range(length):
            if total >= plan.commits:
                break
            with open(path, "ab") as handle:
                handle.write(content.take(rnd.randint(500, 6000)))
            last = step == length - 1 or total + 1 >= plan.commits
            if step == 0 and resumed:
                writer.commit("session-start", sid, path, ("Source", "resume"))
            elif last:
                reason = rnd.choice(["prompt_input_exit", "prompt_input_exit", "clear", "logout",
                                     "other"])
                writer.commit("session-end", sid, path, ("Reason", reason), exit_line=True)
            elif step == length // 2 and length > 40:
                writer.commit("pre-compact", sid, path, ("Trigger", "auto"))
            else:
                writer.commit("stop", sid, path)
            total += 1
        if total < plan.commits and len(sessions) % 15 == 0 and not resumed:
            writer.document(sid, path, len(sessions))
            total += 1
        if time.perf_counter() - last_report > 20:
            last_report = time.perf_counter()
            progress(f"history: {total}/{plan.commits} commits, "
                     f"{(last_report - started) * 1000 / total:.1f} ms per commit")
    seconds = time.perf_counter() - started
    counted = writer.count()
    if counted != plan.commits:
        raise BenchError(f"built {counted} commits, wanted {plan.commits}")
    objects = project.memory / ".git" / "objects"
    loose = sum(1 for _ in objects.glob("[0-9a-f][0-9a-f]/*"))
    size = sum(p.stat().st_size for p in project.folder.glob("*.jsonl"))
    return project, Built(counted, len(sessions), seconds, dict(writer.events), size, loose,
                          disk_usage(project.memory / ".git"))


# ---------------------------------------------------------------- row 1: cmem log


@dataclass
class LogResult:
    cmem: Figure = field(default_factory=Figure)
    git: Figure = field(default_factory=Figure)
    through_pygit2: Figure = field(default_factory=Figure)
    git_topo: Figure = field(default_factory=Figure)
    startup: Figure = field(default_factory=Figure)
    python: Figure = field(default_factory=Figure)
    in_process: Figure = field(default_factory=Figure)
    load: list[float] = field(default_factory=list)  # 1-minute load average at each run

    def load_text(self) -> str:
        if not self.load:
            return "load ?"
        low, high = min(self.load), max(self.load)
        return f"load {statistics.median(self.load):.1f}" + (
            f" ({low:.1f}-{high:.1f})" if high - low >= 0.1 else "")


def bench_log(project: Project, runs: int) -> LogResult:
    """`cmem log -n 20` beside `git log -n 20`, in turn within each run so both meet the same
    load; context: the same log through pygit2 (`cmem log -n 20 HEAD`: a revision takes that
    path), git with a full topological sort (--topo-order), the CLI's start-up cost
    (`cmem --version`, and the bare interpreter) and the walk in process."""
    import pygit2

    from cmem_git.repo.history import log

    box, memory = project.box, project.memory
    result = LogResult()
    tip = pygit2.Repository(str(memory)).head.target
    for run in range(runs):
        result.load.append(os.getloadavg()[0])
        took, out = process([CMEM, "log", "-n", "20"], project.root, box)
        lines = out.decode().splitlines()
        if len(lines) != 20 or not lines[0].startswith(str(tip)[:8]):
            raise BenchError(f"cmem log -n 20 printed {len(lines)} lines:\n{out[:500]!r}")
        result.cmem.samples.append(took)
        took, out = process(["git", "log", "-n", "20"], memory, box)
        if out.count(b"\ncommit ") != 19:
            raise BenchError(f"git log -n 20 printed:\n{out[:500]!r}")
        result.git.samples.append(took)
        took, same = process([CMEM, "log", "-n", "20", "HEAD"], project.root, box)
        if same.decode().splitlines() != lines:
            raise BenchError("cmem log -n 20 HEAD printed another log than cmem log -n 20")
        result.through_pygit2.samples.append(took)
        result.git_topo.samples.append(
            process(["git", "log", "-n", "20", "--topo-order"], memory, box)[0])
        result.startup.samples.append(process([CMEM, "--version"], project.root, box)[0])
        result.python.samples.append(process([PYTHON, "-c", "pass"], project.root, box)[0])
        repo = pygit2.Repository(str(memory))  # fresh: no object cache from the last run
        took, found = in_process(lambda: log(repo, repo.head.peel(pygit2.Commit).id, 20))
        if len(found) != 20:
            raise BenchError(f"history.log found {len(found)} commits")
        result.in_process.samples.append(took)
        progress(f"log run {run + 1}/{runs}: cmem log {ms(result.cmem.walls[-1])}, "
                 f"git log {ms(result.git.walls[-1])}")
    return result


# ---------------------------------------------------------------- row 2: records since a commit


@dataclass
class DeltaResult:
    size: int = 0  # transcript bytes at the last run
    appended: list[int] = field(default_factory=list)
    between: Figure = field(default_factory=Figure)
    chronological: Figure = field(default_factory=Figure)
    python_tail: Figure = field(default_factory=Figure)
    tail: Figure = field(default_factory=Figure)
    git_diff: Figure = field(default_factory=Figure)
    cli: Figure = field(default_factory=Figure)
    initial: dict[str, float] = field(default_factory=dict)


def bench_delta(box: Sandbox, lines: list[bytes], plan: Plan) -> DeltaResult:
    """Each run appends 1 MiB of records to the big transcript and commits it twice (cmem in
    process, and the git CLI in its plain repository); then the figures for that pair of
    commits. The transcript therefore grows by 1 MiB per run."""
    import pygit2

    from cmem_git.read import delta

    project = Project.create(box, "big")
    writer = Writer(project)
    sid = str(uuid.uuid4())
    session = Session(project, sid, Transcript(sid, lines))
    session.append(plan.big_mib * MIB)
    progress(f"delta: first backup of {mib(session.path.stat().st_size)}")
    result = DeltaResult()
    took, _ = in_process(lambda: writer.commit("pre-compact", sid, session.path,
                                               ("Trigger", "auto")))
    result.initial["cmem (in process)"] = took.wall
    result.initial["git add && git commit"] = session.git().wall
    plain = project.git_dir
    for run in range(plan.runs):
        before = session.path.stat().st_size
        old = pygit2.Repository(str(project.memory)).head.target
        plain_old = _rev(box, plain)
        session.append(plan.append)
        with open(session.path, "rb") as handle:
            handle.seek(before)
            added = handle.read()
        writer.commit("pre-compact", sid, session.path, ("Trigger", "auto"))
        session.git()
        plain_new = _rev(box, plain)
        result.appended.append(len(added))

        repo = pygit2.Repository(str(project.memory))  # fresh for each measurement
        pair = repo[old].peel(pygit2.Commit), repo.head.peel(pygit2.Commit)
        took, found = in_process(lambda: delta.between(repo, *pair))
        _check_delta(found, added, "delta.between")
        result.between.samples.append(took)

        repo = pygit2.Repository(str(project.memory))
        pair = repo[old].peel(pygit2.Commit), repo.head.peel(pygit2.Commit)
        took, found = in_process(lambda: delta.chronological(repo, *pair))
        _check_delta(found, added, "delta.chronological")
        result.chronological.samples.append(took)

        def read_tail() -> bytes:
            with open(session.path, "rb") as handle:
                handle.seek(-len(added), os.SEEK_END)
                return handle.read()

        took, tail = in_process(read_tail)
        result.python_tail.samples.append(took)
        took, tail = process(["tail", "-c", str(len(added)), str(session.path)], project.root,
                             box)
        if tail != added:
            raise BenchError("tail -c did not print the appended bytes")
        result.tail.samples.append(took)
        took, patch = process(["git", "diff", plain_old, plain_new], plain, box)
        if len(patch) < len(added):
            raise BenchError(f"git diff printed only {len(patch)} bytes")
        result.git_diff.samples.append(took)
        took, out = process([CMEM, "delta", "--since", str(old), "--jsonl"], project.root, box)
        if out != added:
            raise BenchError(f"cmem delta --jsonl printed {len(out)} bytes, not the "
                             f"{len(added)} appended")
        result.cli.samples.append(took)
        progress(f"delta run {run + 1}/{plan.runs} on {mib(session.path.stat().st_size)}: "
                 f"between {ms(result.between.walls[-1])}, cmem delta "
                 f"{ms(result.cli.walls[-1])}, git diff {ms(result.git_diff.walls[-1])}")
    result.size = session.path.stat().st_size
    return result


def _rev(box: Sandbox, repo: Path) -> str:
    return box.run(["git", "rev-parse", "HEAD"], cwd=repo).strip()


def _check_delta(found: list[Any], added: bytes, what: str) -> None:
    """A fast answer that is wrong would be a false result: it must be the appended bytes."""
    if len(found) != 1 or found[0].data != added or found[0].rewritten:
        sizes = [(d.stored, len(d.data), d.rewritten) for d in found]
        raise BenchError(f"{what} returned {sizes}, not the {len(added)} appended bytes")


# ---------------------------------------------------------------- report


@dataclass
class Row:
    key: str
    label: str
    value: str
    cpu: str = ""
    target: str = ""
    ok: bool | None = None
    ratio: str = ""  # the cmem row over this baseline


def x(cmem: Figure, base: Figure) -> str:
    """cmem's median over a baseline's."""
    ratio = cmem.median / base.median
    return f"{ratio:.1f}x" if ratio >= 1 else f"{ratio:.2g}x"


def rows(built: Built, log: LogResult, found: DeltaResult | None, plan: Plan) -> list[Row]:
    n = f"{built.commits:,}"
    return [
        Row("1", f"cmem log -n 20, {n} commits (whole process; {log.load_text()})",
            fig(log.cmem), ms(log.cmem.cpu), f"<= {LOG_TARGET:.0f} ms",
            log.cmem.median <= LOG_TARGET),
        Row("1g", "  baseline: git log -n 20, same repository", fig(log.git), ms(log.git.cpu),
            ratio=x(log.cmem, log.git)),
        Row("1r", "  context: cmem log -n 20 HEAD (the path through pygit2)",
            fig(log.through_pygit2), ms(log.through_pygit2.cpu),
            ratio=x(log.cmem, log.through_pygit2)),
        Row("1t", "  context: git log -n 20 --topo-order (full-history sort)", fig(log.git_topo),
            ms(log.git_topo.cpu), ratio=x(log.cmem, log.git_topo)),
        Row("1s", "  context: cmem --version (interpreter + CLI imports)", fig(log.startup),
            ms(log.startup.cpu)),
        Row("1i", "  context: python -c pass (the interpreter alone)", fig(log.python),
            ms(log.python.cpu)),
        Row("1p", "  context: history.log(repo, tip, 20) in process", fig(log.in_process),
            ms(log.in_process.cpu)),
    ] + (delta_rows(found, plan) if found is not None else [])


def delta_rows(found: DeltaResult, plan: Plan) -> list[Row]:
    append = mib(sum(found.appended) / len(found.appended))
    big = f"{mib(found.size - plan.append * plan.runs)}-{mib(found.size)}"
    return [
        Row("2", f"delta.between, last {append} of a {big} transcript (in process)",
            fig(found.between), ms(found.between.cpu), f"<= {DELTA_TARGET:.0f} ms",
            found.between.median <= DELTA_TARGET),
        Row("2p", "  baseline: read the last 1 MiB in Python (in process)", fig(found.python_tail),
            ms(found.python_tail.cpu), ratio=x(found.between, found.python_tail)),
        Row("2t", "  baseline: tail -c <appended bytes> (whole process)", fig(found.tail),
            ms(found.tail.cpu), ratio=x(found.between, found.tail)),
        Row("2g", "  baseline: git diff old new, plain repo, whole file (whole process)",
            fig(found.git_diff), ms(found.git_diff.cpu), ratio=x(found.between, found.git_diff)),
        Row("2c", "  context: delta.chronological (what cmem delta calls), in process",
            fig(found.chronological), ms(found.chronological.cpu)),
        Row("2w", "cmem delta --since OLD --jsonl (whole process)", fig(found.cli),
            ms(found.cli.cpu)),
        Row("2w'", "  cmem delta over: tail -c / git diff (both whole process)",
            f"{x(found.cli, found.tail)} / {x(found.cli, found.git_diff)}"),
    ]


def render(table: list[Row]) -> str:
    header = ("row", "what", "median [fastest]", "CPU", "cmem / this", "target", "result")
    cells = [header] + [(r.key, r.label, r.value, r.cpu, r.ratio, r.target,
                         "" if r.ok is None else "PASS" if r.ok else "FAIL") for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def text(report: dict[str, Any], where: str) -> str:
    info, plan, built = report["machine"], report["plan"], report["history"]
    ms_per = built["seconds"] * 1000 / built["commits"]
    events = ", ".join(f"{name} {count}" for name, count in sorted(built["events"].items(),
                                                                   key=lambda i: -i[1]))
    lines = [
        f"cmem read benchmarks{' (QUICK: not the SPEC sizes)' if report['quick'] else ''}: "
        f"Python {info['python']}, pygit2 {info['pygit2']} (libgit2 {info['libgit2']}), "
        f"{info['git']}, {info['cpus']} CPUs, {info['platform']}",
        f"cells are 'median [fastest run]' of wall time over {plan['runs']} runs; CPU is the "
        "median user+sys time (of the child for whole processes); whole processes are started "
        "directly, stdout to a pipe",
        f"history: {built['commits']:,} commits made by checkpoint.take in process in "
        f"{built['seconds']:.0f} s ({ms_per:.1f} ms per commit), {built['sessions']} sessions, "
        f"{mib(built['transcript_bytes'])} of transcripts; events: {events}",
        f"  as cmem leaves it (no gc): {built['loose_objects']:,} loose objects, "
        f"`du` of .git {mib(built['git_du'])}",
        f"delta: each run appends ~1 MiB of records to the big transcript and commits it (cmem "
        f"in process, git CLI in a plain repo); first backup of {plan['big_mib']} MiB: "
        + ", ".join(f"{k} {ms(v)}" for k, v in report["delta_initial"].items())
        if report["delta_initial"] else "delta: not measured (--log-only)",
        _load(report["load"], info["cpus"]), "", render([Row(**row) for row in report["rows"]]),
        "", f"done in {report['seconds']} s{where}"]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def run_reads(box: Sandbox, plan: Plan, log_only: bool
              ) -> tuple[Built, LogResult, DeltaResult | None]:
    lines = corpus_lines()
    project, built = build_history(box, lines, plan)
    log = bench_log(project, plan.runs)
    return built, log, None if log_only else bench_delta(box, lines, plan)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="1,000 commits, 10 MiB, 3 runs (smoke check)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--runs", type=int, help="timed runs per row (default 9, quick 3)")
    parser.add_argument("--commits", type=int, help="history length (default 10,000)")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--log-only", action="store_true", help="only the `cmem log` rows")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    plan = Plan(args.commits or plan.commits, plan.big_mib, plan.append, args.runs or plan.runs)
    if not os.access(CMEM, os.X_OK):
        print(f"bench failed: no cmem script at {CMEM}; run with the Python that has cmem "
              "installed", file=sys.stderr)
        return 1
    load = os.getloadavg()
    started = time.perf_counter()
    done = sandboxed(args.dir, args.keep, lambda box: run_reads(box, plan, args.log_only))
    if done is None:
        return 1
    box, (built, log, found) = done
    table = rows(built, log, found, plan)
    report = {
        "machine": machine(), "plan": asdict(plan), "quick": args.quick,
        "history": {**asdict(built), "ms_per_commit": round(built.per_commit, 2)},
        "delta_initial": found.initial if found else {},
        "delta_appended_bytes": found.appended if found else [],
        "rows": [asdict(row) for row in table], "log_load": log.load,
        "samples": {key: figure.json() for key, figure in {
            "1": log.cmem, "1g": log.git, "1r": log.through_pygit2, "1t": log.git_topo,
            "1s": log.startup, "1i": log.python, "1p": log.in_process, **({
                "2": found.between, "2p": found.python_tail, "2t": found.tail,
                "2g": found.git_diff, "2c": found.chronological, "2w": found.cli}
                if found else {})}.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "load": {"before": load, "after": os.getloadavg()}}
    where = f"; sandbox kept at {box.root}" if args.keep else ""
    print(json.dumps(report, indent=1, default=str) if args.json else text(report, where))
    return 0 if all(row.ok is not False for row in table) else 2


if __name__ == "__main__":
    sys.exit(main())
