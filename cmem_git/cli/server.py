"""`cmem mcp`, in a module of its own: Claude Code starts the server with every session and
waits for it, so its start-up loads click and the protocol, not the other commands' imports."""

from __future__ import annotations

from pathlib import Path

import click

from .. import paths
from ..errors import NotInitialized
from .options import cli


@cli.command(name="mcp")
@click.option("--project", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The project whose memory to serve (default: the one here or above).")
def mcp_command(folder: Path | None) -> None:
    """Serve the memory to Claude as an MCP server on stdin/stdout (tools: search, show, log,
    resume). `cmem init` registers it with Claude Code for this project."""
    from ..entry import mcp_server
    project = paths.find_project(folder or Path.cwd())
    if project is None:
        raise NotInitialized(f"no .claude/memory repository in {folder or Path.cwd()} or above")
    mcp_server.serve(project)
