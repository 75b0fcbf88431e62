"""cmem init / uninstall in real project folders, run as the installed command."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import CORPUS, MINIMAL_PATH, PYTHON, Project, cmem, git, payload, run_hook

from cmem_git.setup.settings import HOOK_EVENTS, interpreter

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
    assert seen == ["?? .claude/skills/cmem-recall/SKILL.md"]  # hooks in the ignored
    # settings.local.json, commands in ~/.claude; the skill names no path of this machine
    exclude = (project.root / ".git" / "info" / "exclude").read_text().splitlines()
    assert {"/.claude/memory/", "/.claude/settings.local.json"} <= set(exclude)


def test_init_twice_changes_nothing(project: Project) -> None:
    settings = (project.root / ".claude" / "settings.local.json").read_bytes()
    commands = {p: p.read_bytes() for p in (project.home / ".claude" / "commands").iterdir()}
    head = git(project.memory, "rev-parse", "HEAD")
    exclude = (project.root / ".git" / "info" / "exclude").read_bytes()
    done = _init(project.root)
    assert b"nothing to do" in done.stdout
    assert (project.root / ".claude" / "settings.local.json").read_bytes() == settings
    assert {p: p.read_bytes() for p in commands} == commands
    assert git(project.memory, "rev-parse", "HEAD") == head
    assert (project.root / ".git" / "info" / "exclude").read_bytes() == exclude


def test_init_keeps_user_settings_and_uninstall_removes_only_cmem(tmp_path: Path) -> None:
    root = tmp_path / "app"
    (root / ".claude").mkdir(parents=True)
    shared = root / ".claude" / "settings.json"
    local = root / ".claude" / "settings.local.json"
    shared.write_text(json.dumps(USER_SETTINGS, indent=2))
    local.write_text(json.dumps(USER_SETTINGS, indent=2))
    before = shared.read_bytes()
    _init(root)
    _init(root)
    assert shared.read_bytes() == before  # the team's file is not touched
    merged = json.loads(local.read_text())
    assert merged["permissions"] == USER_SETTINGS["permissions"]
    assert merged["model"] == "opus"
    assert merged["hooks"]["PostToolUse"] == USER_SETTINGS["hooks"]["PostToolUse"]
    assert merged["hooks"]["SessionEnd"][0] == USER_SETTINGS["hooks"]["SessionEnd"][0]
    assert len(merged["hooks"]["SessionEnd"]) == 2
    done = cmem("uninstall", cwd=root)
    assert done.returncode == 0, done.stderr
    assert json.loads(local.read_text()) == USER_SETTINGS
    assert shared.read_bytes() == before
    assert (root / ".claude" / "memory" / ".git").is_dir()


def _installed_by_an_earlier_cmem(root: Path) -> None:
    """What cmem before 0.2 left: hooks in the shared settings.json, commands in the project's
    .claude/commands/, both naming a virtualenv of this machine by absolute path, committed."""
    (root / ".claude" / "commands").mkdir(parents=True)
    hooks = {event: [{"hooks": [{"type": "command", "timeout": 5,
                                 "command": f"/old/venv/bin/python -m cmem_git hook {sub}"}]}]
             for event, sub in (("SessionStart", "session-start"), ("Stop", "stop"))}
    settings = {**USER_SETTINGS, "hooks": {**USER_SETTINGS["hooks"], **hooks}}
    (root / ".claude" / "settings.json").write_text(json.dumps(settings, indent=2))
    from cmem_git.setup.project import command_templates
    for name, text in command_templates().items():
        (root / ".claude" / "commands" / name).write_text(text.replace("{{cmem}}",
                                                                       "/old/venv/bin/cmem"))
    (root / ".claude" / "commands" / "mine.md").write_text("# my own command\n")
    git(root, "add", ".claude")
    git(root, "commit", "-qm", "team settings")


def _tracked_files_naming(root: Path, text: str) -> list[str]:
    """Files under .claude/ that the project's git tracks or would track (not ignored)."""
    listed = git(root, "ls-files", "--cached", "--others", "--exclude-standard", "-z",
                 "--", ".claude").split("\0")
    return [name for name in listed if name and (root / name).is_file()
            and text in (root / name).read_text(errors="replace")]


