"""When a contact may happen for a customer in a given zone, and which cap window it falls in.

Times depend on the customer's zone only, never on the customer: they are
computed once per zone in Python (``zoneinfo``, DST-correct) and handed to
the database as a ``CASE`` over the customer's zone, so the audience stays a
set-based statement however large it is.

* email and SMS: at ``send_at_local`` if the campaign has one, then moved
  out of quiet hours;
* calls: on the business day; the list shows each customer's calling window;
* letters and meetings: when the run fires.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, literal, select

from engine.clock import local_instant
from engine.contact_policy.caps import Cap
from engine.contact_policy.quiet_hours import DailyWindow
from engine.models import CUSTOMER
from engine.sql import UtcDateTime

TIMED_CHANNELS = ("email", "sms")


@dataclass(frozen=True)
class ZoneTimes:
    """For one zone: the earliest allowed contact and the bounds of its cap window."""

    send_at: dt.datetime
    cap_start: dt.datetime | None
    cap_end: dt.datetime | None


def next_period_start(cap: Cap, start: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """The start of the calendar period after the one beginning at ``start``."""
    first = start.astimezone(zone).date()
    if cap.period == "day":
        following = first + dt.timedelta(days=1)
    elif cap.period == "week":
        following = first + dt.timedelta(days=7)
    else:
        following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return local_instant(following, dt.time(0), zone)


def zone_times(
    zone: zoneinfo.ZoneInfo,
    base: dt.datetime,
    channel: str,
    send_at_local: dt.time | None,
    quiet: DailyWindow | None,
    cap: Cap | None,
) -> ZoneTimes:
    """When a contact fired at ``base`` may happen in ``zone``, and its cap window.

    ``send_at_local`` is the campaign's local sending time (email and SMS), None to send when fired.
    """
    send_at = base
    if channel in TIMED_CHANNELS:
        if send_at_local is not None:
            day = base.astimezone(zone).date()
            send_at = local_instant(day, send_at_local, zone)
            if send_at < base:
                send_at = local_instant(day + dt.timedelta(days=1), send_at_local, zone)
        if quiet is not None:
            send_at = quiet.next_outside(send_at, zone)
    if cap is None:
        return ZoneTimes(send_at, None, None)
    start = cap.window_start(send_at, zone)
    return ZoneTimes(send_at, start, next_period_start(cap, start, zone))


def customer_zones(connection: Connection, default: str) -> list[str]:
    """The valid zones customers have (besides the default), read once per run."""
    names = connection.execute(
        select(CUSTOMER.c.timezone).where(CUSTOMER.c.timezone.is_not(None)).distinct()
    ).scalars()
    zones = []
    for name in names:
        if name == default:
            continue
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue  # an unknown zone counts as the default
        zones.append(name)
    return sorted(zones)


def zone_expression(default: str) -> ColumnElement[str]:
    """The customer's zone name, the default when none is recorded."""
    return func.coalesce(CUSTOMER.c.timezone, literal(default))


def by_zone(values: Mapping[str, dt.datetime], default: str) -> ColumnElement[Any]:
    """A time per zone as SQL: ``CASE zone WHEN 'Asia/Tomsk' THEN ... ELSE <default zone's> END``."""
    fallback = literal(values[default], UtcDateTime())
    others = {name: literal(value, UtcDateTime()) for name, value in values.items() if name != default}
    if not others:
        return fallback
    return case(others, value=CUSTOMER.c.timezone, else_=fallback)
