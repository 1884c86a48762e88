"""Liability and settlement reports as terminal tables, CSV rows and XLSX workbooks.

The JSON form is ``as_dict()`` of the reports (:mod:`engine.loyalty.finance`);
everything here is built from the same objects. Tables fit an 80-column
terminal (figures fold rather than get cut). Workbooks keep the inputs as
values and the derived figures as live formulas (``outstanding =
pending + available + held``, ``value = ROUND(outstanding x point value, 2)``,
``net = owed by partner - owed to partner``, totals as ``SUM``), so finance
can check every figure; text from the configuration goes through
:func:`engine.reporting.spreadsheet.formula_safe`.
"""

from __future__ import annotations

import datetime as dt
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

from engine.loyalty.finance.reports import Flows, LiabilityReport, SettlementReport, money
from engine.reporting import formula_safe

MONEY = "#,##0.00"
COUNT = "#,##0"
PERCENT = "0.00%"
BOLD = Font(bold=True)
HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
TOTAL_FILL = PatternFill("solid", fgColor="F2F2F2")
OWN = "(programme)"  # the issuer label of the programme's own lots in tables and files


def _issuer(partner: str | None) -> str:
    return OWN if partner is None else partner


def _points(value: int) -> str:
    return f"{value:,}"


def _amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def _rate(flows: Flows) -> str:
    rate = flows.breakage_rate
    return "" if rate is None else f"{rate * 100:.2f}%"


def _local(moment: dt.datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def _table(title: str, columns: Sequence[str]) -> Table:
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True
    )
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right", overflow="fold")
    return table


# ---------------------------------------------------------------------------- tables


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _span(start: dt.datetime, end: dt.datetime, zone: str) -> str:
    return f"{_local(start, zone)} to {_local(end, zone)} (exclusive) {zone}"


def liability_tables(report: LiabilityReport) -> list[RenderableType]:
    """What ``crm loyalty liability`` prints: per programme, the liability and the breakage."""
    shown: list[RenderableType] = [
        f"loyalty liability as of {report.as_of.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC (entries posted before"
        " it); outstanding = pending + available + held, value = outstanding x point value"
    ]
    for programme in report.programmes:
        point_value = format(programme.point_value.normalize(), "f")
        table = _table(
            f"{programme.programme}: a point is worth {point_value} {programme.currency}",
            ("issuer", "pending", "available", "held", "outstanding", "value", "debt", "accounts"),
        )
        for row in [*programme.by_partner, programme.total]:
            table.add_row(
                "total" if row is programme.total else _issuer(row.partner),
                _points(row.pending),
                _points(row.available),
                _points(row.held),
                _points(row.points),
                _amount(row.value),
                _points(row.debt),
                _points(row.accounts),
                style="bold" if row is programme.total else None,
            )
        shown.append(table)
        total = programme.total
        shown.append(
            f"debt: {_plural(total.debt, 'point')} ({_amount(total.debt_value)} {programme.currency}) owed by"
            f" {_plural(total.debtors, 'account')}: shown apart, not deducted from the liability"
        )
        span = _span(programme.period_start, programme.period_end, programme.zone)
        shown.append(
            f"{programme.programme} breakage = expired / issued (issued = earned + adjusted in);"
            f" period {report.period.label}: {span}"
        )
        breakage = _table(
            "", ("issuer", "window", "issued", "expired", "redeemed", "returned", "clawback", "rate")
        )
        for item in [*programme.breakage_by_partner, programme.breakage]:
            for window, flows in (("period", item.period), ("lifetime", item.lifetime)):
                breakage.add_row(
                    "total" if item is programme.breakage else _issuer(item.partner),
                    window,
                    _points(flows.issued),
                    _points(flows.expired),
                    _points(flows.redeemed),
                    _points(flows.returned),
                    _points(flows.clawed_back),
                    _rate(flows),
                    style="bold" if item is programme.breakage else None,
                )
        shown.append(breakage)
    if len(report.programmes) > 1:
        shown.append(
            f"all programmes: liability {_amount(report.value)} {report.currency},"
            f" debt {_amount(report.debt_value)} {report.currency}"
        )
    return shown


