"""Campaign schedules in the business time zone: crontab weekdays, DST changes, start and end dates.

Two expectations changed when cron firings moved from APScheduler's ``CronTrigger``
to cronsim (docs/scheduler.md, "Time zones and daylight saving time"):

* a fixed time the clocks skip fires *at the change*, as Debian cron does:
  ``"30 2 * * *"`` on the night Berlin jumps from 02:00 to 03:00 fires at
  03:00 summer time, no longer at 03:30 (its offset into the gap);
* day of month and day of week, both restricted, fire on a day matching
  either (cron's rule), no longer only on days matching both.

tests/campaigns/test_cron_reference.py checks the rules in every zone.
"""

from __future__ import annotations

import datetime as dt
import pickle
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from engine.campaigns import schedules
from engine.campaigns.definition import Campaign
from engine.campaigns.schedules import (
    BusinessCronTrigger,
    build_trigger,
    campaign_schedule,
    describe,
    fire_times,
    wall_instant,
)
from tests.factories import utc

BERLIN = ZoneInfo("Europe/Berlin")


def cron_fires(
    expr: str, after: dt.datetime, until: dt.datetime, zone: ZoneInfo = BERLIN
) -> list[dt.datetime]:
    return list(fire_times(BusinessCronTrigger.from_crontab(expr, zone), after, until))


def campaign(**trigger: object) -> Campaign:
    return Campaign.model_validate(
        {
            "name": "t",
            "segment": "everyone",
            "strategy": "loyalty",
            "start": "2026-03-01",
            "steps": [{"channel": "email", "template": "t.html.j2"}],
            **trigger,
        }
    )


@pytest.mark.parametrize(
    ("expr", "spring", "autumn"),
    [
        # 02:00 does not exist on 29 March (clocks jump to 03:00): it fires at the change, 03:00;
        # on 25 October 02:00 happens twice: it fires at the first one only
        (
            "0 2 * * *",
            [utc(2026, 3, 28, 1), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)],
            [utc(2026, 10, 24, 0), utc(2026, 10, 25, 0), utc(2026, 10, 26, 1)],
        ),
        # 02:30 fires at the change too, 03:00 summer time (APScheduler fired at 03:30, its offset
        # into the gap; cron runs a skipped fixed time right after the change);
        # 02:30 summer time comes before 02:30 winter time
        (
            "30 2 * * *",
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0, 30)],
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # outside the changed hour nothing moves: 10:00 local is 09:00 UTC in winter, 08:00 in summer
        (
            "0 10 * * *",
            [utc(2026, 3, 28, 9), utc(2026, 3, 29, 8), utc(2026, 3, 30, 8)],
            [utc(2026, 10, 24, 8), utc(2026, 10, 25, 9), utc(2026, 10, 26, 9)],
        ),
    ],
)
def test_a_daily_time_fires_once_a_day_across_both_dst_changes(
    expr: str, spring: list[dt.datetime], autumn: list[dt.datetime]
) -> None:
    assert cron_fires(expr, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12)) == spring
    assert cron_fires(expr, utc(2026, 10, 23, 12), utc(2026, 10, 26, 12)) == autumn


def test_every_half_hour_runs_by_the_clock_through_the_repeated_hour() -> None:
    autumn = cron_fires("*/30 * * * *", utc(2026, 10, 24, 23, 45), utc(2026, 10, 25, 2, 15))
    # 02:00 and 02:30 summer time, then 02:00 and 02:30 winter time: every 30 minutes of real time
    assert autumn == [
        utc(2026, 10, 25, 0),
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 25, 1),
        utc(2026, 10, 25, 1, 30),
        utc(2026, 10, 25, 2),
    ]
    spring = cron_fires("*/30 * * * *", utc(2026, 3, 29, 0, 15), utc(2026, 3, 29, 2, 15))
    # 01:30 winter time, then straight to 03:00 summer time: the missing hour has no firings
    assert spring == [
        utc(2026, 3, 29, 0, 30),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 29, 2),
    ]


