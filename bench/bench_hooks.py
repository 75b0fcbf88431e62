#!/usr/bin/env python3
"""Hook benchmarks: cmem beside the two ways of backing up a transcript it replaces.

SPEC "Performance targets" asks for each figure next to `cp` of the transcript into a backup
folder (what claude-memory did) and `git add && git commit` of the whole file with the git CLI,
measured in the same run. Every timing here is a whole process started the way Claude Code
starts a hook: the command from `.claude/settings.local.json` through `sh -c`, hook JSON on stdin,
CLAUDE_PROJECT_DIR set. The baselines go through `sh -c` too, so all three pay the same shell.

Everything happens in a temporary folder with its own HOME (the real ~/.claude is never read or
written; a tripwire checks). Transcripts are built from the real lines in ../shared/corpus/spotter,
each with a fresh uuid, a parentUuid chained to the previous record, one session id and advancing
timestamps, so content does not repeat within gzip's window; the gzip ratio is reported.

Run:  python bench/bench_hooks.py [--quick] [--json] [--profile] [--runs N] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import itertools
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

MIB = 1024 * 1024
HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("CMEM_CORPUS", HERE.parent / "tests" / "data" / "corpus"))
MINIMAL_PATH = "/usr/bin:/bin"  # Claude Code's hook shell does not have cmem's venv on PATH
PYTHON = sys.executable  # must have cmem installed: it becomes the hooks' interpreter

CP_SCRIPT = 'cp -- "$1" "$2"'
CP_UPDATE_SCRIPT = 'cp -u -- "$1" "$2"'
GIT_SCRIPT = 'git add -- "$1" && { git diff --cached --quiet || git commit -q -m backup; }'


class BenchError(Exception):
    pass


@dataclass(frozen=True)
class Plan:
    big_mib: int  # row 1's transcript
    small_mib: int  # row 2's transcript
    append: int  # bytes appended before each timed hook
    runs: int
    backups: int  # row 4: backups of 1 append each, from an empty transcript


FULL = Plan(big_mib=100, small_mib=1, append=MIB, runs=9, backups=50)
QUICK = Plan(big_mib=10, small_mib=1, append=MIB, runs=3, backups=8)


# ---------------------------------------------------------------- synthetic transcript content

_FIELD = re.compile(rb'"(uuid|parentUuid|sessionId|timestamp)":"[^"]*"')


def corpus_lines() -> list[bytes]:
    files = sorted((CORPUS / "spotter").rglob("*.jsonl"))
    if not files:
        raise BenchError(f"no corpus transcripts under {CORPUS / 'spotter'} (set CMEM_CORPUS)")
    lines = []
    for path in files:
        lines += [line if line.endswith(b"\n") else line + b"\n"
                  for line in path.read_bytes().splitlines(keepends=True) if line.strip()]
    return lines


class Transcript:
    """An endless, realistic session: corpus records in a cycle, made unique per record."""

    def __init__(self, session_id: str, lines: list[bytes]) -> None:
        self.session_id = session_id.encode()
        self._lines = itertools.cycle(lines)
        self._previous: bytes | None = None
        self._clock = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)

    def take(self, size: int) -> bytes:
        """Whole records adding up to at least `size` bytes."""
        out, total = [], 0
        while total < size:
            line = self._record(next(self._lines))
            out.append(line)
            total += len(line)
        return b"".join(out)

    def _record(self, line: bytes) -> bytes:
        self._clock += dt.timedelta(milliseconds=1733)
        stamp = self._clock.strftime("%Y-%m-%dT%H:%M:%S.").encode()
        stamp += b"%03dZ" % (self._clock.microsecond // 1000)
        fresh = str(uuid.uuid4()).encode()
        values = {b"uuid": fresh, b"sessionId": self.session_id, b"timestamp": stamp,
                  b"parentUuid": self._previous or fresh}
        line = _FIELD.sub(lambda m: b'"%s":"%s"' % (m[1], values[m[1]]), line)
        self._previous = fresh
        return line


def gzip_size(path: Path) -> int:
    """`gzip -6` of a file, by the gzip program when there is one."""
    if shutil.which("gzip"):
        with open(path, "rb") as source:
            done = subprocess.run(["gzip", "-6", "-c"], stdin=source, capture_output=True,
                                  check=True)
        return len(done.stdout)
    return len(gzip.compress(path.read_bytes(), 6))


# ---------------------------------------------------------------- processes and the sandbox


class Sample(NamedTuple):
    """One whole process: wall time, and the CPU time (user + sys) of it and its children,
    which other load on the machine disturbs much less."""

    wall: float
    cpu: float


def timed(argv: list[str], *, data: bytes | None = None, cwd: Path, env: dict[str, str]
          ) -> tuple[Sample, subprocess.CompletedProcess[bytes]]:
    """Times in ms of one whole process; dirty pages are flushed first, outside the clock,
    so one measurement's writeback does not land in the next one's time."""
    os.sync()
    before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, input=data, capture_output=True, cwd=cwd, env=env, timeout=600)
    wall = time.perf_counter() - start
    return Sample(wall * 1000, (_children_cpu() - before) * 1000), done


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def shell(script: str, *args: str) -> list[str]:
    return ["sh", "-c", script, "sh", *args]


@dataclass
class Sandbox:
    root: Path
    home: Path

    @classmethod
    def create(cls, parent: str | None) -> Sandbox:
        root = Path(tempfile.mkdtemp(prefix="cmem-bench-", dir=parent)).resolve()
        home = root / "home"
        home.mkdir()
        (home / ".gitconfig").write_text("[user]\n\tname = Bench\n\temail = bench@example.com\n"
                                         "[init]\n\tdefaultBranch = main\n[gc]\n\tauto = 0\n")
        os.environ["HOME"] = str(home)  # anything in this process that asks, gets the sandbox
        return cls(root, home)

    def env(self, **extra: str) -> dict[str, str]:
        return {"HOME": str(self.home), "PATH": MINIMAL_PATH, "LC_ALL": "C",
                "GIT_CONFIG_NOSYSTEM": "1", **extra}

    def run(self, argv: list[str], cwd: Path) -> str:
        done = subprocess.run(argv, cwd=cwd, env=self.env(), capture_output=True)
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode(errors="replace")


@dataclass
class Project:
    """A project with cmem set up, its Claude Code transcript folder, and the two baselines'
    places: a backup folder for cp and a plain repository for the git CLI."""

    box: Sandbox
    root: Path
    folder: Path
    cp_dir: Path
    git_dir: Path

    @classmethod
    def create(cls, box: Sandbox, name: str) -> Project:
        from cmem_git.paths import encode_project

        root = box.root / name
        root.mkdir()
        box.run(["git", "init", "-q", str(root)], cwd=box.root)
        box.run([PYTHON, "-m", "cmem_git", "init", "--device", "bench"], cwd=root)
        folder = box.home / ".claude" / "projects" / encode_project(root)
        folder.mkdir(parents=True)
        cp_dir, git_dir = box.root / f"{name}-cp-backups", box.root / f"{name}-git-cli"
        cp_dir.mkdir()
        box.run(["git", "init", "-q", str(git_dir)], cwd=box.root)
        return cls(box, root, folder, cp_dir, git_dir)

    @property
    def memory(self) -> Path:
        return self.root / ".claude" / "memory"

    def command(self, event: str) -> str:
        settings = json.loads((self.root / ".claude" / "settings.local.json").read_text())
        return str(settings["hooks"][event][-1]["hooks"][0]["command"])

    def hook(self, event: str, session: Session | None, argv: list[str] | None = None,
             detached: bool = False, **extra: str) -> Sample:
        """Run one hook as Claude Code does (no session: a new one whose file does not exist
        yet, as at startup); fail loudly if cmem reported a problem. Stop and SessionEnd do
        their work in a detached child as installed: by default they run in the foreground
        here, so that the figure is the work's; `detached` times what Claude Code waits for,
        then waits for the child, outside the clock."""
        took, done = timed(argv or ["sh", "-c", self.command(event)],
                           data=self.payload(event, session), cwd=self.root,
                           env=self.box.env(CLAUDE_PROJECT_DIR=str(self.root),
                                            CMEM_HOOK_FOREGROUND="" if detached else "1",
                                            **extra))
        _check_hook(event, done)
        from cmem_git.entry import detach
        from cmem_git.git import packing

        gitdir = self.root / ".claude" / "memory" / ".git"
        if detached and not detach.wait(gitdir, 600):
            raise SystemExit(f"the detached {event} hook did not finish")
        # A background repack the hook started runs between hooks; the next figure must not
        # share the two cores with it.
        if not packing.wait(gitdir, 600):
            raise SystemExit(f"the repack {event} started did not finish")
        return took

    def payload(self, event: str, session: Session | None) -> bytes:
        sid = session.sid if session else str(uuid.uuid4())
        transcript = session.path if session else self.folder / f"{sid}.jsonl"
        return json.dumps(payload(event, sid, transcript, self.root)).encode()


def payload(event: str, sid: str, transcript: Path, cwd: Path) -> dict[str, Any]:
    detail = {"SessionStart": {"source": "startup"}, "PreCompact": {"trigger": "auto"},
              "SessionEnd": {"reason": "prompt_input_exit"}}[event]
    return {"session_id": sid, "transcript_path": str(transcript), "cwd": str(cwd),
            "hook_event_name": event, **detail}


def _check_hook(event: str, done: subprocess.CompletedProcess[bytes]) -> None:
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    if event == "SessionStart":
        problem = done.returncode != 0 or "systemMessage" in out or not out.startswith("{")
    else:
        problem = done.returncode != 0 or bool(out.strip()) or "cmem" in err
    if problem:
        raise BenchError(f"{event} hook reported a problem (exit {done.returncode}):\n{out}\n{err}")


@dataclass
class Session:
    """One transcript in the project's Claude Code folder, mirrored into the git CLI baseline's
    working tree so both see the same bytes."""

    project: Project
    sid: str
    content: Transcript

    @property
    def path(self) -> Path:
        return self.project.folder / f"{self.sid}.jsonl"

    @property
    def mirror(self) -> Path:
        return self.project.git_dir / "transcript.jsonl"

    def append(self, size: int) -> None:
        data = self.content.take(size)
        for path in (self.path, self.mirror):
            with open(path, "ab") as handle:
                handle.write(data)

    def cp(self, name: str, keep: bool = False) -> Sample:
        target = self.project.cp_dir / f"{self.sid}-{name}.jsonl"
        took, done = timed(shell(CP_SCRIPT, str(self.path), str(target)),
                           cwd=self.project.root, env=self.project.box.env())
        _check_ok("cp", done)
        if not keep:
            target.unlink()
        return took

    def git(self) -> Sample:
        took, done = timed(shell(GIT_SCRIPT, self.mirror.name), cwd=self.project.git_dir,
                           env=self.project.box.env())
        _check_ok("git add && git commit", done)
        return took

    def check_committed(self) -> None:
        """A fast hook that stored nothing would be a false result: the tip must hold it all."""
        import pygit2

        repo = pygit2.Repository(str(self.project.memory))
        tree = repo.head.peel(pygit2.Commit).tree
        stored = tree[f"transcripts/{self.sid}/main.jsonl"]
        assert isinstance(stored, pygit2.Tree)
        last = max(stored, key=lambda entry: entry.name or "")  # chunk names sort as offsets
        blob = repo[last.id]
        assert isinstance(blob, pygit2.Blob)
        size = int((last.name or "").split("-")[0]) + blob.size
        if size != self.path.stat().st_size:
            raise BenchError(f"memory holds {size} bytes of {self.path.stat().st_size}")


def _check_ok(what: str, done: subprocess.CompletedProcess[bytes]) -> None:
    if done.returncode != 0:
        raise BenchError(f"{what} failed: {done.stderr.decode(errors='replace')}")


# ---------------------------------------------------------------- results


@dataclass
class Figure:
    samples: list[Sample] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.walls)

    @property
    def walls(self) -> list[float]:
        return [sample.wall for sample in self.samples]

    @property
    def cpu(self) -> float:
        return statistics.median(sample.cpu for sample in self.samples)

    def json(self) -> dict[str, Any]:
        return {"wall_ms": [round(s.wall, 2) for s in self.samples],
                "cpu_ms": [round(s.cpu, 2) for s in self.samples]}


@dataclass
class Row:
    key: str
    label: str
    cmem: str
    cp: str = "-"
    git: str = "-"
    target: str = ""
    ok: bool | None = None
    cpu: str = ""


def ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def fig(figure: Figure) -> str:
    """Median, and the fastest run in brackets: on a busy machine the minimum shows the cost
    the code itself sets."""
    return f"{ms(figure.median)} [{ms(min(figure.walls))}]"


def mib(count: float) -> str:
    return f"{count / MIB:.1f} MiB"


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the benchmarks


@dataclass
class AppendResult:
    size: int
    end: Figure
    compact: Figure
    cp: Figure
    git: Figure
    initial: dict[str, float]


def bench_append(box: Sandbox, lines: list[bytes], name: str, size_mib: int, plan: Plan
                 ) -> tuple[AppendResult, Project, Session]:
    """Rows 1 and 2: SessionEnd and PreCompact after a fresh append, beside cp and git CLI."""
    project = Project.create(box, name)
    sid = str(uuid.uuid4())
    session = Session(project, sid, Transcript(sid, lines))
    session.append(size_mib * MIB)
    progress(f"{name}: initial backup of {mib(session.path.stat().st_size)}")
    initial = {"cmem": project.hook("PreCompact", session).wall,
               "cp": session.cp("initial").wall, "git": session.git().wall}
    session.check_committed()
    result = AppendResult(session.path.stat().st_size, Figure(), Figure(), Figure(), Figure(),
                          initial)
    for run in range(plan.runs):
        session.append(plan.append)
        result.end.samples.append(project.hook("SessionEnd", session))
        session.check_committed()
        result.cp.samples.append(session.cp(str(run)))
        result.git.samples.append(session.git())
        session.append(plan.append)
        result.compact.samples.append(project.hook("PreCompact", session))
        session.check_committed()
        progress(f"{name}: run {run + 1}/{plan.runs}: SessionEnd {ms(result.end.walls[-1])}, "
                 f"PreCompact {ms(result.compact.walls[-1])}, cp {ms(result.cp.walls[-1])}, "
                 f"git {ms(result.git.walls[-1])}")
    return result, project, session


@dataclass
class StartResult:
    first: float
    warm: Figure
    after_end: Figure
    detached_end: Figure
    cp: Figure
    git: Figure
    startup: dict[str, Figure]


def bench_start(project: Project, session: Session, plan: Plan) -> StartResult:
    """Row 3: SessionStart with nothing to back up, in the project of row 1 (its big session is
    stored). Two cases: the stat cache knows the transcript, and the case after every
    SessionEnd: the transcript changed since the cache saw it, but its content is committed."""
    progress("SessionStart")
    result = StartResult(project.hook("SessionStart", None).wall, Figure(), Figure(), Figure(),
                         Figure(), Figure(), {})
    project.hook("SessionStart", None)
    backup = project.cp_dir / f"{session.sid}-latest.jsonl"
    shutil.copy2(session.path, backup)
    for _ in range(plan.runs):
        result.warm.samples.append(project.hook("SessionStart", None))
        took, done = timed(shell(CP_UPDATE_SCRIPT, str(session.path), str(backup)),
                            cwd=project.root, env=project.box.env())
        _check_ok("cp -u", done)
        result.cp.samples.append(took)
        result.git.samples.append(session.git())
    for _ in range(plan.runs):
        session.append(plan.append)
        result.detached_end.samples.append(project.hook("SessionEnd", session, detached=True))
        result.after_end.samples.append(project.hook("SessionStart", None))
    result.startup = startup_times(project, plan.runs)
    return result


def startup_times(project: Project, runs: int) -> dict[str, Figure]:
    """What every hook pays before it does anything: the interpreter, and its imports."""
    programs = {"python -c pass": "pass", "python -c 'import pygit2'": "import pygit2",
                "python -c 'import cmem_git.entry.hooks'": "import cmem_git.entry.hooks"}
    figures = {}
    for label, code in programs.items():
        figure = Figure()
        for _ in range(runs):
            took, done = timed(shell(f'"$1" -c "{code}"', PYTHON), cwd=project.root,
                               env=project.box.env())
            _check_ok(label, done)
            figure.samples.append(took)
        figures[label] = figure
    return figures


@dataclass
class GrowthResult:
    final: int
    gzip: int
    git_objects: int
    git_du: int
    stored: dict[str, int]
    cp_folder: int
    git_cli_objects: int
    git_cli_du: int
    hook: Figure
    cp: Figure
    git: Figure


def bench_growth(box: Sandbox, lines: list[bytes], plan: Plan) -> GrowthResult:
    """Row 4: repository size after `plan.backups` backups of 1 append each, no gc."""
    project = Project.create(box, "growth")
    sid = str(uuid.uuid4())
    session = Session(project, sid, Transcript(sid, lines))
    hook, cp, git = Figure(), Figure(), Figure()
    for run in range(plan.backups):
        session.append(plan.append)
        hook.samples.append(project.hook("SessionEnd", session))
        cp.samples.append(session.cp(f"{run:03d}", keep=True))
        git.samples.append(session.git())
        if (run + 1) % 10 == 0:
            progress(f"growth: {run + 1}/{plan.backups} backups")
    session.check_committed()
    return GrowthResult(session.path.stat().st_size, gzip_size(session.path),
                        tree_bytes(project.memory / ".git" / "objects"),
                        disk_usage(project.memory / ".git"),
                        loose_objects(project.memory / ".git" / "objects"),
                        tree_bytes(project.cp_dir),
                        tree_bytes(project.git_dir / ".git" / "objects"),
                        disk_usage(project.git_dir / ".git"), hook, cp, git)


def tree_bytes(folder: Path) -> int:
    """Sum of the files' own sizes (what the objects weigh, without file system blocks)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def loose_objects(folder: Path) -> dict[str, int]:
    """What the loose objects hold, to tell the two causes of size apart: bytes stored beyond
    the transcript (chunks rewritten, trees, commits) and the zlib level they were written at
    (libgit2 writes loose objects at level 1 whatever the config says, as git does by default
    through core.looseCompression; gzip -6 uses 6)."""
    raw = level6 = 0
    for path in folder.glob("[0-9a-f][0-9a-f]/*"):
        data = zlib.decompress(path.read_bytes())
        raw += len(data)
        level6 += len(zlib.compress(data, 6))
    return {"raw": raw, "zlib6": level6}


