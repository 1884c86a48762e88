"""Loyalty accrual benchmark: points for 1,000,000 imported purchases against an executemany of its rows.

Generates customers and purchases inside the database with the generator of
``bench/segments.py`` (no refunds here: every purchase earns), marks one
purchase in twenty as bought at the partner ``fuel`` and gives a tenth of
the customers an account with a tier, all outside the timed part. Then:

(a) ``accrue_purchases`` of a programme with the usual rules: 3 % of the
    amount, a category multiplier, a fixed bonus, a SKU rule, a rule on a
    customer attribute (``customer.attr.vip``: the customer is joined), a
    non-stacking big-basket rule, tiers, a partner, the three limits,
    14 pending days and quarterly expiry. It creates the missing accounts
    and writes an operation, a lot and an earn entry per purchase (a
    purchase that earns 0 points has no lot, as the POS path). Its
    statements are timed one by one (a ``before_cursor_execute`` listener),
    and the Python allocations are traced (tracemalloc) to show that memory
    stays flat.
(b) the baseline, in the same run: the very rows the accrual wrote,
    read back chunk by chunk (not timed), written again with the driver's
    ``executemany`` (timed, with a commit per chunk as the accrual) into
    plain copies of the three tables: the same columns, unique constraints
    and indexes, no foreign keys. The ratio baseline / accrual is printed
    (goal >= 0.3: the accrual at most about 3.3 times a bare insert of
    what it writes).
(c) refunds of 3 % of the purchases, imported after the accrual (not
    timed: the refund rows, and 500 redemptions of half the points of
    members whose orders are refunded, so some refunds find their points
    spent): every 33rd purchase is refunded, a sixth of them in two refunds
    of 30 %, half the others whole, the rest by half. Then the daily jobs
    run (activation, expiry: not timed), as every night before an import;
    ``--fresh`` leaves them out, so each refund first brings its account up
    to date (expiring the lots the accrual made past their date).
    ``refund_imported`` is timed like (a), without tracemalloc.
(d) the baseline of (c), in the same run: the operations and entries (c)
    wrote, written again with ``executemany`` as in (b). The ratio
    baseline / refunds is printed (goal >= 0.3).

Usage::

    python bench/loyalty.py --purchases 100000                 # SQLite file in a temp folder
    python bench/loyalty.py                                    # 1,000,000 purchases
    python bench/loyalty.py --postgresql                       # throw-away crm_bench_<random>
    python bench/loyalty.py --database-url sqlite:////tmp/l/bench.db --keep   # generate once, reuse

``--keep`` keeps the database and reuses its customers and purchases (the
ledger tables are emptied before each run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Connection, Engine, Index, MetaData, Table, UniqueConstraint, event

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:  # run as a script: the other benchmarks are modules beside this one
    sys.path.insert(0, str(BENCH))

from segments import (  # noqa: E402  (segments.py also puts the checkout on sys.path)
    Sql,
    _execute,
    analyze,
    customer_sql,
    database,
    database_parser,
    purchase_sql,
)

from engine.config.checked import load_config  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.errors import LoyaltyError  # noqa: E402
from engine.loyalty.batch import accrue_purchases, activate_due, expire_due, refund_imported  # noqa: E402
from engine.loyalty.ledger import redeem  # noqa: E402
from engine.loyalty.programme.definition import Programme  # noqa: E402
from engine.models import PURCHASE, LoyaltyEntry, LoyaltyLot, LoyaltyOperation  # noqa: E402

GOAL = 0.3
BATCH = 1_000_000  # rows per generating INSERT ... SELECT
LEDGER = ("loyalty_entry", "loyalty_lot", "loyalty_operation", "loyalty_tier_change", "loyalty_account")
TABLES = {
    "loyalty_operation": LoyaltyOperation.__table__,  # type: ignore[attr-defined]
    "loyalty_lot": LoyaltyLot.__table__,  # type: ignore[attr-defined]
    "loyalty_entry": LoyaltyEntry.__table__,  # type: ignore[attr-defined]
}
JSON_COLUMNS = {"result", "detail"}

CONFIG = """\
# Written by bench/loyalty.py for one benchmark run.
[engine]
timezone = "Europe/Moscow"
currency = "RUB"

[customers]
attributes = { vip = "bool", children = "int" }

