"""The package's layers, read from its imports (issue 17).

Ground first, commands last; a module may import its own layer and the ones before it, never a
later one, so the layers read bottom-up: git knows nothing of memory files, the memory
repository nothing of hooks, the domain nothing of the command line. Imports under
`if TYPE_CHECKING:` count too: a type names the layer it comes from.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cmem_git"
# Lowest first. Root modules are listed by name: errors, paths and atomic (file writes) are
# the ground every layer stands on; __main__ picks the hook dispatcher or the command line, so
# it comes last.
LAYERS = ["errors", "paths", "atomic", "git", "repo", "secrets", "capture", "read", "publish",
          "remote", "setup", "entry", "cli", "__main__"]
MAX_LINES = 420


def layer(module: str) -> str:
    """The layer of a dotted module under cmem_git ("git.repo" -> "git")."""
    return module.split(".")[0]


def modules() -> dict[str, Path]:
    found = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = file
    return found


def imported(module: str, file: Path) -> set[str]:
    """The cmem_git modules (dotted, without the package) that `module` imports."""
    package = module.split(".")[:-1] if file.name != "__init__.py" else module.split(".")
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
                names = [".".join(target + [a.name]) for a in node.names] if not node.module else []
                found.update(names or [".".join(target)])
            elif node.module and node.module.startswith("cmem_git."):
                found.add(node.module.removeprefix("cmem_git."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("cmem_git.") for a in node.names
                         if a.name.startswith("cmem_git."))
    return {name for name in found if name and layer(name) in LAYERS}


def test_every_module_is_in_a_layer() -> None:
    assert {layer(name) for name in modules()} <= set(LAYERS) | {"__init__"} | {""}


def test_no_import_goes_up_a_layer() -> None:
    upward = [f"{name} -> {target}" for name, file in modules().items()
              if layer(name) in LAYERS
              for target in imported(name, file)
              if LAYERS.index(layer(target)) > LAYERS.index(layer(name))]
    assert upward == []


def test_only_the_command_line_imports_click() -> None:
    importers = [name for name, file in modules().items()
                 if "import click" in file.read_text() and layer(name) != "cli"]
    assert importers == []


@pytest.mark.parametrize("name", sorted(modules()))
def test_no_module_is_past_the_size_where_it_reads_well(name: str) -> None:
    assert len(modules()[name].read_text().splitlines()) <= MAX_LINES


def test_every_layer_package_is_shipped() -> None:
    setuptools = (ROOT / "pyproject.toml").read_text().split("[tool.setuptools]", 1)[1]
    listed = re.findall(r'"([\w.]+)"', setuptools.split("packages = [", 1)[1].split("]", 1)[0])
    packages = {"cmem_git." + name for name, file in modules().items()
                if file.name == "__init__.py"}
    assert packages <= set(listed)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    """The rule above is not vacuous: a git module importing the memory repository is caught."""
    file = tmp_path / "repo.py"
    file.write_text("from ..repo.store import Store\nfrom . import trees\n")
    assert imported("git.repo", file) == {"repo.store", "git.trees"}
