"""Purchase import against real SQLite and PostgreSQL: amounts, refunds, references, duplicates."""

from __future__ import annotations

import csv
import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.customers.importing import ImportOptions, import_customers, import_purchases
from engine.errors import ImportFileError
from engine.models import Purchase

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def purchases(db: Engine) -> dict[str, dict[str, Any]]:
    table = Purchase.__table__  # type: ignore[attr-defined]
    with db.connect() as connection:
        rows = connection.execute(select(table).order_by(table.c.id)).mappings().all()
    return {row["external_id"]: dict(row) for row in rows}


@pytest.fixture
def shop_customers(import_db: Engine, import_fixtures: Path, tmp_path: Path) -> Engine:
    path = Path(shutil.copy(import_fixtures / "customers_cp1251.csv", tmp_path))
    import_customers(import_db, path, source="shop", attributes={"vip": "bool", "limit": "number"}, now=NOW)
    return import_db


def test_purchases_refunds_and_rejects(shop_customers: Engine, import_fixtures: Path, tmp_path: Path) -> None:
    db = shop_customers
    path = Path(shutil.copy(import_fixtures / "purchases_ru.csv", tmp_path))
    summary = import_purchases(db, path, now=NOW)

    assert (summary.rows, summary.inserted, summary.unchanged, summary.rejected) == (10, 4, 1, 5)
    assert (summary.encoding, summary.date_format, summary.decimal_comma) == ("cp1251", "%d.%m.%Y", True)
    rows = purchases(db)
    ids = {key: row["id"] for key, row in rows.items()}
    p1 = rows["P1"]
    assert p1["amount"] == Decimal("1234.50") and p1["margin"] == Decimal("300.00")
    assert p1["ordered_at"] == dt.datetime(2025, 3, 5, 11, 20, tzinfo=UTC)
    assert (p1["currency"], p1["category"], p1["sku"], p1["quantity"]) == ("RUB", "обувь", "SKU-1", 1)
    assert rows["P2"]["amount"] == Decimal("12000.00")  # non-breaking space as thousands separator
    assert rows["P2"]["ordered_at"] == dt.datetime(2025, 3, 14, 21, 0, tzinfo=UTC)  # midnight in Moscow
    assert rows["P3"]["amount"] == Decimal("99.90")
    refund = rows["R1"]
    assert refund["amount"] == Decimal("-200.00") and refund["refund_of_id"] == ids["P1"]
    assert refund["customer_id"] == p1["customer_id"]  # inherited from the original
    assert {row["import_id"] for row in rows.values()} == {summary.import_id}

    assert summary.rejects_path is not None
    with summary.rejects_path.open(encoding="utf-8", newline="") as handle:
        reasons = {int(row["line"]): row["reason"] for row in csv.DictReader(handle)}
    assert sorted(reasons) == [6, 7, 8, 10, 11]
    assert reasons[6].startswith("amount: refund of 1100.00 exceeds what is left of purchase 'P1' (1034.50")
    assert reasons[7] == "customer: unknown customer (external_id '9999')"
    assert reasons[8].startswith("amount: negative amount without refund_of")
    assert "purchase 'P2' already exists (line 3)" in reasons[10] and "12000.00 -> 13000.00" in reasons[10]
    assert reasons[11].startswith("refund_of: unknown purchase 'P9'")

    again = import_purchases(db, path, now=NOW)
    assert (again.inserted, again.unchanged, again.rejected) == (0, 5, 5)
    assert purchases(db) == rows


def test_refunds_across_imports_may_not_exceed_the_original(shop_customers: Engine, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text(
        'id,customer_email,time,amount,currency\nA,maria@yandex.ru,2025-03-01T10:00:00+03:00,"1,000.00",usd\n',
        encoding="utf-8",
    )
    summary = import_purchases(shop_customers, first, currency="RUB", now=NOW)
    assert summary.inserted == 1 and summary.decimal_comma is False
    second = tmp_path / "b.csv"
    second.write_text(
        "id,customer_phone,time,amount,currency,refund_of\n"
        "RA1,+7 903 765-43-21,2025-03-02,-600,USD,A\n"
        "RA2,,2025-03-03,400.00,USD,A\n"
        "RA3,,2025-03-04,0.01,USD,A\n"
        "RA4,,2025-03-04,1,RUB,RA1\n",
        encoding="utf-8",
    )
    summary = import_purchases(shop_customers, second, now=NOW)
    assert (summary.inserted, summary.rejected) == (2, 2)
    rows = purchases(shop_customers)
    assert rows["A"]["currency"] == "USD"
    assert (rows["RA1"]["amount"], rows["RA2"]["amount"]) == (Decimal("-600.00"), Decimal("-400.00"))
    assert "RA3" not in rows and "RA4" not in rows


def test_required_columns_and_ambiguous_numbers(shop_customers: Engine, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id;amount\nA;1\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing required columns: ordered_at, a customer reference"):
        import_purchases(shop_customers, path)
    path.write_text("id;customer;date;amount\nA;1001;2025-01-01;1,500\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match=r"ambiguous number '1,500' \(line 2\).*--decimal-comma"):
        import_purchases(shop_customers, path)
    summary = import_purchases(shop_customers, path, options=ImportOptions(decimal_comma=False))
    assert summary.inserted == 1 and purchases(shop_customers)["A"]["amount"] == Decimal("1500.00")
