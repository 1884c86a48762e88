"""The dates of the ledger: from the local date and time of the earn, whatever zone it was given in.

* the worked examples of docs/loyalty.md, row by row, from a UTC time and from a zone-aware one;
* the SQL of the set-based accrual (:class:`LocalShift`, the calendar expiry's ``CASE``) against
  Python, at every quarter hour around each change of the clocks of zones with midnight changes,
  30-minute steps and 45-minute offsets, on both databases;
* a calendar lag in minutes is a config error, not twelve minutes.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, literal, select

from engine.errors import ConfigErrors
from engine.loyalty.batch.accrual_sql import LocalShift
from engine.loyalty.programme import Programme, period_end, shift_days
from engine.settings import Lag, add_months, parse_lag
from engine.sql import UtcDateTime
from tests.loyalty.ledger_setup import shop_programme

ROOT = Path(__file__).resolve().parents[3]
UTC = dt.UTC
ROW = re.compile(
    r"^\| ([\w/]+) \| (\d{4}-\d\d-\d\d \d\d:\d\d) \| (.+?) \| "
    r"(available|expires) (\d{4}-\d\d-\d\d \d\d:\d\d) \|$"
)


def _examples() -> list[tuple[str, str, dict[str, str], str, str]]:
    text = (ROOT / "docs" / "loyalty.md").read_text(encoding="utf-8")
    rows = []
    for line in text.split("Worked examples", 1)[1].splitlines():
        found = ROW.match(line.strip())
        if found:
            zone, earned, setting, what, gives = found.groups()
            changes = dict(re.findall(r"`(\w+) = ([^`]+)`", setting))
            rows.append((zone, earned, changes, what, gives))
    return rows


EXAMPLES = _examples()


def test_the_worked_examples_are_all_read() -> None:
    assert len(EXAMPLES) == 10


@pytest.mark.parametrize(("zone", "earned", "changes", "what", "gives"), EXAMPLES)
def test_the_worked_examples_of_the_docs(
    write_config: Callable[..., Path], zone: str, earned: str, changes: dict[str, str], what: str, gives: str
) -> None:
    settings_ = {"pending_days": "0", "expiry": '"never"', **changes, "timezone": f'"{zone}"'}
    programme = shop_programme(write_config, **settings_)
    local = dt.datetime.fromisoformat(earned).replace(tzinfo=ZoneInfo(zone))
    for given_as in (local, local.astimezone(UTC), local.astimezone(ZoneInfo("Asia/Tokyo"))):
        result = programme.available_at(given_as) if what == "available" else programme.expires_at(given_as)
        assert result is not None
        shown = result.astimezone(ZoneInfo(zone))
        assert shown.replace(tzinfo=None) == dt.datetime.fromisoformat(gives)
        assert shown.fold == 0  # the first of a repeated time
        assert result.utcoffset() == dt.timedelta(0)


def test_a_lag_in_minutes_is_not_a_calendar_lag(write_config: Callable[..., Path]) -> None:
    with pytest.raises(ConfigErrors, match=r"expiry_after '12m'.*'12m' is 12 minutes"):
        shop_programme(write_config, expiry='"end_of_year"', expiry_after='"12m"')
    with pytest.raises(ConfigErrors, match="the idle time of 'inactivity' is a duration"):
        shop_programme(write_config, expiry='"inactivity"', expiry_after='"6mo"')


def test_lags() -> None:
    assert parse_lag("1y") == Lag(months=12) and parse_lag("2w") == Lag(days=14)
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2026, 3, 31), -1) == dt.date(2026, 2, 28)
    assert add_months(dt.date(2026, 12, 15), 1) == dt.date(2027, 1, 15)
    with pytest.raises(ValueError, match="not a calendar lag"):
        parse_lag("12m")


@given(
    day=st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)),
    lag=st.sampled_from([Lag(), Lag(days=1), Lag(days=30), Lag(days=365), Lag(months=1), Lag(months=12)]),
    kind=st.sampled_from(["end_of_month", "end_of_quarter", "end_of_year"]),
)
def test_the_threshold_of_a_period_end_is_the_first_day_that_reaches_it(
    day: dt.date, lag: Lag, kind: str
) -> None:
    end = period_end(day, kind)
    threshold = lag.before(end)
    assert lag.after(threshold) >= end
    assert lag.after(threshold - dt.timedelta(days=1)) < end


# --- the SQL of the accrual against Python ---------------------------------------------------------------

#: zones whose clocks change at midnight, by 30 minutes, with 45-minute offsets, both hemispheres
ZONES = (
    "Europe/Berlin",
    "America/Santiago",
    "America/Havana",
    "Atlantic/Azores",
    "Asia/Beirut",
    "Africa/Cairo",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/St_Johns",
    "Australia/Sydney",
)


def _changes(zone: ZoneInfo, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every instant the zone's offset changes between ``start`` and ``end`` (hourly scan, then bisect)."""
    found = []
    at = start
    while at < end:
        following = at + dt.timedelta(hours=1)
        if at.astimezone(zone).utcoffset() != following.astimezone(zone).utcoffset():
            low, high = at, following
            while high - low > dt.timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        at = following
    return found


