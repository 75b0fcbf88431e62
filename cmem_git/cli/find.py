"""Finding and taking out: search, scan, export, import."""

from __future__ import annotations

import dataclasses
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import paths
from ..read.output import colour_enabled, is_terminal
from .options import _config, _emit, _progress, _project_here, _store, _time_option, cli

# pygit2, the store and revisions load inside the commands that need them: `cmem search` on a
# current index runs without them (issue 15: within 100 ms, whole process).
if TYPE_CHECKING:
    import pygit2

    from ..read import recall
    from ..repo.store import Store


@cli.command(name="import")
@click.option("--projects-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Claude Code's transcript folder for this project "
              "(default: ~/.claude/projects/<the project's path, encoded>).")
@click.option("--claude-memory", "legacy", type=click.Path(file_okay=False, path_type=Path),
              help="A claude-memory folder: raw/ backups, sessions/ documents (default: "
              ".claude/memory itself when init adopted one with a raw/ folder).")
def import_command(projects_dir: Path | None, legacy: Path | None) -> None:
    """Bring every transcript Claude Code still has, and claude-memory's backups and
    documents, into the memory: one commit per session, oldest first.

    Running it again adds only what changed. A backup is placed with the session its records
    name; one that conflicts with the stored transcript is kept under
    transcripts/<session>/imported/.
    """
    from ..capture import importer
    from ..repo.config import load_config
    project = _project_here()
    store = _store(project)
    device = load_config(paths.config_path(project)).device
    legacy = legacy or importer.default_legacy(paths.memory_dir(project))
    with _progress("importing") as progress:
        report = importer.run(store, device, projects_dir or paths.transcripts_dir(project),
                              legacy, progress)
    for line in importer.summary(report):
        click.echo(line)
    for problem in report.problems:
        click.echo(f"warning: {problem}", err=True)


@cli.command(name="export")
@click.argument("session", required=False)
@click.option("--all", "everything", is_flag=True,
              help="Every session, with an index and the session documents, into -o DIR.")
