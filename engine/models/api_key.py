"""API keys of the shop's systems (POS, web shop) for the HTTP API.

A key is shown once when it is created (``crm api-keys create``):
``crm_<prefix>_<secret>``. Only its prefix (to find it) and the SHA-256 of
the whole key are stored. ``scopes`` lists what it may do: ``loyalty``
(earn, redeem, refund, balance, statement) and ``events`` (custom events).
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import UtcDateTime

API_SCOPES = ("loyalty", "events")


class ApiKey(SQLModel, table=True):
    """One client system's key: its name, scopes, hash, and whether it is revoked."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=200, description="comma-separated: loyalty,events")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
