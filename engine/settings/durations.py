"""Durations as config files write them: waits, lateness, backoffs, expiry (``30m``, ``1h``, ``7d``).

Two grammars:

* a **duration** (:func:`parse_duration`): ``30m`` (minutes), ``1h``, ``7d``, ``2w``;
* a **calendar lag** (:func:`parse_lag`, the lag of a calendar expiry): whole
  days or weeks (``30d``, ``2w``) or calendar months or years (``1mo``, ``1y``).
  Minutes and hours are not lags: ``12m`` is twelve minutes, never twelve months.

Both are the one door for durations and are capped there (:mod:`engine.settings.limits`):
a duration or a lag in days at most 3650 days, a lag in months at most 120 (``10y``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from engine.settings.limits import MAX_DAYS, MAX_DURATION, MAX_LAG_MONTHS

_DURATION = re.compile(r"^\s*(\d{1,30})\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_CALENDAR_UNIT = re.compile(r"^\s*(\d{1,30})\s*(d|w)\s*$")
_LAG = re.compile(r"^\s*(\d{1,30})\s*(d|w|mo|y)\s*$")
_DAYS = {"d": 1, "w": 7}
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}
_TOO_LONG = f"longer than {MAX_DAYS} days (ten years), the longest duration"


def parse_duration(text: str) -> dt.timedelta:
    """``"30m"``, ``"1h"``, ``"7d"``, ``"2w"`` as a timedelta, at most 3650 days; ValueError otherwise."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if not found:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 1h, 7d, 2w)")
    number, unit = int(found.group(1)), found.group(2)
    if number * _MINUTES[unit] > MAX_DURATION // dt.timedelta(minutes=1):
        raise ValueError(f"{text!r} is {_TOO_LONG}")
    return dt.timedelta(**{_UNITS[unit]: number})


@dataclass(frozen=True)
class Lag:
    """A calendar lag: whole days, or whole months (a year is twelve)."""

    days: int = 0
    months: int = 0

    def after(self, day: dt.date) -> dt.date:
        """``day`` plus the lag (a month later than 31 January is 28 or 29 February)."""
        return add_months(day, self.months) + dt.timedelta(days=self.days)

    def before(self, day: dt.date) -> dt.date:
        """The first day ``d`` with ``self.after(d) >= day``, for ``day`` the first of a month."""
        return add_months(day - dt.timedelta(days=self.days), -self.months)


def parse_lag(text: str) -> Lag:
    """``"30d"``, ``"2w"``, ``"1mo"``, ``"1y"`` as a :class:`Lag`; ValueError for anything else."""
    found = _LAG.match(text) if isinstance(text, str) else None
    if not found:
        raise ValueError(
            f"{text!r} is not a calendar lag: whole days, weeks, months or years (e.g. 30d, 2w, 1mo, 1y)"
        )
    number, unit = int(found.group(1)), found.group(2)
    if unit in _DAYS:
        if number * _DAYS[unit] > MAX_DAYS:
            raise ValueError(f"{text!r} is {_TOO_LONG}")
        return Lag(days=number * _DAYS[unit])
    months = number * (12 if unit == "y" else 1)
    if months > MAX_LAG_MONTHS:
        raise ValueError(f"{text!r} is longer than {MAX_LAG_MONTHS} months (ten years), the longest lag")
    return Lag(months=months)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months, clamped to the last day of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    following = dt.date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1)
    last = (following - dt.timedelta(days=1)).day
    return dt.date(year, month + 1, min(day.day, last))


def calendar_days(text: str) -> int | None:
    """The days of a duration written in days or weeks (``"365d"``, ``"2w"``); None for hours or minutes.

    ValueError for more than 3650 days, as :func:`parse_duration`.
    """
    found = _CALENDAR_UNIT.match(text)
    if not found:
        return None
    days = int(found.group(1)) * _DAYS[found.group(2)]
    if days > MAX_DAYS:
        raise ValueError(f"{text!r} is {_TOO_LONG}")
    return days
