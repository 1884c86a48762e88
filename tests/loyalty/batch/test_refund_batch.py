"""Imported refunds in chunks post, row for row, what the command ``refund`` posts one by one.

Two identical shops (customers and orders prefixed ``S-`` and ``C-``) live
through the same history: purchases imported and accrued, spends, holds,
earlier refunds, a merge. Then the same refund rows are imported: the ``S``
shop's go through :func:`refund_imported` (in chunks of a few refunds, so an
order's refunds land in different chunks), the ``C`` shop's through
:func:`refund` one by one, in the order the ledger takes them. Every account's
buckets, lots, operations and entries must be the same, up to ids.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select

from engine.errors import LoyaltyError
from engine.loyalty.batch.accrual import accrue_purchases
from engine.loyalty.batch.refund_batch import refund_imported, refund_in_batches
from engine.loyalty.ledger import capture, merge, redeem, refund
from engine.loyalty.programme import Programme
from engine.models.tables import ACCOUNT, CUSTOMER, ENTRY, LOT, OPERATION, PURCHASE
from tests.factories import add_customer, add_purchase, utc
from tests.loyalty.ledger_setup import assert_consistent, shop_programme

NOW = utc(2027, 3, 20, 12)

# (when, what, arguments): the history both shops live through, in time order
HISTORY: list[tuple[dt.datetime, str, tuple[Any, ...]]] = [
    # expired: earned early in 2026, partly spent, the lot past its date when the refund comes
    (utc(2026, 1, 10), "buy", ("expired", "O-expired", "2000")),
    (utc(2026, 6, 1), "redeem", ("expired", "X-expired", 30, None)),
    # paid-expired: an order paid with points of a lot that has expired since
    (utc(2026, 1, 5), "buy", ("paidold", "O-paidold-earn", "2000")),
    (utc(2026, 12, 20), "buy", ("paidold", "O-paidold", "2000")),
    (utc(2026, 12, 21), "redeem", ("paidold", "X-paidold", 60, "O-paidold")),
    (utc(2026, 12, 1), "buy", ("paid", "O-paid-earn", "1000")),
    (utc(2027, 1, 10), "buy", ("paid", "O-paid-earn2", "1000")),
    (utc(2027, 1, 20), "buy", ("repay", "O-repay-a", "2000")),
    (utc(2027, 2, 1), "buy", ("expired", "O-expired-other", "1000")),
    (utc(2027, 2, 1), "buy", ("partly", "O-partly-1", "1000")),
    (utc(2027, 2, 10), "redeem", ("repay", "X-repay", 100, None)),
    (utc(2027, 2, 20), "buy", ("spent", "O-spent-extra", "3000")),
    (utc(2027, 3, 1), "buy", ("simple", "O-simple", "2000")),
    (utc(2027, 3, 1), "buy", ("twice", "O-twice", "2000")),
    (utc(2027, 3, 1), "buy", ("partly", "O-partly-2", "2000")),
    (utc(2027, 3, 1), "buy", ("spent", "O-spent", "2000")),
    (utc(2027, 3, 1), "buy", ("paid", "O-paid", "2000")),
    (utc(2027, 3, 1), "buy", ("over", "O-over", "1000")),
    (utc(2027, 3, 1), "buy", ("over", "O-over-2", "1000")),
    (utc(2027, 3, 1), "buy", ("captured", "O-captured-earn", "3000")),
    (utc(2027, 3, 1), "buy", ("repay", "O-repay-b", "1000")),
    (utc(2027, 3, 1), "buy", ("merged", "O-merged", "2000")),
    (utc(2027, 3, 1), "buy", ("survivor", "O-survivor", "2000")),
    (utc(2027, 3, 2), "buy", ("repay", "O-repay-c", "2000")),
    (utc(2027, 3, 2), "buy", ("captured", "O-captured", "1000")),
    (utc(2027, 3, 5), "redeem", ("paid", "X-paid", 80, "O-paid")),
    (utc(2027, 3, 5), "refund", ("repay", "O-repay-a", None)),  # a debt before the import
    (utc(2027, 3, 10), "buy", ("partly", "O-partly-3", "1000")),
    (utc(2027, 3, 12), "buy", ("spent", "O-spent-late", "2000")),
    (utc(2027, 3, 15), "buy", ("pending", "O-pending", "2000")),
    (utc(2027, 3, 16), "redeem", ("partly", "X-partly", 120, None)),
    (utc(2027, 3, 16), "redeem", ("spent", "X-spent", 250, None)),
    (utc(2027, 3, 16), "hold", ("captured", "X-captured", 150, "O-captured")),
    (utc(2027, 3, 16), "merge", ("merged", "survivor")),
]

# (order, amount, when): the refund rows of the import
REFUNDS = [
    ("O-simple", "500", utc(2027, 3, 18)),
    ("O-pending", "600", utc(2027, 3, 18)),
    ("O-partly-2", "2000", utc(2027, 3, 18)),
    ("O-spent", "2000", utc(2027, 3, 18)),
    ("O-twice", "500", utc(2027, 3, 18)),
    ("O-twice", "700", utc(2027, 3, 19)),
    ("O-twice", "800", utc(2027, 3, 19, 1)),
    ("O-over", "600", utc(2027, 3, 18)),
    ("O-over", "600", utc(2027, 3, 19)),  # more than is left: refused
    ("O-over-2", "1500", utc(2027, 3, 18)),  # more than the order: refused
    ("O-expired", "2000", utc(2027, 3, 18)),
    ("O-paid", "1000", utc(2027, 3, 18)),
    ("O-paidold", "2000", utc(2027, 3, 18)),
    ("O-captured", "500", utc(2027, 3, 18)),
    ("O-repay-b", "500", utc(2027, 3, 18)),
    ("O-merged", "1000", utc(2027, 3, 18)),  # a merged account: the command's
    ("O-survivor", "1000", utc(2027, 3, 17)),
    ("O-unknown", "100", utc(2027, 3, 18)),  # an order the programme never saw
]


def _live(db: Engine, shop: Programme, prefix: str) -> tuple[list[int], dict[str, int]]:
    """The shop's history, then its refund rows; returns their purchase ids and the orders' ids."""
    p = f"{prefix}-"
    customers: dict[str, int] = {}
    orders: dict[str, int] = {}
    with db.begin() as connection:
        for name in sorted({args[0] for _, what, args in HISTORY if what == "buy"} | {"unknown"}):
            customers[name] = add_customer(connection, external_id=p + name)
        # an order the programme never saw: nothing to earn on it
        orders[p + "O-unknown"] = add_purchase(
            connection, customers["unknown"], utc(2027, 3, 1), "0", external_id=p + "O-unknown"
        )
    for when, what, args in sorted(HISTORY, key=lambda step: step[0]):
        if what == "buy":
            name, order, amount = args
            with db.begin() as connection:
                orders[p + order] = add_purchase(
                    connection, customers[name], when, amount, external_id=p + order
                )
            accrue_purchases(db, shop, now=when + dt.timedelta(minutes=1))
        elif what in ("redeem", "hold"):
            name, key, points, order = args
            redeem(
                db, shop, key=p + key, customer=p + name, points=points,
                order=p + order if order else None, hold=what == "hold", now=when,
            )  # fmt: skip
            if what == "hold":
                capture(
                    db, shop, key=p + key + "-capture", hold_key=p + key, now=when + dt.timedelta(minutes=1)
                )
        elif what == "refund":
            name, order, amount = args
            refund(db, shop, key=p + "early-" + order, order=p + order, amount=amount, now=when)
        else:
            source, target = args
            merge(db, shop, key=p + "merge", source=p + source, target=p + target, actor="test", now=when)
    rows = []
    with db.begin() as connection:
        for n, (order, amount, when) in enumerate(REFUNDS):
            name = next((args[0] for _, w, args in HISTORY if w == "buy" and args[1] == order), "unknown")
            rows.append(
                add_purchase(
                    connection, customers[name], when, f"-{amount}",
                    external_id=f"{p}R{n}", refund_of_id=orders[p + order],
                )
            )  # fmt: skip
    return rows, orders


def _one_by_one(db: Engine, shop: Programme, rows: list[int]) -> int:
    """What the import did before: the command for each refund row, oldest first."""
    original = PURCHASE.alias("original")
    with db.connect() as connection:
        refunds = connection.execute(
            select(PURCHASE.c.external_id, PURCHASE.c.amount, original.c.external_id.label("order"))
            .join(original, original.c.id == PURCHASE.c.refund_of_id)
            .where(PURCHASE.c.id.in_(rows))
            .order_by(PURCHASE.c.ordered_at, PURCHASE.c.id)
        ).all()
        known = set(connection.execute(select(OPERATION.c.reference)).scalars())
    applied = 0
    for row in refunds:
        if row.order not in known:
            continue
        try:
            done = refund(
                db, shop, key=f"refund:{row.external_id}", order=row.order, amount=abs(row.amount), now=NOW
            )
            applied += not done.replayed
        except LoyaltyError:
            pass
    return applied


def _ledger(db: Engine, prefix: str) -> dict[str, Any]:
    """Every account of the shop: buckets, lots, operations and entries, ids replaced by positions."""
    p = f"{prefix}-"
    with db.connect() as connection:
        accounts = connection.execute(
            select(ACCOUNT, CUSTOMER.c.external_id)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            .where(CUSTOMER.c.external_id.like(p + "%"))
            .order_by(CUSTOMER.c.external_id)
        ).all()
        ids = [a.id for a in accounts]
        lots = connection.execute(select(LOT).where(LOT.c.account_id.in_(ids)).order_by(LOT.c.id)).all()
        operations = connection.execute(
            select(OPERATION).where(OPERATION.c.account_id.in_(ids)).order_by(OPERATION.c.id)
        ).all()
        entries = connection.execute(
            select(ENTRY).where(ENTRY.c.account_id.in_(ids)).order_by(ENTRY.c.account_id, ENTRY.c.id)
        ).all()
    lot_at = {lot.id: f"lot{n}" for n, lot in enumerate(lots)}
    entry_at = {entry.id: f"entry{n}" for n, entry in enumerate(entries)}
    operation_at = {
        op.id: f"op{n}" for n, op in enumerate(sorted(operations, key=lambda op: (op.account_id, op.id)))
    }
    account_at = {a.id: a.external_id.removeprefix(p) for a in accounts}

    def ids(key: str, value: Any) -> Any:
        if key == "lot":
            return lot_at.get(value)
        if key == "lots":
            return [[lot_at.get(lot), points] for lot, points in value]
        return plain(value)

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: ids(k, v) for k, v in value.items() if k != "operation"}
        if isinstance(value, str):
            value = value.replace(p, "")
            value = re.sub(r"^(activate|expire):(\d+)", lambda m: f"{m[1]}:{lot_at.get(int(m[2]))}", value)
            return re.sub(r"^repay:\d+:\d+$", "repay", value)
        return value

    return {
        "accounts": [
            (account_at[a.id], a.pending, a.available, a.held, a.debt, account_at.get(a.merged_into_id))
            for a in accounts
        ],
        "lots": [
            (
                lot_at[lot.id],
                account_at[lot.account_id],
                lot.source,
                lot.points,
                lot.remaining,
                lot.earned_at,
                lot.available_at,
                lot.expires_at,
            )
            for lot in lots
        ],
        "operations": sorted(
            (
                operation_at[op.id],
                account_at[op.account_id],
                op.command,
                plain(op.key),
                op.reference and plain(op.reference),
                op.amount,
                plain(op.result),
            )
            for op in operations
        ),
        "entries": [
            (
                entry_at[e.id],
                operation_at.get(e.operation_id),
                account_at[e.account_id],
                lot_at.get(e.lot_id),
                e.kind,
                e.bucket,
                e.points,
                e.amount,
                entry_at.get(e.related_id, e.related_id and "elsewhere"),
            )
            for e in entries
        ],
    }


@pytest.mark.parametrize("policy", ["clawback", "debt"])
def test_refunds_in_chunks_post_what_the_command_posts(db: Engine, write_config, policy: str) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, spent_refund=f'"{policy}"')
    chunked, _ = _live(db, shop, "S")
    command, _ = _live(db, shop, "C")
    assert _ledger(db, "S") == _ledger(db, "C")  # the same history

    applied, left = refund_in_batches(db, shop, chunked, NOW, chunk=4)
    assert [row.order for row in left] == ["S-O-merged"]  # an account merged away: the command's
    assert applied == 14  # all the others but the two refused and the unknown order
    assert refund_imported(db, shop, chunked, NOW, chunk=4) == 1  # the one left; the rest replayed
    assert _one_by_one(db, shop, command) == 15

    assert _ledger(db, "S") == _ledger(db, "C")
    assert_consistent(db)
    # imported again: nothing new
    before = _ledger(db, "S")
    assert refund_imported(db, shop, chunked, NOW + dt.timedelta(days=1), chunk=5) == 0
    assert _ledger(db, "S") == before


def test_the_cases_post_what_they_should(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, spent_refund='"clawback"')
    rows, _ = _live(db, shop, "S")
    assert refund_imported(db, shop, rows, NOW) == 15
    with db.connect() as connection:
        kinds = dict(
            connection.execute(
                select(OPERATION.c.reference, OPERATION.c.result)
                .where(OPERATION.c.command == "refund", OPERATION.c.key.like("refund:%"))
                .order_by(OPERATION.c.id)
            ).all()
        )
    detail = {order.removeprefix("S-"): result["detail"] for order, result in kinds.items()}
    assert detail["O-simple"]["clawed_back"] == 25
    assert detail["O-twice"]["refunded_total"] == "2000.00" and detail["O-twice"]["clawed_back"] == 40
    assert detail["O-paid"]["returned"] == 40
    assert detail["O-paidold"]["returned"] == 60
    assert detail["O-expired"]["clawed_back"] == 30  # 100 earned, 70 expired unused
    assert "O-over-2" not in detail
    assert detail["O-over"]["refunded_total"] == "600.00"
    assert_consistent(db)


def test_refund_amounts_are_decimal(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    shop = shop_programme(write_config, pending_days="14")
    with db.begin() as connection:
        customer = add_customer(connection, external_id="c")
        order = add_purchase(connection, customer, utc(2027, 3, 1), "1999.99", external_id="O-c")
    accrue_purchases(db, shop, now=utc(2027, 3, 2))  # floor(99.9995) = 99 points, pending
    with db.begin() as connection:
        row = add_purchase(
            connection, customer, utc(2027, 3, 3), "-333.33", external_id="R-c", refund_of_id=order
        )
    assert refund_imported(db, shop, [row], utc(2027, 3, 4)) == 1
    with db.connect() as connection:
        entries = sorted(
            connection.execute(
                select(ENTRY.c.kind, ENTRY.c.bucket, ENTRY.c.points, ENTRY.c.amount)
                .join(OPERATION, OPERATION.c.id == ENTRY.c.operation_id)
                .where(OPERATION.c.command == "refund")
            ).all()
        )
    assert entries == [("clawback", "available", 0, Decimal("-333.33")), ("clawback", "pending", -16, None)]
    again = refund(db, shop, key="refund:R-c", order="O-c", amount=Decimal("333.33"), now=utc(2027, 3, 5))
    assert again.replayed and again.points == -16  # the command replays what the chunk posted
    assert_consistent(db)
