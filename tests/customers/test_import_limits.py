"""Imports held to the engine's limits: a cell outside them rejects its row with the reason, good rows go in.

Just inside and just outside each limit, on both databases: amounts, margins and
quantities of purchases, business times (1970-01-01 .. 2199-12-31), customers'
own dates (1900-01-01 .. 2199-12-31), attributes, time zones.
"""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from engine.customers.importing import import_customers, import_purchases
from engine.models import Customer, Purchase

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def _reasons(path: Path | None) -> dict[int, str]:
    assert path is not None
    with path.open(encoding="utf-8", newline="") as handle:
        return {int(row["line"]): row["reason"] for row in csv.DictReader(handle)}


def _rows(db: Engine, model: Any, key: str) -> dict[str, dict[str, Any]]:
    table = model.__table__
    with db.connect() as connection:
        return {row[key]: dict(row) for row in connection.execute(select(table)).mappings()}


def test_customer_dates_attributes_and_zones_outside_the_limits_reject_their_row(
    import_db: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "external_id;email;birth_date;verified_at;timezone;attr.visits;attr.budget\n"
        "C1;c1@example.com;01.01.1900;01.01.1970;Europe/Moscow;1000000000;999999999999.99\n"
        "C2;c2@example.com;01.01.0001;;;;\n"
        "C3;c3@example.com;31.12.1899;;;;\n"
        "C4;c4@example.com;31.12.2199;31.12.2199;;-1000000000;\n"
        "C5;c5@example.com;01.01.2200;;;;\n"
        "C6;c6@example.com;;31.12.1969;;;\n"
        "C7;c7@example.com;;;Europe;;\n"
        "C8;c8@example.com;;;;9223372036854775808;\n"
        "C9;c9@example.com;;;;;1000000000000\n",
        encoding="utf-8",
    )
    summary = import_customers(
        import_db, path, source="crm", attributes={"visits": "int", "budget": "number"}, now=NOW
    )
    assert (summary.rows, summary.inserted, summary.rejected) == (9, 2, 7)
    reasons = _reasons(summary.rejects_path)
    assert reasons == {
        3: "birth_date: '01.01.0001' is outside 1900-01-01 .. 2199-12-31",
        4: "birth_date: '31.12.1899' is outside 1900-01-01 .. 2199-12-31",
        6: "birth_date: '01.01.2200' is outside 1900-01-01 .. 2199-12-31",
        7: "verified_at: '31.12.1969' is outside 1970-01-01 .. 2199-12-31",
        8: "timezone: unknown time zone 'Europe' (expected an IANA name like Europe/Moscow)",
        9: "attr.visits: 9223372036854775808 is outside -1,000,000,000 .. 1,000,000,000",
        10: "attr.budget: 1000000000000 is outside -999,999,999,999.99 .. 999,999,999,999.99",
    }
    customers = _rows(import_db, Customer, "external_id")
    assert customers["C1"]["birth_date"] == dt.date(1900, 1, 1)
    assert customers["C1"]["attributes"] == {"visits": 1_000_000_000, "budget": 999999999999.99}
    assert customers["C4"]["verified_at"] == dt.datetime(2199, 12, 30, 21, 0, tzinfo=UTC)  # Moscow midnight


def test_purchase_amounts_quantities_and_dates_outside_the_limits_reject_their_row(
    import_db: Engine, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text("external_id,email\nC1,c1@example.com\n", encoding="utf-8")
    import_customers(import_db, people, source="crm", now=NOW)
    path = tmp_path / "orders.csv"
    huge = "1" + "0" * 30
    path.write_text(
        "external_id;customer;ordered_at;amount;quantity;margin\n"
        "P1;C1;01.01.1970;100000000.00;1000000;-100000000\n"
        "P2;C1;01.01.0001;10.00;;\n"
        f"P3;C1;05.03.2025;{huge};;\n"
        "P4;C1;05.03.2025;100000000.01;;\n"
        "P5;C1;05.03.2025;10.00;1000000.001;\n"
        "P6;C1;05.03.2025;10.00;;100000000.01\n"
        "P7;C1;31.12.1969;10.00;;\n"
        "P8;C1;01.01.2200;10.00;;\n"
        "P9;C1;31.12.2199;0.01;0.001;\n",
        encoding="utf-8",
    )
    summary = import_purchases(import_db, path, now=NOW)
    assert (summary.rows, summary.inserted, summary.rejected) == (9, 2, 7)
    reasons = _reasons(summary.rejects_path)
    assert reasons == {
        3: "ordered_at: '01.01.0001' is outside 1970-01-01 .. 2199-12-31",
        4: f"amount: {huge} is more than the largest allowed, 100,000,000.00",
        5: "amount: 100000000.01 is more than the largest allowed, 100,000,000.00",
        6: "quantity: 1000000.001 is more than the largest allowed, 1,000,000",
        7: "margin: 100000000.01 is more than the largest allowed, 100,000,000.00",
        8: "ordered_at: '31.12.1969' is outside 1970-01-01 .. 2199-12-31",
        9: "ordered_at: '01.01.2200' is outside 1970-01-01 .. 2199-12-31",
    }
    purchases = _rows(import_db, Purchase, "external_id")
    assert set(purchases) == {"P1", "P9"}
    assert purchases["P1"]["amount"] == Decimal("100000000.00") and purchases["P1"]["quantity"] == 1_000_000
    assert purchases["P9"]["ordered_at"] == dt.datetime(2199, 12, 30, 21, 0, tzinfo=UTC)
