"""Every cron firing checked against a reference written here, over every time zone, for two years.

The reference knows nothing of cronsim or of the trigger: a tiny crontab field
matcher and the rules of docs/scheduler.md applied by brute force.

* A *fixed time* (minute and hour fields not starting with ``*``): for every
  local date and every matching wall time, the instant it first occurs; a wall
  time the clocks skip fires at the change (the first instant after the gap);
  times that land on the same instant fire once.
* A *clock-following* schedule (minute or hour field starting with ``*``):
  every UTC minute whose local wall time matches.
* Days: when both day fields are restricted a day matching either fires; when
  either starts with ``*`` both must match. Weekdays 0 and 7 are Sunday.

Instants are whole minutes since 1970-01-01 00:00 UTC; a local wall time is
whole minutes since 1970-01-01 00:00 on the wall. A zone is read only through
its UTC offsets, found by looking at each zone once a day over the two years
(and a few days either side) and bisecting every change to the second.

Coverage, deterministic: every zone of ``zoneinfo.available_timezones()``.
Zones whose offsets agree at every instant of the period fire identically
(the trigger sees a zone only through its offsets), so each such group is
checked once, under its first name; failures name the whole group.

* fixed times (daily, weekly, monthly) over all of 2026 and 2027 in every group;
* clock-following schedules, and fixed times several to a day, over three
  days around every change of offset in those two years, in every group with
  one (midnight changes in America/Santiago, America/Havana, Asia/Beirut,
  Africa/Cairo...; Australia/Lord_Howe's 30-minute step; Pacific/Chatham's
  change at 02:45; the 30- and 45-minute zones);
* hypothesis draws further expressions from the same grammar around changes,
  and asks the trigger as APScheduler does from any instant (inside a
  repeated hour too): the first firing at or after it, and the first after it
  as the previous firing.

About 15 s on one core (13 s of tests, measured when written); no test asserts a time.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.campaigns.schedules import BusinessCronTrigger, fire_times

UTC = dt.UTC
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = dt.date(1970, 1, 1)
DAY = 1440
FIRST, END = dt.datetime(2026, 1, 1, tzinfo=UTC), dt.datetime(2028, 1, 1, tzinfo=UTC)
MARGIN = dt.timedelta(days=4)  # offsets are read this far beyond the two years
AROUND = 36 * 60  # minutes either side of a change of offset


def minutes(instant: dt.datetime) -> int:
    """Whole minutes since the epoch (UTC)."""
    return int((instant - EPOCH).total_seconds()) // 60


def instant(count: int) -> dt.datetime:
    """The UTC instant ``count`` minutes after the epoch."""
    return EPOCH + dt.timedelta(minutes=count)


# ---- a tiny crontab matcher ---------------------------------------------------------------------

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


def values(field: str, low: int, high: int, names: list[str] | None = None, first_name: int = 0) -> set[int]:
    """The numbers a crontab field stands for: ``*``, ``a``, ``a-b``, each with ``/step``, in lists."""

    def number(text: str) -> int:
        if names and text in names:
            return names.index(text) + first_name
        return int(text)

    found: set[int] = set()
    for term in field.lower().split(","):
        base, _, step = term.partition("/")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first, last = (number(part) for part in base.split("-"))
        else:
            first = number(base)
            last = high if step else first
        found.update(range(first, last + 1, int(step or 1)))
    return found


@dataclass(frozen=True)
class Cron:
    """A five-field crontab expression, matched by hand."""

    text: str

    @functools.cached_property
    def fields(self) -> list[str]:
        return self.text.split()

    @functools.cached_property
    def clock(self) -> bool:
        """Follows the clock: the minute or the hour field starts with ``*``."""
        return self.fields[0].startswith("*") or self.fields[1].startswith("*")

    @functools.cached_property
    def times(self) -> list[int]:
        """The matching minutes of the day, in order."""
        hours = values(self.fields[1], 0, 23)
        return sorted(h * 60 + m for h in hours for m in values(self.fields[0], 0, 59))

    @functools.cached_property
    def time_set(self) -> frozenset[int]:
        return frozenset(self.times)

    def day(self, day: int) -> bool:
        """Whether the local day ``day`` (days since the epoch) matches the day fields."""
        dom, month, dow = self.fields[2:]
        return day_matches(dom, month, dow, day)


@functools.cache
def day_matches(dom_field: str, month_field: str, dow_field: str, day: int) -> bool:
    """Whether the day fields match the local day ``day`` (days since the epoch)."""
    date = EPOCH_DAY + dt.timedelta(days=day)
    if date.month not in values(month_field, 1, 12, MONTHS, 1):
        return False
    dom = date.day in values(dom_field, 1, 31)
    dow = date.isoweekday() % 7 in {d % 7 for d in values(dow_field, 0, 7, WEEKDAYS)}
    if dom_field.startswith("*") or dow_field.startswith("*"):
        return dom and dow
    return dom or dow


# ---- a zone as its offsets --------------------------------------------------------------------


@dataclass(frozen=True)
class Offsets:
    """A zone's UTC offsets over the period: segment starts (UTC minutes) and their offsets (minutes)."""

    starts: tuple[int, ...]
    offsets: tuple[int, ...]

    def at(self, utc_minute: int) -> int:
        """The offset in force at a UTC minute."""
        return self.offsets[bisect.bisect_right(self.starts, utc_minute) - 1]

    @property
    def changes(self) -> list[tuple[int, int, int]]:
        """(UTC minute of the change, offset before, offset after) of each change."""
        return [(self.starts[n], self.offsets[n - 1], self.offsets[n]) for n in range(1, len(self.starts))]

    def first_occurrence(self, wall: int) -> int:
        """The instant a local wall time first occurs; in a gap, the change that skips it."""
        occurs = [wall - o for o in set(self.offsets) if self.at(wall - o) == o]
        if occurs:
            return min(occurs)
        [change] = [t for t, before, after in self.changes if t + before <= wall < t + after]
        return change


