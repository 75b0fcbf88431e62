"""The command line: a thin layer that turns options into calls and results into text.

Only this module imports click. Errors cross one boundary, `main`: a CmemError becomes its
message and hint with exit status 1, anything unexpected a one-line summary (traceback with
CMEM_DEBUG=1) and exit status 3.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click
import pygit2

# Commands import what they need when they run: every command pays the start-up of all the
# others otherwise (`cmem log` must start fast; pygit2 alone is ~50 ms).
from . import __version__, paths, revisions
from .errors import CmemError, NotInitialized
from .history import Filter, describe, log as history_log, plural
from .output import colour_enabled, is_terminal, paint, when
from .store import Store

if TYPE_CHECKING:
    from .checkpoint import Request
    from .config import Config
    from .importer import Progress
    from .redact import Redactor
    from .sync import Outcome
    from .transport import Limits
    from .project import Report
    from .purge import Result as Purged
    from . import recall


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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cmem")
def cli() -> None:
    """Version Claude Code session memory in git.

    cmem keeps every transcript backup, active-context change and session document of a
    project as commits in .claude/memory, driven by Claude Code hooks.
    """


@cli.command()
@click.option("--device", help="This machine's name in commits (default: the host name).")
@click.option("--force", is_flag=True, help="Replace slash command files of the same name.")
@click.option("--claude-md", is_flag=True,
              help="Add the @.claude/memory/active-context.md import to CLAUDE.md.")
@click.option("--remote", "remote_url", metavar="URL",
              help="Set up another machine: add URL as origin and sync with the branch it has.")
def init(device: str | None, force: bool, claude_md: bool, remote_url: str | None) -> None:
    """Set cmem up in the current project.

    With --remote URL (a second machine), the memory already on URL is fetched and adopted:
    memory files still as the templates left them take the remote's content.

    The project is the folder that has .claude/memory, else the nearest folder with .claude/
    up to the git top level, else the git top level (init says which). Creates .claude/memory
    (or adopts a claude-memory folder there: documents, pending markers, raw/ backups and its
    old hooks), writes active-context.md and project-memory.md from templates where missing,
    writes the per-device config .claude/memory/cmem.yaml, hides the memory repository and
    .claude/settings.local.json from the project's own git, merges cmem's hooks into
    .claude/settings.local.json (personal: they name this machine's cmem) and installs the slash
    commands /document-and-save, /resume-latest, /coalesce and /discard-backup into
    ~/.claude/commands/. Running it again changes nothing.
    """
    from . import project as project_mod
    project, why = project_mod.find_root(Path.cwd())
    report = project_mod.init(project, sys.executable, device, force, claude_md)
    report.root = f"project: {project} ({why})"
    _print_report(report)
    _register_recall(project)
    if remote_url:
        from . import sync as sync_mod
        store = _store(project)
        _report_outcome(sync_mod.join(store, remote_url, _device(), _limits()))


def _register_recall(project: Path) -> None:
    """The MCP server (personal scope) and its skill: see registration.py."""
    from . import registration
    actions, notes = registration.register(project, sys.executable)
    for line in actions:
        click.echo(line)
    for note in notes:
        click.echo(f"note: {note}", err=True)


@cli.command()
def uninstall() -> None:
    """Remove cmem's hooks from .claude/settings.local.json and .claude/settings.json, its MCP
    server registration and its skill (nothing else; the memory and the slash commands stay)."""
    from . import project as project_mod
    from . import registration
    project = _project_here()
    _print_report(project_mod.uninstall(project),
                  "nothing to do: cmem's hooks are not in .claude/settings.local.json "
                  "or .claude/settings.json")
    for line in registration.unregister(project.resolve()):
        click.echo(line)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("event", metavar="EVENT")
def hook(event: str) -> None:
    """Run a Claude Code hook: session-start, pre-compact, session-end, stop or subagent-stop.
    Reads the event's JSON on stdin and always exits 0."""
    from . import hooks
    hooks.main(event)


def _store(project: Path | None = None) -> Store:
    """The project's memory repository, with the config's redaction on every write path."""
    from . import checkpoint
    from .config import load_config
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
    return revisions.parse_time(value) if value else None


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
    from . import reading
    store = _reader()
    if graph:
        _emit(reading.graph(store, max_count))
        return
    found = reading.log_range(store, revs, ctx.meta.get("cmem.paths", ()))
    wanted = Filter(session, event, _time_option(since), _time_option(until), found.paths)
    entries = history_log(store.repo, found.tip, max_count, wanted, found.hide)
    if not entries:
        reading.check_filter(store, wanted)
    if as_json:
        click.echo("".join(json.dumps(reading.entry_json(e)) + "\n" for e in entries), nl=False)
        return
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
                     f"{item.trailers.get('Cmem-Device', '-')}  {describe(item)}")
    _emit("".join(line + "\n" for line in lines))


