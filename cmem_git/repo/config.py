"""Per-device settings, read from `.claude/memory/cmem.yaml`.

The file sits in the memory folder but is never committed (see `paths.config_path`), so each machine
names itself and chooses its own hooks. It is read strictly on purpose: a typo such as
`stop_throttle_minute:` or `stop: maybe` that quietly fell back to a default would change what the hooks
do without a word, so an unknown or duplicate key, or a value of the wrong type, is a `ConfigError`
naming the key and its line. The lines come from yaml's node tree (`compose`), whose nodes keep the
start marks that the plain dicts of `safe_load` lose. Only the safe loader is used: the file is data.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.reader import ReaderError

from ..atomic import write_atomic
from ..errors import ConfigError
from .events import HookEvent

# The device name goes into commit trailers and may name files: a leading '-' would read as a
# command-line option and a leading '.' as a hidden file.
_DEVICE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


def default_device() -> str:
    """The host's short name, with every character outside [A-Za-z0-9._-] turned into '-'."""
    short = socket.gethostname().split(".")[0]
    name = re.sub(r"[^A-Za-z0-9._-]", "-", short).lstrip("-")
    return name or "device"


def valid_device(name: str) -> bool:
    """Whether `name` can be a device name (for the CLI to check a name before `cmem init`)."""
    return _DEVICE.fullmatch(name) is not None


@dataclass(frozen=True)
class Events:
    """Which Claude Code hook events cmem acts on."""

    session_start: bool = True
    pre_compact: bool = True
    session_end: bool = True
    stop: bool = True
    subagent_stop: bool = True

    def enabled(self, event: HookEvent) -> bool:
        """Its switch; the fields are the table's `config_key`s (tests/test_events.py)."""
        return bool(getattr(self, event.config_key))


@dataclass(frozen=True)
class Config:
    """One device's settings; `Config()` is what a missing file means."""

    device: str = field(default_factory=default_device)
    staleness_hours: float = 24.0
    memory_size_warning_kib: float = 20.0
    events: Events = field(default_factory=Events)
    stop_throttle_minutes: float = 10.0
    auto_sync: bool = True
    # Seconds a fetch or push may wait for the remote to connect, then between two signs of
    # progress; past either, git is stopped and the sync fails naming the remote.
    connect_timeout_seconds: float = 30.0
    network_timeout_seconds: float = 30.0
    redaction: bool = True
    # (name, regex) the user adds to the built-in secret rules, and regexes never redacted.
    redaction_extra: tuple[tuple[str, str], ...] = ()
    redaction_allow: tuple[str, ...] = ()


