"""A second machine's first day: it adopts the memory the first one pushed, never scrambles it.

Machine A works a while (edits Current Focus, saves a session document), adds a remote and
syncs. Machine B is set up later, either as `cmem init` + `cmem remote add` + `cmem sync` or in
one command, `cmem init --remote URL`. B's active-context.md is still the template, so it must
take A's, with A's document pointer; then edits on both keep cmem's header lines where they
are, each once, merged by meaning. Everything runs the installed cmem against `git daemon` on
127.0.0.1 (servers.py) and is read back with the git CLI.
"""

from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from conftest import Project
from servers import GitDaemon, clean_env
from test_sync import (  # noqa: F401
    SPOTTER,
    Device,
    append,
    assert_healthy,
    daemon,
    desktop,
    laptop,
    manual_sync_only,
    new_home,
    remote_repository,
    served,
    session_id,
)

FOCUS_A = "Porting the tokenizer to the streaming reader (machine A)."
TEMPLATE_FOCUS = "What is being worked on right now, and why."
HEADER = re.compile(r"^> (Last [A-Za-z ]+):(.*)$", re.MULTILINE)


def first_machine_with_a_document(device: Device, url: str) -> str:
    """A's day: a focus, a session document, a remote, a sync. Returns the document's path."""
    active = device.memory / "active-context.md"
    active.write_text(active.read_text().replace(TEMPLATE_FOCUS, FOCUS_A))
    saved = device.ok("doc", "save", "-", "--title", "Tokenizer day",
                      input=b"# Tokenizer day\n\nThe streaming reader now drives the tokenizer.\n")
    document = re.search(r"sessions/session-[^\s]+\.md", saved)
    assert document, saved
    device.ok("remote", "add", "origin", url)
    device.ok("sync")
    return document[0]


def fresh_machine(base: Path, name: str) -> Device:
    root = base / name / "project"
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return Device(name, Project(root, new_home(base / name / "home")))


def headers(device: Device) -> list[tuple[str, str]]:
    return [(m[1], m[2].strip()) for m in HEADER.finditer(
        (device.memory / "active-context.md").read_text())]


def assert_adopted(device: Device, document: str) -> None:
    text = (device.memory / "active-context.md").read_text()
    assert FOCUS_A in text and TEMPLATE_FOCUS not in text, text
    pointers = [value for label, value in headers(device) if label == "Last Session Doc"]
    assert pointers == [document], text
    assert "never" not in dict(headers(device)).get("Last Updated", "never")
    assert "The streaming reader now drives the tokenizer." in device.ok("resume")
    assert_healthy(device)


@pytest.mark.parametrize("setup", ["init-remote-add-sync", "init --remote"])
def test_second_machine_adopts_the_first_machines_memory(tmp_path: Path, laptop: Device,
                                                         daemon: GitDaemon, setup: str) -> None:
    remote_repository(tmp_path)
    url = daemon.url("memory.git")
    document = first_machine_with_a_document(laptop, url)
    desktop = fresh_machine(tmp_path, "desktop")
    if setup == "init --remote":
        out = desktop.ok("init", "--device", "desktop", "--remote", url)
        assert "from origin" in out, out
    else:
        desktop.ok("init", "--device", "desktop")
        desktop.ok("remote", "add", "origin", url)
        desktop.ok("sync")
    laptop.ok("sync")
    assert laptop.head() == desktop.head()
    for device in (laptop, desktop):
        assert_adopted(device, document)


def test_init_remote_takes_the_branch_a_plain_bare_repository_has(tmp_path: Path,
                                                                   laptop: Device,
                                                                   daemon: GitDaemon) -> None:
    """`git init --bare` names its branch master; the first machine pushed master (it cloned
    the empty remote first). `cmem sync` on a main-branch machine says so instead of starting
    a second history; `cmem init --remote` follows the remote's branch."""
    bare = served(tmp_path) / "memory.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "master", str(bare)], check=True,
                   env=clean_env())
    url = daemon.url("memory.git")
    laptop.git("branch", "-m", "master")
    document = first_machine_with_a_document(laptop, url)
    assert laptop.git("ls-remote", url).count("refs/heads/") == 1

    other = fresh_machine(tmp_path, "other")
    other.ok("init", "--device", "other")
    other.ok("remote", "add", "origin", url)
    refused = other.run("sync")
    assert refused.returncode == 1
    assert "has no branch main but has master" in refused.stderr.decode()
    assert "branch -m master" in refused.stderr.decode()
    assert laptop.git("ls-remote", url).count("refs/heads/") == 1  # no second history

    desktop = fresh_machine(tmp_path, "desktop")
    desktop.ok("init", "--device", "desktop", "--remote", url)
    assert desktop.git("symbolic-ref", "HEAD").strip() == "refs/heads/master"
    laptop.ok("sync")
    assert laptop.head() == desktop.head()
    assert_adopted(desktop, document)