@click.option("--format", "form", type=click.Choice(("html", "md")), default="html",
              show_default=True, help="A self-contained HTML page, or Markdown.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="The file or folder to write to ('-' for stdout; default "
              "./<session id>.html); the folder for --all.")
@click.option("--at", "rev", default="HEAD", help="As of this revision.")
def export_command(session: str | None, everything: bool, form: str, output: Path | None,
                   rev: str) -> None:
    """Write a session as a page to read: prompts, replies, thinking (folded), tool calls
    with input and result, subagents inside the call that started them, compactions and
    the session's checkpoints. From history alone: sessions Claude Code deleted export too.

    With --all, every session into a folder that opens from disk (index.html); running it
    again re-renders only the sessions that changed.
    """
    from ..publish import export, site
    store = _store()
    if everything == bool(session):
        raise click.UsageError("give a SESSION (an id prefix) or --all")
    if everything:
        if output is None:
            raise click.UsageError("--all needs -o DIR")
        with _progress("exporting") as progress:
            report = site.export_all(store, rev, form, output, progress)
        click.echo(f"{len(report.rendered)} sessions written, {len(report.kept)} unchanged, "
                   f"{len(report.removed)} removed, {report.documents} documents: "
                   f"{report.index}")
        for name in report.skipped:
            click.echo(f"warning: skipped a session stored as {name!r}", err=True)
        return
    assert session is not None
    if str(output) == "-":
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n")
        try:
            export.export_one(store, session, rev, form, None, stream)
        finally:
            stream.flush()
            stream.detach()  # sys.stdout stays usable
        return
    with _progress("exporting") as progress:
        path = export.export_one(store, session, rev, form, output, progress=progress)
    click.echo(f"wrote {path}")


_KINDS = ("user", "assistant", "tool", "summary", "system", "doc", "memory")


@cli.command(name="search")
@click.argument("pattern", required=False)
@click.option("--session", help="Only this session (a prefix of the id is enough).")
@click.option("--since", help="Only what was stored since: '2 days ago', '2026-11-20'.")
@click.option("--until", help="Only what was stored before this.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(_KINDS), metavar="KIND",
              help="Only what the user said, Claude said, tools did and returned, compaction "
              "summaries, session documents or memory files (repeatable): "
              + ", ".join(_KINDS) + ".")
@click.option("--role", "kinds", multiple=True, type=click.Choice(_KINDS), hidden=True)
@click.option("-n", "--max-count", type=int, default=50, show_default=True,
              help="Show at most this many hits, best first; 0 for all.")
@click.option("-C", "--context", type=int, default=0,
              help="Also show this many records (or lines) around each hit.")
@click.option("--json", "as_json", is_flag=True, help="A JSON array of hits.")
@click.option("-i", "--ignore-case", is_flag=True, help="Ignore case.")
@click.option("--regex", is_flag=True, help="PATTERN is a (Python) regular expression; "
              "scans history instead of using the index (slower).")
@click.option("--reindex", is_flag=True, help="Rebuild the search index from history first.")
def search_command(pattern: str | None, session: str | None, since: str | None,
                   until: str | None, kinds: tuple[str, ...], max_count: int, context: int,
                   as_json: bool, ignore_case: bool, regex: bool, reindex: bool) -> None:
    """Search every transcript, session document and memory file in the memory's history,
    including sessions Claude Code has deleted and versions later rewritten.

    PATTERN is an exact phrase (a substring, case-sensitive unless -i), looked up in an index
    kept in .claude/memory/.git/cmem/ and brought up to date from new commits on every search.
    Hits are ranked by relevance, newest first among equals. Exit status 1 when nothing
    matches, as with grep.
    """
    from ..read import index_file, recall
    memory = paths.memory_dir(_project_here())
    if pattern is None and not reindex:
        raise click.UsageError("give a PATTERN to search for")
    store = _reindexed(memory) if reindex else None
    if pattern is None:
        return
    ask = recall.Ask(pattern, ignore_case, session, _time_option(since), _time_option(until),
                     kinds, max_count or None, context)
    hits = None
    if store is None and not regex:  # current by the branch's files alone: no pygit2 at all
        hits = index_file.read_current(memory / ".git", lambda db: recall.find(db, ask))
    if hits is None:
        hits = _through_history(store or _opened(memory), ask, regex)
    _print_hits(hits, as_json)


def _opened(memory: Path) -> Store:
    from ..repo.store import Store
    return Store.open(memory)  # read only: no redaction to load


def _reindexed(memory: Path) -> Store:
    from ..read import search_index
    store = _opened(memory)
    with _progress("indexing") as progress:
        search_index.reindex(store, progress)
    return store


def _through_history(store: Store, ask: recall.Ask, regex: bool) -> list[recall.Hit]:
    """The search with pygit2: on the index brought up to date (or rebuilt) from the branch,
    or the scan of --regex."""
    from ..read import recall, search_index
    if regex:
        return _scan_hits(store, ask)
    with _progress("indexing") as progress:
        return search_index.read(store, lambda db: recall.find(db, ask), progress)


def _print_hits(hits: list[recall.Hit], as_json: bool) -> None:
    from ..read import recall
    if as_json:
        click.echo(json.dumps([recall.as_json(h) for h in hits], indent=2, ensure_ascii=False))
    else:
        colour, relative = colour_enabled(), is_terminal()
        _emit("".join(recall.as_text(h, relative, colour) + "\n" for h in hits))
    if not hits:
        raise SystemExit(1)


def _scan_hits(store: Store, ask: recall.Ask) -> list[recall.Hit]:
    """--regex: the scanning search over every blob, filtered like the index's hits."""
    import itertools

    from ..read import recall
    from ..read import search as search_mod
    query = search_mod.Query(ask.text, True, ask.ignore_case, ask.session, ask.since)
    hits = (recall.from_scan(m) for m in search_mod.search(store, query))
    hits = (h for h in hits if (not ask.kinds or h.kind in ask.kinds)
            and (ask.until is None or h.time <= ask.until))
    return list(itertools.islice(hits, ask.limit))


@cli.command(name="scan")
@click.argument("revisions", metavar="[RANGE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def scan_command(revisions: str | None, as_json: bool) -> None:
    """Find secrets already committed: in all history, in what REV reaches, or in A..B.
    Exit status 1 when something is found (like a linter)."""
    from ..capture import checkpoint
    from ..secrets import scan as scan_mod
    store = _store()
    tip, hide = _range(store, revisions)
    hits = scan_mod.scan(store.repo, tip, hide, checkpoint.secret_rules(_config()))
    if as_json:
        click.echo(json.dumps([{**dataclasses.asdict(h), "line": h.line + 1} for h in hits],
                              indent=2))
    for hit in [] if as_json else hits:
        click.echo(f"{hit.commit[:8]} {hit.path}:{hit.line + 1}: {hit.rule} {hit.preview}")
    if hits:
        raise SystemExit(1)
    if not as_json:
        click.echo("no secrets found")


def _range(store: Store, spec: str | None) -> tuple[pygit2.Oid, pygit2.Oid | None]:
    from ..read import revisions
    if spec and ".." in spec:
        old, _, new = spec.partition("..")
        return revisions.resolve(store, new or "HEAD").id, revisions.resolve(store, old).id
    return revisions.resolve(store, spec or "HEAD").id, None
