"""The points ledger: accounts, operations, lots, entries and tier changes.

How the ledger is kept (every writer follows this; ``crm loyalty audit`` checks it):

* **Operation** (``loyalty_operation``): one command (earn, redeem, hold,
  capture, void, refund, adjust, transfer, merge, activate, expire, repay),
  unique by (programme, idempotency key). The key is the POS transaction id
  or a key derived from what the batch jobs act on (``expire:<lot>``). The
  same key with the same request returns ``result`` and changes nothing;
  with a different request (``request_hash``) it is refused.
* **Lot** (``loyalty_lot``): points that arrived together (an earn, a
  positive adjustment, points transferred or merged in) with the day they
  become available and the day they expire. ``remaining`` is the only
  column ever updated in place, under the account's lock.
* **Entry** (``loyalty_entry``): a signed integer change of one *bucket* of
  one account, about at most one lot. Buckets: ``pending`` (earned, inside
  the return window), ``available`` (spendable), ``held`` (reserved by an
  open two-phase redemption) and ``debt`` (points owed after a refund of
  points already spent). A spend posts one negative entry per lot it draws
  on: that is its allocation to the lot. Entries are never updated or
  deleted; a correction is a new entry whose ``related_id`` names the one
  it changes.
* **Account** (``loyalty_account``): the cached sum of its entries per
  bucket, updated under the lock in the same transaction as the entries.

Invariants: every cached bucket equals the sum of its entries and is never
negative; a lot's ``remaining`` equals the sum of its ``pending`` and
``available`` entries and lies in ``[0, points]``; the points held on a lot
(its ``held`` entries) are never negative.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import JsonDict, Money, UtcDateTime

# buckets of an account
PENDING = "pending"
AVAILABLE = "available"
HELD = "held"
DEBT = "debt"
BUCKETS = (PENDING, AVAILABLE, HELD, DEBT)

# kinds of entry
EARN = "earn"  # points given for a purchase or an event: a new lot
ACTIVATE = "activate"  # a lot leaves the return window: pending -> available
REDEEM = "redeem"  # points spent (one-phase), or captured from a hold
HOLD = "hold"  # points reserved by a two-phase redemption: available -> held
CAPTURE = "capture"  # held points spent
VOID = "void"  # held points released: held -> available
CLAWBACK = "clawback"  # earned points taken back by a refund
RETURN = "return"  # spent points given back by a refund of what they paid for
DEBT_RECORDED = "debt"  # points a refund could not take back: owed
REPAY = "repay"  # new points paying a debt
EXPIRE = "expire"  # a lot's remainder expired
ADJUST = "adjust"  # a manual correction, with reason and actor
TRANSFER_OUT = "transfer_out"
TRANSFER_IN = "transfer_in"
MERGE_OUT = "merge_out"
MERGE_IN = "merge_in"
ENTRY_KINDS = (
    EARN, ACTIVATE, REDEEM, HOLD, CAPTURE, VOID, CLAWBACK, RETURN, DEBT_RECORDED, REPAY, EXPIRE,
    ADJUST, TRANSFER_OUT, TRANSFER_IN, MERGE_OUT, MERGE_IN,
)  # fmt: skip

# sources of a lot
LOT_SOURCES = ("purchase", "event", "adjust", "transfer", "merge")


class LoyaltyAccount(SQLModel, table=True):
    """A customer's membership of one programme and the cached sums of its entries."""

    __tablename__ = "loyalty_account"
    __table_args__ = (UniqueConstraint("programme", "customer_id", name="ux_loyalty_account_member"),)

    id: int | None = Field(default=None, primary_key=True)
    programme: str = Field(max_length=50)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    pending: int = Field(default=0)
    available: int = Field(default=0)
    held: int = Field(default=0)
    debt: int = Field(default=0)
    tier: str | None = Field(default=None, max_length=50)
    tier_since: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    tier_override: str | None = Field(default=None, max_length=50)
    override_until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    grace_until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_activity_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    merged_into_id: int | None = Field(default=None, foreign_key="loyalty_account.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


class LoyaltyOperation(SQLModel, table=True):
    """One command on the ledger, unique by its idempotency key, with the result it returned."""

    __tablename__ = "loyalty_operation"
    __table_args__ = (
        UniqueConstraint("programme", "key", name="ux_loyalty_operation_key"),
        Index("ix_loyalty_operation_account", "account_id", "command"),
        Index("ix_loyalty_operation_reference", "programme", "reference"),
    )

    id: int | None = Field(default=None, primary_key=True)
    programme: str = Field(max_length=50)
    key: str = Field(max_length=300, description="purchase:<order id up to 200>, or a client's key")
    command: str = Field(max_length=20)
    request_hash: str = Field(max_length=64)
    account_id: int | None = Field(default=None, foreign_key="loyalty_account.id")
    related_id: int | None = Field(default=None, foreign_key="loyalty_operation.id", index=True)
    closes_id: int | None = Field(default=None, foreign_key="loyalty_operation.id", unique=True)
    purchase_id: int | None = Field(default=None, foreign_key="purchase.id", index=True)
    reference: str | None = Field(default=None, max_length=200, description="the order it earned on or paid")
    partner: str | None = Field(default=None, max_length=50)
    amount: Decimal | None = Field(default=None, sa_type=Money, description="the order's amount")
    expires_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    actor: str | None = Field(default=None, max_length=200)
    reason: str | None = Field(default=None, max_length=500)
    config_version: str = Field(max_length=64)
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonDict, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


class LoyaltyLot(SQLModel, table=True):
    """Points that arrived together; spends draw on lots soonest-expiring first."""

    __tablename__ = "loyalty_lot"
    __table_args__ = (
        Index("ix_loyalty_lot_spend", "account_id", "expires_at", "id"),
        # the daily expiry looks only at lots with points left, however long the history grows
        Index(
            "ix_loyalty_lot_expires",
            "expires_at",
            postgresql_where=text("remaining > 0"),
            sqlite_where=text("remaining > 0"),
        ),
        Index("ix_loyalty_lot_available", "available_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="loyalty_account.id")
    operation_id: int = Field(foreign_key="loyalty_operation.id", index=True)
    points: int
    remaining: int
    source: str = Field(max_length=20)
    partner: str | None = Field(default=None, max_length=50)
    earned_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    available_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    origin_lot_id: int | None = Field(default=None, foreign_key="loyalty_lot.id")


class LoyaltyEntry(SQLModel, table=True):
    """A signed change of one bucket of one account, about at most one lot; never updated."""

    __tablename__ = "loyalty_entry"
    __table_args__ = (
        Index("ix_loyalty_entry_account", "account_id", "posted_at"),
        Index("ix_loyalty_entry_lot", "lot_id", "bucket"),
        Index("ix_loyalty_entry_operation", "operation_id"),
        Index("ix_loyalty_entry_related", "related_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    operation_id: int = Field(foreign_key="loyalty_operation.id")
    account_id: int = Field(foreign_key="loyalty_account.id")
    lot_id: int | None = Field(default=None, foreign_key="loyalty_lot.id")
    kind: str = Field(max_length=20)
    bucket: str = Field(max_length=10)
    points: int
    amount: Decimal | None = Field(default=None, sa_type=Money)
    related_id: int | None = Field(default=None, foreign_key="loyalty_entry.id")
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDict, nullable=True))
    posted_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)


class LoyaltyTierChange(SQLModel, table=True):
    """A change of an account's tier, and why (qualifying value, policy, override, merge)."""

    __tablename__ = "loyalty_tier_change"
    __table_args__ = (Index("ix_loyalty_tier_change_account", "account_id", "changed_at"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="loyalty_account.id")
    from_tier: str | None = Field(default=None, max_length=50)
    to_tier: str | None = Field(default=None, max_length=50)
    reason: str = Field(max_length=200)
    qualifying: Decimal | None = Field(default=None, sa_type=Money)
    actor: str | None = Field(default=None, max_length=200)
    until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    changed_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
