"""The budget report as an XLSX workbook for finance, with live formulas.

Four sheets:

* **Lines**: one row per plan line. The inputs (runs, members, control, unreachable,
  contacts per client, unit cost, preparation) are values; clients, contacts and the
  costs are formulas, so a changed input moves every total::

      Clients      = MAX(0, Members - Control - Unreachable)
      Contacts     = Clients * Contacts per client * Runs
      Contact cost = Unit cost * Contacts
      Cost         = Unit cost * Clients * Contacts per client * Runs + Preparation

* **Summary**: period, approval and fingerprints; plan per strategy as ``SUMIFS``
  over the Lines cost column, approved and actual as values, variances as formulas.
* **Matrix**: segments x channels, contact cost and contacts as ``SUMIFS`` over Lines,
  preparation per segment beside the channels; its grand total is the plan total.
* **Actual**: what was recorded, as values.

Text from configuration and campaigns goes through :func:`engine.reporting.spreadsheet.formula_safe`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from engine.budget.report import BudgetReport
from engine.reporting import formula_safe, save_workbook

MONEY = "#,##0.00"
COUNT = "#,##0"
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")


@dataclass(frozen=True)
class _Column:
    header: str
    width: int
    number_format: str = "General"


# The Lines sheet, A..S. Formulas below refer to these letters.
LINE_COLUMNS = (
    _Column("Campaign", 18),  # A
    _Column("Name", 28),  # B
    _Column("Strategy", 15),  # C
    _Column("Segment", 18),  # D
    _Column("Step", 6),  # E
    _Column("Channel", 10),  # F
    _Column("Runs", 7, COUNT),  # G
    _Column("Members", 11, COUNT),  # H
    _Column("Control", 10, COUNT),  # I
    _Column("Unreachable", 12, COUNT),  # J
    _Column("Clients", 11, COUNT),  # K
    _Column("Contacts per client", 10),  # L
    _Column("Contacts", 12),  # M
    _Column("Unit cost", 11, MONEY),  # N
    _Column("Contact cost", 15, MONEY),  # O
    _Column("Preparation", 13, MONEY),  # P
    _Column("Cost", 15, MONEY),  # Q
    _Column("Price source", 26),  # R
    _Column("Basis", 30),  # S
)
LINES_FIRST_ROW = 2


def _safe(value: str | None) -> str:
    """User text as a cell that a spreadsheet shows and never runs as a formula."""
    return formula_safe(value or "")


@dataclass(frozen=True)
class LinesRange:
    """Where the plan lines sit on the Lines sheet (``last`` >= ``first`` even with no lines)."""

    first: int
    last: int

    def column(self, letter: str) -> str:
        """An absolute reference to one column of the lines, e.g. ``Lines!$Q$2:$Q$9``."""
        return f"Lines!${letter}${self.first}:${letter}${self.last}"

    @property
    def total_row(self) -> int:
        """The row of the SUM formulas."""
        return self.last + 1


def _header(sheet: Worksheet, row: int, headers: Sequence[str], column: int = 1) -> None:
    for offset, header in enumerate(headers):
        cell = sheet.cell(row=row, column=column + offset, value=header)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _total_style(sheet: Worksheet, row: int, columns: int) -> None:
    for column in range(1, columns + 1):
        cell = sheet.cell(row=row, column=column)
        cell.font = BOLD
        cell.fill = TOTAL_FILL


def _put(sheet: Worksheet, row: int, column: int, value: Any, number_format: str | None = None) -> None:
    cell = sheet.cell(row=row, column=column, value=value)
    if number_format:
        cell.number_format = number_format


def _lines_sheet(workbook: Workbook, report: BudgetReport) -> LinesRange:
    sheet = workbook.create_sheet("Lines")
    _header(sheet, 1, [c.header for c in LINE_COLUMNS])
    for index, spec in enumerate(LINE_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = spec.width
    contacts_format = _contacts_format(report)
    for r, line in enumerate(report.lines, start=LINES_FIRST_ROW):
        values: list[Any] = [
            _safe(line.campaign),
            _safe(line.name),
            _safe(line.strategy),
            _safe(line.segment),
            line.step,
            _safe(line.channel),
            line.runs,
            line.members,
            line.control,
            line.unreachable,
            f"=MAX(0,H{r}-I{r}-J{r})",
            line.contacts_per_client,
            f"=K{r}*L{r}*G{r}",
            line.unit_cost,
            f"=N{r}*M{r}",
            line.preparation,
            f"=N{r}*K{r}*L{r}*G{r}+P{r}",
            _safe(line.price_source),
            _safe(line.basis),
        ]
        for index, (value, spec) in enumerate(zip(values, LINE_COLUMNS, strict=True), start=1):
            number_format = contacts_format if spec.header == "Contacts" else spec.number_format
            _put(sheet, r, index, value, number_format)
    lines = LinesRange(LINES_FIRST_ROW, max(LINES_FIRST_ROW, LINES_FIRST_ROW + len(report.lines) - 1))
    total = lines.total_row
    sheet.cell(row=total, column=1, value="Total")
    totals = {"K": COUNT, "M": contacts_format, "O": MONEY, "P": MONEY, "Q": MONEY}
    for letter, number_format in totals.items():
        _put(
            sheet,
            total,
            ord(letter) - ord("A") + 1,
            f"=SUM({letter}{lines.first}:{letter}{lines.last})",
            number_format,
        )
    _total_style(sheet, total, len(LINE_COLUMNS))
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(LINE_COLUMNS))}{lines.last}"
    return lines


def _contacts_format(report: BudgetReport) -> str:
    """Whole numbers unless some count of contacts can be fractional."""
    counts = [line.contacts for line in report.lines] + [done.contacts for done in report.actual]
    return COUNT if all(count == count.to_integral_value() for count in counts) else "#,##0.00"


def _fingerprint_state(report: BudgetReport) -> str:
    matches = report.fingerprint_matches
    if matches is None:
        return "no approval" if report.approved is None else "not recorded in the budget file"
    return "yes" if matches else "no: the configuration changed since the approval"


def _summary_sheet(workbook: Workbook, report: BudgetReport, lines: LinesRange) -> None:
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Summary"
    sheet["A1"] = f"CRM budget {report.period.label}"
    sheet["A1"].font = Font(bold=True, size=14)
    approved = report.approved.definition if report.approved else None
    facts: list[tuple[str, Any, str | None]] = [
        ("Period", _safe(report.period.label), None),
        ("From", report.period.start, "yyyy-mm-dd"),
        ("To (inclusive)", report.period.end, "yyyy-mm-dd"),
        ("Currency", _safe(report.currency), None),
        ("Generated at (UTC)", _naive_utc(report.generated_at), "yyyy-mm-dd hh:mm"),
        ("Fingerprint", _safe(report.fingerprint), None),
        ("Approved on fingerprint", _safe(approved.fingerprint if approved else ""), None),
        ("Fingerprint matches", _fingerprint_state(report), None),
        ("Budget file", _safe(report.approved.path.name if report.approved else "none"), None),
        ("Approved total", report.approved_total, MONEY),
        ("Approved by", _safe(approved.approved_by if approved else ""), None),
        ("Approved at", approved.approved_at if approved else None, "yyyy-mm-dd"),
    ]
    row = 3
    for label, value, number_format in facts:
        sheet.cell(row=row, column=1, value=label).font = BOLD
        _put(sheet, row, 2, value, number_format)
        row += 1

    row += 1
    headers = ["Strategy", "Plan", "Approved", "Actual", "Actual − Plan", "Actual − Approved"]
    _header(sheet, row, headers)
    row += 1
    for total in report.totals("strategy"):
        sheet.cell(row=row, column=1, value=_safe(total.key))
        plan = f"=SUMIFS({lines.column('Q')},{lines.column('C')},$A{row})"
        _variance_row(sheet, row, plan, total.approved, total.actual)
        row += 1
    sheet.cell(row=row, column=1, value="Total")
    _variance_row(sheet, row, f"=SUM({lines.column('Q')})", report.approved_total, report.actual_total)
    _total_style(sheet, row, len(headers))
    row += 2

    for title, items in (("Notes", report.notes), ("What-if settings (--set)", report.overrides)):
        sheet.cell(row=row, column=1, value=title).font = BOLD
        row += 1
        for item in items or ["none"]:
            sheet.cell(row=row, column=1, value=_safe(item))
            row += 1
        row += 1
    widths = {"A": 26, "B": 18, "C": 16, "D": 16, "E": 16, "F": 18}
    for letter, width in widths.items():
        sheet.column_dimensions[letter].width = width


def _variance_row(sheet: Worksheet, row: int, plan: str, approved: Decimal | None, actual: Decimal) -> None:
    _put(sheet, row, 2, plan, MONEY)
    _put(sheet, row, 3, approved, MONEY)
    _put(sheet, row, 4, actual, MONEY)
    _put(sheet, row, 5, f"=D{row}-B{row}", MONEY)
    if approved is not None:
        _put(sheet, row, 6, f"=D{row}-C{row}", MONEY)
    else:
        sheet.cell(row=row, column=6).number_format = MONEY


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """Spreadsheets have no time zones: the UTC wall time."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def _matrix_block(
    sheet: Worksheet,
    top: int,
    title: str,
    report_segments: list[str],
    channels: list[str],
    lines: LinesRange,
    value_column: str,
    preparation: bool,
    contacts_format: str = COUNT,
) -> int:
    """One segments x channels block of SUMIFS from ``top``; returns the row after its total row."""
    number_format = MONEY if preparation else contacts_format
    sheet.cell(row=top, column=1, value=title).font = Font(bold=True, size=12)
    header_row = top + 1
    extra = ["Preparation", "Total"] if preparation else ["Total"]
    headers = ["Segment", *[_safe(c) for c in channels], *extra]
    _header(sheet, header_row, headers)
    last_value_column = len(headers) - 1
    total_column = len(headers)
    first = header_row + 1
    row = first
    segments = report_segments or [""]
    for segment in segments:
        sheet.cell(row=row, column=1, value=_safe(segment))
        for offset, _ in enumerate(channels):
            letter = get_column_letter(2 + offset)
            formula = (
                f"=SUMIFS({lines.column(value_column)},{lines.column('D')},$A{row},"
                f"{lines.column('F')},{letter}${header_row})"
            )
            _put(sheet, row, 2 + offset, formula, number_format)
        if preparation:
            formula = f"=SUMIFS({lines.column('P')},{lines.column('D')},$A{row})"
            _put(sheet, row, last_value_column, formula, number_format)
        last_letter = get_column_letter(last_value_column)
        _put(sheet, row, total_column, f"=SUM(B{row}:{last_letter}{row})", number_format)
        row += 1
    sheet.cell(row=row, column=1, value="Total")
    for column in range(2, total_column + 1):
        letter = get_column_letter(column)
        _put(sheet, row, column, f"=SUM({letter}{first}:{letter}{row - 1})", number_format)
    _total_style(sheet, row, total_column)
    return row + 1


