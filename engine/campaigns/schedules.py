"""When campaigns fire: each campaign's trigger as a schedule in the business time zone.

A campaign's trigger becomes a small JSON-able *schedule* (a dict) that
:func:`build_trigger` turns into an APScheduler 3 trigger:

* ``schedule = "0 10 * * MON"``: ``{"kind": "cron", ...}``, read as Debian
  cron reads a crontab, in the business zone, between the campaign's start
  and end dates (:class:`BusinessCronTrigger`);
* ``at = 2026-03-02T12:00``: ``{"kind": "date", ...}``, once (a time without
  an offset is business time);
* ``on_segment_entry`` and ``on_event``: ``{"kind": "interval", ...}``, every
  few minutes (each run takes what happened since the previous one);
* ``anniversary``: a daily cron early in the business morning.

Every cron firing (campaign schedules, anniversaries, loyalty batches, the
scheduler, ``crm plan``, the budget) is computed by
:class:`BusinessCronTrigger`, which asks `cronsim <https://github.com/cuu508/cronsim>`_
and keeps APScheduler's trigger interface. The rules (docs/scheduler.md has
them with examples):

* a *fixed time* (neither the minute nor the hour field starts with ``*``:
  ``"30 2 * * *"``, ``"0 9,17 * * 1-5"``) is a local wall time. One that the
  clocks skip (spring forward) fires once, at the change: 02:30 in a
  02:00 -> 03:00 gap fires at 03:00, and several fixed times in one gap fire
  once. One that happens twice (fall back) fires once, at its first occurrence;
* a schedule whose minute or hour field starts with ``*`` (``"*/15 * * * *"``,
  ``"30 */2 * * *"``) follows the clock: it fires at every instant whose local
  wall time matches, so twice in a repeated hour and never in a skipped one;
* day of month and day of week, when both are restricted, fire on a day that
  matches either; when either field starts with ``*`` both must match (Debian
  cron). Weekdays 0 and 7 are Sunday.

cronsim computes fixed times on the local wall clock. Its own search for
clock-following schedules steps hours in UTC, which where clocks change off
the hour (Lord Howe's 30-minute step, Chatham at 02:45) skips quarter hours,
and on a day that starts in a gap can answer the skipped midnight; so those
are asked of cronsim on the wall clock of one stretch of constant UTC offset
at a time. tests/campaigns/test_cron_reference.py checks both against a
reference in every zone.

APScheduler 3's own ``CronTrigger`` adds wall-clock differences in UTC when
it moves to the next day or month (agronholm/apscheduler#529, #606), so on
the night clocks change at midnight it skipped a daily or monthly run
altogether; it is used no more. Jobs stored with the earlier trigger (a
``CronTrigger`` state) are read back into this one (:meth:`BusinessCronTrigger.__setstate__`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo

from cronsim import CronSim, CronSimError

from engine.campaigns.definition import Campaign
from engine.clock import local_instant

if TYPE_CHECKING:  # APScheduler is imported where triggers are built: reading campaigns needs none of it
    from apscheduler.triggers.base import BaseTrigger

UTC = dt.UTC
Schedule = dict[str, Any]
#: how often segment-entry and event campaigns look for what happened since their previous run
TRIGGER_EVERY = dt.timedelta(minutes=5)
#: when anniversary campaigns run each day, in business time
ANNIVERSARY_AT = dt.time(6, 0)

#: the five fields of a crontab expression, as messages name them, and what each takes
_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-7 (0 and 7 are Sunday) or sun-sat"),
)
_ONE_MICROSECOND = dt.timedelta(microseconds=1)
_SOME_DAY = dt.datetime(2000, 1, 1, tzinfo=UTC)
#: APScheduler 3's weekday numbers (Monday is 0), for jobs stored with its CronTrigger
_APSCHEDULER_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def crontab_expression(expression: str) -> str:
    """``expression`` checked as a five-field crontab expression; ValueError says which field is wrong.

    Fields are what Debian cron takes: numbers, names (``jan``, ``MON``),
    ranges (``1-5``), lists (``sat,sun``), steps (``*/15``, ``10-40/10``) and
    ``*``; cronsim's extensions are taken too (``L`` and ``LW`` in the day of
    month, ``5L`` and ``MON#2`` in the day of week). ``?`` in the
    day-of-week field means ``*`` and ``last`` in the day-of-month field means
    ``L`` (both were accepted before cronsim). Returns the expression with
    those two spelled as cronsim reads them, fields separated by one space.
    An expression whose fields are good but whose day no month has
    (``"0 10 31 2 *"``) is returned too: it never fires.
    """
    values = expression.split()
    if len(values) != 5:
        raise ValueError(
            f"wrong number of fields: got {len(values)}, expected 5 (minute hour day month weekday)"
        )
    if values[4] == "?":
        values[4] = "*"
    values[2] = ",".join("L" if term.lower() == "last" else term for term in values[2].split(","))
    text = " ".join(values)
    if _cronsim(text, _SOME_DAY) is not None:
        return text
    for n, ((name, allowed), value) in enumerate(zip(_FIELDS, values, strict=True)):
        alone = ["*"] * 5
        alone[n] = value
        if _cronsim(" ".join(alone), _SOME_DAY) is None:
            raise ValueError(
                f"{name} {value!r} is not crontab: expected {allowed}, a list (1,15), "
                "a range (1-5), a step (*/15, 10-40/10) or *"
            )
    return text  # every field is good, but no month has the day: it never fires


def _cronsim(expression: str, start: dt.datetime) -> CronSim | None:
    """cronsim's iterator from ``start``; None when it refuses the expression.

    Its fields checked one by one (:func:`crontab_expression`), cronsim still
    refuses a day of month that no month of the expression has (``"0 10 31 2 *"``):
    such a schedule never fires, which campaign files are told as that.
    """
    try:
        return CronSim(expression, start)
    except CronSimError:
        return None


def follows_the_clock(expression: str) -> bool:
    """True when the minute or the hour field starts with ``*``: the schedule fires by the clock.

    Such a schedule fires at every instant whose local wall time matches (twice
    in a repeated hour, never in a skipped one); any other is a fixed local
    time, fired once when the clocks skip or repeat it (Debian cron's rule,
    which cronsim follows).
    """
    minute, hour = expression.split()[:2]
    return minute.startswith("*") or hour.startswith("*")


def _aware_utc(value: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


class BusinessCronTrigger:
    """A crontab expression in one zone, between optional start and end instants (inclusive).

    An APScheduler 3 trigger: :meth:`get_next_fire_time` answers as
    APScheduler's own triggers do, and the scheduler stores the trigger
    pickled in its job store (so the class keeps this name and module). Next
    firings come from cronsim; the module docstring states the rules for
    fixed times, clock-following schedules and days.
    """

    __slots__ = ("by_the_clock", "end_date", "expression", "start_date", "timezone")

    def __init__(
        self,
        expression: str,
        timezone: ZoneInfo | str,
        *,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> None:
        self.timezone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
        self.expression = crontab_expression(expression)
        self.by_the_clock = follows_the_clock(self.expression)
        self.start_date = _aware_utc(start_date, self.timezone)
        self.end_date = _aware_utc(end_date, self.timezone)

    @classmethod
    def from_crontab(
        cls,
        expr: str,
        timezone: ZoneInfo | str,
        *,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> BusinessCronTrigger:
        """``minute hour day month weekday`` as Debian cron reads it, in ``timezone``; ValueError if not."""
        return cls(expr, timezone, start_date=start_date, end_date=end_date)

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        """The next firing (UTC), or None when there is none before the end date.

        With ``previous_fire_time``: the first firing strictly after it, even
        when that has passed (so the scheduler sees every firing it missed);
        without: the first at or after ``now``. Never before the start date.
        """
        if previous_fire_time is not None:
            after = previous_fire_time.astimezone(UTC) + _ONE_MICROSECOND
        else:
            after = now.astimezone(UTC)
        if self.start_date is not None:
            after = max(after, self.start_date)
        fire = self.first_at_or_after(after)
        if fire is None or (self.end_date is not None and fire > self.end_date):
            return None
        return fire

    def first_at_or_after(self, instant: dt.datetime) -> dt.datetime | None:
        """The first firing at or after ``instant`` (aware), in UTC, ignoring start and end dates."""
        instant = instant.astimezone(UTC)
        if self.by_the_clock:
            return self._by_the_clock(instant)
        # cronsim works on the local wall clock: a time the clocks skip becomes the first minute
        # after the gap, a repeated one its first occurrence (fold=0); it answers strictly after
        # the whole second it starts from, and firings fall on whole minutes
        start = (instant - _ONE_MICROSECOND).astimezone(self.timezone)
        for candidate in _cronsim(self.expression, start) or ():
            fire = candidate.astimezone(UTC)
            # asked from inside a repeated hour, a time's first occurrence may lie before ``instant``
            if fire >= instant:
                return fire
        return None

    def _by_the_clock(self, instant: dt.datetime) -> dt.datetime | None:
        # cronsim's own by-the-clock search steps hours in UTC and, where clocks change at a
        # time off the hour (Lord Howe's 30-minute step, Chatham's 02:45), steps over quarter
        # hours, and it can answer a midnight the clocks skip (Azores, 29 March 2026); so it is
        # asked about the wall clock of one stretch of constant offset at a time
        while True:
            offset = _offset(self.timezone, instant)
            wall = (instant + offset).replace(tzinfo=None)
            found = _cronsim(self.expression, wall - _ONE_MICROSECOND)
            match = next(found, None) if found is not None else None
            if match is None:  # no month has the day, or nothing in cronsim's 50 years
                return None
            fire = (match - offset).replace(tzinfo=UTC)
            change = _offset_change(self.timezone, instant, fire, offset)
            if change is None:
                return fire
            instant = change

    def __getstate__(self) -> dict[str, Any]:
        return {
            "version": 3,
            "expression": self.expression,
            "timezone": self.timezone.key,
            "start_date": self.start_date,
            "end_date": self.end_date,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Read back a state of this trigger, or of the ``CronTrigger`` subclass it was before.

        The earlier state (version 2, APScheduler's ``CronTrigger.__getstate__``
        plus ``by_the_clock``) holds APScheduler field objects; the crontab
        expression is written again from them.
        """
        zone = state["timezone"]
        self.timezone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(str(zone))
        if "expression" in state:
            self.expression = crontab_expression(state["expression"])
        else:
            self.expression = crontab_expression(_expression_of_fields(state["fields"]))
        self.by_the_clock = follows_the_clock(self.expression)
        self.start_date = _aware_utc(state.get("start_date"), self.timezone)
        self.end_date = _aware_utc(state.get("end_date"), self.timezone)

    def __str__(self) -> str:
        return f"cron[{self.expression}, {self.timezone.key}]"

    def __repr__(self) -> str:
        dates = "".join(
            f", {name}={value.isoformat()!r}"
            for name, value in (("start_date", self.start_date), ("end_date", self.end_date))
            if value is not None
        )
        return f"<{type(self).__name__} ({self.expression!r}, timezone={self.timezone.key!r}{dates})>"


