"""Comparing groups on a metric, and the A/B/n verdict: which variant wins on the campaign's goal.

Metrics, all per customer of a group's audience:

* ``responder_rate``: customers who responded (a response of ``ENGAGED_KINDS``);
* ``conversion_rate``: customers with an attributed purchase;
* ``retention_rate``: customers with any purchase inside their goal window;
* ``revenue_per_customer``: attributed revenue (Welch's t-test on the means).

A campaign's goal (``goal.metric``: response, conversion, retention,
revenue) names the metric its variants are judged by. :func:`pick_winner`
takes the variant with the best value, compares it with each of the ``k - 1``
others and calls it the winner only when it beats every one of them with
``p < (1 - confidence) / (k - 1)``: the Bonferroni correction keeps the
chance of a false winner under ``1 - confidence`` whatever ``k``.
"""

from __future__ import annotations

import math

from engine.evaluation.figures import CampaignResult, Comparison, GroupFigures, Winner
from engine.evaluation.statistics import compare_means, compare_proportions

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


def _p(value: float) -> str:
    return "p undefined" if math.isnan(value) else f"p = {value:.4g}"


def pick_winner(result: CampaignResult, confidence: float) -> Winner:
    """The variant of ``result`` best on its goal metric, significant under Bonferroni (module docstring).

    With fewer than two variants with an audience there is no test: the
    verdict names no variant. Otherwise ``variant`` is the leader (ties: the
    first listed) and ``significant`` says whether it beat every other;
    ``p_value`` is the largest of its p-values (the closest contest).
    """
    metric = metric_of_goal(result.goal_metric)
    confidence = float(confidence)
    arms = [group for group in result.variants if group.audience]
    if len(arms) < 2:
        return Winner(
            None, metric, False, None, "fewer than two variants with an audience: nothing to compare"
        )
    best = arms[0]
    for arm in arms[1:]:
        if (metric_value(arm, metric) or 0.0) > (metric_value(best, metric) or 0.0):
            best = arm
    others = [arm for arm in arms if arm is not best]
    alpha = (1.0 - confidence) / len(others)
    tests = [(arm.name, compare_groups(best, arm, metric, confidence).p_value) for arm in others]
    worst = max((p for _, p in tests), key=lambda p: math.inf if math.isnan(p) else p)
    against = ", ".join(f"{name} ({_p(p)})" for name, p in tests)
    rule = f"alpha = {1.0 - confidence:.4g} / {len(others)} comparison{'s' if len(others) > 1 else ''}"
    rule += f" = {alpha:.4g} (Bonferroni)"
    if all(not math.isnan(p) and p < alpha for _, p in tests):
        return Winner(
            best.name, metric, True, worst, f"{best.name} leads on {metric} and beats {against}; {rule}"
        )
    return Winner(
        best.name,
        metric,
        False,
        None if math.isnan(worst) else worst,
        f"{best.name} leads on {metric} but not significantly against every other variant: {against}; {rule}",
    )
