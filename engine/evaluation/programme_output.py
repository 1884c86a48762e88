"""Programme indicators, the lifecycle funnel and the migration matrix as tables, CSV rows and workbooks.

The JSON form is ``as_dict()`` of each report; everything here is built from
the same objects. Terminal tables fold rather than cut. CSV files are
``;``-separated with one row per figure set (the JSON keys as header).
Workbooks keep the recorded figures as values and the indicators as live
formulas (churn rate = churned / active at start, revenue per customer =
revenue / buyers...), so every indicator can be traced to its counts; text
cells go through :func:`engine.reporting.spreadsheet.formula_safe`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from engine.evaluation.funnel import Funnel
from engine.evaluation.indicators import IndicatorRow, ProgrammeIndicators
from engine.evaluation.migration_matrix import MigrationMatrix
from engine.reporting import formula_safe

MONEY = "#,##0.00"
COUNT = "#,##0"
PERCENT = "0.00%"
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
ALL_CUSTOMERS = "all customers"


def percent(value: Decimal | None) -> str:
    """A share as ``33.33%``; nothing to divide by is an em dash."""
    return "—" if value is None else f"{value * 100:.2f}%"


def amount(value: Decimal | None) -> str:
    """Money as ``1,234.50``; not defined is an em dash."""
    return "—" if value is None else f"{value:,.2f}"


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right", overflow="fold", no_wrap=index == 0)
    return table


# ---------------------------------------------------------------------------- tables

INDICATOR_COLUMNS = (
    "period", "active", "churn", "buyers", "rev/cust", "profit/cust", "wallet", "read", "satisf.",
)  # fmt: skip


def _period_label(row: IndicatorRow) -> str:
    return row.period.label + ("*" if row.period.partial else "")


def _wallet_cell(row: IndicatorRow, configured: bool) -> str:
    if not configured:
        return "—"
    return f"{percent(row.share_of_wallet)} ({row.wallet_customers:,})"


def indicator_tables(report: ProgrammeIndicators) -> list[RenderableType]:
    """What ``crm report programme`` prints: one table over all customers, or one per segment."""
    shown: list[RenderableType] = [
        Text(
            f"programme indicators by {report.period_kind}, amounts in {report.currency};"
            f" active = an order in the {report.churn_days} days before;"
            " churn = churned / active at the start; per customer = per buyer of the period;"
            " profit = margin - contact cost"
        )
    ]
    groups = report.segments if report.segments is not None else [None]
    for segment in groups:
        title = ALL_CUSTOMERS if segment is None else f"segment {segment} (members at each period's end)"
        table = _table(title, INDICATOR_COLUMNS)
        for row in report.for_segment(segment):
            satisfaction = "—" if row.satisfaction is None else f"{row.satisfaction} ({row.scores:,})"
            table.add_row(
                _period_label(row),
                f"{row.active:,}",
                percent(row.churn_rate),
                f"{row.buyers:,}",
                amount(row.revenue_per_customer),
                amount(row.profit_per_customer),
                _wallet_cell(row, report.wallet_attribute is not None),
                percent(row.read_rate),
                satisfaction,
            )
        shown.append(table)
    legend = (
        "* to date; read = emails opened or clicked / mailed;"
        f" satisfaction = mean score of 1..{report.satisfaction_scale} (scores given)"
    )
    if report.wallet_attribute:
        legend = (
            f"wallet = yearly revenue / attr.{report.wallet_attribute} of the customers whose wallet is known"
            f" (how many); {legend}"
        )
    shown.append(Text(legend))
    shown.extend(Text(f"note: {note}") for note in report.notes)
    return shown


def funnel_table(funnel: Funnel) -> list[RenderableType]:
    """What ``crm report funnel`` prints: customers per stage, conversion against target and the gap."""
    title = (
        f"lifecycle funnel (stages of the metrics refresh of {funnel.metrics_as_of.isoformat()})"
        if funnel.metrics_as_of
        else "lifecycle funnel (declared stages: no metrics refresh yet)"
    )
    table = _table(
        title,
        ("stage", "customers", "of previous", "target", "gap", "target customers"),
    )
    for stage in funnel.stages:
        table.add_row(
            stage.name,
            f"{stage.customers:,}",
            percent(stage.actual),
            percent(stage.target),
            "—" if stage.gap is None else f"{stage.gap * 100:+.2f} pt",
            "—" if stage.expected is None else f"{stage.expected:,.1f}",
        )
    return [table, *(Text(f"note: {note}") for note in funnel.notes)]


def migration_table(matrix: MigrationMatrix) -> list[RenderableType]:
    """What ``crm report migration`` prints: customers per (from, to), and row shares beneath."""
    legend = (
        f"segment migration: rows at {matrix.start:%Y-%m-%d %H:%M} UTC,"
        f" columns at {matrix.end:%Y-%m-%d %H:%M} UTC; each customer in the first listed segment"
        " holding them; share of the row beneath"
    )
    table = _table("", ("from \\ to", *matrix.labels, "total"))
    for before in matrix.labels:
        total = matrix.row_total(before)
        cells = [
            f"{matrix.count(before, after):,}"
            + (f"\n{percent(matrix.share(before, after))}" if total else "")
            for after in matrix.labels
        ]
        table.add_row(before, *cells, f"{total:,}")
    table.add_row(
        "total", *(f"{matrix.column_total(after):,}" for after in matrix.labels), f"{matrix.customers:,}"
    )
    return [Text(legend), table]


# ---------------------------------------------------------------------------- CSV


def indicator_csv_rows(report: ProgrammeIndicators) -> Iterable[list[str]]:
    """A header, then one row per period (and segment): the JSON keys and values."""
    rows = [row.as_dict() for row in report.rows]
    header = list(rows[0]) if rows else ["period"]
    yield header
    for values in rows:
        yield [_cell(values[key]) for key in header]


def funnel_csv_rows(funnel: Funnel) -> Iterable[list[str]]:
    """A header, then one row per stage."""
    rows = [stage.as_dict() for stage in funnel.stages]
    header = list(rows[0])
    yield header
    for values in rows:
        yield [_cell(values[key]) for key in header]


def migration_csv_rows(matrix: MigrationMatrix) -> Iterable[list[str]]:
    """A header, then one row per (from, to) pair, empty cells included: customers and row share."""
    yield ["from", "to", "customers", "share_of_row"]
    for before in matrix.labels:
        for after in matrix.labels:
            yield [before, after, str(matrix.count(before, after)), _cell(matrix.share(before, after))]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------- XLSX


def _header(sheet: Worksheet, row: int, headers: Sequence[str]) -> None:
    for column, header in enumerate(headers, start=1):
        cell = sheet.cell(row=row, column=column, value=header)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _put_row(sheet: Worksheet, row: int, values: Sequence[Any], formats: Sequence[str | None]) -> None:
    for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
        cell = sheet.cell(row=row, column=column, value=value)
        if number_format:
            cell.number_format = number_format


def _widths(sheet: Worksheet, widths: Sequence[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


# Indicators sheet, A..Z: recorded figures, then the indicators as formulas over them
INDICATOR_HEADERS = (
    "Segment", "Period", "From", "To", "Partial", "Active at start", "Active", "Churned", "Buyers",
    "Revenue", "Margin", "Contacts", "Contact cost", "Mailed", "Read", "Scores", "Score sum",
    "Wallet customers", "Wallet total", "Wallet revenue", "Churn rate", "Revenue per customer",
    "Profit per customer", "Share of wallet", "Read rate", "Satisfaction",
)  # fmt: skip


def _if(denominator: str, numerator: str, row: int) -> str:
    return f'=IF({denominator}{row}=0,"",{numerator}/{denominator}{row})'


def build_indicator_workbook(report: ProgrammeIndicators) -> Workbook:
    """The indicators in memory: one sheet, figures as values, indicators as formulas."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Indicators"
    _header(sheet, 1, INDICATOR_HEADERS)
    for row, item in enumerate(report.rows, start=2):
        values: list[Any] = [
            formula_safe(item.segment or ALL_CUSTOMERS), item.period.label, item.period.start,
            item.period.end, item.period.partial, item.active_start, item.active, item.churned, item.buyers,
            item.revenue, item.margin, item.contacts, item.contact_cost, item.mailed, item.read, item.scores,
            item.score_sum,
            item.wallet_customers, item.wallet_total, item.wallet_revenue, _if("F", f"H{row}", row),
            f'=IF(I{row}=0,"",ROUND(J{row}/I{row},2))', f'=IF(I{row}=0,"",ROUND((K{row}-M{row})/I{row},2))',
            _if("S", f"T{row}", row), _if("N", f"O{row}", row), f'=IF(P{row}=0,"",ROUND(Q{row}/P{row},2))',
        ]  # fmt: skip
        formats = (
            None, None, "yyyy-mm-dd", "yyyy-mm-dd", None, COUNT, COUNT, COUNT, COUNT, MONEY, MONEY, "0.##",
            MONEY, COUNT, COUNT, COUNT, COUNT, COUNT, MONEY, MONEY, PERCENT, MONEY, MONEY, PERCENT, PERCENT,
            "0.00",
        )  # fmt: skip
        _put_row(sheet, row, values, formats)
    _widths(sheet, (18, 10, 11, 11, 8, *[11] * 21))
    sheet.freeze_panes = "C2"
    notes = workbook.create_sheet("Notes")
    lines = [
        f"Period: {report.period_kind}; churn window {report.churn_days} days; currency {report.currency}",
        f"Satisfaction scale 1..{report.satisfaction_scale}",
        f"Wallet attribute: {report.wallet_attribute or 'none configured'}",
        *report.notes,
    ]
    for row, line in enumerate(lines, start=1):
        notes.cell(row=row, column=1, value=formula_safe(line))
    return workbook