def _offset(zone: ZoneInfo, instant: dt.datetime) -> dt.timedelta:
    offset = instant.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _offset_change(
    zone: ZoneInfo, start: dt.datetime, end: dt.datetime, offset: dt.timedelta
) -> dt.datetime | None:
    """The first instant in ``(start, end]`` whose offset is not ``offset`` (``start``'s), or None.

    Looks a day at a time (no zone changes its offset twice within a day), then
    bisects the day of the change to the second (changes fall on whole seconds).
    """
    low = start
    while low < end:
        high = min(low + dt.timedelta(days=1), end)
        if _offset(zone, high) == offset:
            low = high
            continue
        base = low.replace(microsecond=0)
        first, last = 0, math.ceil((high - base).total_seconds())  # base + first keeps the offset
        while last - first > 1:
            middle = (first + last) // 2
            if _offset(zone, base + dt.timedelta(seconds=middle)) == offset:
                first = middle
            else:
                last = middle
        return base + dt.timedelta(seconds=last)
    return None


def _expression_of_fields(fields: list[Any]) -> str:
    """The crontab expression of APScheduler 3 cron fields as ``from_crontab`` built them.

    Minute, hour, day and month print as crontab; the day of week is written
    as names from APScheduler's own numbers (Monday is 0), so ``sat-sun``
    stays Saturday and Sunday. A weekday field other than ``*`` becomes a list
    of names, which cron reads as restricted (so a day of month and a weekday
    given together fire on either, as a new reading of the same file does
    unless its weekday field started with ``*``).
    """
    by_name = {field.name: field for field in fields}
    weekday = by_name["day_of_week"]
    if str(weekday) == "*":
        weekdays = "*"
    else:
        days: set[int] = set()
        for expression in weekday.expressions:
            first = getattr(expression, "first", 0)
            last = getattr(expression, "last", None)
            days.update(range(first, (6 if last is None else last) + 1, expression.step or 1))
        weekdays = ",".join(_APSCHEDULER_WEEKDAYS[day] for day in sorted(days))
    return " ".join([*(str(by_name[name]) for name in ("minute", "hour", "day", "month")), weekdays])


