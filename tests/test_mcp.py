"""`cmem mcp` (issue 15): the real server process, spoken to over stdio in JSON-RPC as Claude
Code speaks to it, and its registration by `cmem init` in the personal scope."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PYTHON, Project, cmem, payload, run_hook
from test_import import make_session, user_line
from test_search import append

from cmem_git.entry import mcp_server
from cmem_git.setup import registration


class Client:
    """A JSON-RPC client on the server's stdin and stdout, one message per line (MCP's stdio
    transport)."""

    def __init__(self, project: Project) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CLAUDE_PROJECT_DIR"}
        self.process = subprocess.Popen(
            [PYTHON, "-m", "cmem_git", "mcp", "--project", str(project.root)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=project.home, env=env)
        self.next_id = 0

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        self._send({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                    **({"params": params} if params is not None else {})})
        assert self.process.stdout is not None
        answer = json.loads(self.process.stdout.readline())
        assert answer["id"] == self.next_id, answer
        return answer

    def notify(self, method: str) -> None:
        self._send({"jsonrpc": "2.0", "method": method})

    def call(self, tool: str, **arguments: Any) -> tuple[str, bool]:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})["result"]
        return "".join(part["text"] for part in result["content"]), result["isError"]

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=60)


@pytest.fixture
def sessions(project: Project) -> list[str]:
    """Three corpus sessions committed by the SessionEnd hook, each with 60 'heron' records."""
    sids = []
    for index in range(3):
        sid, _ = make_session(project.transcripts, index, 1_700_000_000 + index)
        append(project.transcripts / f"{sid}.jsonl",
               *[user_line(sid, f"heron number {n} of session {index} " + "words " * 40)
                 for n in range(60)])
        done = run_hook(project, "SessionEnd", payload(
            "SessionEnd", sid, project.transcripts / f"{sid}.jsonl", project.root))
        assert done.returncode == 0
        sids.append(sid)
    return sids


@pytest.fixture
def client(project: Project) -> Iterator[Client]:
    client = Client(project)
    yield client
    assert client.close() == 0


def test_initialize_list_and_call_over_stdio(client: Client, sessions: list[str]) -> None:
    init = client.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "test", "version": "1"}})
    assert init["result"]["serverInfo"]["name"] == "cmem"
    assert "search" in init["result"]["instructions"]
    client.notify("notifications/initialized")
    tools = client.request("tools/list")["result"]["tools"]
    assert sorted(t["name"] for t in tools) == ["log", "resume", "search", "show"]
    search = next(t for t in tools if t["name"] == "search")
    assert search["inputSchema"]["required"] == ["query"]

    text, error = client.call("search", query="heron number 7 of session 2")
    assert not error and f"session {sessions[2]}" in text and "user" in text
    assert "heron number 7 of session 2" in text

    text, error = client.call("search", query="heron", limit=1000)
    assert not error and len(text) <= mcp_server.MAX_CHARS + 200
    assert "more" in text and text.count("- session ") <= mcp_server.MAX_HITS

    line = int(text.split(" record ")[1].split()[0])
    session = text.split("- session ")[1].split()[0]
    shown, error = client.call("show", session=session, line=line, count=1000)
    assert not error and f"[record {line}]" in shown and "heron" in shown
    assert len(shown) <= mcp_server.MAX_CHARS + 200 and "next: show with line=" in shown

    logged, error = client.call("log", limit=2)
    assert not error and sessions[2] in logged and len(logged.splitlines()) == 2
    resumed, error = client.call("resume")
    assert not error and resumed and len(resumed) <= mcp_server.MAX_CHARS


def test_a_tool_error_is_a_result_not_a_crash(client: Client, sessions: list[str]) -> None:
    client.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "test", "version": "1"}})
    client.notify("notifications/initialized")
    text, error = client.call("show", session="no-such-session")
    assert error and "no session matches" in text
    text, error = client.call("search", query="nothing like this anywhere")
    assert not error and text.startswith("no match")


def test_sees_commits_made_while_it_runs(client: Client, project: Project,
                                         sessions: list[str]) -> None:
    client.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "test", "version": "1"}})
    client.notify("notifications/initialized")
    assert client.call("search", query="osprey")[0].startswith("no match")
    append(project.transcripts / f"{sessions[0]}.jsonl", user_line(sessions[0], "an osprey"))
    run_hook(project, "PreCompact", payload("PreCompact", sessions[0],
                                      project.transcripts / f"{sessions[0]}.jsonl", project.root))
    assert f"session {sessions[0]}" in client.call("search", query="osprey")[0]


# --- registration -----------------------------------------------------------------------------

def claude_json(project: Project) -> dict[str, Any]:
    return json.loads((project.home / ".claude.json").read_text())


def test_init_registers_the_server_for_the_project_only(project: Project) -> None:
    servers = claude_json(project)["projects"][str(project.root)]["mcpServers"]
    entry = servers["cmem"]
    assert entry["type"] == "stdio" and Path(entry["command"]).exists()
    assert entry["args"] == ["-m", "cmem_git", "mcp", "--project", str(project.root)]
    assert "mcpServers" not in claude_json(project)  # not the user scope
    skill = project.root / registration.SKILL
    assert skill.read_text().startswith("---\nname: cmem-recall\n")
    assert not (project.root / ".mcp.json").exists()  # not the shared project scope


def test_the_registered_command_starts_the_server(project: Project) -> None:
    entry = claude_json(project)["projects"][str(project.root)]["mcpServers"]["cmem"]
    message = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
               "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                          "clientInfo": {"name": "t", "version": "1"}}}
    done = subprocess.run([entry["command"], *entry["args"]], cwd="/",
                          input=json.dumps(message).encode() + b"\n", capture_output=True,
                          env={"HOME": str(project.home), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert json.loads(done.stdout.splitlines()[0])["result"]["serverInfo"]["name"] == "cmem"


def test_other_servers_and_settings_stay_and_uninstall_removes_only_ours(
        project: Project) -> None:
    config = claude_json(project)
    config["numStartups"] = 7
    config["mcpServers"] = {"mine": {"command": "x"}}
    config["projects"][str(project.root)]["mcpServers"]["other"] = {"command": "y"}
    config["projects"][str(project.root)]["allowedTools"] = ["Bash"]
    (project.home / ".claude.json").write_text(json.dumps(config))
    assert cmem("init", cwd=project.root).returncode == 0
    assert claude_json(project) == config  # nothing to change
    assert cmem("uninstall", cwd=project.root).returncode == 0
    after = claude_json(project)
    del config["projects"][str(project.root)]["mcpServers"]["cmem"]
    assert after == config
    assert not (project.root / registration.SKILL).exists()


def test_an_unreadable_claude_json_is_left_alone(project: Project) -> None:
    file = project.home / ".claude.json"
    file.write_text("{not json")
    done = cmem("init", cwd=project.root)
    assert done.returncode == 0 and b"claude mcp add --scope local cmem" in done.stderr
    assert file.read_text() == "{not json"


def test_claude_config_dir_is_honoured(project: Project, tmp_path: Path) -> None:
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp_path / "conf")}
    (tmp_path / "conf").mkdir()
    assert cmem("init", cwd=project.root, env=env).returncode == 0
    config = json.loads((tmp_path / "conf" / ".claude.json").read_text())
    assert "cmem" in config["projects"][str(project.root)]["mcpServers"]


def test_the_sdk_client_speaks_to_the_server(project: Project, sessions: list[str]) -> None:
    """The protocol is hand-written (mcp_server.py); the `mcp` SDK's own client checks it:
    version negotiation, the tool list and its schemas, a call, an error result."""
    import anyio
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    server = StdioServerParameters(command=PYTHON, cwd=str(project.home),
                                   args=["-m", "cmem_git", "mcp", "--project", str(project.root)])

    async def talk() -> tuple[Any, ...]:
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            found = await session.call_tool("search", {"query": "heron number 7 of session 2"})
            failed = await session.call_tool("show", {"session": "no-such-session"})
            return init, tools, found, failed

    init, tools, found, failed = anyio.run(talk)
    assert init.server_info.name == "cmem" and "search" in (init.instructions or "")
    assert {tool.name for tool in tools.tools} == {"log", "resume", "search", "show"}
    assert not found.is_error and f"session {sessions[2]}" in found.content[0].text
    assert failed.is_error and "no session matches" in failed.content[0].text


def test_bad_requests_get_json_rpc_errors_and_the_server_goes_on(client: Client,
                                                                 sessions: list[str]) -> None:
    assert client.request("nonsense/method")["error"]["code"] == -32601
    bad = client.request("tools/call", {"name": "search", "arguments": {"query": 7}})
    assert bad["error"]["code"] == -32602 and "query" in bad["error"]["message"]
    unknown = client.request("tools/call", {"name": "rm", "arguments": {}})
    assert unknown["error"]["code"] == -32602 and "search" in unknown["error"]["message"]
    assert client.request("ping")["result"] == {}
    client._send({"jsonrpc": "2.0", "method": "notifications/cancelled"})  # no answer
    assert client.process.stdin is not None and client.process.stdout is not None
    client.process.stdin.write(b"{not json\n")
    client.process.stdin.flush()
    assert json.loads(client.process.stdout.readline())["error"]["code"] == -32700
    text, error = client.call("log", limit=1)
    assert not error and sessions[2] in text


def test_an_unknown_protocol_version_gets_the_newest(client: Client) -> None:
    init = client.request("initialize", {"protocolVersion": "1999-01-01", "capabilities": {},
                                         "clientInfo": {"name": "test", "version": "1"}})
    assert init["result"]["protocolVersion"] == mcp_server.VERSIONS[0]
    assert init["result"]["capabilities"] == {"tools": {"listChanged": False}}


def test_the_server_starts_without_the_repository_code(project: Project) -> None:
    """Claude Code waits for the server before a print-mode session's first request: answering
    initialize and tools/list must not load pygit2 (nor an MCP SDK)."""
    done = subprocess.run(
        [PYTHON, "-X", "importtime", "-m", "cmem_git", "mcp", "--project", str(project.root)],
        input=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}\n', capture_output=True,
        cwd=project.home, timeout=60)
    assert json.loads(done.stdout)["result"]["tools"]
    loaded = {line.split("|")[-1].strip() for line in done.stderr.decode().splitlines()}
    assert "pygit2" not in loaded and "mcp" not in loaded and "cmem_git.entry.mcp_server" in loaded