def _offset(zone: ZoneInfo, moment: dt.datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


def offsets_of(zone: ZoneInfo) -> Offsets:
    """The offsets of ``zone`` from FIRST - MARGIN to END + MARGIN, each change bisected to the second."""
    moment = FIRST - MARGIN
    starts, found = [minutes(moment)], [_offset(zone, moment)]
    while moment < END + MARGIN:
        following = moment + dt.timedelta(days=1)
        if _offset(zone, following) != found[-1]:
            low, high = 0, 86400  # the change lies in (moment + low, moment + high] seconds
            while high - low > 1:
                middle = (low + high) // 2
                if _offset(zone, moment + dt.timedelta(seconds=middle)) == found[-1]:
                    low = middle
                else:
                    high = middle
            change = moment + dt.timedelta(seconds=high)
            assert change.second == 0, f"{zone.key} changes its offset off the minute at {change}"
            starts.append(minutes(change))
            found.append(_offset(zone, change))
        moment = following
    assert all(offset % 60 == 0 for offset in found), f"{zone.key} has an offset of seconds"
    return Offsets(tuple(starts), tuple(offset // 60 for offset in found))


@functools.cache
def zone_groups() -> dict[str, tuple[Offsets, list[str]]]:
    """Every available zone, grouped by its offsets over the period: first name -> (offsets, names)."""
    groups: dict[Offsets, list[str]] = {}
    for name in sorted(zoneinfo.available_timezones()):
        groups.setdefault(offsets_of(ZoneInfo(name)), []).append(name)
    return {names[0]: (offsets, names) for offsets, names in groups.items()}


@functools.cache
def changes_in_period() -> list[tuple[str, int]]:
    """(group, UTC minute) of every change of offset in 2026 and 2027."""
    return [
        (name, change)
        for name, (offsets, _) in zone_groups().items()
        for change, _, _ in offsets.changes
        if minutes(FIRST) <= change < minutes(END)
    ]


# ---- the rules, by brute force ------------------------------------------------------------------


def expected(cron: Cron, offsets: Offsets, start: int, end: int) -> list[int]:
    """The firings in [start, end) by the rules of docs/scheduler.md."""
    if cron.clock:
        fires = []
        for u in range(start, end):
            wall = u + offsets.at(u)
            if wall % DAY in cron.time_set and cron.day(wall // DAY):
                fires.append(u)
        return fires
    first_day = (start + min(offsets.offsets)) // DAY - 1
    last_day = (end + max(offsets.offsets)) // DAY + 1
    fires_at = {
        offsets.first_occurrence(day * DAY + time)
        for day in range(first_day, last_day + 1)
        if cron.day(day)
        for time in cron.times
    }
    return sorted(u for u in fires_at if start <= u < end)


def actual(cron: Cron, zone: str, start: int, end: int) -> list[int]:
    """The trigger's firings in [start, end)."""
    trigger = BusinessCronTrigger.from_crontab(cron.text, ZoneInfo(zone))
    until = instant(end) - dt.timedelta(microseconds=1)
    return [minutes(fire) for fire in fire_times(trigger, instant(start), until)]


def differences(cron: Cron, group: str, start: int, end: int) -> str | None:
    """None when the trigger agrees with the reference in [start, end), else what differs."""
    offsets, names = zone_groups()[group]
    want, got = expected(cron, offsets, start, end), actual(cron, group, start, end)
    if want == got:
        return None
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    doubled = sorted({u for u in got if got.count(u) > 1})
    zone = ZoneInfo(group)

    def show(items: list[int]) -> str:
        return ", ".join(f"{instant(u).astimezone(zone):%Y-%m-%d %H:%M%z}" for u in items[:6])

    return (
        f"{cron.text!r} in {group} (and {len(names) - 1} zones with the same offsets): "
        f"missing [{show(missing)}] extra [{show(extra)}] twice [{show(doubled)}]"
    )


FIXED_OVER_TWO_YEARS = [
    "0 0 * * *",
    "30 0 * * *",
    "0 1 * * *",
    "30 2 * * *",
    "30 23 * * *",
    "0 0 * * 0",  # most changes happen on a Sunday (or the night before)
    "30 0 * * sat",
    "0 0 1 * *",
    "0 0 1,15 * 6",  # both day fields restricted: the 1st, the 15th and every Saturday
]

AROUND_CHANGES = [
    "*/15 * * * *",
    "0 * * * *",
    "30 */2 * * *",
    "*/20 1-3 * * *",
    "*/15 0 * * *",
    "*/30 23 * * *",
    "*/5 0-2 * * 0,6",
    "15,45 0-3 * * *",  # several fixed times a day, some in every gap
    "0-59/20 0,1,2 * * *",
    "0 2,3 * * *",
]


@pytest.mark.parametrize("text", FIXED_OVER_TWO_YEARS)
def test_fixed_times_over_two_years_in_every_zone(text: str) -> None:
    cron = Cron(text)
    assert not cron.clock
    wrong = [differences(cron, group, minutes(FIRST), minutes(END)) for group in zone_groups()]
    assert [line for line in wrong if line] == []


@pytest.mark.parametrize("text", AROUND_CHANGES)
def test_around_every_change_of_offset_in_every_zone(text: str) -> None:
    cron = Cron(text)
    wrong = [
        differences(cron, group, change - AROUND, change + AROUND) for group, change in changes_in_period()
    ]
    assert [line for line in wrong if line] == []


def test_the_period_has_the_changes_the_rules_are_about() -> None:
    groups = zone_groups()
    named = {name: group for group, (_, names) in groups.items() for name in names}
    assert set(named) == zoneinfo.available_timezones()
    changes = list(changes_in_period())
    assert len(changes) > 100

    def local(group: str, change: int) -> dt.datetime:
        return instant(change).astimezone(ZoneInfo(group))

    # clocks that change at midnight, and Lord Howe's half-hour step
    midnight = {named[zone] for zone in ("America/Santiago", "America/Havana", "Asia/Beirut", "Africa/Cairo")}
    assert {group for group, change in changes if local(group, change).hour in (0, 1)} >= midnight
    lord_howe = groups[named["Australia/Lord_Howe"]][0]
    assert {after - before for _, before, after in lord_howe.changes} == {30, -30}
    # zones off the hour, some changing their clocks in the period
    off_the_hour = (
        "Asia/Kathmandu",
        "Asia/Kolkata",
        "Australia/Adelaide",
        "America/St_Johns",
        "Pacific/Chatham",
    )
    assert all(any(offset % 60 for offset in groups[named[zone]][0].offsets) for zone in off_the_hour)
    assert {named[zone] for zone in off_the_hour[2:]} <= {group for group, _ in changes}


TIMES = st.sampled_from(
    ["0", "5", "15", "30", "45", "59", "*", "*/15", "*/20", "0-59/10", "10-40/15", "0,30"]
)
HOURS = st.sampled_from(["0", "1", "2", "3", "23", "*", "*/2", "*/3", "0-3", "1-2", "0,2", "22-23", "1/4"])
DAYS = st.sampled_from(["*", "1", "1,15", "*/2", "28-31", "6"])
MONTHS_FIELD = st.sampled_from(["*", "*", "3,4,9,10", "jan-jun", "*/2", "10"])
WEEKDAY = st.sampled_from(["*", "*", "0", "7", "sun", "sat,sun", "1-5", "*/2", "mon"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.tuples(TIMES, HOURS, DAYS, MONTHS_FIELD, WEEKDAY),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=-3 * 3600 * 10**6, max_value=3 * 3600 * 10**6),
)
def test_drawn_expressions_around_a_change_agree_with_the_reference(
    fields: tuple[str, ...], pick: int, from_change: int
) -> None:
    changes = changes_in_period()
    group, change = changes[pick % len(changes)]
    cron, start, end = Cron(" ".join(fields)), change - 2 * DAY, change + 2 * DAY
    line = differences(cron, group, start, end)
    assert line is None, line

    # asked as APScheduler asks, from any instant within three hours of the change
    want = expected(cron, zone_groups()[group][0], start, end)
    trigger = BusinessCronTrigger.from_crontab(cron.text, ZoneInfo(group))
    now = instant(change) + dt.timedelta(microseconds=from_change)
    at_or_after = [instant(u) for u in want if instant(u) >= now]
    if at_or_after:
        assert trigger.get_next_fire_time(None, now) == at_or_after[0]
    after = [instant(u) for u in want if instant(u) > now]
    if after:
        assert trigger.get_next_fire_time(now, now + dt.timedelta(days=30)) == after[0]
