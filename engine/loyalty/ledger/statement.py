"""What a member has and how it got there: the balance and the statement of one account.

Both only read. A statement lists every entry with the operation that posted
it (key, command, actor, reason), the rules and the config version that gave
earned points, and the running balance, so each point can be explained.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from engine.clock import utcnow
from engine.errors import NotFoundError
from engine.loyalty.ledger.core import bring_up_to_date
from engine.loyalty.ledger.posting import customer_id_of, customer_label, open_holds
from engine.loyalty.programme import Programme
from engine.models import ACCOUNT, AVAILABLE, ENTRY, LOT, OPERATION, PENDING

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LotView:
    """A lot with points left."""

    lot: int
    points: int
    remaining: int
    source: str
    partner: str | None
    earned_at: dt.datetime
    available_at: dt.datetime
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class Balance:
    """A member's buckets, tier, discount and lots."""

    programme: str
    customer: str
    account: int
    available: int
    pending: int
    held: int
    debt: int
    value: Decimal
    currency: str
    tier: str | None
    tier_override_until: dt.datetime | None
    discount_percent: Decimal
    lots: list[LotView] = field(default_factory=list)
    open_holds: list[dict[str, Any]] = field(default_factory=list)
    merged_into: str | None = None

    @property
    def next_expiry(self) -> LotView | None:
        """The lot that expires first, if any does."""
        dated = [lot for lot in self.lots if lot.expires_at is not None]
        return min(dated, key=lambda lot: lot.expires_at or dt.datetime.max) if dated else None


@dataclass(frozen=True)
class StatementLine:
    """One entry of the ledger, explained."""

    entry: int
    posted_at: dt.datetime
    key: str
    command: str
    kind: str
    bucket: str
    points: int
    balance: int
    lot: int | None
    amount: Decimal | None
    explanation: str
    config_version: str


@dataclass(frozen=True)
class Statement:
    """The entries of one account in a time range, with the balance before and after."""

    programme: str
    customer: str
    account: int
    opening: int
    closing: int
    lines: list[StatementLine]


def _account(connection: Connection, programme: Programme, customer: int | str) -> Any:
    customer_id = customer_id_of(connection, customer)
    row = connection.execute(
        select(ACCOUNT).where(ACCOUNT.c.programme == programme.name, ACCOUNT.c.customer_id == customer_id)
    ).first()
    if row is None:
        raise NotFoundError(f"member of programme {programme.name!r}", str(customer))
    return row


def balance(
    engine: Engine, programme: Programme, customer: int | str, *, now: dt.datetime | None = None
) -> Balance:
    """The member's balance now: points whose return window has ended are available at once.

    When lots are due (out of the return window, past their expiry) the
    account is brought up to date first (:func:`bring_up_to_date`), as any
    ledger command does, so the till offers exactly what ``redeem`` accepts.
    ``value`` is the available points in money; pending points are apart.
    """
    now = now or utcnow()
    with engine.connect() as connection:
        found = _account(connection, programme, customer)
    if found.merged_into_id is None:  # a merged account holds nothing any more
        bring_up_to_date(engine, programme, int(found.id), now)
    with engine.connect() as connection:
        account = _account(connection, programme, customer)
        merged_into = customer_label(connection, account.merged_into_id) if account.merged_into_id else None
        lots = [
            LotView(
                row.id,
                row.points,
                row.remaining,
                row.source,
                row.partner,
                row.earned_at,
                row.available_at,
                row.expires_at,
            )
            for row in connection.execute(
                select(LOT)
                .where(LOT.c.account_id == account.id, LOT.c.remaining > 0)
                .order_by(LOT.c.expires_at.is_(None), LOT.c.expires_at, LOT.c.available_at, LOT.c.id)
            )
        ]
        holds = [
            {
                "key": hold.key,
                "points": int(hold.result.get("points", 0)),
                "expires_at": hold.expires_at.isoformat() if hold.expires_at else None,
            }
            for hold in open_holds(connection, programme.name, account.id)
        ]
        label = customer_label(connection, account.id)
    override = account.tier_override is not None and (
        account.override_until is None or account.override_until > now
    )
    tier = account.tier_override if override else account.tier
    discount = programme.tier(tier).discount_percent if tier else Decimal(0)
    return Balance(
        programme=programme.name,
        customer=label,
        account=int(account.id),
        available=int(account.available),
        pending=int(account.pending),
        held=int(account.held),
        debt=int(account.debt),
        value=(Decimal(int(account.available)) * programme.point_value).quantize(CENT),
        currency=programme.currency,
        tier=tier,
        tier_override_until=account.override_until if override else None,
        discount_percent=discount,
        lots=lots,
        open_holds=holds,
        merged_into=merged_into,
    )


