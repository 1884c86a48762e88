"""The installation: one row, made with the schema, that tells this database from every other.

Idempotency keys (``run:customer:step``) count from 1 in every database, so
a rebuilt demo, a second instance or a fresh test database repeat them.
``uid`` (32 random hex digits) is mixed into whatever must be unique beyond
one database, such as the Message-IDs of emails. It lives in the database: a
restored backup keeps it, a new database (``crm init``) gets its own.
:func:`engine.db.installation_id` reads it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import UtcDateTime


class Installation(SQLModel, table=True):
    """The one row naming this installation (``id`` is always 1)."""

    __tablename__ = "installation"
    __table_args__ = (CheckConstraint("id = 1", name="ck_installation_one_row"),)

    id: int = Field(default=1, primary_key=True)
    uid: str = Field(max_length=32, description="32 random hex digits, made once per database")
    created_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
