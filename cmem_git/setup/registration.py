"""Telling Claude Code about `cmem mcp`, for this project and this user only.

Claude Code reads a project's personal ("local" scope) MCP servers from its global config file,
`~/.claude.json` (`$CLAUDE_CONFIG_DIR/.claude.json` when that is set), under
`projects["<absolute project path>"].mcpServers`: this is where `claude mcp add --scope local`
writes. The server command names this machine's Python, so it belongs there and not in the
project's shared `.mcp.json`. Only the `cmem` entry is ever written or removed; every other key
of that file (Claude Code keeps much state there) is left as it was, and the file is replaced
atomically. A skill file in `.claude/skills/` tells Claude when to use the tools.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import paths
from ..atomic import write_atomic

SERVER = "cmem"
SKILL = Path(".claude") / "skills" / "cmem-recall" / "SKILL.md"
_TEMPLATE = "recall-skill.md"


def config_file() -> Path:
    configured = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(configured) / ".claude.json" if configured else Path.home() / ".claude.json"


def server_entry(project: Path, executable: str) -> dict[str, Any]:
    return {"type": "stdio", "command": executable,
            "args": ["-m", "cmem_git", "mcp", "--project", str(project)], "env": {}}


def register(project: Path, executable: str) -> tuple[list[str], list[str]]:
    """(actions, notes): the MCP server in the personal scope, the skill in the project."""
    actions, notes = [], []
    try:
        if _set_server(project, server_entry(project, executable)):
            actions.append(f"registered the MCP server `{SERVER}` for this project in "
                           f"{config_file()} (personal scope)")
    except _Unreadable as error:
        notes.append(f"{error}; add the server with: claude mcp add --scope local {SERVER} -- "
                     f"{executable} -m cmem_git mcp --project {project}")
    skill = project / SKILL
    if not skill.exists():
        skill.parent.mkdir(parents=True, exist_ok=True)
        skill.write_bytes(_skill_text())
        actions.append(f"wrote {skill}")
    return actions, notes


def unregister(project: Path) -> list[str]:
    done = []
    try:
        if _set_server(project, None):
            done.append(f"removed the MCP server `{SERVER}` from {config_file()}")
    except _Unreadable:
        pass  # nothing of ours can be in a file we cannot read
    skill = project / SKILL
    if skill.is_file() and skill.read_bytes() == _skill_text():
        skill.unlink()
        if not any(skill.parent.iterdir()):
            skill.parent.rmdir()
        done.append(f"removed {skill}")
    return done


def _skill_text() -> bytes:
    return paths.templates().joinpath(_TEMPLATE).read_bytes()


class _Unreadable(Exception):
    pass


def _set_server(project: Path, entry: dict[str, Any] | None) -> bool:
    """Set (or with None remove) our entry; whether the file changed."""
    file = config_file()
    config = _read(file)
    servers = config.get("projects", {}).get(str(project), {}).get("mcpServers", {})
    if servers.get(SERVER) == entry or (entry is None and SERVER not in servers):
        return False
    if entry is None:
        del config["projects"][str(project)]["mcpServers"][SERVER]
    else:
        place = config.setdefault("projects", {}).setdefault(str(project), {})
        place.setdefault("mcpServers", {})[SERVER] = entry
    _write(file, config)
    return True


def _read(file: Path) -> dict[str, Any]:
    if not file.exists():
        return {}
    try:
        config: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, OSError) as error:
        raise _Unreadable(f"could not read {file}: {error}") from None
    valid = isinstance(config, dict) and isinstance(config.get("projects", {}), dict)
    if not valid:
        raise _Unreadable(f"{file} is not the JSON object Claude Code writes")
    return config


def _write(file: Path, config: dict[str, Any]) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(file, json.dumps(config, indent=2) + "\n")
