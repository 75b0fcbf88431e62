"""What every command group shares: the `cmem` group itself, the project and its store, the
options several commands take, and output through a pager.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Commands import what they need when they run, and the group imports a command's module only
# when that command runs (lazy.py): every command pays the start-up of all the others otherwise
# (`cmem log` and `cmem search` must start fast; pygit2 alone is ~50-80 ms).
from .. import __version__, paths
from ..errors import NotInitialized
from ..read.output import is_terminal
from .lazy import LazyCommands

if TYPE_CHECKING:
    from ..capture.importer import Progress
    from ..git.transport import Limits
    from ..repo.config import Config
    from ..repo.store import Store
    from ..secrets.redact import Redactor
    from ..setup.project import Report

# Which module of this package defines each command (tests/test_fast_search.py checks the table
# against what the modules register).
COMMAND_MODULES = {
    "browse": ("log", "show", "cat", "diff", "delta", "status", "restore"),
    "devices": ("remote", "pull", "push", "sync"),
    "documents": ("doc", "resume", "coalesce", "discard", "fresh-start"),
    "find": ("import", "export", "search", "scan"),
    "install": ("init", "uninstall", "hook", "doctor", "help"),
    "purge": ("purge",),
    "server": ("mcp",),
}


def _project_here() -> Path:
    found = paths.find_project(Path.cwd())
    if found is None:
        raise NotInitialized(f"no .claude/memory repository in {Path.cwd()} or above")
    return found


def _print_report(report: Report, nothing: str = "nothing to do: already set up") -> None:
    if report.root:
        click.echo(report.root)
    for action in report.actions:
        click.echo(action)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    if not report.actions:
        click.echo(nothing)


@click.group(commands=LazyCommands(__package__, COMMAND_MODULES),
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cmem")
def cli() -> None:
    """Version Claude Code session memory in git.

    cmem keeps every transcript backup, active-context change and session document of a
    project as commits in .claude/memory, driven by Claude Code hooks.
    """


def _store(project: Path | None = None) -> Store:
    """The project's memory repository, with the config's redaction on every write path."""
    from ..capture import checkpoint
    from ..repo.config import load_config
    from ..repo.store import Store
    project = project or _project_here()
    store = Store.open(paths.memory_dir(project))
    store.filter = checkpoint.redaction(load_config(paths.config_path(project)))
    _OPENED.append(store)
    return store


_OPENED: list[Store] = []  # their notices (secrets replaced) are printed when the command ends


def _print_notices() -> None:
    for store in _OPENED:
        for notice in store.notices:
            click.echo(f"note: {notice}", err=True)
        store.notices.clear()


def _reader() -> Store:
    """The memory repository for a command that only reads: no config, no redaction rules to
    load (`cmem log` must start fast)."""
    from ..repo.store import Store
    return Store.open(paths.memory_dir(_project_here()))


def _emit(text: str) -> None:
    """Long output goes through a pager on a terminal, straight out on a pipe."""
    if is_terminal() and text.count("\n") > _terminal_lines():
        click.echo_via_pager(text)
    else:
        click.echo(text, nl=False)


def _terminal_lines() -> int:
    return max(os.get_terminal_size().lines - 2, 10) if is_terminal() else 10 ** 9


def _time_option(value: str | None) -> float | None:
    if not value:
        return None
    from ..read import times
    return times.parse_time(value)


def _max_chars(default: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """One meaning of --max-chars for every command that bounds its output."""
    return click.option("--max-chars", type=click.IntRange(min=0), default=default,
                        show_default=True, help="Size budget in characters for the whole "
                        "output; the newest is kept when it cuts. 0: no limit.")


_SESSION_OPTION = click.option(
    "--session", help="The Claude Code session to back up in the same commit "
    "(default: $CLAUDE_CODE_SESSION_ID).")


_REMOTE_ARGUMENT = click.argument("name", required=False)


def _device() -> str:
    from ..repo.config import load_config
    return load_config(paths.config_path(_project_here())).device


_ALLOW_SECRETS = click.option(
    "--allow-secrets", is_flag=True,
    help="Push even when `cmem scan` finds secrets in the commits being pushed.")


def _secrets(allow: bool) -> Redactor | None:
    from ..capture import checkpoint
    return None if allow else checkpoint.secret_rules(_config())


def _limits() -> Limits:
    from ..git.transport import Limits
    from ..repo.config import network_limits
    return Limits(*network_limits(_config()))


def _config() -> Config:
    from ..repo.config import load_config
    return load_config(paths.config_path(_project_here()))


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal; nothing in a pipe or a log."""
    if not is_terminal(sys.stderr):
        yield None
        return
    bars: list[Any] = []

    def update(done: int, total: int, item: str) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label=label, file=sys.stderr,
                                          item_show_func=lambda s: s[:8] if s else None))
        bars[0].update(done - bars[0].pos, item)

    try:
        yield update
    finally:
        if bars:
            bars[0].render_finish()
