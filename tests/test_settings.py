from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cmem_git.errors import SettingsError
from cmem_git.git.lock import alive, markers_dir
from cmem_git.repo.events import BY_NAME
from cmem_git.setup.settings import (
    ASYNC_EVENTS,
    DEFAULT_TIMEOUTS,
    HOOK_EVENTS,
    hook_command,
    install_hooks,
    interpreter,
    is_cmem_command,
    uninstall_hooks,
)

PY = "/opt/cmem venv/bin/python"
MOVED_PY = "/home/user/new place/bin/python3"
ADDED = [f"added {event} hook" for event in HOOK_EVENTS]

USER_SETTINGS: dict[str, Any] = {
    "permissions": {"allow": ["Bash(git status)"], "deny": []},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}],
        "SessionStart": [{"matcher": "startup",
                          "hooks": [{"type": "command", "command": "echo hi", "timeout": 3}]}],
        "Notification": [],
    },
    "env": {"FOO": "bär"},
    "model": "opus",
}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "project" / ".claude" / "settings.json"


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")


def read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def cmem_hooks(data: Any, event: str) -> list[dict[str, Any]]:
    return [hook for group in data["hooks"][event] for hook in group["hooks"]
            if is_cmem_command(hook["command"])]


# --- hook_command / is_cmem_command ---------------------------------------------------------------

def test_hook_command_quotes_the_interpreter() -> None:
    assert hook_command(PY, "pre-compact") == "'/opt/cmem venv/bin/python' -m cmem_git hook pre-compact"
    assert hook_command("/usr/bin/python3", "session-start") == \
        "/usr/bin/python3 -m cmem_git hook session-start"
    for detached in ("stop", "subagent-stop", "session-end"):  # a shell line around it
        assert "'/opt/cmem venv/bin/python' -m cmem_git hook " + detached in hook_command(PY, detached)
        assert interpreter(hook_command(PY, detached)) == PY


