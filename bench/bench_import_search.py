#!/usr/bin/env python3
"""Import and search benchmarks (issue 7): cmem beside what it replaces, measured in one run.

1. `cmem import` of a projects folder of 200 sessions made from the corpus files with new ids
   (the acceptance test's folder), first run and the second run that finds nothing to do.
   Baselines: `cp -r` of the folder (claude-memory's backup) and the git CLI committing the
   same files one session per commit (`git add <files> && git commit`).
2. `cmem search` over a memory of 1,000 sessions and 1 GiB of transcripts (`--size` scales it
   down), built by `cmem import` from transcripts of corpus records in a cycle, each record with
   a fresh uuid, session id and timestamp; a tenth of the sessions then grow and are imported
   again, so history also holds rewritten last chunks. A rare word sits in 3 sessions.
   Baselines: `grep -rF` over the plain transcript folder (claude-memory's /search-sessions),
   and `git grep -F` over the memory repository's tip (no history, chunks not reassembled).

Every timing is a whole process, the way a user runs it, with a warm page cache (the files were
just written); dirty pages are flushed before each one, outside the clock. Everything happens
in a temporary folder with its own HOME; the real ~/.claude is never touched.

Run:  python bench/bench_import_search.py [--size GIB] [--sessions N] [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("CMEM_CORPUS", HERE.parent / "tests" / "data" / "corpus"))
PYTHON = sys.executable
RARE = "quokka-7f3a9"
_FIELD = re.compile(rb'"(uuid|sessionId|timestamp|parentUuid)":"[^"]*"')
_SESSION_FIELD = re.compile(rb'"sessionId":\s*"[^"]*"')


def cmem_argv(*args: str) -> list[str]:
    script = Path(PYTHON).parent / "cmem"
    return [str(script), *args] if script.exists() else [PYTHON, "-m", "cmem_git", *args]


class Box:
    """The sandbox: its own HOME with a git identity, and a project with cmem set up."""

    def __init__(self, parent: str | None) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="cmem-bench-import-", dir=parent)).resolve()
        self.home = self.root / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = b@example.com\n"
                                              "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")

    def env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LC_ALL": "C.UTF-8", "GIT_CONFIG_NOSYSTEM": "1"}

    def project(self, name: str) -> tuple[Path, Path]:
        """A project with `cmem init` done, and its Claude Code transcript folder."""
        sys.path.insert(0, str(HERE.parent))
        from cmem_git.paths import encode_project

        root = self.root / name
        root.mkdir()
        self.run(["git", "init", "-q", str(root)], root)
        self.run(cmem_argv("init"), root)
        folder = self.home / ".claude" / "projects" / encode_project(root)
        folder.mkdir(parents=True)
        return root, folder

    def run(self, argv: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> str:
        done = subprocess.run(argv, cwd=cwd, env=self.env(), capture_output=True)
        if done.returncode not in ok:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")

    def timed(self, argv: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
        os.sync()
        start = time.perf_counter()
        out = self.run(argv, cwd, ok)
        return time.perf_counter() - start, out


# --- transcripts ----------------------------------------------------------------------------

def corpus_files() -> list[Path]:
    spotter = CORPUS / "spotter"
    return [spotter / "short.jsonl", spotter / "tool_heavy.jsonl", spotter / "subagent.jsonl",
            next(spotter.glob("*.EXCERPT-compact.jsonl")),
            CORPUS / "claude-code-log" / "representative_messages.jsonl"]


def corpus_lines() -> list[bytes]:
    lines = []
    for path in sorted((CORPUS / "spotter").rglob("*.jsonl")):
        lines += [line.rstrip(b"\n") + b"\n" for line in path.read_bytes().splitlines() if line]
    return lines


def copy_sessions(folder: Path, count: int) -> int:
    """The acceptance test's folder: corpus files with new ids, subagents included."""
    files, total = corpus_files(), 0
    parent = files[3].name.split(".")[0]
    for index in range(count):
        sid = str(uuid.UUID(int=index + 1))
        source = files[index % len(files)]
        data = _SESSION_FIELD.sub(f'"sessionId":"{sid}"'.encode(), source.read_bytes())
        (folder / f"{sid}.jsonl").write_bytes(data)
        total += len(data)
        if source == files[3]:
            for agent in sorted((source.parent / parent / "subagents").glob("*.jsonl")):
                target = folder / sid / "subagents" / agent.name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(_SESSION_FIELD.sub(f'"sessionId":"{sid}"'.encode(),
                                                      agent.read_bytes()))
                total += target.stat().st_size
        os.utime(folder / f"{sid}.jsonl", (1_700_000_000 + index, 1_700_000_000 + index))
    return total


