"""Imported refunds: simple ones in batches, the rest one by one, both posting what the command posts."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, func, select

from engine.loyalty.batch.accrual import accrue_purchases
from engine.loyalty.batch.refund_batch import refund_imported, refund_in_batches
from engine.loyalty.ledger.redemption import redeem
from engine.loyalty.ledger.refunds import refund
from engine.models.tables import ENTRY, OPERATION
from tests.factories import add_customer, add_purchase, utc
from tests.loyalty.ledger_setup import assert_consistent, buckets, shop_programme


def _shop(db: Engine) -> dict[str, int]:
    """Four customers, each with one order and refunds of different kinds."""
    ids = {}
    with db.begin() as connection:
        for name in ("simple", "twice", "spent", "paid"):
            customer = add_customer(connection, external_id=name)
            order = add_purchase(connection, customer, utc(2027, 3, 1, 10), "2000", external_id=f"O-{name}")
            ids[name] = order
            ids[f"{name}-customer"] = customer
    return ids


def _refund_rows(db: Engine, ids: dict[str, int]) -> list[int]:
    rows = []
    with db.begin() as connection:
        for name, amount, n in (
            ("simple", "500", 1),
            ("twice", "500", 1),
            ("twice", "700", 2),
            ("spent", "2000", 1),
            ("paid", "1000", 1),
        ):
            rows.append(
                add_purchase(
                    connection,
                    ids[f"{name}-customer"],
                    utc(2027, 3, 5),
                    f"-{amount}",
                    external_id=f"R-{name}-{n}",
                    refund_of_id=ids[name],
                )
            )
    return rows


def test_simple_refunds_go_in_a_batch_and_the_rest_one_by_one(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="0")
    ids = _shop(db)
    accrue_purchases(db, shop, now=utc(2027, 3, 2))  # 100 points per order
    redeem(db, shop, key="SPEND", customer="spent", points=90, now=utc(2027, 3, 3))
    redeem(db, shop, key="PAY", customer="paid", points=40, order="O-paid", now=utc(2027, 3, 3))
    rows = _refund_rows(db, ids)
    done, rest = refund_in_batches(db, shop, rows, utc(2027, 3, 6))
    assert done == 1  # only the first: one refund of an order whose own lot holds the 25 points
    assert len(rest) == 4
    assert (
        refund_imported(db, shop, rows, utc(2027, 3, 6)) == 4
    )  # the rest, one by one; the batched one is done
    assert buckets(db, "simple") == {"available": 75, "pending": 0, "held": 0, "debt": 0}
    assert buckets(db, "twice")["available"] == 40  # 25 then 35 back
    assert buckets(db, "spent") == {"available": 0, "pending": 0, "held": 0, "debt": 90}
    assert buckets(db, "paid")["available"] == 30  # 100 - 40 paid - 50 clawed back + 20 returned
    assert refund_imported(db, shop, rows, utc(2027, 3, 7)) == 0  # nothing twice
    assert_consistent(db)


def test_a_batched_refund_is_what_the_command_posts(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="14")
    orders = {}
    with db.begin() as connection:
        for name in ("batched", "command"):
            customer = add_customer(connection, external_id=name)
            orders[name] = add_purchase(
                connection, customer, utc(2027, 3, 1), "1999.99", external_id=f"O-{name}"
            )
    accrue_purchases(db, shop, now=utc(2027, 3, 2))  # floor(99.9995) = 99 points each, pending
    with db.begin() as connection:
        customer = connection.execute(select(func.min(ENTRY.c.account_id))).scalar_one()
        refund_row = add_purchase(
            connection,
            customer,
            utc(2027, 3, 3),
            "-333.33",
            external_id="R-batched",
            refund_of_id=orders["batched"],
        )
    assert refund_in_batches(db, shop, [refund_row], utc(2027, 3, 4)) == (1, [])
    command = refund(
        db, shop, key="refund:R-command", order="O-command", amount=Decimal("333.33"), now=utc(2027, 3, 4)
    )
    assert command.points == -16  # floor(99 x 333.33 / 1999.99)
    assert (
        buckets(db, "batched")
        == buckets(db, "command")
        == {"available": 0, "pending": 83, "held": 0, "debt": 0}
    )
    with db.connect() as connection:
        shapes = {
            name: sorted(
                connection.execute(
                    select(ENTRY.c.kind, ENTRY.c.bucket, ENTRY.c.points, ENTRY.c.amount)
                    .join(OPERATION, OPERATION.c.id == ENTRY.c.operation_id)
                    .where(OPERATION.c.reference == f"O-{name}", OPERATION.c.command == "refund")
                ).all()
            )
            for name in ("batched", "command")
        }
    assert (
        shapes["batched"]
        == shapes["command"]
        == [("clawback", "available", 0, Decimal("-333.33")), ("clawback", "pending", -16, None)]
    )
    # a retry of the batched refund through the command replays it
    again = refund(
        db, shop, key="refund:R-batched", order="O-batched", amount=Decimal("333.33"), now=utc(2027, 3, 5)
    )
    assert again.replayed and again.points == -16
    assert_consistent(db)