def test_hook_command_makes_a_relative_interpreter_absolute(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for event in ("stop", "pre-compact"):
        assert interpreter(hook_command("venv/bin/python", event)) == f"{tmp_path}/venv/bin/python"


def test_hook_command_needs_an_interpreter() -> None:
    with pytest.raises(SettingsError):
        hook_command("", "stop")


def fake_python(tmp_path: Path) -> Path:
    """An 'interpreter' in a folder whose name needs quoting. It prints its arguments, one a
    line, and writes them and its stdin to files beside it (a detached hook's output goes
    nowhere); with `hold` there, it waits until the file is removed."""
    folder = tmp_path / "my env's dir $HOME" / "bin"
    folder.mkdir(parents=True)
    script = folder / "python"
    script.write_text('#!/bin/sh\nhere=$(dirname "$0")\nprintf "%s\\n" "$@"\n'
                      'cat > "$here/stdin"\n'
                      'while [ -e "$here/hold" ]; do sleep 0.05; done\n'
                      'printf "%s\\n" "$@" > "$here/args.tmp" && mv "$here/args.tmp" "$here/args"\n')
    script.chmod(0o755)
    return script


def run_hook(command: str, cwd: Path, **env: str) -> list[str]:
    """Run a command the way Claude Code does: through a shell, here with no venv on PATH; the
    arguments the (fake) interpreter got, once it is done."""
    python = Path(interpreter(command) or "")
    (python.parent / "args").unlink(missing_ok=True)
    subprocess.run(["sh", "-c", command], cwd=cwd, env={"PATH": "/usr/bin:/bin", **env},
                   input="{}", capture_output=True, text=True, check=True)
    for _ in range(400):
        if (python.parent / "args").exists():
            break
        time.sleep(0.05)
    return (python.parent / "args").read_text().splitlines()


def initialised(tmp_path: Path) -> tuple[Path, Path]:
    """A project folder whose memory repository has the markers' folder `cmem init` makes."""
    project = tmp_path / "project"
    gitdir = project / ".claude" / "memory" / ".git"
    gitdir.mkdir(parents=True)
    return project, markers_dir(gitdir)


def test_generated_command_runs_from_any_folder(tmp_path: Path) -> None:
    python = fake_python(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project, _ = initialised(tmp_path)
    command = hook_command(str(python), "session-end")
    assert run_hook(command, elsewhere, CLAUDE_PROJECT_DIR=str(project)) == \
        ["-m", "cmem_git", "hook", "session-end", "--detached"]
    # In the foreground when asked, and where there is no repository (Python says so).
    foreground = ["-m", "cmem_git", "hook", "session-end"]
    assert run_hook(command, elsewhere, CLAUDE_PROJECT_DIR=str(project),
                    CMEM_HOOK_FOREGROUND="1") == foreground
    assert run_hook(command, elsewhere, CLAUDE_PROJECT_DIR=str(elsewhere)) == foreground
    assert run_hook(command, elsewhere) == foreground


def test_installed_commands_run_with_their_subcommand(tmp_path: Path, path: Path) -> None:
    install_hooks(path, str(fake_python(tmp_path)))
    project, _ = initialised(tmp_path)
    for event, subcommand in HOOK_EVENTS.items():
        [hook] = cmem_hooks(read(path), event)
        detached = ["--detached"] if BY_NAME[subcommand].detached else []
        assert run_hook(hook["command"], tmp_path, CLAUDE_PROJECT_DIR=str(project)) == \
            ["-m", "cmem_git", "hook", subcommand, *detached]


def test_a_detached_hook_returns_before_its_work_is_done(tmp_path: Path) -> None:
    """The shell returns while the process it started still runs, marked by its pid where
    `detach.running` looks, and that process gets the hook's stdin whole."""
    python = fake_python(tmp_path)
    project, markers = initialised(tmp_path)
    (python.parent / "hold").touch()
    payload = json.dumps({"session_id": "x" * 70_000})  # more than a pipe's buffer
    done = subprocess.run(["sh", "-c", hook_command(str(python), "stop")], input=payload,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "CLAUDE_PROJECT_DIR": str(project)})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    [marker] = list(markers.iterdir())
    assert alive(int(marker.name)) and not (python.parent / "args").exists()
    (python.parent / "hold").unlink()
    for _ in range(400):
        if not alive(int(marker.name)):
            break
        time.sleep(0.05)
    assert (python.parent / "stdin").read_text() == payload
    assert (python.parent / "args").read_text().split() == ["-m", "cmem_git", "hook", "stop",
                                                            "--detached"]


@pytest.mark.parametrize("command", [
    "/usr/bin/python3 -m cmem_git hook stop",
    "'/old venv/bin/python' -m cmem_git hook session-end",
    "cmem hook pre-compact",
    "/home/u/.local/bin/cmem hook stop",
    "'/a b/cmem' hook stop",
    "uvx cmem hook session-start",
])
def test_recognises_cmem_commands(command: str) -> None:
    assert is_cmem_command(command)


@pytest.mark.parametrize("command", [
    "echo cmem", "mycmem hook stop", "cmem status", "python -m cmem_git doctor",
    "cmem-hook stop", "audit.sh --hook cmem",
])
def test_leaves_other_commands_alone(command: str) -> None:
    assert not is_cmem_command(command)


# --- install -------------------------------------------------------------------------------------

def test_install_creates_the_file(path: Path) -> None:
    assert install_hooks(path, PY) == ADDED
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    assert data == {"hooks": {
        event: [{"hooks": [{"type": "command", "command": hook_command(PY, sub),
                            "timeout": DEFAULT_TIMEOUTS[event],
                            **({"async": True} if event in ASYNC_EVENTS else {})}]}]
        for event, sub in HOOK_EVENTS.items()}}
    assert os.listdir(path.parent) == ["settings.json"]  # no temp file left behind


def test_default_timeouts_raise_the_session_end_budget(path: Path) -> None:
    install_hooks(path, PY)
    data = read(path)
    assert {event: cmem_hooks(data, event)[0]["timeout"] for event in HOOK_EVENTS} == {
        "SessionStart": 30, "PreCompact": 60, "SessionEnd": 5, "Stop": 30,
        "SubagentStop": 30}


def test_timeouts_can_be_overridden_and_updated(path: Path) -> None:
    install_hooks(path, PY)
    assert install_hooks(path, PY, {"SessionEnd": 20}) == ["updated SessionEnd hook"]
    data = read(path)
    assert cmem_hooks(data, "SessionEnd")[0]["timeout"] == 20
    assert cmem_hooks(data, "Stop")[0]["timeout"] == 30


def test_unknown_timeout_event_is_a_programming_error(path: Path) -> None:
    with pytest.raises(ValueError, match="Notification"):
        install_hooks(path, PY, {"Notification": 3})
    assert not path.exists()


def test_install_keeps_the_users_settings_and_hooks(path: Path) -> None:
    write(path, USER_SETTINGS)
    assert install_hooks(path, PY) == ADDED
    data = read(path)
    assert list(data) == ["permissions", "hooks", "env", "model"]
    assert {k: v for k, v in data.items() if k != "hooks"} == {
        k: v for k, v in USER_SETTINGS.items() if k != "hooks"}
    assert list(data["hooks"]) == ["PreToolUse", "SessionStart", "Notification", "PreCompact",
                                   "SessionEnd", "Stop", "SubagentStop"]
    assert data["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    assert data["hooks"]["Notification"] == []
    # The user's SessionStart group stays first and untouched; cmem's comes after it, with no matcher.
    user_group, cmem_group = data["hooks"]["SessionStart"]
    assert user_group == USER_SETTINGS["hooks"]["SessionStart"][0]
    assert cmem_group == {"hooks": [{"type": "command", "command": hook_command(PY, "session-start"),
                                     "timeout": 30}]}


def test_install_twice_changes_nothing(path: Path) -> None:
    write(path, USER_SETTINGS)
    install_hooks(path, PY)
    before = path.read_bytes()
    inode = path.stat().st_ino
    assert install_hooks(path, PY) == []
    assert path.read_bytes() == before
    assert path.stat().st_ino == inode  # not even rewritten


def test_moved_interpreter_is_updated_in_place(path: Path) -> None:
    old = {"type": "command", "command": hook_command(PY, "stop"), "timeout": 30, "note": "mine"}
    mine, theirs = {"type": "command", "command": "notify.sh"}, {"type": "command", "command": "log.sh"}
    write(path, {"hooks": {"Stop": [{"hooks": [mine, old, theirs]}, {"hooks": [theirs]}]}})
    install_hooks(path, PY)
    assert install_hooks(path, MOVED_PY) == [f"updated {event} hook" for event in HOOK_EVENTS]
    stop = read(path)["hooks"]["Stop"]
    assert stop == [{"hooks": [mine, {**old, "command": hook_command(MOVED_PY, "stop")}, theirs]},
                    {"hooks": [theirs]}]
    assert install_hooks(path, MOVED_PY) == []


def test_old_cmem_script_command_is_replaced_not_duplicated(path: Path) -> None:
    old = {"type": "command", "command": "cmem hook session-end"}
    write(path, {"hooks": {"SessionEnd": [{"hooks": [old]}]}})
    assert install_hooks(path, PY)[2] == "updated SessionEnd hook"
    assert cmem_hooks(read(path), "SessionEnd") == [
        {"type": "command", "command": hook_command(PY, "session-end"), "timeout": 5}]


def test_duplicate_cmem_hooks_are_collapsed(path: Path) -> None:
    hook = {"type": "command", "command": hook_command(PY, "stop"), "timeout": 30}
    user = {"type": "command", "command": "log.sh"}
    write(path, {"hooks": {"Stop": [{"hooks": [dict(hook), user]}, {"hooks": [dict(hook)]}]}})
    assert "updated Stop hook" in install_hooks(path, PY)
    assert read(path)["hooks"]["Stop"] == [{"hooks": [hook, user]}]


def test_blank_file_counts_as_empty_settings(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_text("\n")
    assert install_hooks(path, PY) == ADDED


def test_install_keeps_the_file_mode(path: Path) -> None:
    write(path, {})
    path.chmod(0o600)
    install_hooks(path, PY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_file_follows_the_umask(path: Path) -> None:
    old = os.umask(0o022)
    try:
        install_hooks(path, PY)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_symlinked_settings_are_edited_through_the_link(tmp_path: Path, path: Path) -> None:
    real = tmp_path / "dotfiles" / "settings.json"
    write(real, {"model": "opus"})
    path.parent.mkdir(parents=True)
    path.symlink_to(real)
    install_hooks(path, PY)
    assert path.is_symlink()
    assert read(real)["model"] == "opus"
    assert len(read(real)["hooks"]) == len(HOOK_EVENTS)


# --- uninstall -----------------------------------------------------------------------------------

def test_uninstall_restores_the_users_settings(path: Path) -> None:
    write(path, USER_SETTINGS)
    install_hooks(path, PY)
    assert uninstall_hooks(path) == [f"removed {event} hook" for event in HOOK_EVENTS]
    assert read(path) == USER_SETTINGS
    assert list(read(path)["hooks"]) == list(USER_SETTINGS["hooks"])


def test_uninstall_drops_a_hooks_table_it_emptied(path: Path) -> None:
    write(path, {"model": "opus"})
    install_hooks(path, PY)
    uninstall_hooks(path)
    assert read(path) == {"model": "opus"}


def test_uninstall_keeps_empty_structures_the_user_made(path: Path) -> None:
    data: dict[str, Any] = {"hooks": {"Stop": [{"hooks": []}], "Notification": []}}
    write(path, data)
    install_hooks(path, PY)
    uninstall_hooks(path)
    assert read(path) == data


def test_uninstall_after_the_user_added_hooks(path: Path) -> None:
    install_hooks(path, PY)
    data = read(path)
    user = {"type": "command", "command": "say bye", "timeout": 2}
    data["hooks"]["SessionEnd"][0]["hooks"].append(user)        # into cmem's own group
    data["hooks"]["Stop"].insert(0, {"hooks": [user]})         # a group of their own
    data["hooks"]["PostToolUse"] = [{"matcher": "Edit", "hooks": [user]}]
    write(path, data)
    assert uninstall_hooks(path) == [f"removed {event} hook" for event in HOOK_EVENTS]
    assert read(path) == {"hooks": {"SessionEnd": [{"hooks": [user]}],
                                    "Stop": [{"hooks": [user]}],
                                    "PostToolUse": [{"matcher": "Edit", "hooks": [user]}]}}


def test_uninstall_removes_cmem_hooks_under_any_event(path: Path) -> None:
    write(path, {"hooks": {"UserPromptSubmit": [{"hooks": [{"type": "command",
                                                          "command": "cmem hook prompt"}]}]}})
    assert uninstall_hooks(path) == ["removed UserPromptSubmit hook"]
    assert read(path) == {}


def test_uninstall_without_cmem_hooks_changes_nothing(path: Path) -> None:
    write(path, USER_SETTINGS)
    before = path.read_bytes()
    assert uninstall_hooks(path) == []
    assert path.read_bytes() == before  # not even reformatted


def test_uninstall_missing_file(path: Path) -> None:
    assert uninstall_hooks(path) == []
    assert not path.parent.exists()


# --- files we refuse to edit ---------------------------------------------------------------------

BROKEN = {
    "trailing comma": ('{\n  "model": "opus",\n}\n', "line 3, column 1"),
    "top level list": ("[]", "top level"),
    "top level string": ('"hooks"', "top level"),
    "hooks list": ('{"hooks": []}', '"hooks" is not an object'),
    "hooks null": ('{"hooks": null}', '"hooks" is not an object'),
    "event object": ('{"hooks": {"Stop": {"hooks": []}}}', '"hooks"."Stop" is not a list'),
    "other event string": ('{"hooks": {"PreToolUse": "audit.sh"}}', '"hooks"."PreToolUse"'),
}


@pytest.mark.parametrize("operation", ["install", "uninstall"])
@pytest.mark.parametrize("name", BROKEN)
def test_broken_settings_are_reported_and_left_alone(path: Path, name: str, operation: str) -> None:
    text, where = BROKEN[name]
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        install_hooks(path, PY) if operation == "install" else uninstall_hooks(path)
    assert str(path) in str(caught.value)
    assert where in str(caught.value)
    assert caught.value.hint and str(path) in caught.value.hint
    assert path.read_text() == text
    assert os.listdir(path.parent) == ["settings.json"]


def test_settings_that_are_not_utf8_are_left_alone(path: Path) -> None:
    path.parent.mkdir(parents=True)
    path.write_bytes(b'{"model": "\xff"}')
    with pytest.raises(SettingsError, match="UTF-8"):
        install_hooks(path, PY)
    assert path.read_bytes() == b'{"model": "\xff"}'


def test_unknown_shapes_below_an_event_are_kept(path: Path) -> None:
    odd: list[Any] = ["odd", {"hooks": "odd"}, {"matcher": "x"}, {"hooks": [7, {"type": "prompt"}]}]
    data = {"hooks": {"Stop": odd}}
    write(path, data)
    install_hooks(path, PY)
    assert read(path)["hooks"]["Stop"][:4] == data["hooks"]["Stop"]
    uninstall_hooks(path)
    assert read(path) == data
