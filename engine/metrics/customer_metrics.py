"""Per-customer metrics, refreshed inside the database with set-based SQL.

One ``INSERT ... SELECT`` computes every built-in metric for every customer
(orders, spend, first/last order, days since the last order, average order
value, margin, RFM scores, ABC class, lifecycle stage); one more per
config-defined metric fills ``customer_metric_value``. No customer row is
pulled into Python.

Definitions (as of the business date ``as_of``):

* only purchases made before the end of ``as_of`` (business time zone) count;
  refunds carry negative amounts, so ``total_spent`` and ``margin_total`` are
  net of refunds, while ``orders_count`` counts purchases that are not refunds;
* ``days_since_last_order``: whole days elapsed from the last order to the end
  of ``as_of``;
* RFM scores 1..5 among customers with orders, 5 best, from the rank:
  ``1 + (rank - 1) * 5 / n`` (integer division), so equal values get equal
  scores (most recent order, most orders, most spent score highest);
* ABC: customers with positive spend ranked by spend (ties by id); a customer
  is A while the revenue of those ranked before it is below the A share of all
  revenue (so the A class covers at least that share), B likewise below the B
  share, else C; customers with orders but no positive spend are C, customers
  without orders have none;
* lifecycle stage: ``partner`` when declared so, ``regular`` with at least
  ``regular_min_orders`` orders in the last ``regular_window_days`` days,
  ``client`` with any order, else ``visitor``.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Engine,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)

from engine.clock import utcnow
from engine.models import CUSTOMER, METRIC_VALUE, METRICS, PURCHASE
from engine.rules import PurchaseScope
from engine.sql import ElapsedDays, analyze

if TYPE_CHECKING:
    from engine.config import Config


@dataclass(frozen=True)
class MetricsRefresh:
    """What a metrics refresh did."""

    as_of: dt.date
    customers: int
    buyers: int
    custom: dict[str, int]
    seconds: float


def business_today(config: Config, now: dt.datetime | None = None) -> dt.date:
    """Today's date in the business time zone."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    return (now or utcnow()).astimezone(zone).date()


