"""Set-based accrual of imported purchases, on SQLite and PostgreSQL, against the one-purchase Python path."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, func, insert, select, update

from engine.config.checked import load_config
from engine.customers.importing import import_purchases
from engine.loyalty.batch.accrual import accrual_request, accrue_purchases
from engine.loyalty.batch.accrual_sql import LocalDays, day_number, offset_changes
from engine.loyalty.ledger.audit import audit
from engine.loyalty.ledger.earning import earned_so_far
from engine.loyalty.ledger.posting import request_hash
from engine.loyalty.programme.definition import Programme
from engine.models import CustomerMetrics, CustomerScore, Purchase
from engine.models.segment import Segment, SegmentMembership
from engine.models.tables import ACCOUNT, ENTRY, LOT, OPERATION
from engine.sql.types import UtcDateTime
from tests.factories import add_customer, add_purchase, utc
from tests.loyalty.programme.test_earn_rules import HEAD

PURCHASE = Purchase.__table__  # type: ignore[attr-defined]
METRICS = CustomerMetrics.__table__  # type: ignore[attr-defined]
SCORE = CustomerScore.__table__  # type: ignore[attr-defined]
SEGMENT = Segment.__table__  # type: ignore[attr-defined]
MEMBERSHIP = SegmentMembership.__table__  # type: ignore[attr-defined]
BERLIN = "Europe/Berlin"


SIMPLE = """
[loyalty.programmes.shop]
pending_days = 14
expiry = "365d"
earn = [{ name = "base", when = "true", points = "amount * 0.05" }]
"""


def programme(tmp_path: Path, body: str, name: str = "shop") -> Programme:
    path = tmp_path / "config.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return load_config(path).programmes[name]


def rows(db: Engine, table: Any, *order: Any) -> list[dict[str, Any]]:
    with db.connect() as connection:
        return [
            dict(r._mapping) for r in connection.execute(select(table).order_by(*(order or [table.c.id])))
        ]


def count(db: Engine, table: Any) -> int:
    with db.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def test_accrual_creates_accounts_lots_entries_and_caches_once(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, SIMPLE)
    now = utc(2025, 5, 20, 12)
    with db.begin() as connection:
        ann, bob = add_customer(connection), add_customer(connection)
        p1 = add_purchase(connection, ann, utc(2025, 5, 1, 9), "1000.00")  # 50, available on 15 May
        p2 = add_purchase(connection, ann, utc(2025, 5, 10, 9), "333.33")  # 16.6665 -> 16, pending to 24 May
        p3 = add_purchase(connection, bob, utc(2025, 5, 18, 9), "19.99")  # 0.9995 -> 0: no lot
        refund = add_purchase(connection, ann, utc(2025, 5, 12), "-100.00", refund_of_id=p1)
        add_purchase(connection, bob, utc(2025, 5, 19), "0.00")  # not positive: ignored
    result = accrue_purchases(db, shop, now=now, chunk=2)

    assert (result.purchases, result.points, result.pending, result.cut) == (3, 66, 16, 0)
    assert (result.accounts_created, result.skipped, result.refunds) == (2, 0, (refund,))
    accounts = {row["customer_id"]: row for row in rows(db, ACCOUNT)}
    assert (accounts[ann]["available"], accounts[ann]["pending"]) == (50, 16)
    assert (accounts[bob]["available"], accounts[bob]["pending"]) == (0, 0)
    assert accounts[ann]["last_activity_at"] == utc(2025, 5, 10, 9)  # the latest purchase, not the import
    lots = rows(db, LOT, LOT.c.earned_at)
    assert [(lot["points"], lot["remaining"], lot["source"]) for lot in lots] == [
        (50, 50, "purchase"),
        (16, 16, "purchase"),
    ]
    assert lots[0]["earned_at"] == utc(2025, 5, 1, 9)
    assert lots[0]["available_at"] == utc(2025, 5, 15, 9)
    assert lots[0]["expires_at"] == utc(2026, 5, 1, 9)  # 365 days later
    entries = rows(db, ENTRY, ENTRY.c.amount.desc())
    assert [(e["kind"], e["bucket"], e["points"], e["amount"]) for e in entries] == [
        ("earn", "available", 50, Decimal("1000.00")),
        ("earn", "pending", 16, Decimal("333.33")),
        ("earn", "available", 0, Decimal("19.99")),  # a purchase without points still qualifies as spend
    ]
    assert entries[2]["lot_id"] is None
    assert entries[0]["detail"] == {
        "rules": [{"rule": "base"}],
        "config_version": shop.config_version,
        "accrual": True,
    }
    operations = {op["purchase_id"]: op for op in rows(db, OPERATION)}
    assert set(operations) == {p1, p2, p3}
    op = operations[p2]
    assert (op["key"], op["command"], op["reference"], op["amount"]) == (
        f"purchase:{op['reference']}",
        "earn",
        op["reference"],
        Decimal("333.33"),
    )
    assert op["request_hash"] == request_hash("earn", accrual_request(p2, "333.33"))
    assert op["result"]["points"] == 16 and op["result"]["detail"]["lot"] == lots[1]["id"]
    assert op["config_version"] == shop.config_version and op["created_at"] == now
    assert audit(db).ok

    again = accrue_purchases(db, shop, now=now + dt.timedelta(days=1))
    assert (again.purchases, again.points, again.accounts_created, again.skipped) == (0, 0, 0, 3)
    assert (count(db, OPERATION), count(db, LOT), count(db, ENTRY)) == (3, 2, 3)


def test_a_purchase_that_earned_through_the_pos_key_earns_no_more(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, SIMPLE)
    with db.begin() as connection:
        ann = add_customer(connection)
        add_purchase(connection, ann, utc(2025, 5, 1), "100.00", external_id="ORDER-1")
        add_purchase(connection, ann, utc(2025, 5, 2), "200.00", external_id="ORDER-2")
        connection.execute(
            insert(OPERATION).values(
                programme="shop", key="purchase:ORDER-1", command="earn", request_hash="x",
                config_version="v", result={}, created_at=utc(2025, 5, 1),
            )
        )  # fmt: skip
    result = accrue_purchases(db, shop, now=utc(2025, 6, 1))
    assert (result.purchases, result.points, result.skipped) == (1, 10, 1)
    assert [lot["points"] for lot in rows(db, LOT)] == [10]


@pytest.mark.parametrize(
    ("expiry", "after", "expected"),
    [
        # 23:30 on 31 March in Berlin (CEST, UTC+2) is still the first quarter: it ends at 1 April 00:00 CEST
        (
            "end_of_quarter",
            "0d",
            [utc(2025, 3, 31, 22), utc(2025, 6, 30, 22), utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)],
        ),
        # + 30 days first: 30 April / 31 May are in Q2, 30 Nov (CET) in Q4, 30 Jan 2026 in Q1 2026
        (
            "end_of_quarter",
            "30d",
            [utc(2025, 6, 30, 22), utc(2025, 6, 30, 22), utc(2025, 12, 31, 23), utc(2026, 3, 31, 22)],
        ),
        (
            "end_of_month",
            "0d",
            [utc(2025, 3, 31, 22), utc(2025, 4, 30, 22), utc(2025, 10, 31, 23), utc(2026, 1, 31, 23)],
        ),
        ("end_of_year", "0d", [utc(2025, 12, 31, 23)] * 3 + [utc(2026, 12, 31, 23)]),
        ("400d", "0d", None),  # rolling: ordered_at + 400 days
        ("never", "0d", [None] * 4),
    ],
)
def test_expiry_dates_across_dst(db: Engine, tmp_path: Path, expiry: str, after: str, expected: Any) -> None:
    shop = programme(
        tmp_path,
        f"""
