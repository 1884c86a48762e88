"""Manual adjustments, transfers between members and merges of two accounts of one person."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, select

from engine.clock import utcnow
from engine.errors import (
    InsufficientPointsError,
    LoyaltyError,
)
from engine.loyalty.ledger.core import Context, Receipt, run_command, sub_context
from engine.loyalty.ledger.posting import (
    account_row,
    customer_label,
    draw,
    open_holds,
    pending_part,
    record_tier_changes,
    spendable_lots,
)
from engine.loyalty.ledger.redemption import close_hold
from engine.loyalty.programme import Programme
from engine.models import (
    ACCOUNT,
    ADJUST,
    AVAILABLE,
    DEBT,
    LOT,
    MERGE_IN,
    MERGE_OUT,
    PENDING,
    TRANSFER_IN,
    TRANSFER_OUT,
    VOID,
)


def adjust(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    customer: int | str,
    points: int,
    reason: str,
    actor: str,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Receipt:
    """A manual correction by ``actor`` for ``reason``: a new lot if positive, drawn from lots if negative."""
    now = now or utcnow()
    if not points:
        raise LoyaltyError("an adjustment of 0 points changes nothing")
    if not reason.strip() or not actor.strip():
        raise LoyaltyError("an adjustment needs a reason and an actor")
    request = {
        "customer": str(customer),
        "points": points,
        "reason": reason,
        "actor": actor,
        "expires_at": expires_at.isoformat() if expires_at else None,
    }

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        connection, account_id = context.connection, context.accounts[0]
        detail: dict[str, Any] = {"reason": reason, "actor": actor}
        if points > 0:
            lot = context.posting.new_lot(
                account_id,
                points,
                source="adjust",
                earned_at=now,
                available_at=now,
                expires_at=expires_at or programme.expires_at(now),
            )
            context.posting.post(account_id, ADJUST, AVAILABLE, points, lot_id=lot, detail=detail)
            return points, {**detail, "lot": lot}
        available = int(account_row(connection, account_id).available)
        if available < -points:
            raise InsufficientPointsError(
                f"programme {programme.name!r}, customer {customer}", -points, available
            )
        draw(context.posting, account_id, -points, ADJUST, spendable_lots(connection, account_id, now))
        return points, detail

    return run_command(
        engine,
        programme,
        repay=True,
        key=key,
        command=ADJUST,
        request=request,
        customers=[customer],
        body=body,
        now=now,
        columns={"actor": actor, "reason": reason},
    )


def _move_lots(
    context: Context,
    source: int,
    target: int,
    lots: Sequence[Row[Any]],
    points: int | None,
    out_kind: str,
    in_kind: str,
    origin: str,
) -> int:
    """Move points lot by lot, keeping each lot's dates and partner; ``points`` None moves every point."""
    moved = 0
    for lot in lots:
        pending = pending_part(context.connection, lot.id)
        for bucket, room in ((PENDING, pending), (AVAILABLE, int(lot.remaining) - pending)):
            take = room if points is None else min(room, points - moved)
            if take <= 0:
                continue
            out = context.posting.post(source, out_kind, bucket, -take, lot_id=lot.id)
            new = context.posting.new_lot(
                target,
                take,
                source=origin,
                earned_at=lot.earned_at,
                available_at=lot.available_at,
                expires_at=lot.expires_at,
                partner=lot.partner,
                origin_lot_id=lot.id,
            )
            context.posting.post(target, in_kind, bucket, take, lot_id=new, related_id=out)
            moved += take
    return moved


def transfer(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    source: int | str,
    target: int | str,
    points: int,
    now: dt.datetime | None = None,
) -> Receipt:
    """Give ``points`` from one member to another, lot by lot with their expiry dates (``transferable``)."""
    now = now or utcnow()
    if not programme.settings.transferable:
        raise LoyaltyError(f"programme {programme.name!r} does not allow transfers (transferable = false)")
    if points <= 0:
        raise LoyaltyError(f"points to transfer must be positive, got {points}")

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        source_id, target_id = context.accounts
        if source_id == target_id:
            raise LoyaltyError("a transfer needs two different members")
        available = int(account_row(context.connection, source_id).available)
        if available < points:
            raise InsufficientPointsError(
                f"programme {programme.name!r}, customer {source}", points, available
            )
        lots = spendable_lots(context.connection, source_id, now)
        moved = _move_lots(context, source_id, target_id, lots, points, TRANSFER_OUT, TRANSFER_IN, "transfer")
        context.posting.touch(source_id)
        return moved, {"to": customer_label(context.connection, target_id)}

    return run_command(
        engine,
        programme,
        repay=True,
        key=key,
        command="transfer",
        request={"source": str(source), "target": str(target), "points": points},
        customers=[source, target],
        body=body,
        now=now,
    )


def merge(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    source: int | str,
    target: int | str,
    actor: str,
    now: dt.datetime | None = None,
) -> Receipt:
    """Merge the account of ``source`` into ``target`` (one person, two accounts).

    Open holds of ``source`` are voided, then every lot with points left moves
    with its dates (pending stays pending), the debt moves, the higher tier
    is kept, and ``source`` points to ``target`` from then on.
    """
    now = now or utcnow()

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        connection = context.connection
        source_id, target_id = context.accounts
        if source_id == target_id:
            raise LoyaltyError("these two customers already share one account")
        for hold in open_holds(connection, programme.name, source_id):
            close_hold(sub_context(context, f"void:merge:{hold.key}", VOID, source_id), hold, False)
        lots = connection.execute(
            select(LOT).where(LOT.c.account_id == source_id, LOT.c.remaining > 0).order_by(LOT.c.id)
        ).all()
        moved = _move_lots(context, source_id, target_id, lots, None, MERGE_OUT, MERGE_IN, "merge")
        debt = int(account_row(connection, source_id).debt)
        if debt:
            out = context.posting.post(source_id, MERGE_OUT, DEBT, -debt)
            context.posting.post(target_id, MERGE_IN, DEBT, debt, related_id=out)
        tier = _higher_tier(context, source_id, target_id)
        connection.execute(
            ACCOUNT.update().where(ACCOUNT.c.id == source_id).values(merged_into_id=target_id, updated_at=now)
        )
        return moved, {
            "into": customer_label(connection, target_id),
            "debt": debt,
            "tier": tier,
            "actor": actor,
        }

    receipt = run_command(
        engine,
        programme,
        repay=True,
        key=key,
        command="merge",
        request={"source": str(source), "target": str(target)},
        customers=[source, target],
        report=1,
        body=body,
        now=now,
        columns={"actor": actor},
    )
    return receipt


def _higher_tier(context: Context, source_id: int, target_id: int) -> str | None:
    """Keep the higher of the two tiers on the surviving account (recorded as a tier change)."""
    tiers = [tier.name for tier in context.programme.tiers]
    source = account_row(context.connection, source_id).tier
    target = account_row(context.connection, target_id).tier
    if (
        source is None
        or source not in tiers
        or (target in tiers and tiers.index(target) >= tiers.index(source))
    ):
        return str(target) if target is not None else None
    change = {"account_id": target_id, "from_tier": target, "to_tier": source, "reason": "merge"}
    record_tier_changes(context.connection, [{**change, "changed_at": context.now}])
    context.connection.execute(
        ACCOUNT.update().where(ACCOUNT.c.id == target_id).values(tier=source, tier_since=context.now)
    )
    return str(source)
