"""Liability, breakage and partner settlement on a hand-computed ledger, on SQLite and PostgreSQL.

The ``coalition`` programme: 10 % of the amount in points, 14 days pending,
lots live 365 days, a point is worth 0.50 RUB, time zone Europe/Moscow (UTC+3).
Partners: ``fuel`` (earns 0.2 a rouble, pays 0.60 per point issued, is paid 0.40
per point burnt) and ``cinema`` (0.05; 0.70; 0.50). The ``club`` programme
(a point is worth 2.00) only gets one adjustment.

The story (times UTC; L = lot)::

    A   2026-01-10 09:00  buys 1000 at the shop          L1 own     +100 pending
    A   2026-01-10 10:00  buys 2000 at fuel (order A2)   L2 fuel    +400 pending
    C   2026-01-10 09:00  buys 1000 (order C1)           L5 own     +100 pending
    A   2026-02-01 12:00  redeems 150 at cinema (R1)     L1, L2 activated; -100 L1, -50 L2
    C   2026-02-01 12:00  redeems 100                    L5 activated; -100 L5
    B   2026-02-05 10:00  buys 500 at cinema             L3 cinema  +25 pending
    B   2026-02-05 11:00  adjusted +30, expiring 03-01   L4 own     +30 available
    C   2026-02-10 12:00  order C1 refunded              L5 is empty: debt 100
    D   2026-02-28 20:30  buys 100 at fuel (23:30 MSK)   L6 fuel    +20   (February)
    D   2026-02-28 21:30  buys 200 at fuel (00:30 MSK)   L7 fuel    +40   (March)
    B   2026-03-10 12:00  holds 20 at fuel               L3 activated, L4 expires (-30); 20 of L3 held
    A   2026-03-15 12:00  holds 100 at fuel, captured    -100 L2 (burnt at fuel)
    A   2026-03-20 12:00  order R1 refunded              +50 L2, +100 L1 returned (cinema)
    A   2026-03-25 12:00  half of order A2 refunded      -200 L2 clawed back (fuel)
    D   2026-03-31 20:30  buys 300 at fuel (23:30 MSK)   L8 fuel    +60   (March); L6, L7 activated
    D   2026-03-31 21:30  buys 400 at fuel (00:30 MSK)   L9 fuel    +80   (April)
    A   2026-04-01 12:00  holds 30 at fuel, open         30 of L1 held
    A   2026-04-02 12:00  club: adjusted +10

Outstanding now (pending / available / held)::

    own     0 / 70 / 30 = 100   (L1: 70 + 30 held)      value  50.00   accounts A         debt 100 (C)
    fuel  140 / 160 / 0 = 300   (L2 100, L6 20, L7 40,  value 150.00   accounts A, D
                                 L8 60 and L9 80 pending)
    cinema  0 / 5 / 20 = 25     (L3)                    value  12.50   accounts B
    total 140 / 235 / 50 = 425                          value 212.50   accounts A, B, D
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import formulas
import openpyxl
import pytest
from rich.console import Console
from sqlalchemy import Engine, func, select

from engine.cli import main as crm_main
from engine.config.checked import load_config
from engine.errors import NotFoundError
from engine.loyalty.finance.output import (
    build_settlement_workbook,
    liability_tables,
    settlement_csv_rows,
    settlement_tables,
)
from engine.loyalty.finance.reports import (
    LIABILITY_SCHEMA,
    SETTLEMENT_SCHEMA,
    Flows,
    LiabilityReport,
    liability,
    period_bounds,
    settlement,
)
from engine.loyalty.ledger.earning import earn_purchase
from engine.loyalty.ledger.member_moves import adjust
from engine.loyalty.ledger.redemption import capture, redeem
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.programme.definition import Programme
from engine.models.tables import ACCOUNT
from engine.reporting.periods import Period
from engine.reporting.spreadsheet import safe_cell
from tests.factories import utc
from tests.loyalty.ledger_setup import assert_consistent, customers

COALITION = """
[loyalty.programmes.coalition]
point_value = 0.5
pending_days = 14
expiry = "365d"
timezone = "Europe/Moscow"
earn = [{ name = "base", when = "true", points = "amount * 0.1" }]

