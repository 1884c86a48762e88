"""The ledger against a model of it: random command sequences, on SQLite and PostgreSQL.

A Hypothesis state machine runs random sequences of earn (purchase, event),
redeem, hold then capture or void, refund (of an earned order or of an order
paid with points, whole or in part), time passing with settlement (activation,
expiry, timed-out holds), transfer, merge, adjust and replays of earlier keys
(same content: the stored receipt; other content: a conflict). Beside the
database it keeps its own model of every lot (pending, available and held
points, dates) and debt, written from the rules in the docstrings of
``engine/models/loyalty.py`` and the ledger modules, so after every step it
can compare, exactly:

* every account's cached buckets, and the buckets the receipt reported;
* every lot: owner, points, dates, remaining, pending and held part;
* the net points each kind of entry moved (earned, adjusted, returned,
  redeemed, captured, expired, clawed back, recorded as debt, moved);

and check the invariants: the audit is clean, no bucket is negative, a lot's
remaining lies in [0, points] and its held points are not negative, remaining
+ held never exceeds the lot, an entry about a lot is on the lot's own
account, an account's pending + available is what its lots hold, and an
account merged away holds nothing. A refused command posts nothing.

The minimal tests at the end pin down ledger bugs the machine found.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, Engine, case, delete, func, select

from engine.db.engines import write_transaction
from engine.errors import (
    HoldClosedError,
    IdempotencyConflictError,
    InsufficientPointsError,
    LoyaltyError,
    NotFoundError,
)
from engine.loyalty.ledger.account_lock import lock_accounts
from engine.loyalty.ledger.audit import audit
from engine.loyalty.ledger.core import Receipt, repay_debts, settle
from engine.loyalty.ledger.earning import earn_event, earn_purchase
from engine.loyalty.ledger.member_moves import adjust, merge, transfer
from engine.loyalty.ledger.redemption import capture, redeem, void, void_expired_holds
from engine.loyalty.ledger.refunds import refund
from engine.loyalty.programme.definition import Programme
from engine.models import LoyaltyTierChange, Purchase
from engine.models.loyalty import ACTIVATE, AVAILABLE, HELD, PENDING
from engine.models.tables import ACCOUNT, CUSTOMER, ENTRY, LOT, OPERATION
from tests.factories import utc
from tests.loyalty.ledger_setup import assert_consistent, buckets, customers, shop_programme

TIER_CHANGE = LoyaltyTierChange.__table__  # type: ignore[attr-defined]
PURCHASE = Purchase.__table__  # type: ignore[attr-defined]

#: one custom event earns a fixed 7 points (prepended to the shop's inline earn array)
REVIEW_RULE = '[ { name = "review", on = "review", points = 7 },'
REVIEW_POINTS = 7
EXPIRY = dt.timedelta(days=30)
HOLD_TIMEOUT = dt.timedelta(minutes=15)
START = utc(2027, 1, 4, 9)
SEED, SEED_EXPIRES = 300, START + dt.timedelta(days=365)
MEMBERS = ("ann", "bob", "cyd", "dee")
#: programme variants: (pending_days, spent_refund)
VARIANTS = ((0, "clawback"), (14, "clawback"), (0, "debt"), (14, "debt"))
GAPS = st.sampled_from(
    [dt.timedelta(0)] * 3
    + [dt.timedelta(minutes=1), dt.timedelta(minutes=20)] * 2
    + [dt.timedelta(days=1), dt.timedelta(days=6), dt.timedelta(days=15), dt.timedelta(days=31)]
)
MEMBER = st.sampled_from(MEMBERS)
CENTS = st.one_of(st.integers(1, 3000), st.integers(3000, 600_000))
#: how many points a redemption or transfer asks, given what is available (known under the lock)
HOW = st.sampled_from(["share", "share", "fixed", "all", "too many"])
#: how often each step ran (and was refused), printed by the test (pytest -s)
STEPS: Counter[str] = Counter()


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _money(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def _wanted(how: str, number: int, available: int) -> int:
    """``share``: number % of what is available; ``fixed``: number; ``all``; ``too many``: one more."""
    return {
        "share": max(1, available * number // 100),
        "fixed": number,
        "all": max(available, 1),
        "too many": available + 1,
    }[how]


# -- the model -----------------------------------------------------------------------------------


class Refused(Exception):
    """The model says the ledger must refuse this command with ``error``."""

    def __init__(self, error: type[Exception]) -> None:
        super().__init__(error.__name__)
        self.error = error


@dataclass
class MLot:
    """A lot as the model sees it: its points per bucket and its dates."""

    seq: int
    account: str
    points: int
    earned_at: dt.datetime
    available_at: dt.datetime
    expires_at: dt.datetime | None
    pending: int = 0
    available: int = 0
    held: int = 0
    had_pending: bool = False  # a positive pending entry was posted on it
    expired: int = 0  # points that expired on it
    activated: bool = False  # an activate entry was posted on it
    id: int | None = None  # the database's id, once matched

    @property
    def remaining(self) -> int:
        return self.pending + self.available

    def order(self) -> tuple[Any, ...]:
        """Spend order: soonest-expiring first, never-expiring last, then available_at, then id."""
        return (self.expires_at is None, self.expires_at or START, self.available_at, self.seq)


@dataclass
class MAccount:
    """A member's account: its debt (its other buckets are its lots') and where it was merged."""

    debt: int = 0
    merged_into: str | None = None


@dataclass
class MEarn:
    """An earn on an order: what a refund of the order claws back from."""

    account: str
    points: int
    lot: MLot | None
    clawed: int = 0  # clawed back or recorded as debt by refunds so far


@dataclass
class MSpend:
    """A redemption or capture on an order: what a refund of the order gives back."""

    account: str
    pieces: list[list[Any]]  # [lot, taken, returned so far], in posting order


@dataclass
class MHold:
    """A two-phase redemption: the points it holds per lot until capture or void."""

    key: str
    account: str
    pieces: list[tuple[MLot, int]]
    expires_at: dt.datetime
    order: str | None
    amount: Decimal | None
    closed: bool = False


@dataclass
class MOrder:
    """The operations that name an order, and how much of it was refunded."""

    first_account: str  # the account of the first operation naming the order
    earn_amount: Decimal | None = None
    spend_amount: Decimal | None = None
    earns: list[MEarn] = field(default_factory=list)
    spends: list[MSpend] = field(default_factory=list)
    refunded: Decimal = Decimal(0)

    @property
    def operations(self) -> list[MEarn | MSpend]:
        return [*self.earns, *self.spends]

    @property
    def base(self) -> Decimal | None:
        return self.earn_amount if self.earn_amount is not None else self.spend_amount


class Model:
    """What the ledger should hold, lot by lot, written from its documented rules."""

    def __init__(self, pending_days: int, policy: str) -> None:
        self.pending_days = pending_days
        self.policy = policy
        self.now = START
        self.lots: list[MLot] = []
        self.accounts: dict[str, MAccount] = {}
        self.orders: dict[str, MOrder] = {}
        self.holds: dict[str, MHold] = {}
        self.flow: Counter[str] = Counter()  # net points moved per entry kind (debt counts negative)
        self.seq = 0

    # accounts and lots
    def surviving(self, name: str) -> str:
        while (into := self.accounts[name].merged_into) is not None:
            name = into
        return name

    def open(self, name: str) -> str:
        self.accounts.setdefault(name, MAccount())
        return self.surviving(name)

    def lots_of(self, account: str) -> list[MLot]:
        return [lot for lot in self.lots if lot.account == account]

    def bucket(self, account: str, bucket: str) -> int:
        if bucket == "debt":
            return self.accounts[account].debt
        return sum(getattr(lot, bucket) for lot in self.lots_of(account))

    def buckets(self, account: str) -> dict[str, int]:
        return {b: self.bucket(account, b) for b in ("available", "pending", "held", "debt")}

    def new_lot(
        self,
        account: str,
        points: int,
        earned_at: dt.datetime,
        available_at: dt.datetime,
        expires_at: dt.datetime | None,
    ) -> MLot:
        self.seq += 1
        lot = MLot(self.seq, account, points, earned_at, available_at, expires_at)
        self.lots.append(lot)
        return lot

    def put(self, lot: MLot, bucket: str, points: int, kind: str) -> None:
        setattr(lot, bucket, getattr(lot, bucket) + points)
        assert getattr(lot, bucket) >= 0, (lot, bucket)
        self.flow[kind] += points
        if bucket == PENDING and points > 0:
            lot.had_pending = True
        if kind == "expire":
            lot.expired -= points

    def spendable(self, account: str) -> list[MLot]:
        return sorted(
            (
                lot
                for lot in self.lots_of(account)
                if lot.remaining > 0
                and lot.available_at <= self.now
                and (lot.expires_at is None or lot.expires_at > self.now)
            ),
            key=MLot.order,
        )

    def pending_lots(self, account: str) -> list[MLot]:
        return sorted(
            (lot for lot in self.lots_of(account) if lot.remaining > 0 and lot.available_at > self.now),
            key=MLot.order,
        )

    def draw(
        self, points: int, kind: str, lots: list[MLot], bucket: str = AVAILABLE, hold: bool = False
    ) -> list[tuple[MLot, int]]:
        taken = []
        left = points
        for lot in lots:
            if left <= 0:
                break
            take = min(left, lot.remaining)
            if take <= 0:
                continue
            self.put(lot, bucket, -take, kind)
            if hold:
                self.put(lot, HELD, take, kind)
            taken.append((lot, take))
            left -= take
        return taken

    def give_back(self, account: str, lot: MLot, points: int, kind: str) -> None:
        if lot.account != account:
            # the lot left with a merge: the points go back to the surviving account, with the lot's dates
            STEPS[f"{kind} after a merge"] += 1
            lot = self.new_lot(account, points, lot.earned_at, lot.available_at, lot.expires_at)
        bucket = PENDING if lot.available_at > self.now else AVAILABLE
        self.put(lot, bucket, points, kind)
        if lot.expires_at is not None and lot.expires_at <= self.now:
            self.put(lot, bucket, -points, "expire")

    # what every command does around its body
    def settle(self, account: str) -> None:
        activated = False
        for lot in self.lots_of(account):
            if lot.available_at <= self.now and lot.had_pending and not lot.activated:
                moving = lot.pending
                if moving > 0:
                    self.put(lot, PENDING, -moving, "activate")
                    self.put(lot, AVAILABLE, moving, "activate")
                    lot.activated = True
                    activated = True
        for lot in self.lots_of(account):
            if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= self.now:
                if lot.pending:
                    self.put(lot, PENDING, -lot.pending, "expire")
                if lot.available:
                    self.put(lot, AVAILABLE, -lot.available, "expire")
        if activated:  # points that just became spendable pay debts first, as the ledger's settle does
            self.repay(account)

    def repay(self, account: str) -> None:
        owed = min(self.accounts[account].debt, self.bucket(account, AVAILABLE))
        if owed <= 0:
            return
        paid = sum(take for _, take in self.draw(owed, "repay", self.spendable(account)))
        self.accounts[account].debt -= paid
        self.flow["repay"] += paid  # the debt entry: -paid in the debt bucket

    def begin(self, names: list[str]) -> list[str]:
        ids = [self.open(name) for name in names]
        for account in dict.fromkeys(ids):
            self.settle(account)
        return ids

    def end(self, ids: list[str], *, repay: bool = True) -> None:
        """After a command: new points (earn, adjust, transfer, merge) pay debts; spends, refunds do not."""
        if repay:
            for account in dict.fromkeys(ids):
                self.repay(account)

    def receipt(self, account: str, points: int) -> dict[str, int]:
        return {"points": points, **self.buckets(account)}

    # commands
    def earn(self, name: str, points: int, order: str | None, amount: Decimal | None) -> dict[str, int]:
        ids = self.begin([name])
        account = ids[0]
        lot = None
        if points > 0:
            available_at = self.now + dt.timedelta(days=self.pending_days)
            lot = self.new_lot(account, points, self.now, available_at, self.now + EXPIRY)
            self.put(lot, PENDING if available_at > self.now else AVAILABLE, points, "earn")
        if order is not None:
            self.orders[order] = MOrder(account, earn_amount=amount, earns=[MEarn(account, points, lot)])
        self.end(ids)
        return self.receipt(account, points)

    def redeem(
        self, name: str, wanted: int | Callable[[int], int], *, key: str, order: str | None,
        amount: Decimal | None, hold: bool,
    ) -> dict[str, int]:  # fmt: skip
        ids = self.begin([name])
        account = ids[0]
        available = self.bucket(account, AVAILABLE)
        points = wanted if isinstance(wanted, int) else wanted(available)
        if available < points:
            raise Refused(InsufficientPointsError)
        pieces = self.draw(points, "hold" if hold else "redeem", self.spendable(account), hold=hold)
        if order is not None:
            known = self.orders.setdefault(order, MOrder(account))
            if not hold:
                if known.spend_amount is None:
                    known.spend_amount = amount
                known.spends.append(MSpend(account, [[lot, take, 0] for lot, take in pieces]))
        if hold:
            self.holds[key] = MHold(key, account, pieces, self.now + HOLD_TIMEOUT, order, amount)
        self.end(ids, repay=False)
        return self.receipt(account, points)

    def close(self, hold_key: str, capture: bool) -> dict[str, int]:
        hold = self.holds[hold_key]
        ids = self.begin([self.surviving(hold.account)])
        if hold.closed:
            raise Refused(HoldClosedError)
        if capture and hold.expires_at <= self.now:
            raise Refused(HoldClosedError)
        self.close_hold(hold, capture)
        self.end(ids, repay=False)
        return self.receipt(ids[0], sum(points for _, points in hold.pieces))

    def close_hold(self, hold: MHold, capture: bool) -> None:
        for lot, points in hold.pieces:
            self.put(lot, HELD, -points, "capture" if capture else "void")
            if not capture:
                self.give_back(hold.account, lot, points, "void")
        hold.closed = True
        if capture and hold.order is not None:
            known = self.orders[hold.order]
            if known.spend_amount is None:
                known.spend_amount = hold.amount
            known.spends.append(MSpend(self.surviving(hold.account), [[lot, p, 0] for lot, p in hold.pieces]))

    def refund(self, order: str, amount: Decimal | None) -> tuple[dict[str, int], int, int]:
        known = self.orders.get(order)
        if known is None:
            raise Refused(NotFoundError)
        ids = self.begin([self.surviving(known.first_account)])
        base = known.base
        if base is None or base <= 0:
            raise Refused(LoyaltyError)
        before = known.refunded
        this = base - before if amount is None else amount
        if this <= 0 or before + this > base:
            raise Refused(LoyaltyError)
        share = (before + this) / base
        clawed = sum(self.claw_back(earn, share) for earn in known.earns)
        returned = sum(self.give_back_spent(spend, share) for spend in known.spends)
        known.refunded = before + this
        self.end(ids, repay=False)
        return self.receipt(ids[0], returned - clawed), clawed, returned

    def claw_back(self, earn: MEarn, share: Decimal) -> int:
        account = self.surviving(earn.account)
        expired = earn.lot.expired if earn.lot is not None else 0  # expired unused: not taken again
        owed = max(0, min(earn.points, _floor(Decimal(earn.points) * share)) - earn.clawed - expired)
        left = owed
        lot = earn.lot
        if lot is not None and lot.account == account:
            for bucket in (PENDING, AVAILABLE):
                take = min(left, getattr(lot, bucket))
                if take > 0:
                    self.put(lot, bucket, -take, "clawback")
                    left -= take
        if left > 0 and self.policy == "clawback":
            for lots, bucket in ((self.spendable(account), AVAILABLE), (self.pending_lots(account), PENDING)):
                left -= sum(take for _, take in self.draw(left, "clawback", lots, bucket))
                if left <= 0:
                    break
        if left > 0:
            self.accounts[account].debt += left
            self.flow["debt"] -= left
        earn.clawed += owed
        return owed

    def give_back_spent(self, spend: MSpend, share: Decimal) -> int:
        spent = sum(piece[1] for piece in spend.pieces)
        owed = min(spent, _floor(Decimal(spent) * share)) - sum(piece[2] for piece in spend.pieces)
        left = owed
        account = self.surviving(spend.account)
        for piece in reversed(spend.pieces):
            give = min(left, piece[1] - piece[2])
            if give > 0:
                self.give_back(account, piece[0], give, "return")
                piece[2] += give
                left -= give
        return owed

    def move_lots(self, source: str, target: str, lots: list[MLot], points: int | None, kind: str) -> int:
        moved = 0
        for lot in lots:
            for bucket in (PENDING, AVAILABLE):
                room = getattr(lot, bucket)
                take = room if points is None else min(room, points - moved)
                if take <= 0:
                    continue
                self.put(lot, bucket, -take, f"{kind}_out")
                new = self.new_lot(target, take, lot.earned_at, lot.available_at, lot.expires_at)
                self.put(new, bucket, take, f"{kind}_in")
                moved += take
        return moved

    def transfer(self, source: str, target: str, wanted: int | Callable[[int], int]) -> dict[str, int]:
        ids = self.begin([source, target])
        if ids[0] == ids[1]:
            raise Refused(LoyaltyError)
        available = self.bucket(ids[0], AVAILABLE)
        points = wanted if isinstance(wanted, int) else wanted(available)
        if available < points:
            raise Refused(InsufficientPointsError)
        moved = self.move_lots(ids[0], ids[1], self.spendable(ids[0]), points, "transfer")
        self.end(ids)
        return self.receipt(ids[0], moved)

    def merge(self, source: str, target: str) -> dict[str, int]:
        ids = self.begin([source, target])
        if ids[0] == ids[1]:
            raise Refused(LoyaltyError)
        for hold in self.holds.values():
            if hold.account == ids[0] and not hold.closed:
                self.close_hold(hold, False)
        lots = [lot for lot in self.lots_of(ids[0]) if lot.remaining > 0]
        moved = self.move_lots(ids[0], ids[1], lots, None, "merge")
        debt = self.accounts[ids[0]].debt
        self.accounts[ids[0]].debt = 0
        self.accounts[ids[1]].debt += debt
        self.flow["merge_out"] += debt
        self.flow["merge_in"] -= debt
        self.accounts[ids[0]].merged_into = ids[1]
        self.end(ids)
        return self.receipt(ids[1], moved)  # a merge reports the surviving account

    def adjust(self, name: str, points: int, expires_at: dt.datetime | None = None) -> dict[str, int]:
        ids = self.begin([name])
        account = ids[0]
        if points > 0:
            lot = self.new_lot(account, points, self.now, self.now, expires_at or self.now + EXPIRY)
            self.put(lot, AVAILABLE, points, "adjust")
        else:
            if self.bucket(account, AVAILABLE) < -points:
                raise Refused(InsufficientPointsError)
            self.draw(-points, "adjust", self.spendable(account))
        self.end(ids)
        return self.receipt(account, points)


# -- reading the database ------------------------------------------------------------------------


def _counts(db: Engine) -> tuple[int, ...]:
    """How many entries, operations, lots and accounts the ledger holds."""
    with db.connect() as connection:
        row = connection.execute(
            select(
                *[
                    select(func.count()).select_from(t).scalar_subquery()
                    for t in (ENTRY, OPERATION, LOT, ACCOUNT)
                ]
            )
        ).one()
    return tuple(int(n) for n in row)


def _accounts(connection: Connection) -> dict[str, dict[str, Any]]:
    merged = ACCOUNT.alias("merged")
    merged_customer = CUSTOMER.alias("merged_customer")
    rows = connection.execute(
        select(ACCOUNT, CUSTOMER.c.external_id, merged_customer.c.external_id.label("into"))
        .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
        .outerjoin(merged, merged.c.id == ACCOUNT.c.merged_into_id)
        .outerjoin(merged_customer, merged_customer.c.id == merged.c.customer_id)
    ).all()
    return {
        row.external_id: {
            "id": row.id,
            "available": row.available,
            "pending": row.pending,
            "held": row.held,
            "debt": row.debt,
            "merged_into": row.into,
        }
        for row in rows
    }


def _lots(connection: Connection, after: int = 0) -> list[dict[str, Any]]:
    """Lots (with id > ``after``), their owner and the points in their pending and held entries."""
    parts = (
        select(
            ENTRY.c.lot_id,
            func.sum(case((ENTRY.c.bucket == PENDING, ENTRY.c.points), else_=0)).label("pending"),
            func.sum(case((ENTRY.c.bucket == HELD, ENTRY.c.points), else_=0)).label("held"),
        )
        .where(ENTRY.c.lot_id > after)
        .group_by(ENTRY.c.lot_id)
        .subquery()
    )
    rows = connection.execute(
        select(
            LOT,
            CUSTOMER.c.external_id,
            func.coalesce(parts.c.pending, 0).label("pending_part"),
            func.coalesce(parts.c.held, 0).label("held_part"),
        )
        .join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id)
        .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
        .outerjoin(parts, parts.c.lot_id == LOT.c.id)
        .where(LOT.c.id > after)
        .order_by(LOT.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def _flows(connection: Connection) -> dict[str, int]:
    """Net points per kind of entry (a debt counts against the member)."""
    rows = connection.execute(
        select(
            ENTRY.c.kind,
            func.sum(case((ENTRY.c.bucket == "debt", -ENTRY.c.points), else_=ENTRY.c.points)),
        ).group_by(ENTRY.c.kind)
    ).all()
    return {kind: int(total) for kind, total in rows if int(total)}


def _foreign_lot_entries(connection: Connection) -> list[Any]:
    """Entries about a lot that belongs to another account."""
    return list(
        connection.execute(
            select(
                ENTRY.c.id, ENTRY.c.kind, ENTRY.c.account_id, ENTRY.c.lot_id, LOT.c.account_id.label("owner")
            )
            .select_from(ENTRY.join(LOT, LOT.c.id == ENTRY.c.lot_id))
            .where(ENTRY.c.account_id != LOT.c.account_id)
        ).all()
    )


def wipe(db: Engine) -> None:
    """Empty the ledger, purchases and customers (between examples of the machine)."""
    with db.begin() as connection:
        for table in (ENTRY, TIER_CHANGE, LOT, OPERATION, ACCOUNT, PURCHASE, CUSTOMER):
            connection.execute(delete(table))


# -- the machine ---------------------------------------------------------------------------------


@dataclass
class Done:
    """A command that succeeded: how to send it again, and with other content."""

    what: str
    again: Callable[[dt.datetime], Receipt]
    other: Callable[[dt.datetime], Receipt] | None
    receipt: Receipt


class LedgerMachine(RuleBasedStateMachine):
    db: Engine
    programmes: dict[tuple[int, str], Programme]

    def __init__(self) -> None:
        super().__init__()
        self.model = Model(0, "clawback")
        self.shop: Programme | None = None
        self.done: list[Done] = []
        self.n = 0
        self.last_lot = 0

    def key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    @property
    def programme(self) -> Programme:
        assert self.shop is not None
        return self.shop

    @initialize(variant=st.sampled_from(VARIANTS))
    def start(self, variant: tuple[int, str]) -> None:
        wipe(self.db)
        customers(self.db, *MEMBERS)
        self.shop = self.programmes[variant]
        self.model = Model(*variant)
        STEPS["examples"] += 1
        for who in MEMBERS:  # something to spend all along: a year-long welcome gift
            self.execute(
                "adjust",
                lambda now, who=who: adjust(
                    self.db, self.programme, key=f"seed-{who}", customer=who, points=SEED, reason="welcome",
                    actor="ops", expires_at=SEED_EXPIRES, now=now,
                ),
                lambda model, who=who: model.adjust(who, SEED, SEED_EXPIRES),
            )  # fmt: skip

    # running one command against the model and the ledger
    def execute(
        self,
        what: str,
        call: Callable[[dt.datetime], Receipt],
        expect: Callable[[Model], Any],
        other: Callable[[dt.datetime], Receipt] | None = None,
    ) -> tuple[Receipt | None, Any]:
        before = copy.deepcopy(self.model)
        counts = _counts(self.db)
        try:
            expected = expect(self.model)
        except Refused as refused:
            self.model = before
            with pytest.raises(refused.error) as raised:
                call(self.model.now)
            assert raised.type is refused.error, (what, raised.value)
            assert _counts(self.db) == counts, f"a refused {what} posted something"
            STEPS[f"{what} refused ({refused.error.__name__})"] += 1
            return None, None
        receipt = call(self.model.now)
        assert not receipt.replayed, what
        buckets = expected if isinstance(expected, dict) else expected[0]
        assert {k: getattr(receipt, k) for k in buckets} == buckets, what
        self.done.append(Done(what, call, other, receipt))
        STEPS[what] += 1
        return receipt, expected

    def match_new_lots(self, found: list[dict[str, Any]]) -> None:
        """The lots the last step created are the ones the model created, in the same order."""
        created = [lot for lot in self.model.lots if lot.id is None]
        found = [row for row in found if row["id"] > self.last_lot]
        assert len(found) == len(created), ("new lots", found, created)
        for row, lot in zip(found, created, strict=True):
            assert (row["external_id"], row["points"], row["available_at"], row["expires_at"]) == (
                lot.account, lot.points, lot.available_at, lot.expires_at,
            ), (row, lot)  # fmt: skip
            lot.id = int(row["id"])
            self.last_lot = lot.id

    # rules
    @rule(gap=GAPS, who=MEMBER, cents=CENTS, category=st.sampled_from([None, "food", "cosmetics"]))
    def earn_purchase(self, gap: dt.timedelta, who: str, cents: int, category: str | None) -> None:
        self.model.now += gap
        order, amount = self.key("O"), _money(cents)
        points = _floor(amount * Decimal("0.05") * (2 if category == "cosmetics" else 1))

        def call(now: dt.datetime, amount: Decimal = amount) -> Receipt:
            return earn_purchase(
                self.db, self.programme, order=order, customer=who, amount=amount, category=category, now=now
            )

        self.execute(
            "earn",
            call,
            lambda model: model.earn(who, points, order, amount),
            other=lambda now: call(now, amount + 1),
        )

    @rule(gap=GAPS, who=MEMBER, other=MEMBER)
    def earn_event(self, gap: dt.timedelta, who: str, other: str) -> None:
        self.model.now += gap
        key = self.key("EV")

        def call(now: dt.datetime, customer: str = who) -> Receipt:
            return earn_event(self.db, self.programme, key=key, customer=customer, event="review", now=now)

        self.execute(
            "earn event",
            call,
            lambda model: model.earn(who, REVIEW_POINTS, None, None),
            other=(lambda now: call(now, other)) if other != who else None,
        )

    @rule(
        gap=GAPS,
        who=MEMBER,
        how=HOW,
        points=st.integers(1, 100),
        pay=st.sampled_from(["nothing", "new order", "paid order again"]),
        cents=CENTS,
        hold=st.sampled_from([None, None, "capture", "void", "open"]),
    )
    def redeem(
        self, gap: dt.timedelta, who: str, how: str, points: int, pay: str, cents: int, hold: str | None
    ) -> None:
        """Spend points; or hold them, then capture or void the hold minutes later (or leave it open)."""
        self.model.now += gap
        key = self.key("H" if hold is not None else "R")
        order, amount = None, None
        paid = [o for o, known in self.model.orders.items() if known.spend_amount is not None]
        if pay == "new order" or (pay == "paid order again" and not paid):
            order, amount = self.key("PAY"), _money(cents)
        elif pay == "paid order again":
            order = paid[cents % len(paid)]
            amount = self.model.orders[order].spend_amount
        chosen: dict[str, int] = {}

        def wanted(available: int) -> int:
            chosen["points"] = _wanted(how, points, available)
            return chosen["points"]

        def call(now: dt.datetime, extra: int = 0) -> Receipt:
            return redeem(
                self.db, self.programme, key=key, customer=who, points=chosen["points"] + extra,
                order=order, order_amount=amount, hold=hold is not None, now=now,
            )  # fmt: skip

        receipt, _ = self.execute(
            "hold" if hold is not None else "redeem",
            call,
            lambda model: model.redeem(
                who, wanted, key=key, order=order, amount=amount, hold=hold is not None
            ),
            other=lambda now: call(now, 1),
        )
        if receipt is not None and hold in ("capture", "void"):
            self.model.now += dt.timedelta(minutes=cents % 15)
            self.close(key, hold == "capture")

    @precondition(lambda self: bool(self.model.holds))
    @rule(
        data=st.data(),
        gap=st.sampled_from([dt.timedelta(0), dt.timedelta(minutes=5), dt.timedelta(minutes=20)]),
    )
    def close_hold(self, data: st.DataObject, gap: dt.timedelta) -> None:
        self.model.now += gap
        open_holds = [key for key, hold in self.model.holds.items() if not hold.closed]
        hold_key = data.draw(
            st.sampled_from(open_holds[-1:] or sorted(self.model.holds))
            | st.sampled_from(sorted(self.model.holds)),
            label="hold",
        )
        self.close(hold_key, data.draw(st.booleans(), label="capture"))

    def close(self, hold_key: str, taking: bool) -> None:
        key = self.key("C" if taking else "V")
        command = capture if taking else void

        def call(now: dt.datetime) -> Receipt:
            return command(self.db, self.programme, key=key, hold_key=hold_key, now=now)

        def other(now: dt.datetime) -> Receipt:  # the same key for the other command
            return (void if taking else capture)(self.db, self.programme, key=key, hold_key=hold_key, now=now)

        self.execute(
            "capture" if taking else "void", call, lambda model: model.close(hold_key, taking), other
        )

    @precondition(lambda self: bool(self.model.orders))
    @rule(data=st.data(), gap=GAPS, portion=st.sampled_from(["all", "part", "part", "too much"]))
    def refund(self, data: st.DataObject, gap: dt.timedelta, portion: str) -> None:
        self.model.now += gap
        model = self.model
        orders = sorted(model.orders)
        open_orders = [o for o in orders if (model.orders[o].base or 0) > model.orders[o].refunded]
        merged = [  # orders of members merged away since: the refund must follow the points
            o for o in open_orders
            if any(model.surviving(op.account) != op.account for op in model.orders[o].operations)
        ]  # fmt: skip
        order = data.draw(
            st.sampled_from(merged or open_orders or orders) | st.sampled_from(open_orders or orders),
            label="order",
        )
        known = self.model.orders[order]
        left = (known.base or Decimal(0)) - known.refunded
        amount: Decimal | None = None
        if portion == "part" and left > 0:
            amount = _money(data.draw(st.integers(1, int(left * 100)), label="cents"))
        elif portion == "too much":
            amount = left + Decimal("0.01")
        key = self.key("RF")

        def call(now: dt.datetime, amount: Decimal | None = amount) -> Receipt:
            return refund(self.db, self.programme, key=key, order=order, amount=amount, now=now)

        receipt, expected = self.execute(
            "refund",
            call,
            lambda model: model.refund(order, amount),
            other=lambda now: call(now, (amount or left) + Decimal("0.01")),
        )
        if receipt is not None:
            _, clawed, returned = expected
            assert (receipt.detail["clawed_back"], receipt.detail["returned"]) == (clawed, returned)

    @rule(gap=GAPS, who=st.sets(MEMBER), voids=st.booleans())
    def time_passes(self, gap: dt.timedelta, who: set[str], voids: bool) -> None:
        """The clock moves on; the batch voids timed-out holds and settles some accounts."""
        self.model.now += gap
        now = self.model.now
        if voids:
            due = [h for h in self.model.holds.values() if not h.closed and h.expires_at <= now]
            for hold in due:
                self.model.close(hold.key, False)
            assert void_expired_holds(self.db, self.programme, now=now) == len(due)
        with self.db.connect() as connection:
            accounts = _accounts(connection)
        names = sorted({self.model.surviving(name) for name in who if name in self.model.accounts})
        for name in names:
            self.model.settle(name)
            self.model.repay(name)
        ids = [accounts[name]["id"] for name in names]
        with write_transaction(self.db) as connection:
            lock_accounts(connection, ids)
            for account_id in ids:
                settle(connection, self.programme, account_id, now)
            repay_debts(connection, self.programme, ids, now)
        STEPS["time passes"] += 1

    @rule(
        gap=GAPS,
        giver=MEMBER,
        receiver=MEMBER,
        how=HOW,
        points=st.integers(1, 100),
    )
    def transfer(self, gap: dt.timedelta, giver: str, receiver: str, how: str, points: int) -> None:
        self.model.now += gap
        key = self.key("T")
        chosen: dict[str, int] = {}

        def wanted(available: int) -> int:
            chosen["points"] = _wanted(how, points, available)
            return chosen["points"]

        def call(now: dt.datetime, extra: int = 0) -> Receipt:
            return transfer(
                self.db, self.programme, key=key, source=giver, target=receiver,
                points=chosen.get("points", points) + extra, now=now,
            )  # fmt: skip

        self.execute(
            "transfer",
            call,
            lambda model: model.transfer(giver, receiver, wanted),
            other=lambda now: call(now, 1),
        )

    @precondition(lambda self: sum(a.merged_into is not None for a in self.model.accounts.values()) < 2)
    @rule(data=st.data(), gap=GAPS, receiver=MEMBER)
    def merge(self, data: st.DataObject, gap: dt.timedelta, receiver: str) -> None:
        """Merge a member (often one with orders still refundable: their refunds then follow the merge)."""
        self.model.now += gap
        key = self.key("M")
        model = self.model
        with_orders = sorted(
            {op.account for o in model.orders.values() if o.refunded < (o.base or 0) for op in o.operations}
            & {name for name, account in model.accounts.items() if account.merged_into is None}
        )
        giver = data.draw((st.sampled_from(with_orders) if with_orders else MEMBER) | MEMBER, label="giver")

        def call(now: dt.datetime, swap: bool = False) -> Receipt:
            a, b = (receiver, giver) if swap else (giver, receiver)
            return merge(self.db, self.programme, key=key, source=a, target=b, actor="ops", now=now)

        self.execute(
            "merge", call, lambda model: model.merge(giver, receiver), other=lambda now: call(now, True)
        )

    @rule(gap=GAPS, who=MEMBER, points=st.integers(-150, 150).filter(bool))
    def adjust(self, gap: dt.timedelta, who: str, points: int) -> None:
        self.model.now += gap
        key = self.key("A")

        def call(now: dt.datetime, reason: str = "goodwill") -> Receipt:
            return adjust(
                self.db,
                self.programme,
                key=key,
                customer=who,
                points=points,
                reason=reason,
                actor="ops",
                now=now,
            )

        self.execute(
            "adjust", call, lambda model: model.adjust(who, points), other=lambda now: call(now, "typo")
        )

    @precondition(lambda self: bool(self.done))
    @rule(data=st.data(), same=st.booleans())
    def replay(self, data: st.DataObject, same: bool) -> None:
        done = data.draw(st.sampled_from(self.done), label="earlier command")
        counts = _counts(self.db)
        if same or done.other is None:
            again = done.again(self.model.now)
            assert again == replace(done.receipt, replayed=True), done.what
            STEPS["replay"] += 1
        else:
            with pytest.raises(IdempotencyConflictError):
                done.other(self.model.now)
            STEPS["conflict"] += 1
        assert _counts(self.db) == counts, f"a replayed {done.what} posted something"

    # after every step
    @invariant()
    def ledger_matches_the_model(self) -> None:
        model, db = self.model, self.db
        report = audit(db)
        assert report.ok, report.problems
        with db.connect() as connection:
            accounts, lots = _accounts(connection), _lots(connection)
            flows, foreign = _flows(connection), _foreign_lot_entries(connection)
        # the ledger on its own
        per_account: Counter[str] = Counter()
        for row in lots:
            assert 0 <= row["remaining"] <= row["points"], row
            assert row["held_part"] >= 0 and row["remaining"] + row["held_part"] <= row["points"], row
            per_account[row["external_id"]] += row["remaining"]
        assert not foreign, f"entries about a lot of another account: {foreign}"
        for name, row in accounts.items():
            assert min(row["available"], row["pending"], row["held"], row["debt"]) >= 0, (name, row)
            assert row["pending"] + row["available"] == per_account[name], (
                f"{name}: its lots hold other points"
            )
            if row["merged_into"] is not None:
                assert per_account[name] == row["held"] == row["debt"] == 0, f"{name} was merged away"
        # the ledger against the model
        self.match_new_lots(lots)
        assert set(accounts) == set(model.accounts)
        for name, row in accounts.items():
            assert {b: row[b] for b in ("available", "pending", "held", "debt")} == model.buckets(name), name
            assert row["merged_into"] == model.accounts[name].merged_into, name
        by_id = {lot.id: lot for lot in model.lots}
        assert set(by_id) == {row["id"] for row in lots}
        for row in lots:
            lot = by_id[row["id"]]
            assert (row["external_id"], row["remaining"], row["pending_part"], row["held_part"]) == (
                lot.account, lot.remaining, lot.pending, lot.held,
            ), (row, lot)  # fmt: skip
        # earned + adjusted + returned - redeemed - captured - expired - clawed back - owed, kind by kind
        assert flows == {kind: points for kind, points in model.flow.items() if points}, (flows, model.flow)
        outstanding = sum(
            row["available"] + row["pending"] + row["held"] - row["debt"] for row in accounts.values()
        )
        assert outstanding == sum(model.flow.values())


def test_ledger_against_its_model(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    STEPS.clear()
    programmes = {
        (days, policy): shop_programme(
            write_config, pending_days=str(days), expiry='"30d"', spent_refund=f'"{policy}"', earn=REVIEW_RULE
        )
        for days, policy in VARIANTS
    }

    class Machine(LedgerMachine):
        pass

    Machine.db = db
    Machine.programmes = programmes
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=40 if db.dialect.name == "sqlite" else 20,  # about 30 s each
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    print("\nsteps:", ", ".join(f"{what} {n}" for what, n in sorted(STEPS.items())))


# -- what the machine found, pinned down ---------------------------------------------------------


def test_a_refund_after_a_merge_gives_points_back_on_the_surviving_account(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    """Points spent on an order by a member merged away since come back to the account that survived.

    They must come back into a lot of that account (with the dates of the lot
    they were spent from): today ``refunds._give_back_spent`` posts the return
    on the surviving account but into the old lot, still owned by the merged-away
    account, so the surviving account's balance is not in its lots and it
    cannot spend it ("lots do not cover the cached balance").
    """
    shop = shop_programme(write_config, pending_days="0")
    customers(db, "ann", "bob")
    earn_purchase(db, shop, order="O1", customer="ann", amount=Decimal(2000), now=utc(2027, 1, 1))  # 100
    redeem(db, shop, key="PAY", customer="ann", points=60, order="O2", order_amount=Decimal(600),
           now=utc(2027, 1, 2))  # fmt: skip
    merge(db, shop, key="M", source="ann", target="bob", actor="ops", now=utc(2027, 1, 3))
    back = refund(db, shop, key="RF", order="O2", now=utc(2027, 1, 4))
    assert (back.points, back.customer, back.available) == (60, "bob", 100)
    with db.connect() as connection:
        assert _foreign_lot_entries(connection) == []
        assert sum(row["remaining"] for row in _lots(connection) if row["external_id"] == "bob") == 100
    assert redeem(db, shop, key="ALL", customer="bob", points=100, now=utc(2027, 1, 5)).available == 0
    assert_consistent(db)


def test_a_lot_with_nothing_left_pending_is_not_activated_again_and_again(db: Engine, write_config) -> None:  # type: ignore[no-untyped-def]
    """A lot refunded whole in its return window has nothing to activate: no activation operation.

    Today ``ledger.settle`` finds it due (it has a pending earn and no
    ``activate`` entry, as none is posted for 0 points) on every command once
    its window has ended, and posts another empty operation each time
    (``activate:<lot>``, ``activate:<lot>:2``, ...; ``derived_key`` reads them all
    to find the next number). The batch (``expiry.activate_due``) skips such lots.
    """
    shop = shop_programme(write_config)  # 14 days pending
    customers(db, "ann")
    earn_purchase(db, shop, order="O1", customer="ann", amount=Decimal(2000), now=utc(2027, 1, 1))
    refund(db, shop, key="RF", order="O1", now=utc(2027, 1, 2))
    for day in (16, 17, 18):
        adjust(
            db, shop, key=f"A{day}", customer="ann", points=1, reason="-", actor="ops", now=utc(2027, 1, day)
        )
    with db.connect() as connection:
        activations = connection.execute(select(OPERATION.c.key).where(OPERATION.c.command == ACTIVATE)).all()
    assert activations == []
    assert buckets(db, "ann") == {"available": 3, "pending": 0, "held": 0, "debt": 0}
