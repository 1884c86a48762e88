"""Demo data on real SQLite and PostgreSQL: deterministic, shaped like a shop, refunds that make sense."""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import zoneinfo
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Table, create_engine, func, select, text
from sqlalchemy.exc import OperationalError
from sqlmodel import SQLModel

from engine.db.engines import make_engine
from engine.db.schema import upgrade
from engine.demo.shop import DemoDataSummary, generate_demo_data
from engine.errors import EngineError
from engine.models import CONSENT_CHANNELS, LIFECYCLE_STAGES

CUSTOMERS = 2_000
PURCHASES = 20_000
TODAY = dt.date(2026, 11, 22)
SERVER_URL = os.environ.get("CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CUSTOMER: Table = SQLModel.metadata.tables["customer"]
PURCHASE: Table = SQLModel.metadata.tables["purchase"]


def _sqlite(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def demo_postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database ``crm_demo_test_<random>``, dropped at the end."""
    name = f"crm_demo_test_{secrets.token_hex(6)}"
    server = create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:  # pragma: no cover - the machine's PostgreSQL is down
        server.dispose()
        pytest.fail(f"PostgreSQL at {SERVER_URL} is not reachable ({exc.orig})")
    try:
        yield SERVER_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with server.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Engine, DemoDataSummary]]:
    """A database filled once per backend with the small demo data set."""
    if request.param == "sqlite":
        engine = _sqlite(tmp_path_factory.mktemp("demo") / "demo.db")
    else:
        engine = make_engine(request.getfixturevalue("demo_postgres_url"))
        upgrade(engine)
    summary = generate_demo_data(engine, customers=CUSTOMERS, purchases=PURCHASES, seed=7, today=TODAY)
    yield engine, summary
    engine.dispose()


def _rows(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every customer and purchase, keyed by external ids rather than database ids."""
    with engine.connect() as connection:
        customers = connection.execute(select(CUSTOMER).order_by(CUSTOMER.c.external_id)).all()
        external: dict[int, str] = dict(
            connection.execute(select(CUSTOMER.c.id, CUSTOMER.c.external_id)).all()
        )
        purchase_ids: dict[int, str] = dict(
            connection.execute(select(PURCHASE.c.id, PURCHASE.c.external_id)).all()
        )
        purchases = connection.execute(select(PURCHASE).order_by(PURCHASE.c.external_id)).all()
    customer_rows = [tuple(row)[1:] for row in customers]
    purchase_rows = [
        (
            row.external_id,
            external[row.customer_id],
            row.ordered_at,
            row.amount,
            row.currency,
            row.category,
            row.sku,
            Decimal(row.quantity).quantize(Decimal("0.001")),
            row.margin,
            purchase_ids.get(row.refund_of_id),
            row.source,
            row.created_at,
        )
        for row in purchases
    ]
    return customer_rows, purchase_rows


def test_counts_match_the_summary(demo: tuple[Engine, DemoDataSummary]) -> None:
    engine, summary = demo
    with engine.connect() as connection:
        customers = connection.execute(select(func.count()).select_from(CUSTOMER)).scalar_one()
        purchases = connection.execute(select(func.count()).select_from(PURCHASE)).scalar_one()
        refunds = connection.execute(
            select(func.count()).select_from(PURCHASE).where(PURCHASE.c.refund_of_id.is_not(None))
        ).scalar_one()
        revenue = connection.execute(select(func.sum(PURCHASE.c.amount))).scalar_one()
    assert (customers, purchases, refunds) == (CUSTOMERS, PURCHASES, round(PURCHASES * 0.03))
    assert (summary.customers, summary.purchases, summary.refunds) == (customers, purchases, refunds)
    assert Decimal(revenue).quantize(Decimal("0.01")) == summary.revenue > 0
    assert summary.buyers + summary.prospects == CUSTOMERS
    assert 0.06 <= summary.companies / CUSTOMERS <= 0.10
    assert 0.08 <= summary.prospects / CUSTOMERS <= 0.12
    assert 0.05 <= summary.one_time_buyers / summary.buyers <= 0.25
    assert 0.15 <= summary.lapsed_buyers / summary.buyers <= 0.45


def test_revenue_concentration_is_that_of_a_shop(demo: tuple[Engine, DemoDataSummary]) -> None:
    engine, summary = demo
    with engine.connect() as connection:
        net = (
            connection.execute(select(func.sum(PURCHASE.c.amount)).group_by(PURCHASE.c.customer_id))
            .scalars()
            .all()
        )
    ranked = sorted(Decimal(value) for value in net)
    bottom = sum(ranked[: len(ranked) * 3 // 4]) / sum(ranked)
    assert len(ranked) == summary.buyers
    assert float(bottom) == pytest.approx(summary.bottom75_revenue_share, abs=1e-9)
    assert 0.40 <= summary.bottom75_revenue_share <= 0.50
    assert summary.top25_revenue_share == pytest.approx(1 - summary.bottom75_revenue_share)


def test_refunds_point_at_earlier_purchases_of_the_same_customer(
    demo: tuple[Engine, DemoDataSummary],
) -> None:
    engine, _ = demo
    original = PURCHASE.alias("original")
    with engine.connect() as connection:
        pairs = connection.execute(
            select(
                PURCHASE.c.customer_id,
                PURCHASE.c.ordered_at,
                PURCHASE.c.amount,
                PURCHASE.c.quantity,
                original.c.customer_id,
                original.c.ordered_at,
                original.c.amount,
                original.c.quantity,
                original.c.refund_of_id,
            ).join(original, original.c.id == PURCHASE.c.refund_of_id)
        ).all()
        refunded = (
            connection.execute(select(PURCHASE.c.refund_of_id).where(PURCHASE.c.refund_of_id.is_not(None)))
            .scalars()
            .all()
        )
    assert len(pairs) == round(PURCHASES * 0.03)
    assert len(set(refunded)) == len(refunded), "a purchase is refunded at most once"
    for (
        customer,
        at,
        amount,
        quantity,
        original_customer,
        original_at,
        original_amount,
        original_quantity,
        of,
    ) in pairs:
        assert customer == original_customer
        assert at > original_at
        assert of is None, "a refund refunds a purchase, not another refund"
        assert original_amount > 0
        assert -original_amount <= amount < 0
        assert -original_quantity <= quantity <= 0


def test_times_are_aware_utc_inside_the_two_years(demo: tuple[Engine, DemoDataSummary]) -> None:
    engine, summary = demo
    end = dt.datetime(2026, 11, 21, 21, 0, tzinfo=dt.UTC)  # midnight of TODAY in Moscow
    start = end - dt.timedelta(days=731)  # local midnight in Vladivostok comes first
    customers, purchases = _rows(engine)
    for row in purchases:
        for value in (row[2], row[11]):
            assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
        assert start <= row[2] < end
    stamps = [value for row in customers for value in row if isinstance(value, dt.datetime)]
    assert stamps and all(value.utcoffset() == dt.timedelta(0) for value in stamps)
    assert all(value < end for value in stamps)
    assert summary.first_order_at is not None and summary.first_order_at >= start
    assert summary.last_order_at is not None and summary.last_order_at < end


def test_customers_look_real(demo: tuple[Engine, DemoDataSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        rows = connection.execute(select(CUSTOMER)).all()
        buyers = set(connection.execute(select(PURCHASE.c.customer_id).distinct()).scalars())
    zones = Counter(row.timezone for row in rows)
    known_zones = zoneinfo.available_timezones()
    assert all(zone in known_zones for zone in zones if zone is not None)
    assert zones.most_common(1)[0][0] == "Europe/Moscow"
    assert {"Asia/Yekaterinburg", "Asia/Novosibirsk", "Asia/Vladivostok", "Europe/Kaliningrad"} <= set(zones)
    assert 0.05 <= zones[None] / len(rows) <= 0.20
    assert {"RU", "KZ", "BY"} <= {row.country for row in rows}
    assert Counter(row.country for row in rows).most_common(1)[0][0] == "RU"
    emails = [row.email for row in rows if row.email]
    assert all(
        email == email.lower() and re.fullmatch(r"[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]+", email)
        for email in emails
    )
    assert 0.05 <= 1 - len(emails) / len(rows) <= 0.30
    phones = [row.phone for row in rows if row.phone]
    assert all(re.fullmatch(r"\+(7\d{10}|375\d{9})", phone) for phone in phones)
    assert len(set(phones)) == len(phones)
    rates = {
        channel: sum(getattr(row, f"consent_{channel}") for row in rows) / len(rows)
        for channel in CONSENT_CHANNELS
    }
    for channel, expected in {"email": 0.70, "sms": 0.40, "call": 0.25, "post": 0.15}.items():
        assert rates[channel] == pytest.approx(expected, abs=0.06), channel
    for row in rows:
        for channel in CONSENT_CHANNELS:
            assert (getattr(row, f"consent_{channel}_at") is not None) == getattr(row, f"consent_{channel}")
        assert row.lifecycle_stage in (None, *LIFECYCLE_STAGES)
        assert (row.lifecycle_stage == "visitor") == (row.id not in buyers)
        assert row.lifecycle_stage != "partner" or row.company
        assert re.fullmatch(r"C\d{6}", row.external_id)
        assert set(row.attributes) <= {"card", "vip", "children"}
    assert {row.source for row in rows} == {
        "shop",
        "loyalty_cards",
        "call_centre",
        "web",
        "accounting",
        "bought_list",
    }
    stale = dt.datetime(2024, 11, 22, tzinfo=dt.UTC)
    verified = [row.verified_at for row in rows]
    assert 0.05 <= verified.count(None) / len(rows) <= 0.15
    assert 0.10 <= sum(1 for at in verified if at is not None and at < stale) / len(rows) <= 0.45
    assert len({row.curator for row in rows if row.curator}) >= 3
    female = [row for row in rows if row.middle_name and row.middle_name.endswith("на")]
    assert female and all(not row.last_name.endswith(("ов", "ев", "ин")) for row in female)


def test_sales_peak_in_december(demo: tuple[Engine, DemoDataSummary]) -> None:
    engine, _ = demo
    with engine.connect() as connection:
        times = (
            connection.execute(select(PURCHASE.c.ordered_at).where(PURCHASE.c.refund_of_id.is_(None)))
            .scalars()
            .all()
        )
    months = Counter(at.month for at in times)
    assert months.most_common(1)[0][0] == 12
    assert months[12] > 1.5 * months[6]
    categories_needed = {"cosmetics", "shoes", "clothing", "accessories", "home", "kids", "sport"}
    with engine.connect() as connection:
        categories = set(connection.execute(select(PURCHASE.c.category).distinct()).scalars())
    assert categories == categories_needed


def test_same_seed_same_rows_on_every_database(demo: tuple[Engine, DemoDataSummary], tmp_path: Path) -> None:
    engine, summary = demo
    again = _sqlite(tmp_path / "again.db")
    repeat = generate_demo_data(again, customers=CUSTOMERS, purchases=PURCHASES, seed=7, today=TODAY)
    assert repeat == summary
    assert _rows(again) == _rows(engine)
    again.dispose()


def test_another_seed_gives_other_rows(tmp_path: Path) -> None:
    first = _sqlite(tmp_path / "first.db")
    second = _sqlite(tmp_path / "second.db")
    generate_demo_data(first, customers=200, purchases=1_000, seed=1, today=TODAY)
    generate_demo_data(second, customers=200, purchases=1_000, seed=2, today=TODAY)
    assert _rows(first) != _rows(second)


def test_refuses_a_database_that_holds_customers(tmp_path: Path) -> None:
    engine = _sqlite(tmp_path / "full.db")
    generate_demo_data(engine, customers=20, purchases=100, today=TODAY)
    with pytest.raises(EngineError, match="not empty"):
        generate_demo_data(engine, customers=20, purchases=100, today=TODAY)
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(CUSTOMER)).scalar_one() == 20
