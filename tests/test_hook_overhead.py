"""Per-session overhead: what Claude Code waits for, and what the hook path imports."""

from __future__ import annotations

import json
import subprocess

from conftest import PYTHON, Project, payload, run_hook

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
    code = ("import sys, cmem_git.entry.hooks, cmem_git.capture.checkpoint as c, cmem_git.repo.config as k; "
            "c.redaction(k.Config()); print(json.dumps(sorted(m for m in sys.modules "
            "if m.startswith('cmem_git'))))")
    done = subprocess.run([PYTHON, "-c", "import json; " + code], capture_output=True,
                          text=True, check=True)
    assert "cmem_git.secrets.redact" not in json.loads(done.stdout)
    assert "cmem_git.cli" not in json.loads(done.stdout)