class _Invalid(Exception):
    """A problem located at a node; `load_config` adds the file name."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1


class _WrongValue(Exception):
    """A value of the wrong shape; whoever knows the key turns it into `_Invalid`."""


_T = TypeVar("_T")
# Each parser returns its own field's type, which one table of parsers cannot spell: hence Any.
_Parser = Callable[[yaml.Node, yaml.SafeLoader], Any]


def load_config(path: Path) -> Config:
    """The settings in `path`: defaults when the file is missing, empty or only comments."""
    text = _read(path)
    return Config() if text is None else _parse(path, text)


def _read(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise ConfigError(path, line, f"not UTF-8 text ({bad}); save it as UTF-8") from exc


def _parse(path: Path, text: str) -> Config:
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters at once
    except ReaderError as exc:
        raise _reader_error(path, text, exc) from exc
    try:
        root = loader.get_single_node()
        # An empty document (`---` alone) is a null node: as empty as an empty file.
        return Config() if root is None or root.tag == _NULL_TAG else _config(root, loader)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(path, exc) from exc
    except _Invalid as exc:
        raise ConfigError(path, exc.line, str(exc)) from None
    finally:
        loader.dispose()


def _yaml_error(path: Path, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    message = ", ".join(part for part in (exc.context, exc.problem) if part) or str(exc)
    return ConfigError(path, mark.line + 1 if mark else None, message)


def _reader_error(path: Path, text: str, exc: ReaderError) -> ConfigError:
    line = text.count("\n", 0, exc.position) + 1
    return ConfigError(path, line, f"unacceptable character #x{exc.character:04x}: {exc.reason}")


def _config(root: yaml.Node, loader: yaml.SafeLoader) -> Config:
    try:
        entries = _entries(root, _FIELDS, "")
    except _WrongValue as exc:
        raise _Invalid(root, f"the top level {exc}") from None
    values = {name: _field(name, key, value, _FIELDS[name], loader) for name, key, value in entries}
    return dataclasses.replace(Config(), **values)


def _field(name: str, key: yaml.Node, value: yaml.Node,
           parse: Callable[[yaml.Node, yaml.SafeLoader], _T], loader: yaml.SafeLoader) -> _T:
    try:
        return parse(value, loader)
    except _WrongValue as exc:
        raise _Invalid(key, f"{name}: {exc}") from None


def _entries(node: yaml.Node, known: Collection[str],
             prefix: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    """The (name, key node, value node) of a mapping whose keys must all be in `known`, once."""
    if not isinstance(node, yaml.MappingNode):
        raise _WrongValue("must be a mapping of `key: value` lines")
    entries: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        name = _key_name(key, known, prefix)
        if name in entries:  # safe_load would keep the last one without a word
            raise _Invalid(key, f"duplicate key '{prefix}{name}'")
        entries[name] = (key, value)
    return [(name, key, value) for name, (key, value) in entries.items()]


def _key_name(key: yaml.Node, known: Collection[str], prefix: str) -> str:
    if not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
        shown = f", got {key.value!r}" if isinstance(key, yaml.ScalarNode) else ""
        raise _Invalid(key, f"expected a key name{shown}")
    name: str = key.value
    if name not in known:
        raise _Invalid(key, _unknown(name, known, prefix))
    return name


def _unknown(name: str, known: Collection[str], prefix: str) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean '{prefix}{close[0]}'?" if close else "known keys: " + ", ".join(
        prefix + k for k in known)
    return f"unknown key '{prefix}{name}' ({hint})"


def _boolean(node: yaml.Node, loader: yaml.SafeLoader) -> bool:
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, bool):
        raise _WrongValue(f"must be true or false, got {_describe(value)}")
    return value


def _number(node: yaml.Node, loader: yaml.SafeLoader) -> float:
    value = loader.construct_object(node, deep=True)
    # bool is an int subclass, and `true` for a number of hours is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value >= 0):
        raise _WrongValue(f"must be a number, 0 or more, got {_describe(value)}")
    return float(value)


def _device(node: yaml.Node, loader: yaml.SafeLoader) -> str:
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str) or not valid_device(value):
        raise _WrongValue("must be a name of letters, digits, '.', '_' and '-', not starting "
                          f"with '.' or '-', got {_describe(value)}")
    return value


def _patterns(node: yaml.Node, loader: yaml.SafeLoader) -> tuple[tuple[str, str], ...]:
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _WrongValue(f"must be a mapping of rule names to regexes, got {_describe(value)}")
    for pattern in value.values():
        _compiles(pattern)
    return tuple(value.items())


def _regex_list(node: yaml.Node, loader: yaml.SafeLoader) -> tuple[str, ...]:
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _WrongValue(f"must be a list of regexes, got {_describe(value)}")
    for pattern in value:
        _compiles(pattern)
    return tuple(value)


def _compiles(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as error:
        raise _WrongValue(f"invalid regex {pattern!r}: {error}") from None


def _events(node: yaml.Node, loader: yaml.SafeLoader) -> Events:
    entries = _entries(node, _EVENT_NAMES, "events.")
    values = {name: _field(f"events.{name}", key, value, _boolean, loader)
              for name, key, value in entries}
    return dataclasses.replace(Events(), **values)


def _describe(value: object) -> str:
    """A value as the user wrote it in YAML, near enough."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return "nothing" if value is None else repr(value)


