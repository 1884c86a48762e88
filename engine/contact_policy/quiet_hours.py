"""Quiet hours and calling windows: a window of local time each day, in the customer's own zone.

``DailyWindow.parse("21:00-09:00")`` is a window of local time that may wrap
past midnight; ``contains`` and ``next_start`` / ``next_outside`` answer for an
instant. Quiet hours are a window in which nothing is sent; a calling window
is one in which calls are made. Times are aware UTC instants and IANA zones
(``zoneinfo``), so daylight-saving changes are handled
(:func:`engine.clock.local_instant`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from engine.clock import local_instant

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class DailyWindow:
    """A window of local time each day, ``start``-``end``; it wraps past midnight when end <= start."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> DailyWindow:
        """``"10:00-19:00"`` or ``"21:00-09:00"``."""
        found = _WINDOW.match(text)
        if not found:
            raise ValueError(f"{text!r} is not a time window (e.g. 10:00-19:00)")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"{text!r} is not a time window (hours 00-24, minutes 00-59)")
        end = dt.time(0) if h2 == 24 else dt.time(h2, m2)
        if dt.time(h1, m1) == end:
            raise ValueError(f"{text!r} is empty: start and end are the same")
        return cls(dt.time(h1, m1), end)

    @property
    def wraps(self) -> bool:
        """True when the window runs past midnight (``21:00-09:00``)."""
        return self.end <= self.start

    def contains(self, instant: dt.datetime, zone: ZoneInfo) -> bool:
        """Whether ``instant`` falls inside the window in ``zone``."""
        local = instant.astimezone(zone).time()
        if self.wraps:
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def next_start(self, instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """The first instant at or after ``instant`` inside the window (``instant`` itself when inside)."""
        if self.contains(instant, zone):
            return instant
        day = instant.astimezone(zone).date()
        for offset in range(3):
            candidate = local_instant(day + dt.timedelta(days=offset), self.start, zone)
            if candidate >= instant:
                return candidate
        raise AssertionError("a daily window starts within three days")  # pragma: no cover

    def next_outside(self, instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """The first instant at or after ``instant`` outside the window (when quiet hours end)."""
        if not self.contains(instant, zone):
            return instant
        day = instant.astimezone(zone).date()
        for offset in range(3):
            candidate = local_instant(day + dt.timedelta(days=offset), self.end, zone)
            if candidate > instant and not self.contains(candidate, zone):
                return candidate
        raise AssertionError("a daily window ends within three days")  # pragma: no cover
