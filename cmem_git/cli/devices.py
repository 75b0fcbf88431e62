"""Several devices, one remote: remote add/remove/show, pull, push, sync."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .options import _ALLOW_SECRETS, _REMOTE_ARGUMENT, _device, _limits, _secrets, _store, cli

if TYPE_CHECKING:
    from ..remote.sync import Outcome


@cli.group()
def remote() -> None:
    """Remotes the memory repository syncs with (any git remote: GitHub, GitLab, ssh, a path)."""


@remote.command(name="add")
@click.argument("name")
@click.argument("url")
def remote_add(name: str, url: str) -> None:
    """Add a remote. Authentication is git's own: ssh keys and agent, ~/.ssh/config host
    aliases, credential helpers for https. A URL holding a password is refused."""
    from ..remote import sync as sync_mod
    click.echo(f"added remote {name} {sync_mod.add_remote(_store(), name, url)}")


@remote.command(name="remove")
@click.argument("name")
def remote_remove(name: str) -> None:
    """Remove a remote (the remote repository itself is untouched)."""
    from ..remote import sync as sync_mod
    sync_mod.remove_remote(_store(), name)
    click.echo(f"removed remote {name}")


@remote.command(name="show")
def remote_show() -> None:
    """List the remotes."""
    store = _store()
    for item in store.repo.remotes:
        click.echo(f"{item.name}\t{item.url}")


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
    from ..remote import sync as sync_mod
    _report_outcome(sync_mod.pull(_store(), name, _device(), _limits()))


@cli.command()
@_REMOTE_ARGUMENT
@_ALLOW_SECRETS
def push(name: str | None, allow_secrets: bool) -> None:
    """Push the memory to the remote. Commits the remote lacks are scanned for secrets first;
    a push the remote rejects is a failure (exit 1)."""
    from ..remote import sync as sync_mod
    _report_outcome(sync_mod.push(_store(), name, _limits(), secrets=_secrets(allow_secrets)))


@cli.command(name="sync")
@_REMOTE_ARGUMENT
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
@_ALLOW_SECRETS
def sync_command(name: str | None, quiet: bool, allow_secrets: bool) -> None:
    """Commit local edits, fetch, merge and push; retried when another device pushed first."""
    from ..remote import sync as sync_mod
    outcome = sync_mod.sync(_store(), name, _device(), _limits(), secrets=_secrets(allow_secrets))
    if not quiet:
        _report_outcome(outcome)
