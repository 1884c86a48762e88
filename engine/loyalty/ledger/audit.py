"""``crm loyalty audit``: the cached balances and lot remainders checked against the append-only entries.

Five set-based checks, each one ``GROUP BY`` over the whole ledger:

* every cached bucket of every account equals the sum of its entries;
* no bucket is negative;
* every lot's ``remaining`` equals what entered it minus its allocations
  (the sum of its ``pending`` and ``available`` entries), within ``[0, points]``;
* no lot has a negative ``held`` sum;
* every entry about a lot belongs to the lot's account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, func, or_, select

from engine.loyalty.ledger.posting import customer_label_sql
from engine.models import ACCOUNT, AVAILABLE, BUCKETS, CUSTOMER, ENTRY, HELD, LOT, PENDING


@dataclass(frozen=True)
class AuditProblem:
    """One account or lot whose cache disagrees with its entries."""

    programme: str
    customer: str
    account: int
    what: str
    cached: int
    entries: int


@dataclass
class AuditReport:
    """What ``crm loyalty audit`` found: counts checked, and every problem."""

    accounts: int = 0
    lots: int = 0
    entries: int = 0
    problems: list[AuditProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the ledger is consistent."""
        return not self.problems


def _bucket_sum(bucket: str) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((ENTRY.c.bucket == bucket, ENTRY.c.points), else_=0)), 0)


def audit(engine: Engine, programmes: Iterable[str] | None = None) -> AuditReport:
    """Check every account (of ``programmes``, default all) against its entries."""
    report = AuditReport()
    names = list(programmes) if programmes is not None else None
    label = customer_label_sql()
    sums = (
        select(ENTRY.c.account_id, *[_bucket_sum(b).label(b) for b in BUCKETS], func.count().label("n"))
        .group_by(ENTRY.c.account_id)
        .subquery()
    )
    scope = [ACCOUNT.c.programme.in_(names)] if names is not None else []
    with engine.connect() as connection:
        rows = connection.execute(
            select(
                ACCOUNT.c.id,
                ACCOUNT.c.programme,
                label.label("customer"),
                *[ACCOUNT.c[b].label(f"cached_{b}") for b in BUCKETS],
                *[func.coalesce(sums.c[b], 0).label(f"sum_{b}") for b in BUCKETS],
                func.coalesce(sums.c.n, 0).label("n"),
            )
            .select_from(
                ACCOUNT.join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id).outerjoin(
                    sums, sums.c.account_id == ACCOUNT.c.id
                )
            )
            .where(*scope)
            .execution_options(yield_per=10_000)
        )
        for row in rows:
            report.accounts += 1
            report.entries += int(row.n)
            for bucket in BUCKETS:
                cached, summed = int(getattr(row, f"cached_{bucket}")), int(getattr(row, f"sum_{bucket}"))
                if cached != summed:
                    report.problems.append(
                        AuditProblem(row.programme, row.customer, row.id, f"{bucket} balance", cached, summed)
                    )
                if cached < 0:
                    report.problems.append(
                        AuditProblem(
                            row.programme, row.customer, row.id, f"negative {bucket}", cached, summed
                        )
                    )
        lot_sums = (
            select(
                ENTRY.c.lot_id,
                func.coalesce(
                    func.sum(case((ENTRY.c.bucket.in_([PENDING, AVAILABLE]), ENTRY.c.points), else_=0)), 0
                ).label("left"),
                _bucket_sum(HELD).label("held"),
            )
            .where(ENTRY.c.lot_id.is_not(None))
            .group_by(ENTRY.c.lot_id)
            .subquery()
        )
        left = func.coalesce(lot_sums.c.left, 0)
        held = func.coalesce(lot_sums.c.held, 0)
        lots = select(
            ACCOUNT.c.programme,
            label.label("customer"),
            LOT.c.account_id,
            LOT.c.id,
            LOT.c.points,
            LOT.c.remaining,
            left.label("left"),
            held.label("held"),
        ).select_from(
            LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id)
            .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            .outerjoin(lot_sums, lot_sums.c.lot_id == LOT.c.id)
        )
        report.lots = int(
            connection.execute(
                select(func.count())
                .select_from(LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id))
                .where(*scope)
            ).scalar_one()
        )
        bad = lots.where(
            *scope,
            or_(
                LOT.c.remaining != left,
                LOT.c.remaining < 0,
                LOT.c.remaining > LOT.c.points,
                held < 0,
                LOT.c.points <= 0,
            ),
        )
        for lot in connection.execute(bad):
            if lot.remaining != lot.left:
                what, cached, summed = f"lot {lot.id} remaining", lot.remaining, lot.left
            elif lot.held < 0:
                what, cached, summed = f"lot {lot.id} held", lot.held, lot.held
            else:
                what, cached, summed = f"lot {lot.id} outside [0, {lot.points}]", lot.remaining, lot.left
            report.problems.append(
                AuditProblem(lot.programme, lot.customer, lot.account_id, what, int(cached), int(summed))
            )
        strays = connection.execute(
            select(
                ACCOUNT.c.programme,
                label.label("customer"),
                ENTRY.c.account_id,
                ENTRY.c.id,
                LOT.c.id.label("lot"),
            )
            .select_from(
                ENTRY.join(LOT, LOT.c.id == ENTRY.c.lot_id)
                .join(ACCOUNT, ACCOUNT.c.id == ENTRY.c.account_id)
                .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
            )
            .where(*scope, ENTRY.c.account_id != LOT.c.account_id)
        )
        for stray in strays:
            report.problems.append(
                AuditProblem(
                    stray.programme,
                    stray.customer,
                    stray.account_id,
                    f"entry {stray.id} is about lot {stray.lot} of another account",
                    0,
                    0,
                )
            )
    return report
