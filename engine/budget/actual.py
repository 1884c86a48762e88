"""The actual cost of a period: what was recorded, not what was planned.

Actual cost = recorded contacts x the unit cost recorded at send time, over
the outbox rows sent in the period (``sent``, ``delivered``, ``bounced``:
a bounced message was sent and paid for; a ``failed`` one was not), plus the
preparation cost of each campaign whose first run falls in the period (the
preparation recorded with that run). Grouped in SQL: one query for the
contacts, one for the preparation.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from decimal import Decimal

from sqlalchemy import ColumnElement, Connection, and_, func, literal, select
from sqlalchemy.sql import Subquery

from engine.budget.report import ActualLine, as_money
from engine.models import OUTBOX, RUN
from engine.models import outbox as states
from engine.reporting import Period
from engine.sql import UtcDateTime

#: runs that count as having run: their audience was queued
RAN_STATES = (states.RUN_RUNNING, states.RUN_QUEUED, states.RUN_DONE)


def first_runs(
    period_start: dt.datetime, period_end: dt.datetime, scope: ColumnElement[bool] | None = None
) -> Subquery:
    """The first run of each campaign (``scope`` selects which runs; None: all) when it falls in the period.

    A run counts when it ran (running, queued or done); the first one carries the
    campaign's preparation cost, in the period it falls in.
    """
    ranked = select(
        RUN.c.id,
        RUN.c.campaign,
        RUN.c.strategy,
        RUN.c.segment,
        RUN.c.scheduled_for,
        RUN.c.preparation_cost,
        func.row_number()
        .over(partition_by=RUN.c.campaign, order_by=(RUN.c.scheduled_for, RUN.c.id))
        .label("nth"),
    ).where(RUN.c.state.in_(RAN_STATES))
    if scope is not None:
        ranked = ranked.where(scope)
    runs = ranked.subquery("ranked_runs")
    return (
        select(runs)
        .where(
            runs.c.nth == 1,
            runs.c.scheduled_for >= literal(period_start, UtcDateTime()),
            runs.c.scheduled_for < literal(period_end, UtcDateTime()),
        )
        .subquery("first_runs")
    )


def actual_lines(connection: Connection, period: Period, zone: zoneinfo.ZoneInfo) -> list[ActualLine]:
    """Recorded contacts and preparation of ``period``, one line per campaign and step."""
    start, end = period.bounds(zone)
    sent = and_(
        OUTBOX.c.state.in_(states.CONTACTED_STATES),
        OUTBOX.c.sent_at >= literal(start, UtcDateTime()),
        OUTBOX.c.sent_at < literal(end, UtcDateTime()),
    )
    rows = connection.execute(
        select(
            RUN.c.campaign,
            RUN.c.strategy,
            RUN.c.segment,
            OUTBOX.c.step,
            OUTBOX.c.channel,
            func.count(OUTBOX.c.customer_id.distinct()),
            func.sum(OUTBOX.c.contacts),
            func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts),
        )
        .select_from(OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id))
        .where(sent)
        .group_by(RUN.c.campaign, RUN.c.strategy, RUN.c.segment, OUTBOX.c.step, OUTBOX.c.channel)
    ).all()
    lines: dict[tuple[str, int], ActualLine] = {}
    for campaign, strategy, segment, step, channel, clients, contacts, cost in rows:
        lines[(campaign, step)] = ActualLine(
            campaign,
            strategy,
            segment,
            step,
            channel,
            clients,
            Decimal(str(contacts or 0)),
            as_money(cost),
        )
    first = first_runs(start, end)
    first_channel = (
        select(func.min(OUTBOX.c.channel))
        .where(OUTBOX.c.run_id == first.c.id, OUTBOX.c.step == 0)
        .scalar_subquery()
    )
    prepared = connection.execute(
        select(first.c.campaign, first.c.strategy, first.c.segment, first.c.preparation_cost, first_channel)
    ).all()
    first_step: dict[str, int] = defaultdict(lambda: 0)
    for campaign, step in lines:
        first_step[campaign] = min(step, first_step.get(campaign, step))
    for campaign, strategy, segment, preparation, channel in prepared:
        cost = Decimal(str(preparation or 0))
        if not cost:
            continue
        key = (campaign, first_step.get(campaign, 0))
        done = lines.get(key)
        if done is None:
            done = ActualLine(campaign, strategy, segment, key[1], channel or "", 0, Decimal(0), Decimal(0))
        lines[key] = ActualLine(
            done.campaign,
            done.strategy,
            done.segment,
            done.step,
            done.channel,
            done.clients,
            done.contacts,
            done.contact_cost,
            done.preparation + cost,
        )
    return [lines[key] for key in sorted(lines)]
