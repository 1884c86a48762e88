"""The SQL aggregates behind a campaign report: counted in the database, never row by row in Python.

Each function returns small dictionaries keyed by campaign (and group and
variant); :mod:`engine.evaluation.campaign_report` assembles them. ``keys``
limits the campaigns (None: all). Definitions:

* **audience** (step 0, per group and variant): rows of step 0 whose customer
  was reachable, i.e. every state but ``condition_not_met``, ``no_consent``,
  ``no_address`` and ``suppressed``; those in state ``control`` are the
  control group, the rest the treated group (contacted or not: trimmed by the
  budget or a cap, failed, still queued... an intention-to-treat audience);
* **contacts** (any step, treated rows): ``sent`` = rows contacted (``sent``,
  ``delivered``, ``bounced``), ``delivered`` = rows ``delivered``, ``failed``
  = rows ``failed`` or ``bounced``; ``opened`` / ``clicked`` / ``responded``
  = rows with a response ``open`` or ``click`` / ``click`` / one of
  ``ENGAGED_KINDS``; ``responders`` = customers with a responded row; cost =
  unit cost x contacts of the contacted rows;
* **conversions**: sums over the ``conversion`` rows (see
  :mod:`engine.evaluation.attribution`), first per exposure (run and
  customer), then per group: customers converted, purchases, revenue, margin,
  and the sum of squared revenue per customer (for Welch's test);
* **retained**: exposures with any purchase (``amount > 0``, not a refund)
  inside their goal window, attributed to them or not;
* **preparation**: the preparation cost of each campaign's first run that
  ran, as in the budget's actual cost (:func:`engine.budget.actual.first_runs`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, null, select, true
from sqlalchemy.sql import Select

from engine.budget import RAN_STATES, first_runs
from engine.evaluation.attribution import Windows, exposures
from engine.models import CONVERSION, OUTBOX, PURCHASE, RESPONSE, RUN
from engine.models import outbox as states
from engine.models import response as kinds
from engine.sql import UtcDateTime

#: step-0 states of customers that could not be reached: outside both groups
#: step-0 rows outside the audience: not reachable, or held for the A/B winner (not exposed yet)
UNREACHABLE_STATES = (
    states.CONDITION_NOT_MET,
    states.NO_CONSENT,
    states.NO_ADDRESS,
    states.SUPPRESSED,
    states.HELD,
)
OPENED_KINDS = (kinds.OPEN, kinds.CLICK)  # a click is an open whose pixel was blocked
FAILED_STATES = (states.FAILED, states.BOUNCED)
CENT = Decimal("0.01")

#: (campaign, group, variant): group ``treated`` | ``control``; variant None for control
GroupKey = tuple[str, str, str | None]


@dataclass(frozen=True)
class ContactCounts:
    """The treated rows of one campaign and variant (any step)."""

    sent: int = 0
    delivered: int = 0
    failed: int = 0
    opened: int = 0
    clicked: int = 0
    responded: int = 0
    responders: int = 0
    cost: Decimal = Decimal("0.00")


@dataclass(frozen=True)
class ConversionSums:
    """The conversions of one campaign, group and variant."""

    converted: int = 0
    purchases: int = 0
    revenue: Decimal = Decimal("0.00")
    margin: Decimal = Decimal("0.00")
    revenue_sum_squares: Decimal = Decimal("0.0000")


def money(value: Any) -> Decimal:
    """A sum from the database as money (SQLite sums floats: rounded to cents)."""
    return Decimal(str(value or 0)).quantize(CENT)


def _of(column: ColumnElement[Any], keys: Sequence[str] | None) -> ColumnElement[bool]:
    return column.in_(list(keys)) if keys is not None else true()


def run_counts(connection: Connection, keys: Sequence[str] | None = None) -> dict[str, int]:
    """Runs that ran (running, queued, done) per campaign."""
    rows = connection.execute(
        select(RUN.c.campaign, func.count())
        .where(RUN.c.state.in_(RAN_STATES), _of(RUN.c.campaign, keys))
        .group_by(RUN.c.campaign)
    ).all()
    return {campaign: count for campaign, count in rows}


def last_runs(connection: Connection, keys: Sequence[str] | None = None) -> dict[str, dt.datetime]:
    """When each campaign's latest run (that ran) was due: its goal window runs from there."""
    rows = connection.execute(
        select(RUN.c.campaign, func.max(RUN.c.scheduled_for))
        .where(RUN.c.state.in_(RAN_STATES), _of(RUN.c.campaign, keys))
        .group_by(RUN.c.campaign)
    ).all()
    return {campaign: last for campaign, last in rows if last is not None}  # MAX keeps the column's UTC type


def audience_counts(connection: Connection, keys: Sequence[str] | None) -> dict[GroupKey, int]:
    """Reachable customers of step 0 per campaign, group and variant."""
    in_control = OUTBOX.c.state == states.CONTROL
    group = case((in_control, literal(kinds.CONTROL)), else_=literal(kinds.TREATED))
    variant = case((in_control, null()), else_=OUTBOX.c.variant)
    rows = connection.execute(
        select(RUN.c.campaign, group, variant, func.count())
        .select_from(OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id))
        .where(OUTBOX.c.step == 0, OUTBOX.c.state.not_in(UNREACHABLE_STATES), _of(RUN.c.campaign, keys))
        .group_by(RUN.c.campaign, group, variant)
    ).all()
    return {(campaign, grp, variant): count for campaign, grp, variant, count in rows}


def _responded_rows(name: str, response_kinds: Sequence[str]) -> Any:
    return (
        select(RESPONSE.c.outbox_id)
        .where(RESPONSE.c.outbox_id.is_not(None), RESPONSE.c.kind.in_(list(response_kinds)))
        .distinct()
        .subquery(name)
    )


