"""`python -m cmem_git`: what the installed hooks run.

The hook path skips click and the rest of the CLI: Claude Code starts a fresh process for every
hook, and SessionEnd hooks share a 1.5 s budget.
"""

from __future__ import annotations

import sys


def main() -> int:
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "hook":
        from .hooks import main as hook

        return hook(args[1])
    from .cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
