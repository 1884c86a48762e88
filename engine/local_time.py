"""Contact policy in the customer's own time: frequency caps, quiet hours, calling windows, send-at times.

Everything is computed from aware UTC instants and an IANA zone, with
``zoneinfo``, so daylight-saving changes are handled: a local time that does
not exist (clocks jump forward) moves later by the length of the jump
(02:30 becomes 03:30, as java.time does); a local time that happens twice
(clocks go back) is taken at its first occurrence.

* ``Cap.parse("2/week")``: at most 2 contacts per calendar week (Monday to
  Sunday) in the customer's zone; ``cap.window_start(now, zone)`` is when the
  current window began, in UTC, so contacts since then can be counted.
* ``DailyWindow.parse("21:00-09:00")``: a window of local time that may wrap
  past midnight; ``contains`` and ``next_start`` / ``next_outside`` answer for an
  instant. Quiet hours are a window in which nothing is sent; a call window is
  one in which calls are made.
* ``local_instant(day, time, zone)``: "10:00 local for everyone" on a day.
* ``parse_duration("7d")``: waits, lateness and backoffs written as ``30m``, ``1h``, ``7d``, ``2w``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

UTC = dt.UTC
Period = Literal["day", "week", "month"]
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(day|week|month)\s*$")
_DURATION = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_duration(text: str) -> dt.timedelta:
    """``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` as a timedelta."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 1h, 7d, 2w)")
    return dt.timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def local_instant(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of local ``time`` on ``day`` in ``zone``: a gap moves it later, an overlap: first."""
    naive = dt.datetime.combine(day, time)
    first = naive.replace(tzinfo=zone, fold=0)
    # inside a gap, fold=0 reads the time with the offset before the jump: the wall time plus the gap
    return first.astimezone(UTC)


@dataclass(frozen=True)
class Cap:
    """At most ``count`` contacts per calendar ``period`` in the customer's zone."""

    count: int
    period: Period

    @classmethod
    def parse(cls, text: str) -> Cap:
        """``"2/week"``, ``"1/month"``, ``"3/day"``."""
        found = _CAP.match(text)
        if not found or int(found.group(1)) < 1:
            raise ValueError(f"{text!r} is not a frequency cap (e.g. 2/week, 1/month, 3/day)")
        return cls(int(found.group(1)), found.group(2))  # type: ignore[arg-type]

    def window_start(self, now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
        """When the current calendar period began for a customer in ``zone``, in UTC."""
        today = now.astimezone(zone).date()
        if self.period == "week":
            first = today - dt.timedelta(days=today.weekday())
        elif self.period == "month":
            first = today.replace(day=1)
        else:
            first = today
        return local_instant(first, dt.time(0), zone)


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