[loyalty.programmes.bonus]
pending_days = 14
expiry = "end_of_quarter"
expiry_after = "365d"
limits = { per_transaction = 5000, per_day = 8000, per_customer = 200000 }
tiers = [
  { name = "silver", min_spend = 30000, multiplier = 1.25 },
  { name = "gold", min_spend = 100000, multiplier = 1.5 },
]
partners.fuel = { earn_rate = 0.5, burn_rate = 0.4, price_per_point = 0.45 }
earn = [
  { name = "base", when = "true", points = "amount * 0.03" },
  { name = "cosmetics x2", when = "category == 'cosmetics'", multiplier = 2 },
  { name = "shoes bonus", when = "category == 'shoes' and amount >= 3000", points = 150 },
  { name = "sku of the month", when = "sku in ['SKU-1', 'SKU-2', 'SKU-3']", multiplier = 3 },
  { name = "vip", when = "customer.attr.vip", multiplier = 1.1 },
  { name = "big basket", when = "amount >= 15000", points = 1000, priority = 10, stack = false },
]
"""


def generate(engine: Engine, customers: int, purchases: int, now: int) -> float:
    """Customers and purchases (no refunds) inside the database; a partner's purchases; some tiers."""
    sql = Sql(engine.dialect.name)
    started = time.perf_counter()
    for first in range(1, customers + 1, BATCH):
        with engine.begin() as connection:
            _execute(connection, customer_sql(sql, customers, first, min(first + BATCH - 1, customers), now))
    for first in range(1, purchases + 1, BATCH):
        last = min(first + BATCH - 1, purchases)
        with engine.begin() as connection:
            _execute(connection, purchase_sql(sql, customers, purchases, first, last, now))
        print(f"  purchases {last:,}/{purchases:,} ({time.perf_counter() - started:.1f} s)", flush=True)
    with engine.begin() as connection:
        _execute(connection, "UPDATE purchase SET source = 'fuel' WHERE id % 20 = 0")
        if sql.postgresql:
            for table in ("customer", "purchase"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    analyze(engine)
    return time.perf_counter() - started


def reset_ledger(engine: Engine) -> None:
    """Empty the ledger and give a tenth of the customers an account with a tier (not timed)."""
    # a plain DELETE checks each deleted row against the rows that may refer to it, and
    # loyalty_lot.origin_lot_id (a foreign key to the table itself) has no index: a scan per lot
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.exec_driver_sql(f"TRUNCATE {', '.join(LEDGER)}")
        else:
            connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
            for table in LEDGER:
                connection.exec_driver_sql(f"DELETE FROM {table}")
            connection.commit()
            connection.exec_driver_sql("PRAGMA foreign_keys = ON")
        connection.commit()
    with engine.begin() as connection:
        tier = "CASE WHEN id % 20 = 0 THEN 'gold' ELSE 'silver' END"
        stamp = "CURRENT_TIMESTAMP" if engine.dialect.name == "postgresql" else "'2026-01-01 00:00:00.000000'"
        _execute(
            connection,
            "INSERT INTO loyalty_account (programme, customer_id, pending, available, held, debt, tier,"
            f" created_at, updated_at) SELECT 'bonus', id, 0, 0, 0, 0, {tier}, {stamp}, {stamp}"
            " FROM customer WHERE id % 10 = 0",
        )
    analyze(engine)


@contextlib.contextmanager
def statement_times(engine: Engine) -> Iterator[dict[str, list[float]]]:
    """Seconds per kind of statement (its first words) while the block runs."""
    times: dict[str, list[float]] = defaultdict(list)

    def before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        words = statement.split()
        if words[0] == "WITH" and "INSERT" in words:  # a CTE first: name the statement by its INSERT
            words = words[words.index("INSERT") :]
        label = " ".join(words[:3] if words[0] != "SELECT" else words[:1] + words[-3:])
        times[label[:60]].append(time.perf_counter() - conn.info.pop("bench_started"))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield times
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def accrue(engine: Engine, programme: Programme, now: dt.datetime, chunk: int) -> float:
    """(a): the seconds of the accrual (and what it did, printed)."""
    with statement_times(engine) as times:
        tracemalloc.start()
        started = time.perf_counter()
        result = accrue_purchases(engine, programme, now=now, chunk=chunk)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"(a) accrue_purchases: {seconds:.2f} s, {result.chunks} chunks of {chunk:,} purchase ids")
    print(
        f"    {result.purchases:,} purchases earned {result.points:,} points ({result.pending:,} pending, "
        f"{result.cut:,} cut by limits); {result.accounts_created:,} accounts created"
    )
    print(f"    Python allocations peak: {peak / 2**20:.1f} MiB")
    print("    statements (total seconds, count):")
    for label, runs in sorted(times.items(), key=lambda item: -sum(item[1]))[:12]:
        print(f"      {sum(runs):8.2f} s {len(runs):5d}x  {label}")
    return seconds


