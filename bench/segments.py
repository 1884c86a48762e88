"""Segment benchmark: the engine's compiled segments against hand-written SQL and pandas.

Generates customers and purchases inside the database with set-based SQL
(``INSERT ... SELECT`` over a recursive CTE on SQLite, ``generate_series`` on
PostgreSQL; pseudo-random values are arithmetic on the row number), then
prints:

(a) the time of the metrics refresh (and of the segments refresh);
(b) for five typical segments, the engine's compiled query against the same
    condition written by hand in SQL, both timed as ``SELECT count(*) FROM
    (...)``, as a ratio engine / hand (best of ``--repeat``; goal <= 1.3);
(c) the engine against a pandas boolean mask on a frame loaded once (the load
    is timed on its own);
(d) the peak memory of the Python process during the metrics refresh.

Usage::

    python bench/segments.py                                  # SQLite file in a temp folder
    python bench/segments.py --customers 100000 --purchases 500000
    python bench/segments.py --postgresql                     # throw-away crm_bench_<random>
    python bench/segments.py --database-url sqlite:///bench.db --keep   # generate once, reuse

``--keep`` keeps the database (and reuses its data when it already holds the
requested counts); without it a generated database is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import multiprocessing
import re
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql import Executable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from engine.config.checked import Config, load_config  # noqa: E402
from engine.db.engines import make_engine  # noqa: E402
from engine.db.schema import upgrade  # noqa: E402
from engine.metrics.customer_metrics import refresh_metrics  # noqa: E402
from engine.segments.membership import refresh_segments, segment_select  # noqa: E402

CONFIG = Path(__file__).with_name("bench_config.toml")
POSTGRES_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GOAL = 1.3
HISTORY_DAYS = 730
REFUND_EVERY = 33  # one sale in 33 is refunded: 3 % of the rows
BATCH = 1_000_000  # rows per INSERT ... SELECT

# -- the five segments: the rule is in bench_config.toml; here the same condition by hand ---------


@dataclass(frozen=True)
class Case:
    """One segment: its name in the config, the hand-written WHERE and the pandas mask."""

    name: str
    where: str
    mask: Callable[[pd.DataFrame], pd.Series]


CASES = (
    Case("large", "m.abc_class = 'A'", lambda f: f.abc_class == "A"),
    Case(
        "lapsing_large",
        "m.abc_class = 'A' AND m.days_since_last_order BETWEEN 90 AND 180",
        lambda f: (f.abc_class == "A") & f.days_since_last_order.between(90, 180),
    ),
    Case(
        "loyal_reachable",
        "m.orders_count >= 3 AND m.total_spent > 10000 AND c.consent_email",
        lambda f: (f.orders_count >= 3) & (f.total_spent > 10000) & f.consent_email,
    ),
    Case(
        "prospects_with_email",
        "m.lifecycle_stage = 'visitor' AND c.email IS NOT NULL",
        lambda f: (f.lifecycle_stage == "visitor") & f.email.notna(),
    ),
    Case(
        "fading_frequent",
        "m.recency_score >= 4 AND m.frequency_score <= 2 AND c.country IN ('RU', 'KZ')",
        lambda f: (f.recency_score >= 4) & (f.frequency_score <= 2) & f.country.isin(["RU", "KZ"]),
    ),
)
FRAME_SQL = """
SELECT c.id, c.email, c.country, c.consent_email, m.abc_class, m.days_since_last_order,
       m.orders_count, m.total_spent, m.lifecycle_stage, m.recency_score, m.frequency_score
FROM customer c JOIN customer_metrics m ON m.customer_id = c.id
"""


def hand_sql(where: str) -> str:
    """The condition written directly, wrapped like the engine's query."""
    return (
        "SELECT count(*) FROM (SELECT c.id FROM customer c "
        f"JOIN customer_metrics m ON m.customer_id = c.id WHERE {where}) AS s"
    )


# -- data generated inside the database ----------------------------------------------------------

_MODULUS = 2_147_483_647  # 2**31 - 1, a prime: squares stay below 2**62


