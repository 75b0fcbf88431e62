"""The `cmem` group's commands, each module imported only when one of its commands is asked for.

Every command group module imports what its commands need at the top (pygit2, the store,
revisions), so importing them all made every command pay for all of them: ~170 ms of a warm
`cmem search` was start-up (issue 15). click's documented way out is a group whose
`get_command` imports on demand (a LazyGroup); here the laziness sits in the group's `commands`
mapping itself, which click reads through `get`, `in` and iteration only, so that everything
that reads it agrees: click's own `get_command` and "did you mean" suggestions, `cmem help`,
`--help` and shell completion (which list every command, and so load every module), and
tests that walk `cli.commands`. A module registers its commands with `@cli.command` as before,
which stores them here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping

import click


class LazyCommands(MutableMapping[str, click.Command]):
    """Commands by name; a name not registered yet loads its module (`package.module`) first."""

    def __init__(self, package: str, modules: Mapping[str, tuple[str, ...]]) -> None:
        self._loaded: dict[str, click.Command] = {}
        self._package = package
        self._module_of = {name: module for module, names in modules.items() for name in names}

    def _load(self, name: str) -> None:
        module = self._module_of.get(name)
        if module is not None and name not in self._loaded:
            importlib.import_module(f"{self._package}.{module}")

    def __getitem__(self, name: str) -> click.Command:
        self._load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        for name in list(self._module_of):
            self._load(name)
        return iter(list(self._loaded))

    def __len__(self) -> int:
        return sum(1 for _ in self)
