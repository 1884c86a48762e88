"""When campaigns fire: each campaign's trigger as a schedule in the business time zone.

A campaign's trigger becomes a small JSON-able *schedule* (a dict) that
:func:`build_trigger` turns into an APScheduler 3 trigger:

* ``schedule = "0 10 * * MON"``: ``{"kind": "cron", ...}``, read as classic
  crontab in the business zone between the campaign's start and end dates;
* ``at = 2026-03-02T12:00``: ``{"kind": "date", ...}``, once (a time without
  an offset is business time);
* ``on_segment_entry`` and ``on_event``: ``{"kind": "interval", ...}``, every
  few minutes (each run takes what happened since the previous one);
* ``anniversary``: a daily cron early in the business morning.

Two differences from APScheduler's own ``CronTrigger.from_crontab`` make
:class:`BusinessCronTrigger` read an expression as crontab does:

* numeric weekdays are crontab's (0 and 7 are Sunday, 1 is Monday);
  APScheduler 3 counts 0 as Monday;
* on the night clocks go back, a fixed local time (``"30 2 * * *"``) fires
  once, at its first occurrence (the engine's rule for a local time that
  happens twice); APScheduler fires it twice. Expressions with ``*`` in the
  minute or hour field (``"*/30 * * * *"``) keep running by the clock through
  the repeated hour, as cron does. A local time that does not exist (clocks
  jump forward) fires when the jump ends plus its offset into the gap
  (02:30 fires at 03:30), as :func:`engine.clock.local_instant` reads it.

Day of month and day of week, when both are restricted, must both match
(APScheduler's reading; classic cron fires when either does).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from engine.campaigns.definition import Campaign
from engine.clock import local_instant

UTC = dt.UTC
Schedule = dict[str, Any]
#: how often segment-entry and event campaigns look for what happened since their previous run
TRIGGER_EVERY = dt.timedelta(minutes=5)
#: when anniversary campaigns run each day, in business time
ANNIVERSARY_AT = dt.time(6, 0)

_WEEKDAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_TOKEN = re.compile(r"^(\*|[0-7a-z]{1,3}(?:-[0-7a-z]{1,3})?)(?:/(\d+))?$")


def _weekday_number(text: str) -> int:
    if text.isdigit():
        number = int(text)
        if number > 7:
            raise ValueError(f"day of week {text} is out of range (0-7, 0 and 7 are Sunday)")
        return number % 7
    if text in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES.index(text)
    raise ValueError(f"unknown day of week {text!r} (0-7 or sun, mon, tue, wed, thu, fri, sat)")


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (``1-5``, ``0,6``, ``MON``, ``*/2``) as APScheduler 3 reads it.

    Crontab counts Sunday as 0 (and 7); APScheduler 3 counts Monday as 0, so
    numbers are turned into names: ``"1-5"`` becomes ``"mon,tue,wed,thu,fri"``.
    """
    text = field.strip().lower()
    if text in ("*", "?"):
        return "*"
    days: set[int] = set()
    for token in text.split(","):
        found = _WEEKDAY_TOKEN.match(token)
        if not found:
            raise ValueError(f"day of week {token!r} is not crontab (e.g. 1-5, MON, sun,sat, */2)")
        base, step = found.group(1), int(found.group(2) or 1)
        if step < 1:
            raise ValueError(f"day of week {token!r}: the step must be at least 1")
        if base == "*":
            first, last = 0, 6
        elif "-" in base:
            low, high = base.split("-")
            first, last = _weekday_number(low), _weekday_number(high)
            if high == "7" or high == "sun":
                last = 7
            if last < first:
                raise ValueError(f"day of week range {base!r} runs backwards")
        else:
            first = last = _weekday_number(base)
        days.update(day % 7 for day in range(first, last + 1, step))
    monday_first = (*range(1, 7), 0)
    return ",".join(_WEEKDAY_NAMES[n] for n in monday_first if n in days)