def rnd(key: int, expr: str = "i") -> str:
    """A pseudo-random integer in [0, 2**31 - 1) from ``expr`` (0 <= expr < 10**9), one stream per ``key``.

    A linear step then a square modulo a prime: linear steps alone leave the
    low digits of consecutive rows in lockstep.
    """
    linear = (
        f"((({expr}) * {(1_103_515_245 + 40_503_001 * key) % _MODULUS} + {key * 7919 + 13}) % {_MODULUS})"
    )
    return f"((({linear} * {linear}) % {_MODULUS} * {48_271 + 16_807 * key} + 12345) % {_MODULUS})"


def unit(key: int, expr: str = "i") -> str:
    """A pseudo-random float in [0, 1)."""
    return f"({rnd(key, expr)} / CAST({_MODULUS} AS DOUBLE PRECISION))"


class Sql:
    """The few expressions where SQLite and PostgreSQL differ."""

    def __init__(self, dialect: str) -> None:
        self.postgresql = dialect == "postgresql"

    def insert_numbers(self, table: str, columns: list[str], select_list: str, first: int, last: int) -> str:
        """``INSERT INTO table (columns) SELECT select_list FROM <numbers i from first to last>``."""
        names = ", ".join(columns)
        if self.postgresql:
            return f"INSERT INTO {table} ({names}) SELECT {select_list} FROM {self.series(first, last)}"
        return (
            f"WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i < {last}) "
            f"INSERT INTO {table} ({names}) SELECT {select_list} FROM n"
        )

    @staticmethod
    def series(first: int, last: int) -> str:
        """PostgreSQL's numbers, as BIGINT so that the hashes do not overflow."""
        return f"generate_series(CAST({first} AS BIGINT), {last}) AS n(i)"

    def pad(self, expr: str, width: int) -> str:
        return (
            f"lpad(CAST({expr} AS TEXT), {width}, '0')"
            if self.postgresql
            else f"printf('%0{width}d', {expr})"
        )

    def timestamp(self, epoch: str) -> str:
        """An aware UTC timestamp from epoch seconds, stored the way the engine stores it."""
        if self.postgresql:
            return f"to_timestamp({epoch})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {epoch}, 'unixepoch') || '.000000')"

    def date(self, epoch: str) -> str:
        return f"CAST(to_timestamp({epoch}) AS DATE)" if self.postgresql else f"date({epoch}, 'unixepoch')"

    def later(self, column: str, days: int) -> str:
        if self.postgresql:
            return f"{column} + INTERVAL '{days} days'"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {column}, '+{days} days') || '.000000')"

    def money(self, kopecks: str) -> str:
        if self.postgresql:
            return f"CAST({kopecks} AS NUMERIC(14, 2)) / 100"
        return f"ROUND(({kopecks}) / 100.0, 2)"

    def floor_int(self, expr: str) -> str:
        return f"CAST(floor({expr}) AS BIGINT)" if self.postgresql else f"CAST({expr} AS INTEGER)"

    def json(self, expr: str) -> str:
        return f"CAST({expr} AS JSONB)" if self.postgresql else expr


def _case(selector: str, values: list[str], default: str = "NULL") -> str:
    whens = " ".join(f"WHEN {n} THEN {value}" for n, value in enumerate(values))
    return f"CASE {selector} {whens} ELSE {default} END"