[loyalty.programmes.coalition.partners.fuel]
earn_rate = 0.2
price_per_point = 0.6
burn_rate = 0.4

[loyalty.programmes.coalition.partners.cinema]
earn_rate = 0.05
price_per_point = 0.7
burn_rate = 0.5

[loyalty.programmes.club]
point_value = 2
timezone = "Europe/Moscow"
"""


def _programmes(write_config: Callable[..., Path]) -> dict[str, Programme]:
    programmes = load_config(write_config(COALITION)).programmes
    return {name: programmes[name] for name in ("coalition", "club")}


def _story(db: Engine, programmes: dict[str, Programme]) -> None:
    """Post the story of the module docstring through the ledger's own commands."""
    p, club = programmes["coalition"], programmes["club"]
    customers(db, "A", "B", "C", "D")
    money = Decimal
    earn_purchase(db, p, order="A1", customer="A", amount=money(1000), now=utc(2026, 1, 10, 9))
    earn_purchase(
        db, p, order="A2", customer="A", amount=money(2000), source="fuel", now=utc(2026, 1, 10, 10)
    )
    earn_purchase(db, p, order="C1", customer="C", amount=money(1000), now=utc(2026, 1, 10, 9))
    redeem(db, p, key="A-R1", customer="A", points=150, partner="cinema", order="R1",
           order_amount=money(300), now=utc(2026, 2, 1, 12))  # fmt: skip
    redeem(db, p, key="C-R1", customer="C", points=100, now=utc(2026, 2, 1, 12))
    earn_purchase(
        db, p, order="B1", customer="B", amount=money(500), source="cinema", now=utc(2026, 2, 5, 10)
    )
    adjust(db, p, key="B-ADJ", customer="B", points=30, reason="goodwill", actor="test",
           expires_at=utc(2026, 3, 1), now=utc(2026, 2, 5, 11))  # fmt: skip
    refund(db, p, key="C-RF1", order="C1", now=utc(2026, 2, 10, 12))
    earn_purchase(
        db, p, order="D1", customer="D", amount=money(100), source="fuel", now=utc(2026, 2, 28, 20, 30)
    )
    earn_purchase(
        db, p, order="D2", customer="D", amount=money(200), source="fuel", now=utc(2026, 2, 28, 21, 30)
    )
    redeem(db, p, key="B-H1", customer="B", points=20, partner="fuel", hold=True, now=utc(2026, 3, 10, 12))
    redeem(db, p, key="A-H1", customer="A", points=100, partner="fuel", hold=True, now=utc(2026, 3, 15, 12))
    capture(db, p, key="A-C1", hold_key="A-H1", now=utc(2026, 3, 15, 12, 1))
    refund(db, p, key="A-RF1", order="R1", now=utc(2026, 3, 20, 12))
    refund(db, p, key="A-RF2", order="A2", amount=money(1000), now=utc(2026, 3, 25, 12))
    earn_purchase(
        db, p, order="D3", customer="D", amount=money(300), source="fuel", now=utc(2026, 3, 31, 20, 30)
    )
    earn_purchase(
        db, p, order="D4", customer="D", amount=money(400), source="fuel", now=utc(2026, 3, 31, 21, 30)
    )
    redeem(db, p, key="A-H2", customer="A", points=30, partner="fuel", hold=True, now=utc(2026, 4, 1, 12))
    adjust(
        db,
        club,
        key="A-CLUB",
        customer="A",
        points=10,
        reason="welcome",
        actor="test",
        now=utc(2026, 4, 2, 12),
    )
    assert_consistent(db)


@pytest.fixture
def ledger(db: Engine, write_config: Callable[..., Path]) -> dict[str, Programme]:
    """The programmes, with the story posted."""
    programmes = _programmes(write_config)
    _story(db, programmes)
    return programmes


