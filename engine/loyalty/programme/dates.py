"""The programme's calendar: every date the ledger derives from when points were earned.

All of them start from the **local date and time of the instant in the
programme's zone**, whatever zone the instant was given in (a UTC instant and
the same instant in Moscow time give the same dates):

* **days and weeks** (``pending_days``, ``expiry = "365d"``, ``"2w"``,
  ``tier_window = "365d"``) are calendar days: the same local time that many
  days later (or earlier). A lot earned on 28 March at 10:00 in Berlin with a
  14-day return window becomes spendable on 11 April at 10:00 Berlin time,
  although the clocks changed in between (13 days and 23 hours later). A local
  time that does not exist on the day it lands (clocks jump forward) moves
  later by the jump (02:30 becomes 03:30); one that happens twice is taken at
  its first occurrence (:func:`engine.clock.local_instant`);
* **hours and minutes** (``"36h"``, ``"90m"``) are exact durations;
* **a calendar expiry** (``end_of_month``, ``end_of_quarter``, ``end_of_year``)
  ends the period that contains the local earn date plus ``expiry_after``, a
  lag of whole days or weeks (``"30d"``, ``"2w"``) or of calendar months or
  years (``"1mo"``, ``"1y"``; a month later than 31 January is the last day of
  February). Points earned on 31 January with ``end_of_month`` and a lag of
  ``"1mo"`` expire at the end of February (midnight starting 1 March, local);
  with ``end_of_year`` and ``"1y"``, points earned any day of 2026 expire at
  the end of 2027. A lag in hours or minutes is refused: ``"12m"`` is twelve
  minutes, not twelve months.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from engine.clock import local_instant
from engine.settings import calendar_days, parse_duration

UTC = dt.UTC


def shift_days(instant: dt.datetime, days: int, zone: ZoneInfo) -> dt.datetime:
    """The same local time ``days`` calendar days later (earlier when negative) in ``zone``, as UTC."""
    if instant.tzinfo is None:
        raise ValueError(f"naive time {instant.isoformat()} refused: the ledger's times are aware")
    local = instant.astimezone(zone)
    return local_instant(local.date() + dt.timedelta(days=days), local.time(), zone)


def shifted(instant: dt.datetime, duration: str, zone: ZoneInfo, *, sign: int = 1) -> dt.datetime:
    """``instant`` moved by ``duration``: calendar days for ``d`` and ``w``, exact for ``h`` and ``m``."""
    days = calendar_days(duration)
    if days is not None:
        return shift_days(instant, sign * days, zone)
    if instant.tzinfo is None:
        raise ValueError(f"naive time {instant.isoformat()} refused: the ledger's times are aware")
    # exact: in UTC (adding to a zone-aware time would add to its wall clock instead)
    return instant.astimezone(UTC) + sign * parse_duration(duration)
