"""Charts of the programme as PNG bytes (matplotlib's Agg canvas, no GUI, no global pyplot state).

* :func:`churn_chart`: churn rate per period, one line per segment (or all customers);
* :func:`revenue_chart`: revenue and profit per customer per period;
* :func:`funnel_chart`: each lifecycle stage's conversion, actual against target;
* :func:`migration_chart`: the migration matrix as a heatmap of row shares, counts written in.

Each figure is its own :class:`~matplotlib.figure.Figure`; a chart with nothing
to show says so instead of failing. Values are drawn as floats: the figures
only show them, every sum is made in ``Decimal`` by the reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from engine.evaluation.funnel import Funnel
from engine.evaluation.indicators import IndicatorRow, ProgrammeIndicators
from engine.evaluation.migration_matrix import MigrationMatrix
from engine.reporting import empty_chart, new_figure, png_bytes

ACTUAL = "#4c72b0"
TARGET = "#8c8c8c"
PROFIT = "#dd8452"


def _value(value: Decimal | None) -> float:
    return float("nan") if value is None else float(value)


def _groups(report: ProgrammeIndicators) -> list[tuple[str, list[IndicatorRow]]]:
    if report.segments is None:
        return [("all customers", report.for_segment(None))]
    return [(segment, report.for_segment(segment)) for segment in report.segments]


def _periods(axis: Axes, report: ProgrammeIndicators) -> None:
    labels = [p.label + (" (to date)" if p.partial else "") for p in report.periods]
    axis.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 6 else 0, ha="right")
    axis.grid(axis="y", linestyle=":", alpha=0.6)
    axis.set_axisbelow(True)


def period_line(axis: Axes, rows: Sequence[IndicatorRow], values: list[float], **style: Any) -> None:
    """A line over the complete periods; a period still running (to date) is a hollow marker of its own.

    A partial period is not joined to the line: half a month of churn is not a fall in churn.
    """
    complete = [n for n, row in enumerate(rows) if not row.period.partial]
    line = axis.plot(complete, [values[n] for n in complete], **style)
    colour = line[0].get_color()
    for n, row in enumerate(rows):
        if row.period.partial:
            axis.plot([n], [values[n]], linestyle="none", marker=style.get("marker", "o"),
                      markerfacecolor="white", markeredgecolor=colour, color=colour)  # fmt: skip


def churn_chart(report: ProgrammeIndicators) -> bytes:
    """Churn rate per period (``*``: to date), one line per segment or over all customers."""
    figure, axis = new_figure()
    title = f"Churn rate by {report.period_kind} (no order for {report.churn_days} days)"
    groups = _groups(report)
    if not any(row.active_start for _, rows in groups for row in rows):
        empty_chart(axis, title, "No customers active at the start of any period")
        return png_bytes(figure, legend_columns=4)
    for name, rows in groups:
        period_line(axis, rows, [_value(row.churn_rate) for row in rows], marker="o", label=name)
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_ylim(bottom=0)
    axis.set_title(title)
    _periods(axis, report)
    return png_bytes(figure, legend_columns=4)


def revenue_chart(report: ProgrammeIndicators) -> bytes:
    """Revenue and profit (margin - contact cost) per buying customer per period, over all customers."""
    figure, axis = new_figure()
    title = f"Revenue and profit per customer by {report.period_kind} ({report.currency})"
    rows = report.for_segment(None) or report.rows
    if not any(row.buyers for row in rows):
        empty_chart(axis, title, "No purchases in these periods")
        return png_bytes(figure, legend_columns=4)
    period_line(
        axis, rows, [_value(r.revenue_per_customer) for r in rows], marker="o", color=ACTUAL, label="Revenue"
    )
    period_line(
        axis, rows, [_value(r.profit_per_customer) for r in rows], marker="s", color=PROFIT, label="Profit"
    )
    axis.axhline(0, color="#333333", linewidth=0.8)
    axis.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.set_title(title)
    _periods(axis, report)
    return png_bytes(figure, legend_columns=4)


def funnel_chart(funnel: Funnel) -> bytes:
    """Each stage's conversion from the stage before, actual against target, as grouped bars."""
    figure, axis = new_figure()
    title = "Lifecycle funnel: conversion from the stage before, actual and target"
    stages = [stage for stage in funnel.stages if stage.previous is not None]
    if not funnel.stages or not funnel.stages[0].customers:
        empty_chart(axis, title, "No customers yet")
        return png_bytes(figure, legend_columns=4)
    width = 0.38
    positions = range(len(stages))
    actual = [_value(stage.actual) for stage in stages]
    target = [_value(stage.target) for stage in stages]
    axis.bar([p - width / 2 for p in positions], actual, width, color=ACTUAL, label="Actual")
    axis.bar([p + width / 2 for p in positions], target, width, color=TARGET, label="Target")
    for position, stage, height in zip(positions, stages, actual, strict=True):
        axis.annotate(
            f"{stage.customers:,}",
            (position - width / 2, 0.0 if math.isnan(height) else height),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )
    axis.set_xticks(positions, [stage.name for stage in stages])
    axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    axis.set_ylim(0, 1.08)
    axis.grid(axis="y", linestyle=":", alpha=0.6)
    axis.set_axisbelow(True)
    axis.set_title(title)
    return png_bytes(figure, legend_columns=4)


def _cells(matrix: MigrationMatrix) -> list[list[float]]:
    shares: list[list[float]] = []
    for before in matrix.labels:
        total = matrix.row_total(before)
        shares.append([matrix.count(before, after) / total if total else 0.0 for after in matrix.labels])
    return shares


def migration_chart(matrix: MigrationMatrix) -> bytes:
    """The migration matrix as a heatmap: colour = share of the row, text = customers."""
    size = len(matrix.labels)
    figure, axis = new_figure(width=max(6.0, 1.2 + 0.9 * size), height=max(4.0, 1.4 + 0.6 * size))
    title = f"Segment migration {matrix.start:%Y-%m-%d} to {matrix.end:%Y-%m-%d}"
    if not matrix.customers:
        empty_chart(axis, title, "No customers")
        return png_bytes(figure, legend=False)
    shares = _cells(matrix)
    image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    for row, before in enumerate(matrix.labels):
        for column, after in enumerate(matrix.labels):
            colour = "white" if shares[row][column] > 0.6 else "#1d2430"
            axis.text(column, row, f"{matrix.count(before, after):,}", ha="center", va="center", color=colour)
    ticks: Sequence[int] = range(size)
    axis.set_xticks(ticks, matrix.labels, rotation=30, ha="right")
    axis.set_yticks(ticks, matrix.labels)
    axis.set_xlabel(f"at {matrix.end:%Y-%m-%d %H:%M} UTC")
    axis.set_ylabel(f"at {matrix.start:%Y-%m-%d %H:%M} UTC")
    figure.colorbar(image, ax=axis, format=PercentFormatter(1.0), label="share of the row")
    axis.set_title(title)
    return png_bytes(figure, legend=False)