def settlement_tables(report: SettlementReport) -> list[RenderableType]:
    """What ``crm loyalty settlement`` prints: one row per partner, the total, and how each was computed."""
    span = _span(report.start, report.end, report.timezone)
    shown: list[RenderableType] = [
        f"settlement of {report.programme}, {report.label}: {span}; {report.currency}"
    ]
    table = _table(
        "net > 0: the partner pays the programme", ("partner", "issued", "owed by", "burnt", "owed to", "net")
    )
    for row in report.partners:
        table.add_row(
            row.partner,
            _points(row.issued),
            _amount(row.owed_by_partner),
            _points(row.redeemed),
            _amount(row.owed_to_partner),
            _amount(row.net),
        )
    table.add_row(
        "total",
        _points(sum(p.issued for p in report.partners)),
        _amount(report.owed_by_partners),
        _points(sum(p.redeemed for p in report.partners)),
        _amount(report.owed_to_partners),
        _amount(report.net),
        style="bold",
    )
    shown.append(table)
    for row in report.partners:
        shown.append(
            f"{row.partner}: issued {row.issued:,} = earned {row.earned:,} - clawed back {row.clawed_back:,};"
            f" x {row.price_per_point} = {_amount(row.owed_by_partner)}. Burnt {row.redeemed:,} ="
            f" {row.burnt:,} - returned {row.returned:,}; x {row.burn_rate} = {_amount(row.owed_to_partner)}"
        )
    shown.extend(f"note: {note}" for note in report.notes)
    return shown


# ---------------------------------------------------------------------------- CSV

LIABILITY_CSV = (
    "as_of", "programme", "scope", "partner", "currency", "point_value", "pending", "available", "held",
    "outstanding", "value", "debt", "debt_value", "accounts", "debtors", "period", "period_issued",
    "period_expired", "period_redeemed", "period_returned", "period_clawed_back", "period_adjusted_out",
    "period_breakage_rate", "lifetime_issued", "lifetime_expired", "lifetime_redeemed", "lifetime_returned",
    "lifetime_clawed_back", "lifetime_adjusted_out", "lifetime_breakage_rate",
)  # fmt: skip


def _flow_cells(flows: Flows) -> list[str]:
    rate = flows.breakage_rate
    return [
        str(flows.issued), str(flows.expired), str(flows.redeemed), str(flows.returned),
        str(flows.clawed_back), str(flows.adjusted_out), "" if rate is None else str(rate),
    ]  # fmt: skip


def liability_csv_rows(report: LiabilityReport) -> Iterable[list[str]]:
    """One row per programme and issuer (scope ``own`` or ``partner``) and one ``total`` per programme."""
    yield list(LIABILITY_CSV)
    as_of = report.as_of.astimezone(dt.UTC).isoformat()
    for programme in report.programmes:
        pairs = zip([*programme.by_partner, programme.total],
                    [*programme.breakage_by_partner, programme.breakage], strict=True)  # fmt: skip
        for row, breakage in pairs:
            scope = "total" if row is programme.total else "own" if row.partner is None else "partner"
            yield [
                as_of, programme.programme, scope, row.partner or "",
                programme.currency, str(programme.point_value), str(row.pending), str(row.available),
                str(row.held), str(row.points), money(row.value), str(row.debt), money(row.debt_value),
                str(row.accounts), str(row.debtors), report.period.label,
                *_flow_cells(breakage.period), *_flow_cells(breakage.lifetime),
            ]  # fmt: skip


SETTLEMENT_CSV = (
    "programme", "period", "start", "end", "partner", "currency", "earned", "clawed_back", "issued",
    "price_per_point", "owed_by_partner", "burnt", "returned", "redeemed", "burn_rate", "owed_to_partner",
    "net",
)  # fmt: skip


def settlement_csv_rows(report: SettlementReport) -> Iterable[list[str]]:
    """One row per partner, then a ``total`` row (partner column ``total``, rates empty)."""
    yield list(SETTLEMENT_CSV)
    head = [report.programme, report.label, report.start.isoformat(), report.end.isoformat()]
    for row in report.partners:
        data = row.as_dict()
        yield [*head, row.partner, report.currency, *(str(data[name]) for name in SETTLEMENT_CSV[6:])]
    totals = report.as_dict()["totals"]
    yield [
        *head, "total", report.currency, str(totals["earned"]), str(totals["clawed_back"]),
        str(totals["issued"]), "", totals["owed_by_partners"], str(totals["burnt"]), str(totals["returned"]),
        str(totals["redeemed"]), "", totals["owed_to_partners"], totals["net"],
    ]  # fmt: skip