[loyalty.programmes.shop]
expiry = "{expiry}"
expiry_after = "{after}"
earn = [{{ when = "true", points = 10 }}]
""",
    )
    times = [
        utc(2025, 3, 31, 21, 30),  # 31 March 23:30 CEST
        utc(2025, 3, 31, 22, 30),  # 1 April 00:30 CEST
        utc(2025, 10, 31, 22, 30),  # 31 October 23:30 CET
        utc(2025, 12, 31, 23, 30),  # 1 January 2026 00:30 CET
    ]
    with db.begin() as connection:
        ann = add_customer(connection)
        for at in times:
            add_purchase(connection, ann, at, "10.00")
    accrue_purchases(db, shop, now=utc(2026, 2, 1))
    got = [lot["expires_at"] for lot in rows(db, LOT, LOT.c.earned_at)]
    if expected is None:
        expected = [at + dt.timedelta(days=400) for at in times]
    assert got == expected
    assert got == [shop.expires_at(at) for at in times]


def test_local_days_and_offsets_across_both_dst_changes(tmp_path: Path) -> None:
    shop = programme(tmp_path, SIMPLE)
    changes = offset_changes(shop, utc(2025, 3, 1), utc(2025, 11, 1))
    assert changes == [
        (int(utc(2025, 3, 1).timestamp()), 3600),
        (int(utc(2025, 3, 30, 1).timestamp()), 7200),
        (int(utc(2025, 10, 26, 1).timestamp()), 3600),
    ]
    days = LocalDays(shop, utc(2025, 3, 29, 22, 30), utc(2025, 3, 30, 22, 30))
    assert (days.start, days.end) == (utc(2025, 3, 28, 23), utc(2025, 3, 31, 22))
    assert day_number(shop, utc(2025, 3, 29, 22, 59)) == (dt.date(2025, 3, 29) - dt.date(1970, 1, 1)).days
    assert day_number(shop, utc(2025, 3, 29, 23, 0)) == (dt.date(2025, 3, 30) - dt.date(1970, 1, 1)).days


LIMITED = """
[loyalty.programmes.shop]
limits = { per_day = 100, per_customer = 250 }
earn = [{ name = "base", when = "true", points = "amount * 0.1" }]
"""


def test_per_day_and_per_customer_limits_by_local_day_across_dst(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, LIMITED)
    times = [
        utc(2025, 3, 29, 22, 30),  # 29 March 23:30 CET: day 29
        utc(2025, 3, 29, 23, 30),  # 30 March 00:30 CET: day 30 (23 hours long)
        utc(2025, 3, 30, 21, 30),  # 30 March 23:30 CEST: day 30
        utc(2025, 3, 30, 22, 30),  # 31 March 00:30 CEST: day 31
    ]
    with db.begin() as connection:
        ann = add_customer(connection)
        ids = [add_purchase(connection, ann, at, "800.00") for at in times]  # 80 points each
    result = accrue_purchases(db, shop, now=utc(2025, 4, 1))
    entries = {e["operation_id"]: e for e in rows(db, ENTRY)}
    by_purchase = {op["purchase_id"]: entries[op["id"]] for op in rows(db, OPERATION)}
    # day 29: 80; day 30: 80 then 20 (per_day cut 60); day 31: 80 -> total would be 260: per_customer cuts 10
    assert [by_purchase[p]["points"] for p in ids] == [80, 80, 20, 70]
    assert by_purchase[ids[2]]["detail"]["rules"] == [{"rule": "base"}, {"limit": "per_day", "cut": 60}]
    assert by_purchase[ids[3]]["detail"]["rules"] == [{"rule": "base"}, {"limit": "per_customer", "cut": 10}]
    assert (result.points, result.cut) == (250, 70)
    with db.connect() as connection:
        account = connection.execute(select(ACCOUNT.c.id)).scalar_one()
        assert earned_so_far(connection, shop, account, dt.date(2025, 3, 30)) == (100, 250)
        assert earned_so_far(connection, shop, account, dt.date(2025, 3, 31)) == (70, 250)
    # a later purchase the same day finds the day full and the customer at the limit
    with db.begin() as connection:
        add_purchase(connection, ann, utc(2025, 3, 31, 8), "100.00")
    assert accrue_purchases(db, shop, now=utc(2025, 4, 1)).cut == 10
    assert audit(db).ok


def test_merged_accounts_and_tier_overrides(db: Engine, tmp_path: Path) -> None:
    shop = programme(
        tmp_path,
        """
