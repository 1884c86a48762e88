"""The time: now in UTC, and a local day and hour as the UTC instant it is.

Every stored time is an aware UTC instant; a zone is used only to decide a
local day or hour. :func:`local_instant` is the one way a local wall time
becomes an instant: a wall time that does not exist (clocks jump forward)
moves later by the length of the jump (02:30 becomes 03:30, as java.time
does); a wall time that happens twice (clocks go back) is taken at its first
occurrence.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

UTC = dt.UTC


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


def local_instant(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of local ``time`` on ``day`` in ``zone``: a gap moves it later, an overlap: first."""
    naive = dt.datetime.combine(day, time)
    first = naive.replace(tzinfo=zone, fold=0)
    # inside a gap, fold=0 reads the time with the offset before the jump: the wall time plus the gap
    return first.astimezone(UTC)