# ---------------------------------------------------------------------------- XLSX


def _safe(value: str | None) -> str:
    return formula_safe(value or "")


def _header(sheet: Worksheet, row: int, headers: Sequence[str]) -> None:
    for column, header in enumerate(headers, start=1):
        cell = sheet.cell(row=row, column=column, value=header)
        cell.font = BOLD
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")


def _put(sheet: Worksheet, row: int, column: int, value: Any, number_format: str | None = None) -> None:
    cell = sheet.cell(row=row, column=column, value=value)
    if number_format:
        cell.number_format = number_format


def _total_style(sheet: Worksheet, row: int, columns: int) -> None:
    for column in range(1, columns + 1):
        cell = sheet.cell(row=row, column=column)
        cell.font = BOLD
        cell.fill = TOTAL_FILL


def _naive_utc(moment: dt.datetime) -> dt.datetime:
    """Spreadsheets have no time zones: the UTC wall time."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None, microsecond=0)


def _facts(sheet: Worksheet, title: str, facts: Sequence[tuple[str, Any, str | None]]) -> int:
    sheet["A1"] = title
    sheet["A1"].font = Font(bold=True, size=14)
    row = 3
    for label, value, number_format in facts:
        sheet.cell(row=row, column=1, value=label).font = BOLD
        _put(sheet, row, 2, value, number_format)
        row += 1
    return row + 1


def _widths(sheet: Worksheet, widths: Sequence[int]) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width


# Liability sheet, A..L
LIABILITY_HEADERS = (
    "Programme", "Issuer", "Pending", "Available", "Held", "Outstanding", "Point value", "Value",
    "Debt", "Debt value", "Accounts", "Debtors",
)  # fmt: skip
# Breakage sheet, A..K
BREAKAGE_HEADERS = (
    "Programme", "Issuer", "Window", "Issued", "Expired", "Redeemed", "Returned", "Clawed back",
    "Adjusted out", "Breakage rate", "From (UTC)",
)  # fmt: skip


def _liability_sheet(workbook: Workbook, report: LiabilityReport) -> None:
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Liability"
    row = _facts(
        sheet,
        "Loyalty liability",
        [
            ("As of (UTC, entries before it)", _naive_utc(report.as_of), "yyyy-mm-dd hh:mm"),
            ("Generated at (UTC)", _naive_utc(report.generated_at), "yyyy-mm-dd hh:mm"),
            ("Currency", _safe(report.currency), None),
            ("Breakage period", _safe(report.period.label), None),
            ("Debt", "owed by customers: shown apart, not deducted from the value", None),
        ],
    )
    _header(sheet, row, LIABILITY_HEADERS)
    row += 1
    totals: list[int] = []
    for programme in report.programmes:
        first = row
        for item in programme.by_partner:
            values: list[Any] = [
                _safe(programme.programme), _safe(_issuer(item.partner)), item.pending, item.available,
                item.held, f"=C{row}+D{row}+E{row}", programme.point_value, f"=ROUND(F{row}*G{row},2)",
                item.debt, f"=ROUND(I{row}*G{row},2)", item.accounts, item.debtors,
            ]  # fmt: skip
            formats = (None, None, COUNT, COUNT, COUNT, COUNT, None, MONEY, COUNT, MONEY, COUNT, COUNT)
            for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
                _put(sheet, row, column, value, number_format)
            row += 1
        last = row - 1
        _put(sheet, row, 1, _safe(programme.programme))
        _put(sheet, row, 2, "Total")
        for letter in "CDEFHIJ":
            number_format = MONEY if letter in "HJ" else COUNT
            _put(sheet, row, ord(letter) - 64, f"=SUM({letter}{first}:{letter}{last})", number_format)
        _put(sheet, row, 7, programme.point_value)
        _put(sheet, row, 11, programme.total.accounts, COUNT)  # distinct: an account may hold several issuers
        _put(sheet, row, 12, programme.total.debtors, COUNT)
        _total_style(sheet, row, len(LIABILITY_HEADERS))
        totals.append(row)
        row += 1
    _put(sheet, row, 1, "All programmes")
    _put(sheet, row, 8, "=" + "+".join(f"H{r}" for r in totals) if totals else 0, MONEY)
    _put(sheet, row, 10, "=" + "+".join(f"J{r}" for r in totals) if totals else 0, MONEY)
    _total_style(sheet, row, len(LIABILITY_HEADERS))
    _widths(sheet, (24, 16, 12, 12, 12, 13, 11, 15, 11, 14, 10, 10))


def _breakage_sheet(workbook: Workbook, report: LiabilityReport) -> None:
    sheet = workbook.create_sheet("Breakage")
    _header(sheet, 1, BREAKAGE_HEADERS)
    row = 2
    for programme in report.programmes:
        for item in [*programme.breakage_by_partner, programme.breakage]:
            issuer = "Total" if item is programme.breakage else _safe(_issuer(item.partner))
            for window, flows, start in (
                (_safe(report.period.label), item.period, _naive_utc(programme.period_start)),
                ("lifetime", item.lifetime, None),
            ):
                values: list[Any] = [
                    _safe(programme.programme), issuer, window, flows.issued, flows.expired, flows.redeemed,
                    flows.returned, flows.clawed_back, flows.adjusted_out, f'=IF(D{row}=0,"",E{row}/D{row})',
                    start,
                ]  # fmt: skip
                formats = (None, None, None, *[COUNT] * 6, PERCENT, "yyyy-mm-dd hh:mm")
                for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
                    _put(sheet, row, column, value, number_format)
                if item is programme.breakage:
                    _total_style(sheet, row, len(BREAKAGE_HEADERS))
                row += 1
    _widths(sheet, (24, 16, 12, 12, 12, 12, 12, 12, 12, 12, 18))
    sheet.freeze_panes = "A2"


def build_liability_workbook(report: LiabilityReport) -> Workbook:
    """The liability report in memory: sheets Liability and Breakage."""
    workbook = Workbook()
    _liability_sheet(workbook, report)
    _breakage_sheet(workbook, report)
    return workbook


# Settlement sheet, A..L
SETTLEMENT_HEADERS = (
    "Partner", "Earned", "Clawed back", "Issued", "Price per point", "Owed by partner", "Burnt",
    "Returned", "Redeemed", "Burn rate", "Owed to partner", "Net (partner pays +)",
)  # fmt: skip


def build_settlement_workbook(report: SettlementReport) -> Workbook:
    """The settlement report in memory: one sheet, figures as formulas over points and rates."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Settlement"
    row = _facts(
        sheet,
        f"Partner settlement {report.label}",
        [
            ("Programme", _safe(report.programme), None),
            ("Period", _safe(report.label), None),
            ("From (UTC, inclusive)", _naive_utc(report.start), "yyyy-mm-dd hh:mm"),
            ("Until (UTC, exclusive)", _naive_utc(report.end), "yyyy-mm-dd hh:mm"),
            ("Time zone of the period", _safe(report.timezone), None),
            ("Currency", _safe(report.currency), None),
            ("Generated at (UTC)", _naive_utc(report.generated_at), "yyyy-mm-dd hh:mm"),
        ],
    )
    _header(sheet, row, SETTLEMENT_HEADERS)
    row += 1
    first = row
    for item in report.partners:
        values: list[Any] = [
            _safe(item.partner), item.earned, item.clawed_back, f"=B{row}-C{row}", item.price_per_point,
            f"=ROUND(D{row}*E{row},2)", item.burnt, item.returned, f"=G{row}-H{row}", item.burn_rate,
            f"=ROUND(I{row}*J{row},2)", f"=F{row}-K{row}",
        ]  # fmt: skip
        formats = (None, COUNT, COUNT, COUNT, None, MONEY, COUNT, COUNT, COUNT, None, MONEY, MONEY)
        for column, (value, number_format) in enumerate(zip(values, formats, strict=True), start=1):
            _put(sheet, row, column, value, number_format)
        row += 1
    last = max(first, row - 1)
    _put(sheet, row, 1, "Total")
    for letter in "BCDFGHIKL":
        number_format = MONEY if letter in "FKL" else COUNT
        _put(sheet, row, ord(letter) - 64, f"=SUM({letter}{first}:{letter}{last})", number_format)
    _total_style(sheet, row, len(SETTLEMENT_HEADERS))
    row += 2
    sheet.cell(row=row, column=1, value="Notes").font = BOLD
    for note in report.notes or ["none"]:
        row += 1
        sheet.cell(row=row, column=1, value=_safe(note))
    _widths(sheet, (24, 12, 12, 12, 12, 16, 12, 12, 12, 12, 16, 18))
    return workbook