def available_points(
    engine: Engine, programme: Programme, customer_ids: Iterable[int], *, now: dt.datetime | None = None
) -> dict[int, int]:
    """The points each member among ``customer_ids`` can spend now in ``programme`` (non-members left out).

    As :func:`balance`: accounts with lots due are brought up to date first.
    """
    now = now or utcnow()
    wanted = sorted(set(customer_ids))
    if not wanted:
        return {}
    members = select(ACCOUNT.c.id, ACCOUNT.c.customer_id).where(
        ACCOUNT.c.programme == programme.name,
        ACCOUNT.c.customer_id.in_(wanted),
        ACCOUNT.c.merged_into_id.is_(None),
    )
    with engine.connect() as connection:
        accounts = connection.execute(members).all()
    for account in accounts:
        bring_up_to_date(engine, programme, int(account.id), now)
    with engine.connect() as connection:
        rows = connection.execute(
            select(ACCOUNT.c.customer_id, ACCOUNT.c.available).where(
                ACCOUNT.c.id.in_([int(account.id) for account in accounts])
            )
        ).all()
    return {int(row.customer_id): int(row.available) for row in rows}


def _explain(row: Any) -> str:
    detail = row.detail or {}
    parts = []
    if row.command == "earn":
        for item in detail.get("rules", []):
            if isinstance(item, dict):
                parts.append(", ".join(f"{k} {v}" for k, v in item.items()))
        if detail.get("event"):
            parts.insert(0, f"event {detail['event']}")
    if row.actor:
        parts.append(f"by {row.actor}")
    if row.reason:
        parts.append(row.reason)
    if row.reference and row.command != "earn":
        parts.append(f"order {row.reference}")
    return "; ".join(parts)


def statement(
    engine: Engine,
    programme: Programme,
    customer: int | str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Statement:
    """Every entry of the member's account (available and pending points) between ``since`` and ``until``.

    A statement up to now first brings the account up to date (:func:`bring_up_to_date`): the
    points whose return window ended show as activated.
    """
    now = utcnow()
    if until is None or until >= now:
        with engine.connect() as connection:
            found = _account(connection, programme, customer)
        if found.merged_into_id is None:
            bring_up_to_date(engine, programme, int(found.id), now)
    with engine.connect() as connection:
        account = _account(connection, programme, customer)
        rows = connection.execute(
            select(
                ENTRY.c.id,
                ENTRY.c.posted_at,
                ENTRY.c.kind,
                ENTRY.c.bucket,
                ENTRY.c.points,
                ENTRY.c.lot_id,
                ENTRY.c.amount,
                ENTRY.c.detail,
                OPERATION.c.key,
                OPERATION.c.command,
                OPERATION.c.actor,
                OPERATION.c.reason,
                OPERATION.c.reference,
                OPERATION.c.config_version,
            )
            .join(OPERATION, OPERATION.c.id == ENTRY.c.operation_id)
            .where(ENTRY.c.account_id == account.id)
            .order_by(ENTRY.c.id)
            .execution_options(yield_per=5_000)
        )
        balance_now, opening, lines = 0, 0, []
        for row in rows:
            counted = row.bucket in (AVAILABLE, PENDING)
            if since is not None and row.posted_at < since:
                balance_now += row.points if counted else 0
                opening = balance_now
                continue
            if until is not None and row.posted_at >= until:
                break
            balance_now += row.points if counted else 0
            if row.points == 0 and row.amount is None:
                continue
            lines.append(
                StatementLine(
                    entry=row.id,
                    posted_at=row.posted_at,
                    key=row.key,
                    command=row.command,
                    kind=row.kind,
                    bucket=row.bucket,
                    points=row.points,
                    balance=balance_now,
                    lot=row.lot_id,
                    amount=row.amount,
                    explanation=_explain(row),
                    config_version=row.config_version,
                )
            )
        label = customer_label(connection, account.id)
    return Statement(programme.name, label, int(account.id), opening, balance_now, lines)


__all__ = ["Balance", "LotView", "Statement", "StatementLine", "balance", "statement"]