def build_funnel_workbook(funnel: Funnel) -> Workbook:
    """The funnel in memory: customers per stage, conversion and gap as formulas."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Funnel"
    _header(sheet, 1, ("Stage", "Customers", "Of previous", "Target", "Gap", "Target customers"))
    for row, stage in enumerate(funnel.stages, start=2):
        first = row == 2
        values: list[Any] = [
            stage.name,
            stage.customers,
            None if first else f'=IF(B{row - 1}=0,"",B{row}/B{row - 1})',
            None if stage.target is None else stage.target,
            None if first or stage.target is None else f'=IF(C{row}="","",C{row}-D{row})',
            None if first or stage.target is None else f"=D{row}*B{row - 1}",
        ]
        _put_row(sheet, row, values, (None, COUNT, PERCENT, PERCENT, PERCENT, "0.0"))
    _widths(sheet, (14, 12, 12, 10, 10, 16))
    return workbook


def build_migration_workbook(matrix: MigrationMatrix) -> Workbook:
    """The matrix in memory: sheet Customers (counts, SUM totals) and sheet Shares (formulas over it)."""
    workbook = Workbook()
    counts = workbook.active
    assert counts is not None
    counts.title = "Customers"
    size = len(matrix.labels)
    last = get_column_letter(size + 1)
    labels = [formula_safe(label) for label in matrix.labels]
    _header(counts, 1, ("from \\ to", *labels, "Total"))
    for n, before in enumerate(matrix.labels):
        row = n + 2
        values = [
            labels[n],
            *(matrix.count(before, after) for after in matrix.labels),
            f"=SUM(B{row}:{last}{row})",
        ]
        _put_row(counts, row, values, (None, *[COUNT] * (size + 1)))
    total_row = size + 2
    totals = [
        "Total",
        *(f"=SUM({get_column_letter(c)}2:{get_column_letter(c)}{size + 1})" for c in range(2, size + 3)),
    ]
    _put_row(counts, total_row, totals, (None, *[COUNT] * (size + 1)))
    for column in range(1, size + 3):
        counts.cell(row=total_row, column=column).font = BOLD
    shares = workbook.create_sheet("Shares")
    _header(shares, 1, ("from \\ to", *labels))
    total_column = get_column_letter(size + 2)
    for n in range(size):
        row = n + 2
        cells = [
            f'=IF(Customers!{total_column}{row}=0,"",Customers!{get_column_letter(c)}{row}/Customers!{total_column}{row})'
            for c in range(2, size + 2)
        ]
        _put_row(shares, row, [labels[n], *cells], (None, *[PERCENT] * size))
    for sheet in (counts, shares):
        _widths(sheet, (16, *[12] * (size + 1)))
    notes = workbook.create_sheet("Notes")
    notes["A1"] = f"Rows: place at {matrix.start.isoformat()}; columns: place at {matrix.end.isoformat()}"
    notes["A2"] = "A customer's place is the first listed segment holding them, else (none)"
    return workbook
