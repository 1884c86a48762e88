"""The finance workbook: live formulas, evaluated by a real formula engine (``formulas``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import formulas
import openpyxl
import pytest

from engine.budget.budget_files import Allocations, BudgetDefinition, BudgetFile
from engine.budget.report import ActualLine, BudgetReport, PlanLine
from engine.budget.workbook import write_workbook
from engine.reporting.periods import Period

CENT = Decimal("0.01")
HOSTILE_NAME = '=HYPERLINK("x")'


def line(campaign: str, step: int, channel: str, **values: Any) -> PlanLine:
    """A plan line with the defaults of the sample report."""
    fields: dict[str, Any] = {
        "campaign": campaign,
        "name": campaign.replace("_", " ").title(),
        "strategy": "stimulation",
        "segment": "lapsed",
        "step": step,
        "channel": channel,
        "runs": 1,
        "members": 0,
        "control": 0,
        "unreachable": 0,
        "contacts_per_client": Decimal(1),
        "unit_cost": Decimal("0.40") if channel == "email" else Decimal("60.00"),
        "preparation": Decimal(0),
        "basis": "schedule",
        "price_source": f"channels.{channel}.unit_cost",
    }
    fields.update(values)
    return PlanLine(**fields)


def sample_report(*, approved: bool = True, lines: bool = True) -> BudgetReport:
    """Two campaigns, email at 0.40 and calls at 60.00, hand-computed below.

    ====  =========  =======  =======  ====  ===  ========  ======  ===========  ==========
    row   campaign   channel  clients  runs  cpc  contacts  unit    preparation  cost
    ====  =========  =======  =======  ====  ===  ========  ======  ===========  ==========
    2     winback    email    8 500    3     1    25 500    0.40    15 000.00     25 200.00
    3     winback    call     2 000    1     1    2 000     60.00   0            120 000.00
    4     vip_care   call     1 000    2     1.5  3 000     60.00   2 500.50     182 500.50
    5     vip_care   email    1 047    6     1    6 282     0.40    0            2 512.80
    ====  =========  =======  =======  ====  ===  ========  ======  ===========  ==========

    Plan total 330 213.30; approved 350 000.00; actual 47 700.50.
    """
    plan = [
        line("winback", 1, "email", runs=3, members=10_000, control=1_000, unreachable=500,
             preparation=Decimal("15000"), name="Win back lapsed"),
        line("winback", 2, "call", members=10_000, control=1_000, unreachable=7_000, name="Win back lapsed"),
        line("vip_care", 1, "call", strategy="loyalty", segment="vip", runs=2, members=1_200, control=120,
             unreachable=80, contacts_per_client=Decimal("1.5"), preparation=Decimal("2500.50"),
             name=HOSTILE_NAME, basis="-expected audience"),
        line("vip_care", 2, "email", strategy="loyalty", segment="vip", runs=6, members=1_200, control=120,
             unreachable=33, name=HOSTILE_NAME),
    ]  # fmt: skip
    actual = [
        ActualLine("winback", "stimulation", "lapsed", 1, "email", 8_000, Decimal(8_000), Decimal("3200.00"),
                   Decimal("15000")),
        ActualLine("vip_care", "loyalty", "vip", 1, "call", 300, Decimal(450), Decimal("27000.00"),
                   Decimal("2500.50")),
    ]  # fmt: skip
    period = Period.parse("2027-Q1")
    budget = None
    if approved:
        definition = BudgetDefinition(
            period="2027-Q1",
            approved=Decimal("350000"),
            approved_by="M. Ivanova, CFO",
            approved_at=dt.date(2026, 12, 15),
            fingerprint="3f2a9c01b7d4",
            allocations=Allocations(
                strategy={"loyalty": Decimal("200000"), "stimulation": Decimal("140000")},
                campaign={"winback": Decimal("140000")},
            ),
        )
        budget = BudgetFile("2027-Q1", Path("budgets/2027-Q1.toml"), period, definition)
    return BudgetReport(
        period=period,
        currency="EUR",
        generated_at=dt.datetime(2026, 12, 20, 9, 30, tzinfo=dt.UTC),
        fingerprint="3f2a9c01b7d4",
        lines=plan if lines else [],
        actual=actual if lines else [],
        approved=budget,
        notes=["=1+1 is not a formula here", "calls capped by the call centre's capacity"],
        overrides=["channels.call.unit_cost=60"],
    )


def test_sample_report_is_what_the_docstring_says() -> None:
    report = sample_report()
    assert [x.cost for x in report.lines] == [
        Decimal("25200.00"), Decimal("120000.00"), Decimal("182500.50"), Decimal("2512.80"),
    ]  # fmt: skip
    assert report.plan_total == Decimal("330213.30")
    assert report.actual_total == Decimal("47700.50")


class Evaluated:
    """A workbook computed by the ``formulas`` engine; cells read as ``sheet!A1``."""

    def __init__(self, path: Path) -> None:
        self.book = path.name
        self.model = formulas.ExcelModel().loads(str(path)).finish()
        self.solution = self.model.calculate()

    def key(self, sheet: str, cell: str) -> str:
        return f"'[{self.book}]{sheet.upper()}'!{cell}"

    def recalculate(self, changes: dict[tuple[str, str], Any]) -> None:
        self.solution = self.model.calculate(inputs={self.key(s, c): v for (s, c), v in changes.items()})

    def money(self, sheet: str, cell: str) -> Decimal:
        value = self.solution[self.key(sheet, cell)].value[0, 0]
        return Decimal(repr(float(value))).quantize(CENT)


def find_row(sheet: Any, label: str, after: int = 0) -> int:
    """The first row below ``after`` whose column A reads ``label``."""
    for row in range(after + 1, sheet.max_row + 1):
        if sheet.cell(row=row, column=1).value == label:
            return row
    raise AssertionError(f"no row {label!r} on {sheet.title}")


@pytest.fixture()
def workbook_path(tmp_path: Path) -> Path:
    return write_workbook(sample_report(), tmp_path / "budget.xlsx")


def test_sheets_and_atomic_write(workbook_path: Path) -> None:
    assert workbook_path.is_file()
    assert [p.name for p in workbook_path.parent.iterdir()] == ["budget.xlsx"]  # no temporary left behind
    book = openpyxl.load_workbook(workbook_path)
    assert book.sheetnames == ["Summary", "Lines", "Matrix", "Actual"]


def test_lines_hold_live_formulas_over_editable_inputs(workbook_path: Path) -> None:
    lines = openpyxl.load_workbook(workbook_path)["Lines"]
    headers = [c.value for c in lines[1]]
    assert headers[:7] == ["Campaign", "Name", "Strategy", "Segment", "Step", "Channel", "Runs"]
    assert headers[10] == "Clients" and headers[16] == "Cost"
    assert lines["K3"].value == "=MAX(0,H3-I3-J3)"
    assert lines["M3"].value == "=K3*L3*G3"
    assert lines["O3"].value == "=N3*M3"
    assert lines["Q3"].value == "=N3*K3*L3*G3+P3"
    # inputs are plain values finance can change
    assert [lines[cell].value for cell in ("G3", "H3", "I3", "J3")] == [1, 10_000, 1_000, 7_000]
    assert lines["N3"].value == 60 and lines["N2"].value == pytest.approx(0.4)
    assert lines["P2"].value == 15_000 and lines["L4"].value == pytest.approx(1.5)
    assert lines["A6"].value == "Total" and lines["Q6"].value == "=SUM(Q2:Q5)"
    assert lines["Q2"].number_format == "#,##0.00"
    assert lines.freeze_panes == "C2"
    assert lines.auto_filter.ref == "A1:S5"


def test_summary_plans_by_strategy_from_the_lines(workbook_path: Path) -> None:
    summary = openpyxl.load_workbook(workbook_path)["Summary"]
    header = find_row(summary, "Strategy")
    assert [c.value for c in summary[header]][:6] == [
        "Strategy", "Plan", "Approved", "Actual", "Actual − Plan", "Actual − Approved",
    ]  # fmt: skip
    loyalty = header + 1
    assert summary.cell(row=loyalty, column=1).value == "loyalty"
    plan = summary.cell(row=loyalty, column=2).value
    assert plan == f"=SUMIFS(Lines!$Q$2:$Q$5,Lines!$C$2:$C$5,$A{loyalty})"
    assert summary.cell(row=loyalty, column=3).value == 200_000
    assert summary.cell(row=loyalty, column=5).value == f"=D{loyalty}-B{loyalty}"
    total = find_row(summary, "Total", header)
    assert summary.cell(row=total, column=2).value == "=SUM(Lines!$Q$2:$Q$5)"
    assert summary.cell(row=total, column=3).value == 350_000
    assert summary.cell(row=total, column=6).value == f"=D{total}-C{total}"


def test_formula_engine_total_matches_the_report_to_the_cent(workbook_path: Path) -> None:
    report = sample_report()
    book = openpyxl.load_workbook(workbook_path)
    evaluated = Evaluated(workbook_path)
    assert evaluated.money("Lines", "Q6") == report.plan_total == Decimal("330213.30")
    for row, plan_line in enumerate(report.lines, start=2):
        assert evaluated.money("Lines", f"Q{row}") == plan_line.cost
        assert evaluated.money("Lines", f"K{row}") == plan_line.clients
    summary = book["Summary"]
    header = find_row(summary, "Strategy")
    total = find_row(summary, "Total", header)
    assert evaluated.money("Summary", f"B{total}") == report.plan_total
    assert evaluated.money("Summary", f"E{total}") == report.actual_total - report.plan_total
    assert evaluated.money("Summary", f"F{total}") == Decimal("47700.50") - Decimal("350000")
    by_strategy = {t.key: t.plan for t in report.totals("strategy")}
    for row in range(header + 1, total):
        assert evaluated.money("Summary", f"B{row}") == by_strategy[summary.cell(row=row, column=1).value]


def test_matrix_grand_total_is_the_plan_total(workbook_path: Path) -> None:
    report = sample_report()
    matrix = openpyxl.load_workbook(workbook_path)["Matrix"]
    assert [c.value for c in matrix[2]] == ["Segment", "call", "email", "Preparation", "Total"]
    assert [matrix.cell(row=r, column=1).value for r in (3, 4, 5)] == ["lapsed", "vip", "Total"]
    assert matrix["B3"].value == ("=SUMIFS(Lines!$O$2:$O$5,Lines!$D$2:$D$5,$A3,Lines!$F$2:$F$5,B$2)")
    assert matrix["D3"].value == "=SUMIFS(Lines!$P$2:$P$5,Lines!$D$2:$D$5,$A3)"
    assert matrix["E5"].value == "=SUM(E3:E4)"
    evaluated = Evaluated(workbook_path)
    assert evaluated.money("Matrix", "E5") == report.plan_total
    assert evaluated.money("Matrix", "B4") == Decimal("180000.00")  # vip x call
    assert evaluated.money("Matrix", "D3") == Decimal("15000.00")  # lapsed preparation
    contacts_header = find_row(matrix, "Segment", 2)
    contacts_total = find_row(matrix, "Total", contacts_header)
    assert [c.value for c in matrix[contacts_header]][:4] == ["Segment", "call", "email", "Total"]
    assert evaluated.money("Matrix", f"D{contacts_total}") == sum(x.contacts for x in report.lines)
    assert evaluated.money("Matrix", f"C{contacts_header + 2}") == Decimal(6_282)  # vip x email


def test_changing_a_unit_cost_moves_every_total(workbook_path: Path) -> None:
    evaluated = Evaluated(workbook_path)
    summary = openpyxl.load_workbook(workbook_path)["Summary"]
    total = find_row(summary, "Total", find_row(summary, "Strategy"))
    # winback's call: 2 000 clients x 1 contact x 1 run; 60.00 -> 55.00 saves 10 000.00
    evaluated.recalculate({("Lines", "N3"): 55})
    assert evaluated.money("Lines", "Q3") == Decimal("110000.00")
    assert evaluated.money("Lines", "Q6") == Decimal("320213.30")
    assert evaluated.money("Matrix", "E5") == Decimal("320213.30")
    assert evaluated.money("Summary", f"B{total}") == Decimal("320213.30")
    # and fewer reachable members of vip: 100 more unreachable, 100 x 1.5 x 2 x 60.00 = 18 000.00 less
    evaluated.recalculate({("Lines", "N3"): 55, ("Lines", "J4"): 180})
    assert evaluated.money("Lines", "Q6") == Decimal("302213.30")


def test_user_text_never_becomes_a_formula(workbook_path: Path) -> None:
    book = openpyxl.load_workbook(workbook_path)
    lines = book["Lines"]
    assert lines["B4"].data_type == "s"
    assert lines["B4"].value == "'" + HOSTILE_NAME
    assert lines["S4"].value == "'-expected audience"
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                if isinstance(cell.value, str) and "HYPERLINK" in cell.value:
                    assert cell.data_type == "s", cell.coordinate
    summary = book["Summary"]
    notes = find_row(summary, "Notes")
    assert summary.cell(row=notes + 1, column=1).value == "'=1+1 is not a formula here"
    assert summary.cell(row=notes + 1, column=1).data_type == "s"


def test_summary_facts_and_actual_sheet(workbook_path: Path) -> None:
    book = openpyxl.load_workbook(workbook_path)
    summary = book["Summary"]
    facts = {summary.cell(row=r, column=1).value: summary.cell(row=r, column=2).value for r in range(3, 15)}
    assert facts["Period"] == "2027-Q1"
    assert facts["From"] == dt.datetime(2027, 1, 1)
    assert facts["To (inclusive)"] == dt.datetime(2027, 3, 31)
    assert facts["Currency"] == "EUR"
    assert facts["Generated at (UTC)"] == dt.datetime(2026, 12, 20, 9, 30)
    assert facts["Fingerprint matches"] == "yes"
    assert facts["Approved by"] == "M. Ivanova, CFO"
    assert facts["Approved total"] == 350_000
    overrides = find_row(summary, "What-if settings (--set)")
    assert summary.cell(row=overrides + 1, column=1).value == "channels.call.unit_cost=60"
    actual = book["Actual"]
    assert actual["A1"].value == "Campaign" and actual["J1"].value == "Cost"
    assert actual["J2"].value == 18_200 and actual["A4"].value == "Total"
    evaluated = Evaluated(workbook_path)
    assert evaluated.money("Actual", "J4") == Decimal("47700.50")


def test_empty_report_without_approval(tmp_path: Path) -> None:
    report = sample_report(approved=False, lines=False)
    path = write_workbook(report, tmp_path / "sub" / "empty.xlsx")
    book = openpyxl.load_workbook(path)
    summary = book["Summary"]
    total = find_row(summary, "Total", find_row(summary, "Strategy"))
    assert summary.cell(row=total, column=3).value is None
    assert summary.cell(row=total, column=6).value is None
    evaluated = Evaluated(path)
    assert evaluated.money("Lines", "Q3") == Decimal(0)
    assert evaluated.money("Summary", f"B{total}") == Decimal(0)