class Writer:
    """Realistic records without end: corpus lines in a cycle, each made unique."""

    def __init__(self, lines: list[bytes], start: int) -> None:
        self._lines = itertools.cycle(lines[start % len(lines):] + lines[:start % len(lines)])
        self._clock = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)

    def take(self, sid: str, size: int) -> bytes:
        out, total, previous = [], 0, b""
        while total < size:
            self._clock += dt.timedelta(milliseconds=1733)
            fresh = str(uuid.uuid4()).encode()
            values = {b"uuid": fresh, b"sessionId": sid.encode(), b"parentUuid": previous or fresh,
                      b"timestamp": self._clock.strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()}
            line = _FIELD.sub(lambda m: b'"%s":"%s"' % (m[1], values[m[1]]), next(self._lines))
            out.append(line)
            total += len(line)
            previous = fresh
        return b"".join(out)


def rare_record(sid: str) -> bytes:
    return json.dumps({"type": "user", "sessionId": sid, "uuid": str(uuid.uuid4()),
                       "message": {"role": "user", "content": f"where is the {RARE} config?"}}
                      ).encode() + b"\n"


def build_large(folder: Path, sessions: int, size: int) -> int:
    lines, per = corpus_lines(), max(size // sessions, 4096)
    total = 0
    for index in range(sessions):
        sid = str(uuid.UUID(int=10_000 + index))
        data = Writer(lines, index * 7).take(sid, per)
        if index in (17, sessions // 2, sessions - 1):
            data += rare_record(sid)
        (folder / f"{sid}.jsonl").write_bytes(data)
        os.utime(folder / f"{sid}.jsonl", (1_700_000_000 + index,) * 2)
        total += len(data)
    return total


def grow(folder: Path, every: int) -> int:
    lines, added = corpus_lines(), 0
    for index, path in enumerate(sorted(folder.glob("*.jsonl"))):
        if index % every == 0:
            more = Writer(lines, index).take(path.stem, 64 * 1024)
            with open(path, "ab") as handle:
                handle.write(more)
            added += len(more)
    return added


# --- the two benchmarks ---------------------------------------------------------------------

def bench_import(box: Box, count: int) -> dict[str, Any]:
    root, folder = box.project("import")
    total = copy_sessions(folder, count)
    first, out = box.timed(cmem_argv("import"), root)
    if f"{count} imported" not in out:
        raise SystemExit(f"import did not import every session: {out}")
    again, out = box.timed(cmem_argv("import"), root)
    if "nothing new" not in out:
        raise SystemExit(f"second import was not empty: {out}")
    cp_time, _ = box.timed(["cp", "-r", str(folder), str(box.root / "cp-backup")], box.root)
    return {"sessions": count, "bytes": total, "cmem_import": first, "cmem_import_again": again,
            "cp": cp_time, "git_cli": git_per_session(box, folder)}


def git_per_session(box: Box, folder: Path) -> float:
    """The git CLI doing the same job: one commit per session, its files added whole."""
    repo = box.root / "git-cli"
    shutil.copytree(folder, repo)
    box.run(["git", "init", "-q", "."], repo)
    script = " && ".join(
        f"git add -- {p.name} {p.stem if (repo / p.stem).is_dir() else ''} && "
        f"git commit -qm {p.stem}" for p in sorted(repo.glob("*.jsonl")))
    elapsed, _ = box.timed(["sh", "-c", script], repo)
    return elapsed


def bench_search(box: Box, sessions: int, size: int, runs: int) -> dict[str, Any]:
    root, folder = box.project("search")
    started = time.perf_counter()
    total = build_large(folder, sessions, size)
    generated = time.perf_counter() - started
    first, _ = box.timed(cmem_argv("import"), root)
    added = grow(folder, 10)
    regrow, _ = box.timed(cmem_argv("import"), root)
    memory = root / ".claude" / "memory"
    commits = int(box.run(["git", "rev-list", "--count", "HEAD"], memory))
    searches = {
        f"cmem search {RARE}": cmem_argv("search", RARE),
        f"cmem search -i {RARE.upper()}": cmem_argv("search", "-i", RARE.upper()),
        "cmem search --regex 'quokka-[0-9a-f]{5}'": cmem_argv("search", "--regex",
                                                               "quokka-[0-9a-f]{5}"),
        f"cmem search --role user --json {RARE}": cmem_argv("search", "--role", "user",
                                                             "--json", RARE),
        f"grep -rF {RARE} <projects folder>": ["grep", "-rF", RARE, str(folder)],
        f"git grep -F {RARE} HEAD (tip only)": ["git", "grep", "-F", RARE, "HEAD"],
    }
    times: dict[str, list[float]] = {}
    outputs: dict[str, str] = {}
    for name, argv in searches.items():
        cwd = memory if argv[0] == "git" else root
        for _ in range(runs):
            elapsed, outputs[name] = box.timed(argv, cwd, ok=(0, 1))
            times.setdefault(name, []).append(elapsed)
    hits = len(outputs[f"cmem search {RARE}"].splitlines())
    if hits != 3:
        raise SystemExit(f"cmem search found {hits} matches of {RARE}, not 3")
    return {"sessions": sessions, "bytes": total + added, "generated_s": generated,
            "import_s": first, "reimport_s": regrow, "commits": commits,
            "repo_bytes": du(memory / ".git"), "median_s": {k: statistics.median(v)
                                                           for k, v in times.items()},
            "runs": runs, "hits": hits}


def du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# --- report ---------------------------------------------------------------------------------

def report(found: dict[str, Any]) -> str:
    imp, big = found["import"], found["search"]
    mib = imp["bytes"] / MIB
    load = found["load"]
    lines = [f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
             f"{load[0]:.1f} before, {load[1]:.1f} after (other work slows every row)", "",
             f"1. import of {imp['sessions']} sessions ({mib:.1f} MiB), whole process",
             f"   cmem import (first run)      {imp['cmem_import']:8.2f} s  "
             f"({mib / imp['cmem_import']:.1f} MiB/s, one commit per session)",
             f"   cmem import (second run)     {imp['cmem_import_again']:8.2f} s  (no commit)",
             f"   baseline cp -r               {imp['cp']:8.2f} s",
             f"   baseline git CLI, 1 commit/session {imp['git_cli']:5.2f} s", "",
             f"2. search over {big['sessions']} sessions, {big['bytes'] / MIB:.0f} MiB of "
             f"transcripts, {big['commits']} commits, .git {big['repo_bytes'] / MIB:.0f} MiB",
             f"   (built in: generate {big['generated_s']:.0f} s, cmem import "
             f"{big['import_s']:.1f} s, re-import of 10% grown {big['reimport_s']:.1f} s)",
             f"   median of {big['runs']} runs, whole process:"]
    for name, seconds in big["median_s"].items():
        rate = big["bytes"] / MIB / seconds
        lines.append(f"   {name:<48} {seconds:8.2f} s  ({rate:.0f} MiB/s)")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=float, default=1.0, help="GiB of transcripts to search")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--import-sessions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", help="where the temporary folder goes")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    real_claude = Path.home() / ".claude"
    before = _fingerprint(real_claude)
    box = Box(args.dir)
    load = os.getloadavg()[0]
    try:
        found = {"import": bench_import(box, args.import_sessions),
                 "search": bench_search(box, args.sessions, int(args.size * 1024 * MIB),
                                        args.runs)}
        found["load"] = [load, os.getloadavg()[0]]
    finally:
        if not args.keep:
            shutil.rmtree(box.root, ignore_errors=True)
    if _fingerprint(real_claude) != before:
        raise SystemExit("the real ~/.claude changed during the run: figures void")
    print(json.dumps(found, indent=2) if args.json else report(found), end="")
    if args.keep:
        print(f"kept {box.root}", file=sys.stderr)
    return 0


def _fingerprint(folder: Path) -> list[tuple[str, int]]:
    if not folder.is_dir():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in folder.glob("*"))


if __name__ == "__main__":
    sys.exit(main())
