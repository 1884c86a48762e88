"""Import files of good rows and hostile rows: the good rows go in, each bad one is rejected with its reason.

Each example writes a customers or purchases file (CSV, sometimes saved with a
byte-order mark, CRLF, in cp1251, or as XLSX) whose good rows are built from
safe values and whose bad rows have one to three cells replaced by hostile
ones (numbers past every limit, dates in year 1 or 9999, markup, formulas,
control characters, wrong types), then runs ``crm import``. The import exits 0
or 1, never 2. On 0 every good row is in the database and none is in the
rejects file, and everything stored is within the engine's limits; on 1 the
message names the file and the database is as it was.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import itertools
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest
from hypothesis import event, given, note
from hypothesis import strategies as st
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from sqlalchemy import Engine, func, select

from engine.models import CUSTOMER, PURCHASE
from engine.settings.limits import (
    EARLIEST_BUSINESS_DATE,
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_AMOUNT,
    MAX_QUANTITY,
)
from tests.factories import add_customer
from tests.fuzz.hostile import FUZZ, HOSTILE_NUMBERS, HOSTILE_STRINGS, check_outcome, row_counts, run

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_CELLS = [
    *HOSTILE_STRINGS,
    *(str(n) for n in HOSTILE_NUMBERS),
    "1e30",
    "1E+400",
    "-100000000.01",
    "100000000.01",
    "0.001",
    "1,500",
    "12,5",
    "0001-01-01",
    "9999-12-31",
    "9999-12-31 23:59:59",
    "0001-01-01T00:00:00+14:00",
    "1969-12-31",
    "2027-02-30",
    "24:00",
    "01.02.2003",
    "13.13.2013",
    "да",
    "maybe",
    "8 (916) 123-45-67",
    "+999 000",
    "not-an-email",
    "a@b",
    "a@" + "b" * 300 + ".ru",
    "Europe",
    "Mars/Olympus",
    "partner",
    "visitor",
    "refund",
]
cells = st.one_of(
    st.sampled_from(HOSTILE_CELLS), st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
)
CUSTOMER_HEADER = [
    "external_id",
    "first_name",
    "email",
    "phone",
    "birth_date",
    "consent_email",
    "lifecycle_stage",
    "timezone",
    "attr.children",
]
PURCHASE_HEADER = [
    "external_id",
    "customer",
    "ordered_at",
    "amount",
    "currency",
    "category",
    "quantity",
    "refund_of",
]
NAMES = ["Анна", "Олег", "Mary", "Jean-Luc", "Ольга Петровна"]
RUN = "§"  # in ids, emails and phones: replaced by a number of its own for each file written
_runs = itertools.count(1_000_000)


@dataclass(frozen=True)
class Rows:
    kind: str
    header: list[str]
    rows: list[list[str]]
    good: list[int]  # indexes of the rows built from safe values only


def _customer(n: int, prefix: str, draw: st.DrawFn) -> list[str]:
    return [
        f"{prefix}{RUN}-{n}",
        draw(st.sampled_from(NAMES)),
        f"{prefix.lower()}{RUN}-{n}@example.ru",
        f"+7 9{RUN}{n:02d}",  # the run's number (7 digits) completes it to ten
        draw(st.dates(dt.date(1940, 1, 1), dt.date(2008, 12, 31))).isoformat(),
        draw(st.sampled_from(["да", "нет", "yes", "no", "1", "0"])),
        draw(st.sampled_from(["client", "regular", "клиент"])),
        draw(st.sampled_from(["Europe/Moscow", "Asia/Vladivostok", ""])),
        str(draw(st.integers(0, 5))),
    ]


def _purchase(n: int, prefix: str, draw: st.DrawFn) -> list[str]:
    when = draw(st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2026, 11, 30)))
    return [
        f"{prefix}{RUN}-{n}",
        f"C{draw(st.integers(1, 3))}",
        when.replace(microsecond=0).isoformat(sep=" "),
        str(draw(st.decimals(min_value=1, max_value=99999, places=2))),
        "RUB",
        draw(st.sampled_from(["shoes", "cosmetics", ""])),
        str(draw(st.integers(1, 5))),
        "",
    ]


@st.composite
def files(draw: st.DrawFn) -> Rows:
    kind = draw(st.sampled_from(["customers", "purchases"]))
    header, build = (CUSTOMER_HEADER, _customer) if kind == "customers" else (PURCHASE_HEADER, _purchase)
    rows: list[list[str]] = []
    good: list[int] = []
    for n in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            good.append(len(rows))
            rows.append(build(n, "G", draw))
            continue
        row = build(n, "X", draw)
        for column in draw(st.lists(st.integers(0, len(header) - 1), min_size=1, max_size=3, unique=True)):
            row[column] = draw(cells)
            note(f"row {len(rows) + 2}: {header[column]} = {row[column]!r}")
        rows.append(row)
    return Rows(kind, header, rows, good)


def _unique(table: Rows) -> Rows:
    """``table`` with ids, emails and phones of its own: examples share one database."""
    number = str(next(_runs))
    rows = [[cell.replace(RUN, number) for cell in row] for row in table.rows]
    return Rows(table.kind, table.header, rows, table.good)


def _write(table: Rows, folder: Path, form: str) -> Path:
    if form == "xlsx":
        path = folder / f"{table.kind}.xlsx"
        book = openpyxl.Workbook()
        sheet = book.active
        assert sheet is not None
        sheet.append(table.header)
        for row in table.rows:
            sheet.append([_xlsx_cell(cell) for cell in row])
        book.save(path)
        return path
    path = folder / f"{table.kind}.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";", lineterminator="\r\n" if form == "crlf" else "\n")
        writer.writerow(table.header)
        writer.writerows(table.rows)
    if form == "bom":
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    if form == "cp1251":
        path.write_bytes(path.read_text(encoding="utf-8").encode("cp1251", "replace"))
    return path


def _xlsx_cell(cell: str) -> object:
    """Numbers as numbers, ISO dates as dates, text a worksheet can hold: what a spreadsheet would."""
    if cell.lstrip("-").isdigit() and len(cell) < 16:
        return int(cell)
    with contextlib.suppress(ValueError):
        return (
            float(cell)
            if "e" in cell.lower() and cell.lower() not in ("nan", "-nan")
            else dt.date.fromisoformat(cell)
        )
    return ILLEGAL_CHARACTERS_RE.sub("", cell)


@pytest.fixture
def shop(db: Engine, write_config) -> Iterator[tuple[Engine, str]]:  # type: ignore[no-untyped-def]
    """Customers C1..C3 to buy, and the example config (for its attributes and currency)."""
    config = write_config()
    with db.begin() as connection:
        for n in (1, 2, 3):
            add_customer(connection, external_id=f"C{n}", email=f"c{n}@example.ru")
    yield db, str(config)


def _rejects(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as rejects:
        return list(csv.DictReader(rejects))


def _check_stored(db: Engine) -> None:
    """Whatever went in is within the engine's limits."""
    with db.connect() as connection:
        low, high = connection.execute(
            select(func.min(CUSTOMER.c.birth_date), func.max(CUSTOMER.c.birth_date))
        ).one()
        assert low is None or (low >= EARLIEST_DATE and high <= LATEST_DATE), (low, high)
        amounts = connection.execute(
            select(func.min(PURCHASE.c.amount), func.max(PURCHASE.c.amount), func.max(PURCHASE.c.quantity))
        ).one()
        if amounts[0] is not None:
            assert amounts[0] >= -MAX_AMOUNT and amounts[1] <= MAX_AMOUNT and amounts[2] <= MAX_QUANTITY, (
                amounts
            )
        first, last = connection.execute(
            select(func.min(PURCHASE.c.ordered_at), func.max(PURCHASE.c.ordered_at))
        ).one()
        if first is not None:
            assert first.date() >= EARLIEST_BUSINESS_DATE and last.date() <= LATEST_DATE, (first, last)


