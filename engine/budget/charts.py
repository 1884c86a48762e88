"""Charts of a budget report as PNG bytes (matplotlib, no GUI, no global pyplot state).

* :func:`strategy_chart`: plan, approved and actual per strategy, grouped bars;
* :func:`channel_chart`: plan and actual contact cost per channel;
* :func:`segment_chart`: plan cost per segment (contact cost and preparation), horizontal bars.

Each figure is its own :class:`matplotlib.figure.Figure` drawn by the Agg canvas, so
charts can be made from several threads and never open a window. A report with nothing
to show gives a chart that says so instead of failing. Amounts are drawn as floats:
the figures only show them; every sum is made in ``Decimal`` by the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Literal

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from engine.budget.report import BudgetReport
from engine.reporting import ACTUAL, APPROVED, PLAN, empty_chart, new_figure, png_bytes


def _amounts(axis: Axes, which: Literal["x", "y"], currency: str) -> None:
    """Thousands separators on the money axis (``which`` is "x" or "y")."""
    formatter = FuncFormatter(lambda value, _: f"{value:,.0f}")
    if which == "x":
        axis.xaxis.set_major_formatter(formatter)
        axis.set_xlabel(f"Cost ({currency})")
    else:
        axis.yaxis.set_major_formatter(formatter)
        axis.set_ylabel(f"Cost ({currency})")
    axis.grid(axis=which, linestyle=":", alpha=0.6)
    axis.set_axisbelow(True)


def _grouped(
    axis: Axes,
    keys: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[Decimal | None]]],
) -> None:
    """Vertical bars, one group per key, one bar per series (a None value draws no bar)."""
    width = 0.8 / len(series)
    for n, (label, colour, values) in enumerate(series):
        offset = (n - (len(series) - 1) / 2) * width
        positions = [i + offset for i in range(len(keys))]
        heights = [float(v) if v is not None else 0.0 for v in values]
        axis.bar(positions, heights, width, label=label, color=colour)
    axis.set_xticks(range(len(keys)), [k.replace("_", " ") for k in keys])


def strategy_chart(report: BudgetReport) -> bytes:
    """Plan, approved (when a budget file gives it) and actual per strategy, as PNG bytes."""
    figure, axis = new_figure()
    title = f"Plan, approved and actual by strategy, {report.period.label}"
    totals = report.totals("strategy")
    if not totals:
        empty_chart(axis, title, "No plan lines, approvals or actual cost in this period")
        return png_bytes(figure)
    keys = [t.key for t in totals]
    series: list[tuple[str, str, Sequence[Decimal | None]]] = [("Plan", PLAN, [t.plan for t in totals])]
    if report.approved is not None:
        series.append(("Approved", APPROVED, [t.approved for t in totals]))
    series.append(("Actual", ACTUAL, [t.actual for t in totals]))
    _grouped(axis, keys, series)
    axis.set_title(title)
    _amounts(axis, "y", report.currency)
    return png_bytes(figure)


def channel_chart(report: BudgetReport) -> bytes:
    """Plan and actual contact cost per channel (preparation excluded), as PNG bytes."""
    figure, axis = new_figure()
    title = f"Contact cost by channel, plan and actual, {report.period.label}"
    totals = report.totals("channel")
    if not totals:
        empty_chart(axis, title, "No contacts planned or made in this period")
        return png_bytes(figure)
    keys = [t.key for t in totals]
    _grouped(
        axis, keys, [("Plan", PLAN, [t.plan for t in totals]), ("Actual", ACTUAL, [t.actual for t in totals])]
    )
    axis.set_title(title)
    _amounts(axis, "y", report.currency)
    return png_bytes(figure)


def segment_chart(report: BudgetReport) -> bytes:
    """Plan cost per segment, contact cost and preparation stacked, horizontal bars, as PNG bytes."""
    matrix = report.matrix()
    planned = [s for s in matrix.segments if any(line.segment == s for line in report.lines)]
    height = max(3.0, 1.2 + 0.45 * len(planned))
    figure, axis = new_figure(height=height)
    title = f"Plan cost by segment, {report.period.label}"
    if not planned:
        empty_chart(axis, title, "No plan lines in this period")
        return png_bytes(figure)
    contact = [
        float(sum((matrix.cell(s, c).plan_cost for c in matrix.channels), Decimal(0))) for s in planned
    ]
    preparation = [float(matrix.preparation.get(s, (Decimal(0), Decimal(0)))[0]) for s in planned]
    rows = range(len(planned))
    axis.barh(rows, contact, color=PLAN, label="Contact cost")
    axis.barh(rows, preparation, left=contact, color=APPROVED, label="Preparation")
    axis.set_yticks(rows, planned)
    axis.invert_yaxis()  # first segment on top, as in the tables
    axis.set_title(title)
    _amounts(axis, "x", report.currency)
    return png_bytes(figure)
