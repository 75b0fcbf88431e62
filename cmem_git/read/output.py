"""Text for a terminal or a pipe: colour only on a terminal and never with NO_COLOR set, times
relative on a terminal and exact in a pipe (where scripts read them)."""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from typing import TextIO

_COLOURS = {"yellow": 33, "green": 32, "cyan": 36, "red": 31, "dim": 2, "bold": 1}


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def colour_enabled(stream: TextIO | None = None) -> bool:
    return is_terminal(stream) and not os.environ.get("NO_COLOR") and \
        os.environ.get("TERM") != "dumb"


def paint(text: str, colour: str, enabled: bool) -> str:
    return f"\x1b[{_COLOURS[colour]}m{text}\x1b[0m" if enabled else text


def age(seconds: float) -> str:
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def when(timestamp: float, relative: bool) -> str:
    if relative:
        return f"{age(time.time() - timestamp)} ago"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