def edit_body(device: Device, rng: random.Random, round_: int) -> None:
    active = device.memory / "active-context.md"
    text = active.read_text()
    section = rng.choice(["## Recent Decisions", "## Open Questions", "## Next Steps"])
    line = f"- {device.name} round {round_}: {rng.randrange(10 ** 6)}"
    active.write_text(text.replace(section + "\n", f"{section}\n{line}\n", 1))


def act(device: Device, rng: random.Random, round_: int) -> None:
    """One random piece of a machine's day."""
    choice = rng.randrange(4)
    if choice == 0:
        edit_body(device, rng, round_)
    elif choice == 1:
        device.ok("doc", "save", "-", "--title", f"{device.name} {round_}",
                  input=f"# {device.name} {round_}\n\nwork\n".encode())
    elif choice == 2:
        sid = session_id(f"{device.name}-{round_}")
        append(device.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
        assert device.hook("SessionEnd", sid).returncode == 0
    else:
        edit_body(device, rng, round_)
        device.ok("sync")


def test_twenty_rounds_of_edits_keep_the_header_lines_in_order(tmp_path: Path, laptop: Device,
                                                                desktop: Device,
                                                                daemon: GitDaemon) -> None:
    remote_repository(tmp_path)
    url = daemon.url("memory.git")
    for device in (laptop, desktop):
        manual_sync_only(device)
    first_machine_with_a_document(laptop, url)
    desktop.ok("remote", "add", "origin", url)
    desktop.ok("sync")
    rng = random.Random(10)
    order = [label for label, _ in headers(laptop)]
    for round_ in range(20):
        for device in rng.sample([laptop, desktop], 2):
            act(device, rng, round_)
        laptop.ok("sync")
        desktop.ok("sync")
        laptop.ok("sync")
        assert laptop.head() == desktop.head()
        found = headers(laptop)
        assert found == headers(desktop)
        labels = [label for label, _ in found]
        assert len(labels) == len(set(labels)), found
        assert set(order) <= set(labels), (round_, found)  # a line once there stays
        order = order if set(labels) == set(order) else labels
        assert labels == order, (round_, found)
        assert all(v not in ("none", "never") for _, v in found), found
    assert "Last Session End" in order


# ---------------------------------------------------------------- the machine that fell behind


def test_restore_and_session_start_on_the_machine_that_fell_behind(
        tmp_path: Path, laptop: Device, desktop: Device, daemon: GitDaemon) -> None:
    """The session went on on the desktop; the laptop's copy is an older prefix. SessionStart
    says so and names the command; `cmem restore` brings it up to date without --force; a
    local copy with lines history lacks is still refused without it."""
    from test_sync import context_of, lines_of, pair, wait_background

    remote_repository(tmp_path)
    pair(laptop, desktop, daemon.url("memory.git"))
    sid = session_id("went-on-elsewhere")
    lines = lines_of((SPOTTER / "tool_heavy.jsonl").read_bytes())
    local = laptop.claude_folder / f"{sid}.jsonl"
    append(local, b"".join(lines[:10]))
    assert laptop.hook("SessionEnd", sid).returncode == 0
    wait_background(laptop)
    desktop.ok("sync")
    desktop.ok("restore", sid)
    append(desktop.claude_folder / f"{sid}.jsonl", b"".join(lines[10:30]))
    assert desktop.hook("SessionEnd", sid).returncode == 0
    wait_background(desktop)

    started = context_of(laptop.hook("SessionStart", session_id("next"), source="startup"))
    context = started["hookSpecificOutput"]["additionalContext"]
    assert f"Behind: the local transcript of {sid}" in context, context
    assert f"cmem restore {sid}" in context and f"cmem restore {sid}" in started["systemMessage"]
    assert local.read_bytes() == b"".join(lines[:10])  # SessionStart never writes it

    out = laptop.ok("restore", sid)
    assert "brought" in out and "up to date" in out, out
    assert local.read_bytes() == b"".join(lines[:30])
    again = context_of(laptop.hook("SessionStart", session_id("after"), source="startup"))
    assert "Behind:" not in again["hookSpecificOutput"]["additionalContext"]

    local.write_bytes(b"".join(lines[:5]) + b'{"type":"user","note":"only here"}\n')
    refused = laptop.run("restore", sid)
    assert refused.returncode == 1 and "--force" in refused.stderr.decode()
    assert b"only here" in local.read_bytes()
    laptop.ok("restore", sid, "--force")
    assert local.read_bytes() == b"".join(lines[:30])
