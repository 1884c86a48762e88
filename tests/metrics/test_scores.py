"""Scores: points per indicator, summed per customer inside the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from engine.config.checked import load_config
from engine.metrics.customer_metrics import refresh_metrics
from engine.metrics.scores import refresh_scores
from engine.models.tables import SCORE
from tests.factories import add_customer, add_purchase, utc

AS_OF = dt.date(2026, 11, 20)


def test_points_add_up_per_indicator(db, write_config) -> None:  # type: ignore[no-untyped-def]
    # the example config: +40 no order for 180 days, +25 after a refund, +15 fewer than two orders
    config = load_config(write_config())
    with db.begin() as c:
        lapsed = add_customer(c)  # one old order: 40 + 15 = 55
        add_purchase(c, lapsed, utc(2026, 1, 5, 12), "100")
        refunder = add_customer(c)  # two recent orders, one refunded: 25
        first = add_purchase(c, refunder, utc(2026, 11, 1, 12), "100")
        add_purchase(c, refunder, utc(2026, 11, 2, 12), "100")
        add_purchase(c, refunder, utc(2026, 11, 3, 12), "-100", refund_of_id=first)
        loyal = add_customer(c)  # two recent orders: 0, not stored
        add_purchase(c, loyal, utc(2026, 11, 1, 12), "100")
        add_purchase(c, loyal, utc(2026, 11, 5, 12), "100")
        visitor = add_customer(c)  # no orders: days_since_last_order is NULL -> only "fewer than two": 15
    refresh_metrics(db, config, AS_OF)
    [result] = refresh_scores(db, config, AS_OF)
    with db.connect() as connection:
        points = dict(connection.execute(select(SCORE.c.customer_id, SCORE.c.points)).all())
    assert points == {lapsed: 55, refunder: 25, visitor: 15}
    assert loyal not in points
    assert (result.name, result.scored) == ("churn", 3)
    assert result.average is not None and round(result.average, 2) == round((55 + 25 + 15) / 3, 2)


def test_scores_removed_from_config_are_dropped(db, write_config) -> None:  # type: ignore[no-untyped-def]
    extra = '\n[scores.big]\nrules = [{ when = "total_spent > 50", points = 7 }]\n'
    config = load_config(write_config(extra))
    with db.begin() as c:
        buyer = add_customer(c)
        add_purchase(c, buyer, utc(2026, 11, 1, 12), "100")
    refresh_metrics(db, config, AS_OF)
    refresh_scores(db, config, AS_OF)
    with db.connect() as connection:
        assert connection.execute(select(SCORE.c.points).where(SCORE.c.name == "big")).scalar_one() == 7
    refresh_scores(db, load_config(write_config()), AS_OF)
    with db.connect() as connection:
        assert connection.execute(select(SCORE.c.points).where(SCORE.c.name == "big")).all() == []