def _split(report: LiabilityReport, programme: str = "coalition") -> dict[str | None, tuple[int, ...]]:
    found = next(p for p in report.programmes if p.programme == programme)
    return {
        row.partner: (row.pending, row.available, row.held, row.points, row.debt, row.accounts, row.debtors)
        for row in [*found.by_partner]
    }


def test_liability_by_programme_and_partner(db: Engine, ledger: dict[str, Programme]) -> None:
    report = liability(db, ledger, period=Period.parse("2026-Q1"))
    coalition, club = report.programmes
    assert _split(report) == {
        None: (0, 70, 30, 100, 100, 1, 1),  # debt 100 (C's refund of spent points) sits with the programme
        "cinema": (0, 5, 20, 25, 0, 1, 0),
        "fuel": (140, 160, 0, 300, 0, 2, 0),
    }
    total = coalition.total
    assert (total.pending, total.available, total.held, total.points) == (140, 235, 50, 425)
    assert (total.accounts, total.debt, total.debtors) == (3, 100, 1)  # A, B, D hold points; C owes
    assert [row.value for row in coalition.by_partner] == [
        Decimal("50.00"),
        Decimal("12.50"),
        Decimal("150.00"),
    ]
    assert (total.value, total.debt_value) == (Decimal("212.50"), Decimal("50.00"))
    assert (club.total.points, club.total.value, club.currency) == (10, Decimal("20.00"), "RUB")
    assert report.value == Decimal("232.50")  # the debt is not deducted
    data = report.as_dict()
    assert data["schema"] == LIABILITY_SCHEMA
    assert data["totals"] == {"value": "232.50", "debt_value": "50.00"}
    assert data["programmes"][0]["total"]["outstanding"] == 425


def test_liability_now_equals_the_cached_balances(db: Engine, ledger: dict[str, Programme]) -> None:
    report = liability(db, [ledger["coalition"]])
    with db.connect() as connection:
        cached = connection.execute(
            select(
                func.sum(ACCOUNT.c.pending),
                func.sum(ACCOUNT.c.available),
                func.sum(ACCOUNT.c.held),
                func.sum(ACCOUNT.c.debt),
            ).where(ACCOUNT.c.programme == "coalition")
        ).one()
    total = report.programmes[0].total
    assert (total.pending, total.available, total.held, total.debt) == tuple(int(v) for v in cached)


def test_liability_as_of_a_past_day(db: Engine, ledger: dict[str, Programme]) -> None:
    """At the close of 28 February (Moscow) = 2026-02-28 21:00 UTC: D2 (21:30 UTC) is not there yet.

    L3 is still pending although its window ended on 19 February: it was
    activated on 10 March, and the ledger is read as it stood. L4 has not
    expired yet (that happened on 10 March too).
    """
    report = liability(db, ledger, as_of=utc(2026, 2, 28, 21))
    assert _split(report) == {
        None: (0, 30, 0, 30, 100, 1, 1),  # L1 spent, L4 30, L5 spent; C owes 100
        "cinema": (25, 0, 0, 25, 0, 1, 0),  # L3 pending
        "fuel": (20, 350, 0, 370, 0, 2, 0),  # L2 400 - 50; L6 pending
    }
    assert report.programmes[0].total.value == Decimal("212.50")
    assert report.programmes[1].total.points == 0  # the club adjustment is in April
    assert report.period == Period.parse("2026")  # by default, the year of as_of
    assert report.programmes[0].period_end == utc(2026, 2, 28, 21)  # the year so far