def customer_sql(sql: Sql, customers: int, first: int, last: int, now: int) -> str:
    """Customers ``first``..``last``; the last tenth are prospects (declared visitors, no purchases)."""
    buyers = customers - customers // 10
    created = sql.timestamp(f"{now - HISTORY_DAYS * 86_400} - {rnd(16)} % {3 * 365 * 86_400}")
    zones = ["'Europe/Moscow'"] * 10 + [
        "'Asia/Yekaterinburg'",
        "'Asia/Yekaterinburg'",
        "'Asia/Novosibirsk'",
        "'Asia/Vladivostok'",
        "'Europe/Kaliningrad'",
        "'Asia/Almaty'",
        "'Europe/Samara'",
        "'Europe/Minsk'",
    ]  # and two in twenty without a zone
    consent = {"email": 70, "sms": 40, "call": 25, "post": 15}
    birth = f"{now} - (6570 + {rnd(9)} % 18250) * 86400"  # 18 to 68 years old
    verified = sql.timestamp(f"{now} - {rnd(13)} % {3 * 365 * 86_400}")  # a third is stale
    columns = {
        "id": "i",
        "external_id": f"'C' || {sql.pad('i', 7)}",
        "first_name": _case(
            f"{rnd(1)} % 6", ["'Анна'", "'Иван'", "'Ольга'", "'Сергей'", "'Мария'", "'Дмитрий'"]
        ),
        "last_name": _case(
            f"{rnd(2)} % 5", ["'Иванов'", "'Смирнова'", "'Кузнецов'", "'Попова'", "'Соколов'"]
        ),
        "company": f"CASE WHEN {rnd(3)} % 100 < 8 THEN 'ООО «Компания ' || i || '»' END",
        "email": f"CASE WHEN {rnd(4)} % 100 < 85 THEN 'c' || i || '@mail.example' END",
        "phone": f"CASE WHEN {rnd(5)} % 100 < 88 THEN '+79' || {sql.pad('i', 9)} END",
        "address": f"CASE WHEN {rnd(6)} % 2 = 0 THEN 'г. Москва, ул. Ленина, д. ' || ({rnd(6)} % 150) END",
        "country": _case(f"{rnd(7)} % 20", ["'KZ'", "'BY'"], "'RU'"),
        "timezone": _case(f"{rnd(8)} % 20", zones),
        "birth_date": f"CASE WHEN {rnd(9)} % 100 < 70 THEN {sql.date(birth)} END",
        "language": "'ru'",
        "lifecycle_stage": f"CASE WHEN i > {buyers} THEN 'visitor' WHEN {rnd(3)} % 25 = 0 THEN 'partner' END",
        "verified_at": f"CASE WHEN {rnd(13)} % 100 >= 10 THEN {verified} END",
        "attributes": sql.json(
            f"'{{\"vip\": ' || CASE WHEN {rnd(14)} % 100 < 5 THEN 'true' ELSE 'false' END "
            f"|| ', \"children\": ' || ({rnd(14)} % 4) || '}}'"
        ),
        "source": _case(
            f"{rnd(15)} % 6",
            ["'shop'", "'loyalty_cards'", "'web'", "'call_centre'", "'accounting'"],
            "'bought_list'",
        ),
        "created_at": created,
        "updated_at": created,
    }
    for key, (channel, share) in enumerate(consent.items(), start=17):
        columns[f"consent_{channel}"] = f"({rnd(key)} % 100 < {share})"
        columns[f"consent_{channel}_at"] = f"CASE WHEN {rnd(key)} % 100 < {share} THEN {created} END"
    return sql.insert_numbers("customer", list(columns), ", ".join(columns.values()), first, last)


