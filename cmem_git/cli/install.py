"""Setting cmem up and looking after it: init, uninstall, hook, doctor, help."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import paths
from ..read import revisions
from .devices import _report_outcome
from .options import _device, _limits, _print_report, _project_here, _store, cli


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
    from ..setup import project as project_mod
    project, why = project_mod.find_root(Path.cwd())
    report = project_mod.init(project, sys.executable, device, force, claude_md)
    report.root = f"project: {project} ({why})"
    _print_report(report)
    _register_recall(project)
    if remote_url:
        from ..remote import sync as sync_mod
        store = _store(project)
        _report_outcome(sync_mod.join(store, remote_url, _device(), _limits()))


def _register_recall(project: Path) -> None:
    """The MCP server (personal scope) and its skill: see registration.py."""
    from ..setup import registration
    actions, notes = registration.register(project, sys.executable)
    for line in actions:
        click.echo(line)
    for note in notes:
        click.echo(f"note: {note}", err=True)


@cli.command()
def uninstall() -> None:
    """Remove cmem's hooks from .claude/settings.local.json and .claude/settings.json, its MCP
    server registration and its skill (nothing else; the memory and the slash commands stay)."""
    from ..setup import project as project_mod
    from ..setup import registration
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
    Reads the event's JSON on stdin and always exits 0. Stop, SubagentStop and SessionEnd
    return at once and commit in a detached process (CMEM_HOOK_FOREGROUND=1: in this one)."""
    from ..entry import detach
    detach.main(event)


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
    from ..setup import doctor as doctor_mod
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