@FUZZ
@given(
    table=files(),
    form=st.sampled_from(["csv", "csv", "crlf", "bom", "cp1251", "xlsx"]),
    source=st.integers(0, 10**9),
)
def test_good_rows_go_in_and_bad_rows_are_rejected_with_their_reason(
    shop: tuple[Engine, str], table: Rows, form: str, source: int
) -> None:
    db, config = shop
    folder = Path(tempfile.mkdtemp(prefix="crm-import-fuzz-"))
    table = _unique(table)
    try:
        path = _write(table, folder, form)
        rejects = folder / "rejects.csv"
        before = row_counts(db)
        args = ["--config", config, "import", table.kind, str(path), "--rejects", str(rejects)]
        if table.kind == "customers":
            args += ["--source", f"fuzz{source}"]
        outcome = run(*args)
        check_outcome(outcome, names=[path.name])
        event(f"{table.kind} {form}: exit {outcome.code}")
        if outcome.code == 1:
            assert row_counts(db) == before, outcome.err
            return
        rejected = _rejects(rejects)
        assert len(rejected) <= len(table.rows) - len(table.good), f"good rows rejected\n{outcome.out}"
        assert all(record["line"].isdigit() and record["reason"].strip() for record in rejected), rejected
        ids = [table.rows[index][0] for index in table.good]
        stored_table = CUSTOMER if table.kind == "customers" else PURCHASE
        with db.connect() as connection:
            stored = set(
                connection.execute(
                    select(stored_table.c.external_id).where(stored_table.c.external_id.in_(ids))
                ).scalars()
            )
        assert stored == set(ids), f"good rows missing: {set(ids) - stored}\n{outcome.out}"
        _check_stored(db)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(
    "where",
    ["folder", "under-a-file"],
)
def test_a_rejects_path_that_cannot_be_written_refuses_the_import_before_it_starts(
    shop: tuple[Engine, str], tmp_path: Path, where: str
) -> None:
    db, config = shop
    path = tmp_path / "customers.csv"
    path.write_text("external_id;email\nG1;g1@example.ru\nX1;not-an-email\n", encoding="utf-8")
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    rejects = {
        "folder": tmp_path,
        "under-a-file": tmp_path / "a-file" / "r.csv",
    }[where]
    before = row_counts(db)
    outcome = run(
        "--config", config, "import", "customers", str(path), "--source", "s", "--rejects", str(rejects)
    )
    check_outcome(outcome, names=[str(rejects)])
    assert outcome.code == 1
    assert row_counts(db) == before
    assert not list(tmp_path.glob("**/.*.part")) and not list(tmp_path.glob("**/*.part"))


def test_the_safe_rows_alone_all_go_in(shop: tuple[Engine, str], tmp_path: Path) -> None:
    """The baseline of the fuzz test: a file of safe rows only imports every row."""
    db, config = shop
    rows = [
        [
            f"G{RUN}-{n}",
            "Анна",
            f"g{RUN}-{n}@example.ru",
            f"+7 9{RUN}{n:02d}",
            "1980-05-17",
            "да",
            "client",
            "",
            "2",
        ]
        for n in range(5)
    ]
    path = _write(_unique(Rows("customers", CUSTOMER_HEADER, rows, list(range(5)))), tmp_path, "csv")
    outcome = run("--config", config, "import", "customers", str(path), "--source", "fuzz")
    assert outcome.code == 0, outcome.err
    with db.connect() as connection:
        assert (
            connection.execute(select(func.count()).where(CUSTOMER.c.external_id.like("G%"))).scalar_one()
            == 5
        )
    assert ROOT.is_dir()
