"""README's commands, run as written, on a machine like a fresh Debian or Ubuntu (issue 12).

The "system" Python here is a copy of this interpreter's installation outside any virtualenv
(pip checks the marker only outside one), with an `EXTERNALLY-MANAGED` marker in its standard
library folder, as PEP 668 systems have: a plain `pip install` into it fails. pipx is installed
(and pip) into it beforehand, as the system's package manager would. The install commands are read from
README.md and run through `sh -c` in a project folder with a fresh HOME, so README and test
cannot drift apart.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MINIMAL_PATH, Project, payload, run_hook

from cmem_git.setup.settings import interpreter

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
_SKIP = {".git", ".venv", ".test-venv", "build", "dist", "bench", "__pycache__",
         ".pytest_cache", ".mypy_cache", ".hypothesis"}


def readme_commands(heading: str) -> list[str]:
    """The ```sh blocks of one README section, in order."""
    text = README.read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL)]


def test_ci_runs_readmes_test_command() -> None:
    (command,) = readme_commands("Run the tests")
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in lines


def test_ci_runs_ruff_and_mypy_after_the_tests() -> None:
    """What the code claims (types everywhere, the agreed lint rules) fails CI when broken, with
    the tools the `test` extras install and the settings pyproject.toml gives them."""
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    (command,) = readme_commands("Run the tests")
    after = lines[lines.index(command) + 1:]
    assert ".test-venv/bin/ruff check" in after
    assert ".test-venv/bin/python -m mypy" in after
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is not in Python 3.10)
    assert re.search(r"\[tool\.mypy\]\nstrict = true\n", pyproject)
    # Its own rule set, whatever a global ruff config on the machine says.
    assert re.search(r"\[tool\.ruff\.lint\]\n(#.*\n)*select = \[", pyproject)
    extras = re.search(r"\ntest = \[(.*)\]\n", pyproject)
    assert extras and '"mypy' in extras[1] and '"ruff' in extras[1]


@pytest.fixture(scope="module")
def system_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv-less Python with pipx and an EXTERNALLY-MANAGED marker; its bin folder."""
    prefix = tmp_path_factory.mktemp("system") / "usr"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = Path(sys.base_prefix)
    stdlib = prefix / "lib" / version
    (stdlib / "site-packages").mkdir(parents=True)
    for entry in (base / "lib" / version).iterdir():
        if entry.name not in ("site-packages", "EXTERNALLY-MANAGED"):
            (stdlib / entry.name).symlink_to(entry)
    (prefix / "bin").mkdir()
    # A copy, not a link: Python finds its prefix (and so this stdlib) next to its executable.
    shutil.copy2(base / "bin" / version, prefix / "bin" / version)
    (prefix / "bin" / "python3").symlink_to(version)
    python = prefix / "bin" / "python3"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target",
                    str(stdlib / "site-packages"), "pip", "pipx"], check=True,
                   capture_output=True)
    (prefix / "bin" / "pipx").write_text(f'#!/bin/sh\nexec {python} -m pipx "$@"\n')
    (prefix / "bin" / "pipx").chmod(0o755)
    (stdlib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=Use the system package manager (simulated by cmem's tests)\n")
    works = subprocess.run([str(python), "-m", "pipx", "--version"], capture_output=True)
    assert works.returncode == 0, works.stderr
    return prefix / "bin"


def _machine(tmp_path: Path, system: Path) -> tuple[dict[str, str], Path]:
    """A fresh HOME with the clone README names, and a project folder with a commit."""
    home = tmp_path / "home"
    shutil.copytree(ROOT, home / "src" / "cmem",
                    ignore=lambda _, names: [n for n in names if n in _SKIP
                                             or n.endswith(".egg-info")])
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('hi')\n")
    env = {k: v for k, v in os.environ.items()
           if k.startswith("PIP_") or k in ("LANG", "GIT_CONFIG_NOSYSTEM")}
    env.update(HOME=str(home), PATH=f"{system}:{MINIMAL_PATH}")
    env.update({k: v for k, v in os.environ.items() if k.startswith("GIT_")})
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "first"]):
        subprocess.run(["git", "-C", str(project), *args], check=True, env=env)
    return env, project


def test_plain_pip_install_is_refused_by_the_system_python(system_python: Path,
                                                           tmp_path: Path) -> None:
    """The simulation holds: what README said before (`pip install` into the system Python)
    fails here, as on Debian, Ubuntu or Homebrew."""
    env, _ = _machine(tmp_path, system_python)
    done = subprocess.run(["python3", "-m", "pip", "install", str(ROOT)], env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0 and "externally-managed-environment" in done.stderr


@pytest.mark.parametrize("which", [0, 1], ids=["pipx", "venv"])
def test_readmes_install_command_works_on_a_pep_668_system(system_python: Path, tmp_path: Path,
                                                           which: int) -> None:
    command = readme_commands("Install and set up (in your project)")[which]
    env, project = _machine(tmp_path, system_python)
    deep = project / "src"  # run from a subfolder: init finds the project
    done = subprocess.run(["sh", "-c", command], cwd=deep, env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"project: {project} (the top level of its git repository)" in done.stdout
    assert (project / ".claude" / "memory" / ".git").is_dir()
    home = Path(env["HOME"])
    local = json.loads((project / ".claude" / "settings.local.json").read_text())
    python = interpreter(local["hooks"]["Stop"][0]["hooks"][0]["command"])
    assert python is not None and python.startswith(str(home / ".local"))  # the tool's own virtualenv
    assert (home / ".claude" / "commands" / "resume-latest.md").is_file()
    status = subprocess.run(["git", "-C", str(project), "status", "--porcelain",
                             "--untracked-files=all"], capture_output=True, text=True, env=env)
    # nothing naming this machine; only the recall skill, a file the team may share
    assert status.stdout == "?? .claude/skills/cmem-recall/SKILL.md\n"

    # The hooks it wrote run as Claude Code runs them: minimal PATH, another folder.
    target = Project(project, home)
    sid = "1e2d3c4b-5a69-4877-8695-a4b3c2d1e0f9"
    transcript = target.transcripts / f"{sid}.jsonl"
    transcript.write_bytes((ROOT / "tests" / "data" / "corpus" / "spotter" / "short.jsonl")
                           .read_bytes())
    ran = run_hook(target, "SessionEnd", payload("SessionEnd", sid, transcript, project),
                   cwd=home)
    assert ran.returncode == 0 and ran.stderr == b"", ran.stderr
    assert f"Cmem-Session: {sid}" in target.git("log", "-1", "--format=%B")
    doctor = subprocess.run([python, "-m", "cmem_git", "doctor"], cwd=project,
                            env={**env, "PATH": MINIMAL_PATH}, capture_output=True, text=True)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
