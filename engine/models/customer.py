"""Customers: one row per person or company, whatever source it came from."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import JsonDict, UtcDateTime

LIFECYCLE_STAGES = ("visitor", "client", "regular", "partner")
CONSENT_CHANNELS = ("email", "sms", "call", "post")


class Customer(SQLModel, table=True):
    """A customer or prospect (lifecycle stage ``visitor``).

    Contact data is normalised on import: ``email`` lower-case, ``phone`` E.164.
    ``attributes`` keeps custom attributes (declared in ``[customers.attributes]``
    of config.toml, usable in rules as ``attr.NAME``).
    """

    __tablename__ = "customer"
    __table_args__ = (
        Index("ix_customer_email", "email"),
        Index("ix_customer_phone", "phone"),
    )

    id: int | None = Field(default=None, primary_key=True)
    external_id: str | None = Field(default=None, unique=True, max_length=200)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    middle_name: str | None = Field(default=None, max_length=200)
    company: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=500)
    city: str | None = Field(default=None, max_length=200)
    country: str | None = Field(default=None, max_length=2)
    timezone: str | None = Field(default=None, max_length=64)
    birth_date: dt.date | None = None
    language: str | None = Field(default=None, max_length=16)
    curator: str | None = Field(default=None, max_length=200)
    consent_email: bool = False
    consent_email_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    consent_sms: bool = False
    consent_sms_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    consent_call: bool = False
    consent_call_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    consent_post: bool = False
    consent_post_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    lifecycle_stage: str | None = Field(default=None, max_length=16)
    verified_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonDict, nullable=False))
    source: str = Field(max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    updated_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)


class CustomerSourceRecord(SQLModel, table=True):
    """Provenance: what one source said about one customer, and when.

    One row per (source, source key); ``data`` holds the normalised fields that
    source gave, ``data_hash`` lets a re-import see that nothing changed.
    """

    __tablename__ = "customer_source_record"
    __table_args__ = (Index("ux_source_record_key", "source", "source_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    source: str = Field(max_length=100)
    source_key: str = Field(max_length=400)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonDict, nullable=False))
    data_hash: str = Field(max_length=64)
    import_id: int | None = Field(default=None, foreign_key="import_batch.id")
    line: int | None = None
    first_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    last_seen_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
