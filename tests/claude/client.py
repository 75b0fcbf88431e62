"""Finding the `claude` binary the tier runs, installing the pinned version with npm if needed.

Order: `$CMEM_CLAUDE` (a path; `check-latest` sets it), the pinned version already in the cache,
`claude` on PATH (`.ci/run` puts the pinned version there), then `npm install` of the pinned
version into the cache. Without `claude` and without npm the tier is skipped, saying so.

The cache is `$CMEM_CLAUDE_CACHE`, else `.cache/claude-code` in this clone (git-ignored), so a
test never writes to the user's home; npm's own download cache goes there too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

PACKAGE = "@anthropic-ai/claude-code"
HERE = Path(__file__).resolve().parent
PINNED = (HERE / "VERSION").read_text().strip()
# Read at import: the autouse `hermetic` fixture removes CMEM_* variables inside each test.
ENV_BINARY = os.environ.get("CMEM_CLAUDE")
CACHE = Path(os.environ.get("CMEM_CLAUDE_CACHE") or HERE.parents[1] / ".cache" / "claude-code")


class Unavailable(Exception):
    """Neither a `claude` binary nor npm to install one: the reason the tier is skipped."""


def installed(version: str) -> Path:
    """Where `npm install --prefix` puts the binary of a version in the cache."""
    return CACHE / version / "node_modules" / ".bin" / "claude"


def install(version: str) -> Path:
    """`npm install` one version into the cache, through the script .ci/run uses."""
    if shutil.which("npm") is None:
        raise Unavailable(f"npm is not on PATH to install {PACKAGE}@{version}")
    done = subprocess.run([str(HERE / "install"), version], capture_output=True, text=True,
                          env={**os.environ, "CMEM_CLAUDE_CACHE": str(CACHE)}, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"installing {PACKAGE}@{version} failed:\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip()) / "claude"


def find() -> Path:
    """The `claude` to test, installing the pinned version when there is none."""
    if ENV_BINARY:
        return Path(ENV_BINARY)
    if runs(installed(PINNED)):
        return installed(PINNED)
    on_path = shutil.which("claude")
    if on_path:
        return Path(on_path)
    if shutil.which("npm") is None:
        raise Unavailable(f"neither `claude` nor npm is on PATH: install Claude Code "
                          f"(npm install -g {PACKAGE}@{PINNED}) or npm to run the claude tier")
    return install(PINNED)


def runs(binary: Path) -> bool:
    if not binary.exists():
        return False
    done = subprocess.run([str(binary), "--version"], capture_output=True, timeout=60)
    return done.returncode == 0


def version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True,
                          timeout=60)
    return done.stdout.strip()
