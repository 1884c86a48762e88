"""Campaign results as terminal tables, a JSON document, CSV rows and an XLSX workbook.

Everything is built from the same :class:`~engine.evaluation.figures.CampaignResult`
objects. Undefined statistics (``nan``) are empty cells and JSON ``null``.
Workbooks keep the counts and sums as values and the rates, cost per
response and ROI as live formulas over them, so every figure can be checked;
text goes through :func:`engine.reporting.spreadsheet.formula_safe`.

CSV: one row per campaign and group (``variant``, ``treated`` = all variants,
``control``), ``;``-separated; the treated row also carries the uplift over
control (per metric: difference, interval, relative uplift and its interval,
p-value), the incremental figures and the A/B verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from rich import box
from rich.console import RenderableType
from rich.table import Table

from engine.evaluation.figures import CampaignResult, Comparison, GroupFigures
from engine.evaluation.statistics import p_value_text
from engine.evaluation.uplift import CONVERSION_RATE, RESPONDER_RATE, RETENTION_RATE, REVENUE_PER_CUSTOMER
from engine.reporting import formula_safe

#: the uplift metrics, in the order of the CSV columns
UPLIFT_METRICS = (RESPONDER_RATE, CONVERSION_RATE, RETENTION_RATE, REVENUE_PER_CUSTOMER)
COUNTS = (
    "audience", "sent", "delivered", "failed", "opened", "clicked", "responded", "responders", "converted",
    "retained", "purchases",
)  # fmt: skip
AMOUNTS = ("revenue", "margin", "actual_cost", "revenue_sum_squares")
#: the counts of the contacts table, after the group
CONTACT_COLUMNS = ("audience", "sent", "delivered", "failed", "opened", "clicked", "responded", "converted")


def _number(value: float | None) -> float | None:
    """``value``, or None when it is undefined (None or nan)."""
    return None if value is None or math.isnan(value) else value


def _text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _groups(result: CampaignResult) -> list[tuple[str, GroupFigures]]:
    """(kind, figures): each variant, all treated, control."""
    return [
        *(("variant", v) for v in result.variants),
        ("treated", result.treated),
        ("control", result.control),
    ]


# ---------------------------------------------------------------------------- JSON


def _group_dict(group: GroupFigures) -> dict[str, Any]:
    data = asdict(group)
    data.update(
        response_rate=group.response_rate,
        conversion_rate=group.conversion_rate,
        revenue_per_customer=group.revenue_per_customer,
        cost_per_response=group.cost_per_response,
        roi=group.roi,
    )
    return data


def _comparison_dict(comparison: Comparison) -> dict[str, Any]:
    return {
        name: _number(value) if isinstance(value, float) else value
        for name, value in asdict(comparison).items()
    }


def results_as_dict(results: Sequence[CampaignResult]) -> dict[str, Any]:
    """The JSON document of ``crm report campaigns --format json``: every figure, derived ones too."""
    campaigns = []
    for result in results:
        campaigns.append(
            {
                "campaign": result.campaign,
                "name": result.name,
                "goal_metric": result.goal_metric,
                "window_days": result.window_days,
                "runs": result.runs,
                "control": _group_dict(result.control),
                "treated": _group_dict(result.treated),
                "variants": [_group_dict(v) for v in result.variants],
                "uplift": [_comparison_dict(c) for c in result.uplift],
                "incremental_revenue": result.incremental_revenue,
                "incremental_margin": result.incremental_margin,
                "incremental_roi": result.incremental_roi,
                "winner": asdict(result.winner) if result.winner else None,
            }
        )
    return {"campaigns": campaigns}


# ---------------------------------------------------------------------------- tables


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for index, name in enumerate(columns):
        first = index == 0
        table.add_column(name, justify="left" if first else "right", overflow="fold", no_wrap=first)
    return table


def _amount(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def _rate(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value * 100:.2f}%"


def _label(kind: str, group: GroupFigures) -> str:
    return {"treated": "all treated", "control": "control"}.get(kind, f"variant {group.name}")


#: short names of the uplift metrics in terminal tables
TABLE_LABELS = {
    RESPONDER_RATE: "responders",
    CONVERSION_RATE: "conversion",
    RETENTION_RATE: "retention",
    REVENUE_PER_CUSTOMER: "revenue/customer",
}


def _figure(metric: str, value: float, *, signed: bool = False) -> str:
    """A rate as a percentage (a difference in percentage points), revenue as money."""
    if math.isnan(value):
        return "n/a"
    sign = "+" if signed else ""
    if metric == REVENUE_PER_CUSTOMER:
        return f"{value:{sign},.2f}"
    return f"{value * 100:{sign}.1f}" + (" pp" if signed else "%")


def _interval(metric: str, low: float, high: float) -> str:
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    scale = 1 if metric == REVENUE_PER_CUSTOMER else 100
    places = 2 if scale == 1 else 1
    return f"{low * scale:+,.{places}f}..{high * scale:+,.{places}f}"


def _relative(comparison: Comparison) -> tuple[str, str]:
    if comparison.relative is None:
        return "n/a", "n/a"
    if comparison.relative_low is None or comparison.relative_high is None:
        return f"{comparison.relative * 100:+.1f}%", "n/a"
    interval = f"{comparison.relative_low * 100:+.1f}..{comparison.relative_high * 100:+.1f}%"
    return f"{comparison.relative * 100:+.1f}%", interval


def _uplift_row(comparison: Comparison) -> list[str]:
    """Metric, treated, control, difference over its interval, relative uplift over its interval, p."""
    metric = comparison.metric
    p = p_value_text(comparison.p_value)
    relative, relative_interval = _relative(comparison)
    difference = _figure(metric, comparison.difference, signed=True)
    return [
        TABLE_LABELS.get(metric, metric),
        _figure(metric, comparison.treated),
        _figure(metric, comparison.control),
        f"{difference}\n{_interval(metric, comparison.low, comparison.high)}",
        f"{relative}\n{relative_interval}",
        p + (" *" if comparison.significant else ""),
    ]


def campaign_tables(results: Sequence[CampaignResult], currency: str) -> list[RenderableType]:
    """What ``crm report campaigns`` prints: per campaign its contacts, money, uplift and verdict."""
    if not results:
        return ["no campaign has run yet"]
    shown: list[RenderableType] = []
    for result in results:
        runs = f"{result.runs} run" + ("" if result.runs == 1 else "s")
        shown.append(
            f"[bold]{result.campaign}[/]: {result.name} ({runs}; goal {result.goal_metric}"
            f" within {result.window_days} days; {currency})"
        )
        note = result.window_note()
        if note is not None:
            shown.append(f"[yellow]{note}[/]: the figures below are as far as it goes")
        if result.uplift and result.control.audience:  # the headline: what the campaign added over control
            shown.append(
                f"[bold]incremental[/] (over control): revenue {_amount(result.incremental_revenue)}, margin"
                f" {_amount(result.incremental_margin)}, ROI"
                f" {_rate(float(result.incremental_roi)) if result.incremental_roi is not None else 'n/a'}"
            )
        columns = [name for name in CONTACT_COLUMNS if result.shows(name)]
        headers = {"delivered": "deliv.", "responded": "resp.", "converted": "conv."}
        contacts = _table("", ("group", *(headers.get(name, name) for name in columns)))
        money = _table(
            "", ("group", "conv. rate", "revenue", "margin", "cost", "per resp.", "ROI of all\nattributed")
        )
        for kind, group in _groups(result):
            if kind == "control" and not group.audience:
                continue  # no control group
            style = "bold" if kind == "treated" else None
            contacts.add_row(
                _label(kind, group),
                *(f"{getattr(group, name):,}" for name in columns),
                style=style,
            )
            money.add_row(
                _label(kind, group),
                _rate(group.conversion_rate),
                _amount(group.revenue),
                _amount(group.margin),
                _amount(group.actual_cost),
                _amount(group.cost_per_response),
                _rate(float(group.roi)) if group.roi is not None else "",
                style=style,
            )
        shown.extend([contacts, money])
        if result.uplift:
            level = f"{result.uplift[0].confidence * 100:g}%"
            uplift = _table(
                f"uplift over control ({level} intervals; * significant)",
                ("metric", "treated", "control", "difference\n(interval)", "relative\n(interval)", "p"),
            )
            for comparison in result.uplift:
                uplift.add_row(*_uplift_row(comparison))
            shown.append(uplift)
        else:
            shown.append("no control group: no uplift")
        if result.winner is not None and note is None:
            verdict = "winner" if result.winner.significant else "no significant winner"
            shown.append(f"{verdict}: {result.winner.reason}")
    return shown


# ---------------------------------------------------------------------------- CSV

UPLIFT_FIELDS = ("difference", "low", "high", "relative", "relative_low", "relative_high", "p_value")
RESULT_CSV = (
    "campaign", "name", "goal_metric", "window_days", "runs", "group", "variant", *COUNTS, *AMOUNTS,
    "response_rate", "conversion_rate", "revenue_per_customer", "cost_per_response", "roi",
    *(f"{metric}_{name}" for metric in UPLIFT_METRICS for name in UPLIFT_FIELDS),
    "incremental_revenue", "incremental_margin", "incremental_roi", "winner", "winner_significant",
    "winner_p_value",
)  # fmt: skip


def csv_rows(results: Sequence[CampaignResult]) -> Iterable[list[str]]:
    """The header, then one row per campaign and group (see the module docstring)."""
    yield list(RESULT_CSV)
    for result in results:
        by_metric = {c.metric: c for c in result.uplift}
        for kind, group in _groups(result):
            row = [
                result.campaign, result.name, result.goal_metric, str(result.window_days), str(result.runs),
                kind, group.name if kind == "variant" else "",
                *(str(getattr(group, name)) for name in (*COUNTS, *AMOUNTS)),
                _text(group.response_rate), _text(group.conversion_rate), _text(group.revenue_per_customer),
                _text(group.cost_per_response), _text(group.roi),
            ]  # fmt: skip
            treated = kind == "treated"
            for metric in UPLIFT_METRICS:
                comparison = by_metric.get(metric) if treated else None
                row.extend(_text(getattr(comparison, name)) if comparison else "" for name in UPLIFT_FIELDS)
            winner = result.winner if treated else None
            row.extend(
                [
                    _text(result.incremental_revenue) if treated else "",
                    _text(result.incremental_margin) if treated else "",
                    _text(result.incremental_roi) if treated else "",
                    _text(winner.variant) if winner else "",
                    _text(winner.significant).lower() if winner else "",
                    _text(winner.p_value) if winner else "",
                ]
            )
            yield row


# ---------------------------------------------------------------------------- XLSX

BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
MONEY = "#,##0.00"
COUNT = "#,##0"
PERCENT = "0.00%"
RESULT_HEADERS = (
    "Campaign", "Group", "Audience", "Sent", "Delivered", "Failed", "Opened", "Clicked", "Responded",
    "Converted", "Purchases", "Revenue", "Margin", "Actual cost", "Response rate", "Conversion rate",
    "Revenue per customer", "Cost per response", "ROI",
)  # fmt: skip
UPLIFT_HEADERS = (
    "Campaign", "Metric", "Treated", "Control", "Difference", "Low", "High", "Relative", "Relative low",
    "Relative high", "p-value", "Significant", "Confidence",
)  # fmt: skip
SUMMARY_HEADERS = (
    "Campaign", "Name", "Runs", "Goal", "Window (days)", "Incremental revenue", "Incremental margin",
    "Actual cost (treated)", "Incremental ROI", "Winner", "Significant", "p-value", "Verdict",
)  # fmt: skip


def _header(sheet: Worksheet, headers: Sequence[str]) -> None:
    for column, header in enumerate(headers, start=1):
        cell = sheet.cell(row=1, column=column, value=header)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = "A2"
    for column in range(1, len(headers) + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 24 if column <= 2 else 14


def _put(sheet: Worksheet, row: int, values: Sequence[Any], formats: Sequence[str | None]) -> None:
    for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
        cell = sheet.cell(row=row, column=column, value=value)
        if number_format:
            cell.number_format = number_format


def _results_sheet(sheet: Worksheet, results: Sequence[CampaignResult]) -> dict[str, int]:
    """Group rows with formulas for the derived figures; the row of each campaign's treated group."""
    sheet.title = "Results"
    _header(sheet, RESULT_HEADERS)
    treated_rows: dict[str, int] = {}
    row = 2
    for result in results:
        for kind, group in _groups(result):
            values: list[Any] = [
                formula_safe(result.campaign), formula_safe(_label(kind, group)), group.audience, group.sent,
                group.delivered, group.failed, group.opened, group.clicked, group.responded, group.converted,
                group.purchases, group.revenue, group.margin, group.actual_cost,
                f'=IF(D{row}=0,"",I{row}/D{row})', f'=IF(C{row}=0,"",J{row}/C{row})',
                f'=IF(C{row}=0,"",ROUND(L{row}/C{row},2))', f'=IF(I{row}=0,"",ROUND(N{row}/I{row},2))',
                f'=IF(N{row}=0,"",(M{row}-N{row})/N{row})',
            ]  # fmt: skip
            formats = (None, None, *[COUNT] * 9, MONEY, MONEY, MONEY, PERCENT, PERCENT, MONEY, MONEY, PERCENT)
            _put(sheet, row, values, formats)
            if kind == "treated":
                treated_rows[result.campaign] = row
                for column in range(1, len(RESULT_HEADERS) + 1):
                    sheet.cell(row=row, column=column).fill = TOTAL_FILL
            row += 1
    return treated_rows