def plain_copies(connection: Connection) -> dict[str, Table]:
    """``bench_<table>``: the same columns, unique constraints and indexes as the ledger tables, no FKs."""
    metadata = MetaData()
    copies = {}
    for name, table in TABLES.items():
        columns = [
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in table.columns
        ]
        copy = Table(f"bench_{name}", metadata, *columns)
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint):
                copy.append_constraint(UniqueConstraint(*[c.name for c in constraint.columns]))
        for index in table.indexes:
            Index(f"bench_{index.name}", *[copy.c[c.name] for c in index.columns], unique=index.unique)
        copies[name] = copy
    metadata.drop_all(connection)
    metadata.create_all(connection)
    return copies


def baseline(engine: Engine, chunk: int, first: int = 1, label: str = "(b)") -> float:
    """(b), (d): the seconds of an executemany of the rows written from operation ``first`` on."""
    postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        copies = plain_copies(connection)
    seconds, rows = 0.0, 0
    with engine.connect() as connection:
        driver = connection.connection.driver_connection
        assert driver is not None
        reader = driver.cursor()
        last = reader.execute("SELECT max(id) FROM loyalty_operation").fetchone()[0] or 0
        for start in range(first, last + 1, chunk):
            batches = []
            for name, table in TABLES.items():
                key = "id" if name == "loyalty_operation" else "operation_id"
                names = [c.name for c in table.columns]
                select_list = ", ".join(
                    f"{n}::text" if postgresql and n in JSON_COLUMNS else n for n in names
                )
                reader.execute(
                    f"SELECT {select_list} FROM {name} WHERE {key} BETWEEN {start} AND {start + chunk - 1}"
                )
                marks = ", ".join(
                    ("%s::jsonb" if n in JSON_COLUMNS else "%s") if postgresql else "?" for n in names
                )
                statement = f"INSERT INTO bench_{name} ({', '.join(names)}) VALUES ({marks})"
                batches.append((statement, reader.fetchall()))
            writer = driver.cursor()
            started = time.perf_counter()
            if not postgresql:
                writer.execute("BEGIN")
            for statement, values in batches:
                writer.executemany(statement, values)
                rows += len(values)
            driver.commit()
            seconds += time.perf_counter() - started
        connection.rollback()
    with engine.begin() as connection:
        for copy in copies.values():
            copy.drop(connection)
    print(f"{label} baseline: executemany of the same {rows:,} rows: {seconds:.2f} s")
    return seconds