def test_weekly_schedule_keeps_its_local_time_across_dst() -> None:
    fires = cron_fires("0 10 * * MON", utc(2026, 3, 20), utc(2026, 4, 7))
    assert fires == [utc(2026, 3, 23, 9), utc(2026, 3, 30, 8), utc(2026, 4, 6, 8)]
    assert {f.astimezone(BERLIN).strftime("%a %H:%M") for f in fires} == {"Mon 10:00"}


@pytest.mark.parametrize(
    ("field", "weekdays"),
    [
        ("1", "Mon"),
        ("0", "Sun"),
        ("7", "Sun"),
        ("1-5", "Mon Tue Wed Thu Fri"),
        ("MON", "Mon"),
        ("sat,SUN", "Sun Sat"),
        ("5-7", "Sun Fri Sat"),
        ("*/2", "Sun Tue Thu Sat"),
        ("?", "Sun Mon Tue Wed Thu Fri Sat"),
        ("*", "Sun Mon Tue Wed Thu Fri Sat"),
    ],
)
def test_numeric_weekdays_are_crontab_ones(field: str, weekdays: str) -> None:
    # Sunday 1 March to Saturday 7 March 2026
    fires = cron_fires(f"0 10 * * {field}", utc(2026, 3, 1), utc(2026, 3, 7, 23))
    assert " ".join(f.astimezone(BERLIN).strftime("%a") for f in fires) == weekdays


def test_crontab_sunday_is_zero_not_monday() -> None:
    (sunday,) = cron_fires("0 10 * * 0", utc(2026, 3, 2), utc(2026, 3, 8, 23))  # Monday 2 to Sunday 8 March
    assert sunday.astimezone(BERLIN).strftime("%a %d") == "Sun 08"


