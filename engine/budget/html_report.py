"""The budget report as one self-contained HTML page with charts, for finance and print.

The page carries everything inside it: CSS in the template, the three charts of
:mod:`engine.budget.charts` as ``data:image/png;base64`` images (ids ``chart-strategy``,
``chart-channel``, ``chart-segment``), so it can be mailed or archived as one file.
The template is ``engine/budget/templates/budget_report.html.j2``, rendered by jinja2
with autoescaping: campaign names and notes are text, never markup.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from engine.budget.charts import channel_chart, segment_chart, strategy_chart
from engine.budget.report import DIMENSIONS, BudgetReport, ContactMatrix, MatrixCell, Total, number
from engine.reporting import Chart, format_count, format_money, png_data_uri, write_atomically

TEMPLATE = "budget_report.html.j2"


def _charts(report: BudgetReport) -> list[Chart]:
    currency = report.currency
    return [
        Chart(
            "chart-strategy",
            "By strategy",
            f"Bar chart: plan, approved and actual cost in {currency} per strategy",
            png_data_uri(strategy_chart(report)),
        ),
        Chart(
            "chart-channel",
            "By channel",
            f"Bar chart: plan and actual contact cost in {currency} per channel",
            png_data_uri(channel_chart(report)),
        ),
        Chart(
            "chart-segment",
            "By segment",
            f"Bar chart: plan cost in {currency} per segment, contact cost and preparation",
            png_data_uri(segment_chart(report)),
        ),
    ]


@dataclass(frozen=True)
class MatrixRow:
    """One segment of the contact matrix as the page shows it."""

    segment: str
    cells: list[MatrixCell]  # in the order of the matrix's channels
    preparation: tuple[Decimal, Decimal]  # plan, actual
    plan: Decimal  # contact cost of all channels plus preparation


def _matrix_rows(matrix: ContactMatrix) -> tuple[list[MatrixRow], list[Decimal]]:
    """The rows of the matrix and the plan contact cost per channel."""
    rows: list[MatrixRow] = []
    for segment in matrix.segments:
        cells = [matrix.cell(segment, channel) for channel in matrix.channels]
        preparation = matrix.preparation.get(segment, (Decimal(0), Decimal(0)))
        plan = sum((cell.plan_cost for cell in cells), preparation[0])
        rows.append(MatrixRow(segment, cells, preparation, plan))
    per_channel = [
        sum((matrix.cell(segment, channel).plan_cost for segment in matrix.segments), Decimal(0))
        for channel in matrix.channels
    ]
    return rows, per_channel


def _sign(value: Decimal | None) -> str:
    """CSS class of a variance: over (positive) or under."""
    if value is None or value == 0:
        return ""
    return "over" if value > 0 else "under"


def _shortfall(headroom: Decimal | None) -> str:
    """CSS class of headroom: over when the plan needs more than was approved."""
    return "over" if headroom is not None and headroom < 0 else ""


def _fingerprint_state(report: BudgetReport) -> tuple[str, str]:
    matches = report.fingerprint_matches
    if matches is None:
        return ("no approval" if report.approved is None else "the budget file records no fingerprint", "")
    if matches:
        return ("approved on this configuration", "ok")
    return ("the configuration changed since the approval", "over")


def _utc(moment: dt.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _context(report: BudgetReport) -> dict[str, Any]:
    approved = report.approved
    definition = approved.definition if approved else None
    state, state_class = _fingerprint_state(report)
    plan_preparation, actual_preparation = report.preparation()
    tables: dict[str, list[Total]] = {dimension: report.totals(dimension) for dimension in DIMENSIONS}
    matrix = report.matrix()
    matrix_rows, per_channel = _matrix_rows(matrix)
    return {
        "report": report,
        "period": report.period,
        "currency": report.currency,
        "generated_at": _utc(report.generated_at),
        "approval": {
            "file": approved.path.name if approved else None,
            "by": definition.approved_by if definition else None,
            "at": definition.approved_at.isoformat() if definition and definition.approved_at else None,
            "fingerprint": definition.fingerprint if definition else None,
            "note": definition.note if definition else None,
        },
        "fingerprint_state": state,
        "fingerprint_class": state_class,
        "total": report.total(),
        "preparation": {"plan": plan_preparation, "actual": actual_preparation},
        "tables": tables,
        "matrix": matrix,
        "matrix_rows": matrix_rows,
        "matrix_per_channel": per_channel,
        "charts": _charts(report),
    }


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("engine.budget", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = format_money
    environment.filters["count"] = format_count
    environment.filters["number"] = number
    environment.filters["sign"] = _sign
    environment.filters["shortfall"] = _shortfall
    return environment


def render_html(report: BudgetReport) -> str:
    """The HTML page of ``report`` as text."""
    return _environment().get_template(TEMPLATE).render(_context(report))


def write_html(report: BudgetReport, path: Path) -> Path:
    """Write the HTML report of ``report`` to ``path`` (atomically) and return the path.

    Example::

        write_html(report, Path("budget-2027-Q1.html"))
    """
    return write_atomically(path, render_html(report).encode("utf-8"))
