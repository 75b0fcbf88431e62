#!/usr/bin/env python3
"""Redaction throughput (MiB/s): a MiB of real transcript and a MiB of each adversarial input
(tests/adversarial.py: many key headers without a footer, dense keyword hits, long token runs,
nested escapes), as a JSON string in a record and as plain text, beside baselines measured in
the same run on the same bytes:

  * `json.loads` of every line of the benign MiB (the least a redactor that parses records
    would pay before running a single rule);
  * `grep -c -E` of a few keywords over the same bytes (a scan that only finds lines).

Every figure is the fastest of --runs runs (the machine is shared: the header prints the load
average). In process; nothing is written outside a temporary file.

Run:  python bench/bench_redact.py [--runs N] [--json] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from adversarial import MIB, SHAPES, UNITS, benign  # noqa: E402 - the tests' inputs

from cmem_git.secrets.redact import Redactor  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "corpus"


def best(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def rate(seconds: float, size: int) -> float:
    return size / MIB / seconds


def grep_time(data: bytes, runs: int) -> float:
    with tempfile.NamedTemporaryFile() as handle:
        handle.write(data)
        handle.flush()
        command = ["grep", "-c", "-E", "password|token|secret|BEGIN", handle.name]
        return best(lambda: subprocess.run(command, capture_output=True), runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--only", nargs="*", default=[])
    args = parser.parse_args()
    corpus = b"".join(p.read_bytes().rstrip(b"\n") + b"\n" for p in sorted(CORPUS.rglob("*.jsonl")))
    data = benign(corpus)
    redactor = Redactor()
    rows: list[dict[str, object]] = []
    base = best(lambda: redactor.redact(data), args.runs)
    parse = best(lambda: [json.loads(line) for line in data.splitlines() if line], args.runs)
    rows += [{"input": "corpus MiB", "shape": "jsonl", "cmem_mib_s": rate(base, len(data)),
              "json_loads_mib_s": rate(parse, len(data)),
              "grep_mib_s": rate(grep_time(data, args.runs), len(data)), "x_benign": 1.0}]
    for name, unit in UNITS.items():
        if args.only and name not in args.only:
            continue
        for shape, make in SHAPES.items():
            sample = make(unit, MIB)
            spent = best(lambda: redactor.redact(sample), args.runs)
            rows.append({"input": name, "shape": shape, "cmem_mib_s": rate(spent, len(sample)),
                         "grep_mib_s": rate(grep_time(sample, args.runs), len(sample)),
                         "x_benign": spent / base * len(data) / len(sample)})
    if args.json:
        print(json.dumps({"load": os.getloadavg(), "rows": rows}, indent=2))
        return 0
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; fastest of "
          f"{args.runs} runs; MiB/s (higher is better); x_benign = time per MiB / corpus MiB's")
    print(f"{'input':24s} {'shape':6s} {'cmem':>9s} {'grep -E':>9s} {'json.loads':>10s} "
          f"{'x_benign':>9s}")
    for row in rows:
        loads = f"{row['json_loads_mib_s']:10.1f}" if "json_loads_mib_s" in row else " " * 10
        print(f"{row['input']:24s} {row['shape']:6s} {row['cmem_mib_s']:9.2f} "
              f"{row['grep_mib_s']:9.1f} {loads} {row['x_benign']:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
