"""SQL pieces of the accrual: local days and instants computed in SQL the same way on both databases.

* :class:`LocalDays`: the programme's local day of an instant, in SQL, without
  time zones (SQLite has none): each offset change of the zone in the range is
  a span with its own UTC offset, so days are exact across DST;
* :func:`plus`: an instant plus a whole number of seconds.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Integer

from engine.loyalty.programme import Programme
from engine.sql import EpochSeconds, IntegerDivide, PlusSeconds

UTC = dt.UTC
DAY = 86_400
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class LocalDays:
    """The programme's local day of instants between ``earliest`` and ``latest``, as a day number in SQL.

    Day number = days from 1970-01-01 of the local date: ``(epoch + offset) / 86400``,
    where the zone's UTC offset is a ``CASE`` over the changes of offset in the
    span (listed by ``zoneinfo``), so SQLite (no time zones) and PostgreSQL
    agree with :meth:`Programme.local_day`. Valid for instants in ``[start, end)``:
    the local days from the earliest's to the latest's.
    """

    def __init__(self, programme: Programme, earliest: dt.datetime, latest: dt.datetime) -> None:
        self.programme = programme
        first, last = programme.local_day(aware(earliest)), programme.local_day(aware(latest))
        self.start = programme.day_start(first)
        self.end = programme.day_start(last + dt.timedelta(days=1))
        self.offsets = offset_changes(programme, self.start, self.end)

    def number(self, instant: ColumnElement[dt.datetime]) -> ColumnElement[int]:
        """The local day number of ``instant`` (a timestamp column)."""
        seconds = EpochSeconds(instant)
        local = _offset_of(seconds, self.offsets)
        return IntegerDivide((seconds + local).self_group(), sa.literal(DAY, Integer))


class LocalShift:
    """The same local time ``days`` calendar days later, in SQL, for instants from ``earliest`` to ``latest``.

    The SQL twin of :func:`engine.loyalty.programme.shift_days` (the return
    window and a rolling expiry in days): ``t`` moves by ``days x 86400 +
    offset(t) - offset'(w)`` seconds, where ``offset(t)`` is the zone's UTC
    offset at ``t`` and ``w = t + offset(t) + days x 86400`` the wall time it
    lands on, read as ``zoneinfo`` reads a wall time with ``fold=0``: with the
    offset before a change until the later of the change's two wall readings
    (a time in a gap moves later by the gap, a repeated time is its first
    occurrence). Both offsets are a ``CASE`` over the zone's changes in the
    span, so SQLite and PostgreSQL agree with Python to the microsecond.
    """

    def __init__(self, programme: Programme, earliest: dt.datetime, latest: dt.datetime, days: int) -> None:
        if days < 0:
            raise ValueError(f"a shift forward, got {days} days")
        self.days = days
        start = programme.day_start(programme.local_day(aware(earliest)) - dt.timedelta(days=1))
        end = programme.day_start(programme.local_day(aware(latest)) + dt.timedelta(days=days + 2))
        self.offsets = offset_changes(programme, start, end)

    def at(self, instant: ColumnElement[dt.datetime]) -> ColumnElement[dt.datetime]:
        """``instant`` (a timestamp column) ``days`` local days later."""
        if not self.days:
            return instant
        seconds = EpochSeconds(instant)
        offset = _offset_of(seconds, self.offsets)
        shift = sa.literal(self.days * DAY, Integer)
        wall = (seconds + offset + shift).self_group()
        (_, first), *changes = self.offsets
        read: ColumnElement[int] = sa.literal(first, Integer)
        if changes:
            whens = []
            for n in range(1, len(self.offsets)):
                at, after = self.offsets[n]
                before = self.offsets[n - 1][1]
                whens.append(
                    (wall < sa.literal(at + max(before, after), Integer), sa.literal(before, Integer))
                )
            read = sa.case(*whens, else_=sa.literal(changes[-1][1], Integer))
        return PlusSeconds(instant, (shift + offset - read).self_group())


def _offset_of(seconds: ColumnElement[int], offsets: list[tuple[int, int]]) -> ColumnElement[int]:
    """The zone's UTC offset at epoch second ``seconds``, a ``CASE`` over ``offsets``."""
    (_, first), *changes = offsets
    if not changes:
        return sa.literal(first, Integer)
    whens = [
        (seconds < sa.literal(at, Integer), sa.literal(before, Integer)) for at, before in _spans(offsets)
    ]
    return sa.case(*whens, else_=sa.literal(changes[-1][1], Integer))


def day_number(programme: Programme, instant: dt.datetime) -> int:
    """The Python twin of :meth:`LocalDays.number`."""
    return (programme.local_day(instant) - EPOCH.date()).days


def offset_changes(programme: Programme, start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
    """``[(epoch second from which, UTC offset in seconds), ...]`` of the programme's zone, start to end.

    The first item starts at ``start``; each next one at the exact second the offset changes.
    """

    def offset(second: int) -> int:
        instant = EPOCH + dt.timedelta(seconds=second)
        delta = instant.astimezone(programme.zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    low, high = int((start - EPOCH).total_seconds()), int((end - EPOCH).total_seconds())
    changes = [(low, offset(low))]
    step = 6 * 3600
    at = low
    while at < high:
        following = min(at + step, high)
        if offset(following) != changes[-1][1]:
            before, after = at, following  # offset(before) is the current one, offset(after) is not
            while after - before > 1:
                middle = (before + after) // 2
                before, after = (middle, after) if offset(middle) == changes[-1][1] else (before, middle)
            changes.append((after, offset(after)))
        at = following
    return changes


def _spans(changes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(end of span, offset in it) of every span but the last."""
    return [(changes[n + 1][0], changes[n][1]) for n in range(len(changes) - 1)]


def plus(instant: ColumnElement[dt.datetime], delta: dt.timedelta) -> ColumnElement[dt.datetime]:
    """``instant + delta`` (whole seconds) in SQL, stored like the engine stores times."""
    seconds = delta.total_seconds()
    if seconds != int(seconds):
        raise ValueError(f"{delta} is not a whole number of seconds")
    return instant if not seconds else PlusSeconds(instant, sa.literal_column(str(int(seconds))))


def aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