def end_of_day(config: Config, day: dt.date) -> dt.datetime:
    """The UTC instant when ``day`` ends in the business time zone."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return local.astimezone(dt.UTC)


def _score(order: Any) -> Any:
    """RFM score 1..5 from a rank among buyers (equal values, equal score)."""
    rank = func.rank().over(order_by=order)
    buyers = func.count().over()
    return 1 + ((rank - 1) * 5) // buyers


def built_in_metrics_select(config: Config, as_of: dt.date, refreshed_at: dt.datetime) -> Any:
    """The SELECT producing one ``customer_metrics`` row per customer (ranks come after)."""
    metrics = config.settings.metrics
    end = end_of_day(config, as_of)
    window_start = end - dt.timedelta(days=metrics.regular_window_days)
    is_order = PURCHASE.c.refund_of_id.is_(None)
    per_customer = (
        select(
            PURCHASE.c.customer_id.label("customer_id"),
            func.sum(case((is_order, 1), else_=0)).label("orders_count"),
            func.sum(case((is_order, 0), else_=1)).label("refunds_count"),
            func.sum(PURCHASE.c.amount).label("total_spent"),
            func.sum(PURCHASE.c.margin).label("margin_total"),
            func.min(case((is_order, PURCHASE.c.ordered_at))).label("first_order_at"),
            func.max(case((is_order, PURCHASE.c.ordered_at))).label("last_order_at"),
            func.sum(case((and_(is_order, PURCHASE.c.ordered_at >= window_start), 1), else_=0)).label(
                "orders_in_window"
            ),
        )
        .where(PURCHASE.c.ordered_at < end)
        .group_by(PURCHASE.c.customer_id)
        .subquery("per_customer")
    )
    orders = func.coalesce(per_customer.c.orders_count, 0)
    lifecycle = case(
        (CUSTOMER.c.lifecycle_stage == "partner", "partner"),
        (
            func.coalesce(per_customer.c.orders_in_window, 0) >= metrics.regular_min_orders,
            "regular",
        ),
        (orders > 0, "client"),
        else_="visitor",
    )
    return select(
        CUSTOMER.c.id,
        orders,
        func.coalesce(per_customer.c.refunds_count, 0),
        func.coalesce(per_customer.c.total_spent, 0),
        per_customer.c.margin_total,
        per_customer.c.first_order_at,
        per_customer.c.last_order_at,
        case(
            (per_customer.c.last_order_at.is_(None), None),
            else_=ElapsedDays(per_customer.c.last_order_at, literal(end, METRICS.c.refreshed_at.type)),
        ),
        case((orders > 0, func.round(per_customer.c.total_spent / orders, 2)), else_=None),
        func.coalesce(per_customer.c.orders_in_window, 0),
        lifecycle,
        literal(as_of, METRICS.c.as_of.type),
        literal(refreshed_at, METRICS.c.refreshed_at.type),
    ).select_from(CUSTOMER.outerjoin(per_customer, per_customer.c.customer_id == CUSTOMER.c.id))


BUILT_IN_COLUMNS = (
    "customer_id",
    "orders_count",
    "refunds_count",
    "total_spent",
    "margin_total",
    "first_order_at",
    "last_order_at",
    "days_since_last_order",
    "avg_order_value",
    "orders_in_window",
    "lifecycle_stage",
    "as_of",
    "refreshed_at",
)


def ranks_update(config: Config) -> Any:
    """The UPDATE giving buyers their RFM scores and ABC class, from window functions over all buyers."""
    shares = config.settings.metrics.abc
    buyers = METRICS.alias("buyers")
    total_revenue = cast(func.sum(buyers.c.total_spent).over(), Float)
    revenue_before = cast(
        func.coalesce(
            func.sum(buyers.c.total_spent).over(
                order_by=(buyers.c.total_spent.desc(), buyers.c.customer_id), rows=(None, -1)
            ),
            0,
        ),
        Float,
    )
    ranked = (
        select(
            buyers.c.customer_id,
            _score(buyers.c.last_order_at).label("recency_score"),
            _score(buyers.c.orders_count).label("frequency_score"),
            _score(buyers.c.total_spent).label("monetary_score"),
            case(
                (buyers.c.total_spent <= 0, "C"),
                (revenue_before < total_revenue * literal(float(shares["A"]), Float()), "A"),
                (revenue_before < total_revenue * literal(float(shares["B"]), Float()), "B"),
                else_="C",
            ).label("abc_class"),
        )
        .where(buyers.c.orders_count > 0)
        .subquery("ranked")
    )
    rfm = (
        cast(ranked.c.recency_score, Integer).cast(String())
        + cast(ranked.c.frequency_score, Integer).cast(String())
        + cast(ranked.c.monetary_score, Integer).cast(String())
    )
    return (
        update(METRICS)
        .where(METRICS.c.customer_id == ranked.c.customer_id)
        .values(
            recency_score=ranked.c.recency_score,
            frequency_score=ranked.c.frequency_score,
            monetary_score=ranked.c.monetary_score,
            rfm=rfm,
            abc_class=ranked.c.abc_class,
        )
    )


def custom_metric_select(config: Config, name: str, as_of: dt.date) -> Any:
    """The SELECT producing the non-empty values of custom metric ``name``."""
    metric = config.settings.metrics.custom[name]
    end = end_of_day(config, as_of)
    conditions = [PURCHASE.c.ordered_at < end, config.metric_filters[name].to_sql(PurchaseScope(as_of))]
    if metric.window_days:
        conditions.append(PURCHASE.c.ordered_at >= end - dt.timedelta(days=metric.window_days))
    if not metric.include_refunds:
        conditions.append(PURCHASE.c.refund_of_id.is_(None))
    if metric.aggregate == "count":
        value: Any = func.count()
    else:
        column = PURCHASE.c[metric.field or "amount"]
        value = getattr(func, metric.aggregate)(column)
    return (
        select(literal(name, METRIC_VALUE.c.name.type), PURCHASE.c.customer_id, value)
        .where(*conditions)
        .group_by(PURCHASE.c.customer_id)
    )


def refresh_metrics(
    engine: Engine, config: Config, as_of: dt.date | None = None, *, now: dt.datetime | None = None
) -> MetricsRefresh:
    """Recompute every customer's metrics as of ``as_of`` (default: business today), in one transaction."""
    started = time.perf_counter()
    refreshed_at = now or utcnow()
    as_of = as_of or business_today(config, refreshed_at)
    custom_counts: dict[str, int] = {}
    with engine.begin() as connection:
        connection.execute(delete(METRICS))
        connection.execute(
            insert(METRICS).from_select(
                list(BUILT_IN_COLUMNS), built_in_metrics_select(config, as_of, refreshed_at)
            )
        )
        connection.execute(ranks_update(config))
        connection.execute(delete(METRIC_VALUE))
        for name in config.settings.metrics.custom:
            connection.execute(
                insert(METRIC_VALUE).from_select(
                    ["name", "customer_id", "value"], custom_metric_select(config, name, as_of)
                )
            )
            custom_counts[name] = connection.execute(
                select(func.count()).select_from(METRIC_VALUE).where(METRIC_VALUE.c.name == name)
            ).scalar_one()
        analyze(connection, METRICS.name, METRIC_VALUE.name)
        customers = connection.execute(select(func.count()).select_from(METRICS)).scalar_one()
        buyers = connection.execute(
            select(func.count()).select_from(METRICS).where(METRICS.c.orders_count > 0)
        ).scalar_one()
    return MetricsRefresh(
        as_of=as_of,
        customers=customers,
        buyers=buyers,
        custom=custom_counts,
        seconds=time.perf_counter() - started,
    )
