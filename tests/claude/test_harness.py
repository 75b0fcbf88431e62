"""The tier's own checks: the mock API speaks the Messages protocol, and `verify` fails when a
hook is broken, whether the command itself fails or cmem reports a problem and exits 0."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from . import client
from .harness import EVERY_TURN, Claude, Machine, verify
from .mock_api import MockApi


def post(api: MockApi, body: dict[str, Any]) -> bytes:
    request = urllib.request.Request(f"{api.url}/v1/messages?beta=true",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def prompt(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


def test_mock_streams_a_tool_use_and_logs_the_request(api: MockApi) -> None:
    tools = [{"name": "Bash", "input_schema": {}}]
    raw = post(api, prompt("MOCK:bash echo hi", stream=True, tools=tools)).decode()
    names = re.findall(r"^event: (\S+)", raw, re.M)
    assert names == ["message_start", "content_block_start", "content_block_delta",
                     "content_block_stop", "message_delta", "message_stop"]
    deltas = [json.loads(line[6:]) for line in raw.splitlines() if "input_json_delta" in line]
    assert json.loads(deltas[0]["delta"]["partial_json"])["command"] == "echo hi"
    assert [r.reply for r in api.messages()] == ["bash"]


def test_mock_answers_without_streaming_and_harmlessly_to_unknown_calls(api: MockApi) -> None:
    message = json.loads(post(api, prompt("hello")))
    assert message["content"] == [{"type": "text", "text": "reply to: hello"}]
    with urllib.request.urlopen(f"{api.url}/api/some/new/startup/call", timeout=10) as response:
        assert response.status == 200 and json.loads(response.read()) == {}
    assert api.unknown() == ["GET /api/some/new/startup/call"]


def break_stop_hook(machine: Machine) -> None:
    path = machine.root / ".claude" / "settings.json"
    settings = json.loads(path.read_text())
    settings["hooks"]["Stop"][0]["hooks"][0]["command"] = "/nonexistent/python3 -m cmem_git hook stop"
    path.write_text(json.dumps(settings))


def test_tier_fails_when_a_hook_command_is_broken(claude: Claude, machine: Machine) -> None:
    break_stop_hook(machine)
    run = claude(machine, "MARK-broken")
    with pytest.raises(AssertionError, match="hooks failed"):
        verify(machine, run, EVERY_TURN)


def test_tier_fails_when_cmem_reports_a_problem(claude: Claude, machine: Machine) -> None:
    """cmem exits 0 and reports through systemMessage and its error log: still a failure."""
    (machine.memory / "cmem.yaml").write_text("staleness_hours: [not a number\n")
    run = claude(machine, "MARK-reported")
    with pytest.raises(AssertionError, match="a hook reported a problem|cmem recorded"):
        verify(machine, run, EVERY_TURN)


def test_tier_is_skipped_with_a_reason_only_without_claude_and_npm(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "ENV_BINARY", None)
    monkeypatch.setattr(client, "CACHE", tmp_path / "empty-cache")
    monkeypatch.setenv("PATH", str(tmp_path))  # neither claude nor npm
    with pytest.raises(client.Unavailable, match="neither `claude` nor npm"):
        client.find()
    fake = tmp_path / "claude"
    fake.write_text("#!/bin/sh\necho '9.9.9 (Claude Code)'\n")
    fake.chmod(0o755)
    assert client.find() == fake
