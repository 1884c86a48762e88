"""Claiming work: a batch of due ``queued`` rows of one channel becomes ``sending``, owned by one worker.

One statement does it::

    UPDATE outbox SET state = 'sending', claimed_by = :worker, attempts = attempts + 1
    WHERE id IN (SELECT id FROM outbox
                 WHERE state = 'queued' AND channel = :channel AND scheduled_at <= :now
                 ORDER BY scheduled_at, id LIMIT :n FOR UPDATE SKIP LOCKED)
    RETURNING id, run_id, customer_id, ...,
              (SELECT campaign FROM campaign_run WHERE id = outbox.run_id), (SELECT segment ...)

The run's campaign and segment come back with each row: the price a contact
records depends on them. On PostgreSQL ``SKIP LOCKED`` lets any number of workers on any number of
hosts claim side by side, each getting rows no other has; on SQLite the
statement runs under ``BEGIN IMMEDIATE`` (one writer at a time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, func, select, update

from engine.db import write_transaction
from engine.models import OUTBOX, QUEUED, RUN, SENDING


@dataclass(frozen=True)
class ClaimedRow:
    """An outbox row a worker owns while it sends it."""

    id: int
    run_id: int
    customer_id: int
    step: int
    channel: str
    variant: str | None
    recipient: str | None
    scheduled_at: dt.datetime
    attempts: int  # including the one in progress
    campaign: str | None = None  # the run's campaign and segment: what the contact costs depends on them
    segment: str | None = None

    @property
    def key(self) -> str:
        """The idempotency key: run, customer and step (the Message-ID derives from it)."""
        return f"{self.run_id}:{self.customer_id}:{self.step}"


_RETURNED = (
    OUTBOX.c.id,
    OUTBOX.c.run_id,
    OUTBOX.c.customer_id,
    OUTBOX.c.step,
    OUTBOX.c.channel,
    OUTBOX.c.variant,
    OUTBOX.c.recipient,
    OUTBOX.c.scheduled_at,
    OUTBOX.c.attempts,
    select(RUN.c.campaign).where(RUN.c.id == OUTBOX.c.run_id).scalar_subquery().label("campaign"),
    select(RUN.c.segment).where(RUN.c.id == OUTBOX.c.run_id).scalar_subquery().label("segment"),
)


def _due(channels: Collection[str], now: dt.datetime, run_id: int | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        OUTBOX.c.state == QUEUED,
        OUTBOX.c.channel.in_(channels),
        OUTBOX.c.scheduled_at <= now,
    ]
    if run_id is not None:
        where.append(OUTBOX.c.run_id == run_id)
    return where


def claim(
    engine: Engine,
    channel: str,
    worker_id: str,
    limit: int,
    now: dt.datetime,
    *,
    run_id: int | None = None,
) -> list[ClaimedRow]:
    """Claim up to ``limit`` due rows of ``channel`` (of run ``run_id`` only, when given), oldest first."""
    due = (
        select(OUTBOX.c.id)
        .where(*_due([channel], now, run_id))
        .order_by(OUTBOX.c.scheduled_at, OUTBOX.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite has one writer at a time and no such clause
    )
    statement = (
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(due.scalar_subquery()))
        .values(state=SENDING, claimed_by=worker_id, attempts=OUTBOX.c.attempts + 1, updated_at=now)
        .returning(*_RETURNED)
    )
    with write_transaction(engine) as connection:
        rows = connection.execute(statement).all()
    claimed = [ClaimedRow(**row._mapping) for row in rows]
    return sorted(claimed, key=lambda row: (row.scheduled_at, row.id))


def count_due(
    engine: Engine, channels: Collection[str], now: dt.datetime, *, run_id: int | None = None
) -> int:
    """How many rows of ``channels`` wait to be claimed at ``now``."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).select_from(OUTBOX).where(*_due(channels, now, run_id))
            ).scalar_one()
        )