@pytest.mark.parametrize("field", ["8", "mon-sun-fri", "fri-mon", "funday", "1/0", "L5"])
def test_bad_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=f"day of week '{field}'"):
        BusinessCronTrigger.from_crontab(f"0 10 * * {field}", BERLIN)


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("61 * * * *", "minute '61'"),
        ("0 24 * * *", "hour '24'"),
        ("0 0 32 * *", "day of month '32'"),
        ("0 0 * 13 *", "month '13'"),
        ("0 0 * smarch *", "month 'smarch'"),
        ("0 0 * *", "wrong number of fields: got 4, expected 5"),
        ("0 0 0 * * *", "wrong number of fields: got 6, expected 5"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCronTrigger.from_crontab(expr, BERLIN)


def test_a_day_no_month_has_never_fires() -> None:
    # cronsim refuses it; the campaign file is told it never fires (engine/campaigns/loading.py)
    never = BusinessCronTrigger.from_crontab("0 10 31 2 *", BERLIN)
    assert never.get_next_fire_time(None, utc(2026, 1, 1)) is None
    assert (
        BusinessCronTrigger.from_crontab("*/5 * 30 2 *", BERLIN).get_next_fire_time(None, utc(2026, 1, 1))
        is None
    )


def test_day_of_month_and_weekday_fire_on_either_unless_one_starts_with_a_star() -> None:
    # classic cron: the 1st of the month or any Monday (APScheduler's reading needed both)
    either = cron_fires("0 10 1 * MON", utc(2026, 5, 25), utc(2026, 6, 16))
    assert [f.astimezone(BERLIN).strftime("%a %d") for f in either] == [
        "Mon 25",
        "Mon 01",
        "Mon 08",
        "Mon 15",
    ]
    either = cron_fires("0 10 1,15 * 5", utc(2026, 4, 1), utc(2026, 4, 16))
    assert [f.astimezone(BERLIN).strftime("%a %d") for f in either] == [
        "Wed 01",
        "Fri 03",
        "Fri 10",
        "Wed 15",
    ]
    # a field starting with * makes it both: odd days that are Mondays; Mondays in the first week
    both = cron_fires("0 10 */2 * MON", utc(2026, 6, 1), utc(2026, 7, 1))
    assert [f.astimezone(BERLIN).strftime("%a %d") for f in both] == ["Mon 01", "Mon 15", "Mon 29"]
    both = cron_fires("0 10 1-7 * */7", utc(2026, 6, 1), utc(2026, 7, 1))
    assert [f.astimezone(BERLIN).strftime("%a %d") for f in both] == ["Sun 07"]


def test_a_midnight_schedule_fires_at_the_change_on_a_midnight_spring_forward() -> None:
    santiago = ZoneInfo("America/Santiago")  # 6 September 2026: 00:00 -04 becomes 01:00 -03
    fires = cron_fires("0 0 * * *", utc(2026, 9, 4, 12), utc(2026, 9, 7, 12), santiago)
    assert [f.astimezone(santiago).isoformat() for f in fires] == [
        "2026-09-05T00:00:00-04:00",
        "2026-09-06T01:00:00-03:00",  # APScheduler fired nothing this day
        "2026-09-07T00:00:00-03:00",
    ]
    cairo = ZoneInfo("Africa/Cairo")  # 24 April 2026: 00:00 +02 becomes 01:00 +03
    monthly = cron_fires("0 0 1 * *", utc(2026, 3, 15), utc(2026, 6, 15), cairo)
    # APScheduler lost May: it carried the hour the clocks skipped in April into the next month
    assert [f.astimezone(cairo).strftime("%m-%d %H:%M") for f in monthly] == [
        "04-01 00:00",
        "05-01 00:00",
        "06-01 00:00",
    ]
    havana = ZoneInfo("America/Havana")  # 8 March 2026: 00:00 -05 becomes 01:00 -04
    monthly = cron_fires("0 0 1 * *", utc(2026, 1, 15), utc(2026, 12, 15), havana)
    assert [f.astimezone(havana).strftime("%m-%d") for f in monthly] == [f"{m:02}-01" for m in range(2, 13)]


def test_several_fixed_times_in_one_gap_fire_once_at_the_change() -> None:
    fires = cron_fires("0,30 2 * * *", utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    assert fires == [utc(2026, 3, 29, 1), utc(2026, 3, 30, 0), utc(2026, 3, 30, 0, 30)]  # 03:00 CEST once
    fires = cron_fires("30 2,3 * * *", utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert fires == [utc(2026, 3, 29, 1), utc(2026, 3, 29, 1, 30)]  # 02:30 at 03:00, then 03:30


def test_by_the_clock_follows_a_half_hour_step() -> None:
    lord_howe = ZoneInfo("Australia/Lord_Howe")  # 5 April 2026: 02:00 +11 becomes 01:30 +10:30
    fires = cron_fires("*/15 1 * * *", utc(2026, 4, 4, 12), utc(2026, 4, 5, 12), lord_howe)
    assert [f.astimezone(lord_howe).strftime("%H:%M%z") for f in fires] == [
        "01:00+1100",
        "01:15+1100",
        "01:30+1100",
        "01:45+1100",
        "01:30+1030",  # the repeated half hour, by the clock
        "01:45+1030",
    ]
    # and the day after: 00:00 and 00:15 are not lost (cronsim alone stepped over them)
    fires = cron_fires("*/15 0 * * *", utc(2026, 4, 4, 12), utc(2026, 4, 6, 12), lord_howe)
    assert [f.astimezone(lord_howe).strftime("%d %H:%M") for f in fires] == [
        "05 00:00",
        "05 00:15",
        "05 00:30",
        "05 00:45",
        "06 00:00",
        "06 00:15",
        "06 00:30",
        "06 00:45",
    ]


@pytest.mark.parametrize(
    ("expr", "zone", "day", "fires"),
    [
        ("*/15 2 * * *", "Europe/Berlin", dt.date(2026, 3, 29), []),  # by the clock, 02:xx never happens
        (
            "0-59/15 2 * * *",
            "Europe/Berlin",
            dt.date(2026, 3, 29),
            ["03:00+0200"],
        ),  # fixed: once, at the change
        ("*/15 0 * * *", "America/Santiago", dt.date(2026, 9, 6), []),
        ("* 0 * * 0", "Atlantic/Azores", dt.date(2026, 3, 29), []),  # cronsim alone fired at 01:00
        ("15 2 * * *", "Australia/Lord_Howe", dt.date(2026, 10, 4), ["02:30+1100"]),
        ("30 2 * * *", "Europe/Berlin", dt.date(2026, 10, 25), ["02:30+0200"]),
        ("30 0 * * *", "America/Havana", dt.date(2026, 11, 1), ["00:30-0400"]),  # 01:00 -04 becomes 00:00 -05
    ],
)
def test_the_examples_of_the_scheduler_docs(expr: str, zone: str, day: dt.date, fires: list[str]) -> None:
    local = ZoneInfo(zone)
    # from noon the day before to the end of the day
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), local)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local)
    found = cron_fires(expr, start, end - dt.timedelta(microseconds=1), local)
    assert [f.astimezone(local).strftime("%H:%M%z") for f in found] == fires


