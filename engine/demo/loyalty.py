"""The demo's loyalty day: the shop's purchases earn points, a till spends some, the nightly jobs run.

Everything goes through the same functions a shop would use: the set-based
accrual of imported purchases and their refunds, then a few dozen till
operations (redemptions, a two-phase hold, a partner's purchase and burn, a
refund of an order paid with points, a referral bonus), then the daily
batch (activate, expire, tiers, events), then the audit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from sqlalchemy import Engine, func, select

from engine.config import Config
from engine.errors import IdempotencyConflictError, LoyaltyError
from engine.loyalty.batch import AccrualResult, BatchResult, accrue_purchases, refund_imported, run_batch
from engine.loyalty.finance import LiabilityReport, liability
from engine.loyalty.ledger import (
    AuditReport,
    Balance,
    audit,
    balance,
    capture,
    earn_event,
    earn_purchase,
    redeem,
    refund,
)
from engine.loyalty.programme import Programme
from engine.models import ACCOUNT, CUSTOMER


@dataclass(frozen=True)
class DemoLoyalty:
    """What the loyalty part of the demo did and found."""

    programme: str
    accrual: AccrualResult
    refunds: int
    till: list[str]
    batch: BatchResult
    members: list[Balance]
    tiers: dict[str, int]
    liability: LiabilityReport
    audit: AuditReport


def _richest(engine: Engine, programme: Programme, count: int) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(CUSTOMER.c.external_id)
                .join(ACCOUNT, ACCOUNT.c.customer_id == CUSTOMER.c.id)
                .where(ACCOUNT.c.programme == programme.name, CUSTOMER.c.external_id.is_not(None))
                .order_by(ACCOUNT.c.available.desc(), ACCOUNT.c.id)
                .limit(count)
            ).scalars()
        )


def _till(engine: Engine, programme: Programme, now: dt.datetime) -> list[str]:
    """A till's day: every kind of operation a POS sends, through the ledger's own commands.

    The richest members spend; a refused operation (a small demo may lack the
    points) is shown as refused, as a till would show it.
    """
    lines: list[str] = []
    members = _richest(engine, programme, 24)
    day = f"{programme.local_day(now):%Y%m%d}"
    spent = 0
    for n, member in enumerate(members[4:]):
        order = f"DEMO-{day}-{n:03d}"
        spent += _attempt(
            lines,
            partial(
                redeem,
                engine,
                programme,
                key=order,
                customer=member,
                points=300,
                order=order,
                order_amount=Decimal(2400),
                now=now,
            ),
        )
    lines.append(f"{spent} redemptions of 300 points paid part of an order")
    if len(members) < 4:
        return lines
    first, second, third, fourth = members[:4]
    hold = f"HOLD-{day}"
    if _attempt(
        lines,
        lambda: redeem(engine, programme, key=hold, customer=first, reward="coffee", hold=True, now=now),
    ):
        capture(engine, programme, key=f"{hold}-capture", hold_key=hold, now=now)
        lines.append(f"{first}: a coffee reserved, then captured (two-phase)")
    if spent:
        refunded = refund(
            engine,
            programme,
            key=f"RET-DEMO-{day}-000",
            order=f"DEMO-{day}-000",
            amount=Decimal(1200),
            now=now,
        )
        lines.append(
            f"{refunded.customer}: half an order paid with points refunded: {refunded.points:+} points"
        )
    if programme.settings.partners:
        partner = sorted(programme.settings.partners)[0]
        earned = earn_purchase(
            engine,
            programme,
            order=f"{partner.upper()}-{day}-1",
            customer=second,
            amount=Decimal(850),
            source=partner,
            now=now,
        )
        lines.append(f"partner {partner}: {second} earned {earned.points} points there")
        if _attempt(
            lines,
            lambda: redeem(
                engine,
                programme,
                key=f"{partner.upper()}-{day}-2",
                customer=third,
                points=100,
                partner=partner,
                now=now,
            ),
        ):
            lines.append(f"partner {partner}: {third} burnt 100 points there")
    if programme.earn.has_event("referral"):
        bonus = earn_event(
            engine, programme, key=f"referral-{fourth}-{day}", customer=fourth, event="referral", now=now
        )
        lines.append(f"{fourth}: referral bonus {bonus.points} points (pending {bonus.pending})")
    return lines


def _attempt(lines: list[str], command: Callable[[], object]) -> int:
    """1 when the command went through, 0 (and a line saying why) when the ledger refused it."""
    try:
        command()
    except (LoyaltyError, IdempotencyConflictError) as exc:
        lines.append(f"refused: {exc}")
        return 0
    return 1


def _tiers(engine: Engine, programme: Programme) -> dict[str, int]:
    label = func.coalesce(ACCOUNT.c.tier, "-")
    with engine.connect() as connection:
        rows = connection.execute(
            select(label, func.count()).where(ACCOUNT.c.programme == programme.name).group_by(label)
        ).all()
    order = {tier.name: n for n, tier in enumerate(programme.tiers)}
    counts = sorted(
        ((str(name), int(count)) for name, count in rows), key=lambda item: order.get(item[0], -1)
    )
    return dict(counts)


def run_demo_loyalty(engine: Engine, config: Config, day: dt.date) -> DemoLoyalty | None:
    """Run the first programme of ``config`` over the demo shop on ``day``; None without one."""
    if not config.programmes:
        return None
    programme = next(iter(config.programmes.values()))
    night = programme.day_start(day) + dt.timedelta(
        hours=programme.settings.batch_at.hour, minutes=programme.settings.batch_at.minute
    )
    now = programme.day_start(day) + dt.timedelta(hours=12)
    # the night: the day's purchase file is imported, then the daily jobs run; the till works at noon
    accrual = accrue_purchases(engine, programme, now=night - dt.timedelta(minutes=30))
    refunds = refund_imported(engine, programme, accrual.refunds, now=night - dt.timedelta(minutes=30))
    accrual.refunds_applied = refunds
    batch = run_batch(engine, programme, now=night)
    till = _till(engine, programme, now)
    members = [balance(engine, programme, member, now=now) for member in _richest(engine, programme, 5)]
    return DemoLoyalty(
        programme=programme.name,
        accrual=accrual,
        refunds=refunds,
        till=till,
        batch=batch,
        members=members,
        tiers=_tiers(engine, programme),
        liability=liability(
            engine, {programme.name: programme}, as_of=now + dt.timedelta(seconds=1), now=now
        ),
        audit=audit(engine),
    )