@cli.command()
@click.argument("spec", default="HEAD")
def show(spec: str) -> None:
    """Show a commit like `git show`: its message, the records each transcript gained and
    the patch of the memory files. REV:PATH writes a file as of REV instead.

    For a transcript, PATH may be the stored folder (transcripts/<id>/main.jsonl): its chunks
    are put back together; spilled tool output (transcripts/<id>/tool-results/<file>) comes
    back as its plain text. See `cmem help revisions` for REV.
    """
    from . import reading
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
    from . import reading
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
    from . import reading
    store = _store()
    changes = reading.changes(store, old, new)
    if as_json:
        click.echo(json.dumps(reading.changes_json(changes), indent=2))
    elif stat:
        _emit(reading.changes_stat(changes))
    else:
        _emit(reading.changes_text(changes, raw, thinking, colour_enabled()))


def _max_chars(default: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """One meaning of --max-chars for every command that bounds its output."""
    return click.option("--max-chars", type=click.IntRange(min=0), default=default,
                        show_default=True, help="Size budget in characters for the whole "
                        "output; the newest is kept when it cuts. 0: no limit.")


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
    from . import reading
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
    from . import reading
    report = reading.status_data(_store())
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(reading.status_text(report, is_terminal()), nl=False)


def _request(project: Path, event: str, session: str | None) -> Request:
    """What a command commits besides its own change: the memory files, and the transcript of
    the running Claude Code session when it is known (CLAUDE_CODE_SESSION_ID or --session)."""
    from .backup import check_session_id
    from . import checkpoint
    from .config import load_config
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


_SESSION_OPTION = click.option(
    "--session", help="The Claude Code session to back up in the same commit "
    "(default: $CLAUDE_CODE_SESSION_ID).")


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
    from . import docs
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
    from . import docs
    click.echo(docs.resume(_store(), max_chars), nl=False)


@cli.command()
@click.argument("file", required=False)
@_SESSION_OPTION
def coalesce(file: str | None, session: str | None) -> None:
    """Append FILE (or stdin) to the last session document as a "Session continuation"
    section, in one commit; afterwards nothing is pending."""
    from . import docs
    project = _project_here()
    text = _read_input(file)
    store = _store(project)
    updated = docs.coalesce(store, text, _request(project, "document", session))
    click.echo(f"updated {updated.path} ({str(updated.commit)[:8]})")


@cli.command()
@_SESSION_OPTION
def discard(session: str | None) -> None:
    """Mark the backups since the last document as dealt with (history keeps them)."""
    from . import docs
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
    from . import docs
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


@cli.command()
@click.option("--fix", is_flag=True, help="Repair what can be repaired safely.")
def doctor(fix: bool) -> None:
    """Check the installation: repository (missing objects, core.worktree, read-only), config,
    hooks (and claude-memory's old ones, and cmem's in the shared settings.json), slash
    commands, locks, index, hook errors, files in step, what the project's git sees or tracks.

    With --fix, repairs what is safe (reinstalls hooks and commands for this cmem, moves them
    out of shared files, removes claude-memory's hooks keeping a copy, clears a dead process's
    locks, rebuilds the index from the last commit) and says what it changed. Exit status 1 if
    a problem stays."""
    from . import doctor as doctor_mod
    project = paths.find_project(Path.cwd()) or Path.cwd()
    found = doctor_mod.examine(project)
    if fix:
        for finding in found:
            if finding.fix is not None:
                changes = finding.fix()
                click.echo(f"fixed: {finding.problem}")
                for change in changes or []:
                    click.echo(f"  {change}")
        found = doctor_mod.examine(project)
    for finding in found:
        click.echo(f"problem ({finding.check}): {finding.problem}\n  hint: {finding.hint}")
    if found:
        raise SystemExit(1)
    click.echo("everything is in order")


@cli.group()
def remote() -> None:
    """Remotes the memory repository syncs with (any git remote: GitHub, GitLab, ssh, a path)."""


@remote.command(name="add")
@click.argument("name")
@click.argument("url")
def remote_add(name: str, url: str) -> None:
    """Add a remote. Authentication is git's own: ssh keys and agent, ~/.ssh/config host
    aliases, credential helpers for https. A URL holding a password is refused."""
    from . import sync as sync_mod
    click.echo(f"added remote {name} {sync_mod.add_remote(_store(), name, url)}")


@remote.command(name="remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove a remote (the remote repository itself is untouched)."""
    from . import sync as sync_mod
    sync_mod.remove_remote(_store(), name)
    click.echo(f"removed remote {name}")


@remote.command(name="show")
def remote_show() -> None:
    """List the remotes."""
    store = _store()
    for item in store.repo.remotes:
        click.echo(f"{item.name}\t{item.url}")


_REMOTE_ARGUMENT = click.argument("name", required=False)


def _device() -> str:
    from .config import load_config
    return load_config(paths.config_path(_project_here())).device


def _report_outcome(outcome: Outcome) -> None:
    if outcome.merged:
        click.echo(f"{outcome.merged} from {outcome.remote}")
    for path in outcome.conflicts:
        click.echo(f"warning: {path} was changed on both devices; both versions are kept in it, "
                   "one after the other: review and combine them", err=True)
    if outcome.pushed:
        click.echo(f"pushed to {outcome.remote} ({outcome.bytes_sent} bytes sent)")
    if not outcome.merged and not outcome.pushed:
        click.echo(f"up to date with {outcome.remote}")


@cli.command()
@_REMOTE_ARGUMENT
def pull(name: str | None) -> None:
    """Fetch from the remote and merge into the memory (no working tree needed)."""
    from . import sync as sync_mod
    _report_outcome(sync_mod.pull(_store(), name, _device(), _limits()))


_ALLOW_SECRETS = click.option(
    "--allow-secrets", is_flag=True,
    help="Push even when `cmem scan` finds secrets in the commits being pushed.")


def _secrets(allow: bool) -> Redactor | None:
    from . import checkpoint
    return None if allow else checkpoint.secret_rules(_config())


def _limits() -> Limits:
    from .config import network_limits
    from .transport import Limits
    return Limits(*network_limits(_config()))


def _config() -> Config:
    from .config import load_config
    return load_config(paths.config_path(_project_here()))


@cli.command()
@_REMOTE_ARGUMENT
@_ALLOW_SECRETS
def push(name: str | None, allow_secrets: bool) -> None:
    """Push the memory to the remote. Commits the remote lacks are scanned for secrets first;
    a push the remote rejects is a failure (exit 1)."""
    from . import sync as sync_mod
    _report_outcome(sync_mod.push(_store(), name, _limits(), secrets=_secrets(allow_secrets)))


@cli.command(name="sync")
@_REMOTE_ARGUMENT
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@_ALLOW_SECRETS
def sync_command(name: str | None, quiet: bool, allow_secrets: bool) -> None:
    """Commit local edits, fetch, merge and push; retried when another device pushed first."""
    from . import sync as sync_mod
    outcome = sync_mod.sync(_store(), name, _device(), _limits(), secrets=_secrets(allow_secrets))
    if not quiet:
        _report_outcome(outcome)


@cli.command()
@click.argument("session")
@click.option("--to", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write to (default: Claude Code's folder for this project).")
@click.option("--at", "rev", default="HEAD", help="As of this revision.")
@click.option("--force", is_flag=True, help="Replace different existing files.")
def restore(session: str, folder: Path | None, rev: str, force: bool) -> None:
    """Write a session's transcript and subagents back where Claude Code keeps them, so
    `claude --resume <id>` works here. A longer local file is never truncated."""
    from . import reading
    from . import restore as restore_mod
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
    from . import automemory
    for path in automemory.write_missing(store):
        click.echo(f"wrote {path} (Claude Code's auto-memory)")
    for path in done.unchanged:
        click.echo(f"already there: {path}")
    for path in done.newer_locally:
        click.echo(f"kept {path}: the local file is newer (it extends the backup)")
    click.echo(f"resume it with: claude --resume {session_id}")


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
    from . import importer
    from .config import load_config
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
    from . import export, site
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
    from . import recall
    from . import search_index
    store = Store.open(paths.memory_dir(_project_here()))  # read only: no redaction to load
    if reindex:
        with _progress("indexing") as progress:
            search_index.reindex(store, progress)
    if pattern is None:
        if not reindex:
            raise click.UsageError("give a PATTERN to search for")
        return
    ask = recall.Ask(pattern, ignore_case, session, _time_option(since), _time_option(until),
                     kinds, max_count or None, context)
    if regex:
        hits = _scan_hits(store, ask)
    else:
        with _progress("indexing") as progress:
            hits = search_index.read(store, lambda db: recall.find(db, ask), progress)
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
    from . import recall
    from . import search as search_mod
    query = search_mod.Query(ask.text, True, ask.ignore_case, ask.session, ask.since)
    hits = (recall.from_scan(m) for m in search_mod.search(store, query))
    hits = (h for h in hits if (not ask.kinds or h.kind in ask.kinds)
            and (ask.until is None or h.time <= ask.until))
    return list(itertools.islice(hits, ask.limit))


@cli.command(name="mcp")
@click.option("--project", "folder", type=click.Path(file_okay=False, path_type=Path),
              help="The project whose memory to serve (default: the one here or above).")
def mcp_command(folder: Path | None) -> None:
    """Serve the memory to Claude as an MCP server on stdin/stdout (tools: search, show, log,
    resume). `cmem init` registers it with Claude Code for this project."""
    from . import mcp_server
    project = paths.find_project(folder or Path.cwd())
    if project is None:
        raise NotInitialized(f"no .claude/memory repository in {folder or Path.cwd()} or above")
    mcp_server.serve(project)


@cli.command(name="scan")
@click.argument("revisions", metavar="[RANGE]", required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def scan_command(revisions: str | None, as_json: bool) -> None:
    """Find secrets already committed: in all history, in what REV reaches, or in A..B.
    Exit status 1 when something is found (like a linter)."""
    from . import checkpoint
    from . import scan as scan_mod
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


@cli.command(name="purge")
@click.option("--session", "sessions", multiple=True, metavar="ID",
              help="Remove this session's transcripts (a prefix of the id is enough).")
@click.option("--path", "files", multiple=True, metavar="PATH",
              help="Remove this file or folder of .claude/memory from every commit.")
@click.option("--secret", "secrets", multiple=True, metavar="STRING",
              help="Replace every copy of STRING with [REDACTED:purged]; `-` reads it from "
              "stdin, which keeps it out of your shell history.")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-push", is_flag=True, help="Rewrite only this machine's history.")
@click.option("--remote", "name", help="The remote to overwrite (default: origin).")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def purge_command(sessions: tuple[str, ...], files: tuple[str, ...], secrets: tuple[str, ...],
                  dry_run: bool, yes: bool, no_push: bool, name: str | None,
                  as_json: bool) -> None:
    """Take a session, a file or a secret out of all history, here and on the remote.

    Commits from the first affected one on are rewritten (authors and dates kept); every
    other commit, session and file keeps its id and bytes. A `purge:` commit on top records
    what was purged (a secret only by a hash prefix). Reflogs, cmem's caches and unreachable
    objects are then removed (`git gc`), the working files refreshed, and the remote
    overwritten with --force-with-lease. Other machines follow on their next `cmem sync`.
    Exit status 1 when nothing matches.
    """
    from . import purge as purge_mod
    from .sync import default_remote
    store = _store()
    chosen = [purge_mod.session_selector(store, s) for s in sessions]
    chosen += [purge_mod.path_selector(store, p) for p in files]
    chosen += [purge_mod.secret_selector(_secret_input() if s == "-" else s) for s in secrets]
    if not chosen:
        raise click.UsageError("say what to purge: --session ID, --path PATH or --secret -")
    planned = purge_mod.plan(store, chosen)
    remote = None if no_push else name or default_remote(store)
    if dry_run:
        _purge_report(planned, as_json, remote)
        return
    if not as_json:
        _purge_report(planned, False, remote)
    _confirm_purge(yes, remote)
    _purge_report(purge_mod.purge(store, chosen, _device(), remote, _limits()), as_json, remote)


def _secret_input() -> str:
    """`--secret -`: typed without echo on a terminal, else the first line of stdin."""
    if sys.stdin.isatty():
        return str(click.prompt("Secret to purge", hide_input=True, err=True))
    return sys.stdin.readline()


def _confirm_purge(yes: bool, remote: str | None) -> None:
    where = f" and on {remote} (force-push)" if remote else ""
    click.echo(f"warning: this rewrites history here{where}; other machines must sync "
               "before they push again", err=True)
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError("not on a terminal: add --yes to purge (--dry-run shows what "
                               "would change)")
    click.confirm("Rewrite history?", abort=True)


def _purge_report(result: Purged, as_json: bool, remote: str | None) -> None:
    if as_json:
        click.echo(json.dumps(result.as_json(), indent=2))
        return
    changes = result.changes
    verb = "would rewrite" if result.dry_run else "rewrote"
    first = f" from {str(changes.first)[:8]}" if changes.first else ""
    click.echo(f"{verb} {plural(changes.commits, 'commit')}{first}"
               + (f", {changes.dropped} left empty and dropped" if changes.dropped else ""))
    for label, items in (("sessions", changes.sessions), ("files", changes.paths)):
        shown = sorted(items)
        if shown:
            more = f" and {len(shown) - 10} more" if len(shown) > 10 else ""
            click.echo(f"{label}: {', '.join(shown[:10])}{more}")
    if changes.matches:
        click.echo(f"secret copies replaced: {changes.matches}")
    if result.dry_run:
        click.echo(f"would then force-push to {remote}" if remote else "would not push")
        return
    click.echo(f"new tip {result.new_tip[:8]} (was {result.old_tip[:8]})")
    if result.pushed:
        click.echo(f"force-pushed to {remote}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)


def _range(store: Store, spec: str | None) -> tuple[pygit2.Oid, pygit2.Oid | None]:
    if spec and ".." in spec:
        old, _, new = spec.partition("..")
        return revisions.resolve(store, new or "HEAD").id, revisions.resolve(store, old).id
    return revisions.resolve(store, spec or "HEAD").id, None


@cli.command(name="help")
@click.argument("topic", required=False)
@click.pass_context
def help_command(ctx: click.Context, topic: str | None) -> None:
    """Help on a command or topic: `cmem help revisions`."""
    if topic == "revisions":
        click.echo(revisions.HELP.strip())
        return
    parent = ctx.parent or ctx
    if not topic:
        click.echo(cli.get_help(parent))  # the group's own context: "Usage: cmem ..."
        return
    command = cli.get_command(ctx, topic)
    if command is None:
        raise click.UsageError(f"no help topic {topic!r}; try `cmem help revisions` or "
                               "`cmem --help` for the commands")
    click.echo(command.get_help(click.Context(command, info_name=topic, parent=parent)))


def main(argv: Sequence[str] | None = None) -> int:
    paths.private()
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
        return error.exit_code
    except OSError as error:  # a file the user named, a full disk: their words, not a trace
        where = f": {error.filename}" if error.filename else ""
        click.echo(f"cmem: error: {error.strerror or error}{where}", err=True)
        return 1
    except Exception as error:  # noqa: BLE001 - the boundary for the unexpected
        if os.environ.get("CMEM_DEBUG"):
            traceback.print_exc()
        click.echo(f"cmem: internal error: {type(error).__name__}: {error}", err=True)
        click.echo("hint: run again with CMEM_DEBUG=1 for the traceback", err=True)
        return 3
    finally:
        _print_notices()
    return 0
