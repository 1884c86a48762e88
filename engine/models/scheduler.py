"""The scheduler's tables: APScheduler's job store and the reload requests of ``crm scheduler --reload``.

``apscheduler_jobs`` is the table APScheduler 3's ``SQLAlchemyJobStore``
keeps its jobs in (one pickled job per row, ``next_run_time`` as a UTC
timestamp). It is declared here, column for column as APScheduler declares
it, so that the migrations create it with the rest of the schema and
APScheduler finds it there instead of creating it on its own.

``scheduler_reload`` holds each ``crm scheduler --reload``: the jobs the
campaign files asked for, and who applied them when. The scheduler that
holds the lock applies a request itself, so the job store is only ever
written by one process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, Float, LargeBinary, Table, Unicode
from sqlmodel import Field, SQLModel

from engine.clock import utcnow
from engine.sql import JsonDict, UtcDateTime

APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    SQLModel.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class SchedulerReload(SQLModel, table=True):
    """One ``crm scheduler --reload``: the wanted jobs, and when and by whom they were applied."""

    __tablename__ = "scheduler_reload"

    id: int | None = Field(default=None, primary_key=True)
    requested_at: dt.datetime = Field(default_factory=utcnow, sa_type=UtcDateTime, nullable=False)
    requested_by: str = Field(max_length=200)
    jobs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JsonDict, nullable=False))
    applied_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime)
    applied_by: str | None = Field(default=None, max_length=200)
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JsonDict, nullable=True))
