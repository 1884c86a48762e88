"""Frequency caps: at most so many contacts per calendar day, week or month in the customer's own zone.

``Cap.parse("2/week")`` is at most 2 contacts per calendar week (Monday to
Sunday) in the customer's zone; ``cap.window_start(now, zone)`` is when the
current window began, in UTC, so contacts since then can be counted. Times
are aware UTC instants and IANA zones (``zoneinfo``), so daylight-saving
changes are handled (:func:`engine.clock.local_instant`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from engine.clock import local_instant

Period = Literal["day", "week", "month"]
_CAP = re.compile(r"^\s*(\d+)\s*/\s*(day|week|month)\s*$")


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