def _instants(zone: ZoneInfo, days: int) -> list[dt.datetime]:
    """Quarter hours (with microseconds) around each change in 2026-2027, and ``days`` before each."""
    start, end = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC)
    instants = []
    for change in _changes(zone, start, end):
        for base in (change, change - dt.timedelta(days=days)):
            instants += [base + dt.timedelta(minutes=15 * k, microseconds=123_456) for k in range(-10, 11)]
    return instants


@pytest.mark.parametrize("days", [1, 7, 14, 365])
def test_the_local_shift_in_sql_is_the_python_one(
    db: Engine, write_config: Callable[..., Path], days: int
) -> None:
    metadata = MetaData()
    table = Table(
        "shift_instants", metadata, Column("n", Integer, primary_key=True), Column("at", UtcDateTime())
    )
    metadata.create_all(db)
    try:
        for name in ZONES:
            zone = ZoneInfo(name)
            programme = shop_programme(write_config, timezone=f'"{name}"')
            instants = _instants(zone, days)
            with db.begin() as connection:
                connection.execute(table.delete())
                connection.execute(insert(table), [{"n": n, "at": at} for n, at in enumerate(instants)])
                shift = LocalShift(programme, min(instants), max(instants), days)
                got = dict(connection.execute(select(table.c.n, shift.at(table.c.at))).all())
            wrong = {
                instants[n].isoformat(): (value, shift_days(instants[n], days, zone))
                for n, value in got.items()
                if value != shift_days(instants[n], days, zone)
            }
            assert wrong == {}, name
    finally:
        metadata.drop_all(db)


@settings(max_examples=200, deadline=None)
@given(
    instant=st.datetimes(
        min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(UTC)
    ),
    name=st.sampled_from(ZONES),
    days=st.integers(min_value=0, max_value=800),
)
def test_a_shift_depends_on_the_instant_only_never_on_the_zone_it_is_given_in(
    instant: dt.datetime, name: str, days: int
) -> None:
    zone = ZoneInfo(name)
    expected = shift_days(instant, days, zone)
    for given_as in (instant.astimezone(zone), instant.astimezone(ZoneInfo("America/Los_Angeles"))):
        assert shift_days(given_as, days, zone) == expected
    local, shifted_local = instant.astimezone(zone), expected.astimezone(zone)
    assert shifted_local.date() == local.date() + dt.timedelta(days=days)
    if shifted_local.replace(tzinfo=None).time() != local.time().replace(fold=0):
        # the local time did not exist that day: it moved later by the jump
        assert shifted_local.time() > local.time()


def _programme_with(write_config: Callable[..., Path], **changes: Any) -> Programme:
    return shop_programme(
        write_config, **{k: f'"{v}"' if isinstance(v, str) else str(v) for k, v in changes.items()}
    )


@pytest.mark.parametrize("expiry_after", ["0d", "30d", "1mo", "1y"])
def test_the_calendar_expiry_in_sql_is_the_python_one(
    db: Engine, write_config: Callable[..., Path], expiry_after: str
) -> None:
    from engine.loyalty.batch.accrual import expires_at_sql

    programme = _programme_with(
        write_config, timezone="Europe/Moscow", expiry="end_of_month", expiry_after=expiry_after
    )
    zone = programme.zone
    days = [dt.date(2026, 1, 1) + dt.timedelta(days=n) for n in range(0, 400, 3)]
    instants = [
        dt.datetime.combine(day, time, tzinfo=zone).astimezone(UTC)
        for day in days
        for time in (dt.time(0, 0), dt.time(23, 59, 59))
    ]
    column = literal(instants[0], UtcDateTime())
    with db.connect() as connection:
        case = expires_at_sql(programme, column, min(instants), max(instants))
        assert case is not None
        for instant in instants:
            got = connection.execute(
                select(
                    expires_at_sql(programme, literal(instant, UtcDateTime()), min(instants), max(instants))
                )
            ).scalar_one()
            assert got == programme.expires_at(instant), instant