def purchase_sql(sql: Sql, customers: int, sales: int, first: int, last: int, now: int) -> str:
    """Sales ``first``..``last`` (ids in time order), spread over the buyers with a skew.

    Buyers whose id ends in 0, 1 or 2 lapse: their purchases stop 250 days
    before ``now``. Within each group, lower ids buy more (``u**3``), so
    revenue concentrates; customer ``c % 7`` scales the basket.
    """
    tenths = (customers - customers // 10) // 10
    lapsed, loyal = 3 * tenths, 7 * tenths
    start = now - HISTORY_DAYS * 86_400
    is_lapsed = "i % 100 < 15"
    pick_lapsed = sql.floor_int(f"{lapsed} * {unit(1)} * {unit(1)} * {unit(1)}")
    pick_loyal = sql.floor_int(f"{loyal} * {unit(2)} * {unit(2)} * {unit(2)}")
    customer = (
        f"CASE WHEN {is_lapsed} THEN 10 * ({pick_lapsed} / 3) + {pick_lapsed} % 3 + 1 "
        f"ELSE 10 * ({pick_loyal} / 7) + 3 + {pick_loyal} % 7 + 1 END"
    )
    span = (
        f"CASE WHEN {is_lapsed} THEN {(HISTORY_DAYS - 250) * 86_400} ELSE {HISTORY_DAYS * 86_400 - 3600} END"
    )
    at = f"{start} + (i - 1) * {span} / {sales} + {rnd(3)} % 3600"
    kopecks = f"(20000 + {rnd(4)} % 500000) * (1 + c % 7) / 3"
    categories = ["'cosmetics'", "'clothing'", "'shoes'", "'accessories'", "'home'", "'kids'"]
    columns = {
        "id": "i",
        "external_id": f"'P' || {sql.pad('i', 8)}",
        "customer_id": "c",
        "ordered_at": sql.timestamp(at),
        "amount": sql.money(kopecks),
        "currency": "'RUB'",
        "category": _case(f"{rnd(5)} % 7", categories, "'sport'"),
        "sku": f"'SKU-' || ({rnd(6)} % 5000)",
        "quantity": "1",
        "margin": f"CASE WHEN {rnd(7)} % 100 < 92 THEN {sql.money(f'({kopecks}) * 3 / 10')} END",
        "source": f"CASE WHEN {rnd(8)} % 100 < 30 THEN 'web' ELSE 'shop' END",
        "created_at": sql.timestamp(at),
    }
    select_list = ", ".join(columns.values())
    numbers = sql.insert_numbers("purchase", list(columns), f"{select_list}", first, last)
    # the customer is computed once per row, in a derived table
    if sql.postgresql:
        return numbers.replace(
            f"FROM {sql.series(first, last)}",
            f"FROM (SELECT i, {customer} AS c FROM {sql.series(first, last)}) AS p",
        )
    return numbers.replace(
        f"SELECT {select_list} FROM n", f"SELECT {select_list} FROM (SELECT i, {customer} AS c FROM n) AS p"
    )


def refund_sql(sql: Sql, sales: int, refunds: int) -> str:
    """Refund every 33rd sale two days later, in full: 3 % of the rows."""
    return (
        "INSERT INTO purchase (id, external_id, customer_id, ordered_at, amount, currency, category, sku, "
        "quantity, margin, refund_of_id, source, created_at) "
        f"SELECT {sales} + id / {REFUND_EVERY}, 'R' || {sql.pad(f'id / {REFUND_EVERY}', 8)}, customer_id, "
        f"{sql.later('ordered_at', 2)}, -amount, currency, category, sku, -quantity, -margin, id, source, "
        f"{sql.later('created_at', 2)} FROM purchase "
        f"WHERE id % {REFUND_EVERY} = 0 AND id <= {refunds * REFUND_EVERY}"
    )


def generate(engine: Engine, customers: int, purchases: int, now: int) -> float:
    """Fill an empty schema with ``customers`` and ``purchases`` rows (3 % refunds); return seconds."""
    sql = Sql(engine.dialect.name)
    refunds = min(purchases * 3 // 100, (purchases - purchases * 3 // 100) // REFUND_EVERY)
    sales = purchases - refunds
    started = time.perf_counter()
    with engine.begin() as connection:
        if not sql.postgresql:
            connection.exec_driver_sql("PRAGMA cache_size = -262144")  # 256 MiB for the load only
    for first in range(1, customers + 1, BATCH):
        last = min(first + BATCH - 1, customers)
        with engine.begin() as connection:
            _execute(connection, customer_sql(sql, customers, first, last, now))
        _progress(f"customers {last:,}/{customers:,}", started)
    for first in range(1, sales + 1, BATCH):
        last = min(first + BATCH - 1, sales)
        with engine.begin() as connection:
            _execute(connection, purchase_sql(sql, customers, sales, first, last, now))
        _progress(f"purchases {last:,}/{sales:,}", started)
    with engine.begin() as connection:
        _execute(connection, refund_sql(sql, sales, refunds))
        if sql.postgresql:
            for table in ("customer", "purchase"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
    _progress(f"refunds {refunds:,}", started)
    analyze(engine)
    return time.perf_counter() - started


def _execute(connection: Connection, statement: str) -> None:
    """Run generated SQL as it is (psycopg reads ``%`` as a placeholder unless doubled)."""
    if connection.dialect.name == "postgresql":
        statement = statement.replace("%", "%%")
    connection.exec_driver_sql(statement)


def analyze(engine: Engine, table: str = "") -> None:
    """Give the planner fresh statistics (what autovacuum or a scheduled ``ANALYZE`` does)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM ANALYZE {table}")
    else:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"ANALYZE {table}")


def _progress(what: str, started: float) -> None:
    print(f"  {what} ({time.perf_counter() - started:.1f} s)", flush=True)


# -- timing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Repeated timings of one thing, in seconds."""

    runs: list[float]

    @property
    def best(self) -> float:
        return min(self.runs)

    @property
    def median(self) -> float:
        return statistics.median(self.runs)


def timed(repeat: int, run: Callable[[], Any]) -> tuple[Timing, Any]:
    """Run ``run`` ``repeat`` times; the timings and the last result."""
    runs, result = [], None
    for _ in range(repeat):
        gc.collect()
        started = time.perf_counter()
        result = run()
        runs.append(time.perf_counter() - started)
    return Timing(runs), result


def peak_rss_mib() -> float:
    """The peak resident set size of this process so far, in MiB.

    ``VmHWM`` of /proc is the peak of this process's own memory;
    ``ru_maxrss`` (the fallback) also counts a parent's peak inherited at start.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Memory:
    """Memory of the Python process around one refresh."""

    rss_before: float
    rss_peak: float
    traced_peak: float  # MiB allocated by Python objects at the peak, tracemalloc

    @property
    def rss_delta(self) -> float:
        return self.rss_peak - self.rss_before


def _refresh_in_child(url: str, config_path: str, as_of: dt.date, now: dt.datetime) -> Memory:
    config = load_config(config_path)
    engine = make_engine(url)
    with engine.connect():
        pass  # the driver and the connection belong to the baseline
    gc.collect()
    before = peak_rss_mib()
    tracemalloc.start()
    try:
        refresh_metrics(engine, config, as_of, now=now)
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    engine.dispose()
    return Memory(before, peak_rss_mib(), traced / 2**20)


def refresh_memory(url: str, config_path: Path, as_of: dt.date, now: dt.datetime) -> Memory:
    """Run one metrics refresh in a fresh process: its peak RSS is not hidden by the data load's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        memory: Memory = pool.apply(_refresh_in_child, (url, str(config_path), as_of, now))
    return memory


# -- databases -----------------------------------------------------------------------------------


@contextlib.contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    """The URL to benchmark on; a database the benchmark created is removed unless ``--keep``."""
    if args.database_url:
        yield args.database_url
        return
    if args.postgresql is not None:
        server_url = args.postgresql
        name = f"crm_bench_{secrets.token_hex(4)}"
        server = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with server.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        try:
            yield url
        finally:
            if args.keep:
                print(f"kept: --database-url {url} --keep", file=sys.stderr)
            else:
                with server.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            server.dispose()
        return
    folder = Path(tempfile.mkdtemp(prefix="crm_bench_"))
    url = f"sqlite:///{folder / 'bench.db'}"
    try:
        yield url
    finally:
        if args.keep:
            print(f"kept: --database-url {url} --keep", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        customers = connection.exec_driver_sql("SELECT count(*) FROM customer").scalar_one()
        purchases = connection.exec_driver_sql("SELECT count(*) FROM purchase").scalar_one()
    return customers, purchases


def database_parser(doc: str | None) -> argparse.ArgumentParser:
    """An argument parser with the options every bench shares: where the database is, and --keep."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument(
        "--database-url", help="benchmark on this database (default: a SQLite file in a temp dir)"
    )
    parser.add_argument(
        "--postgresql",
        nargs="?",
        const=POSTGRES_SERVER,
        metavar="SERVER_URL",
        help=f"create a throw-away crm_bench_<random> database on this server (default {POSTGRES_SERVER})",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database; reuse its data if sizes match"
    )
    return parser


def ensure_data(engine: Engine, url: str, customers: int, purchases: int, *, keep: bool, now: int) -> bool:
    """Generate customers and purchases inside the database, or reuse them (``--keep``); True if generated.

    A database that holds other counts is refused: the figures would not be comparable.
    """
    have = _counts(engine)
    if have == (customers, purchases) and keep:
        print("data: reused")
        return False
    if have != (0, 0):
        raise SystemExit(
            f"the database holds {have[0]:,} customers and {have[1]:,} purchases: "
            "use an empty one, or the same sizes with --keep"
        )
    print("data: generating inside the database ...", flush=True)
    loader = make_engine(url)  # its own connection: the big cache must not reach what is measured
    seconds = generate(loader, customers, purchases, now)
    loader.dispose()
    print(f"data: generated in {seconds:.1f} s")
    return True


# -- the benchmark -------------------------------------------------------------------------------


@contextlib.contextmanager
def extra_indexes(engine: Engine, definitions: list[str]) -> Iterator[None]:
    """Create the ``--index`` indexes for this run only (named after their columns), then drop them."""
    names = []
    for definition in definitions:
        name = "ix_bench_" + "_".join(re.findall(r"\w+", definition))
        with engine.begin() as connection:
            connection.exec_driver_sql(f"CREATE INDEX {name} ON {definition}")
        analyze(engine)
        names.append(name)
        print(f"extra index: {name} ON {definition}")
    try:
        yield
    finally:
        for name in names:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


def run(args: argparse.Namespace) -> None:
    config: Config = load_config(args.config)
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    as_of: dt.date = args.as_of or dt.datetime.now(zone).date()
    now = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    with database(args) as url:
        engine = make_engine(url)
        print(f"database: {engine.url.render_as_string(hide_password=True)} ({engine.dialect.name})")
        print(
            f"size: {args.customers:,} customers, {args.purchases:,} purchases; as of {as_of}; "
            f"repeat {args.repeat}"
        )
        upgrade(engine)
        if not ensure_data(
            engine, url, args.customers, args.purchases, keep=args.keep, now=int(now.timestamp())
        ):
            analyze(engine)

        with extra_indexes(engine, args.index):
            measure(engine, url, args, config, as_of, now)
        engine.dispose()


def measure(
    engine: Engine, url: str, args: argparse.Namespace, config: Config, as_of: dt.date, now: dt.datetime
) -> None:
    """Print (a) to (d) for the data in ``engine``."""
    if args.no_refresh:
        print("refresh: skipped, the metrics in the database are used as they are")
    else:
        refresh(engine, url, args, config, as_of, now)
    sql_results = against_hand_sql(engine, config, as_of, args.repeat)
    against_pandas(engine, sql_results, args.repeat)


def refresh(
    engine: Engine, url: str, args: argparse.Namespace, config: Config, as_of: dt.date, now: dt.datetime
) -> None:
    """(a) and (d): time the metrics refresh, and measure its memory in a fresh process."""
    memory = refresh_memory(url, args.config, as_of, now)
    metrics_runs: list[float] = []
    for _ in range(args.repeat):
        if engine.dialect.name == "postgresql":
            analyze(engine, "customer_metrics")  # the dead rows of the last refresh, as autovacuum would
        timing, refreshed = timed(1, lambda: refresh_metrics(engine, config, as_of, now=now))
        metrics_runs += timing.runs
    metrics_time = Timing(metrics_runs)
    if args.no_segments_refresh:
        segments_line = "skipped (--no-segments-refresh)"
    else:
        segments_time, _ = timed(1, lambda: refresh_segments(engine, config, now=now, as_of=as_of))
        segments_line = f"{segments_time.best:.2f} s"
    analyze(engine)  # statistics of the fresh customer_metrics, for both kinds of query
    print()
    print(
        f"(a) metrics refresh: best {metrics_time.best:.2f} s, median {metrics_time.median:.2f} s "
        f"({refreshed.customers:,} customers, {refreshed.buyers:,} buyers)"
    )
    print(f"    segments refresh (5 segments, membership history): {segments_line}")
    print(
        f"(d) peak memory of the metrics refresh: RSS {memory.rss_before:.0f} -> "
        f"{memory.rss_peak:.0f} MiB (+{memory.rss_delta:.0f} MiB), "
        f"Python allocations peak {memory.traced_peak:.2f} MiB"
    )


@dataclass(frozen=True)
class SqlResult:
    """One segment timed as compiled by the engine and as written by hand."""

    case: Case
    members: int
    engine: Timing
    hand: Timing


def _count(connection: Connection, query: Executable) -> int:
    return int(connection.execute(query).scalar_one())


def _mask_count(case: Case, frame: pd.DataFrame) -> int:
    return int(case.mask(frame).sum())


def against_hand_sql(engine: Engine, config: Config, as_of: dt.date, repeat: int) -> list[SqlResult]:
    """(b): each segment's compiled query and its hand-written twin, alternating, same count(*) wrapper."""
    results = []
    with engine.connect() as connection:
        for case in CASES:
            compiled = select(func.count()).select_from(segment_select(config, case.name, as_of).subquery())
            by_hand = text(hand_sql(case.where))
            engine_runs: list[float] = []
            hand_runs: list[float] = []
            counts = set()
            for _ in range(repeat):  # alternate, so that neither always finds the warmer cache
                timing, count = timed(1, partial(_count, connection, compiled))
                engine_runs += timing.runs
                counts.add(count)
                timing, count = timed(1, partial(_count, connection, by_hand))
                hand_runs += timing.runs
                counts.add(count)
            if len(counts) != 1:
                raise SystemExit(
                    f"{case.name}: the engine and the hand-written SQL disagree: {sorted(counts)}"
                )
            results.append(SqlResult(case, counts.pop(), Timing(engine_runs), Timing(hand_runs)))
    return results


def against_pandas(engine: Engine, results: list[SqlResult], repeat: int) -> None:
    """(c): the same conditions as boolean masks over a frame loaded once; prints (b) and (c)."""
    rss_before = peak_rss_mib()
    load_time, frame = timed(1, lambda: pd.read_sql(text(FRAME_SQL), engine))
    frame_mib = frame.memory_usage(deep=True).sum() / 2**20
    print()
    print(f"(b) engine vs hand-written SQL, (c) engine vs pandas mask; best of {repeat}, ms")
    print(
        f"    {'segment':<22}{'members':>10}{'engine':>10}{'hand SQL':>10}{'ratio':>8}"
        f"{'pandas':>10}{'ratio':>8}"
    )
    worst = 0.0
    for result in results:
        pandas_timing, count = timed(repeat, partial(_mask_count, result.case, frame))
        if count != result.members:
            raise SystemExit(f"{result.case.name}: the engine counts {result.members}, pandas {count}")
        ratio = result.engine.best / result.hand.best
        worst = max(worst, ratio)
        print(
            f"    {result.case.name:<22}{result.members:>10,}{result.engine.best * 1000:>10.1f}"
            f"{result.hand.best * 1000:>10.1f}{ratio:>8.2f}{pandas_timing.best * 1000:>10.1f}"
            f"{result.engine.best / pandas_timing.best:>8.1f}"
        )
    verdict = "ok" if worst <= GOAL else "MISSED"
    print(f"    worst engine/hand ratio {worst:.2f} (goal <= {GOAL}): {verdict}")
    print(
        f"    pandas frame: loaded in {load_time.best:.2f} s, {len(frame):,} rows, {frame_mib:.0f} MiB "
        f"(process RSS peak {rss_before:.0f} -> {peak_rss_mib():.0f} MiB)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = database_parser(__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--purchases", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each query (best is reported)")
    parser.add_argument("--config", type=Path, default=CONFIG, help="config with the five [segments.*]")
    parser.add_argument("--as-of", type=dt.date.fromisoformat, help="business date (default today)")
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        metavar="TABLE(COLUMNS)",
        help="create an extra index before timing, e.g. 'customer_metrics(abc_class)' (repeatable)",
    )
    parser.add_argument(
        "--no-segments-refresh",
        action="store_true",
        help="do not time refresh_segments (to time only the queries on reused data)",
    )
    parser.add_argument(
        "--no-refresh",
        action="store_true",
        help="time the segments on the metrics already refreshed (--keep)",
    )
    args = parser.parse_args(argv)
    if args.database_url and args.postgresql is not None:
        parser.error("give --database-url or --postgresql, not both")
    run(args)


if __name__ == "__main__":
    main()
