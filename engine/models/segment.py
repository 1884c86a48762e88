"""Segments, their membership history and their refreshes."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from engine.sql import UtcDateTime


class Segment(SQLModel, table=True):
    """The last refreshed state of a segment defined in config.toml."""

    __tablename__ = "segment"

    name: str = Field(primary_key=True, max_length=100)
    rule: str
    strategy: str | None = Field(default=None, max_length=20)
    rule_hash: str = Field(max_length=64)
    members: int = 0
    refreshed_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class SegmentMembership(SQLModel, table=True):
    """One stay of a customer in a segment: open while ``left_at`` is null.

    A customer who leaves and comes back has two rows, so entries and
    migrations between segments can be evaluated later.
    """

    __tablename__ = "segment_membership"
    __table_args__ = (
        Index(
            "ux_membership_current",
            "segment",
            "customer_id",
            unique=True,
            sqlite_where=text("left_at IS NULL"),
            postgresql_where=text("left_at IS NULL"),
        ),
        Index("ix_membership_customer", "customer_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    segment: str = Field(foreign_key="segment.name", max_length=100)
    customer_id: int = Field(foreign_key="customer.id")
    entered_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    left_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)


class SegmentRefresh(SQLModel, table=True):
    """The record of one refresh of one segment: how many entered, left, stayed."""

    __tablename__ = "segment_refresh"

    id: int | None = Field(default=None, primary_key=True)
    segment: str = Field(foreign_key="segment.name", max_length=100, index=True)
    refreshed_at: dt.datetime = Field(sa_type=UtcDateTime, nullable=False)
    entered: int = 0
    left: int = 0
    members: int = 0
