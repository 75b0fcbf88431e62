"""Times as users write them for `--since`, `--until` and `@{...}`: `N units ago`,
`yesterday`, `today`, `now`, and ISO dates with an optional time (UTC unless an offset is
given). The standard library only: `cmem log --since` and `cmem search --since` parse them
before anything loads pygit2.
"""

from __future__ import annotations

import datetime as dt
import re

from ..errors import CmemError

_AGO = re.compile(r"^(\d+)\s*(second|minute|min|hour|day|week|month|year)s?\s+ago$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "min": 60, "hour": 3600, "day": 86400,
                 "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}


class BadRevision(CmemError):
    hint = "see `cmem help revisions` for the forms cmem accepts"


def parse_time(text: str, now: float | None = None) -> float:
    """Seconds since the epoch for a git-style time: `2 hours ago`, `yesterday`, ISO dates."""
    now = dt.datetime.now(dt.timezone.utc).timestamp() if now is None else now
    phrase = text.strip().lower()
    match = _AGO.match(phrase)
    if match:
        return now - int(match[1]) * _UNIT_SECONDS[match[2]]
    midnight = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    named = {"now": now, "today": midnight, "yesterday": midnight - 86400}
    if phrase in named:
        return named[phrase]
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadRevision(f"cannot read {text!r} as a time",
                          hint="use e.g. '2 hours ago', 'yesterday' or '2026-11-20 14:00'"
                          ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.timestamp()
