"""Reading history: log, show, cat, diff, delta, status, restore.

pygit2, the store and revisions (and json) load inside the commands that use them: `cmem log`'s
common case runs without them (repo/quicklog.py; issue 13: 150 ms, whole process).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from .. import paths
from ..read.output import colour_enabled, is_terminal, paint, when
from ..repo import quicklog
from ..repo.entries import Entry, Filter, describe
from ..repo.entries import as_json as entry_json
from ..repo.trailers import Trailer
from .options import _emit, _max_chars, _project_here, _reader, _store, _time_option, cli


class _PathsAfterDashes(click.Command):
    """`cmem log A..B -- PATH`: click drops the `--` itself, so the paths after it are set
    aside before click parses the rest."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            at = args.index("--")
            ctx.meta["cmem.paths"] = tuple(args[at + 1:])
            args = args[:at]
        return super().parse_args(ctx, args)


@cli.command(name="log", cls=_PathsAfterDashes)
@click.argument("revs", metavar="[REV | A..B] [-- PATH...]", nargs=-1)
@click.option("-n", "--max-count", type=click.IntRange(min=0),
              help="Show at most this many commits.")
@click.option("--session", help="Only commits of this session (a prefix is enough).")
@click.option("--event", help="Only this event: session-end, pre-compact, document, ...")
@click.option("--since", help="Newer than this: '2 hours ago', 'yesterday', '2026-11-20'.")
@click.option("--until", help="Older than this.")
@click.option("--oneline", is_flag=True, help="One short line per commit.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, all trailers.")
@click.option("--graph", is_flag=True, help="Draw merges between devices (uses git log).")
@click.pass_context
def log_command(ctx: click.Context, revs: tuple[str, ...], max_count: int | None,
                session: str | None, event: str | None, since: str | None, until: str | None,
                oneline: bool, as_json: bool, graph: bool) -> None:
    """Show the memory's history, newest first: all of it, what REV reaches, or what B has
    that A has not (A..B), as with git. `-- PATH` keeps the commits that changed PATH (a
    memory file, sessions/, transcripts/<session id>). See `cmem help revisions` for REV.
    """
    memory = paths.memory_dir(_project_here())

    def wanted(found_paths: tuple[str, ...] = ()) -> Filter:
        return Filter(session, event, _time_option(since), _time_option(until), found_paths)

    plain = not (graph or revs or ctx.meta.get("cmem.paths"))
    tip = quicklog.plain_tip(memory) if plain else None
    # no pygit2 when git log can read it (repo/quicklog.py); libgit2 for everything else
    entries = quicklog.log(memory / ".git", tip, max_count, wanted()) if tip else None
    if entries is None:
        entries = _through_history(ctx, revs, max_count, graph, wanted)
    if entries is None:
        return
    if as_json:
        import json
        click.echo("".join(json.dumps(entry_json(e)) + "\n" for e in entries), nl=False)
    else:
        _emit(_log_text(entries, oneline))


def _through_history(ctx: click.Context, revs: tuple[str, ...], max_count: int | None,
                     graph: bool, wanted: Callable[[tuple[str, ...]], Filter]
                     ) -> list[Entry] | None:
    """The log walked with libgit2: a range, paths, --graph, a repository to repair or
    anything else git log is not asked about. None when it printed the graph itself."""
    from ..read import reading
    from ..repo.history import log as history_log
    store = _reader()
    if graph:
        _emit(reading.graph(store, max_count))
        return None
    found = reading.log_range(store, revs, ctx.meta.get("cmem.paths", ()))
    want = wanted(found.paths)
    entries = history_log(store.repo, found.tip, max_count, want, found.hide)
    if not entries:
        reading.check_filter(store, want)
    return entries


def _log_text(entries: list[Entry], oneline: bool) -> str:
    colour, relative = colour_enabled(), is_terminal()
    lines = []
    for item in entries:
        short = paint(str(item.id)[:8], "yellow", colour)
        session_text = (item.session or "-")[:8]
        if oneline:
            lines.append(f"{short} {item.event or '-'} {session_text} {describe(item)}")
            continue
        lines.append(f"{short} {paint(when(item.time, relative), 'green', colour)} "
                     f"{paint(item.event or 'commit', 'cyan', colour)} {session_text} "
                     f"{item.trailers.get(Trailer.DEVICE, '-')}  {describe(item)}")
    return "".join(line + "\n" for line in lines)