def wall_instant(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The instant a local wall time (naive) happens in ``zone``, as a cron fixed time reads it (UTC).

    A time that happens twice is its first occurrence; a time the clocks skip
    happens at the change (02:30 in a 02:00 -> 03:00 gap is 03:00), as a fixed
    time of a schedule fires.
    """
    first = wall.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # skipped: read with the offset after the change it is before the change, with the one before
    # it is after; the change lies between
    before = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    after = first.astimezone(UTC)
    low, high = min(before, after), max(before, after)
    offset = _offset(zone, low)
    change = _offset_change(zone, low, high, offset)
    return change if change is not None else after


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
        at = campaign.at if campaign.at.tzinfo is not None else wall_instant(campaign.at, zone)
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


def as_apscheduler_trigger() -> None:
    """Make :class:`BusinessCronTrigger` an APScheduler trigger (a virtual subclass of ``BaseTrigger``).

    The class keeps its name and module for the triggers pickled in the job
    store, and is not a subclass in the source, so that reading campaign files
    does not import APScheduler. Idempotent; :func:`build_trigger` and the
    scheduler call it.
    """
    from apscheduler.triggers.base import BaseTrigger

    BaseTrigger.register(BusinessCronTrigger)


def build_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of ``schedule``; ValueError when it is not one."""
    from apscheduler.triggers.date import DateTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    as_apscheduler_trigger()
    kind = schedule.get("kind")
    zone = ZoneInfo(schedule.get("timezone", "UTC"))
    if kind == "cron":
        trigger = BusinessCronTrigger.from_crontab(
            schedule["cron"],
            timezone=zone,
            start_date=_instant(schedule.get("start")),
            end_date=_instant(schedule.get("end")),
        )
        return cast("BaseTrigger", trigger)
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
