#!/usr/bin/env python3
"""Sync benchmarks: what an incremental push sends, and what a sync that has nothing to do
costs, cmem beside the git CLI on a plain repository, measured in the same run.

SPEC "Performance targets": an incremental push after a 1 MiB append sends <= 2 MiB. cmem
stores a transcript as chunk files whose boundaries stay put as it grows, so a backup after an
append writes only the last chunk again and a push sends that chunk and the trees above it. The
baseline is the transcript committed whole in a plain repository and pushed with `git push`
(git may send the new version as a delta against the old one, which costs it CPU time instead
of bytes: both are shown).

Both push over git:// to a `git daemon` this script starts on 127.0.0.1 and stops. Everything
happens in a temporary folder with its own HOME (the real ~/.claude is never touched; a
tripwire checks). Transcript content comes from bench_hooks.py: real corpus records with fresh
ids, so it does not repeat within zlib's window.

Run:  python bench/bench_sync.py [--quick] [--size MIB] [--runs N] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_hooks import (  # noqa: E402 - the sibling benchmark's content and sandbox
    PYTHON,
    BenchError,
    Sandbox,
    Transcript,
    corpus_lines,
    gzip_size,
    payload,
    sandboxed,
)

MIB = 1024 * 1024
TARGET = 2 * MIB  # SPEC: an incremental push after a 1 MiB append sends <= 2 MiB
_WRITTEN = re.compile(r"Writing objects: 100% \(\d+/\d+\), ([\d.]+) (bytes|KiB|MiB|GiB)")
_UNITS = {"bytes": 1, "KiB": 1024, "MiB": MIB, "GiB": 1024 * MIB}
_SENT = re.compile(r"\((\d+) bytes sent\)")


# ---------------------------------------------------------------- the server


class Daemon:
    """`git daemon` with receive-pack on a free port of 127.0.0.1, always stopped."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Daemon:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [str(Path(subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                                     check=True).stdout.strip()) / "git-daemon"), "--reuseaddr", "--export-all",
             "--enable=receive-pack",
             f"--base-path={self.base}", f"--port={self.port}", "--listen=127.0.0.1",
             str(self.base)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.__exit__()
        raise BenchError("git daemon did not start listening")

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ---------------------------------------------------------------- the two sides


