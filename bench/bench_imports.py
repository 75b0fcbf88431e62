#!/usr/bin/env python3
"""What a hook imports: modules loaded and import time for each hook event, beside `python -c
pass` measured in the same run (issue 17: the hook path imports only what its event needs).

cmem's own modules are counted with their lines of code (a package's __init__ counts as a
module). Each hook runs as Claude Code runs it, `python -X importtime -m cmem_git hook EVENT` with the
event's JSON on stdin, in a throwaway project with its own HOME, with a new record appended to
the transcript before every run so there is always something to commit (and Stop's throttle off,
so Stop does its whole work). Import time is the sum of `-X importtime`'s self times: the cost of
loading code, not of running it. `--source DIR` measures another cmem source tree (e.g. an older
commit from `git archive`), put first on PYTHONPATH.

Run:  python bench/bench_imports.py [--runs N] [--source DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = Path(os.environ.get("CMEM_CORPUS", HERE.parent / "tests" / "data" / "corpus"))
EVENTS = {"session-start": ("SessionStart", {"source": "startup"}),
          "pre-compact": ("PreCompact", {"trigger": "manual"}),
          "stop": ("Stop", {}),
          "subagent-stop": ("SubagentStop", {"agent_id": "a1"}),
          "session-end": ("SessionEnd", {"reason": "other"})}
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)$")


def project(home: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """A git project with cmem set up; (its folder, a session transcript in Claude's folder)."""
    root = home / "project"
    root.mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run([sys.executable, "-m", "cmem_git", "init", "--device", "bench"], cwd=root,
                   check=True, env=env, capture_output=True)
    config = root / ".claude" / "memory" / "cmem.yaml"
    config.write_text(re.sub(r"stop_throttle_minutes: [\d.]+", "stop_throttle_minutes: 0",
                             config.read_text()))
    sample = sorted(CORPUS.rglob("*.jsonl"))[0]
    folder = home / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(root))
    folder.mkdir(parents=True)
    transcript = folder / f"{uuid.uuid4()}.jsonl"
    shutil.copyfile(sample, transcript)
    return root, transcript


def imports(stderr: str, source: Path) -> tuple[int, int, int, float]:
    """(modules, cmem_git modules, lines of cmem_git code in them, import ms) from -X
    importtime's report; `source` is the folder that holds the cmem_git package."""
    names, micros = [], 0
    for line in stderr.splitlines():
        found = _LINE.match(line)
        if found:
            names.append(found[4])
            micros += int(found[1])
    ours = [n for n in names if n.split(".")[0] == "cmem_git"]
    return len(names), len(ours), sum(_lines(source, n) for n in ours), micros / 1000


def _lines(source: Path, module: str) -> int:
    path = source.joinpath(*module.split("."))
    file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return len(file.read_text().splitlines()) if file.is_file() else 0


def hook(event: str, root: Path, transcript: Path, env: dict[str, str], source: Path
         ) -> tuple[int, int, int, float]:
    claude, detail = EVENTS[event]
    with transcript.open("a") as file:  # something new to back up every time
        file.write(json.dumps({"type": "user", "uuid": str(uuid.uuid4()),
                               "message": {"role": "user", "content": "bench"}}) + "\n")
    payload = {"session_id": transcript.stem, "transcript_path": str(transcript),
               "cwd": str(root), "hook_event_name": claude, **detail}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "cmem_git", "hook", event],
                          input=json.dumps(payload).encode(), capture_output=True, cwd=root,
                          env={**env, "CLAUDE_PROJECT_DIR": str(root),
                               "CMEM_HOOK_FOREGROUND": "1"},  # the imports of the work
                          check=True)
    if b"failed" in done.stdout + done.stderr.replace(b"import time:", b""):
        raise SystemExit(f"{event} failed: {done.stdout!r} {done.stderr[-400:]!r}")
    return imports(done.stderr.decode(), source)


def baseline(env: dict[str, str], source: Path) -> tuple[int, int, int, float]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], env=env,
                          capture_output=True, text=True, check=True)
    return imports(done.stderr, source)


def median(samples: list[tuple[int, int, int, float]]) -> dict[str, float]:
    return {"modules": statistics.median(s[0] for s in samples),
            "cmem_modules": statistics.median(s[1] for s in samples),
            "cmem_lines": statistics.median(s[2] for s in samples),
            "import_ms": round(statistics.median(s[3] for s in samples), 1)}


def measure(runs: int, source: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cmem-bench-imports-") as folder:
        home = Path(folder)
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "bench",
               "GIT_AUTHOR_EMAIL": "bench@example.com", "GIT_COMMITTER_NAME": "bench",
               "GIT_COMMITTER_EMAIL": "bench@example.com"}
        if source is not None:
            env["PYTHONPATH"] = str(source.resolve())
        code = source or Path(__import__("cmem_git").__file__).parents[1]
        root, transcript = project(home, env)
        load = os.getloadavg()
        found = {"python -c pass": median([baseline(env, code) for _ in range(runs)])}
        for event in EVENTS:
            found[event] = median([hook(event, root, transcript, env, code)
                                   for _ in range(runs)])
        return {"rows": found, "runs": runs, "source": str(source or "installed"),
                "load": {"before": load, "after": os.getloadavg()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--source", type=Path, help="a cmem source tree to measure instead")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = measure(args.runs, args.source)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"source: {report['source']}; median of {report['runs']} runs; load average "
          f"{' '.join(f'{x:.2f}' for x in report['load']['before'])} before, "
          f"{' '.join(f'{x:.2f}' for x in report['load']['after'])} after")
    print(f"{'':16} {'modules':>8} {'cmem_git':>9} {'its lines':>10} {'import ms':>10}")
    for name, row in report["rows"].items():
        print(f"{name:16} {row['modules']:>8.0f} {row['cmem_modules']:>9.0f} "
              f"{row['cmem_lines']:>10.0f} {row['import_ms']:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