class BusinessCronTrigger(CronTrigger):
    """A crontab schedule in one zone that fires a fixed local time once when clocks go back.

    ``by_the_clock`` (set for expressions with ``*`` in the minute or hour
    field) keeps both occurrences of the repeated hour, as cron does for
    jobs that run every few minutes or hours.
    """

    __slots__ = ("by_the_clock",)

    def __init__(self, *args: Any, by_the_clock: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_the_clock = by_the_clock

    @classmethod
    def from_crontab(
        cls,
        expr: str,
        timezone: ZoneInfo | str | None = None,
        *,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> BusinessCronTrigger:
        """``minute hour day month weekday`` as crontab reads it (Sunday is 0 and 7)."""
        values = expr.split()
        if len(values) != 5:
            raise ValueError(
                f"wrong number of fields: got {len(values)}, expected 5 (minute hour day month weekday)"
            )
        minute, hour, day, month, weekday = values
        return cls(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekday),
            start_date=start_date,
            end_date=end_date,
            timezone=timezone,
            by_the_clock="*" in minute or "*" in hour,
        )

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        fire: dt.datetime | None = super().get_next_fire_time(previous_fire_time, now)
        while fire is not None and not self.by_the_clock and _second_occurrence(fire):
            fire = super().get_next_fire_time(fire, fire)
        return fire

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state["by_the_clock"] = self.by_the_clock
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.by_the_clock = state.get("by_the_clock", False)


def _second_occurrence(local: dt.datetime) -> bool:
    """True when ``local`` is the second time its wall-clock time happens (the repeated hour)."""
    if not local.fold:
        return False
    return local.replace(fold=0).utcoffset() != local.utcoffset()


def _day_start(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    return local_instant(day, dt.time(0), zone)


def campaign_schedule(
    campaign: Campaign,
    zone: ZoneInfo,
    *,
    trigger_every: dt.timedelta = TRIGGER_EVERY,
    anniversary_at: dt.time = ANNIVERSARY_AT,
) -> Schedule:
    """The schedule of ``campaign`` (JSON-able; :func:`build_trigger` makes the trigger)."""
    start = _day_start(campaign.start, zone).isoformat()
    end = (
        (_day_start(campaign.end + dt.timedelta(days=1), zone) - dt.timedelta(microseconds=1)).isoformat()
        if campaign.end is not None
        else None
    )
    window = {"timezone": zone.key, "start": start, "end": end}
    if campaign.schedule is not None:
        return {"kind": "cron", "cron": campaign.schedule, **window}
    if campaign.at is not None:
        at = campaign.at if campaign.at.tzinfo is not None else campaign.at.replace(tzinfo=zone)
        return {"kind": "date", "at": at.astimezone(UTC).isoformat(), "timezone": zone.key}
    if campaign.anniversary is not None:
        cron = f"{anniversary_at.minute} {anniversary_at.hour} * * *"
        return {"kind": "cron", "cron": cron, **window}
    return {"kind": "interval", "seconds": int(trigger_every.total_seconds()), **window}


def every(interval: dt.timedelta, zone: ZoneInfo) -> Schedule:
    """A schedule that fires every ``interval`` from when it is added."""
    return {"kind": "interval", "seconds": int(interval.total_seconds()), "timezone": zone.key}


def _instant(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def build_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of ``schedule``; ValueError when it is not one."""
    kind = schedule.get("kind")
    zone = ZoneInfo(schedule.get("timezone", "UTC"))
    if kind == "cron":
        return BusinessCronTrigger.from_crontab(
            schedule["cron"],
            timezone=zone,
            start_date=_instant(schedule.get("start")),
            end_date=_instant(schedule.get("end")),
        )
    if kind == "date":
        return DateTrigger(run_date=dt.datetime.fromisoformat(schedule["at"]), timezone=zone)
    if kind == "interval":
        return IntervalTrigger(
            seconds=int(schedule["seconds"]),
            start_date=_instant(schedule.get("start")),
            end_date=_instant(schedule.get("end")),
            timezone=zone,
        )
    raise ValueError(f"unknown schedule kind {kind!r} (known: cron, date, interval)")


def _duration_text(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def describe(schedule: Schedule) -> str:
    """A short line for people: ``cron '0 10 * * MON' Europe/Moscow, 2026-12-01..2027-02-28``."""
    zone = ZoneInfo(schedule.get("timezone", "UTC"))
    kind = schedule.get("kind")
    if kind == "date":
        at = dt.datetime.fromisoformat(schedule["at"]).astimezone(zone)
        return f"once at {at:%Y-%m-%d %H:%M} {zone.key}"
    if kind == "cron":
        text = f"cron '{schedule['cron']}' {zone.key}"
    else:
        text = f"every {_duration_text(int(schedule['seconds']))}"
    start, end = _instant(schedule.get("start")), _instant(schedule.get("end"))
    if start is not None or end is not None:
        first = f"{start.astimezone(zone):%Y-%m-%d}" if start else ""
        last = f"{end.astimezone(zone):%Y-%m-%d}" if end else ""
        text += f", {first}..{last}"
    return text


def fire_times(trigger: BaseTrigger, after: dt.datetime, until: dt.datetime) -> Iterator[dt.datetime]:
    """Every time ``trigger`` fires from ``after`` (inclusive) up to ``until`` (inclusive), in UTC."""
    fire = trigger.get_next_fire_time(None, after)
    while fire is not None and fire <= until:
        if fire >= after:  # a one-off answers with its time even when that has passed
            yield fire.astimezone(UTC)
        fire = trigger.get_next_fire_time(fire, fire)
