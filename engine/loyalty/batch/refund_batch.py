"""Imported refunds in batches: the common case (the order's own lot holds the points) in a few statements.

A refund imported with ``crm import purchases`` whose order earned in the
programme, was never refunded or paid with points before, and whose own lot
still holds every point the refund takes back, posts exactly what
:func:`engine.loyalty.ledger.refunds.refund` would post for it (a ``clawback``
entry on the lot and one carrying the refunded amount, under an operation
keyed ``refund:<refund id>``), but a chunk of such refunds is written with a
handful of statements instead of two dozen per refund. Everything else (two
refunds of one order, points already spent, orders paid with points, merged
accounts) goes through the one-by-one command, which handles every case.

The arithmetic is the command's own: ``floor(earned x refunded / order amount)``
in Decimal. The stored result carries the account's buckets after its batch.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    func,
    insert,
    select,
    update,
)

from engine.clock import utcnow
from engine.db import write_transaction
from engine.errors import IdempotencyConflictError, LoyaltyError
from engine.loyalty.ledger import Receipt, canonical, customer_label_sql, lock_accounts, refund, request_hash
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    AVAILABLE,
    CLAWBACK,
    CUSTOMER,
    EARN,
    ENTRY,
    LOT,
    OPERATION,
    PENDING,
    PURCHASE,
)

log = logging.getLogger("engine.loyalty")


def refund_in_batches(
    engine: Engine, programme: Programme, refund_ids: Sequence[int], now: dt.datetime, *, chunk: int = 5_000
) -> tuple[int, list[int]]:
    """Post the simple refunds among ``refund_ids``; returns how many, and the ids left for the command."""
    done, rest = 0, []
    ids = list(refund_ids)
    for start in range(0, len(ids), chunk):
        with write_transaction(engine) as connection:
            posted, left = _chunk(connection, programme, ids[start : start + chunk], now)
        done += posted
        rest.extend(left)
    return done, rest


def refund_imported(
    engine: Engine, programme: Programme, purchase_ids: Sequence[int], now: dt.datetime | None = None
) -> int:
    """Refunds from ``crm import purchases``: each refund row reverses its order (key ``refund:<id>``).

    The simple ones go in batches (:func:`refund_in_batches`), the
    others one by one through :func:`refund`. A refund of an order the
    programme never saw changes nothing. Returns how many were applied.
    """
    now = now or utcnow()
    applied, rest = refund_in_batches(engine, programme, purchase_ids, now)
    original = PURCHASE.alias("original")
    with engine.connect() as connection:
        rows = connection.execute(
            select(PURCHASE.c.external_id, PURCHASE.c.amount, original.c.external_id.label("order"))
            .join(original, original.c.id == PURCHASE.c.refund_of_id)
            .where(PURCHASE.c.id.in_(rest))
            .order_by(PURCHASE.c.ordered_at, PURCHASE.c.id)
        ).all()
        known = set(
            connection.execute(
                select(OPERATION.c.reference).where(
                    OPERATION.c.programme == programme.name,
                    OPERATION.c.reference.in_([row.order for row in rows]),
                )
            ).scalars()
        )
    for row in rows:
        if row.order not in known:
            continue
        key = f"refund:{row.external_id}"
        try:
            amount = abs(Decimal(row.amount))
            done = refund(engine, programme, key=key, order=row.order, amount=amount, now=now)
            applied += 0 if done.replayed else 1
        except (LoyaltyError, IdempotencyConflictError) as exc:  # e.g. refunds over the order: left to see
            log.warning("loyalty %s: refund %s not applied: %s", programme.name, row.external_id, exc)
    return applied


def _candidates(connection: Connection, programme: Programme, ids: list[int], now: dt.datetime) -> list[Any]:
    refund, order = PURCHASE.alias("refund"), PURCHASE.alias("original")
    earn_op = OPERATION.alias("earn_op")
    other = OPERATION.alias("other")
    held_entry = ENTRY.alias("pending_entry")
    pending = (
        select(func.coalesce(func.sum(held_entry.c.points), 0))
        .where(held_entry.c.lot_id == LOT.c.id, held_entry.c.bucket == PENDING)
        .correlate(LOT)
        .scalar_subquery()
    )
    query = (
        select(
            refund.c.id.label("refund_id"),
            refund.c.external_id.label("refund_ref"),
            refund.c.amount.label("refund_amount"),
            order.c.external_id.label("order_ref"),
            earn_op.c.amount.label("base"),
            earn_op.c.account_id,
            ENTRY.c.id.label("earn_entry"),
            ENTRY.c.points.label("earned"),
            LOT.c.id.label("lot_id"),
            LOT.c.remaining,
            pending.label("pending"),
            customer_label_sql().label("customer"),
        )
        .select_from(
            refund.join(order, order.c.id == refund.c.refund_of_id)
            .join(
                earn_op,
                and_(
                    earn_op.c.programme == programme.name,
                    earn_op.c.reference == order.c.external_id,
                    earn_op.c.command == EARN,
                ),
            )
            .join(ENTRY, and_(ENTRY.c.operation_id == earn_op.c.id, ENTRY.c.kind == EARN))
            .join(LOT, LOT.c.id == ENTRY.c.lot_id)
            .join(ACCOUNT, ACCOUNT.c.id == earn_op.c.account_id)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
        )
        .where(
            refund.c.id.in_(ids),
            ACCOUNT.c.merged_into_id.is_(None),
            LOT.c.account_id == earn_op.c.account_id,
            or_expires(now),
            ~select(other.c.id)
            .where(
                other.c.programme == programme.name,
                other.c.reference == order.c.external_id,
                other.c.id != earn_op.c.id,
            )
            .exists(),
        )
        .order_by(refund.c.id)
    )
    return list(connection.execute(query))


def or_expires(now: dt.datetime) -> Any:
    """The lot has not expired."""
    return (LOT.c.expires_at.is_(None)) | (LOT.c.expires_at > now)


def _chunk(
    connection: Connection, programme: Programme, ids: list[int], now: dt.datetime
) -> tuple[int, list[int]]:
    rows = _candidates(connection, programme, ids, now)
    lock_accounts(connection, {int(row.account_id) for row in rows})
    rows = _candidates(connection, programme, ids, now)  # again, under the locks
    per_order = Counter(row.order_ref for row in rows)
    simple = []
    for row in rows:
        refunded, base = abs(Decimal(row.refund_amount)), Decimal(row.base)
        if per_order[row.order_ref] != 1 or base <= 0 or refunded > base:
            continue
        points = int((Decimal(row.earned) * (refunded / base)).to_integral_value(rounding=ROUND_FLOOR))
        points = min(points, int(row.earned))
        pending = int(row.pending)
        if points > int(row.remaining) or (0 < pending < int(row.remaining)):
            continue
        simple.append((row, refunded, base, points, PENDING if pending > 0 else AVAILABLE))
    chosen = {row.refund_id for row, *_ in simple}
    if not simple:
        return 0, [i for i in ids if i not in chosen]
    operations = [
        {
            "programme": programme.name,
            "key": f"refund:{row.refund_ref}",
            "command": "refund",
            "request_hash": request_hash("refund", {"order": row.order_ref, "amount": canonical(refunded)}),
            "account_id": row.account_id,
            "reference": row.order_ref,
            "amount": refunded,
            "config_version": programme.config_version,
            "result": {},
            "created_at": now,
        }
        for row, refunded, *_ in simple
    ]
    connection.execute(insert(OPERATION), operations)
    keys = [op["key"] for op in operations]
    op_ids: dict[str, int] = dict(
        connection.execute(
            select(OPERATION.c.key, OPERATION.c.id).where(
                OPERATION.c.programme == programme.name, OPERATION.c.key.in_(keys)
            )
        ).all()
    )
    entries = []
    for row, refunded, _base, points, bucket in simple:
        operation = op_ids[f"refund:{row.refund_ref}"]
        common = {
            "operation_id": operation,
            "account_id": row.account_id,
            "kind": CLAWBACK,
            "related_id": row.earn_entry,
            "detail": None,
            "posted_at": now,
        }
        if points:
            entries.append(
                {**common, "lot_id": row.lot_id, "bucket": bucket, "points": -points, "amount": None}
            )
        entries.append({**common, "lot_id": None, "bucket": AVAILABLE, "points": 0, "amount": -refunded})
    connection.execute(insert(ENTRY), entries)
    taken = [{"lot": row.lot_id, "taken": points} for row, _r, _b, points, _k in simple if points]
    if taken:
        connection.execute(
            update(LOT)
            .where(LOT.c.id == bindparam("lot"))
            .values(remaining=LOT.c.remaining - bindparam("taken")),
            taken,
        )
    per_account: dict[tuple[int, str], int] = {}
    for row, _r, _b, points, bucket in simple:
        per_account[(int(row.account_id), bucket)] = (
            per_account.get((int(row.account_id), bucket), 0) + points
        )
    for bucket in (PENDING, AVAILABLE):
        changes = [{"account": a, "delta": p} for (a, b), p in per_account.items() if b == bucket and p]
        if changes:
            column = ACCOUNT.c[bucket]
            connection.execute(
                update(ACCOUNT)
                .where(ACCOUNT.c.id == bindparam("account"))
                .values({column: column - bindparam("delta"), ACCOUNT.c.updated_at: now}),
                changes,
            )
    _store_results(connection, programme, simple, op_ids)
    return len(simple), [i for i in ids if i not in chosen]


def _store_results(
    connection: Connection, programme: Programme, simple: list[Any], op_ids: dict[str, int]
) -> None:
    accounts = {int(row.account_id) for row, *_ in simple}
    buckets = {row.id: row for row in connection.execute(select(ACCOUNT).where(ACCOUNT.c.id.in_(accounts)))}
    results = []
    for row, refunded, base, points, _bucket in simple:
        account = buckets[int(row.account_id)]
        key = f"refund:{row.refund_ref}"
        receipt = Receipt(
            programme=programme.name,
            key=key,
            command="refund",
            customer=str(row.customer),
            points=-points,
            available=int(account.available),
            pending=int(account.pending),
            held=int(account.held),
            debt=int(account.debt),
            detail={
                "refunded": str(refunded),
                "refunded_total": str(refunded),
                "of": str(base),
                "clawed_back": points,
                "returned": 0,
                "batch": True,
            },
        )
        stored = asdict(receipt)
        stored.pop("replayed")
        results.append({"operation": op_ids[key], "result": {**stored, "operation": op_ids[key]}})
    connection.execute(
        update(OPERATION).where(OPERATION.c.id == bindparam("operation")).values(result=bindparam("result")),
        results,
    )