def test_init_moves_what_names_this_machine_into_personal_files(tmp_path: Path) -> None:
    root = tmp_path / "team project"
    root.mkdir()
    git(root, "init", "-q")
    _installed_by_an_earlier_cmem(root)
    done = _init(root)
    out = done.stdout.decode()
    assert "moved cmem's 2 hooks out of" in out and "settings.local.json (personal)" in out
    assert "commit its removal" in out
    install = str(Path(PYTHON).parent)
    assert _tracked_files_naming(root, install) == []
    assert _tracked_files_naming(root, "/old/venv") == []
    shared = json.loads((root / ".claude" / "settings.json").read_text())
    assert shared == USER_SETTINGS  # the user's own hooks and keys stay
    local = json.loads((root / ".claude" / "settings.local.json").read_text())
    assert set(local["hooks"]) == set(HOOK_EVENTS)
    assert install in json.dumps(local)
    ignored = subprocess.run(["git", "-C", str(root), "check-ignore", "-q",
                              ".claude/settings.local.json"])
    assert ignored.returncode == 0
    assert [p.name for p in (root / ".claude" / "commands").iterdir()] == ["mine.md"]
    status = git(root, "status", "--porcelain").splitlines()
    assert sorted(status) == sorted([" M .claude/settings.json", "?? .claude/skills/"] + [
        f" D .claude/commands/{name}" for name in ("coalesce.md", "discard-backup.md",
                                                   "document-and-save.md",
                                                   "resume-latest.md")])
    assert b"nothing to do" in _init(root).stdout


def test_hooks_run_with_a_minimal_path_from_any_folder(project: Project, tmp_path: Path) -> None:
    """The hook commands name the interpreter by absolute path: Claude Code's shell may have
    neither the virtualenv nor the project on PATH, nor the project as cwd."""
    sid = "0c9f2a1e-6b4d-4c3a-9e8f-7a6b5c4d3e2f"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes((CORPUS / "spotter" / "short.jsonl").read_bytes())
    for cwd in (tmp_path, project.root / ".claude", Path("/")):
        for event in ("SessionStart", "PreCompact", "SessionEnd", "Stop"):
            done = run_hook(project, event, payload(event, sid, transcript, project.root), cwd=cwd)
            assert done.returncode == 0, done.stderr
            assert b"failed" not in done.stdout + done.stderr, (event, cwd, done.stdout)
    assert f"Cmem-Session: {sid}" in project.git("log", "--format=%B")
    assert project.git("status", "--porcelain") == ""


def test_init_in_a_subdirectory_uses_the_git_top_level(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    deep = root / "src" / "pkg"
    deep.mkdir(parents=True)
    git(root, "init", "-q")
    done = _init(deep)
    assert f"project: {root} (the top level of its git repository)" in done.stdout.decode()
    assert (root / ".claude" / "memory" / ".git").is_dir()
    assert not (deep / ".claude").exists() and not (root / "src" / ".claude").exists()
    again = _init(deep)  # now found by its memory repository
    assert f"project: {root} (it has the memory repository)" in again.stdout.decode()


def test_init_in_a_subdirectory_uses_the_folder_with_claude(tmp_path: Path) -> None:
    root = tmp_path / "monorepo"
    app = root / "apps" / "web"
    (app / ".claude").mkdir(parents=True)
    (app / "lib").mkdir()
    git(root, "init", "-q")
    done = _init(app / "lib")
    assert f"project: {app} (the nearest folder with .claude/)" in done.stdout.decode()
    assert (app / ".claude" / "memory" / ".git").is_dir()
    assert not (root / ".claude").exists()
    exclude = (root / ".git" / "info" / "exclude").read_text().splitlines()
    assert "/apps/web/.claude/memory/" in exclude


def test_init_never_takes_the_home_folder_for_a_project(tmp_path: Path, hermetic: Path) -> None:
    (hermetic / ".claude").mkdir(exist_ok=True)  # Claude Code's own folder, not a project's
    work = hermetic / "notes"
    work.mkdir()
    done = _init(work)
    assert f"project: {work} (the current folder: no git repository)" in done.stdout.decode()
    assert not (hermetic / ".claude" / "memory").exists()


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
    python = interpreter(written["Stop"][0]["hooks"][0]["command"]) or ""
    text = json.dumps(example).replace("/home/me/.venvs/cmem/bin/python", shlex.quote(python))
    assert json.loads(text) == written
