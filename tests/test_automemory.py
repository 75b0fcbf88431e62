"""Claude Code's auto-memory (~/.claude/projects/<encoded project>/memory/) between machines.

Two machines with their own HOME, one `git daemon` on 127.0.0.1; every command is the
installed cmem. The auto-memory is committed as auto-memory/ with every checkpoint, arrives in
the other machine's Claude folder on `cmem sync`, and edits made on both machines at once are
merged three-way, each side's lines kept, no conflict markers.
"""

from __future__ import annotations

from pathlib import Path

from servers import GitDaemon
from test_sync import (  # noqa: F401
    MARKERS,
    SPOTTER,
    Device,
    append,
    assert_healthy,
    daemon,
    desktop,
    laptop,
    manual_sync_only,
    pair,
    remote_repository,
    session_id,
)

MEMORY = "# Project memory\n\n- tests run with pytest -q\n- the parser lives in src/parse.py\n"
TOPIC = "# Build\n\nmake all\n"


def auto_memory(device: Device) -> Path:
    return device.claude_folder / "memory"


def write(device: Device, name: str, text: str) -> None:
    folder = auto_memory(device)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def read(device: Device, name: str) -> str:
    return (auto_memory(device) / name).read_text()


def test_auto_memory_round_trip_with_a_concurrent_edit(tmp_path: Path, laptop: Device,
                                                       desktop: Device,
                                                       daemon: GitDaemon) -> None:
    remote_repository(tmp_path)
    for device in (laptop, desktop):
        manual_sync_only(device)
    pair(laptop, desktop, daemon.url("memory.git"))
    write(laptop, "MEMORY.md", MEMORY)
    write(laptop, "build.md", TOPIC)
    sid = session_id("auto-memory")
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
    assert laptop.hook("SessionEnd", sid).returncode == 0  # a checkpoint takes it in
    assert laptop.git("show", "HEAD:auto-memory/MEMORY.md") == MEMORY
    laptop.ok("sync")
    desktop.ok("sync")
    assert read(desktop, "MEMORY.md") == MEMORY and read(desktop, "build.md") == TOPIC

    write(laptop, "MEMORY.md", MEMORY + "- laptop: releases are tagged vX.Y\n")
    write(desktop, "MEMORY.md", MEMORY.replace("# Project memory\n",
                                               "# Project memory\n\n- desktop: use uv\n"))
    write(desktop, "deploy.md", "# Deploy\n\nfly deploy\n")
    laptop.ok("sync")
    desktop.ok("sync")
    laptop.ok("sync")
    assert laptop.head() == desktop.head()
    for device in (laptop, desktop):
        merged = read(device, "MEMORY.md")
        assert "- laptop: releases are tagged vX.Y\n" in merged, merged
        assert "- desktop: use uv\n" in merged, merged
        assert merged.count("- tests run with pytest -q") == 1
        assert not any(marker in merged for marker in MARKERS)
        assert read(device, "deploy.md") == "# Deploy\n\nfly deploy\n"
        assert device.git("show", "HEAD:auto-memory/MEMORY.md") == merged
        assert_healthy(device)

    for name in ("MEMORY.md", "deploy.md", "build.md"):
        (auto_memory(desktop) / name).unlink()
    out = desktop.ok("restore", sid)
    assert "auto-memory" in out, out
    assert read(desktop, "MEMORY.md") == read(laptop, "MEMORY.md")
    assert read(desktop, "build.md") == TOPIC