def disk_usage(folder: Path) -> int:
    done = subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[0]) * 1024


# ---------------------------------------------------------------- profiling


# Runs one hook in process, timing its imports and its work apart; optionally profiles the work.
PHASES = r"""
import time
t0 = time.perf_counter()
import os, sys
from cmem_git.entry import hooks
t1 = time.perf_counter()
data = sys.stdin.buffer.read()
if os.environ.get("BENCH_PROFILE"):
    import cProfile
    profiler = cProfile.Profile()
    out = profiler.runcall(hooks.run, sys.argv[1], data, os.environ)
    profiler.dump_stats(os.environ["BENCH_PROFILE"])
else:
    out = hooks.run(sys.argv[1], data, os.environ)
t2 = time.perf_counter()
sys.stdout.write(out.stdout)
sys.stderr.write(out.stderr)
with open(os.environ["BENCH_TIMES"], "w") as handle:
    handle.write("%f %f" % ((t1 - t0) * 1000, (t2 - t1) * 1000))
"""
SUBCOMMANDS = {"SessionStart": "session-start", "SessionEnd": "session-end"}


def profile(project: Project, session: Session, plan: Plan) -> dict[str, Any]:
    """Where a hook's time goes: the interpreter, imports, and the work itself, for SessionEnd
    (+1 MiB on the big transcript) and SessionStart (nothing to back up)."""
    found: dict[str, Any] = {}
    for event in ("SessionEnd", "SessionStart"):
        progress(f"profiling {event}")
        target = session if event == "SessionEnd" else None
        phases = [_phases(project, event, target, plan) for _ in range(plan.runs)]
        found[event] = {
            "wall_ms": statistics.median(p[0] for p in phases),
            "import_ms": statistics.median(p[1] for p in phases),
            "work_ms": statistics.median(p[2] for p in phases),
            "imports": _import_times(project, event, target, plan),
            "functions": _functions(project, event, target, plan)}
    return found


