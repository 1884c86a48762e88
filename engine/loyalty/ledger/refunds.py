"""Refunds: earned points reversed pro rata, spent points given back, never a silent negative balance."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Row, bindparam, func, select

from engine.clock import utcnow
from engine.errors import (
    LoyaltyError,
    NotFoundError,
)
from engine.loyalty.ledger.core import Context, Receipt, run_command
from engine.loyalty.ledger.posting import (
    NewEntry,
    canonical,
    draw,
    give_back_many,
    pending_lots,
    spendable_lots,
    surviving_account,
)
from engine.loyalty.programme import Programme
from engine.models import (
    AVAILABLE,
    CAPTURE,
    CLAWBACK,
    DEBT,
    DEBT_RECORDED,
    EARN,
    ENTRY,
    EXPIRE,
    LOT,
    OPERATION,
    PENDING,
    REDEEM,
    RETURN,
)

log = logging.getLogger("engine.loyalty")


def _order_operations(connection: Connection, programme: str, order: str) -> list[Row[Any]]:
    return list(
        connection.execute(
            select(OPERATION)
            .where(OPERATION.c.programme == programme, OPERATION.c.reference == order)
            .order_by(OPERATION.c.id)
        ).all()
    )


def refund(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    order: str,
    amount: Decimal | None = None,
    now: dt.datetime | None = None,
) -> Receipt:
    """A refund of ``amount`` of ``order`` (None: all that is left of it).

    Reverses the points the order earned pro rata (from their own lot first;
    points already spent are taken by the programme's ``spent_refund`` policy:
    other lots soonest-expiring first, then a recorded debt), and gives back
    pro rata the points spent on the order (into the lots they came from).
    Cumulative: two refunds of half an order reverse exactly what the order earned.
    """
    now = now or utcnow()
    if amount is not None and amount <= 0:
        raise LoyaltyError(f"refund of order {order!r}: the amount refunded must be positive, got {amount}")
    with engine.connect() as connection:
        first = next(iter(_order_operations(connection, programme.name, order)), None)
    if first is None or first.account_id is None:
        raise NotFoundError(f"order of programme {programme.name!r}", order)
    request = {"order": order, "amount": canonical(amount)}

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        operations = _order_operations(context.connection, programme.name, order)  # again, under the lock
        earns = [op for op in operations if op.command == "earn"]
        spends = [op for op in operations if op.command in (REDEEM, CAPTURE)]
        before = sum(
            (
                Decimal(str(op.result.get("detail", {}).get("refunded", "0")))
                for op in operations
                if op.command == "refund"
            ),
            Decimal(0),
        )
        base = next((op.amount for op in earns + spends if op.amount is not None), None)
        if base is None or base <= 0:
            raise LoyaltyError(f"order {order!r}: its amount is unknown, so a refund cannot be pro rata")
        this = base - before if amount is None else amount
        if this <= 0 or before + this > base:
            raise LoyaltyError(f"order {order!r}: {base - before} of {base} is left to refund, {this} asked")
        share = (before + this) / base
        clawed = sum(_claw_back(context, op, share, this) for op in earns)
        returned = sum(_give_back_spent(context, op, share) for op in spends)
        detail = {
            "refunded": str(this),
            "refunded_total": str(before + this),
            "of": str(base),
            "clawed_back": clawed,
            "returned": returned,
        }
        return returned - clawed, detail

    return run_command(
        engine,
        programme,
        key=key,
        command="refund",
        request=request,
        customers=[],
        accounts=[int(first.account_id)],
        body=body,
        now=now,
        columns={"reference": order, "amount": amount},
    )


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _claw_back(context: Context, earn: Row[Any], share: Decimal, refunded: Decimal) -> int:
    """Take back ``share`` of what ``earn`` gave, less what earlier refunds took; returns the points.

    The buckets move with the next posting (:func:`_give_back_spent`, or the end of the command),
    unless points must be drawn from other lots, which need the lots as they are.
    """
    connection, programme = context.connection, context.programme
    entry = connection.execute(_EARNED, {"operation": earn.id}).first()
    if entry is None:
        return 0
    account_id = _survivor(context, int(entry.account_id))
    earned = int(entry.points)
    # what earlier refunds took (clawed back from lots, or recorded as debt); points of the order
    # that expired unused were never the customer's benefit: they are not taken again
    already = -int(entry.clawed) + int(entry.owed)
    owed = max(0, min(earned, _floor(Decimal(earned) * share)) - already + int(entry.expired))
    left = owed
    pieces: list[NewEntry] = []
    if entry.lot_id is not None and entry.lot_account == account_id:
        # its own lot first, wherever its points are (pending or available)
        pending = int(entry.pending)
        for bucket, room in ((PENDING, pending), (AVAILABLE, int(entry.remaining) - pending)):
            take = min(left, room)
            if take > 0:
                pieces.append(
                    NewEntry(account_id, CLAWBACK, bucket, -take, entry.lot_id, related_id=entry.id)
                )
                left -= take
    # the qualifying spend goes down by what was refunded, even when no points move
    last = NewEntry(account_id, CLAWBACK, AVAILABLE, 0, amount=-refunded, related_id=entry.id)
    if left <= 0:
        context.posting.post_many([*pieces, last], defer=True)
        return owed
    context.posting.post_many(pieces)
    if programme.settings.spent_refund == "clawback":
        for lots, bucket in (
            (spendable_lots(connection, account_id, context.now), AVAILABLE),
            (pending_lots(connection, account_id, context.now), PENDING),
        ):
            taken = draw(
                context.posting, account_id, left, CLAWBACK, lots, bucket=bucket, related_id=entry.id
            )
            left -= sum(piece.points for piece in taken)
            if left <= 0:
                break
    debt = [NewEntry(account_id, DEBT_RECORDED, DEBT, left, related_id=entry.id)] if left > 0 else []
    context.posting.post_many([*debt, last], defer=True)
    return owed


def _survivor(context: Context, account_id: int) -> int:
    """The account that holds ``account_id``'s points now (a locked account is its own survivor)."""
    return account_id if account_id in context.locked else surviving_account(context.connection, account_id)


