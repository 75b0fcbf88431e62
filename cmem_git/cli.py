"""The command line: a thin layer that turns options into calls and results into text.

Only this module imports click. Errors cross one boundary, `main`: a CmemError becomes its
message and hint with exit status 1, anything unexpected a one-line summary (traceback with
CMEM_DEBUG=1) and exit status 3.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

import click

from . import __version__, hooks, paths, project as project_mod
from .errors import CmemError, NotInitialized


def _project_here() -> Path:
    found = paths.find_project(Path.cwd())
    if found is None:
        raise NotInitialized(f"no .claude/memory repository in {Path.cwd()} or above")
    return found


def _print_report(report: project_mod.Report) -> None:
    for action in report.actions:
        click.echo(action)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.actions:
        click.echo("nothing to do: already set up")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cmem")
def cli() -> None:
    """Version Claude Code session memory in git.

    cmem keeps every transcript backup, active-context change and session document of a
    project as commits in .claude/memory, driven by Claude Code hooks.
    """


@cli.command()
@click.option("--device", help="This machine's name in commits (default: the host name).")
def init(device: str | None) -> None:
    """Set cmem up in the current project.

    Creates .claude/memory (or adopts an existing claude-memory folder there, committing
    everything in it), writes active-context.md and project-memory.md from templates where
    missing, writes the per-device config .claude/memory/cmem.yaml, hides the memory repository
    from the project's own git, and merges cmem's hooks into .claude/settings.json.
    Running it again changes nothing.
    """
    project = paths.find_project(Path.cwd()) or Path.cwd()
    _print_report(project_mod.init(project.resolve(), sys.executable, device))


@cli.command()
def uninstall() -> None:
    """Remove cmem's hooks from .claude/settings.json (nothing else; the memory stays)."""
    _print_report(project_mod.uninstall(_project_here()))


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("event", type=click.Choice(sorted(hooks.EVENTS)))
def hook(event: str) -> None:
    """Run a Claude Code hook: reads the event's JSON on stdin, always exits 0."""
    hooks.main(event)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="cmem",
                 standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except CmemError as error:
        click.echo(f"cmem: error: {error}", err=True)
        if error.hint:
            click.echo(f"hint: {error.hint}", err=True)
        return 1
    except Exception as error:  # noqa: BLE001 - the boundary for the unexpected
        if os.environ.get("CMEM_DEBUG"):
            traceback.print_exc()
        click.echo(f"cmem: internal error: {type(error).__name__}: {error}", err=True)
        click.echo("hint: run again with CMEM_DEBUG=1 for the traceback", err=True)
        return 3
    return 0
