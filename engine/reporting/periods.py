"""Budget periods: a month, a quarter, a year or explicit dates, in the business time zone.

``"2027-03"`` is March 2027, ``"2027-Q1"`` the first quarter, ``"2027"`` the
year; ``{ start = 2027-01-15, end = 2027-02-14 }`` any span of whole days
(``end`` inclusive), also written ``"2027-01-15..2027-02-14"``. A period
knows the ones before and after it (for triggered campaigns planned from what
they did last period) and its length in months (for an ``expected_audience``
given per month).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.clock import local_instant

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    """Whole days ``start`` .. ``end`` (inclusive) with a label such as ``2027-Q1``."""

    label: str
    start: dt.date
    end: dt.date
    kind: str = "dates"  # month | quarter | year | dates

    @classmethod
    def parse(cls, spec: str | dict[str, Any]) -> Period:
        """A period from ``"2027-03"``, ``"2027-Q1"``, ``"2027"`` or ``{start, end}``, else ValueError."""
        if isinstance(spec, dict):
            unknown = set(spec) - {"start", "end"}
            if unknown or not {"start", "end"} <= set(spec):
                raise ValueError("explicit dates are { start = 2027-01-01, end = 2027-03-31 }")
            start, end = spec["start"], spec["end"]
            if (
                not isinstance(start, dt.date)
                or not isinstance(end, dt.date)
                or isinstance(start, dt.datetime)
                or isinstance(end, dt.datetime)
            ):
                raise ValueError("start and end are dates such as 2027-01-01")
            if end < start:
                raise ValueError(f"end {end} is before start {start}")
            return cls(f"{start}..{end}", start, end)
        text = str(spec).strip()
        if ".." in text:  # the label of explicit dates: 2027-01-15..2027-02-14
            begin, _, finish = text.partition("..")
            try:
                return cls.parse(
                    {"start": dt.date.fromisoformat(begin), "end": dt.date.fromisoformat(finish)}
                )
            except ValueError as exc:
                raise ValueError(f"{text!r} is not a period: {exc}") from exc
        if found := _QUARTER.match(text):
            year, quarter = int(found.group(1)), int(found.group(2))
            first = dt.date(year, 3 * quarter - 2, 1)
            return cls(f"{year}-Q{quarter}", first, _month_end(year, 3 * quarter), "quarter")
        if found := _MONTH.match(text):
            year, month = int(found.group(1)), int(found.group(2))
            if not 1 <= month <= 12:
                raise ValueError(f"{text!r}: there is no month {month}")
            return cls(text, dt.date(year, month, 1), _month_end(year, month), "month")
        if found := _YEAR.match(text):
            year = int(found.group(1))
            return cls(text, dt.date(year, 1, 1), dt.date(year, 12, 31), "year")
        raise ValueError(
            f"{text!r} is not a period: use 2027-03 (month), 2027-Q1 (quarter), 2027 (year) "
            "or { start = ..., end = ... }"
        )

    @classmethod
    def containing(cls, day: dt.date, kind: str = "quarter") -> Period:
        """The month, quarter or year that contains ``day``."""
        if kind == "month":
            return cls.parse(f"{day.year}-{day.month:02d}")
        if kind == "year":
            return cls.parse(str(day.year))
        return cls.parse(f"{day.year}-Q{(day.month - 1) // 3 + 1}")

    @property
    def days(self) -> int:
        """Number of days in the period."""
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same kind just before (same number of days for explicit dates)."""
        if self.kind in ("month", "quarter", "year"):
            return Period.containing(self.start - dt.timedelta(days=1), self.kind)
        end = self.start - dt.timedelta(days=1)
        start = end - dt.timedelta(days=self.days - 1)
        return Period(f"{start}..{end}", start, end)

    def following(self) -> Period:
        """The period of the same kind just after (same number of days for explicit dates)."""
        if self.kind in ("month", "quarter", "year"):
            return Period.containing(self.end + dt.timedelta(days=1), self.kind)
        start = self.end + dt.timedelta(days=1)
        end = start + dt.timedelta(days=self.days - 1)
        return Period(f"{start}..{end}", start, end)

    def months(self) -> Decimal:
        """Length in months: each calendar month counts the share of its days inside the period."""
        total = Decimal(0)
        day = self.start
        while day <= self.end:
            last_of_month = _month_end(day.year, day.month)
            last = min(last_of_month, self.end)
            total += Decimal((last - day).days + 1) / Decimal(last_of_month.day)
            day = last + dt.timedelta(days=1)
        return total

    def overlaps(self, other: Period) -> bool:
        """True when the two periods share a day."""
        return self.start <= other.end and other.start <= self.end

    def contains(self, day: dt.date) -> bool:
        """True when ``day`` is inside the period."""
        return self.start <= day <= self.end

    def bounds(self, zone: zoneinfo.ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
        """The UTC instants of local midnight at the start and after the end (exclusive)."""
        return (
            local_instant(self.start, dt.time(0), zone),
            local_instant(self.end + dt.timedelta(days=1), dt.time(0), zone),
        )


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])
