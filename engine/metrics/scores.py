"""Scores: points per indicator from config, summed per customer inside the database.

``[scores.churn]`` with rules such as ``{ when = "days_since_last_order > 180",
points = 40 }`` gives every customer the sum of the points of the indicators
that hold for them, in one ``INSERT ... SELECT`` per score. Only non-zero
scores are stored; rules read a missing score as 0 (``score.churn >= 50``).
Scores are computed after metrics and before segments, so their indicators
may name metrics and attributes but not other scores or segments.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, case, delete, func, insert, literal, select

from engine.metrics.customer_metrics import business_today
from engine.models import CUSTOMER, SCORE
from engine.rules import CustomerScope
from engine.sql import analyze

if TYPE_CHECKING:
    from engine.config import Config


@dataclass(frozen=True)
class ScoreRefresh:
    """What one score's refresh did: customers with non-zero points, and their average."""

    name: str
    scored: int
    average: float | None


def score_select(config: Config, name: str, as_of: dt.date) -> Any:
    """``SELECT name, customer_id, points`` for the customers whose score ``name`` is not 0."""
    scope = CustomerScope(config.fields, as_of)
    points: Any = literal(0)
    for indicator in config.scores[name]:
        points = points + case((indicator.rule.to_sql(scope), indicator.points), else_=0)
    inner = (
        select(CUSTOMER.c.id.label("customer_id"), points.label("points"))
        .select_from(scope.from_clause())
        .subquery("points")
    )
    return select(literal(name, SCORE.c.name.type), inner.c.customer_id, inner.c.points).where(
        inner.c.points != 0
    )


def refresh_scores(
    engine: Engine, config: Config, as_of: dt.date | None = None, *, names: list[str] | None = None
) -> list[ScoreRefresh]:
    """Recompute scores (all, or ``names``) for every customer, in one transaction."""
    as_of = as_of or business_today(config)
    results = []
    with engine.begin() as connection:
        for name in names or list(config.scores):
            connection.execute(delete(SCORE).where(SCORE.c.name == name))
            connection.execute(
                insert(SCORE).from_select(
                    ["name", "customer_id", "points"], score_select(config, name, as_of)
                )
            )
            scored, average = connection.execute(
                select(func.count(), func.avg(SCORE.c.points)).where(SCORE.c.name == name)
            ).one()
            results.append(ScoreRefresh(name, scored, float(average) if average is not None else None))
        analyze(connection, SCORE.name)
        stale = select(SCORE.c.name).where(SCORE.c.name.not_in(list(config.scores))).distinct()
        for (name,) in connection.execute(stale).all():
            connection.execute(delete(SCORE).where(SCORE.c.name == name))
    return results
