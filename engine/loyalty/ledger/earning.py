"""Earning: points for a purchase (from the POS) or an event, by the programme's earn rules.

For a purchase the key is the order's id, and the operation's key is
``purchase:<order>``: the same order earns once, whether it reaches the
ledger from the POS or from ``crm import purchases``
(:mod:`~engine.loyalty.batch.accrual`). The purchase is recorded if the POS reports
it first, so metrics see it too.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, select

from engine.clock import utcnow
from engine.errors import (
    LoyaltyError,
)
from engine.loyalty.ledger.core import Context, Receipt, effective_tier, run_command
from engine.loyalty.ledger.posting import NewEntry, canonical
from engine.loyalty.programme import EARNING_SOURCES, Programme
from engine.models import AVAILABLE, EARN, EXPIRE, LOT, PENDING, PURCHASE
from engine.sql import insert_ignoring


def earned_so_far(
    connection: Connection, programme: Programme, account_id: int, day: dt.date
) -> tuple[int, int]:
    """(points earned on the programme's local ``day``, points earned in total) by ``account_id``.

    Counted as the set-based accrual counts them: the ``earn`` entries of lots
    from purchases and events, that is the points of those lots (each is
    filled by exactly one earn entry of its points); the day is the local day
    (``programme.zone``) of the lot's ``earned_at``.
    """
    start, end = programme.day_start(day), programme.day_start(day + dt.timedelta(days=1))
    in_day = sa.and_(LOT.c.earned_at >= start, LOT.c.earned_at < end)
    query = select(
        sa.func.coalesce(sa.func.sum(sa.case((in_day, LOT.c.points), else_=0)), 0),
        sa.func.coalesce(sa.func.sum(LOT.c.points), 0),
    ).where(LOT.c.account_id == account_id, LOT.c.source.in_(EARNING_SOURCES))
    today, total = connection.execute(query).one()
    return int(today), int(total)


def _new_lot_and_earn(
    context: Context,
    account_id: int,
    points: int,
    *,
    source: str,
    earned_at: dt.datetime,
    amount: Decimal | None,
    partner: str | None,
    detail: dict[str, Any],
) -> int | None:
    """Post an earn entry for ``points`` (and the qualifying ``amount``): a new lot when points > 0."""
    programme = context.programme
    available_at = programme.available_at(earned_at)
    if points <= 0:
        zero = NewEntry(account_id, EARN, AVAILABLE, 0, amount=amount, detail=detail)
        context.posting.post_many([zero], touch=True)
        return None
    expires_at = programme.expires_at(earned_at)
    lot_id = context.posting.new_lot(
        account_id,
        points,
        source=source,
        earned_at=earned_at,
        available_at=available_at,
        expires_at=expires_at,
        partner=partner,
        filled=True,
    )
    bucket = PENDING if available_at > context.now else AVAILABLE
    earn = NewEntry(account_id, EARN, bucket, points, lot_id, amount=amount, detail=detail, moves_lot=False)
    [entry] = context.posting.post_many([earn], touch=True)
    if expires_at is not None and expires_at <= context.now:  # a purchase reported after its points' lifetime
        context.posting.post(account_id, EXPIRE, bucket, -points, lot_id=lot_id, related_id=entry)
    return lot_id


def _earned_so_far(context: Context, account_id: int, day: dt.date) -> tuple[int, int]:
    """:func:`earned_so_far`, read only when the programme limits points per day or per customer."""
    limits = context.programme.settings.limits
    if limits.per_day is None and limits.per_customer is None:
        return 0, 0
    return earned_so_far(context.connection, context.programme, account_id, day)


def earn_purchase(
    engine: Engine,
    programme: Programme,
    *,
    order: str,
    customer: int | str,
    amount: Decimal,
    ordered_at: dt.datetime | None = None,
    category: str | None = None,
    sku: str | None = None,
    quantity: Decimal = Decimal(1),
    margin: Decimal | None = None,
    source: str | None = None,
    now: dt.datetime | None = None,
) -> Receipt:
    """Points for a purchase (``order`` is the POS transaction id); the purchase is recorded if new."""
    now = now or utcnow()
    given_at = ordered_at
    ordered_at = ordered_at or now
    if amount <= 0:
        raise LoyaltyError(
            f"order {order!r}: a purchase amount must be positive, got {amount} (refunds: refund)"
        )
    facts = {
        "amount": amount,
        "category": category,
        "sku": sku,
        "quantity": quantity,
        "margin": margin,
        "currency": programme.currency,
        "ordered_at": ordered_at,
        "source": source,
    }
    request = {
        "order": order,
        "customer": str(customer),
        **{k: canonical(v) for k, v in facts.items() if v is not None and k != "ordered_at"},
        "ordered_at": canonical(given_at),
    }

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        connection, account_id = context.connection, context.accounts[0]
        account = context.account(account_id)
        purchase_id = _record_purchase(connection, order, int(account.customer_id), facts, now)
        partner = source if programme.partner(source) is not None else None
        earned = programme.earn.for_purchase(
            connection,
            customer_id=int(account.customer_id),
            purchase=facts,
            tier=effective_tier(account, now),
            partner=partner,
            today=programme.local_day(now),
        )
        today, total = _earned_so_far(context, account_id, programme.local_day(ordered_at))
        earned = programme.earn.capped(earned, earned_today=today, earned_total=total)
        detail = {"rules": list(earned.explain), "config_version": programme.config_version}
        lot = _new_lot_and_earn(
            context,
            account_id,
            earned.points,
            source="purchase",
            earned_at=ordered_at,
            amount=amount,
            partner=partner,
            detail=detail,
        )
        context.set_operation(purchase_id=purchase_id)
        return earned.points, {
            **detail,
            "lot": lot,
            "pending_until": _pending_until(programme, ordered_at, now),
        }

    return run_command(
        engine,
        programme,
        repay=True,
        key=f"purchase:{order}",
        command="earn",
        request=request,
        customers=[customer],
        body=body,
        now=now,
        columns={"reference": order, "amount": amount, "partner": _partner_of(programme, source)},
    )


def _partner_of(programme: Programme, source: str | None) -> str | None:
    return source if programme.partner(source) is not None else None


def _pending_until(programme: Programme, earned_at: dt.datetime, now: dt.datetime) -> str | None:
    available_at = programme.available_at(earned_at)
    return available_at.isoformat() if available_at > now else None


def _record_purchase(
    connection: Connection, order: str, customer_id: int, facts: dict[str, Any], now: dt.datetime
) -> int:
    """The purchase row of ``order``, inserted when the POS reports it first (one statement then)."""
    values = {k: v for k, v in facts.items() if v is not None}
    values["source"] = values.get("source") or "loyalty"
    inserted = connection.execute(
        insert_ignoring(connection, PURCHASE, index_elements=["external_id"])
        .values(external_id=order, customer_id=customer_id, created_at=now, **values)
        .returning(PURCHASE.c.id)
    ).scalar()
    if inserted is not None:
        return int(inserted)
    row = connection.execute(
        select(PURCHASE.c.id, PURCHASE.c.customer_id).where(PURCHASE.c.external_id == order)
    ).one()
    if row.customer_id != customer_id:
        raise LoyaltyError(f"order {order!r} was recorded for another customer")
    return int(row.id)


def earn_event(
    engine: Engine,
    programme: Programme,
    *,
    key: str,
    customer: int | str,
    event: str,
    now: dt.datetime | None = None,
) -> Receipt:
    """Points for an event (birthday, signup, referral or a custom one) by the programme's event rules."""
    now = now or utcnow()
    if not programme.earn.has_event(event):
        raise LoyaltyError(f"programme {programme.name!r} has no earn rule for event {event!r}")

    def body(context: Context) -> tuple[int, dict[str, Any]]:
        connection, account_id = context.connection, context.accounts[0]
        account = context.account(account_id)
        earned = programme.earn.for_event(
            connection, customer_id=int(account.customer_id), event=event, today=programme.local_day(now)
        )
        today, total = _earned_so_far(context, account_id, programme.local_day(now))
        earned = programme.earn.capped(earned, earned_today=today, earned_total=total)
        detail = {"event": event, "rules": list(earned.explain), "config_version": programme.config_version}
        lot = _new_lot_and_earn(
            context,
            account_id,
            earned.points,
            source="event",
            earned_at=now,
            amount=None,
            partner=None,
            detail=detail,
        )
        return earned.points, {**detail, "lot": lot}

    return run_command(
        engine,
        programme,
        repay=True,
        key=key,
        command="earn",
        request={"customer": str(customer), "event": event},
        customers=[customer],
        body=body,
        now=now,
        columns={"reference": event},
    )
