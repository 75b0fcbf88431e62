"""`python -m cmem_git`: what the installed hooks and the registered MCP server run.

Both skip click and the rest of the CLI: Claude Code starts a fresh process for every hook, and
waits for the hooks and the MCP server before a session's first request.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from . import paths


def main() -> int:
    paths.private()
    args = sys.argv[1:]
    if len(args) in (2, 3) and args[0] == "hook" and args[2:] in ([], ["--detached"]):
        from .entry.detach import main as hook

        status = hook(args[1], detached=len(args) == 3)
        # Everything is written and closed by now; skipping interpreter teardown (module and
        # libgit2 clean-up) saves 10-15 ms of a hook's budget.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    if len(args) == 3 and args[:2] == ["mcp", "--project"]:  # as `cmem init` registers it
        project = paths.find_project(Path(args[2]))
        if project is not None:  # else the command line says what is wrong
            from .entry.mcp_server import serve

            serve(project)
            return 0
    from .cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main())
