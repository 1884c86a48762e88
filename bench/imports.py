"""Import benchmark: `crm import` of real-looking files against raw inserts of the same rows.

Writes a customers file (cp1251, ``;``, dd.mm.yyyy, Russian headers) and a
purchases file (decimal commas, non-breaking thousand separators), imports
them with the engine into a fresh database, then inserts the same rows
already parsed with a bare ``executemany`` into another fresh database (the
baseline: no detection, validation, merging or provenance). Prints both times
and the ratio engine / raw.

Usage::

    python bench/imports.py                                   # SQLite, 20,000 customers, 200,000 purchases
    python bench/imports.py --postgresql
    python bench/imports.py --customers 100000 --purchases 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import secrets
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert, select, text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from engine.customers.importing import import_customers, import_purchases  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.models import Customer, Purchase  # noqa: E402

SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
MOSCOW = dt.timezone(dt.timedelta(hours=3))


def write_files(folder: Path, customers: int, purchases: int) -> tuple[Path, Path, list[dict], list[dict]]:
    """The two files, and the same rows parsed, for the baseline."""
    rnd = random.Random(7)
    customer_rows, purchase_rows = [], []
    customer_file = folder / "customers.csv"
    with customer_file.open("w", encoding="cp1251", newline="") as handle:
        handle.write("Код клиента;Фамилия;Имя;Телефон;Эл. почта;Дата рождения;Согласие на email\r\n")
        for n in range(customers):
            born = dt.date(1950 + rnd.randrange(50), rnd.randint(1, 12), rnd.randint(1, 28))
            handle.write(f"C{n};Иванов{n};Иван;+7916{n:07d};user{n}@mail.ru;{born:%d.%m.%Y};да\r\n")
            customer_rows.append(
                {
                    "external_id": f"C{n}",
                    "last_name": f"Иванов{n}",
                    "first_name": "Иван",
                    "phone": f"+7916{n:07d}",
                    "email": f"user{n}@mail.ru",
                    "birth_date": born,
                    "consent_email": True,
                    "source": "shop",
                    "attributes": {},
                }
            )
    purchase_file = folder / "purchases.csv"
    with purchase_file.open("w", encoding="cp1251", newline="") as handle:
        handle.write("Номер чека;Код клиента;Дата;Сумма;Категория\r\n")
        for n in range(purchases):
            at = dt.datetime(
                2025, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), 30, tzinfo=MOSCOW
            )
            rubles, kopecks = rnd.randint(1, 99_999), rnd.randint(0, 99)
            owner = rnd.randrange(customers)
            handle.write(
                f"P{n};C{owner};{at:%d.%m.%Y %H:%M};{rubles:,}".replace(",", "\u00a0")
                + f",{kopecks:02d};cat{n % 17}\r\n"
            )
            purchase_rows.append(
                {
                    "external_id": f"P{n}",
                    "owner": f"C{owner}",
                    "ordered_at": at.astimezone(dt.UTC),
                    "amount": Decimal(f"{rubles}.{kopecks:02d}"),
                    "currency": "RUB",
                    "category": f"cat{n % 17}",
                    "quantity": Decimal(1),
                }
            )
    return customer_file, purchase_file, customer_rows, purchase_rows


def raw_insert(engine: Engine, customers: list[dict], purchases: list[dict]) -> tuple[float, float]:
    """The baseline: executemany of rows already parsed, in chunks of 5,000."""
    now = dt.datetime.now(dt.UTC)
    started = time.perf_counter()
    with engine.begin() as connection:
        for start in range(0, len(customers), 5000):
            chunk = [{**row, "created_at": now, "updated_at": now} for row in customers[start : start + 5000]]
            connection.execute(insert(Customer.__table__), chunk)  # type: ignore[attr-defined]
    customer_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with engine.begin() as connection:
        ids = dict(connection.execute(select(Customer.external_id, Customer.id)).all())
        for start in range(0, len(purchases), 5000):
            chunk = [
                {
                    **{k: v for k, v in row.items() if k != "owner"},
                    "customer_id": ids[row["owner"]],
                    "created_at": now,
                }
                for row in purchases[start : start + 5000]
            ]
            connection.execute(insert(Purchase.__table__), chunk)  # type: ignore[attr-defined]
    return customer_seconds, time.perf_counter() - started


def fresh_database(postgresql: bool, folder: Path, name: str) -> tuple[Engine, str]:
    if not postgresql:
        url = f"sqlite:///{folder / name}.db"
    else:
        database = f"crm_bench_{name}_{secrets.token_hex(3)}"
        with create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        url = f"{SERVER}/{database}"
    engine = make_engine(url)
    upgrade(engine)
    return engine, url


def drop(url: str) -> None:
    if url.startswith("postgresql"):
        database = url.rsplit("/", 1)[1]
        with create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT").connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--purchases", type=int, default=200_000)
    parser.add_argument("--postgresql", action="store_true", help="run on a throw-away PostgreSQL database")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        customer_file, purchase_file, customer_rows, purchase_rows = write_files(
            folder, args.customers, args.purchases
        )
        engine, engine_url = fresh_database(args.postgresql, folder, "engine")
        raw, raw_url = fresh_database(args.postgresql, folder, "raw")
        try:
            started = time.perf_counter()
            summary = import_customers(engine, customer_file, source="shop")
            customer_seconds = time.perf_counter() - started
            assert summary.inserted == args.customers, summary.describe()
            started = time.perf_counter()
            summary = import_purchases(engine, purchase_file)
            purchase_seconds = time.perf_counter() - started
            assert summary.inserted == args.purchases, summary.describe()
            raw_customers, raw_purchases = raw_insert(raw, customer_rows, purchase_rows)
        finally:
            engine.dispose()
            raw.dispose()
            drop(engine_url)
            drop(raw_url)
    print(f"database: {engine.dialect.name}; {args.customers:,} customers, {args.purchases:,} purchases")
    print(f"{'':12} {'crm import':>12} {'raw insert':>12} {'ratio':>8}")
    for label, ours, theirs in (
        ("customers", customer_seconds, raw_customers),
        ("purchases", purchase_seconds, raw_purchases),
    ):
        print(f"{label:12} {ours:11.2f}s {theirs:11.2f}s {ours / theirs:8.2f}")


if __name__ == "__main__":
    main()
