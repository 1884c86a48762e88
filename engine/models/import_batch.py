"""One import of one file: what came in, what was rejected and where the rejects went."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import UtcDateTime


class ImportBatch(SQLModel, table=True):
    """The record of one ``crm import`` run."""

    __tablename__ = "import_batch"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # customers | purchases
    source: str = Field(max_length=100)
    path: str = Field(max_length=1000)
    sha256: str = Field(max_length=64)
    started_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    finished_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    merged: int = 0
    unchanged: int = 0
    rejected: int = 0
    rejects_path: str | None = Field(default=None, max_length=1000)