[loyalty.programmes.shop]
tiers = [
  { name = "silver", min_spend = 0, multiplier = 1.2 },
  { name = "gold", min_spend = 1000, multiplier = 2 },
]
earn = [{ when = "true", points = "amount * 0.1" }]
""",
    )
    now = utc(2025, 6, 1)
    with db.begin() as connection:
        old, new, vip, lapsed = (add_customer(connection) for _ in range(4))

        def account(customer: int, **values: Any) -> int:
            stamp = {"created_at": now, "updated_at": now}
            statement = insert(ACCOUNT).values(programme="shop", customer_id=customer, **stamp, **values)
            return int(connection.execute(statement.returning(ACCOUNT.c.id)).scalar_one())

        target = account(new, tier="silver")
        middle = account(lapsed, tier="silver")
        account(old, merged_into_id=middle)
        connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == middle).values(merged_into_id=target))
        account(vip, tier="silver", tier_override="gold", override_until=now + dt.timedelta(days=1))
        add_purchase(connection, old, utc(2025, 5, 1), "100.00")  # old -> lapsed -> new: silver, 12
        add_purchase(connection, vip, utc(2025, 5, 1), "100.00")  # gold until tomorrow: 20
    accrue_purchases(db, shop, now=now)
    balances = {row["id"]: row["available"] for row in rows(db, ACCOUNT)}
    assert balances[target] == 12 and balances[middle] == 0
    assert sorted(balances.values()) == [0, 0, 12, 20]
    assert audit(db).ok


# --- the set-based path against the Python path, purchase by purchase ---------------------------------

VARIED = """
[loyalty.programmes.shop]
pending_days = 7
expiry = "end_of_quarter"
expiry_after = "10d"
limits = { per_transaction = 400, per_day = 600, per_customer = 1500 }
tiers = [
  { name = "silver", min_spend = 10000, multiplier = 1.25 },
  { name = "gold", min_spend = 50000, multiplier = 1.5 },
]
partners.fuel = { earn_rate = 0.3, burn_rate = 0.2, price_per_point = 0.25 }
earn = [
  { name = "base", when = "true", points = "amount * 0.03" },
  { name = "shoes bonus", when = "category == 'shoes'", points = 40 },
  { name = "cosmetics x2", when = "category == 'cosmetics'", multiplier = 2 },
  { name = "sku x1.5", when = "sku == 'SKU-7'", multiplier = 1.5, priority = 2 },
  { name = "vip", when = "customer.attr.vip", multiplier = 1.1 },
  { name = "children", when = "customer.score.churn >= 50", points = "customer.attr.children * 3" },
  { name = "regulars", when = "in_segment('regulars') and quantity > 1", points = 15 },
  { name = "A class", when = "customer.abc_class == 'A'", points = "margin / 7" },
  { name = "big basket", when = "amount >= 9000", points = 350, priority = 10, stack = false },
  { name = "gold home", when = "tier == 'gold' and category == 'home'", points = 25, priority = 10 },
  { name = "web", when = "source == 'web' and ordered_at >= date('2025-10-01')", multiplier = 0.5 },
]
"""
CATEGORIES = ["shoes", "cosmetics", "home", "kids", None]
# near local midnight on both DST days of 2025 in Berlin, and around a quarter's end
DAYS = [
    dt.date(2025, 3, 29),
    dt.date(2025, 3, 30),
    dt.date(2025, 3, 31),
    dt.date(2025, 10, 25),
    dt.date(2025, 10, 26),
]


def _setup_customers(connection: Connection, now: dt.datetime) -> list[int]:
    customers = [
        add_customer(connection, attributes={"vip": n % 3 == 0, "children": n % 4}) for n in range(9)
    ]
    connection.execute(insert(SEGMENT).values(name="regulars", rule="x", rule_hash="x"))
    for n, customer in enumerate(customers):
        if n % 2:
            abc = "AB"[n % 4 // 2]
            connection.execute(
                insert(METRICS).values(
                    customer_id=customer, abc_class=abc, as_of=now.date(), refreshed_at=now
                )
            )
        if n % 3 == 1:
            connection.execute(insert(SCORE).values(name="churn", customer_id=customer, points=70))
        if n % 4 == 2:
            member = {"segment": "regulars", "customer_id": customer, "entered_at": now}
            connection.execute(insert(MEMBERSHIP).values(**member))
    # accounts: gold, silver, a gold override that ended, one merged into another
    tiers = {0: {"tier": "gold"}, 1: {"tier": "silver"}, 2: {"tier": "silver", "tier_override": "gold",
             "override_until": now - dt.timedelta(days=1)}}  # fmt: skip
    ids = {}
    for n, values in tiers.items():
        ids[n] = connection.execute(
            insert(ACCOUNT)
            .values(programme="shop", customer_id=customers[n], created_at=now, updated_at=now, **values)
            .returning(ACCOUNT.c.id)
        ).scalar_one()
    connection.execute(
        insert(ACCOUNT).values(
            programme="shop", customer_id=customers[3], merged_into_id=ids[0], created_at=now, updated_at=now
        )
    )
    return customers


def _add_purchases(connection: Connection, customers: list[int], rnd: random.Random, n: int) -> None:
    for _ in range(n):
        day = rnd.choice(DAYS)
        local = dt.datetime.combine(
            day, dt.time(rnd.choice([0, 1, 2, 3, 21, 22, 23]), rnd.choice([0, 30, 59]))
        )
        at = local.replace(tzinfo=ZoneInfo(BERLIN)).astimezone(dt.UTC)
        cents = rnd.choice([1, 99, 3333, 33333, 99999, 250000, 950000, 1234567])
        fields: dict[str, Any] = {
            "category": rnd.choice(CATEGORIES),
            "sku": rnd.choice(["SKU-7", "SKU-1", None]),
            "quantity": Decimal(rnd.choice([1, 2, 3])),
            "margin": (Decimal(cents) / 300).quantize(Decimal("0.01")) if rnd.random() < 0.7 else None,
            "source": rnd.choice(["shop", "shop", "web", "fuel"]),
        }
        add_purchase(connection, rnd.choice(customers), at, Decimal(cents) / 100, **fields)


def _replay(
    db: Engine, shop: Programme, now: dt.datetime, chunk: int, sums: dict[Any, int]
) -> dict[int, tuple[int, list[str], dict[str, int]]]:
    """What the Python path gives each purchase not earned yet, in the accrual's order (chunks by id)."""
    expected: dict[int, tuple[int, list[str], dict[str, int]]] = {}
    with db.connect() as connection:
        earned = set(connection.execute(select(OPERATION.c.purchase_id)).scalars())
        accounts = {row.id: row for row in connection.execute(select(ACCOUNT))}
        by_customer = {row.customer_id: row.id for row in accounts.values()}
        purchases = connection.execute(
            select(PURCHASE).where(PURCHASE.c.refund_of_id.is_(None), PURCHASE.c.amount > 0)
        ).all()
        first = connection.execute(select(func.min(PURCHASE.c.id))).scalar_one()
        todo = sorted(
            (p for p in purchases if p.id not in earned),
            key=lambda p: ((p.id - first) // chunk, p.ordered_at, p.id),
        )
        for p in todo:
            account = accounts.get(by_customer.get(p.customer_id, -1))
            while account is not None and account.merged_into_id is not None:
                account = accounts[account.merged_into_id]
            tier = None
            if account is not None:
                override = account.tier_override is not None and (
                    account.override_until is None or account.override_until > now
                )
                tier = account.tier_override if override else account.tier
            facts = {name: getattr(p, name) for name in ("amount", "category", "sku", "quantity", "margin",
                                                          "currency", "ordered_at", "source")}  # fmt: skip
            full = shop.earn.for_purchase(
                connection, customer_id=p.customer_id, purchase=facts, tier=tier, partner=None,
                today=shop.local_day(now),
            )  # fmt: skip
            key = account.id if account is not None else ("new", p.customer_id)
            day = shop.local_day(p.ordered_at)
            capped = shop.earn.capped(full, earned_today=sums[(key, day)], earned_total=sums[key])
            sums[(key, day)] += capped.points
            sums[key] += capped.points
            names = [item["rule"] for item in capped.explain if "rule" in item]
            cuts = {item["limit"]: item["cut"] for item in capped.explain if "limit" in item}
            expected[p.id] = (capped.points, names, cuts)
    return expected


def test_set_based_accrual_equals_the_python_path(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, VARIED)
    rnd = random.Random(20250330)
    now = utc(2025, 10, 30, 12)
    with db.begin() as connection:
        customers = _setup_customers(connection, now)
        _add_purchases(connection, customers, rnd, 120)
        first_refund_of = connection.execute(select(func.min(PURCHASE.c.id))).scalar_one()
        add_purchase(connection, customers[0], utc(2025, 10, 27), "-5.00", refund_of_id=first_refund_of)
    sums: dict[Any, int] = defaultdict(int)
    expected = _replay(db, shop, now, 17, sums)
    accrue_purchases(db, shop, now=now, chunk=17)
    with db.begin() as connection:  # more purchases, on days that already earned
        _add_purchases(connection, customers, rnd, 80)
    later = now + dt.timedelta(days=2)
    expected_later = _replay(db, shop, later, 29, _rekey(db, sums))
    accrue_purchases(db, shop, now=later, chunk=29)

    expected.update(expected_later)
    with db.connect() as connection:
        got = {
            row.purchase_id: row
            for row in connection.execute(
                select(
                    OPERATION.c.purchase_id,
                    ENTRY.c.points,
                    ENTRY.c.detail,
                    ENTRY.c.bucket,
                    LOT.c.available_at,
                    LOT.c.expires_at,
                    LOT.c.partner,
                )
                .join(ENTRY, ENTRY.c.operation_id == OPERATION.c.id)
                .outerjoin(LOT, LOT.c.id == ENTRY.c.lot_id)
            )
        }
        purchases = {p.id: p for p in connection.execute(select(PURCHASE))}
    assert set(got) == set(expected) and len(got) == 200
    points = {pid: row.points for pid, row in got.items()}
    assert points == {pid: value[0] for pid, value in expected.items()}
    for pid, row in got.items():
        names = [item["rule"] for item in row.detail["rules"] if "rule" in item]
        cuts = {item["limit"]: item["cut"] for item in row.detail["rules"] if "limit" in item}
        assert (names, cuts) == (expected[pid][1], expected[pid][2]), pid
        if row.points:
            ordered_at = purchases[pid].ordered_at
            assert (row.available_at, row.expires_at) == (
                shop.available_at(ordered_at),
                shop.expires_at(ordered_at),
            )
    # the data covers what it should: every rule applied somewhere, every limit cut somewhere
    applied = {name for value in expected.values() for name in value[1]}
    assert applied == {rule.label for rule in shop.earn.purchase_rules}
    assert {limit for value in expected.values() for limit in value[2]} == {
        "per_transaction",
        "per_day",
        "per_customer",
    }
    assert any(row.partner == "fuel" for row in got.values())
    assert len({v[0] for v in expected.values()}) > 30
    # earned_so_far counts what the accrual counted
    with db.connect() as connection:
        for key, total in sums.items():
            if isinstance(key, tuple) and isinstance(key[1], dt.date):
                account, day = key
                assert earned_so_far(connection, shop, account, day) == (total, sums[account])
    assert audit(db).ok


def _rekey(db: Engine, sums: dict[Any, int]) -> dict[Any, int]:
    """Sums keyed by new accounts (created by the first run) under their ids."""
    with db.connect() as connection:
        ids = {row.customer_id: row.id for row in connection.execute(select(ACCOUNT))}
    rekeyed: dict[Any, int] = defaultdict(int)
    for key, value in sums.items():
        if isinstance(key, tuple) and key[0] == "new":
            key = ids[key[1]]
        elif isinstance(key, tuple) and isinstance(key[0], tuple):
            key = (ids[key[0][1]], key[1])
        rekeyed[key] += value
    sums.clear()
    sums.update(rekeyed)
    return sums


# --- crm import purchases ----------------------------------------------------------------------


def test_import_accrues_points_and_hands_refunds_to_the_ledger(db: Engine, tmp_path: Path) -> None:
    shop = programme(tmp_path, SIMPLE)
    with db.begin() as connection:
        add_customer(connection, external_id="C1")
        add_customer(connection, external_id="C2")
    path = tmp_path / "orders.csv"
    path.write_text(
        "order id,customer id,date,amount,refund_of\n"
        "P1,C1,2025-05-01 10:00,1000.00,\n"
        "P2,C2,2025-05-02 10:00,200.00,\n",
        encoding="utf-8",
    )
    now = utc(2025, 6, 1)
    summary = import_purchases(db, path, timezone=BERLIN, now=now, programmes={"shop": shop})
    assert summary.inserted == 2
    assert summary.loyalty["shop"].purchases == 2 and summary.loyalty["shop"].points == 60
    assert summary.as_dict()["loyalty"]["shop"]["points"] == 60
    assert summary.describe()[-1].startswith("loyalty shop: 2 purchases earned 60 points")
    refunds = tmp_path / "refunds.csv"
    refunds.write_text(
        "order id,customer id,date,amount,refund_of\nR1,,2025-05-10 10:00,500.00,P1\n", encoding="utf-8"
    )
    second = import_purchases(db, refunds, timezone=BERLIN, now=now, programmes={"shop": shop})
    accrual = second.loyalty["shop"]
    assert (accrual.purchases, accrual.skipped, len(accrual.refunds), accrual.refunds_applied) == (0, 2, 1, 1)
    assert second.describe()[-1].endswith("1 refunds for the ledger (1 applied)")
    with db.connect() as connection:
        keys = set(connection.execute(select(OPERATION.c.key)).scalars())
    assert keys == {"purchase:P1", "purchase:P2", "refund:R1"}
    third = accrue_purchases(db, shop, now=now)
    assert third.refunds == ()  # the ledger has it now
    assert audit(db).ok


def test_utc_datetime_literal_compares_like_stored_times(db: Engine) -> None:
    """The CASE of calendar expiry compares stored times with bound ones: same text format on SQLite."""
    with db.begin() as connection:
        ann = add_customer(connection)
        add_purchase(connection, ann, utc(2025, 3, 31, 21, 59, 59), "1.00")
        bound = select(func.count()).where(PURCHASE.c.ordered_at < literal_time(utc(2025, 3, 31, 22)))
        assert connection.execute(bound).scalar_one() == 1


def literal_time(at: dt.datetime) -> Any:
    from sqlalchemy import literal

    return literal(at, UtcDateTime())
