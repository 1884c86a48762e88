"""Purchases and refunds, the raw material of metrics and loyalty points."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Index, Numeric
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import Money, UtcDateTime


class Purchase(SQLModel, table=True):
    """One purchase, or the refund of an earlier one.

    ``amount`` is signed: a refund (``refund_of_id`` set) carries a negative
    amount, so sums over a customer's purchases are net of refunds.
    """

    __tablename__ = "purchase"
    # covers the metrics refresh: its GROUP BY customer reads only the index, never the table
    __table_args__ = (
        Index("ix_purchase_customer_time", "customer_id", "ordered_at", "refund_of_id", "amount", "margin"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(unique=True, max_length=200)
    customer_id: int = Field(foreign_key="customer.id")
    ordered_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    amount: Decimal = Field(sa_type=Money, nullable=False)
    currency: str = Field(max_length=3)
    category: str | None = Field(default=None, max_length=200)
    sku: str | None = Field(default=None, max_length=200)
    quantity: Decimal = Field(default=Decimal(1), sa_type=Numeric(12, 3), nullable=False)
    margin: Decimal | None = Field(default=None, sa_type=Money)
    refund_of_id: int | None = Field(default=None, foreign_key="purchase.id", index=True)
    source: str | None = Field(default=None, max_length=100)
    import_id: int | None = Field(default=None, foreign_key="import_batch.id")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
