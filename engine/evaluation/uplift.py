"""Uplift: how much better the treated customers did than the control group, and what that brought.

Metrics, all per customer of a group's audience:

* ``responder_rate``: customers who responded (a response of ``ENGAGED_KINDS``);
* ``conversion_rate``: customers with an attributed purchase;
* ``retention_rate``: customers with any purchase inside their goal window;
* ``revenue_per_customer``: attributed revenue (Welch's t-test on the means).

:func:`uplift` compares treated against control, when both have an audience,
on the metrics that mean something there: the conversion rate (two
proportions) and revenue per customer (Welch) always, the responder rate
only when control has responders (it never gets contacted, so usually not),
the retention rate when it is the campaign's goal. :func:`incremental` turns
a difference per customer into money: (amount per treated customer - per
control customer) x treated audience.
"""

from __future__ import annotations

from decimal import Decimal

from engine.evaluation.figures import Comparison, GroupFigures
from engine.evaluation.statistics import compare_means, compare_proportions

CENT = Decimal("0.01")
RESPONDER_RATE = "responder_rate"
CONVERSION_RATE = "conversion_rate"
RETENTION_RATE = "retention_rate"
REVENUE_PER_CUSTOMER = "revenue_per_customer"
#: the metric of each campaign goal
GOAL_METRICS = {
    "response": RESPONDER_RATE,
    "conversion": CONVERSION_RATE,
    "retention": RETENTION_RATE,
    "revenue": REVENUE_PER_CUSTOMER,
}
#: the count each rate metric divides by the audience
RATE_COUNTS = {RESPONDER_RATE: "responders", CONVERSION_RATE: "converted", RETENTION_RATE: "retained"}


def metric_of_goal(goal: str) -> str:
    """The metric a campaign goal is judged by."""
    return GOAL_METRICS[goal]


def metric_value(group: GroupFigures, metric: str) -> float | None:
    """``group``'s value of ``metric`` (None without an audience)."""
    if not group.audience:
        return None
    if metric == REVENUE_PER_CUSTOMER:
        return float(group.revenue / group.audience)
    return int(getattr(group, RATE_COUNTS[metric])) / group.audience


def compare_groups(
    treated: GroupFigures, control: GroupFigures, metric: str, confidence: float
) -> Comparison:
    """``treated`` against ``control`` on ``metric``: two proportions, or two means for revenue."""
    if metric == REVENUE_PER_CUSTOMER:
        return compare_means(
            treated.revenue,
            treated.revenue_sum_squares,
            treated.audience,
            control.revenue,
            control.revenue_sum_squares,
            control.audience,
            metric=metric,
            confidence=confidence,
        )
    count = RATE_COUNTS[metric]
    return compare_proportions(
        getattr(treated, count),
        treated.audience,
        getattr(control, count),
        control.audience,
        metric=metric,
        confidence=confidence,
    )


def incremental(treated: GroupFigures, control: GroupFigures, amount: str) -> Decimal:
    """(``amount`` per treated customer - per control customer) x treated audience, in cents."""
    per_treated = getattr(treated, amount) / treated.audience
    per_control = getattr(control, amount) / control.audience
    return ((per_treated - per_control) * treated.audience).quantize(CENT)


def uplift(
    treated: GroupFigures, control: GroupFigures, goal_metric: str, confidence: float
) -> list[Comparison]:
    """Treated against control on the metrics that mean something here (module docstring)."""
    if not treated.audience or not control.audience:
        return []
    metrics = []
    if control.responders:
        metrics.append(RESPONDER_RATE)
    metrics.append(CONVERSION_RATE)
    if metric_of_goal(goal_metric) == RETENTION_RATE:
        metrics.append(RETENTION_RATE)
    metrics.append(REVENUE_PER_CUSTOMER)
    return [compare_groups(treated, control, metric, confidence) for metric in metrics]
