"""Campaign schedules in the business time zone: crontab weekdays, DST changes, start and end dates."""

from __future__ import annotations

import datetime as dt
import pickle
from zoneinfo import ZoneInfo

import pytest

from engine.campaigns.definition import Campaign
from engine.campaigns.schedules import (
    BusinessCronTrigger,
    build_trigger,
    campaign_schedule,
    crontab_weekdays,
    describe,
    fire_times,
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
        # 02:00 does not exist on 29 March (clocks jump to 03:00): it fires when the jump ends;
        # on 25 October 02:00 happens twice: it fires at the first one only
        (
            "0 2 * * *",
            [utc(2026, 3, 28, 1), utc(2026, 3, 29, 1), utc(2026, 3, 30, 0)],
            [utc(2026, 10, 24, 0), utc(2026, 10, 25, 0), utc(2026, 10, 26, 1)],
        ),
        # 02:30 becomes 03:30 summer time; 02:30 summer time comes before 02:30 winter time
        (
            "30 2 * * *",
            [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 30, 0, 30)],
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
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("MON", "mon"),
        ("sat,SUN", "sat,sun"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "tue,thu,sat,sun"),
        ("*", "*"),
    ],
)
def test_numeric_weekdays_are_crontab_ones(field: str, weekdays: str) -> None:
    assert crontab_weekdays(field) == weekdays


def test_crontab_sunday_is_zero_not_monday() -> None:
    (sunday,) = cron_fires("0 10 * * 0", utc(2026, 3, 2), utc(2026, 3, 8, 23))  # Monday 2 to Sunday 8 March
    assert sunday.astimezone(BERLIN).strftime("%a %d") == "Sun 08"


@pytest.mark.parametrize("field", ["8", "mon-sun-fri", "fri-mon", "funday", "1/0"])
def test_bad_weekdays_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match="day of week"):
        crontab_weekdays(field)


def test_the_trigger_survives_the_job_store() -> None:
    trigger = BusinessCronTrigger.from_crontab("*/15 2 * * *", BERLIN)
    copy = pickle.loads(pickle.dumps(trigger))
    assert isinstance(copy, BusinessCronTrigger) and copy.by_the_clock
    after = utc(2026, 10, 24, 23)
    assert list(fire_times(copy, after, utc(2026, 10, 25, 2))) == list(
        fire_times(trigger, after, utc(2026, 10, 25, 2))
    )


def test_a_cron_campaign_fires_between_its_start_and_end_days_inclusive() -> None:
    schedule = campaign_schedule(campaign(schedule="0 10 * * *", end="2026-03-03"), BERLIN)
    assert schedule["kind"] == "cron" and schedule["timezone"] == "Europe/Berlin"
    fires = list(fire_times(build_trigger(schedule), utc(2026, 2, 1), utc(2026, 4, 1)))
    assert fires == [utc(2026, 3, 1, 9), utc(2026, 3, 2, 9), utc(2026, 3, 3, 9)]
    assert describe(schedule) == "cron '0 10 * * *' Europe/Berlin, 2026-03-01..2026-03-03"


def test_a_one_off_without_offset_is_business_time() -> None:
    naive = campaign_schedule(campaign(at="2026-03-29T02:30:00"), BERLIN)  # in the spring gap: 03:30 CEST
    assert build_trigger(naive).get_next_fire_time(None, utc(2026, 1, 1)) == utc(2026, 3, 29, 1, 30)
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