def test_breakage_for_a_period_and_the_lifetime(db: Engine, ledger: dict[str, Programme]) -> None:
    report = liability(db, ledger, period=Period.parse("2026-Q1"))
    coalition = report.programmes[0]
    assert (coalition.period_start, coalition.period_end) == (utc(2025, 12, 31, 21), utc(2026, 3, 31, 21))
    by_issuer = {item.partner: item for item in coalition.breakage_by_partner}
    # own: L1 100 + L5 100 + adjusted 30; L4's 30 expired; R1 100 from L1 and C-R1 100; 100 of R1 back on L1
    assert by_issuer[None].period == Flows(issued=230, expired=30, redeemed=200, returned=100)
    assert by_issuer[None].period.breakage_rate == Decimal("0.1304")  # 30 / 230
    # fuel: L2 400 + L6 20 + L7 40 + L8 60 (L9 is 00:30 on 1 April in Moscow); 50 of R1 and the capture
    assert by_issuer["fuel"].period == Flows(issued=520, redeemed=150, returned=50, clawed_back=200)
    assert by_issuer["fuel"].lifetime.issued == 600
    assert by_issuer["fuel"].period.breakage_rate == Decimal("0.0000")
    assert by_issuer["cinema"].period == Flows(issued=25)  # B's hold is not a redemption
    assert coalition.breakage.period.issued == 775
    assert coalition.breakage.period.breakage_rate == Decimal("0.0387")  # 30 / 775
    assert coalition.breakage.lifetime.breakage_rate == Decimal("0.0351")  # 30 / 855
    assert Flows().breakage_rate is None
    # every issuer's outstanding is what its flows left (holds stay outstanding)
    for item, row in zip(coalition.breakage_by_partner, coalition.by_partner, strict=True):
        life = item.lifetime
        left = (
            life.issued - life.expired - life.redeemed + life.returned - life.clawed_back - life.adjusted_out
        )
        assert left == row.points, item.partner


def test_settlement_issued_at_one_partner_burnt_at_another(db: Engine, ledger: dict[str, Programme]) -> None:
    coalition = ledger["coalition"]
    start, end = period_bounds(coalition, Period.parse("2026-02"))
    assert (start, end) == (utc(2026, 1, 31, 21), utc(2026, 2, 28, 21))
    report = settlement(db, coalition, start, end, label="2026-02")
    cinema, fuel = report.partners
    # fuel issued L6 (23:30 on 28 February in Moscow): 20 x 0.60; nothing burnt there
    assert (fuel.issued, fuel.owed_by_partner, fuel.redeemed, fuel.net) == (
        20,
        Decimal("12.00"),
        0,
        Decimal("12.00"),
    )
    # cinema issued L3: 25 x 0.70 = 17.50; R1 burnt 150 there: 150 x 0.50 = 75.00
    assert (cinema.issued, cinema.owed_by_partner) == (25, Decimal("17.50"))
    assert (cinema.redeemed, cinema.owed_to_partner, cinema.net) == (150, Decimal("75.00"), Decimal("-57.50"))
    assert report.net == Decimal("-45.50")  # the programme pays the partners


def test_settlement_nets_clawbacks_and_returns_in_the_period(
    db: Engine, ledger: dict[str, Programme]
) -> None:
    """March (Moscow): fuel issued L7 40 + L8 60 and had 200 clawed back; R1 was refunded at cinema."""
    coalition = ledger["coalition"]
    report = settlement(db, coalition, *period_bounds(coalition, Period.parse("2026-03")), label="2026-03")
    cinema, fuel = report.partners
    assert (fuel.earned, fuel.clawed_back, fuel.issued, fuel.owed_by_partner) == (
        100,
        200,
        -100,
        Decimal("-60.00"),
    )
    assert (fuel.burnt, fuel.returned, fuel.owed_to_partner) == (100, 0, Decimal("40.00"))  # the capture
    assert fuel.net == Decimal("-100.00")
    assert (cinema.burnt, cinema.returned, cinema.redeemed) == (0, 150, -150)
    assert (cinema.owed_to_partner, cinema.net) == (Decimal("-75.00"), Decimal("75.00"))
    data = report.as_dict()
    assert data["schema"] == SETTLEMENT_SCHEMA
    assert data["totals"]["net"] == "-25.00"
    assert data["period"]["start"] == "2026-02-28T21:00:00+00:00"


