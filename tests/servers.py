"""Real git servers on 127.0.0.1 for the sync tests, each started and always stopped.

- `GitDaemon`: `git daemon` with receive-pack enabled, serving git:// URLs. It runs as a child
  process of the test; `pause()` stops it with SIGSTOP, so a client connects (the kernel still
  completes the handshake from the listen backlog) and then waits for an answer that does not
  come: the network hang a hook must never wait on.
- `HttpGit`: `git http-backend` behind a small CGI-style handler on `http.server`, in a thread of
  the test process, serving http:// URLs (smart HTTP, fetch and push).
- `bare_repository`: a bare repository on disk, for path URLs and as what both servers export.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LOCALHOST = "127.0.0.1"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without variables that would point git at another repository."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))}
    env.update(extra)
    return env


def bare_repository(path: Path, *, http: bool = False) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True,
                   env=clean_env())
    if http:  # git http-backend refuses pushes from unauthenticated users without this
        subprocess.run(["git", "-C", str(path), "config", "http.receivepack", "true"],
                       check=True, env=clean_env())
    return path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        return int(probe.getsockname()[1])


def wait_listening(port: int, timeout: float = 10.0, process: subprocess.Popen[Any] | None = None
                   ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening")
        try:
            with socket.create_connection((LOCALHOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {LOCALHOST}:{port} after {timeout} s")


def reject_pushes(bare: Path, message: str) -> None:
    """A pre-receive hook in the server's repository that refuses every push."""
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    hook.chmod(0o755)


def daemon_program() -> str:
    """git-daemon itself: `git daemon` would run it as a child of a `git` process, and a
    SIGSTOP sent to that parent would leave the daemon serving."""
    exec_path = subprocess.run(["git", "--exec-path"], capture_output=True, text=True,
                               check=True).stdout.strip()
    return str(Path(exec_path) / "git-daemon")


class GitDaemon:
    """`git daemon` exporting every repository under `base`, pushes allowed."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log = base / "git-daemon.log"

    def url(self, name: str) -> str:
        return f"git://{LOCALHOST}:{self.port}/{name}"

    def start(self) -> GitDaemon:
        for _ in range(5):  # a free port can be taken again before the daemon binds it
            self.port = free_port()
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [daemon_program(), "--reuseaddr", "--export-all", "--enable=receive-pack",
                     f"--base-path={self.base}", f"--port={self.port}", f"--listen={LOCALHOST}",
                     "--informative-errors", str(self.base)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=clean_env())
            try:
                wait_listening(self.port, process=self.process)
                return self
            except RuntimeError:
                self.stop()
        raise RuntimeError(f"git daemon did not start: {self.log.read_text()}")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Stop the daemon and the children it forked for connections (same process group
        is not guaranteed, so children end when their client does; the daemon itself goes)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> GitDaemon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _GitHandler(BaseHTTPRequestHandler):
    """Runs `git http-backend` for each request, as a web server runs a CGI program."""

    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._cgi(b"")

    def do_POST(self) -> None:  # noqa: N802
        self._cgi(self._body())

    def _body(self) -> bytes:
        # git sends bodies larger than http.postBuffer (1 MiB) with chunked encoding.
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _cgi(self, body: bytes) -> None:
        path, _, query = self.path.partition("?")
        env = clean_env(
            GIT_PROJECT_ROOT=str(self.server.root), GIT_HTTP_EXPORT_ALL="1",
            REQUEST_METHOD=self.command, PATH_INFO=path, QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""), CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR=self.client_address[0], SERVER_PROTOCOL="HTTP/1.0")
        for header in ("Content-Encoding", "Git-Protocol"):
            if self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        done = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=env)
        self.server.requests += 1
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        if not _:
            head, _, payload = done.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.strip().split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: pytest shows failures, not every request


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path) -> None:
        super().__init__((LOCALHOST, 0), _GitHandler)
        self.root = root
        self.requests = 0


class HttpGit:
    """Smart HTTP for every repository under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.server: _Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def url(self, name: str) -> str:
        return f"http://{LOCALHOST}:{self.port}/{name}"

    def start(self) -> HttpGit:
        self.server = _Server(self.root)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        wait_listening(self.port)
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> HttpGit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
