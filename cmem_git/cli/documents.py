"""Session documents and the memory files: doc save, resume, coalesce, discard, fresh-start."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import paths
from ..repo.history import plural
from .options import _SESSION_OPTION, _max_chars, _project_here, _store, cli

if TYPE_CHECKING:
    from ..capture.checkpoint import Request


def _request(project: Path, event: str, session: str | None) -> Request:
    """What a command commits besides its own change: the memory files, and the transcript of
    the running Claude Code session when it is known (CLAUDE_CODE_SESSION_ID or --session)."""
    from ..capture import checkpoint
    from ..capture.backup import check_session_id
    from ..repo.config import load_config
    config = load_config(paths.config_path(project))
    session = session or os.environ.get("CLAUDE_CODE_SESSION_ID") or None
    transcript = None
    if session:
        check_session_id(session)
        candidate = paths.transcripts_dir(project) / f"{session}.jsonl"
        transcript = candidate if candidate.is_file() else None
    return checkpoint.Request(event, session, transcript, config.device)


def _read_input(file: str | None) -> bytes:
    if file in (None, "-"):
        if sys.stdin.isatty():
            raise click.UsageError("give a FILE, or pipe the text on stdin ('-')")
        data = sys.stdin.buffer.read()
    else:
        data = Path(file).read_bytes()
    if not data.strip():
        raise click.UsageError("the text is empty: nothing to save")
    return data


@cli.group()
def doc() -> None:
    """Session documents: what a session did, for the next one."""


@doc.command(name="save")
@click.argument("file", required=False)
@click.option("--title", help="Title (default: the front matter's, or the first heading).")
@_SESSION_OPTION
def doc_save(file: str | None, title: str | None, session: str | None) -> None:
    """Commit FILE (or stdin) as a new session document.

    It is written to sessions/session-<UTC time>-<slug>.md, with date, branch and
    previous_session filled in by cmem, and committed together with active-context.md's
    `> Last Session Doc:` and `> Last Updated:` lines: one commit, so the document and its
    pointer exist together or not at all.
    """
    from ..read import docs
    project = _project_here()
    text = _read_input(file)
    store = _store(project)
    saved = docs.save(store, project, text, title, _request(project, "document", session))
    click.echo(f"saved {saved.path} ({str(saved.commit)[:8]})")


@cli.command()
@_max_chars(9000)
def resume(max_chars: int) -> None:
    """The last session document, then what happened since it: what a new session needs.

    The conversation comes first: the user's requests and Claude's answers, each tool call
    on one line, each subagent summarised, compactions marked; the newest is kept when the
    budget cuts.
    """
    from ..read import docs
    click.echo(docs.resume(_store(), max_chars), nl=False)


@cli.command()
@click.argument("file", required=False)
@_SESSION_OPTION
def coalesce(file: str | None, session: str | None) -> None:
    """Append FILE (or stdin) to the last session document as a "Session continuation"
    section, in one commit; afterwards nothing is pending."""
    from ..read import docs
    project = _project_here()
    text = _read_input(file)
    store = _store(project)
    updated = docs.coalesce(store, text, _request(project, "document", session))
    click.echo(f"updated {updated.path} ({str(updated.commit)[:8]})")


@cli.command()
@_SESSION_OPTION
def discard(session: str | None) -> None:
    """Mark the backups since the last document as dealt with (history keeps them)."""
    from ..read import docs
    project = _project_here()
    store = _store(project)
    count = len(docs.pending(store))
    if not count:
        click.echo("nothing to discard: no backups since the last session document")
        return
    commit = docs.discard(store, _request(project, "discard", session))
    click.echo(f"marked {plural(count, 'pending backup')} as dealt with ({str(commit)[:8]})")


@cli.command(name="fresh-start")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def fresh_start(yes: bool) -> None:
    """Reset active-context.md and project-memory.md to the templates, as a new commit.

    Uncommitted edits are committed first; history keeps every earlier version.
    """
    from ..read import docs
    project = _project_here()
    if not yes and sys.stdin.isatty():
        click.confirm("Reset the memory files to the templates?", abort=True)
    store = _store(project)
    commit = docs.fresh_start(store, _request(project, "fresh-start", None))
    if commit is None:
        click.echo("nothing to do: the memory files are the templates and nothing is pending")
        return
    click.echo(f"memory files reset ({str(commit)[:8]}); `cmem show HEAD~1:active-context.md` "
               "shows the previous version")
