"""Charts of one campaign's result as PNG bytes (matplotlib's Agg canvas, no GUI, no global pyplot state).

* :func:`conversion_chart`: the conversion rate of each group (control, each
  variant, or all treated without variants) with its confidence interval
  (Wilson score interval) as error bars;
* :func:`revenue_chart`: attributed revenue per customer of each group, with
  the confidence interval of the mean (Student's t, from the sum of squares);
* :func:`funnel_chart`: contacts sent, opened, clicked and customers converted,
  one series per variant (or all treated).

The figure, PNG and "nothing to show" helpers are the budget charts' own
(:mod:`engine.budget.charts`), so every chart of the engine looks alike.
Values are drawn as floats: the figures only show them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from engine.evaluation.figures import CampaignResult, GroupFigures
from engine.evaluation.statistics import normal_quantile, t_quantile
from engine.reporting import ACTUAL, APPROVED, PLAN, empty_chart, new_figure, png_bytes

CONTROL_COLOUR = APPROVED
TREATED_COLOURS = (PLAN, ACTUAL, "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#ccb974")
FUNNEL_STAGES = ("sent", "opened", "clicked", "converted")
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Interval:
    """A value and its confidence interval; None values when a group has no audience."""

    value: float | None
    low: float | None
    high: float | None


def chart_groups(result: CampaignResult) -> list[GroupFigures]:
    """The groups the charts compare: control, then each variant (all treated when there are none)."""
    treated = result.variants or [result.treated]
    return [result.control, *treated]


def group_label(result: CampaignResult, group: GroupFigures) -> str:
    """How pages and charts name a group."""
    if group is result.control:
        return "control"
    if group is result.treated:
        return "all treated"
    return f"variant {group.name}"


def proportion_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """``successes / n`` with its Wilson score interval (sound near 0 % and 100 %, unlike p ± z·se)."""
    if n <= 0:
        return Interval(None, None, None)
    z = normal_quantile(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(group: GroupFigures, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Revenue per customer of ``group`` with the t interval of the mean (none below two customers)."""
    n = group.audience
    if n <= 0:
        return Interval(None, None, None)
    mean = float(group.revenue) / n
    if n < 2:
        return Interval(mean, None, None)
    variance = max(0.0, (float(group.revenue_sum_squares) - n * mean * mean) / (n - 1))
    half = t_quantile(0.5 + confidence / 2, n - 1) * math.sqrt(variance / n)
    return Interval(mean, mean - half, mean + half)


def _colours(count: int) -> list[str]:
    """Control grey, then one colour per treated group."""
    return [CONTROL_COLOUR, *(TREATED_COLOURS[n % len(TREATED_COLOURS)] for n in range(count - 1))]


def _reach(upper: float | None, lower: float | None) -> float:
    """How far an error bar reaches: never negative (rounding can put a bound past its value); 0 unknown."""
    if upper is None or lower is None or math.isnan(upper - lower):
        return 0.0
    return max(0.0, upper - lower)


def _bars_with_intervals(
    axis: Axes, labels: Sequence[str], intervals: Sequence[Interval], text: FuncFormatter
) -> None:
    """One bar per group, its interval as an error bar, its value written above."""
    positions = range(len(labels))
    heights = [i.value or 0.0 for i in intervals]
    below = [_reach(i.value, i.low) for i in intervals]
    above = [_reach(i.high, i.value) for i in intervals]
    axis.bar(positions, heights, 0.6, color=_colours(len(labels)))
    axis.errorbar(positions, heights, yerr=[below, above], fmt="none", ecolor="#1d2430", capsize=6)
    for x, interval in zip(positions, intervals, strict=True):
        if interval.value is not None:
            top = max(interval.value, interval.high or interval.value)
            axis.annotate(
                text(interval.value, 0),
                (x, top),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
    axis.set_xticks(list(positions), list(labels))
    axis.grid(axis="y", linestyle=":", alpha=0.6)
    axis.set_axisbelow(True)
    tops = [max(i.value, i.high or i.value) for i in intervals if i.value is not None]
    axis.set_ylim(0, max(tops, default=0) * 1.15 or 1)  # room for the values written above the bars


def conversion_chart(result: CampaignResult, confidence: float = DEFAULT_CONFIDENCE) -> bytes:
    """Conversion rate per group with ``confidence`` intervals, as PNG bytes."""
    figure, axis = new_figure()
    level = f"{confidence * 100:g} %"
    title = f"Conversion rate by group ({level} confidence intervals)"
    groups = chart_groups(result)
    if not any(g.audience for g in groups):
        empty_chart(axis, title, "No audience yet: the campaign has not run")
        return png_bytes(figure)
    intervals = [proportion_interval(g.converted, g.audience, confidence) for g in groups]
    _bars_with_intervals(
        axis,
        [group_label(result, g) for g in groups],
        intervals,
        FuncFormatter(lambda value, _: f"{value * 100:.1f} %"),
    )
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    axis.set_ylabel("Customers who bought")
    axis.set_title(title)
    return png_bytes(figure)


def revenue_chart(result: CampaignResult, currency: str, confidence: float = DEFAULT_CONFIDENCE) -> bytes:
    """Attributed revenue per customer per group with ``confidence`` intervals, as PNG bytes."""
    figure, axis = new_figure()
    title = f"Revenue per customer by group ({confidence * 100:g} % confidence intervals)"
    groups = chart_groups(result)
    if not any(g.audience for g in groups):
        empty_chart(axis, title, "No audience yet: the campaign has not run")
        return png_bytes(figure)
    money = FuncFormatter(lambda value, _: f"{value:,.2f}")
    _bars_with_intervals(
        axis, [group_label(result, g) for g in groups], [mean_interval(g, confidence) for g in groups], money
    )
    axis.yaxis.set_major_formatter(money)
    axis.set_ylabel(f"Revenue per customer ({currency})")
    axis.set_title(title)
    return png_bytes(figure)


def funnel_chart(result: CampaignResult) -> bytes:
    """Contacts sent, opened, clicked and customers converted per variant (or all treated), as PNG bytes."""
    figure, axis = new_figure()
    title = "Funnel: sent, opened, clicked, converted"
    groups = result.variants or [result.treated]
    if not any(g.sent for g in groups):
        empty_chart(axis, title, "Nothing sent yet")
        return png_bytes(figure)
    width = 0.8 / len(groups)
    colours = _colours(len(groups) + 1)[1:]
    for n, group in enumerate(groups):
        offset = (n - (len(groups) - 1) / 2) * width
        values = [getattr(group, stage) for stage in FUNNEL_STAGES]
        bars = axis.bar(
            [i + offset for i in range(len(FUNNEL_STAGES))],
            values,
            width,
            color=colours[n],
            label=group_label(result, group),
        )
        axis.bar_label(bars, labels=[f"{v:,}" for v in values], fontsize=8, padding=2)
    axis.set_xticks(range(len(FUNNEL_STAGES)), [stage.capitalize() for stage in FUNNEL_STAGES])
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_ylabel("Contacts (converted: customers)")
    axis.grid(axis="y", linestyle=":", alpha=0.6)
    axis.set_axisbelow(True)
    axis.margins(y=0.12)
    axis.set_title(title)
    return png_bytes(figure)