def _uplift_sheet(sheet: Worksheet, results: Sequence[CampaignResult]) -> None:
    _header(sheet, UPLIFT_HEADERS)
    row = 2
    for result in results:
        for c in result.uplift:
            shown = PERCENT if c.metric != REVENUE_PER_CUSTOMER else MONEY
            values = [
                formula_safe(result.campaign), c.metric, _number(c.treated), _number(c.control),
                _number(c.difference), _number(c.low), _number(c.high), c.relative, c.relative_low,
                c.relative_high, _number(c.p_value), "yes" if c.significant else "no", c.confidence,
            ]  # fmt: skip
            formats = (
                None,
                None,
                shown,
                shown,
                shown,
                shown,
                shown,
                PERCENT,
                PERCENT,
                PERCENT,
                "0.0000",
                None,
                "0%",
            )
            _put(sheet, row, values, formats)
            row += 1


def _summary_sheet(sheet: Worksheet, results: Sequence[CampaignResult], treated_rows: dict[str, int]) -> None:
    _header(sheet, SUMMARY_HEADERS)
    for row, result in enumerate(results, start=2):
        winner = result.winner
        values = [
            formula_safe(result.campaign), formula_safe(result.name), result.runs, result.goal_metric,
            result.window_days, result.incremental_revenue, result.incremental_margin,
            f"=Results!N{treated_rows[result.campaign]}",
            f'=IF(H{row}=0,"",(G{row}-H{row})/H{row})' if result.incremental_margin is not None else None,
            formula_safe(winner.variant or "") if winner else None,
            ("yes" if winner.significant else "no") if winner else None,
            winner.p_value if winner else None,
            formula_safe(winner.reason) if winner else None,
        ]  # fmt: skip
        formats = (None, None, COUNT, None, COUNT, MONEY, MONEY, MONEY, PERCENT, None, None, "0.0000", None)
        _put(sheet, row, values, formats)
    sheet.column_dimensions["M"].width = 80


def build_workbook(results: Sequence[CampaignResult]) -> Workbook:
    """The campaign results in memory: sheets Results, Uplift and Summary."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    treated_rows = _results_sheet(sheet, results)
    _uplift_sheet(workbook.create_sheet("Uplift"), results)
    _summary_sheet(workbook.create_sheet("Summary"), results, treated_rows)
    return workbook
