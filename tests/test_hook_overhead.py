"""Per-session overhead: what Claude Code waits for, and what the hook path imports."""

from __future__ import annotations

import json
import subprocess

from conftest import MINIMAL_PATH, PYTHON, Project, payload, run_hook

from cmem_git.setup import settings


def test_every_hook_runs_synchronously(project: Project) -> None:
    hooks = project.settings()["hooks"]
    flags = {event: [h.get("async", False) for g in hooks[event] for h in g["hooks"]]
             for event in settings.HOOK_EVENTS}
    # An async Stop never ran in a real `claude -p` session (tests/claude): all synchronous.
    assert flags == {event: [False] for event in settings.HOOK_EVENTS}
    path = project.transcripts / "s1.jsonl"
    path.write_bytes(b'{"type":"user"}\n')
    done = run_hook(project, "Stop", payload("Stop", "s1", path, project.root))
    assert done.returncode == 0 and project.git("log", "-1", "--format=%s").startswith("stop")


def test_a_hook_with_nothing_to_do_does_not_import_the_redaction_rules() -> None:
    """Compiling 40 secret rules costs more than the rest of a SessionStart."""
    code = ("import sys, cmem_git.entry.hooks, cmem_git.capture.checkpoint as c, "
            "cmem_git.repo.config as k; "
            "c.redaction(k.Config()); print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('cmem_git'))))")
    done = subprocess.run([PYTHON, "-c", "import json; " + code], capture_output=True,
                          text=True, check=True)
    assert "cmem_git.secrets.redact" not in json.loads(done.stdout)
    assert "cmem_git.cli" not in json.loads(done.stdout)


def test_a_backup_hook_imports_only_what_its_event_needs(project: Project) -> None:
    """PreCompact commits the transcript: it never loads sync, the secret scan, the delta, the
    network, SessionStart's context and recovery, or the command line (issue 17; the figures
    are in bench/bench_imports.py)."""
    path = project.transcripts / "s1.jsonl"
    path.write_bytes(b'{"type":"user","message":{"role":"user","content":"hi"}}\n')
    env = {"HOME": str(project.home), "PATH": MINIMAL_PATH,
           "CLAUDE_PROJECT_DIR": str(project.root), "PYTHONPROFILEIMPORTTIME": "1"}
    done = subprocess.run(["sh", "-c", project.hook_command("PreCompact")], env=env,
                          input=json.dumps(payload("PreCompact", "s1", path, project.root)).encode(),
                          capture_output=True, cwd=project.home, timeout=120)
    assert done.returncode == 0 and done.stdout == b""
    assert project.git("log", "-1", "--format=%s").startswith("pre-compact")
    loaded = {line.rsplit("|", 1)[1].strip() for line in done.stderr.decode().splitlines()
              if line.startswith("import time:") and line.count("|") == 2}
    assert "cmem_git.capture.checkpoint" in loaded  # the report was read right
    unneeded = {"cmem_git.remote.sync", "cmem_git.remote.merge", "cmem_git.remote.restore",
                "cmem_git.secrets.scan", "cmem_git.read.delta", "cmem_git.read.context",
                "cmem_git.capture.recovery", "cmem_git.git.transport", "cmem_git.cli", "click"}
    assert loaded & unneeded == set()

