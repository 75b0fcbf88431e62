"""One error base class; subclasses carry data, and the CLI boundary turns them into messages."""

from __future__ import annotations


class CmemError(Exception):
    """An expected failure: its message is for the user, `hint` says what to do next."""

    hint: str | None = None
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class UsageProblem(CmemError):
    """The command line names something that does not exist (a session, an event): exit 2,
    as for click's own usage errors, so scripts can tell "wrong question" from "failed"."""

    exit_code = 2


class NotInitialized(CmemError):
    hint = "run `cmem init` in the project"


class ConfigError(CmemError):
    def __init__(self, path: object, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"invalid config {where}: {message}", hint=f"fix or delete {path}")
        self.path = path
        self.line = line


class HookInputError(CmemError):
    """The JSON Claude Code gave a hook on stdin is unusable."""


class LockTimeout(CmemError):
    def __init__(self, path: object, seconds: float) -> None:
        super().__init__(f"{path} is held by another cmem process (waited {seconds:.1f} s)",
                         hint="try again; if no cmem is running, `cmem doctor --fix` clears it")
        self.path = path


class ConcurrentUpdate(CmemError):
    """The branch moved under us more often than the retry bound allows."""


class SettingsError(CmemError):
    pass


class StorageError(CmemError):
    """Writing objects or refs into the memory repository failed."""
