"""`python -m cmem_git`: what the installed hooks run.

The hook path skips click and the rest of the CLI: Claude Code starts a fresh process for every
hook, and SessionEnd hooks share a 1.5 s budget.
"""

from __future__ import annotations

import os
import sys

from .paths import private


def main() -> int:
    private()
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "hook":
        from .entry.hooks import main as hook

        status = hook(args[1])
        # Everything is written and closed by now; skipping interpreter teardown (module and
        # libgit2 clean-up) saves 10-15 ms of a hook's budget.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    from .cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
