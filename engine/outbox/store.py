"""The outbox tables and the one way the outbox is written: short transactions that take the write lock first.

On PostgreSQL a write transaction is an ordinary one (row locks and
``FOR UPDATE SKIP LOCKED`` share the work among workers); ``durable=False``
lets a commit return before its WAL reaches the disk, which only a crash of
the database server could undo (the send journal uses it: it guards against
crashes of workers). On SQLite it starts with ``BEGIN IMMEDIATE``, so the
write lock is taken before anything is read and concurrent writers wait for
each other (busy timeout) instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine

from engine.db import is_postgresql
from engine.models import CampaignRun, OutboxMessage, OutboxWorker

OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
RUN = CampaignRun.__table__  # type: ignore[attr-defined]
WORKER = OutboxWorker.__table__  # type: ignore[attr-defined]


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that commits on success and rolls back on any error, holding the write lock."""
    with engine.connect() as connection:
        if is_postgresql(engine):
            with connection.begin():
                if not durable:
                    connection.exec_driver_sql("SET LOCAL synchronous_commit = off")
                yield connection
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.rollback()
            raise
        connection.commit()
