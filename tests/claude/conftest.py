"""Fixtures of the claude tier: the binary (found or installed once), the mock API, machines."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import client
from .harness import DURATIONS, UNKNOWN, Claude, Machine, new_machine
from .mock_api import MockApi

TESTED: list[str] = []  # the Claude Code version the tier ran, for the summary


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "claude: runs the real Claude Code binary against a mock "
                                       "Messages API (tests/claude; skipped without claude/npm)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.claude)


@pytest.fixture(scope="session")
def claude_binary() -> Path:
    try:
        binary = client.find()
    except client.Unavailable as reason:
        pytest.skip(str(reason))
    TESTED.append(client.version(binary))
    return binary


@pytest.fixture
def api() -> Iterator[MockApi]:
    with MockApi() as server:
        yield server


@pytest.fixture
def claude(claude_binary: Path, api: MockApi, tmp_path: Path) -> Claude:
    logs = tmp_path / "claude-logs"
    logs.mkdir()
    return Claude(claude_binary, api, logs)


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return new_machine(tmp_path, "laptop", "my project")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Hook durations as Claude Code measured them (its debug log), per event."""
    if not DURATIONS:
        return
    by_event: dict[str, list[int]] = defaultdict(list)
    bounded = set()
    for hook in DURATIONS:
        by_event[hook.event].append(hook.millis)
        if hook.upper_bound:
            bounded.add(hook.event)
    terminalreporter.section(f"cmem hook durations in {', '.join(TESTED)}, in ms, as Claude Code "
                             "measured them")
    for event, values in sorted(by_event.items()):
        note = "  (upper bound: logged without a duration)" if event in bounded else ""
        terminalreporter.write_line(
            f"{event:14} n={len(values):3}  median={statistics.median(values):6.0f}  "
            f"max={max(values):6}{note}")
    for request in sorted(UNKNOWN):
        terminalreporter.write_line(f"the mock API answered {request} with {{}} (unknown to it)")