def _matrix_sheet(workbook: Workbook, report: BudgetReport, lines: LinesRange) -> None:
    sheet = workbook.create_sheet("Matrix")
    matrix = report.matrix()
    currency = report.currency
    after = _matrix_block(
        sheet, 1, f"Plan cost ({currency}): contact cost by segment and channel, and preparation",
        matrix.segments, matrix.channels, lines, "O", preparation=True,
    )  # fmt: skip
    _matrix_block(
        sheet, after + 1, "Plan contacts by segment and channel",
        matrix.segments, matrix.channels, lines, "M", preparation=False,
        contacts_format=_contacts_format(report),
    )  # fmt: skip
    sheet.column_dimensions["A"].width = 24
    for column in range(2, len(matrix.channels) + 4):
        sheet.column_dimensions[get_column_letter(column)].width = 15
    sheet.freeze_panes = "B3"


ACTUAL_HEADERS = (
    "Campaign", "Strategy", "Segment", "Step", "Channel", "Clients", "Contacts",
    "Contact cost", "Preparation", "Cost",
)  # fmt: skip


def _actual_sheet(workbook: Workbook, report: BudgetReport) -> None:
    sheet = workbook.create_sheet("Actual")
    _header(sheet, 1, ACTUAL_HEADERS)
    formats = (None, None, None, None, None, COUNT, _contacts_format(report), MONEY, MONEY, MONEY)
    row = 2
    for done in report.actual:
        values: list[Any] = [
            _safe(done.campaign), _safe(done.strategy), _safe(done.segment), done.step, _safe(done.channel),
            done.clients, done.contacts, done.contact_cost, done.preparation, done.cost,
        ]  # fmt: skip
        for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
            _put(sheet, row, column, value, number_format)
        row += 1
    last = max(2, row - 1)
    sheet.cell(row=last + 1, column=1, value="Total")
    for column in range(6, len(ACTUAL_HEADERS) + 1):
        letter = get_column_letter(column)
        _put(sheet, last + 1, column, f"=SUM({letter}2:{letter}{last})", formats[column - 1])
    _total_style(sheet, last + 1, len(ACTUAL_HEADERS))
    widths = (18, 15, 18, 6, 10, 11, 12, 15, 13, 15)
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.freeze_panes = "A2"


def build_workbook(report: BudgetReport) -> Workbook:
    """The workbook of ``report`` in memory (Summary, Lines, Matrix, Actual)."""
    workbook = Workbook()
    lines = _lines_sheet(workbook, report)
    _summary_sheet(workbook, report, lines)
    _matrix_sheet(workbook, report, lines)
    _actual_sheet(workbook, report)
    return workbook


def write_workbook(report: BudgetReport, path: Path) -> Path:
    """Write the finance workbook of ``report`` to ``path`` (atomically) and return the path.

    Example::

        write_workbook(report, Path("budget-2027-Q1.xlsx"))
    """
    return save_workbook(build_workbook(report), path)