_EVENT_NAMES = tuple(f.name for f in dataclasses.fields(Events))
_FIELDS: dict[str, _Parser] = {
    "device": _device,
    "staleness_hours": _number,
    "memory_size_warning_kib": _number,
    "events": _events,
    "stop_throttle_minutes": _number,
    "auto_sync": _boolean,
    "connect_timeout_seconds": _number,
    "network_timeout_seconds": _number,
    "redaction": _boolean,
    "redaction_extra": _patterns,
    "redaction_allow": _regex_list,
}

_DEFAULT_TEXT = """\
# cmem settings for this device. This file is not committed: each machine keeps its own.
# Unknown keys are errors, so a typo cannot silently fall back to a default.

# This machine's name in commits (the Cmem-Device trailer): letters, digits, '.', '_' and '-'.
device: {device}
# SessionStart warns when active-context.md has not changed for this many hours.
staleness_hours: 24
# SessionStart warns about memory files (e.g. active-context.md) larger than this many KiB.
memory_size_warning_kib: 20
# Which Claude Code hook events cmem acts on; false leaves that hook doing nothing.
events:
  # SessionStart: back up transcripts changed since their last backup, give Claude context.
  session_start: true
  # PreCompact: commit the transcript before compaction drops detail.
  pre_compact: true
  # SessionEnd: commit the transcript and record the exit in active-context.md.
  session_end: true
  # Stop: commit during long sessions, at most once per stop_throttle_minutes.
  stop: true
  # SubagentStop: commit during long turns of subagents, throttled as Stop is.
  subagent_stop: true
# Minutes that must pass between two commits made by the Stop (or SubagentStop) hook.
stop_throttle_minutes: 10
# With a remote (`cmem remote add`): SessionStart pulls and pushes, SessionEnd pushes in the
# background (it never waits on the network).
auto_sync: true
# Seconds `cmem sync` (and pull, push) waits for the remote to answer when connecting; past it,
# git is stopped and the sync fails. Hooks wait at most 8 s.
connect_timeout_seconds: 30
# Seconds a fetch or push may then go without any sign of progress before it is stopped.
network_timeout_seconds: 30
# Replace secrets (API keys, tokens, private keys, passwords in URLs, ...) in transcripts with
# [REDACTED:<rule>] before they are committed; the commit's Cmem-Redactions trailer counts them.
redaction: true
# More secret patterns to redact, by rule name: {{name: regex}}.
redaction_extra: {{}}
# Regexes for values that look like secrets but are not (never redacted).
redaction_allow: []
"""


def default_config_text(device: str) -> str:
    """The commented file `cmem init` writes; it loads back as `Config(device=device)`."""
    if not valid_device(device):
        raise ValueError(f"invalid device name {device!r}")
    # A name such as `true`, `null` or `1234` would load as another type unless quoted.
    plain = yaml.safe_load(device) == device
    return _DEFAULT_TEXT.format(device=device if plain else f'"{device}"')


def write_default_config(path: Path, device: str) -> bool:
    """Write the default file unless something is already at `path`; True if it was written."""
    if os.path.lexists(path):
        return False
    _write_private(path, default_config_text(device))
    return True


def _write_private(path: Path, text: str) -> None:
    """Temp file + rename, so a reader sees the old file or the whole new one. mkstemp creates
    the file 0600 whatever the umask: the file names the machine and is nobody else's business."""
    write_atomic(path, text, fsync=True)


def network_limits(config: Config, cap: float | None = None) -> tuple[float, float]:
    """(connect, idle) seconds for network calls, at least 1 s each, at most `cap`."""
    values = (config.connect_timeout_seconds, config.network_timeout_seconds)
    return tuple(max(1.0, min(v, cap) if cap else v) for v in values)  # type: ignore[return-value]