def test_next_fire_time_answers_as_apscheduler_asks() -> None:
    trigger = BusinessCronTrigger.from_crontab(
        "30 2 * * *", BERLIN, start_date=utc(2026, 10, 1), end_date=utc(2026, 10, 31, 12)
    )
    # asked at 02:15 of the repeated hour (winter time): the first 02:30 is past, so tomorrow's
    second_0215 = utc(2026, 10, 25, 1, 15)
    assert trigger.get_next_fire_time(None, second_0215) == utc(2026, 10, 26, 1, 30)
    # after a firing: the next one, even when it has passed (the scheduler sees what it missed)
    assert trigger.get_next_fire_time(utc(2026, 10, 20, 0, 30), utc(2026, 10, 25, 12)) == utc(
        2026, 10, 21, 0, 30
    )
    # at or after now, never before the start date, nothing after the end date
    assert trigger.get_next_fire_time(None, utc(2026, 10, 21, 0, 30)) == utc(2026, 10, 21, 0, 30)
    assert trigger.get_next_fire_time(None, utc(2026, 1, 1)) == utc(2026, 10, 1, 0, 30)
    assert trigger.get_next_fire_time(utc(2026, 9, 1, 0, 30), utc(2026, 9, 1, 1)) == utc(2026, 10, 1, 0, 30)
    assert trigger.get_next_fire_time(None, utc(2026, 10, 31)) == utc(2026, 10, 31, 1, 30)
    assert trigger.get_next_fire_time(utc(2026, 10, 31, 1, 30), utc(2026, 10, 31, 2)) is None


def test_the_trigger_survives_the_job_store() -> None:
    trigger = BusinessCronTrigger.from_crontab("*/15 2 * * *", BERLIN, start_date=utc(2026, 10, 1))
    copy = pickle.loads(pickle.dumps(trigger))
    assert isinstance(copy, BusinessCronTrigger) and copy.by_the_clock
    assert (copy.expression, copy.timezone, copy.start_date) == ("*/15 2 * * *", BERLIN, utc(2026, 10, 1))
    after = utc(2026, 10, 24, 23)
    assert list(fire_times(copy, after, utc(2026, 10, 25, 2))) == list(
        fire_times(trigger, after, utc(2026, 10, 25, 2))
    )