@cli.command()
@click.argument("spec", default="HEAD")
def show(spec: str) -> None:
    """Show a commit like `git show`: its message, the records each transcript gained and
    the patch of the memory files. REV:PATH writes a file as of REV instead.

    For a transcript, PATH may be the stored folder (transcripts/<id>/main.jsonl): its chunks
    are put back together; spilled tool output (transcripts/<id>/tool-results/<file>) comes
    back as its plain text. See `cmem help revisions` for REV.
    """
    from ..read import reading, revisions
    store = _store()
    rev, path = revisions.split_path(spec)
    commit = revisions.resolve(store, rev or "HEAD")
    if path:
        sys.stdout.buffer.write(reading.file_at(store, commit, path))
        return
    _emit(reading.show_text(store, commit, is_terminal(), colour_enabled()))


@cli.command()
@click.argument("session")
@click.option("--file", "name", default="main.jsonl", show_default=True,
              help="Which of the session's files, e.g. subagents/agent-a1.jsonl.")
@click.option("--at", "rev", default="HEAD", help="As of this revision.")
def cat(session: str, name: str, rev: str) -> None:
    """Write a session's full transcript bytes to stdout (a prefix of the id is enough)."""
    from ..read import reading, revisions
    store = _reader()
    commit = revisions.resolve(store, rev)
    for part in reading.session_file_parts(store, commit, session, name):
        sys.stdout.buffer.write(part)


@cli.command()
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option("--raw", is_flag=True, help="Transcripts as their JSONL lines.")
@click.option("--stat", is_flag=True, help="Only counts per session and file.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.option("--thinking", is_flag=True, help="Include Claude's thinking.")
def diff(old: str | None, new: str | None, raw: bool, stat: bool, as_json: bool,
         thinking: bool) -> None:
    """Show changes: uncommitted edits of the memory files, OLD..HEAD, or OLD..NEW.

    Transcripts show the records added, rendered for reading; Markdown files a unified diff.
    """
    from ..read import reading
    store = _store()
    changes = reading.changes(store, old, new)
    if as_json:
        import json
        click.echo(json.dumps(reading.changes_json(changes), indent=2))
    elif stat:
        _emit(reading.changes_stat(changes))
    else:
        _emit(reading.changes_text(changes, raw, thinking, colour_enabled()))


@cli.command()
@click.option("--since", "since", help="Revision to start after (default: the last session "
              "document, or the beginning).")
@_max_chars(20000)
@click.option("--jsonl", is_flag=True, help="The raw JSONL records instead of Markdown.")
@click.option("--thinking", is_flag=True, help="Include Claude's thinking.")
def delta(since: str | None, max_chars: int, jsonl: bool, thinking: bool) -> None:
    """The transcript records added since a revision, for Claude to read.

    Computed from commits (stored byte offsets), never from record timestamps, so it is right
    across compactions, /clear, subagents and sessions resumed on another machine.
    """
    from ..read import reading
    store = _store()
    deltas = reading.delta_since(store, since)
    if jsonl:
        for item in deltas:
            if item.records:  # transcripts only: spilled tool output is no JSONL
                data = item.data
                sys.stdout.buffer.write(data if data.endswith(b"\n") else data + b"\n")
        return
    click.echo(reading.delta_markdown(deltas, max_chars, thinking), nl=False)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def status(as_json: bool) -> None:
    """Repository, last commit per event, backups since the last document, staleness,
    remote and recorded hook errors."""
    from ..read import reading
    report = reading.status_data(_store())
    if as_json:
        import json
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(reading.status_text(report, is_terminal()), nl=False)


@cli.command()
@click.argument("session")
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write to (default: Claude Code's folder for this project).")
@click.option("--at", "rev", default="HEAD", help="As of this revision.")
@click.option("--force", is_flag=True, help="Replace different existing files.")
def restore(session: str, folder: Path | None, rev: str, force: bool) -> None:
    """Write a session's transcript and subagents back where Claude Code keeps them, so
    `claude --resume <id>` works here. A longer local file is never truncated."""
    from ..read import reading, revisions
    from ..remote import restore as restore_mod
    project = _project_here()
    store = _store(project)
    commit = revisions.resolve(store, rev)
    session_id = reading.session_id(store, commit, session)
    target = folder or paths.transcripts_dir(project)
    done = restore_mod.restore(store, commit, session_id, target, force)
    for path in done.written:
        click.echo(f"wrote {path}")
    for path in done.caught_up:
        click.echo(f"brought {path} up to date (it was an older copy of the stored one)")
    from ..repo import automemory
    for path in automemory.write_missing(store):
        click.echo(f"wrote {path} (Claude Code's auto-memory)")
    for path in done.unchanged:
        click.echo(f"already there: {path}")
    for path in done.newer_locally:
        click.echo(f"kept {path}: the local file is newer (it extends the backup)")
    click.echo(f"resume it with: claude --resume {session_id}")
