"""Caps, quiet hours, calling windows and send-at times in the customer's zone, across DST changes."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from engine.clock import local_instant, utcnow
from engine.contact_policy.caps import Cap
from engine.contact_policy.quiet_hours import DailyWindow

BERLIN = ZoneInfo(
    "Europe/Berlin"
)  # CET/CEST: clocks jump 2026-03-29 02:00 -> 03:00, back 2026-10-25 03:00 -> 02:00
MOSCOW = ZoneInfo("Europe/Moscow")  # UTC+3 all year
VLADIVOSTOK = ZoneInfo("Asia/Vladivostok")  # UTC+10
NEW_YORK = ZoneInfo("America/New_York")  # EST/EDT: 2026-03-08 and 2026-11-01


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)  # type: ignore[misc]


def test_send_at_ten_local_for_everyone() -> None:
    day = dt.date(2026, 12, 7)
    at = {zone.key: local_instant(day, dt.time(10), zone) for zone in (MOSCOW, VLADIVOSTOK, BERLIN, NEW_YORK)}
    assert at == {
        "Europe/Moscow": utc(2026, 12, 7, 7),
        "Asia/Vladivostok": utc(2026, 12, 7, 0),
        "Europe/Berlin": utc(2026, 12, 7, 9),
        "America/New_York": utc(2026, 12, 7, 15),
    }


def test_send_at_across_dst_changes() -> None:
    # the same 10:00 local is a different UTC hour before and after the change
    assert local_instant(dt.date(2026, 3, 28), dt.time(10), BERLIN) == utc(2026, 3, 28, 9)
    assert local_instant(dt.date(2026, 3, 29), dt.time(10), BERLIN) == utc(2026, 3, 29, 8)
    # 02:30 does not exist on 2026-03-29 in Berlin: it moves later by the hour jumped
    assert local_instant(dt.date(2026, 3, 29), dt.time(2, 30), BERLIN) == utc(2026, 3, 29, 1, 30)
    # 02:30 happens twice on 2026-10-25: the first one (still summer time)
    assert local_instant(dt.date(2026, 10, 25), dt.time(2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)


def test_caps_count_from_the_local_week_month_and_day() -> None:
    week, month, day = Cap.parse("2/week"), Cap.parse(" 1 / month "), Cap.parse("3/day")
    assert (week.count, week.period) == (2, "week")
    # Monday 2026-12-07 01:00 in Vladivostok is still Sunday in UTC: the week began there at local midnight
    now = utc(2026, 12, 6, 15)  # = Monday 01:00 +10
    assert week.window_start(now, VLADIVOSTOK) == utc(2026, 12, 6, 14)
    assert week.window_start(now, MOSCOW) == utc(2026, 11, 29, 21)  # Moscow: still Sunday 18:00
    assert month.window_start(now, MOSCOW) == utc(2026, 11, 30, 21)
    assert day.window_start(now, MOSCOW) == utc(2026, 12, 5, 21)
    # a week that contains the DST change starts at local midnight before it
    assert week.window_start(utc(2026, 3, 29, 12), BERLIN) == utc(2026, 3, 22, 23)
    assert week.window_start(utc(2026, 3, 30, 12), BERLIN) == utc(2026, 3, 29, 22)
    for bad in ("2/fortnight", "0/week", "two/week", "2"):
        with pytest.raises(ValueError, match="frequency cap"):
            Cap.parse(bad)


def test_quiet_hours_wrap_past_midnight_in_each_customers_zone() -> None:
    quiet = DailyWindow.parse("21:00-09:00")
    assert quiet.wraps
    now = utc(2026, 12, 7, 19)  # 22:00 Moscow, 05:00 Vladivostok next day, 20:00 Berlin
    assert quiet.contains(now, MOSCOW) and quiet.contains(now, VLADIVOSTOK)
    assert not quiet.contains(now, BERLIN)
    assert quiet.next_outside(now, MOSCOW) == utc(2026, 12, 8, 6)  # 09:00 Moscow
    assert quiet.next_outside(now, VLADIVOSTOK) == utc(2026, 12, 7, 23)  # 09:00 Vladivostok
    assert quiet.next_outside(now, BERLIN) == now


def test_quiet_hours_end_at_nine_local_on_the_night_clocks_change() -> None:
    quiet = DailyWindow.parse("21:00-09:00")
    # the night of 2026-03-28/29 in Berlin is an hour shorter: 09:00 CEST is 07:00 UTC
    assert quiet.next_outside(utc(2026, 3, 28, 23), BERLIN) == utc(2026, 3, 29, 7)
    # the night of 2026-10-24/25 is an hour longer: 09:00 CET is 08:00 UTC
    assert quiet.next_outside(utc(2026, 10, 24, 23), BERLIN) == utc(2026, 10, 25, 8)


def test_call_window_opens_at_ten_local() -> None:
    calls = DailyWindow.parse("10:00-19:00")
    evening = utc(2026, 12, 7, 17)  # 20:00 Moscow: closed; tomorrow 10:00 Moscow = 07:00 UTC
    assert not calls.contains(evening, MOSCOW)
    assert calls.next_start(evening, MOSCOW) == utc(2026, 12, 8, 7)
    morning = utc(2026, 12, 7, 5)  # 08:00 Moscow: opens at 10:00 the same day
    assert calls.next_start(morning, MOSCOW) == utc(2026, 12, 7, 7)
    assert calls.next_start(utc(2026, 12, 7, 8), MOSCOW) == utc(2026, 12, 7, 8)
    for bad in ("10-19", "25:00-26:00", "10:00-10:00"):
        with pytest.raises(ValueError):
            DailyWindow.parse(bad)


def test_frozen_clock_decides_the_cap_window() -> None:
    cap = Cap.parse("1/week")
    with freeze_time("2026-12-13 20:30:00"):  # Sunday 23:30 in Moscow
        assert cap.window_start(utcnow(), MOSCOW) == utc(2026, 12, 6, 21)
    with freeze_time("2026-12-13 21:30:00"):  # Monday 00:30 in Moscow: a new week
        assert cap.window_start(utcnow(), MOSCOW) == utc(2026, 12, 13, 21)
