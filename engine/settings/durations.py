"""Durations as config files write them: waits, lateness, backoffs, expiry (``30m``, ``1h``, ``7d``)."""

from __future__ import annotations

import datetime as dt
import re

_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` as a timedelta."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 1h, 7d, 2w)")
    return dt.timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
