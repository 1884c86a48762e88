"""The A/B/n verdict: which variant wins on the campaign's goal.

Variants are compared on the metrics of :mod:`engine.evaluation.uplift`.
A campaign's goal (``goal.metric``: response, conversion, retention,
revenue) names the metric its variants are judged by. :func:`pick_winner`
takes the variant with the best value, compares it with each of the ``k - 1``
others and calls it the winner only when it beats every one of them with
``p < (1 - confidence) / (k - 1)``: the Bonferroni correction keeps the
chance of a false winner under ``1 - confidence`` whatever ``k``.
"""

from __future__ import annotations

import math

from engine.evaluation.figures import CampaignResult, Winner
from engine.evaluation.uplift import compare_groups, metric_of_goal, metric_value


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
