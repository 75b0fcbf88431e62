"""The hook event table (repo/events.py) and what derives from it: the settings cmem installs,
the config's switches and the dispatcher's handlers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from cmem_git.entry import hooks
from cmem_git.repo.config import Events
from cmem_git.repo.events import BY_NAME, EVENTS
from cmem_git.setup import settings


def test_every_event_has_a_handler_a_switch_and_a_settings_entry() -> None:
    assert set(hooks._HANDLERS) == set(BY_NAME)
    assert {f.name for f in dataclasses.fields(Events)} == {e.config_key for e in EVENTS}
    assert settings.HOOK_EVENTS == {e.claude: e.name for e in EVENTS}
    assert settings.DEFAULT_TIMEOUTS == {e.claude: e.timeout for e in EVENTS}


def test_a_switched_off_event_is_off_and_only_that_one() -> None:
    off = Events(pre_compact=False)
    assert [e.name for e in EVENTS if not off.enabled(e)] == ["pre-compact"]


def test_installed_settings_follow_the_table(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    settings.install_hooks(path, "/usr/bin/python3")
    installed = json.loads(path.read_text())["hooks"]
    assert set(installed) == {e.claude for e in EVENTS}
    for event in EVENTS:
        (entry,) = installed[event.claude][0]["hooks"]
        assert entry["timeout"] == event.timeout
        assert f"/usr/bin/python3 -m cmem_git hook {event.name}" in entry["command"]
        assert entry["command"].startswith("m=") == event.detached  # the shell line's marker


def test_the_detail_field_of_each_event_is_read_from_its_payload() -> None:
    for event in EVENTS:
        payload = {"session_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12, "cwd": "/tmp",
                   **({event.detail: "why"} if event.detail else {})}
        parsed = hooks.parse(event.name, json.dumps(payload).encode())
        assert parsed.detail == ("why" if event.detail else None)


def test_problems_go_to_the_events_own_channel() -> None:
    for event in EVENTS:
        output = hooks._channel(event.name, "cmem: trouble")
        if event.channel == "stderr":
            assert (output.stdout, output.stderr) == ("", "cmem: trouble\n")
        else:
            assert json.loads(output.stdout) == {"systemMessage": "cmem: trouble"}
            assert output.stderr == ""