class EarlierCronTrigger(CronTrigger):
    """The trigger jobs stored before cronsim hold: APScheduler's CronTrigger, plus ``by_the_clock``."""

    __slots__ = ("by_the_clock",)

    def __init__(self, *args: Any, by_the_clock: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.by_the_clock = by_the_clock

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state["by_the_clock"] = self.by_the_clock
        return state


#: the earlier class under the name the job store pickled it by
STORED_BEFORE_CRONSIM = type(
    "BusinessCronTrigger", (EarlierCronTrigger,), {"__module__": schedules.__name__, "__slots__": ()}
)


def earlier_trigger(
    zone: ZoneInfo,
    *,
    start_date: dt.datetime | None = None,
    end_date: dt.datetime | None = None,
    **fields: str,
) -> CronTrigger:
    """A trigger as ``from_crontab`` built it before cronsim (weekdays as APScheduler's names)."""
    return STORED_BEFORE_CRONSIM(  # type: ignore[no-any-return]
        **{"day": "*", "month": "*", **fields},
        timezone=zone,
        start_date=start_date,
        end_date=end_date,
        by_the_clock="*" in fields["minute"] or "*" in fields["hour"],
    )


def pickled_as_before(value: Any) -> bytes:
    """``value`` pickled as an earlier version did, its triggers as the earlier class."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(schedules, "BusinessCronTrigger", STORED_BEFORE_CRONSIM)
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@pytest.mark.parametrize(
    ("fields", "crontab", "expression"),
    [
        # what from_crontab gave CronTrigger: crontab's weekdays as APScheduler's names
        ({"minute": "30", "hour": "2", "day_of_week": "mon,tue,wed,thu,fri"}, "30 2 * * 1-5", None),
        ({"minute": "*/15", "hour": "2", "day_of_week": "*"}, "*/15 2 * * *", "*/15 2 * * *"),
        ({"minute": "0", "hour": "10", "day_of_week": "sat,sun"}, "0 10 * * 6,0", "0 10 * * sat,sun"),
        ({"minute": "0", "hour": "9", "day": "last", "day_of_week": "*"}, "0 9 L * *", "0 9 L * *"),
        (
            {"minute": "0", "hour": "6", "month": "jan-mar", "day_of_week": "*"},
            "0 6 * 1-3 *",
            "0 6 * jan-mar *",
        ),
    ],
)
def test_a_trigger_stored_before_cronsim_is_read_back(
    fields: dict[str, str], crontab: str, expression: str | None
) -> None:
    earlier = earlier_trigger(BERLIN, start_date=utc(2026, 1, 1, 12), end_date=utc(2027, 12, 31), **fields)
    stored = pickled_as_before(earlier)
    assert b"engine.campaigns.schedules" in stored and b"BusinessCronTrigger" in stored
    assert set(earlier.__getstate__()) == {
        "version",
        "timezone",
        "start_date",
        "end_date",
        "fields",
        "jitter",
        "by_the_clock",
    }

    read = pickle.loads(stored)
    assert type(read) is BusinessCronTrigger
    assert read.expression == (expression or f"30 2 * * {fields['day_of_week']}")
    assert (read.timezone, read.start_date, read.end_date) == (BERLIN, utc(2026, 1, 1, 12), utc(2027, 12, 31))
    assert read.by_the_clock == ("*" in fields["minute"])
    fresh = BusinessCronTrigger.from_crontab(
        crontab, BERLIN, start_date=utc(2026, 1, 1, 12), end_date=utc(2027, 12, 31)
    )
    for after, until in ((utc(2026, 3, 20), utc(2026, 4, 10)), (utc(2026, 10, 20), utc(2026, 11, 10))):
        assert list(fire_times(read, after, until)) == list(fire_times(fresh, after, until))
    assert list(fire_times(read, utc(2025, 1, 1), utc(2026, 1, 1, 12))) == []
    again = pickle.loads(pickle.dumps(read))
    assert (again.expression, again.timezone, again.start_date) == (read.expression, BERLIN, read.start_date)


def test_a_cron_campaign_fires_between_its_start_and_end_days_inclusive() -> None:
    schedule = campaign_schedule(campaign(schedule="0 10 * * *", end="2026-03-03"), BERLIN)
    assert schedule["kind"] == "cron" and schedule["timezone"] == "Europe/Berlin"
    fires = list(fire_times(build_trigger(schedule), utc(2026, 2, 1), utc(2026, 4, 1)))
    assert fires == [utc(2026, 3, 1, 9), utc(2026, 3, 2, 9), utc(2026, 3, 3, 9)]
    assert describe(schedule) == "cron '0 10 * * *' Europe/Berlin, 2026-03-01..2026-03-03"


def test_a_one_off_without_offset_is_business_time() -> None:
    # in the spring gap: at the change, 03:00 CEST, as a fixed time of a schedule
    naive = campaign_schedule(campaign(at="2026-03-29T02:30:00"), BERLIN)
    assert build_trigger(naive).get_next_fire_time(None, utc(2026, 1, 1)) == utc(2026, 3, 29, 1)
    given = campaign_schedule(campaign(at="2026-03-10T12:00:00+03:00"), BERLIN)
    assert build_trigger(given).get_next_fire_time(None, utc(2026, 1, 1)) == utc(2026, 3, 10, 9)
    assert describe(given) == "once at 2026-03-10 10:00 Europe/Berlin"
    once = build_trigger(given)
    assert list(fire_times(once, utc(2026, 3, 1), utc(2026, 3, 31))) == [utc(2026, 3, 10, 9)]
    assert list(fire_times(once, utc(2026, 3, 11), utc(2026, 3, 31))) == []
    assert list(fire_times(once, utc(2026, 3, 1), utc(2026, 3, 9))) == []


def test_triggered_campaigns_look_every_few_minutes_and_anniversaries_each_morning() -> None:
    entry = campaign_schedule(campaign(on_segment_entry=True), BERLIN, trigger_every=dt.timedelta(minutes=10))
    fires = list(fire_times(build_trigger(entry), utc(2026, 3, 5, 12, 1), utc(2026, 3, 5, 12, 30)))
    assert fires == [utc(2026, 3, 5, 12, 10), utc(2026, 3, 5, 12, 20), utc(2026, 3, 5, 12, 30)]
    event = campaign_schedule(campaign(on_event="order.shipped"), BERLIN)
    assert describe(event) == "every 5m, 2026-03-01.."
    birthday = campaign_schedule(
        campaign(anniversary={"field": "birth_date", "offset_days": -3}),
        BERLIN,
        anniversary_at=dt.time(6, 30),
    )
    fires = list(fire_times(build_trigger(birthday), utc(2026, 3, 28), utc(2026, 3, 30, 12)))
    assert [f.astimezone(BERLIN).strftime("%d %H:%M") for f in fires] == ["28 06:30", "29 06:30", "30 06:30"]


@pytest.mark.parametrize(
    ("zone", "wall", "expected"),
    [
        ("Europe/Berlin", "2026-03-29T02:30", utc(2026, 3, 29, 1)),  # skipped: at the change, 03:00 CEST
        ("Europe/Berlin", "2026-10-25T02:30", utc(2026, 10, 25, 0, 30)),  # repeated: the first, CEST
        ("Europe/Berlin", "2026-06-01T12:00", utc(2026, 6, 1, 10)),
        ("America/Santiago", "2026-09-06T00:00", utc(2026, 9, 6, 4)),  # the day has no midnight
        ("Australia/Lord_Howe", "2026-10-04T02:15", utc(2026, 10, 3, 15, 30)),  # a 30-minute gap
    ],
)
def test_a_one_off_at_a_local_time_fires_as_a_fixed_time_does(
    zone: str, wall: str, expected: dt.datetime
) -> None:
    assert wall_instant(dt.datetime.fromisoformat(wall), ZoneInfo(zone)) == expected
