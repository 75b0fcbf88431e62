"""The network as it really behaves: silent, busy, interrupted.

- A remote that accepts the connection and never answers (a listening socket on 127.0.0.1 that
  reads nothing and writes nothing): `cmem sync` fails with a message naming the remote and the
  configured limit, and git with everything it started is gone (the server sees each
  connection closed).
- Ctrl-C during such a fetch: exit 130, no lock or marker left, files in step, and the next
  sync against a working remote succeeds.
- SessionEnd (which leaves a background sync behind) followed at once by `cmem sync`, on two
  machines at the same time, 20 rounds: not one failure, and both end on the same commit.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PYTHON
from servers import LOCALHOST, GitDaemon
from test_sync import (  # noqa: F401
    SPOTTER,
    Device,
    append,
    assert_healthy,
    daemon,
    desktop,
    laptop,
    pair,
    pending_errors,
    remote_repository,
    session_id,
    wait_background,
)


class SilentServer:
    """Accepts connections and never says a word; counts those the client closed."""

    def __init__(self) -> None:
        self.listener = socket.create_server((LOCALHOST, 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.closed = 0
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._hold, args=(client,), daemon=True).start()

    def _hold(self, client: socket.socket) -> None:
        with client:
            while True:  # read (and ignore) whatever comes, until the client goes
                try:
                    if not client.recv(65536):
                        break
                except OSError:
                    break
        with self._lock:
            self.closed += 1

    def wait_accepted(self, count: int = 1, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.accepted < count:
            assert time.monotonic() < deadline, "the client never connected"
            time.sleep(0.02)

    def wait_all_closed(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.closed < self.accepted:
            assert time.monotonic() < deadline, "a connection stayed open: git is still alive"
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop = True
        self.listener.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


def set_timeouts(device: Device, seconds: int) -> None:
    config = device.memory / "cmem.yaml"
    text = config.read_text()
    for key in ("connect_timeout_seconds", "network_timeout_seconds"):
        text = text.replace(f"{key}: 30", f"{key}: {seconds}")
    assert text.count(f": {seconds}\n") >= 2, text
    config.write_text(text)


@pytest.mark.parametrize("scheme", ["git", "http"])
def test_a_silent_remote_fails_within_the_configured_timeout(laptop: Device,
                                                              silent: SilentServer,
                                                              scheme: str) -> None:
    set_timeouts(laptop, 2)
    laptop.ok("remote", "add", "origin", f"{scheme}://{LOCALHOST}:{silent.port}/memory.git")
    done = subprocess.run([PYTHON, "-m", "cmem_git", "sync"], cwd=laptop.root,
                          env=laptop.env, capture_output=True, timeout=120)
    error = done.stderr.decode()
    assert done.returncode == 1, error
    assert "origin" in error and "no answer within 2 s" in error, error
    assert "cmem.yaml" in error  # the hint says where the limit is set
    assert silent.accepted >= 1
    silent.wait_all_closed()
    assert_healthy(laptop)


def test_ctrl_c_during_a_fetch_leaves_nothing_half_done(tmp_path: Path, laptop: Device,
                                                        silent: SilentServer,
                                                        daemon: GitDaemon) -> None:
    laptop.ok("remote", "add", "origin", f"git://{LOCALHOST}:{silent.port}/memory.git")
    head = laptop.head()
    sync = subprocess.Popen([PYTHON, "-m", "cmem_git", "sync"], cwd=laptop.root,
                            env=laptop.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    silent.wait_accepted()
    sync.send_signal(signal.SIGINT)
    _, err = sync.communicate(timeout=60)
    assert sync.returncode == 130, err
    silent.wait_all_closed()
    gitdir = laptop.memory / ".git"
    assert not (gitdir / "cmem" / "writing").exists()
    assert not list(gitdir.rglob("*.lock"))
    assert laptop.head() == head
    assert_healthy(laptop)

    remote_repository(tmp_path)
    laptop.ok("remote", "remove", "origin")
    laptop.ok("remote", "add", "origin", daemon.url("memory.git"))
    assert "pushed to origin" in laptop.ok("sync")


ROUNDS = 20


def session_end_then_sync(device: Device, sid: str, lines: bytes,
                          failures: list[str]) -> None:
    append(device.claude_folder / f"{sid}.jsonl", lines)
    ended = device.hook("SessionEnd", sid)
    if ended.returncode != 0 or ended.stderr:
        failures.append(f"{device.name} SessionEnd: {ended.stderr.decode()}")
    done = device.run("sync")
    if done.returncode != 0:
        failures.append(f"{device.name} sync: {done.stderr.decode()}")


def test_session_end_then_sync_on_two_machines_never_fails(tmp_path: Path, laptop: Device,
                                                            desktop: Device,
                                                            daemon: GitDaemon) -> None:
    remote_repository(tmp_path)
    pair(laptop, desktop, daemon.url("memory.git"))
    lines = (SPOTTER / "short.jsonl").read_bytes().splitlines(keepends=True)
    failures: list[str] = []
    for round_ in range(ROUNDS):
        threads = [threading.Thread(target=session_end_then_sync, args=(
            device, session_id(f"{device.name}-{round_ % 3}"),
            lines[round_ % len(lines)], failures)) for device in (laptop, desktop)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    for device in (laptop, desktop):
        wait_background(device)
        assert pending_errors(device) == []
    laptop.ok("sync")
    desktop.ok("sync")
    laptop.ok("sync")
    assert laptop.head() == desktop.head()
    for device in (laptop, desktop):
        assert_healthy(device)
        stored = device.git("ls-tree", "--name-only", "HEAD", "transcripts/").split()
        assert len(stored) == 6, stored


def test_background_sync_waits_while_a_sync_holds_the_network(tmp_path: Path, laptop: Device,
                                                             daemon: GitDaemon) -> None:
    """The detached sync SessionEnd starts finds the network lock taken: the holder may have
    pushed before this session's commit, so it waits, then pushes; nothing is reported."""
    from test_sync import git_at, manual_sync_only

    from cmem_git.git.lock import NetworkLock

    bare = remote_repository(tmp_path)
    laptop.ok("remote", "add", "origin", daemon.url("memory.git"))
    laptop.ok("sync")
    manual_sync_only(laptop)  # the hook below starts no background sync of its own
    sid = session_id("waits")
    append(laptop.claude_folder / f"{sid}.jsonl", (SPOTTER / "short.jsonl").read_bytes())
    assert laptop.hook("SessionEnd", sid).returncode == 0
    env = {**laptop.env, "CLAUDE_PROJECT_DIR": str(laptop.root)}
    with NetworkLock(laptop.memory / ".git", 0):
        background = subprocess.Popen([PYTHON, "-m", "cmem_git", "hook", "background-sync"],
                                      cwd=laptop.root, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        with pytest.raises(subprocess.TimeoutExpired):
            background.wait(timeout=3)  # waiting for the lock
        assert git_at(bare, "rev-parse", "main").strip() != laptop.head()
    out, err = background.communicate(timeout=120)
    assert (background.returncode, err) == (0, b""), err
    assert f"background sync: {laptop.head()[:8]} pushed" in out.decode()  # for sync.log
    assert pending_errors(laptop) == []
    assert git_at(bare, "rev-parse", "main").strip() == laptop.head()
