"""cmem.yaml read strictly: yaml's node tree to the settings the file sets.

A typo such as `stop_throttle_minute:` or `stop: maybe` that quietly fell back to a default would
change what the hooks do without a word, so an unknown or duplicate key, or a value of the wrong
type, is a `ConfigError` naming the key and its line. The lines come from yaml's node tree
(`compose`), whose nodes keep the start marks that the plain dicts of `safe_load` lose. Only the
safe loader is used: the file is data. This is the only module that loads yaml for the settings:
config.py asks it only when its cache of the parsed file does not match the file's text.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.reader import ReaderError

from ..errors import ConfigError
from .config import Events, valid_device

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"


class _Invalid(Exception):
    """A problem located at a node; `parse` adds the file name."""

    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1


class _WrongValue(Exception):
    """A value of the wrong shape; whoever knows the key turns it into `_Invalid`."""


_T = TypeVar("_T")
# Each parser returns its own field's type, which one table of parsers cannot spell: hence Any.
_Parser = Callable[[yaml.Node, yaml.SafeLoader], Any]


def parse(path: Path, text: str) -> dict[str, Any]:
    """The settings `text` (the file at `path`) sets, by field name; the rest keep their defaults."""
    try:
        loader = yaml.SafeLoader(text)  # checks for unprintable characters at once
    except ReaderError as exc:
        raise _reader_error(path, text, exc) from exc
    try:
        root = loader.get_single_node()
        # An empty document (`---` alone) is a null node: as empty as an empty file.
        return {} if root is None or root.tag == _NULL_TAG else _values(root, loader)
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


def _values(root: yaml.Node, loader: yaml.SafeLoader) -> dict[str, Any]:
    try:
        entries = _entries(root, _FIELDS, "")
    except _WrongValue as exc:
        raise _Invalid(root, f"the top level {exc}") from None
    return {name: _field(name, key, value, _FIELDS[name], loader) for name, key, value in entries}


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
    import difflib  # only for a typo

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
