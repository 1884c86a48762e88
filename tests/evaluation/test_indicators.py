"""Programme indicators on hand-computable data, both databases: churn, revenue, profit, wallet, reads.

The business zone is Moscow (UTC+3), so November 2026 is
[2026-10-31 21:00, 2026-11-30 21:00) UTC; churn_days = 90.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Connection, Engine, insert

from engine.cli import main as crm_main
from engine.config.checked import Config, load_config
from engine.errors import ConfigValueError, NotFoundError
from engine.evaluation.indicators import IndicatorRow, programme_indicators
from engine.evaluation.programme_output import (
    build_indicator_workbook,
    indicator_csv_rows,
    indicator_tables,
)
from engine.models import CampaignRun, ContactResponse, OutboxMessage, Segment, SegmentMembership
from engine.models import outbox as states
from tests.factories import add_customer, add_purchase, utc

RUN = CampaignRun.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RESPONSE = ContactResponse.__table__  # type: ignore[attr-defined]
SEGMENT = Segment.__table__  # type: ignore[attr-defined]
MEMBERSHIP = SegmentMembership.__table__  # type: ignore[attr-defined]

NOW = utc(2026, 12, 15, 21)  # the close of 2026-12-15 in Moscow
NOV_END = utc(2026, 11, 30, 21)  # 2026-12-01 00:00 in Moscow

CONFIG = """
[engine]
timezone = "Europe/Moscow"
currency = "RUB"

[customers]
attributes = { wallet = "number", card = "str" }

[segments.gold]
rule = "true"

[segments.silver]
rule = "true"

[evaluation]
churn_days = 90
period = "month"
wallet_attribute = "wallet"

