"""The SQL of the programme indicators: one aggregate query per concept, grouped in the database.

Every query joins a small table of report periods (one row per period, built
from literals with ``UNION ALL``) to the recorded rows and groups by period,
and by segment when asked: a customer belongs to the segments whose
``segment_membership`` stay holds the period's end instant
(``entered_at <= end < left_at``, an open stay has no ``left_at``). Only the
aggregated rows (periods x segments) reach Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    FromClause,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
)

from engine.models import CUSTOMER, MEMBERSHIP, OUTBOX, PURCHASE, RESPONSE
from engine.models import outbox as states
from engine.models import response as kinds
from engine.rules import attribute_expression
from engine.sql import UtcDateTime

#: the year a share-of-wallet budget covers
WALLET_DAYS = 365
#: mailings counted as read when the recipient opened them or clicked a link in them
READ_KINDS = (kinds.OPEN, kinds.CLICK)
#: email rows that reached the recipient's server: the denominator of the read rate
MAILED_STATES = (states.SENT, states.DELIVERED)


@dataclass(frozen=True)
class PeriodBounds:
    """One report period as UTC instants: ``[start, end)``; ``end`` is now for the current period."""

    start: dt.datetime
    end: dt.datetime


def periods_cte(periods: Sequence[PeriodBounds], churn_days: int) -> CTE:
    """The periods as a table: index, bounds, the churn windows before each bound and the wallet year.

    Columns: ``idx``, ``start_at``, ``end_at``, ``churn_start_from`` (start - churn_days: where the
    purchases a period's churn needs begin), ``churn_end_from`` (end - churn_days) and ``year_from``
    (end - 365 days: the year of the share of wallet).
    """
    churn = dt.timedelta(days=churn_days)
    year = dt.timedelta(days=WALLET_DAYS)
    rows = []
    for idx, period in enumerate(periods):
        bounds = {
            "start_at": period.start,
            "end_at": period.end,
            "churn_start_from": period.start - churn,
            "churn_end_from": period.end - churn,
            "year_from": period.end - year,
        }
        rows.append(
            select(
                literal(idx, Integer()).label("idx"),
                *(literal(value, UtcDateTime()).label(name) for name, value in bounds.items()),
            )
        )
    query: Any = rows[0] if len(rows) == 1 else union_all(*rows)
    return query.cte("report_periods")


def _member_at(customer: ColumnElement[Any], instant: ColumnElement[Any], segments: Sequence[str]) -> Any:
    """The join condition: a stay in one of ``segments`` of ``customer`` holding ``instant``."""
    return and_(
        MEMBERSHIP.c.customer_id == customer,
        MEMBERSHIP.c.segment.in_(list(segments)),
        MEMBERSHIP.c.entered_at <= instant,
        or_(MEMBERSHIP.c.left_at.is_(None), MEMBERSHIP.c.left_at > instant),
    )


def _grouped(
    base: FromClause,
    idx: ColumnElement[Any],
    customer: ColumnElement[Any],
    instant: ColumnElement[Any],
    segments: Sequence[str] | None,
    *aggregates: Any,
) -> Select[Any]:
    """``SELECT idx[, segment], aggregates FROM base[ JOIN membership] GROUP BY idx[, segment]``."""
    if segments is None:
        return select(idx.label("idx"), *aggregates).select_from(base).group_by(idx)
    joined = base.join(MEMBERSHIP, _member_at(customer, instant, segments))
    return (
        select(idx.label("idx"), MEMBERSHIP.c.segment.label("segment"), *aggregates)
        .select_from(joined)
        .group_by(idx, MEMBERSHIP.c.segment)
    )


def _active_at(periods: CTE, spans: Any, instant: ColumnElement[Any], window_from: ColumnElement[Any]) -> Any:
    """The join condition: the customer's last order before ``instant`` is on or after ``window_from``.

    ``spans`` holds each order with the customer's next order: the order is the last
    one before the instant when it is before it and the next one is not.
    """
    return and_(
        spans.c.ordered_at < instant,
        spans.c.ordered_at >= window_from,
        or_(spans.c.next_order_at.is_(None), spans.c.next_order_at >= instant),
    )


def purchase_figures(connection: Connection, periods: CTE, segments: Sequence[str] | None) -> list[Any]:
    """Per period (and segment): buyers, net revenue, margin, customers active at start and end, churned.

    Three sets of per-customer facts, united and grouped in the database by period
    and customer: the purchases of each period (each purchase falls in one period),
    and who was active at each period's start and at its end. Activity comes from
    each order paired with the customer's next one (``LEAD``): an instant's last
    order is found without pairing every purchase with every period, so the rows
    grouped are bounded by customers x periods.
    """
    ordered = PURCHASE.c.ordered_at
    is_order = PURCHASE.c.refund_of_id.is_(None)
    spans = (
        select(
            PURCHASE.c.customer_id,
            ordered,
            func.lead(ordered)
            .over(partition_by=PURCHASE.c.customer_id, order_by=(ordered, PURCHASE.c.id))
            .label("next_order_at"),
        )
        .where(
            is_order,
            ordered >= select(func.min(periods.c.churn_start_from)).scalar_subquery(),
            ordered < select(func.max(periods.c.end_at)).scalar_subquery(),
        )
        .subquery("order_spans")
    )
    zero = literal(0, Integer())
    one = literal(1, Integer())
    in_period = select(
        periods.c.idx,
        PURCHASE.c.customer_id,
        case((is_order, 1), else_=0).label("bought"),
        PURCHASE.c.amount.label("revenue"),
        func.coalesce(PURCHASE.c.margin, 0).label("margin"),
        zero.label("active_start"),
        zero.label("active_end"),
    ).select_from(periods.join(PURCHASE, and_(ordered >= periods.c.start_at, ordered < periods.c.end_at)))
    active_start = select(periods.c.idx, spans.c.customer_id, zero, zero, zero, one, zero).select_from(
        periods.join(spans, _active_at(periods, spans, periods.c.start_at, periods.c.churn_start_from))
    )
    active_end = select(periods.c.idx, spans.c.customer_id, zero, zero, zero, zero, one).select_from(
        periods.join(spans, _active_at(periods, spans, periods.c.end_at, periods.c.churn_end_from))
    )
    facts = union_all(in_period, active_start, active_end).subquery("facts")
    per_customer = (
        select(
            facts.c.idx,
            facts.c.customer_id,
            func.max(facts.c.bought).label("bought"),
            func.sum(facts.c.revenue).label("revenue"),
            func.sum(facts.c.margin).label("margin"),
            func.max(facts.c.active_start).label("active_start"),
            func.max(facts.c.active_end).label("active_end"),
        )
        .group_by(facts.c.idx, facts.c.customer_id)
        .subquery("per_customer")
    )
    churned = case((and_(per_customer.c.active_start == 1, per_customer.c.active_end == 0), 1), else_=0)
    query = _grouped(
        per_customer.join(periods, periods.c.idx == per_customer.c.idx),
        per_customer.c.idx,
        per_customer.c.customer_id,
        periods.c.end_at,
        segments,
        func.sum(per_customer.c.bought).label("buyers"),
        func.sum(per_customer.c.revenue).label("revenue"),
        func.sum(per_customer.c.margin).label("margin"),
        func.sum(per_customer.c.active_start).label("active_start"),
        func.sum(per_customer.c.active_end).label("active"),
        func.sum(churned).label("churned"),
    )
    return list(connection.execute(query).mappings())


def contact_figures(connection: Connection, periods: CTE, segments: Sequence[str] | None) -> list[Any]:
    """Per period (and segment): contacts made and their cost, emails mailed and emails read.

    Contacts are outbox rows sent in the period (``sent``, ``delivered``, ``bounced``:
    paid for, as in the budget's actual cost), cost = unit cost at send time x contacts.
    Mailed = email rows ``sent`` or ``delivered``; read = those with an open or a click.
    """
    read = (
        select(RESPONSE.c.outbox_id)
        .where(RESPONSE.c.kind.in_(READ_KINDS), RESPONSE.c.outbox_id.is_not(None))
        .group_by(RESPONSE.c.outbox_id)
        .subquery("read_rows")
    )
    mailed = and_(OUTBOX.c.channel == "email", OUTBOX.c.state.in_(MAILED_STATES))
    base = periods.join(
        OUTBOX,
        and_(
            OUTBOX.c.state.in_(states.CONTACTED_STATES),
            OUTBOX.c.sent_at >= periods.c.start_at,
            OUTBOX.c.sent_at < periods.c.end_at,
        ),
    ).outerjoin(read, read.c.outbox_id == OUTBOX.c.id)
    query = _grouped(
        base,
        periods.c.idx,
        OUTBOX.c.customer_id,
        periods.c.end_at,
        segments,
        func.sum(OUTBOX.c.contacts).label("contacts"),
        func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts).label("contact_cost"),
        func.sum(case((mailed, 1), else_=0)).label("mailed"),
        func.sum(case((and_(mailed, read.c.outbox_id.is_not(None)), 1), else_=0)).label("read"),
    )
    return list(connection.execute(query).mappings())


def satisfaction_figures(connection: Connection, periods: CTE, segments: Sequence[str] | None) -> list[Any]:
    """Per period (and segment): how many satisfaction scores were given in it, and their sum."""
    base = periods.join(
        RESPONSE,
        and_(
            RESPONSE.c.kind == kinds.SATISFACTION,
            RESPONSE.c.score.is_not(None),
            RESPONSE.c.occurred_at >= periods.c.start_at,
            RESPONSE.c.occurred_at < periods.c.end_at,
        ),
    )
    query = _grouped(
        base,
        periods.c.idx,
        RESPONSE.c.customer_id,
        periods.c.end_at,
        segments,
        func.count(RESPONSE.c.score).label("scores"),
        func.sum(RESPONSE.c.score).label("score_sum"),
    )
    return list(connection.execute(query).mappings())


def wallet_figures(
    connection: Connection,
    periods: CTE,
    segments: Sequence[str] | None,
    attribute: str,
    kind: str,
) -> list[Any]:
    """Per period (and segment): customers whose yearly wallet is known (> 0), its sum, their revenue.

    The revenue is net of refunds over the 365 days before the period's end, so it
    compares with a yearly budget whatever the period's length.
    """
    wallet = attribute_expression(attribute, kind)
    known = (
        select(CUSTOMER.c.id.label("customer_id"), wallet.label("wallet"))
        .where(wallet > 0)
        .subquery("wallets")
    )
    ordered = PURCHASE.c.ordered_at
    year = (
        select(periods.c.idx, PURCHASE.c.customer_id, func.sum(PURCHASE.c.amount).label("revenue"))
        .select_from(periods.join(PURCHASE, and_(ordered >= periods.c.year_from, ordered < periods.c.end_at)))
        .where(PURCHASE.c.customer_id.in_(select(known.c.customer_id)))
        .group_by(periods.c.idx, PURCHASE.c.customer_id)
        .subquery("year_revenue")
    )
    base = periods.join(known, true()).outerjoin(
        year, and_(year.c.idx == periods.c.idx, year.c.customer_id == known.c.customer_id)
    )
    query = _grouped(
        base,
        periods.c.idx,
        known.c.customer_id,
        periods.c.end_at,
        segments,
        func.count().label("wallet_customers"),
        func.sum(known.c.wallet).label("wallet_total"),
        func.sum(func.coalesce(year.c.revenue, 0)).label("wallet_revenue"),
    )
    return list(connection.execute(query).mappings())
