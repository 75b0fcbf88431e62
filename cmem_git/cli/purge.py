"""`cmem purge`: take a session, a file or a secret out of all history (remote/purge.py)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from ..repo.history import plural
from .options import _device, _limits, _store, cli

if TYPE_CHECKING:
    from ..remote.purge import Result as Purged


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
    from ..git.repo import default_remote
    from ..remote import purge as purge_mod
    store = _store()
    chosen = [purge_mod.session_selector(store, s) for s in sessions]
    chosen += [purge_mod.path_selector(store, p) for p in files]
    chosen += [purge_mod.secret_selector(_secret_input() if s == "-" else s) for s in secrets]
    if not chosen:
        raise click.UsageError("say what to purge: --session ID, --path PATH or --secret -")
    planned = purge_mod.plan(store, chosen)
    remote = None if no_push else name or default_remote(store.repo)
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
