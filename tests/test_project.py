"""cmem init / uninstall in real project folders, run as the installed command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import CORPUS, MINIMAL_PATH, Project, cmem, git, payload, run_hook

USER_SETTINGS = {
    "permissions": {"allow": ["Bash(npm test)"]},
    "model": "opus",
    "hooks": {
        "SessionEnd": [{"hooks": [{"type": "command", "command": "echo bye >> /tmp/x"}]}],
        "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "fmt"}]}],
    },
}


def _init(folder: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    done = cmem("init", *args, cwd=folder)
    assert done.returncode == 0, done.stderr.decode()
    return done


def _tree_files(memory: Path) -> dict[str, bytes]:
    names = git(memory, "ls-tree", "-r", "-z", "--name-only", "HEAD").split("\0")[:-1]
    return {name: subprocess.run(["git", "-C", str(memory), "show", f"HEAD:{name}"],
                                 capture_output=True, check=True).stdout for name in names}


def test_init_creates_everything(project: Project) -> None:
    memory = project.memory
    assert (memory / "active-context.md").read_text().startswith("# Active Context")
    assert (memory / "project-memory.md").is_file()
    assert (memory / "cmem.yaml").is_file()
    assert git(memory, "status", "--porcelain") == ""
    assert "cmem.yaml" not in _tree_files(memory)  # per device: never committed
    assert "Cmem-Event: init" in git(memory, "log", "--format=%B")
    git(memory, "fsck", "--strict")
    assert set(project.settings()["hooks"]) == {"SessionStart", "PreCompact", "SessionEnd",
                                                "Stop", "SubagentStop"}


def test_project_repository_does_not_see_memory(project: Project) -> None:
    seen = git(project.root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert seen == ["?? .claude/commands/coalesce.md", "?? .claude/commands/discard-backup.md",
                    "?? .claude/commands/document-and-save.md",
                    "?? .claude/commands/resume-latest.md", "?? .claude/settings.json"]
    exclude = (project.root / ".git" / "info" / "exclude").read_text()
    assert "/.claude/memory/" in exclude.splitlines()


def test_init_twice_changes_nothing(project: Project) -> None:
    settings = (project.root / ".claude" / "settings.json").read_bytes()
    head = git(project.memory, "rev-parse", "HEAD")
    exclude = (project.root / ".git" / "info" / "exclude").read_bytes()
    done = _init(project.root)
    assert b"nothing to do" in done.stdout
    assert (project.root / ".claude" / "settings.json").read_bytes() == settings
    assert git(project.memory, "rev-parse", "HEAD") == head
    assert (project.root / ".git" / "info" / "exclude").read_bytes() == exclude


def test_init_keeps_user_settings_and_uninstall_removes_only_cmem(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / ".claude").mkdir(parents=True)
    (root / ".claude" / "settings.json").write_text(json.dumps(USER_SETTINGS, indent=2))
    _init(root)
    _init(root)
    merged = json.loads((root / ".claude" / "settings.json").read_text())
    assert merged["permissions"] == USER_SETTINGS["permissions"]
    assert merged["model"] == "opus"
    assert merged["hooks"]["PostToolUse"] == USER_SETTINGS["hooks"]["PostToolUse"]
    assert merged["hooks"]["SessionEnd"][0] == USER_SETTINGS["hooks"]["SessionEnd"][0]
    assert len(merged["hooks"]["SessionEnd"]) == 2
    done = cmem("uninstall", cwd=root)
    assert done.returncode == 0, done.stderr
    assert json.loads((root / ".claude" / "settings.json").read_text()) == USER_SETTINGS
    assert (root / ".claude" / "memory" / ".git").is_dir()


def test_init_adopts_claude_memory_folder(tmp_path: Path) -> None:
    root = tmp_path / "legacy"
    memory = root / ".claude" / "memory"
    files = {
        "active-context.md": b"# Active Context\n\n> Last Session Doc: sessions/s1.md\nmine\n",
        "sessions/session-2026-01-01-auth.md": b"---\ntitle: auth\n---\nnotes\n",
        "raw/backup-1.jsonl": (CORPUS / "spotter" / "short.jsonl").read_bytes(),
        ".last-exit-backup": b"raw/backup-1.jsonl\n",
        "odd name \u00e9.txt": b"\x00\xff binary\r\n",
    }
    for name, data in files.items():
        (memory / name).parent.mkdir(parents=True, exist_ok=True)
        (memory / name).write_bytes(data)
    _init(root)
    stored = _tree_files(memory)
    for name, data in files.items():
        assert stored[name] == data, name
        assert (memory / name).read_bytes() == data  # nothing rewritten on disk
    assert "project-memory.md" in stored  # the missing one comes from the template
    assert git(memory, "status", "--porcelain") == ""
    git(memory, "fsck", "--strict")
    _init(root)
    assert git(memory, "rev-list", "--count", "HEAD").strip() == "1"


def test_init_refuses_invalid_config(project: Project) -> None:
    (project.memory / "cmem.yaml").write_text("device: laptop\nstaleness_hours: [\n")
    done = cmem("init", cwd=project.root)
    assert done.returncode == 1
    assert b"cmem.yaml:" in done.stderr and b"hint:" in done.stderr


def test_init_in_a_folder_without_git(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    done = _init(root)
    assert b"not in a git repository" in done.stderr
    assert (root / ".claude" / "memory" / ".git").is_dir()


def test_hook_runs_from_anywhere_with_minimal_path(project: Project, tmp_path: Path) -> None:
    transcript = project.transcripts / "abc.jsonl"
    transcript.write_bytes((CORPUS / "spotter" / "short.jsonl").read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_hook(project, "PreCompact", payload("PreCompact", "abc", transcript, elsewhere),
                    cwd=elsewhere)
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b""
    assert "Cmem-Session: abc" in project.git("log", "-1", "--format=%B")
    assert MINIMAL_PATH == "/usr/bin:/bin"


@pytest.mark.parametrize("command", [["--help"], ["init", "--help"], ["hook", "--help"]])
def test_help(tmp_path: Path, command: list[str]) -> None:
    done = cmem(*command, cwd=tmp_path)
    assert done.returncode == 0 and b"Usage:" in done.stdout


def test_uninstall_outside_a_project_is_a_clear_error(tmp_path: Path) -> None:
    done = cmem("uninstall", cwd=tmp_path)
    assert done.returncode == 1
    assert b"hint: run `cmem init`" in done.stderr


def test_hooks_example_is_what_init_writes(project: Project) -> None:
    example = json.loads((Path(__file__).parents[1] / "hooks" / "settings.example.json")
                         .read_text())["hooks"]
    written = project.settings()["hooks"]
    interpreter = written["Stop"][0]["hooks"][0]["command"].split(" -m ")[0]
    text = json.dumps(example).replace("/home/me/.venvs/cmem/bin/python", interpreter)
    assert json.loads(text) == written