def contact_counts(
    connection: Connection, keys: Sequence[str] | None
) -> dict[tuple[str, str | None], ContactCounts]:
    """Contacts, failures, responses and cost of the treated rows per campaign and variant."""
    opened = _responded_rows("opened_rows", OPENED_KINDS)
    clicked = _responded_rows("clicked_rows", (kinds.CLICK,))
    engaged = _responded_rows("engaged_rows", kinds.ENGAGED_KINDS)
    contacted = OUTBOX.c.state.in_(states.CONTACTED_STATES)
    per_customer = (
        select(
            RUN.c.campaign,
            OUTBOX.c.variant,
            func.count().filter(contacted).label("sent"),
            func.count().filter(OUTBOX.c.state == states.DELIVERED).label("delivered"),
            func.count().filter(OUTBOX.c.state.in_(FAILED_STATES)).label("failed"),
            func.count(opened.c.outbox_id).label("opened"),
            func.count(clicked.c.outbox_id).label("clicked"),
            func.count(engaged.c.outbox_id).label("responded"),
            func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts).filter(contacted).label("cost"),
        )
        .select_from(
            OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id)
            .outerjoin(opened, opened.c.outbox_id == OUTBOX.c.id)
            .outerjoin(clicked, clicked.c.outbox_id == OUTBOX.c.id)
            .outerjoin(engaged, engaged.c.outbox_id == OUTBOX.c.id)
        )
        .where(OUTBOX.c.state != states.CONTROL, _of(RUN.c.campaign, keys))
        .group_by(RUN.c.campaign, OUTBOX.c.run_id, OUTBOX.c.customer_id, OUTBOX.c.variant)
        .subquery("per_customer")
    )
    c = per_customer.c
    rows = connection.execute(
        select(
            c.campaign,
            c.variant,
            func.sum(c.sent),
            func.sum(c.delivered),
            func.sum(c.failed),
            func.sum(c.opened),
            func.sum(c.clicked),
            func.sum(c.responded),
            func.count().filter(c.responded > 0),
            func.sum(c.cost),
        ).group_by(c.campaign, c.variant)
    ).all()
    return {
        (campaign, variant): ContactCounts(
            int(sent or 0),
            int(delivered or 0),
            int(failed or 0),
            int(opened_ or 0),
            int(clicked_ or 0),
            int(responded or 0),
            int(responders or 0),
            money(cost),
        )
        for campaign, variant, sent, delivered, failed, opened_, clicked_, responded, responders, cost in rows
    }


def conversion_sums(connection: Connection, keys: Sequence[str] | None) -> dict[GroupKey, ConversionSums]:
    """Attributed purchases per campaign, group and variant, with revenue squared per customer."""
    per_exposure = (
        select(
            CONVERSION.c.campaign,
            CONVERSION.c.group.label("grp"),
            CONVERSION.c.variant,
            func.count().label("purchases"),
            func.sum(CONVERSION.c.revenue).label("revenue"),
            func.sum(CONVERSION.c.margin).label("margin"),
        )
        .where(_of(CONVERSION.c.campaign, keys))
        .group_by(
            CONVERSION.c.campaign,
            CONVERSION.c.run_id,
            CONVERSION.c.customer_id,
            CONVERSION.c.group,
            CONVERSION.c.variant,
        )
        .subquery("per_exposure")
    )
    e = per_exposure.c
    rows = connection.execute(
        select(
            e.campaign,
            e.grp,
            e.variant,
            func.count(),
            func.sum(e.purchases),
            func.sum(e.revenue),
            func.sum(e.margin),
            func.sum(e.revenue * e.revenue),
        ).group_by(e.campaign, e.grp, e.variant)
    ).all()
    return {
        (campaign, grp, variant): ConversionSums(
            int(converted),
            int(purchases or 0),
            money(revenue),
            money(margin),
            Decimal(str(squares or 0)).quantize(Decimal("0.0001")),
        )
        for campaign, grp, variant, converted, purchases, revenue, margin, squares in rows
    }


def retained_counts(
    connection: Connection, keys: Sequence[str] | None, windows: Windows, now: dt.datetime
) -> dict[GroupKey, int]:
    """Exposures with any purchase inside their goal window (by ``now``), per campaign, group and variant."""
    exposure = exposures(windows)
    bought = and_(
        PURCHASE.c.customer_id == exposure.c.customer_id,
        PURCHASE.c.ordered_at >= exposure.c.exposed_at,
        PURCHASE.c.ordered_at < exposure.c.window_end,
        PURCHASE.c.amount > 0,
        PURCHASE.c.refund_of_id.is_(None),
        PURCHASE.c.ordered_at <= literal(now, UtcDateTime()),
    )
    query: Select[Any] = (
        select(
            exposure.c.campaign,
            exposure.c.grp,
            exposure.c.variant,
            func.count(exposure.c.outbox_id.distinct()),
        )
        .select_from(exposure.join(PURCHASE, bought))
        .where(_of(exposure.c.campaign, keys))
        .group_by(exposure.c.campaign, exposure.c.grp, exposure.c.variant)
    )
    return {(campaign, grp, variant): count for campaign, grp, variant, count in connection.execute(query)}


def preparation_costs(connection: Connection, keys: Sequence[str] | None) -> dict[str, Decimal]:
    """The preparation cost recorded with each campaign's first run that ran."""
    always = first_runs(
        dt.datetime(1900, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 1, 1, tzinfo=dt.UTC),
        _of(RUN.c.campaign, keys) if keys is not None else None,
    )
    rows = connection.execute(select(always.c.campaign, always.c.preparation_cost)).all()
    return {campaign: money(cost) for campaign, cost in rows}