def refund_rows(engine: Engine, programme: Programme, now: dt.datetime) -> list[int]:
    """Refund rows for 3 % of the purchases, and spends on some of their accounts (not timed)."""
    started = time.perf_counter()
    with engine.connect() as connection:
        orders = connection.execute(
            PURCHASE.select()
            .with_only_columns(PURCHASE.c.id, PURCHASE.c.external_id, PURCHASE.c.customer_id,
                               PURCHASE.c.ordered_at, PURCHASE.c.amount)
            .where(PURCHASE.c.id % 33 == 0, PURCHASE.c.refund_of_id.is_(None))
            .order_by(PURCHASE.c.id)
        ).all()  # fmt: skip
    rows = []
    for n, order in enumerate(orders):
        parts = [Decimal("0.3"), Decimal("0.3")] if n % 6 == 0 else [Decimal(1) if n % 2 else Decimal("0.5")]
        for k, part in enumerate(parts):
            rows.append(
                {
                    "external_id": f"R{k}-{order.external_id}",
                    "customer_id": order.customer_id,
                    "ordered_at": min(order.ordered_at + dt.timedelta(days=1 + k), now),
                    "amount": -(order.amount * part).quantize(Decimal("0.01")),
                    "currency": "RUB",
                    "quantity": Decimal(1),
                    "refund_of_id": order.id,
                    "created_at": now,
                }
            )
    with engine.begin() as connection:
        connection.execute(PURCHASE.insert(), rows)
        ids = list(
            connection.execute(
                PURCHASE.select()
                .with_only_columns(PURCHASE.c.id)
                .where(PURCHASE.c.refund_of_id.is_not(None))
                .order_by(PURCHASE.c.ordered_at, PURCHASE.c.id)
            ).scalars()
        )
    spenders = sorted({order.customer_id for order in orders[::7]})[:500]
    spent = 0
    for customer in spenders:
        with engine.connect() as connection:
            available = connection.exec_driver_sql(
                f"SELECT available FROM loyalty_account WHERE customer_id = {customer}"
            ).scalar()
        if not available or available < 2:
            continue
        try:  # what is cached may have expired since: the command settles first
            redeem(engine, programme, key=f"bench-spend-{customer}", customer=customer,
                   points=available // 2, now=now)  # fmt: skip
            spent += 1
        except LoyaltyError:
            continue
    print(
        f"(c) {len(rows):,} refund rows of {len(orders):,} orders, {spent} members spent half their points "
        f"(not timed: {time.perf_counter() - started:.1f} s)"
    )
    return ids


def refunds(engine: Engine, programme: Programme, ids: list[int], now: dt.datetime) -> float:
    """(c): the seconds of ``refund_imported`` (and what it did, printed)."""
    with statement_times(engine) as times:
        # not under tracemalloc: it slows the Python part (a copy of the chunk's accounts) six times
        started = time.perf_counter()
        applied = refund_imported(engine, programme, ids, now)
        seconds = time.perf_counter() - started
    print(f"(c) refund_imported: {seconds:.2f} s, {applied:,} refunds applied")
    print("    statements (total seconds, count):")
    for label, runs in sorted(times.items(), key=lambda item: -sum(item[1]))[:8]:
        print(f"      {sum(runs):8.2f} s {len(runs):5d}x  {label}")
    return seconds


def run(args: argparse.Namespace) -> None:
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    customers = args.customers or max(1, args.purchases // 5)
    with tempfile.TemporaryDirectory() as tmp, database(args) as url:
        config_path = Path(tmp) / "config.toml"
        config_path.write_text(CONFIG, encoding="utf-8")
        programme = load_config(config_path).programmes["bonus"]
        engine = make_engine(url)
        print(f"database: {engine.url.render_as_string(hide_password=True)} ({engine.dialect.name})")
        print(f"size: {customers:,} customers, {args.purchases:,} purchases; chunk {args.chunk:,}")
        upgrade(engine)
        with engine.begin() as connection:  # a kept database: the refunds of the last run go first
            connection.exec_driver_sql("DELETE FROM purchase WHERE refund_of_id IS NOT NULL")
            have = connection.exec_driver_sql("SELECT count(*) FROM purchase").scalar_one()
        if have == 0:
            seconds = generate(engine, customers, args.purchases, int(now.timestamp()))
            print(f"data: generated in {seconds:.1f} s")
        elif have != args.purchases:
            raise SystemExit(f"the database holds {have:,} purchases, not {args.purchases:,}")
        reset_ledger(engine)
        accrual_seconds = accrue(engine, programme, now, args.chunk)
        base_seconds = baseline(engine, args.chunk)
        ratio = base_seconds / accrual_seconds
        verdict = "ok" if ratio >= GOAL else "missed"
        print(
            f"ratio baseline / accrual: {base_seconds:.2f} / {accrual_seconds:.2f} = {ratio:.2f} "
            f"(goal >= {GOAL}): {verdict}"
        )
        if not args.no_refunds:
            later = now + dt.timedelta(hours=1)
            ids = refund_rows(engine, programme, later)
            if not args.fresh:  # the night's jobs first, as the scheduler runs them (not timed)
                activate_due(engine, programme, now=later)
                expire_due(engine, programme, now=later)
            with engine.connect() as connection:
                first = connection.exec_driver_sql("SELECT max(id) FROM loyalty_operation").scalar_one() + 1
            refund_seconds = refunds(engine, programme, ids, later)
            base_seconds = baseline(engine, args.chunk, first, "(d)")
            ratio = base_seconds / refund_seconds
            verdict = "ok" if ratio >= GOAL else "missed"
            print(
                f"ratio baseline / refunds: {base_seconds:.2f} / {refund_seconds:.2f} = {ratio:.2f} "
                f"(goal >= {GOAL}): {verdict}"
            )
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = database_parser(__doc__)
    parser.add_argument("--purchases", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, help="default: a fifth of --purchases")
    parser.add_argument("--chunk", type=int, default=50_000, help="purchase ids per accrual transaction")
    parser.add_argument("--no-refunds", action="store_true", help="the accrual only: no (c) and (d)")
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="(c) without the daily jobs before it: each refund first expires its account's lots past date",
    )
    args = parser.parse_args(argv)
    if args.database_url and args.postgresql is not None:
        parser.error("give --database-url or --postgresql, not both")
    run(args)


if __name__ == "__main__":
    main()
