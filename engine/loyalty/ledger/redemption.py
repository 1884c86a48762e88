"""Spending points: one-phase redemption, or a hold that is captured or voided (or times out)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Row, select

from engine.clock import utcnow
from engine.errors import (
    HoldClosedError,
    InsufficientPointsError,
    LoyaltyError,
    NotFoundError,
)
from engine.loyalty.ledger.core import CENT, Context, Receipt, run_command
from engine.loyalty.ledger.posting import NewEntry, draw, find_operation, give_back_many
from engine.loyalty.programme import Programme
from engine.models import CAPTURE, ENTRY, HELD, HOLD, LOT, OPERATION, REDEEM, VOID


def redeem(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    customer: int | str,
    points: int | None = None,
    reward: str | None = None,
    order: str | None = None,
    order_amount: Decimal | None = None,
    partner: str | None = None,
    hold: bool = False,
    now: dt.datetime | None = None,
) -> Receipt:
    """Spend points for a discount or a reward; with ``hold``, only reserve them until capture or void.

    ``order`` (and its ``order_amount``) name what the points paid for, so a
    refund of the order gives them back pro rata. ``partner`` is where they
    were burnt (partner settlement).
    """
    now = now or utcnow()
    if (points is None) == (reward is None):
        raise LoyaltyError("give the points to spend or a reward, not both")
    wanted = points if points is not None else programme.reward(reward or "")
    if wanted <= 0:
        raise LoyaltyError(f"points to redeem must be positive, got {wanted}")
    if partner is not None and programme.partner(partner) is None:
        raise NotFoundError(
            f"partner of programme {programme.name!r}", partner, list(programme.settings.partners)
        )
    if order_amount is not None and order is None:
        raise LoyaltyError("order_amount needs the order it belongs to")
    command = HOLD if hold else REDEEM
    request = {
        "customer": str(customer),
        "points": wanted,
        "reward": reward,
        "order": order,
        "order_amount": str(order_amount) if order_amount is not None else None,
        "partner": partner,
    }
    expires = now + programme.hold_timeout if hold else None

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        account_id = context.accounts[0]
        available = context.buckets(account_id)["available"]
        if available < wanted:
            raise InsufficientPointsError(
                f"programme {programme.name!r}, customer {customer}", wanted, available
            )
        taken = draw(
            context.posting,
            account_id,
            wanted,
            command,
            context.spendable(account_id),
            then_hold=hold,
            touch=True,
        )
        if (
            sum(piece.points for piece in taken) != wanted
        ):  # the cache and the lots disagree: refuse, roll back
            raise LoyaltyError(
                f"account {account_id}: lots do not cover the cached balance; run crm loyalty audit"
            )
        value = (Decimal(wanted) * programme.point_value).quantize(CENT)
        detail: dict[str, Any] = {
            "value": str(value),
            "currency": programme.currency,
            "lots": [[piece.lot_id, piece.points] for piece in taken],
        }
        if reward is not None:
            detail["reward"] = reward
        if expires is not None:
            detail["hold_expires_at"] = expires.isoformat()
        return wanted, detail

    return run_command(
        engine,
        programme,
        key=key,
        command=command,
        request=request,
        customers=[customer],
        body=body,
        now=now,
        columns={"reference": order, "amount": order_amount, "partner": partner, "expires_at": expires},
    )


def _hold_operation(engine: Engine, programme: Programme, hold_key: str) -> Row[Any]:
    with engine.connect() as connection:
        hold = find_operation(connection, programme.name, hold_key)
    if hold is None or hold.command != HOLD:
        raise NotFoundError(f"hold of programme {programme.name!r}", hold_key)
    return hold


def close_hold(context: Context, hold: Row[Any], capture: bool) -> tuple[int, dict[str, Any]]:
    connection = context.connection
    closing = OPERATION.alias("closing")
    closed_by = select(closing.c.command).where(closing.c.closes_id == hold.id).scalar_subquery()
    # the hold's pieces and whether it was closed, in one read under the lock
    rows = connection.execute(
        select(
            ENTRY.c.id,
            ENTRY.c.lot_id,
            ENTRY.c.bucket,
            ENTRY.c.points,
            LOT.c.available_at,
            LOT.c.expires_at,
            closed_by.label("closed_by"),
        )
        .select_from(
            OPERATION.outerjoin(
                ENTRY, (ENTRY.c.operation_id == OPERATION.c.id) & (ENTRY.c.kind == HOLD)
            ).outerjoin(LOT, LOT.c.id == ENTRY.c.lot_id)
        )
        .where(OPERATION.c.id == hold.id)
        .order_by(ENTRY.c.id)
    ).all()
    closed = rows[0].closed_by if rows else None
    if closed is not None:
        raise HoldClosedError(hold.key, f"already {'captured' if closed == CAPTURE else 'voided'}")
    if capture and hold.expires_at is not None and hold.expires_at <= context.now:
        raise HoldClosedError(hold.key, f"timed out at {hold.expires_at.isoformat()}")
    pieces = [row for row in rows if row.id is not None and row.bucket == HELD]
    account_id = int(hold.account_id)
    kind = CAPTURE if capture else VOID
    context.posting.post_many(
        [NewEntry(account_id, kind, HELD, -p.points, p.lot_id, related_id=p.id) for p in pieces],
        defer=not capture,
    )
    if not capture:
        back = [(int(p.lot_id), int(p.points), int(p.id)) for p in pieces]
        give_back_many(context.posting, account_id, back, VOID, lots={p.lot_id: p for p in pieces})
    context.set_operation(closes_id=hold.id)
    return sum(piece.points for piece in pieces), {"hold": hold.key}


def _close(
    engine: Engine, programme: Programme, key: str, hold_key: str, capture: bool, now: dt.datetime | None
) -> Receipt:
    hold = _hold_operation(engine, programme, hold_key)
    # a capture is the redemption: it carries the order, amount and partner the hold named
    columns = {"reference": hold.reference, "amount": hold.amount, "partner": hold.partner} if capture else {}
    return run_command(
        engine,
        programme,
        key=key,
        command=CAPTURE if capture else VOID,
        request={"hold": hold_key},
        customers=[],
        accounts=[int(hold.account_id)],
        body=lambda context: close_hold(context, hold, capture),
        now=now,
        columns={**columns, "related_id": hold.id},
    )


def capture(
    engine: Engine, programme: Programme, *, key: str, hold_key: str, now: dt.datetime | None = None
) -> Receipt:
    """Spend the points a hold reserved (before its timeout)."""
    return _close(engine, programme, key, hold_key, True, now)


def void(
    engine: Engine, programme: Programme, *, key: str, hold_key: str, now: dt.datetime | None = None
) -> Receipt:
    """Release the points a hold reserved."""
    return _close(engine, programme, key, hold_key, False, now)


def void_expired_holds(engine: Engine, programme: Programme, now: dt.datetime | None = None) -> int:
    """Void every hold past its timeout (key ``void:timeout:<hold key>``); returns how many."""
    now = now or utcnow()
    closing = OPERATION.alias("closing")
    with engine.connect() as connection:
        keys = (
            connection.execute(
                select(OPERATION.c.key)
                .where(
                    OPERATION.c.programme == programme.name,
                    OPERATION.c.command == HOLD,
                    OPERATION.c.expires_at <= now,
                    ~select(closing.c.id).where(closing.c.closes_id == OPERATION.c.id).exists(),
                )
                .order_by(OPERATION.c.id)
            )
            .scalars()
            .all()
        )
    voided = 0
    for hold_key in keys:
        try:
            void(engine, programme, key=f"void:timeout:{hold_key}", hold_key=hold_key, now=now)
            voided += 1
        except HoldClosedError:  # captured or voided meanwhile
            continue
    return voided