def test_settlement_one_partner_and_unknown_partners(db: Engine, ledger: dict[str, Programme]) -> None:
    coalition = ledger["coalition"]
    start, end = period_bounds(coalition, Period.parse("2026-Q1"))
    only = settlement(db, coalition, start, end, partner="fuel")
    assert [p.partner for p in only.partners] == ["fuel"]
    assert (only.partners[0].issued, only.partners[0].redeemed) == (320, 100)  # 520 - 200; the capture
    assert only.net == Decimal("152.00")  # 320 x 0.60 - 100 x 0.40
    with pytest.raises(NotFoundError, match="known: cinema, fuel"):
        settlement(db, coalition, start, end, partner="bakery")


def test_tables_fit_80_columns(db: Engine, ledger: dict[str, Programme]) -> None:
    console = Console(width=80, record=True, file=io.StringIO())
    report = liability(db, ledger, period=Period.parse("2026-Q1"))
    coalition = ledger["coalition"]
    for renderable in [
        *liability_tables(report),
        *settlement_tables(settlement(db, coalition, *period_bounds(coalition, Period.parse("2026-02")))),
    ]:
        console.print(renderable)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for figure in ("212.50", "150.00", "13.04%", "-57.50", "-45.50", "(programme)"):
        assert figure in text, figure


def _env(write_config: Callable[..., Path]) -> None:
    write_config(COALITION)  # sets CRM_CONFIG and CRM_DATABASE_URL for the in-process CLI