def run(box: Sandbox, argv: list[str], cwd: Path, data: bytes | None = None
        ) -> tuple[float, str, str]:
    """Wall time in seconds of a whole process, and its output; a failure stops the run."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=box.env(), input=data, capture_output=True,
                          timeout=900)
    took = time.perf_counter() - start
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed ({done.returncode}):\n{out}\n{err}")
    return took, out, err


@dataclass
class Side:
    """cmem's memory repository, or the baseline's plain repository, and its pushes."""

    box: Sandbox
    name: str
    root: Path
    transcript: Path
    pushes: list[tuple[int, float]] = field(default_factory=list)  # (bytes sent, seconds)
    no_op: list[float] = field(default_factory=list)

    def cmem(self, *args: str, data: bytes | None = None) -> tuple[float, str, str]:
        return run(self.box, [PYTHON, "-m", "cmem_git", *args], self.root, data)

    def git(self, *args: str) -> tuple[float, str, str]:
        return run(self.box, ["git", *args], self.root)


def cmem_side(box: Sandbox, url: str) -> Side:
    from cmem_git.paths import encode_project

    root = box.root / "project"
    root.mkdir()
    run(box, ["git", "init", "-q", str(root)], box.root)
    folder = box.home / ".claude" / "projects" / encode_project(root)
    folder.mkdir(parents=True)
    side = Side(box, "cmem", root, folder / f"{uuid.uuid4()}.jsonl")
    side.cmem("init", "--device", "bench")
    config = root / ".claude" / "memory" / "cmem.yaml"
    config.write_text(config.read_text().replace("auto_sync: true", "auto_sync: false"))
    side.cmem("remote", "add", "origin", url)
    return side


def git_side(box: Sandbox, url: str) -> Side:
    root = box.root / "plain"
    run(box, ["git", "init", "-q", str(root)], box.root)
    side = Side(box, "git CLI", root, root / "transcript.jsonl")
    side.git("remote", "add", "origin", url)
    return side


def back_up(side: Side) -> None:
    """cmem: the PreCompact hook, as Claude Code runs it. Baseline: add and commit the file."""
    if side.name == "cmem":
        sid = side.transcript.stem
        hook = json.dumps(payload("PreCompact", sid, side.transcript, side.root)).encode()
        took, out, err = run(side.box, [PYTHON, "-m", "cmem_git", "hook", "pre-compact"],
                             side.root, hook)
        if out.strip() or err.strip():
            raise BenchError(f"PreCompact reported a problem: {out}{err}")
    else:
        side.git("add", side.transcript.name)
        side.git("commit", "-q", "-m", "backup")


def push(side: Side) -> tuple[int, float]:
    if side.name == "cmem":
        took, out, _ = side.cmem("push")
        found = _SENT.search(out)
        if not found:
            raise BenchError(f"cmem push did not say what it sent: {out}")
        return int(found[1]), took
    took, _, err = side.git("push", "--progress", "origin", "HEAD:refs/heads/main")
    found = _WRITTEN.search(err)
    if not found:
        raise BenchError(f"git push did not say what it sent: {err}")
    return int(float(found[1]) * _UNITS[found[2]]), took


def no_op_sync(side: Side) -> float:
    """A sync with nothing to do: cmem sync; for git, the fetch and push a sync amounts to."""
    if side.name == "cmem":
        took, out, _ = side.cmem("sync")
        if "up to date" not in out:
            raise BenchError(f"cmem sync found something to do: {out}")
        return took
    start = time.perf_counter()
    side.git("fetch", "--quiet", "origin")
    side.git("merge", "--ff-only", "--quiet", "origin/main")
    side.git("push", "--porcelain", "origin", "HEAD:refs/heads/main")
    return time.perf_counter() - start


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Plan:
    size_mib: int
    runs: int


def bench(box: Sandbox, plan: Plan) -> dict[str, Any]:
    served = box.root / "served"
    served.mkdir()
    for name in ("cmem.git", "plain.git"):
        run(box, ["git", "init", "-q", "--bare", "-b", "main", str(served / name)], box.root)
    with Daemon(served) as daemon:
        sides = [cmem_side(box, daemon.url("cmem.git")), git_side(box, daemon.url("plain.git"))]
        content = Transcript(str(uuid.uuid4()), corpus_lines())
        grow(sides, content.take(plan.size_mib * MIB))
        first = {side.name: push(side) for side in sides}
        for _ in range(plan.runs):
            grow(sides, content.take(MIB))
            for side in sides:
                side.pushes.append(push(side))
        for _ in range(plan.runs):
            for side in sides:
                side.no_op.append(no_op_sync(side))
    local = no_op_local(box, sides, served, plan.runs)
    whole = sides[0].transcript.stat().st_size
    return {"plan": plan.__dict__, "transcript_bytes": whole,
            "transcript_gzip": gzip_size(sides[0].transcript),
            "sides": {side.name: {
                "first_push_bytes": first[side.name][0],
                "incremental_bytes": [b for b, _ in side.pushes],
                "incremental_seconds": [round(t, 3) for _, t in side.pushes],
                "no_op_sync_seconds": [round(t, 3) for t in side.no_op],
                "no_op_sync_local_seconds": local[side.name]} for side in sides}}


def no_op_local(box: Sandbox, sides: list[Side], served: Path, runs: int
                ) -> dict[str, list[float]]:
    """A sync with nothing to do against a bare repository on this disk (a path URL): cmem
    sync beside `git fetch && git push`, after one real sync has filled it."""
    times: dict[str, list[float]] = {side.name: [] for side in sides}
    for side in sides:
        bare = served / f"local-{side.root.name}.git"
        run(box, ["git", "init", "-q", "--bare", "-b", "main", str(bare)], box.root)
        (side.cmem if side.name == "cmem" else side.git)("remote", "add", "local", str(bare))
        steps = ([["sync", "local"]] if side.name == "cmem"
                 else [["fetch", "--quiet", "local"], ["push", "--quiet", "local", "HEAD:main"]])
        for attempt in range(runs + 1):
            start = time.perf_counter()
            for step in steps:
                (side.cmem if side.name == "cmem" else side.git)(*step)
            if attempt:  # the first one fills the bare repository
                times[side.name].append(round(time.perf_counter() - start, 3))
    return times


def grow(sides: list[Side], data: bytes) -> None:
    for side in sides:
        with open(side.transcript, "ab") as handle:
            handle.write(data)
        back_up(side)


def text(report: dict[str, Any]) -> str:
    plan, sides = report["plan"], report["sides"]
    lines = [f"sync benchmarks: a {plan['size_mib']} MiB transcript, then {plan['runs']} runs "
             f"of a 1 MiB append and a push (final size {report['transcript_bytes'] / MIB:.0f} "
             f"MiB, gzip -6 {report['transcript_gzip'] / MIB:.1f} MiB), over git:// to a local "
             "git daemon",
             "cells are 'median [fastest run]'", "",
             f"{'':44}{'cmem':>22}{'git CLI baseline':>26}"]
    rows = [("incremental push after 1 MiB: bytes sent", "incremental_bytes", _bytes),
            ("incremental push after 1 MiB: wall time", "incremental_seconds", _ms),
            ("no-op sync: wall time", "no_op_sync_seconds", _ms),
            ("no-op sync, local bare repository", "no_op_sync_local_seconds", _ms)]
    for label, key, unit in rows:
        cells = [f"{unit(statistics.median(sides[s][key]))} [{unit(min(sides[s][key]))}]"
                 for s in ("cmem", "git CLI")]
        lines.append(f"{label:44}{cells[0]:>22}{cells[1]:>26}")
    lines.append(f"{'first push of the whole transcript: bytes':44}"
                 f"{_bytes(sides['cmem']['first_push_bytes']):>22}"
                 f"{_bytes(sides['git CLI']['first_push_bytes']):>26}")
    worst = max(sides["cmem"]["incremental_bytes"])
    verdict = "met" if worst <= TARGET else "NOT MET"
    lines += ["", f"target: incremental push <= 2 MiB; largest cmem push {_bytes(worst)}: "
              f"{verdict}", "baseline no-op sync = git fetch + merge --ff-only + push; against a "
              "local bare repository: git fetch && git push",
              f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"]
    return "\n".join(lines)


def _bytes(value: float) -> str:
    return f"{value / MIB:.2f} MiB" if value >= MIB else f"{value / 1024:.1f} KiB"


def _ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 10 MiB transcript, 3 runs")
    parser.add_argument("--size", type=int, help="transcript size in MiB (default 50)")
    parser.add_argument("--runs", type=int, help="appends and no-op syncs (default 5)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    plan = Plan(args.size or (10 if args.quick else 50), args.runs or (3 if args.quick else 5))
    done = sandboxed(args.dir, args.keep, lambda box: bench(box, plan))
    if done is None:
        return 1
    report = done[1]
    print(json.dumps(report, indent=1) if args.json else text(report))
    return 0 if max(report["sides"]["cmem"]["incremental_bytes"]) <= TARGET else 2


if __name__ == "__main__":
    sys.exit(main())
