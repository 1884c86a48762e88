"""Who a run of a campaign is about, by its trigger, as one SELECT of customer ids.

* ``schedule`` and ``at``: the current members of the campaign's segment;
* ``on_segment_entry``: members who entered the segment since the previous
  run (and are still in it);
* ``on_event``: members with the campaign's event since the previous run;
* ``anniversary``: members whose date field has its yearly return on the
  run's day, shifted by ``offset_days`` (29 February counts as 28 February
  in other years).

The window of a triggered run is ``(window_start, scheduled_for]``:
consecutive runs never see an entry or an event twice, and miss none.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, literal, select
from sqlalchemy.sql import Select

from engine.campaigns import Campaign
from engine.models import CUSTOMER, EVENT, MEMBERSHIP, METRICS
from engine.sql import MonthDay, UtcDate


def _anniversary_condition(campaign: Campaign, day: dt.date) -> ColumnElement[bool]:
    assert campaign.anniversary is not None
    field = campaign.anniversary.field
    # the anniversary falls offset_days before the contact: "birthday in 3 days" is offset -3
    target = day - dt.timedelta(days=campaign.anniversary.offset_days)
    column: ColumnElement[Any] = METRICS.c.first_order_at if field == "first_order_at" else CUSTOMER.c[field]
    days = [target.strftime("%m-%d")]
    leap_day_elsewhere = target.month == 2 and target.day == 28
    if leap_day_elsewhere and not _is_leap(target.year):
        days.append("02-29")
    as_date: ColumnElement[Any] = column if field == "birth_date" else UtcDate(column)
    # at least one year old: signing up today is not an anniversary
    return and_(MonthDay(as_date).in_(days), as_date < literal(target, Date))


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def audience_select(
    campaign: Campaign,
    *,
    scheduled_for: dt.datetime,
    window_start: dt.datetime | None,
    business_day: dt.date,
) -> Select[Any]:
    """``SELECT customer_id`` of the run's audience (each customer once)."""
    member = and_(MEMBERSHIP.c.segment == campaign.segment, MEMBERSHIP.c.left_at.is_(None))
    if campaign.trigger in ("schedule", "at"):
        return select(MEMBERSHIP.c.customer_id.label("customer_id")).where(member)
    if campaign.trigger == "on_segment_entry":
        entered = MEMBERSHIP.c.entered_at <= scheduled_for
        if window_start is not None:
            entered = and_(entered, MEMBERSHIP.c.entered_at > window_start)
        return select(MEMBERSHIP.c.customer_id.label("customer_id")).where(member, entered)
    if campaign.trigger == "on_event":
        happened = and_(EVENT.c.name == campaign.on_event, EVENT.c.occurred_at <= scheduled_for)
        if window_start is not None:
            happened = and_(happened, EVENT.c.occurred_at > window_start)
        members = select(MEMBERSHIP.c.customer_id).where(member)
        return (
            select(EVENT.c.customer_id.label("customer_id"))
            .where(happened, EVENT.c.customer_id.in_(members))
            .distinct()
        )
    # anniversary
    condition = _anniversary_condition(campaign, business_day)
    source = CUSTOMER.join(MEMBERSHIP, and_(MEMBERSHIP.c.customer_id == CUSTOMER.c.id, member))
    if campaign.anniversary is not None and campaign.anniversary.field == "first_order_at":
        source = source.join(METRICS, METRICS.c.customer_id == CUSTOMER.c.id)
    return select(CUSTOMER.c.id.label("customer_id")).select_from(source).where(condition)
