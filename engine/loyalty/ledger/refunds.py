"""Refunds: earned points reversed pro rata, spent points given back, never a silent negative balance."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from sqlalchemy import Connection, Engine, Row, func, select

from engine.clock import utcnow
from engine.errors import (
    LoyaltyError,
    NotFoundError,
)
from engine.loyalty.ledger.core import Context, Receipt, run_command
from engine.loyalty.ledger.posting import (
    canonical,
    draw,
    give_back,
    lot_row,
    lots_of_operation,
    pending_lots,
    pending_part,
    returned_to,
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
    """Take back ``share`` of what ``earn`` gave, less what earlier refunds took; returns the points."""
    connection, programme = context.connection, context.programme
    entry = connection.execute(
        select(ENTRY).where(ENTRY.c.operation_id == earn.id, ENTRY.c.kind == EARN).order_by(ENTRY.c.id)
    ).first()
    if entry is None:
        return 0
    account_id = surviving_account(connection, int(entry.account_id))
    earned = int(entry.points)
    # what earlier refunds took: clawed back from lots, or recorded as debt
    already = -sum(returned_to(connection, [entry.id], CLAWBACK).values())
    already += sum(returned_to(connection, [entry.id], DEBT_RECORDED).values())
    # points of the order that expired unused were never the customer's benefit: they are not taken again
    expired = 0
    if entry.lot_id is not None:
        expired = -int(
            connection.execute(
                select(func.coalesce(func.sum(ENTRY.c.points), 0)).where(
                    ENTRY.c.lot_id == entry.lot_id, ENTRY.c.kind == EXPIRE
                )
            ).scalar_one()
        )
    owed = max(0, min(earned, _floor(Decimal(earned) * share)) - already - expired)
    own = []
    if entry.lot_id is not None:
        lot = connection.execute(select(LOT).where(LOT.c.id == entry.lot_id)).one()
        if lot.account_id == account_id:
            own = [lot]
    pieces = []
    left = owed
    for lot in own:  # its own lot first, wherever its points are (pending or available)
        pending = pending_part(connection, lot.id)
        for bucket, room in ((PENDING, pending), (AVAILABLE, int(lot.remaining) - pending)):
            take = min(left, room)
            if take > 0:
                context.posting.post(account_id, CLAWBACK, bucket, -take, lot_id=lot.id, related_id=entry.id)
                pieces.append(take)
                left -= take
    if left > 0 and programme.settings.spent_refund == "clawback":
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
    if left > 0:
        context.posting.post(account_id, DEBT_RECORDED, DEBT, left, related_id=entry.id)
    # the qualifying spend goes down by what was refunded, even when no points move
    context.posting.post(account_id, CLAWBACK, AVAILABLE, 0, amount=-refunded, related_id=entry.id)
    return owed


def _give_back_spent(context: Context, spend: Row[Any], share: Decimal) -> int:
    """Give back ``share`` of what ``spend`` took, into the lots it came from; returns the points."""
    connection = context.connection
    kind = REDEEM if spend.command == REDEEM else CAPTURE
    pieces = [p for p in lots_of_operation(connection, spend.id, kind) if p.points < 0 or kind == CAPTURE]
    taken = {p.id: abs(int(p.points)) for p in pieces}
    spent = sum(taken.values())
    back = returned_to(connection, list(taken), RETURN)
    owed = min(spent, _floor(Decimal(spent) * share)) - sum(back.values())
    left = owed
    for piece in reversed(pieces):  # latest-expiring first: the customer keeps the longest-lived points
        room = taken[piece.id] - back.get(piece.id, 0)
        give = min(left, room)
        if give > 0:
            account_id = surviving_account(connection, int(spend.account_id))
            lot = lot_row(connection, piece.lot_id)
            lot_id = int(lot.id)
            if lot.account_id != account_id:  # the lot left with a merge: a lot of the survivor, same dates
                lot_id = context.posting.new_lot(
                    account_id,
                    give,
                    source="merge",
                    earned_at=lot.earned_at,
                    available_at=lot.available_at,
                    expires_at=lot.expires_at,
                    partner=lot.partner,
                    origin_lot_id=lot.id,
                )
            give_back(context.posting, account_id, lot_id, give, RETURN, related_id=piece.id)
            left -= give
    return owed