def _given_back(kind: str) -> Any:
    back = ENTRY.alias("back")
    return (
        select(func.coalesce(func.sum(back.c.points), 0))
        .where(back.c.related_id == ENTRY.c.id, back.c.kind == kind)
        .scalar_subquery()
    )


_LOT_ENTRIES = ENTRY.alias("about_lot")
# an order's earn entry, with its lot and what earlier refunds and expiry did to it: one read
_EARNED = (
    select(
        ENTRY.c.id,
        ENTRY.c.account_id,
        ENTRY.c.lot_id,
        ENTRY.c.points,
        LOT.c.account_id.label("lot_account"),
        LOT.c.remaining,
        _given_back(CLAWBACK).label("clawed"),
        _given_back(DEBT_RECORDED).label("owed"),
        select(func.coalesce(func.sum(_LOT_ENTRIES.c.points), 0))
        .where(_LOT_ENTRIES.c.lot_id == ENTRY.c.lot_id, _LOT_ENTRIES.c.kind == EXPIRE)
        .scalar_subquery()
        .label("expired"),
        select(func.coalesce(func.sum(_LOT_ENTRIES.c.points), 0))
        .where(_LOT_ENTRIES.c.lot_id == ENTRY.c.lot_id, _LOT_ENTRIES.c.bucket == PENDING)
        .scalar_subquery()
        .label("pending"),
    )
    .select_from(ENTRY.outerjoin(LOT, LOT.c.id == ENTRY.c.lot_id))
    .where(ENTRY.c.operation_id == bindparam("operation"), ENTRY.c.kind == EARN)
    .order_by(ENTRY.c.id)
    .limit(1)
)
# what a spend took from each lot, with the lot and what refunds gave back of it: one read
_SPENT = (
    select(
        ENTRY.c.id,
        ENTRY.c.lot_id,
        ENTRY.c.points,
        LOT.c.account_id.label("lot_account"),
        LOT.c.earned_at,
        LOT.c.available_at,
        LOT.c.expires_at,
        LOT.c.partner,
        _given_back(RETURN).label("back"),
    )
    .select_from(ENTRY.join(LOT, LOT.c.id == ENTRY.c.lot_id))
    .where(ENTRY.c.operation_id == bindparam("operation"), ENTRY.c.kind == bindparam("kind"))
    .order_by(ENTRY.c.id)
)


def _give_back_spent(context: Context, spend: Row[Any], share: Decimal) -> int:
    """Give back ``share`` of what ``spend`` took, into the lots it came from; returns the points."""
    connection = context.connection
    kind = REDEEM if spend.command == REDEEM else CAPTURE
    found = connection.execute(_SPENT, {"operation": spend.id, "kind": kind}).all()
    pieces = [p for p in found if p.points < 0 or kind == CAPTURE]
    taken = {p.id: abs(int(p.points)) for p in pieces}
    spent = sum(taken.values())
    back = {p.id: int(p.back) for p in pieces}
    owed = min(spent, _floor(Decimal(spent) * share)) - sum(back.values())
    left = owed
    account_id = _survivor(context, int(spend.account_id))
    giving: list[tuple[int, int, int]] = []
    lots: dict[int, Any] = {}
    for piece in reversed(pieces):  # latest-expiring first: the customer keeps the longest-lived points
        room = taken[piece.id] - back[piece.id]
        give = min(left, room)
        if give > 0:
            lot_id = int(piece.lot_id)
            if (
                piece.lot_account != account_id
            ):  # the lot left with a merge: a lot of the survivor, same dates
                lot_id = context.posting.new_lot(
                    account_id,
                    give,
                    source="merge",
                    earned_at=piece.earned_at,
                    available_at=piece.available_at,
                    expires_at=piece.expires_at,
                    partner=piece.partner,
                    origin_lot_id=piece.lot_id,
                )
            giving.append((lot_id, give, int(piece.id)))
            lots[lot_id] = piece
            left -= give
    give_back_many(context.posting, account_id, giving, RETURN, lots=lots)
    return owed