def test_liability_command_every_format(
    db: Engine, ledger: dict[str, Programme], write_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _env(write_config)
    assert crm_main(["loyalty", "liability", "-p", "coalition", "--period", "2026-Q1"]) == 0
    assert "212.50" in capsys.readouterr().out

    assert crm_main(["loyalty", "liability", "-p", "coalition", "--as-of", "2026-02-28", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["as_of"] == "2026-02-28T21:00:00+00:00"  # the close of the day in Moscow
    assert {row["partner"]: row["outstanding"] for row in data["programmes"][0]["by_partner"]} == {
        None: 30, "cinema": 25, "fuel": 370,
    }  # fmt: skip

    assert crm_main(["loyalty", "liability", "--period", "2026-Q1", "-f", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out), delimiter=";"))
    coalition = [row for row in rows if row["programme"] == "coalition"]
    assert [(r["scope"], r["partner"], r["outstanding"], r["value"]) for r in coalition] == [
        ("own", "", "100", "50.00"), ("partner", "cinema", "25", "12.50"),
        ("partner", "fuel", "300", "150.00"), ("total", "", "425", "212.50"),
    ]  # fmt: skip
    assert coalition[-1]["period_breakage_rate"] == "0.0387"
    assert {row["programme"] for row in rows} == {"bonus", "coalition", "club"}  # every programme

    book = tmp_path / "liability.xlsx"
    assert crm_main(["loyalty", "liability", "--period", "2026-Q1", "-f", "xlsx", "-o", str(book)]) == 0
    capsys.readouterr()
    sheet = openpyxl.load_workbook(book)["Liability"]
    values = Evaluated(book)
    total_row = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == "All programmes")
    assert values.cell("LIABILITY", f"H{total_row}") == pytest.approx(232.50)  # 212.50 + 20.00
    coalition_total = next(
        r for r in range(1, sheet.max_row + 1)
        if sheet.cell(r, 1).value == "coalition" and sheet.cell(r, 2).value == "Total"
    )  # fmt: skip
    assert values.cell("LIABILITY", f"F{coalition_total}") == 425
    assert values.cell("LIABILITY", f"J{coalition_total}") == pytest.approx(50.0)
    breakage = openpyxl.load_workbook(book)["Breakage"]
    total = next(
        r for r in range(2, breakage.max_row + 1)
        if breakage.cell(r, 1).value == "coalition" and breakage.cell(r, 2).value == "Total"
    )  # fmt: skip
    assert values.cell("BREAKAGE", f"J{total}") == pytest.approx(30 / 775)

    assert crm_main(["loyalty", "liability", "-f", "xlsx"]) == 1  # xlsx needs --output
    assert "--output" in capsys.readouterr().err
    assert crm_main(["loyalty", "liability", "--as-of", "yesterday"]) == 1
    assert crm_main(["loyalty", "liability", "-p", "nope"]) == 1
    assert "known: bonus, club, coalition" in capsys.readouterr().err


def test_settlement_command_every_format(
    db: Engine, ledger: dict[str, Programme], write_config: Callable[..., Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _env(write_config)
    assert crm_main(["loyalty", "settlement", "2026-02", "-p", "coalition"]) == 0
    shown = capsys.readouterr().out
    assert "-57.50" in shown and "-45.50" in shown

    assert crm_main(["loyalty", "settlement", "2026-03", "-p", "coalition", "-f", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["period"] == {
        "label": "2026-03", "start": "2026-02-28T21:00:00+00:00", "end": "2026-03-31T21:00:00+00:00",
        "timezone": "Europe/Moscow",
    }  # fmt: skip
    assert {p["partner"]: p["net"] for p in data["partners"]} == {"cinema": "75.00", "fuel": "-100.00"}

    out = tmp_path / "fuel.csv"
    assert crm_main(["loyalty", "settlement", "2026-Q1", "-p", "coalition", "--partner", "fuel",
                     "-f", "csv", "-o", str(out)]) == 0  # fmt: skip
    capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert [(r["partner"], r["issued"], r["owed_by_partner"], r["net"]) for r in rows] == [
        ("fuel", "320", "192.00", "152.00"), ("total", "320", "192.00", "152.00"),
    ]  # fmt: skip

    book = tmp_path / "march.xlsx"
    assert (
        crm_main(["loyalty", "settlement", "2026-03", "-p", "coalition", "-f", "xlsx", "-o", str(book)]) == 0
    )
    capsys.readouterr()
    sheet = openpyxl.load_workbook(book)["Settlement"]
    total = next(r for r in range(1, sheet.max_row + 1) if sheet.cell(r, 1).value == "Total")
    values = Evaluated(book)
    assert values.cell("SETTLEMENT", f"L{total}") == pytest.approx(-25.0)  # net, by formulas
    assert values.cell("SETTLEMENT", f"F{total}") == pytest.approx(-60.0)

    assert crm_main(["loyalty", "settlement", "2026-13", "-p", "coalition"]) == 1
    assert "no month 13" in capsys.readouterr().err
    assert crm_main(["loyalty", "settlement", "2026-03", "-p", "coalition", "--partner", "bakery"]) == 1
    assert crm_main(["loyalty", "settlement", "2026-03"]) == 1  # three programmes: say which


def test_hostile_partner_names_are_not_formulas(
    db: Engine, write_config: Callable[..., Path], tmp_path: Path
) -> None:
    text = COALITION.replace("partners.cinema]", 'partners."=cmd"]')
    programme = load_config(write_config(text)).programmes["coalition"]
    start, end = period_bounds(programme, Period.parse("2026-02"))
    report = settlement(db, programme, start, end)
    sheet = build_settlement_workbook(report)["Settlement"]
    names = [sheet.cell(r, 1).value for r in range(1, sheet.max_row + 1)]
    assert "'=cmd" in names and "=cmd" not in names
    rows = [[safe_cell(cell) for cell in row] for row in settlement_csv_rows(report)]
    assert [row[4] for row in rows[1:]] == ["'=cmd", "fuel", "total"]


class Evaluated:
    """A workbook computed by the ``formulas`` engine (as tests/budget/test_workbook.py reads it)."""

    def __init__(self, path: Path) -> None:
        self.book = path.name
        self.solution = formulas.ExcelModel().loads(str(path)).finish().calculate()

    def cell(self, sheet: str, ref: str) -> float:
        """The computed value of one cell."""
        key = f"'[{self.book}]{sheet}'!{ref}"
        value = self.solution[key].value[0, 0]
        return float(value) if not isinstance(value, str) else value  # type: ignore[return-value]


def test_naive_as_of_is_refused(db: Engine, write_config: Callable[..., Path]) -> None:
    programmes = _programmes(write_config)
    with pytest.raises(ValueError, match="aware"):
        liability(db, programmes, as_of=dt.datetime(2026, 1, 1))