def _phases(project: Project, event: str, target: Session | None, plan: Plan, **extra: str
            ) -> tuple[float, float, float]:
    if target is not None:
        target.append(plan.append)
    times = project.box.root / "phases"
    argv = ["sh", "-c", shlex.join([PYTHON, "-c", PHASES, SUBCOMMANDS[event]])]
    wall = project.hook(event, target, argv, BENCH_TIMES=str(times), **extra).wall
    imports, work = (float(value) for value in times.read_text().split())
    return wall, imports, work


def _import_times(project: Project, event: str, target: Session | None, plan: Plan
                  ) -> dict[str, Any]:
    if target is not None:
        target.append(plan.append)
    argv = [PYTHON, "-X", "importtime", "-m", "cmem_git", "hook", SUBCOMMANDS[event]]
    _, done = timed(argv, data=project.payload(event, target), cwd=project.root,
                    env=project.box.env(CLAUDE_PROJECT_DIR=str(project.root)))
    rows = []
    for line in done.stderr.decode(errors="replace").splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            rows.append((match[4], len(match[3]) // 2, int(match[2])))
    notable = sorted(((name, cum) for name, depth, cum in rows if depth <= 2 and cum >= 3000),
                     key=lambda item: -item[1])
    return {"total_ms": sum(cum for _, depth, cum in rows if depth == 0) / 1000,
            "notable_ms": [(name, cum / 1000) for name, cum in notable[:14]]}


def _functions(project: Project, event: str, target: Session | None, plan: Plan,
               count: int = 14) -> dict[str, list[tuple[str, float, float]]]:
    """cProfile of the hook's work only (imports excluded): top by own and by cumulative time."""
    import pstats

    output = project.box.root / f"{event}.prof"
    _phases(project, event, target, plan, BENCH_PROFILE=str(output))
    rows = [(f"{_short(file)}:{line}({name}) x{calls}", own * 1000, cumulative * 1000)
            for (file, line, name), (_, calls, own, cumulative, _)
            in pstats.Stats(str(output)).stats.items()]  # type: ignore[attr-defined]
    return {"own": sorted(rows, key=lambda row: -row[1])[:count],
            "cumulative": sorted((r for r in rows if "cmem_git/" in r[0]),
                                 key=lambda row: -row[2])[:count]}


def _short(file: str) -> str:
    for marker in ("site-packages/", "cmem_git/", "lib/python"):
        if marker in file:
            return file[file.index(marker):]
    return file


# ---------------------------------------------------------------- report


def rows(big: AppendResult, small: AppendResult, start: StartResult, growth: GrowthResult,
         plan: Plan) -> list[Row]:
    big_mib, small_mib = mib(big.size), mib(small.size)
    end_ratio = big.end.median / small.end.median
    compact_ratio = big.compact.median / small.compact.median
    objects_ratio = growth.git_objects / growth.gzip
    table = [
        Row("1a", f"SessionEnd, +1 MiB on {big_mib}", fig(big.end), fig(big.cp),
            fig(big.git), "<= 250 ms", big.end.median <= 250, ms(big.end.cpu)),
        Row("1b", f"PreCompact, +1 MiB on {big_mib}", fig(big.compact), fig(big.cp),
            fig(big.git), "<= 250 ms", big.compact.median <= 250, ms(big.compact.cpu)),
        Row("2a", f"SessionEnd, +1 MiB on {small_mib}", fig(small.end),
            fig(small.cp), fig(small.git), cpu=ms(small.end.cpu)),
        Row("2b", f"PreCompact, +1 MiB on {small_mib}", fig(small.compact),
            fig(small.cp), fig(small.git), cpu=ms(small.compact.cpu)),
        Row("2r", "ratio 1a/2a (SessionEnd)", f"{end_ratio:.2f}x",
            f"{big.cp.median / small.cp.median:.2f}x", f"{big.git.median / small.git.median:.2f}x",
            "<= 1.5x", end_ratio <= 1.5),
        Row("2r'", "ratio 1b/2b (PreCompact)", f"{compact_ratio:.2f}x", target="<= 1.5x",
            ok=compact_ratio <= 1.5),
        Row("3a", "SessionStart, nothing to back up", fig(start.warm),
            fig(start.cp) + " (cp -u)", fig(start.git) + " (no-op)", "<= 150 ms",
            start.warm.median <= 150, ms(start.warm.cpu)),
        Row("3b", "SessionStart after a SessionEnd (as installed: detached)",
            fig(start.after_end), target="<= 150 ms", ok=start.after_end.median <= 150,
            cpu=ms(start.after_end.cpu)),
        Row("3d", f"  that SessionEnd, +{mib(plan.append)}, as Claude Code waits for it",
            fig(start.detached_end), cpu=ms(start.detached_end.cpu)),
        Row("3c", "SessionStart, first run (cold stat cache)", ms(start.first)),
    ]
    table += [Row("3x", f"  context: {label}", fig(figure), cpu=ms(figure.cpu))
              for label, figure in start.startup.items()]
    table += [
        Row("4", f"repo size after {plan.backups} backups to {mib(growth.final)}, objects/gzip",
            f"{mib(growth.git_objects)} = {objects_ratio:.2f}x",
            f"{mib(growth.cp_folder)} = {growth.cp_folder / growth.gzip:.2f}x",
            f"{mib(growth.git_cli_objects)} = {growth.git_cli_objects / growth.gzip:.2f}x",
            "<= 1.3x", objects_ratio <= 1.3),
        Row("4z", "  same objects recompressed at zlib -6",
            f"{mib(growth.stored['zlib6'])} = {growth.stored['zlib6'] / growth.gzip:.2f}x"),
        Row("4raw", "  uncompressed bytes in objects / final transcript",
            f"{growth.stored['raw'] / growth.final:.2f}x"),
        Row("4du", "  same, `du` of .git (file system blocks)",
            f"{mib(growth.git_du)} = {growth.git_du / growth.gzip:.2f}x",
            f"(one file, latest only: {mib(growth.final)})",
            f"{mib(growth.git_cli_du)} = {growth.git_cli_du / growth.gzip:.2f}x"),
        Row("4t", "  hook time during the growth, median", fig(growth.hook),
            fig(growth.cp), fig(growth.git), cpu=ms(growth.hook.cpu)),
        Row("i", f"initial backup of a whole {mib(big.size)} transcript (info)",
            ms(big.initial["cmem"]), ms(big.initial["cp"]), ms(big.initial["git"])),
    ]
    return table


def render(table: list[Row]) -> str:
    header = ("row", "what", "cmem", "cmem CPU", "cp baseline", "git CLI baseline", "target",
              "result")
    cells = [header] + [(r.key, r.label, r.cmem, r.cpu, r.cp, r.git, r.target,
                         "" if r.ok is None else "PASS" if r.ok else "FAIL") for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def render_profile(found: dict[str, Any]) -> str:
    lines = []
    for event, what in (("SessionEnd", "+1 MiB on the big transcript"),
                        ("SessionStart", "nothing to back up")):
        item = found[event]
        rest = item["wall_ms"] - item["import_ms"] - item["work_ms"]
        lines += [f"Where {event}'s time goes ({what}; medians of in-process timings):",
                  f"  whole process {ms(item['wall_ms'])} = cmem_git.entry.hooks imports "
                  f"{ms(item['import_ms'])} + work (hooks.run) {ms(item['work_ms'])} + "
                  f"interpreter start/exit and sh {ms(rest)}",
                  "  imports by python -X importtime (cumulative, depth <= 2; all top-level: "
                  f"{item['imports']['total_ms']:.0f} ms):"]
        lines += [f"    {cum:7.1f} ms  {name}" for name, cum in item["imports"]["notable_ms"]]
        for key, title in (("own", "own time"), ("cumulative", "cumulative time, cmem_git")):
            lines.append(f"  work under cProfile, top by {title} (own ms / cumulative ms):")
            lines += [f"    {own:7.1f} {cum:8.1f}  {name}"
                      for name, own, cum in item["functions"][key]]
        lines.append("")
    return "\n".join(lines).rstrip()


def machine() -> dict[str, Any]:
    import importlib.metadata

    import pygit2

    git = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout.strip()
    return {"python": platform.python_version(), "executable": PYTHON,
            "pygit2": importlib.metadata.version("pygit2"), "libgit2": pygit2.LIBGIT2_VERSION,
            "git": git, "cpus": os.cpu_count(), "platform": platform.platform()}


def content_ratio(growth: GrowthResult) -> dict[str, Any]:
    real = CORPUS / "spotter" / "subagent.jsonl"
    raw = real.read_bytes()
    return {"synthetic_final_bytes": growth.final, "synthetic_gzip6_bytes": growth.gzip,
            "synthetic_ratio": growth.final / growth.gzip,
            "real_sample": real.name, "real_ratio": len(raw) / len(gzip.compress(raw, 6))}


# ---------------------------------------------------------------- main


T = TypeVar("T")


def sandboxed(directory: str | None, keep: bool,
              work: Callable[[Sandbox], T]) -> tuple[Sandbox, T] | None:
    """`work` run in a new sandbox; None, with the sandbox kept, when the benchmark fails. The
    real ~/.claude must come out untouched, or the figures are void."""
    real_claude = Path(os.path.expanduser("~")) / ".claude"
    before = fingerprint(real_claude)
    box = Sandbox.create(directory)
    try:
        result = work(box)
    except BenchError as error:
        print(f"bench failed: {error}\n(sandbox kept at {box.root})", file=sys.stderr)
        return None
    if not keep:
        shutil.rmtree(box.root, ignore_errors=True)
    if fingerprint(real_claude) != before:
        raise SystemExit("the benchmark touched the real ~/.claude: its numbers are void")
    return box, result


def fingerprint(folder: Path) -> list[tuple[str, int]]:
    if not folder.is_dir():
        return []
    return sorted((str(p), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())[:2000]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, few runs (smoke check)")
    parser.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    parser.add_argument("--profile", action="store_true",
                        help="also show where SessionEnd's and SessionStart's time goes")
    parser.add_argument("--runs", type=int, help="timed runs per row (default 9, quick 3)")
    parser.add_argument("--dir", help="where to create the temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.runs:
        plan = Plan(plan.big_mib, plan.small_mib, plan.append, args.runs, plan.backups)
    load = os.getloadavg()
    started = time.perf_counter()
    done = sandboxed(args.dir, args.keep, lambda box: run_all(box, plan, args.profile))
    if done is None:
        return 1
    box, report = done
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["load"] = {"before": load, "after": os.getloadavg()}
    report["quick"] = args.quick
    print(json.dumps(report, indent=1, default=str) if args.json else text(report, box, args.keep))
    return 0 if all(row["ok"] is not False for row in report["rows"]) else 2


def run_all(box: Sandbox, plan: Plan, want_profile: bool) -> dict[str, Any]:
    lines = corpus_lines()
    big, big_project, big_session = bench_append(box, lines, "big", plan.big_mib, plan)
    small, _, _ = bench_append(box, lines, "small", plan.small_mib, plan)
    start = bench_start(big_project, big_session, plan)
    growth = bench_growth(box, lines, plan)
    found = profile(big_project, big_session, plan) if want_profile else None
    table = rows(big, small, start, growth, plan)
    return {"machine": machine(), "plan": asdict(plan), "content": content_ratio(growth),
            "rows": [asdict(row) for row in table], "profile": found,
            "samples": {key: figure.json() for key, figure in {
                "1a": big.end, "1b": big.compact, "2a": small.end, "2b": small.compact,
                "3a": start.warm, "3b": start.after_end, "3d": start.detached_end, "1_cp": big.cp, "1_git": big.git,
                "2_cp": small.cp, "2_git": small.git, "3a_cp": start.cp, "3a_git": start.git,
                "4_cmem": growth.hook, "4_cp": growth.cp, "4_git": growth.git,
                **{f"3x {label}": figure for label, figure in start.startup.items()}}.items()}}


def text(report: dict[str, Any], box: Sandbox, kept: bool) -> str:
    info, content, plan = report["machine"], report["content"], report["plan"]
    table = [Row(**row) for row in report["rows"]]
    lines = [f"cmem hook benchmarks{' (QUICK: not the SPEC sizes)' if report['quick'] else ''}: "
             f"Python {info['python']}, pygit2 {info['pygit2']} (libgit2 {info['libgit2']}), "
             f"{info['git']}, {info['cpus']} CPUs, {info['platform']}",
             f"medians of {plan['runs']} runs; each timed run follows a fresh append of "
             f"{mib(plan['append'])} of records; every timing is a whole process via sh -c",
             "cells are 'median [fastest run]' of wall time; cmem CPU is the median user+sys "
             "time; row 1's transcript grows by 2 MiB per run; cp baselines write one new copy "
             "per backup, as claude-memory kept them",
             f"content: corpus records with fresh ids; gzip -6 ratio "
             f"{content['synthetic_ratio']:.1f}:1 (real {content['real_sample']}: "
             f"{content['real_ratio']:.1f}:1)",
             _load(report["load"], info["cpus"]), "", render(table), ""]
    if report["profile"]:
        lines += [render_profile(report["profile"]), ""]
    kept_note = f"; sandbox kept at {box.root}" if kept else ""
    return "\n".join(lines + [f"done in {report['seconds']} s{kept_note}"])


def _load(load: dict[str, Any], cpus: int) -> str:
    line = ("load average (1, 5, 15 min) before " + " ".join(f"{v:.1f}" for v in load["before"])
            + ", after " + " ".join(f"{v:.1f}" for v in load["after"]))
    busy = max(load["before"][0], load["after"][0]) > cpus
    return line + (" -- BUSY MACHINE: trust the [fastest] figures and CPU times more than the "
                   "medians" if busy else "")


if __name__ == "__main__":
    sys.exit(main())