[responses]
satisfaction_scale = 5
"""


def add_segment(connection: Connection, name: str) -> None:
    """The stored segment row memberships refer to."""
    connection.execute(insert(SEGMENT).values(name=name, rule="true", rule_hash="x", members=0))


def add_stay(
    connection: Connection, segment: str, customer: int, entered: dt.datetime, left: dt.datetime | None = None
) -> None:
    """One stay of ``customer`` in ``segment``."""
    connection.execute(
        insert(MEMBERSHIP).values(segment=segment, customer_id=customer, entered_at=entered, left_at=left)
    )


def add_run(connection: Connection, campaign: str, at: dt.datetime) -> int:
    """A finished run of ``campaign``."""
    return int(
        connection.execute(
            insert(RUN)
            .values(
                campaign=campaign,
                trigger="at",
                scheduled_for=at,
                state=states.RUN_DONE,
                segment="gold",
                strategy="loyalty",
                config_fingerprint="t",
                campaign_fingerprint="t",
                started_at=at,
            )
            .returning(RUN.c.id)
        ).scalar_one()
    )


def add_contact(
    connection: Connection,
    run: int,
    customer: int,
    sent_at: dt.datetime,
    *,
    channel: str = "email",
    state: str = states.SENT,
    unit_cost: str = "0.40",
    step: int = 0,
) -> int:
    """One outbox row in a final state, sent at ``sent_at``."""
    return int(
        connection.execute(
            insert(OUTBOX)
            .values(
                run_id=run,
                customer_id=customer,
                step=step,
                channel=channel,
                state=state,
                scheduled_at=sent_at,
                unit_cost=Decimal(unit_cost),
                contacts=Decimal(1),
                sent_at=None if state == states.FAILED else sent_at,
            )
            .returning(OUTBOX.c.id)
        ).scalar_one()
    )


def add_response(
    connection: Connection,
    customer: int,
    kind: str,
    at: dt.datetime,
    *,
    outbox: int | None = None,
    score: int | None = None,
) -> None:
    """One recorded response."""
    connection.execute(
        insert(RESPONSE).values(
            outbox_id=outbox,
            customer_id=customer,
            kind=kind,
            occurred_at=at,
            source="test",
            key=f"{kind}:{customer}:{at.isoformat()}:{outbox}",
            score=score,
        )
    )


def programme_data(db: Engine) -> dict[str, int]:
    """Six customers with purchases, contacts, responses and stays; returns their ids by letter.

    A: ordered 2026-08-10 only: active at November's start, churned in November; gold until
       2026-11-15, then silver; called in November, score 2 in October.
    B: 1000 (margin 300) on 09-15, 2000 (500) on 11-10, refunded 500 (-100) on 11-20; gold since June;
       wallet 10000; an email in November, opened; score 4 in November.
    C: first order 800 (200) on 11-05; gold from 12-10; an email delivered in November, not opened; score 5.
    D: 50 (5) on 10-31 23:30 Moscow (October), 100 (10) on 11-01 00:30 Moscow (November);
       silver from January until exactly November's end; a failed email in November.
    E: no purchase, wallet 5000, silver since 10-01; an email in October, clicked; a bounced one in November.
    F: nothing but stays in gold and silver since June (counts only in the migration matrix).
    """
    with db.begin() as connection:
        ids = {
            "A": add_customer(connection, email="a@example.com"),
            "B": add_customer(connection, email="b@example.com", attributes={"wallet": 10000}),
            "C": add_customer(connection, phone="+79160000003"),
            "D": add_customer(connection, attributes={"wallet": 0}),
            "E": add_customer(connection, email="e@example.com", attributes={"wallet": 5000.0}),
            "F": add_customer(connection),
        }
        a, b, c, d, e, f = (ids[k] for k in "ABCDEF")
        add_purchase(connection, a, utc(2026, 8, 10, 9), "700", margin=Decimal(70))
        add_purchase(connection, b, utc(2026, 9, 15, 9), "1000", margin=Decimal(300))
        order = add_purchase(connection, b, utc(2026, 11, 10, 9), "2000", margin=Decimal(500))
        add_purchase(connection, b, utc(2026, 11, 20, 9), "-500", margin=Decimal(-100), refund_of_id=order)
        add_purchase(connection, c, utc(2026, 11, 5, 9), "800", margin=Decimal(200))
        add_purchase(connection, d, utc(2026, 10, 31, 20, 30), "50", margin=Decimal(5))
        add_purchase(connection, d, utc(2026, 10, 31, 21, 30), "100", margin=Decimal(10))
        for name in ("gold", "silver"):
            add_segment(connection, name)
        add_stay(connection, "gold", a, utc(2026, 6, 1), utc(2026, 11, 15))
        add_stay(connection, "silver", a, utc(2026, 11, 15))
        add_stay(connection, "gold", b, utc(2026, 6, 1))
        add_stay(connection, "gold", c, utc(2026, 12, 10))
        add_stay(connection, "silver", d, utc(2026, 1, 1), NOV_END)
        add_stay(connection, "silver", e, utc(2026, 10, 1))
        add_stay(connection, "gold", f, utc(2026, 6, 1))
        add_stay(connection, "silver", f, utc(2026, 6, 1))
        october, november = (
            add_run(connection, "news", utc(2026, 10, 5)),
            add_run(connection, "winback", utc(2026, 11, 3)),
        )
        mail_e = add_contact(connection, october, e, utc(2026, 10, 5, 9))
        add_response(connection, e, "click", utc(2026, 10, 6), outbox=mail_e)
        mail_b = add_contact(connection, november, b, utc(2026, 11, 3, 9))
        add_response(connection, b, "open", utc(2026, 11, 3, 10), outbox=mail_b)
        add_response(connection, b, "click", utc(2026, 11, 3, 11), outbox=mail_b)  # read once, not twice
        add_contact(connection, november, c, utc(2026, 11, 3, 9), state=states.DELIVERED)
        add_contact(connection, november, e, utc(2026, 11, 3, 9), state=states.BOUNCED)
        add_contact(connection, november, d, utc(2026, 11, 3, 9), state=states.FAILED)
        add_contact(connection, november, a, utc(2026, 11, 4, 9), channel="call", unit_cost="60", step=1)
        add_response(connection, a, "satisfaction", utc(2026, 10, 20), score=2)
        add_response(connection, b, "satisfaction", utc(2026, 11, 21), score=4)
        add_response(connection, c, "satisfaction", utc(2026, 11, 22), score=5)
        add_response(connection, c, "reply", utc(2026, 11, 22))  # not a score
    return ids


@pytest.fixture
def config(write_config: Any) -> Config:
    return load_config(write_config(text=CONFIG))


def _by_label(rows: list[IndicatorRow]) -> dict[str, IndicatorRow]:
    return {row.period.label: row for row in rows}


def test_periods_follow_the_business_zone(db: Engine, config: Config) -> None:
    report = programme_indicators(db, config, periods=3, now=NOW)
    assert [p.label for p in report.periods] == ["2026-10", "2026-11", "2026-12"]
    november = report.periods[1]
    assert (november.start_at, november.end_at, november.partial) == (utc(2026, 10, 31, 21), NOV_END, False)
    assert report.periods[2].end_at == NOW and report.periods[2].partial
    assert report.notes == ["2026-12 is the current period, measured up to now"]


def test_indicators_over_all_customers(db: Engine, config: Config) -> None:
    programme_data(db)
    report = programme_indicators(db, config, periods=3, now=NOW)
    rows = _by_label(report.for_segment(None))
    november = rows["2026-11"]
    # buyers B, C, D; active at start A (08-10), B (09-15), D (10-31); at end B, C, D; A churned
    assert (november.buyers, november.active_start, november.active, november.churned) == (3, 3, 3, 1)
    assert november.churn_rate == Decimal("0.3333")
    assert november.revenue == Decimal("2400.00")  # 2000 - 500 + 800 + 100
    assert november.revenue_per_customer == Decimal("800.00")
    assert november.margin == Decimal("610.00")  # 500 - 100 + 200 + 10
    assert (november.contacts, november.contact_cost) == (Decimal(4), Decimal("61.20"))  # 3 emails + a call
    assert november.profit == Decimal("548.80")
    assert november.profit_per_customer == Decimal("182.93")
    assert (november.mailed, november.read, november.read_rate) == (2, 1, Decimal("0.5000"))
    assert (november.scores, november.satisfaction) == (2, Decimal("4.50"))
    # wallet known for B (10000) and E (5000); B's year to November's end: 1000 + 2000 - 500
    assert (november.wallet_customers, november.wallet_total) == (2, Decimal("15000.00"))
    assert november.wallet_revenue == Decimal("2500.00")
    assert november.share_of_wallet == Decimal("0.1667")

    october = rows["2026-10"]
    # active at October's start: A (08-10), B (09-15); at its end: A, B, D; nobody churned
    assert (october.buyers, october.active_start, october.active, october.churned) == (1, 2, 3, 0)
    assert october.churn_rate == Decimal(0)
    assert (october.revenue, october.margin) == (Decimal("50.00"), Decimal("5.00"))
    assert (october.mailed, october.read, october.read_rate) == (1, 1, Decimal(1))
    assert (october.scores, october.satisfaction) == (1, Decimal("2.00"))
    assert october.wallet_revenue == Decimal("1000.00")  # B's 09-15 order; D's wallet 0 is not known

    december = rows["2026-12"]
    assert (december.buyers, december.revenue, december.revenue_per_customer) == (0, Decimal(0), None)
    assert (december.active_start, december.active, december.churned) == (3, 3, 0)
    assert december.read_rate is None and december.satisfaction is None
    assert december.profit_per_customer is None


def test_indicators_by_segment_use_membership_at_each_period_end(db: Engine, config: Config) -> None:
    programme_data(db)
    report = programme_indicators(db, config, periods=3, by_segment=True, now=NOW)
    assert report.segments == ["gold", "silver"]
    assert [(row.segment, row.period.label) for row in report.rows] == [
        (segment, label) for segment in ("gold", "silver") for label in ("2026-10", "2026-11", "2026-12")
    ]
    gold = _by_label(report.for_segment("gold"))
    silver = _by_label(report.for_segment("silver"))
    # at November's end gold holds B (and F); A left on 11-15, C enters on 12-10
    november = gold["2026-11"]
    assert (november.buyers, november.active_start, november.active, november.churned) == (1, 1, 1, 0)
    assert (november.revenue, november.margin) == (Decimal("1500.00"), Decimal("400.00"))
    assert november.contact_cost == Decimal("0.40")
    assert (november.mailed, november.read, november.scores, november.score_sum) == (1, 1, 1, 4)
    assert (november.wallet_customers, november.share_of_wallet) == (1, Decimal("0.2500"))
    # silver at November's end: A (since 11-15), E, F; D left exactly at the end
    november = silver["2026-11"]
    assert (november.buyers, november.active_start, november.active, november.churned) == (0, 1, 0, 1)
    assert november.churn_rate == Decimal(1)
    assert november.contact_cost == Decimal("60.40")  # A's call and E's bounced email
    assert (november.mailed, november.read_rate) == (0, None)
    assert (november.wallet_customers, november.wallet_revenue, november.share_of_wallet) == (
        1,
        Decimal(0),
        Decimal(0),
    )
    # October's end: gold A, B, F; silver D, E, F
    assert gold["2026-10"].active == 2 and silver["2026-10"].revenue == Decimal("50.00")
    # December (now): gold B, C, F
    assert gold["2026-12"].active == 2 and gold["2026-12"].active_start == 2

    only = programme_indicators(db, config, periods=1, segments=["silver"], now=NOW)
    assert [row.segment for row in only.rows] == ["silver"]
    with pytest.raises(NotFoundError, match="bronze"):
        programme_indicators(db, config, segments=["bronze"], now=NOW)


def test_wallet_needs_a_numeric_attribute(db: Engine, write_config: Any) -> None:
    without = load_config(write_config(text=CONFIG.replace('wallet_attribute = "wallet"', "")))
    report = programme_indicators(db, without, periods=1, now=NOW)
    assert report.rows[0].wallet_customers == 0 and report.rows[0].share_of_wallet is None
    assert "share of wallet: no [evaluation].wallet_attribute configured" in report.notes
    for name, reason in (("card", "declared as str"), ("nothing", "not declared")):
        bad = load_config(
            write_config(text=CONFIG.replace('wallet_attribute = "wallet"', f'wallet_attribute = "{name}"'))
        )
        with pytest.raises(ConfigValueError, match=f"evaluation.wallet_attribute: '{name}' is {reason}"):
            programme_indicators(db, bad, now=NOW)
    with pytest.raises(ConfigValueError, match="at least one period"):
        programme_indicators(db, without, periods=0, now=NOW)


def test_outputs_carry_the_same_figures(db: Engine, config: Config) -> None:
    programme_data(db)
    report = programme_indicators(db, config, periods=3, now=NOW)
    rows = list(indicator_csv_rows(report))
    header = rows[0]
    november = dict(zip(header, rows[2], strict=True))
    assert november["period"] == "2026-11" and november["churn_rate"] == "0.3333"
    assert november["revenue_per_customer"] == "800.00" and november["share_of_wallet"] == "0.1667"
    workbook = build_indicator_workbook(report)
    sheet = workbook["Indicators"]
    assert sheet["B3"].value == "2026-11" and sheet["H3"].value == 1 and sheet["F3"].value == 3
    assert sheet["U3"].value == '=IF(F3=0,"",H3/F3)'  # churn as a formula over the counts
    tables = indicator_tables(report)
    assert len(tables) == 4  # legend, one table, legend, note


def _run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert crm_main(["report", "programme", "--as-of", "2026-12-15", *args]) == 0
    return capsys.readouterr().out


def test_cli_programme(
    db: Engine, config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    programme_data(db)
    expected = programme_indicators(db, config, periods=3, now=NOW).as_dict()
    data = json.loads(_run_cli(capsys, "--periods", "3", "--format", "json"))
    assert data["rows"] == expected["rows"]
    table = _run_cli(capsys, "--periods", "3")
    assert "2026-11" in table and "33.33%" in table and "800.00" in table
    segments = _run_cli(capsys, "--periods", "2", "--by", "segment", "--segments", "silver")
    assert "segment silver" in segments and "100.00%" in segments and "segment gold" not in segments
    target = tmp_path / "programme.xlsx"
    _run_cli(capsys, "--periods", "3", "--format", "xlsx", "--output", str(target))
    assert load_workbook(target)["Indicators"]["B3"].value == "2026-11"
    csv_text = _run_cli(capsys, "--periods", "3", "--format", "csv")
    assert csv_text.splitlines()[0].startswith("period;start;end;partial;segment;buyers")
    for args, message in (
        (["--by", "campaign"], "--by"),
        (["--format", "xlsx"], "--output"),
        (["--as-of", "someday"], "--as-of"),
    ):
        assert crm_main(["report", "programme", *args]) == 1
        assert message in capsys.readouterr().err
