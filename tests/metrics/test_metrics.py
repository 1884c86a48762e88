"""Metrics computed inside the database, checked against figures worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from engine.config.checked import load_config
from engine.metrics.customer_metrics import refresh_metrics
from engine.models.tables import METRIC_VALUE, METRICS
from tests.factories import add_customer, add_purchase, utc

AS_OF = dt.date(2026, 11, 20)  # ends 2026-11-20 21:00 UTC in Europe/Moscow


def _metrics(db, customer_id):  # type: ignore[no-untyped-def]
    with db.connect() as connection:
        return connection.execute(select(METRICS).where(METRICS.c.customer_id == customer_id)).one()


def _shop(db):  # type: ignore[no-untyped-def]
    """Five customers whose metrics are worked out in the comments."""
    with db.begin() as c:
        anna = add_customer(c, first_name="Anna")
        # 3 orders: 400 + 350 + 250 = 1000; last 2026-11-20 10:00 UTC (0 days before the end of as_of)
        add_purchase(c, anna, utc(2026, 3, 1, 9), "400.00", category="shoes", margin=Decimal("100.00"))
        add_purchase(c, anna, utc(2026, 10, 1, 9), "350.00", category="shoes", margin=Decimal("50.00"))
        add_purchase(c, anna, utc(2026, 11, 20, 10), "250.00", category="cosmetics")
        boris = add_customer(c, first_name="Boris")
        # 1 order of 500, 2026-08-12 12:00 UTC: 100 days 9 hours before 2026-11-20 21:00 UTC -> 100
        add_purchase(c, boris, utc(2026, 8, 12, 12), "500.00", category="home")
        clara = add_customer(c, first_name="Clara")
        # 2 orders 150 + 150, one refunded by 100 -> net 200, 2 orders, 1 refund
        first = add_purchase(c, clara, utc(2025, 12, 1, 12), "150.00", category="shoes")
        add_purchase(c, clara, utc(2026, 1, 10, 12), "150.00", category="shoes")
        add_purchase(c, clara, utc(2025, 12, 5, 12), "-100.00", refund_of_id=first, category="shoes")
        dmitry = add_customer(c, first_name="Dmitry")  # no orders: visitor
        elena = add_customer(c, company="Elena LLC", lifecycle_stage="partner")
        add_purchase(c, elena, utc(2024, 6, 1, 12), "100.00")
        # after the end of as_of: ignored
        add_purchase(c, elena, utc(2026, 11, 20, 21, 30), "9999.00")
    return anna, boris, clara, dmitry, elena


def test_built_in_metrics_match_the_hand_computed_figures(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    anna, boris, clara, dmitry, elena = _shop(db)
    result = refresh_metrics(db, config, AS_OF)
    assert (result.customers, result.buyers) == (5, 4)

    a = _metrics(db, anna)
    assert (a.orders_count, a.refunds_count, a.total_spent) == (3, 0, Decimal("1000.00"))
    assert a.margin_total == Decimal("150.00")
    assert a.first_order_at == utc(2026, 3, 1, 9) and a.last_order_at == utc(2026, 11, 20, 10)
    assert a.days_since_last_order == 0
    assert a.avg_order_value == Decimal("333.33")
    assert a.lifecycle_stage == "regular"  # 3 orders within 365 days

    b = _metrics(db, boris)
    assert (b.orders_count, b.total_spent, b.days_since_last_order) == (1, Decimal("500.00"), 100)
    assert b.lifecycle_stage == "client"

    c = _metrics(db, clara)
    assert (c.orders_count, c.refunds_count, c.total_spent) == (2, 1, Decimal("200.00"))
    assert c.avg_order_value == Decimal("100.00")
    assert c.margin_total is None

    d = _metrics(db, dmitry)
    assert (d.orders_count, d.total_spent, d.last_order_at, d.days_since_last_order) == (
        0,
        Decimal("0.00"),
        None,
        None,
    )
    assert (d.lifecycle_stage, d.abc_class, d.rfm) == ("visitor", None, None)

    e = _metrics(db, elena)
    assert (e.orders_count, e.total_spent, e.lifecycle_stage) == (1, Decimal("100.00"), "partner")

    # ABC over 1800 of revenue, A ends at 80 % = 1440, B at 95 % = 1710:
    # Anna 1000 (before 0 -> A), Boris 500 (before 1000 < 1440 -> A),
    # Clara 200 (before 1500 -> B), Elena 100 (before 1700 < 1710 -> B)
    assert [m.abc_class for m in (a, b, c, e)] == ["A", "A", "B", "B"]

    # frequency ranks (ascending): Boris, Elena 1; Clara 3; Anna 4 of 4 buyers
    # score = 1 + (rank - 1) * 5 // 4 -> 1, 1, 3, 4
    assert [m.frequency_score for m in (b, e, c, a)] == [1, 1, 3, 4]
    # monetary: Elena 100 (1), Clara 200 (2), Boris 500 (3), Anna 1000 (4) -> 1, 2, 3, 4
    assert [m.monetary_score for m in (e, c, b, a)] == [1, 2, 3, 4]
    # recency by last order: Elena 2024-06, Clara 2026-01, Boris 2026-08, Anna 2026-11 -> 1, 2, 3, 4
    assert [m.recency_score for m in (e, c, b, a)] == [1, 2, 3, 4]
    assert a.rfm == "444" and e.rfm == "111"


def test_custom_metrics_aggregate_with_filter_and_window(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(
        write_config(
            """
[metrics.custom.shoes_spent]
aggregate = "sum"
field = "amount"
where = "category == 'shoes'"

[metrics.custom.biggest_order]
aggregate = "max"
field = "amount"
"""
        )
    )
    anna, boris, clara, _dmitry, _elena = _shop(db)
    result = refresh_metrics(db, config, AS_OF)
    with db.connect() as connection:
        rows = connection.execute(
            select(METRIC_VALUE.c.name, METRIC_VALUE.c.customer_id, METRIC_VALUE.c.value)
        )
        values = {(name, cid): value for name, cid, value in rows}
    # shoes in the last 90 days (from 2026-08-22 21:00 UTC): Anna's order of 2026-10-01 only
    assert values[("shoes_orders_90d", anna)] == 1
    assert ("shoes_orders_90d", clara) not in values
    # shoes spent, no window, refunds left out: Anna 750, Clara 300
    assert values[("shoes_spent", anna)] == Decimal("750")
    assert values[("shoes_spent", clara)] == Decimal("300")
    assert values[("biggest_order", boris)] == Decimal("500")
    assert result.custom["shoes_spent"] == 2


def test_refresh_replaces_previous_values(db, write_config) -> None:  # type: ignore[no-untyped-def]
    config = load_config(write_config())
    anna, *_ = _shop(db)
    refresh_metrics(db, config, AS_OF)
    refresh_metrics(db, config, AS_OF + dt.timedelta(days=10))
    assert _metrics(db, anna).days_since_last_order == 10
    with db.connect() as connection:
        assert connection.execute(select(METRICS.c.customer_id)).scalars().all().count(anna) == 1
