"""The lifecycle funnel against its targets, on both databases: declared stages and refreshed metrics."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine

from engine.cli import main as crm_main
from engine.config.checked import Config, load_config
from engine.evaluation.funnel import lifecycle_funnel
from engine.evaluation.programme_output import build_funnel_workbook, funnel_csv_rows, funnel_table
from engine.metrics.customer_metrics import refresh_metrics
from tests.factories import add_customer, add_purchase, utc

CONFIG = """
[engine]
timezone = "Europe/Moscow"

[metrics]
regular_min_orders = 2
regular_window_days = 365

[evaluation]
funnel_targets = { identified = 0.9, client = 0.5 }
"""


@pytest.fixture
def config(write_config: Any) -> Config:
    return load_config(write_config(text=CONFIG))


def declared_customers(db: Engine) -> None:
    """Ten customers: 2 unreachable, 3 reachable visitors, 2 clients, 2 regulars, 1 partner (declared)."""
    with db.begin() as connection:
        add_customer(connection)
        add_customer(connection, email="", lifecycle_stage="visitor")  # an empty address reaches nobody
        add_customer(connection, email="v1@example.com", lifecycle_stage="visitor")
        add_customer(connection, phone="+79160000001")
        add_customer(connection, email="v3@example.com", phone="+79160000003")
        add_customer(connection, email="c1@example.com", lifecycle_stage="client")
        add_customer(connection, lifecycle_stage="client")  # bought: known by the purchase
        add_customer(connection, email="r1@example.com", lifecycle_stage="regular")
        add_customer(connection, phone="+79160000009", lifecycle_stage="regular")
        add_customer(connection, company="Partner Ltd", lifecycle_stage="partner")


def test_funnel_from_declared_stages(db: Engine, config: Config) -> None:
    declared_customers(db)
    funnel = lifecycle_funnel(db, config)
    assert [(s.name, s.customers, s.previous) for s in funnel.stages] == [
        ("visitor", 10, None),
        ("identified", 8, 10),
        ("client", 5, 8),
        ("regular", 3, 5),
        ("partner", 1, 3),
    ]
    identified, client, regular, partner = (
        funnel.stage(n) for n in ("identified", "client", "regular", "partner")
    )
    assert (identified.actual, identified.target, identified.gap) == (
        Decimal("0.8000"),
        Decimal("0.9"),
        Decimal("-0.1000"),
    )
    assert identified.expected == Decimal("9.0")
    assert (client.actual, client.target, client.gap, client.expected) == (
        Decimal("0.6250"),
        Decimal("0.5"),
        Decimal("0.1250"),
        Decimal("4.0"),
    )
    assert (regular.actual, regular.target, regular.gap) == (Decimal("0.6000"), None, None)
    assert partner.actual == Decimal("0.3333")
    assert funnel.stage("visitor").actual is None
    assert funnel.metrics_as_of is None and "no metrics refresh yet" in funnel.notes[0]


def test_funnel_follows_the_metrics_refresh(db: Engine, config: Config) -> None:
    with db.begin() as connection:
        told_client = add_customer(connection, email="x@example.com", lifecycle_stage="client")
        once = add_customer(connection)
        twice = add_customer(connection, phone="+79160000002")
        add_customer(connection, lifecycle_stage="partner")
        add_customer(connection)
        add_purchase(connection, once, utc(2026, 10, 1), "100")
        add_purchase(connection, twice, utc(2026, 10, 1), "100")
        add_purchase(connection, twice, utc(2026, 11, 1), "100")
        assert told_client
    refresh_metrics(db, config, dt.date(2026, 12, 15), now=utc(2026, 12, 15, 21))
    funnel = lifecycle_funnel(db, config)
    # the refresh makes the declared client without orders a visitor (reachable: identified)
    assert [s.customers for s in funnel.stages] == [5, 4, 3, 2, 1]
    assert funnel.metrics_as_of == dt.date(2026, 12, 15) and funnel.notes == []


def test_funnel_outputs(
    db: Engine, config: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declared_customers(db)
    funnel = lifecycle_funnel(db, config)
    rows = list(funnel_csv_rows(funnel))
    assert rows[0] == ["stage", "customers", "previous", "actual", "target", "gap", "expected"]
    assert rows[2] == ["identified", "8", "10", "0.8000", "0.9", "-0.1000", "9.0"]
    sheet = build_funnel_workbook(funnel)["Funnel"]
    assert [sheet.cell(row=r, column=2).value for r in range(2, 7)] == [10, 8, 5, 3, 1]
    assert sheet["C3"].value == '=IF(B2=0,"",B3/B2)' and sheet["E3"].value == '=IF(C3="","",C3-D3)'
    assert len(funnel_table(funnel)) == 2  # the table and the note

    assert crm_main(["report", "funnel", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == funnel.as_dict()
    assert crm_main(["report", "funnel"]) == 0
    shown = capsys.readouterr().out
    assert "identified" in shown and "80.00%" in shown and "-10.00 pt" in shown
    book = tmp_path / "funnel.xlsx"
    assert crm_main(["report", "funnel", "-f", "xlsx", "-o", str(book)]) == 0
    assert load_workbook(book)["Funnel"]["A6"].value == "partner"
    assert crm_main(["report", "funnel", "-f", "pdf"]) == 1
    assert "not one of table, json, csv, xlsx" in capsys.readouterr().err
