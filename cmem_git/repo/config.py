"""Per-device settings, read from `.claude/memory/cmem.yaml`.

The file sits in the memory folder but is never committed (see `paths.config_path`), so each machine
names itself and chooses its own hooks. It is read strictly on purpose (config_yaml.py): an unknown
or duplicate key, or a value of the wrong type, is a `ConfigError` naming the key and its line.

Every hook reads the settings, and loading yaml to parse them cost ~20 ms of a ~200 ms hook. So
what a parse found is kept in `.git/cmem/config.json` together with the whole text it was parsed
from, and used only when the file's text is that text exactly and the parser is the one that
wrote it (the stamp of its source files). Any other text, or a cache that is damaged, foreign or
from another parser, and the file is parsed again: a broken cmem.yaml is reported exactly as
without a cache, because only a file that parsed cleanly is ever kept.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import ConfigError
from ..git.lock import state_dir
from .events import HookEvent

# The device name goes into commit trailers and may name files: a leading '-' would read as a
# command-line option and a leading '.' as a hidden file.
_DEVICE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_CACHE = "config.json"
_CACHE_FORMAT = 1


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


def load_config(path: Path) -> Config:
    """The settings in `path`: defaults when the file is missing, empty or only comments."""
    text = _read(path)
    if text is None:
        return Config()
    cache = _cache_path(path)
    values = _cached(cache, text)
    if values is None:
        from . import config_yaml  # yaml, only when the cache does not hold this text

        values = config_yaml.parse(path, text)
        _keep(cache, text, values)
    return Config(**values)


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


def _cache_path(path: Path) -> Path | None:
    """Where the parsed file is kept: in the state folder of the repository it configures."""
    gitdir = path.parent / ".git"
    return state_dir(gitdir, create=False) / _CACHE if gitdir.is_dir() else None


def _stamp() -> list[object] | None:
    """Which parser a cache comes from: its format and the size and time of this module and
    config_yaml.py, so that a cmem that parses differently never takes an older one's word."""
    try:
        files = [os.stat(Path(__file__).with_name(name)) for name in ("config.py",
                                                                      "config_yaml.py")]
    except OSError:
        return None
    return [_CACHE_FORMAT] + [[f.st_size, f.st_mtime_ns] for f in files]


def _cached(cache: Path | None, text: str) -> dict[str, Any] | None:
    """What parsing `text` found, if the cache holds it; None for anything else."""
    if cache is None:
        return None
    try:
        kept = json.loads(cache.read_bytes())
        if kept["stamp"] != _stamp() or kept["text"] != text:
            return None
        return {name: _FROM_JSON[name](value) for name, value in kept["values"].items()}
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return None  # missing, damaged or foreign: parsed again (and kept again)


def _keep(cache: Path | None, text: str, values: dict[str, Any]) -> None:
    """Keep a clean parse for the next process; never fails the caller (it is only a cache)."""
    stamp = _stamp()
    if cache is None or stamp is None:
        return
    shown = {k: dataclasses.asdict(v) if isinstance(v, Events) else v for k, v in values.items()}
    try:
        state_dir(cache.parent.parent)
        write_atomic(cache, json.dumps({"stamp": stamp, "text": text, "values": shown}))
    except OSError:
        pass


def _json_number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _json_bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _json_str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _json_device(value: object) -> str:
    if not valid_device(_json_str(value)):
        raise ValueError(f"not a device name: {value!r}")
    return _json_str(value)


def _json_events(value: object) -> Events:
    if not isinstance(value, dict):
        raise TypeError(f"not a mapping: {value!r}")
    return Events(**{name: _json_bool(on) for name, on in value.items()})


# A cached value back to its field's type; a key or a type the parser would not give is an error.
_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "device": _json_device,
    "staleness_hours": _json_number,
    "memory_size_warning_kib": _json_number,
    "events": _json_events,
    "stop_throttle_minutes": _json_number,
    "auto_sync": _json_bool,
    "connect_timeout_seconds": _json_number,
    "network_timeout_seconds": _json_number,
    "redaction": _json_bool,
    "redaction_extra": lambda pairs: tuple((_json_str(n), _json_str(p)) for n, p in pairs),
    "redaction_allow": lambda items: tuple(_json_str(p) for p in items),
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
    import yaml

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
