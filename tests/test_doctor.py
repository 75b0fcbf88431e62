"""`cmem doctor`: every problem it names, created for real in a test project, then `--fix`.

Each test breaks an installation the way it breaks in practice (a virtualenv removed, a hook
deleted by hand, a cmem killed mid-write, a hook that failed, a commit made by another program)
and runs the installed `cmem doctor` as a user would. A problem that `--fix` can repair must be
gone afterwards (exit status 0); one it cannot repair keeps exit status 1 and says what to do.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import signal
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import CORPUS, PYTHON, Project, cmem, git, payload, run_hook

from cmem_git.setup.settings import HOOK_EVENTS, interpreter

SHORT = CORPUS / "spotter" / "short.jsonl"
HEALTHY = "everything is in order"


def doctor(project: Project | Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = project.root if isinstance(project, Project) else project
    done = cmem("doctor", *args, cwd=root)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def problems(done: subprocess.CompletedProcess[str]) -> dict[str, list[str]]:
    """check -> the problems doctor printed for it."""
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("problem ("):
            check, text = line[len("problem ("):].split("): ", 1)
            found.setdefault(check, []).append(text)
    return found


def assert_healthy_doctor(project: Project) -> None:
    done = doctor(project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith(HEALTHY), done.stdout
    assert problems(done) == {}


def assert_finds(project: Project | Path, check: str, *words: str) -> str:
    """Doctor reports exactly one kind of problem, `check`, mentioning `words`, with a hint."""
    done = doctor(project)
    assert done.returncode == 1, done.stdout + done.stderr
    found = problems(done)
    assert list(found) == [check], done.stdout
    text = "\n".join(found[check])
    for word in words:
        assert word in text, (word, done.stdout)
    assert "  hint: " in done.stdout, done.stdout
    assert HEALTHY not in done.stdout
    return done.stdout


def fix(project: Project) -> str:
    done = doctor(project, "--fix")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fixed: " in done.stdout and done.stdout.strip().endswith(HEALTHY), done.stdout
    return done.stdout


def git_status(project: Project) -> str:
    return project.git("status", "--porcelain")


def test_a_healthy_install_is_in_order(project: Project) -> None:
    assert_healthy_doctor(project)
    sid = "9e4a0f41-3d3e-4f30-9132-0000000d0c70"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    for event in ("SessionStart", "PreCompact", "SessionEnd"):
        ran = run_hook(project, event, payload(event, sid, transcript, project.root))
        assert ran.returncode == 0 and b"failed" not in ran.stdout + ran.stderr
    assert cmem("doc", "save", "-", cwd=project.root, input=b"# Doc\n").returncode == 0
    done = doctor(project, "--fix")  # nothing to fix: nothing done
    assert done.returncode == 0 and "fixed" not in done.stdout, done.stdout
    assert done.stdout.strip() == HEALTHY and problems(done) == {}


def test_no_repository(tmp_path: Path) -> None:
    root = tmp_path / "not set up"
    root.mkdir()
    assert_finds(root, "repository", "no memory repository")
    done = doctor(root, "--fix")
    assert done.returncode == 1 and "cmem init" in done.stdout, done.stdout
    assert not (root / ".claude").exists()  # --fix does not set cmem up behind the user's back


def test_invalid_config(project: Project) -> None:
    config = project.memory / "cmem.yaml"
    config.write_text(config.read_text() + "stop_throttle_minute: 5\n")
    line = config.read_text().splitlines().index("stop_throttle_minute: 5") + 1
    out = assert_finds(project, "config", "stop_throttle_minute", "cmem.yaml", str(line))
    before = config.read_bytes()
    done = doctor(project, "--fix")
    assert done.returncode == 1, done.stdout
    assert config.read_bytes() == before  # the user's file is reported, never rewritten
    assert problems(done) == problems(subprocess.CompletedProcess([], 1, out, ""))


def test_missing_hook_is_reinstalled_and_other_hooks_kept(project: Project) -> None:
    path = project.root / ".claude" / "settings.local.json"
    settings = json.loads(path.read_text())
    wanted = settings["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
    del settings["hooks"]["SessionEnd"]
    mine = {"hooks": [{"type": "command", "command": "echo my own hook"}]}
    settings["hooks"]["PreCompact"].insert(0, mine)
    settings["model"] = "opus"
    path.write_text(json.dumps(settings, indent=2))
    assert_finds(project, "hooks", "SessionEnd")
    fix(project)
    settings = json.loads(path.read_text())
    assert project.hook_command("SessionEnd") == wanted
    assert settings["hooks"]["PreCompact"][0] == mine and settings["model"] == "opus"


def test_hook_with_a_missing_interpreter_is_pointed_at_this_cmem(project: Project) -> None:
    path = project.root / ".claude" / "settings.local.json"
    text = path.read_text()
    gone = "/opt/removed-venv/bin/python"
    [python] = {interpreter(project.hook_command(event)) for event in HOOK_EVENTS}
    assert python is not None and python.startswith(PYTHON)
    path.write_text(text.replace(json.dumps(PYTHON)[1:-1], gone, 1))
    broken = [event for event in ("SessionStart", "PreCompact", "SessionEnd", "Stop")
              if gone in project.hook_command(event)]
    assert len(broken) == 1
    (event,) = broken
    sid = "9e4a0f41-3d3e-4f30-9132-0000000d0c71"
    transcript = project.transcripts / f"{sid}.jsonl"
    transcript.write_bytes(SHORT.read_bytes())
    assert run_hook(project, event, payload(event, sid, transcript, project.root)).returncode \
        == 127  # the shell cannot find the interpreter: the hook silently does nothing
    assert_finds(project, "hooks", event, "does not run", gone)
    fix(project)
    assert gone not in path.read_text()
    interpreters = {interpreter(project.hook_command(e)) or "" for e in
                    ("SessionStart", "PreCompact", "SessionEnd", "Stop")}
    assert len(interpreters) == 1 and Path(interpreters.pop()).is_file()
    done = run_hook(project, event, payload(event, sid, transcript, project.root))
    assert done.returncode == 0, done.stderr


def test_hook_an_earlier_cmem_installed_is_updated(project: Project) -> None:
    """Before Stop and SessionEnd were started by a shell line, their command was the plain
    one; it still works (the process forks itself), and doctor offers the faster one."""
    path = project.root / ".claude" / "settings.local.json"
    now = project.hook_command("Stop")
    python = interpreter(now) or ""
    old = f"{shlex.quote(python)} -m cmem_git hook stop"
    path.write_text(path.read_text().replace(json.dumps(now)[1:-1], json.dumps(old)[1:-1]))
    assert project.hook_command("Stop") == old
    assert_finds(project, "hooks", "Stop", "not the command this cmem installs", old)
    fix(project)
    assert project.hook_command("Stop") == now
    assert doctor(project).returncode == 0


@pytest.mark.parametrize("name", ["settings.json", "settings.local.json"])
def test_unreadable_settings_are_reported_not_repaired(project: Project, name: str) -> None:
    path = project.root / ".claude" / name
    path.write_text('{"hooks": {')
    assert_finds(project, "hooks", name)
    done = doctor(project, "--fix")
    assert done.returncode == 1
    assert path.read_text() == '{"hooks": {'


def test_missing_slash_command_is_installed_and_users_files_kept(project: Project) -> None:
    folder = project.home / ".claude" / "commands"
    installed = (folder / "coalesce.md").read_bytes()
    (folder / "coalesce.md").unlink()
    mine = b"# my own resume command\n"
    (folder / "resume-latest.md").write_bytes(mine)
    assert_finds(project, "commands", "coalesce.md")
    fix(project)
    assert (folder / "coalesce.md").read_bytes() == installed
    assert (folder / "resume-latest.md").read_bytes() == mine


def test_stale_lock_and_interrupted_write_are_cleared(project: Project) -> None:
    gitdir = project.memory / ".git"
    (gitdir / "cmem" / "writing").write_text("4242")  # a cmem that died holding the lock
    (gitdir / "index.lock").write_bytes(b"")
    done = subprocess.run(["git", "-C", str(project.memory), "add", "-A"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "index.lock" in done.stderr  # git itself is blocked
    assert_finds(project, "lock", "stale lock")
    fix(project)
    assert not (gitdir / "index.lock").exists() and not (gitdir / "cmem" / "writing").exists()
    assert git_status(project) == ""


def test_lock_held_by_a_live_cmem_is_not_stale(project: Project) -> None:
    gitdir = project.memory / ".git"
    fd = os.open(gitdir / "cmem" / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        (gitdir / "cmem" / "writing").write_text(str(os.getpid()))
        (gitdir / "index.lock").write_bytes(b"")
        done = doctor(project, "--fix")
        assert done.returncode == 0 and problems(done) == {}, done.stdout
        assert "fixed" not in done.stdout
        assert (gitdir / "index.lock").exists()  # a live writer's lock is never removed
    finally:
        os.close(fd)


_KILL_AFTER_COMMIT = textwrap.dedent("""\
    import os, signal, sys
    from cmem_git import cli
    from cmem_git.repo import store
    swap = store.Store._swap
    def moved(self, old, new):
        if swap(self, old, new):
            os.kill(os.getpid(), signal.SIGKILL)
        return False
    store.Store._swap = moved
    sys.exit(cli.main(sys.argv[1:]))
    """)


def test_cmem_killed_after_its_commit_is_found_and_finished(project: Project) -> None:
    killed = subprocess.run([PYTHON, "-c", _KILL_AFTER_COMMIT, "doc", "save", "-"],
                            cwd=project.root, input=b"# Killed\n", capture_output=True,
                            timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert git_status(project) != ""  # the branch moved, index and files did not
    done = doctor(project)
    assert done.returncode == 1
    assert set(problems(done)) == {"lock", "files"}, done.stdout
    fix(project)
    assert git_status(project) == ""
    assert (project.memory / "sessions").is_dir()


def test_pending_hook_errors(project: Project) -> None:
    sid = "9e4a0f41-3d3e-4f30-9132-0000000d0c72"
    missing = project.transcripts / f"{sid}.jsonl"  # never written: the hook cannot back it up
    done = run_hook(project, "PreCompact", payload("PreCompact", sid, missing, project.root))
    assert done.returncode == 0 and b"does not exist" in done.stdout
    assert_finds(project, "hook errors", "1 hook errors", "pre-compact", "does not exist")
    start = run_hook(project, "SessionStart",
                     payload("SessionStart", sid, missing, project.root))
    context = json.loads(start.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "does not exist" in context
    assert_healthy_doctor(project)


def test_index_behind_head(project: Project) -> None:
    """Another program (a `git` command, another machine's push into this repository) moved
    the branch without touching index and working files."""
    env = {**os.environ, "GIT_INDEX_FILE": str(project.memory / ".git" / "other-index")}

    def git(*args: str, input: str | None = None) -> str:
        done = subprocess.run(["git", "-C", str(project.memory), *args], input=input,
                              capture_output=True, text=True, env=env, check=True)
        return done.stdout.strip()

    text = (project.memory / "active-context.md").read_text() + "\nFROM-ELSEWHERE\n"
    blob = git("hash-object", "-w", "--stdin", input=text)
    git("read-tree", "HEAD")
    git("update-index", "--cacheinfo", f"100644,{blob},active-context.md")
    commit = git("commit-tree", git("write-tree"), "-p", "HEAD", "-m", "from elsewhere")
    git("update-ref", "refs/heads/main", commit)
    os.unlink(env["GIT_INDEX_FILE"])
    assert git_status(project) != ""
    assert_finds(project, "files", "1 files")
    fix(project)
    assert git_status(project) == ""
    assert "FROM-ELSEWHERE" in (project.memory / "active-context.md").read_text()


def test_project_repository_sees_the_memory(project: Project) -> None:
    exclude = project.root / ".git" / "info" / "exclude"
    lines = exclude.read_text().splitlines()
    assert "/.claude/memory/" in lines
    exclude.write_text("".join(f"{line}\n" for line in lines if line != "/.claude/memory/"))

    def ignored() -> bool:
        return subprocess.run(["git", "-C", str(project.root), "check-ignore", "-q",
                               ".claude/memory/active-context.md"]).returncode == 0

    assert not ignored()
    assert_finds(project, "project", ".claude/memory")
    fix(project)
    assert ignored()


def test_broken_repository(project: Project) -> None:
    blob = project.git("rev-parse", "HEAD:project-memory.md").strip()
    loose = project.memory / ".git" / "objects" / blob[:2] / blob[2:]
    loose.unlink()
    assert_finds(project, "repository", "fsck")
    assert doctor(project, "--fix").returncode == 1


def test_fix_repairs_several_problems_at_once(project: Project) -> None:
    path = project.root / ".claude" / "settings.local.json"
    settings = json.loads(path.read_text())
    del settings["hooks"]["Stop"]
    path.write_text(json.dumps(settings))
    (project.home / ".claude" / "commands" / "discard-backup.md").unlink()
    (project.memory / ".git" / "cmem" / "writing").write_text("4242")
    (project.memory / ".git" / "index.lock").write_bytes(b"")
    exclude = project.root / ".git" / "info" / "exclude"
    exclude.write_text(exclude.read_text().replace("/.claude/memory/\n", ""))
    done = doctor(project)
    assert done.returncode == 1
    assert set(problems(done)) == {"hooks", "commands", "lock", "project"}, done.stdout
    out = fix(project)
    assert out.count("fixed: ") == 4, out


def test_unreadable_repository_head_detached(project: Project) -> None:
    project.git("checkout", "-q", "--detach")
    assert_finds(project, "repository", "detached")
    project.git("checkout", "-q", "main")
    assert_healthy_doctor(project)


# --- issue 12: what a team, a claude-memory user or a moved install runs into ------------

def test_claude_memory_hooks_left_in_the_settings(project: Project) -> None:
    scripts = project.root / ".claude" / "hooks"
    scripts.mkdir()
    (scripts / "on-session-end.sh").write_text("cp \"$t\" .claude/memory/raw/\n")
    (scripts / "notify.sh").write_text("notify-send done\n")
    path = project.root / ".claude" / "settings.json"
    mine = {"hooks": [{"type": "command", "command": "bash .claude/hooks/notify.sh"}]}
    old = {"hooks": [{"type": "command", "command": "bash .claude/hooks/on-session-end.sh"}]}
    path.write_text(json.dumps({"hooks": {"SessionEnd": [old, mine]}}))
    before = path.read_bytes()
    assert_finds(project, "old hooks", "on-session-end.sh", str(path))
    out = fix(project)
    assert "settings.json.cmem-backup-" in out  # says what it changed, and where the copy is
    assert json.loads(path.read_text()) == {"hooks": {"SessionEnd": [mine]}}
    (copy,) = (project.root / ".claude").glob("settings.json.cmem-backup-*")
    assert copy.read_bytes() == before
    assert (scripts / "on-session-end.sh").is_file()


def test_cmem_hooks_in_the_shared_settings_are_moved(project: Project) -> None:
    local = project.root / ".claude" / "settings.local.json"
    shared = project.root / ".claude" / "settings.json"
    shared.write_text(json.dumps({"model": "opus", **json.loads(local.read_text())}))
    local.unlink()
    done = doctor(project)
    assert done.returncode == 1 and set(problems(done)) == {"hooks"}, done.stdout
    assert "which your team shares" in done.stdout
    fix(project)
    assert json.loads(shared.read_text()) == {"model": "opus"}
    assert set(json.loads(local.read_text())["hooks"]) == set(HOOK_EVENTS)


def test_memory_folder_tracked_by_the_project(project: Project) -> None:
    gitdir = project.memory / ".git"
    gitdir.rename(gitdir.with_name("aside"))  # as before `cmem init` made it a repository
    git(project.root, "add", "-f", ".claude/memory/active-context.md")
    git(project.root, "commit", "-qm", "committed by hand")
    gitdir.with_name("aside").rename(gitdir)
    out = assert_finds(project, "project", "tracks .claude/memory")
    command = f"git -C {shlex.quote(str(project.root))} rm -r --cached -- .claude/memory"
    assert command in out
    assert doctor(project, "--fix").returncode == 1  # the user's index is never changed
    assert git(project.root, "ls-files", ".claude/memory") != ""
    subprocess.run(shlex.split(command), check=True, capture_output=True)
    assert_healthy_doctor(project)


def test_slash_commands_pointing_at_a_removed_install(project: Project) -> None:
    folder = project.home / ".claude" / "commands"
    installed = {p.name: p.read_text() for p in folder.iterdir()}
    script = shlex.quote(str(Path(PYTHON).parent / "cmem"))
    for name, text in installed.items():
        (folder / name).write_text(text.replace(script, "/opt/removed-venv/bin/cmem"))
    assert_finds(project, "commands", "does not run", "/opt/removed-venv/bin/cmem")
    fix(project)
    assert {p.name: p.read_text() for p in folder.iterdir()} == installed


def test_slash_commands_an_earlier_cmem_put_in_the_project(project: Project) -> None:
    shared = project.root / ".claude" / "commands"
    shared.mkdir()
    user = project.home / ".claude" / "commands"
    for path in user.iterdir():
        path.rename(shared / path.name)
    (shared / "mine.md").write_text("# my own\n")
    done = doctor(project)
    assert set(problems(done)) == {"commands"} and "your team shares" in done.stdout, done.stdout
    out = fix(project)
    assert "removed " in out and "installed /coalesce" in out
    assert [p.name for p in shared.iterdir()] == ["mine.md"]
    assert len(list(user.iterdir())) == 4


def test_corrupt_index(project: Project) -> None:
    (project.memory / ".git" / "index").write_bytes(b"DIRC garbage")
    saved = cmem("doc", "save", "-", cwd=project.root, input=b"# Blocked\n")
    assert saved.returncode == 1
    said = saved.stderr.decode()
    assert "index" in said and "corrupt" in said and "cmem doctor --fix" in said, said
    assert "disk" not in said  # not taken for a full disk
    assert_finds(project, "index", "corrupt")
    fix(project)
    assert git_status(project) == ""
    assert cmem("doc", "save", "-", cwd=project.root, input=b"# Works\n").returncode == 0


def test_stale_ref_lock(project: Project) -> None:
    lock = project.memory / ".git" / "refs" / "heads" / "main.lock"
    lock.write_text("0" * 40 + "\n")  # git died while moving main
    saved = cmem("doc", "save", "-", cwd=project.root, input=b"# Blocked\n")
    assert saved.returncode == 1 and b"main.lock exists" in saved.stderr, saved.stderr
    assert_finds(project, "lock", "refs/heads/main.lock")
    out = fix(project)
    assert f"removed {lock}" in out
    assert cmem("doc", "save", "-", cwd=project.root, input=b"# Works\n").returncode == 0


def _in_read_only_mount(folder: Path, command: list[str]) -> list[str]:
    """`command` run where `folder` is a read-only mount: a private mount namespace (as root,
    or as anyone where user namespaces are allowed), else with write permission removed."""
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode == 0:
        mount = f"mount --bind -o ro {shlex.quote(str(folder))} {shlex.quote(str(folder))}"
        return ["unshare", "-rm", "sh", "-c", f"{mount} && exec {shlex.join(command)}"]
    assert os.geteuid() != 0, "root without mount namespaces cannot make a folder read-only"
    subprocess.run(["chmod", "-R", "a-w", str(folder)], check=True)
    return command


def test_read_only_repository(project: Project) -> None:
    script = str(Path(PYTHON).parent / "cmem")
    try:
        for args in (["doctor"], ["doctor", "--fix"]):
            done = subprocess.run(_in_read_only_mount(project.memory, [script, *args]),
                                  cwd=project.root, capture_output=True, text=True)
            assert done.returncode == 1, done.stdout + done.stderr
            assert set(problems(done)) == {"read-only"}, done.stdout + done.stderr
            assert "cannot write to" in done.stdout and "  hint: " in done.stdout
            assert HEALTHY not in done.stdout and "fixed" not in done.stdout
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(project.memory)], check=True)
    assert_healthy_doctor(project)


def test_core_worktree_pointing_elsewhere(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    project.git("config", "core.worktree", str(elsewhere))
    out = assert_finds(project, "repository", "core.worktree", str(elsewhere))
    command = f"git -C {shlex.quote(str(project.memory))} config --unset core.worktree"
    assert command in out
    status = cmem("status", cwd=project.root)
    assert status.returncode == 1 and b"core.worktree" in status.stderr
    assert list(elsewhere.iterdir()) == []  # nothing was written there
    assert doctor(project, "--fix").returncode == 1
    subprocess.run(shlex.split(command), check=True)
    assert_healthy_doctor(project)


def test_missing_commit_object(project: Project) -> None:
    head = project.git("rev-parse", "HEAD").strip()
    (project.memory / ".git" / "objects" / head[:2] / head[2:]).unlink()
    out = assert_finds(project, "repository", head, "missing")
    assert "KeyError" not in out
    status = cmem("status", cwd=project.root)
    assert status.returncode == 1, status.stderr  # a cmem error, not an internal one (3)
    assert f"the commit {head}".encode() in status.stderr and b"KeyError" not in status.stderr
