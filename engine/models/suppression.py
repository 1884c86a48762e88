"""The suppression list: addresses that must not be contacted on a channel, and why."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import UtcDateTime

SUPPRESSION_REASONS = (
    "hard_bounce",
    "soft_bounce",
    "unsubscribe",
    "complaint",
    "wrong_number",
    "refused",
    "manual",
)


class Suppression(SQLModel, table=True):
    """One suppressed address on one channel (email lower-case, phone E.164)."""

    __tablename__ = "suppression"
    __table_args__ = (Index("ux_suppression_address", "channel", "address", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    address: str = Field(max_length=500)
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    reason: str = Field(max_length=20)
    detail: str | None = Field(default=None, max_length=1000)
    source: str = Field(default="manual", max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
