"""Requests and answers of the loyalty API (``/v1/loyalty/{programme}/...``), with examples for OpenAPI.

Points are integers; money is a decimal string (``"2400.00"``; a JSON number
is accepted on the way in); times are ISO-8601 with an offset (UTC on the way out).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from engine.api.fields import (
    Amount,
    CustomerRef,
    EventName,
    Instant,
    Label,
    Order,
    Points,
    Quantity,
    ShortName,
)
from engine.loyalty.ledger import Balance, Receipt, Statement


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EarnRequest(_Request):
    """Points for a purchase (``order`` and ``amount``) or for an event (``event``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "customer": "C-1001",
                    "order": "POS-2027-000123",
                    "amount": "2400.00",
                    "category": "cosmetics",
                    "sku": "SKU-77",
                    "occurred_at": "2027-03-01T12:30:00+03:00",
                },
                {"customer": "C-1001", "event": "referral"},
            ]
        },
    )

    customer: CustomerRef
    order: Order | None = Field(
        None, description="the purchase's order id (the Idempotency-Key must equal it)"
    )
    amount: Amount | None = Field(None, description="what the customer paid", examples=["2400.00"])
    category: Label | None = Field(None, examples=["cosmetics"])
    sku: Label | None = Field(None, examples=["SKU-77"])
    quantity: Quantity = Decimal(1)
    source: Label | None = Field(None, description="shop, web... or a partner's name", examples=["shop"])
    occurred_at: Instant | None = Field(None, description="when it was bought (default: now)")
    event: EventName | None = Field(None, description="an event instead of a purchase: birthday, referral...")

    @model_validator(mode="after")
    def _purchase_or_event(self) -> EarnRequest:
        purchase = [
            n for n in ("order", "amount", "category", "sku", "source") if getattr(self, n) is not None
        ]
        if self.event is not None:
            if purchase or self.occurred_at is not None:
                raise ValueError(
                    f"an event takes no purchase fields (got {', '.join(purchase or ['occurred_at'])})"
                )
        elif self.order is None or self.amount is None:
            raise ValueError("a purchase needs order and amount (or give event)")
        return self


class RedeemRequest(_Request):
    """Spend ``points`` or a ``reward``; with ``hold``, only reserve them until capture or void."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"customer": "C-1001", "points": 500, "order": "POS-2027-000124", "order_amount": "3000.00"},
                {"customer": "C-1001", "reward": "coffee", "hold": True},
            ]
        },
    )

    customer: CustomerRef
    points: Points | None = Field(None, examples=[500])
    reward: ShortName | None = Field(None, description="a reward of the programme instead of points")
    order: Order | None = Field(None, description="the order the points pay for (refunds give them back)")
    order_amount: Amount | None = Field(None, description="that order's amount", examples=["3000.00"])
    partner: ShortName | None = Field(None, description="the partner where the points are burnt")
    hold: StrictBool = Field(False, description="only reserve the points: capture or void the hold later")

    @model_validator(mode="after")
    def _points_or_reward(self) -> RedeemRequest:
        if (self.points is None) == (self.reward is None):
            raise ValueError("give points or a reward, not both")
        if self.order_amount is not None and self.order is None:
            raise ValueError("order_amount needs the order it belongs to")
        return self


class RefundRequest(_Request):
    """A refund of ``amount`` of ``order`` (the rest of the order when no amount is given)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"order": "POS-2027-000123", "amount": "1200.00"}]}
    )

    order: Order
    amount: Amount | None = Field(None, description="money refunded (default: what is left of the order)")


class ReceiptOut(BaseModel):
    """What a command did: the points it moved and the account's buckets after it."""

    programme: str = Field(examples=["bonus"])
    key: str = Field(description="the ledger operation's key", examples=["purchase:POS-2027-000123"])
    command: str = Field(examples=["earn"])
    customer: str = Field(examples=["C-1001"])
    points: int = Field(description="points this command moved", examples=[240])
    available: int = Field(examples=[1240])
    pending: int = Field(examples=[240])
    held: int = Field(examples=[0])
    debt: int = Field(examples=[0])
    detail: dict[str, Any] = Field(description="rules applied, lots drawn, value, hold expiry...")
    replayed: bool = Field(description="true when the key had been used: nothing changed")

    @classmethod
    def of(cls, receipt: Receipt) -> ReceiptOut:
        """The answer for ``receipt``."""
        return cls(**{name: getattr(receipt, name) for name in cls.model_fields})


class LotOut(BaseModel):
    """A lot with points left."""

    lot: int
    points: int
    remaining: int
    source: str
    partner: str | None
    earned_at: dt.datetime
    available_at: dt.datetime
    expires_at: dt.datetime | None


class HoldOut(BaseModel):
    """An open hold."""

    key: str
    points: int
    expires_at: str | None


class BalanceOut(BaseModel):
    """A member's buckets, value, tier, discount, lots by expiry and open holds."""

    programme: str = Field(examples=["bonus"])
    customer: str = Field(examples=["C-1001"])
    available: int = Field(examples=[1240])
    pending: int = Field(examples=[240])
    held: int = Field(examples=[0])
    debt: int = Field(examples=[0])
    value: Decimal = Field(description="available points in money", examples=["1240.00"])
    currency: str = Field(examples=["RUB"])
    tier: str | None = Field(examples=["silver"])
    tier_override_until: dt.datetime | None
    discount_percent: Decimal = Field(examples=["0"])
    next_expiry: LotOut | None
    lots: list[LotOut]
    open_holds: list[HoldOut]
    merged_into: str | None

    @classmethod
    def of(cls, balance: Balance) -> BalanceOut:
        """The answer for ``balance``."""
        lots = [LotOut(**vars(lot)) for lot in balance.lots]
        following = balance.next_expiry
        return cls(
            programme=balance.programme,
            customer=balance.customer,
            available=balance.available,
            pending=balance.pending,
            held=balance.held,
            debt=balance.debt,
            value=balance.value,
            currency=balance.currency,
            tier=balance.tier,
            tier_override_until=balance.tier_override_until,
            discount_percent=balance.discount_percent,
            next_expiry=LotOut(**vars(following)) if following is not None else None,
            lots=lots,
            open_holds=[HoldOut(**hold) for hold in balance.open_holds],
            merged_into=balance.merged_into,
        )


class StatementLineOut(BaseModel):
    """One entry of the ledger, explained."""

    entry: int
    posted_at: dt.datetime
    key: str
    command: str
    kind: str
    bucket: str
    points: int
    balance: int = Field(description="available + pending after this entry")
    lot: int | None
    amount: Decimal | None
    explanation: str
    config_version: str


class StatementOut(BaseModel):
    """The entries of one account in a time range, with the balance before and after."""

    programme: str = Field(examples=["bonus"])
    customer: str = Field(examples=["C-1001"])
    opening: int = Field(examples=[1000])
    closing: int = Field(examples=[1240])
    lines: list[StatementLineOut]

    @classmethod
    def of(cls, statement: Statement) -> StatementOut:
        """The answer for ``statement``."""
        return cls(
            programme=statement.programme,
            customer=statement.customer,
            opening=statement.opening,
            closing=statement.closing,
            lines=[StatementLineOut(**vars(line)) for line in statement.lines],
        )


__all__ = [
    "BalanceOut",
    "EarnRequest",
    "ReceiptOut",
    "RedeemRequest",
    "RefundRequest",
    "StatementOut",
]
