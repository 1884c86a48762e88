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

from engine.db.engines import write_transaction
from engine.models.tables import OUTBOX, RUN, WORKER

__all__ = ["OUTBOX", "RUN", "WORKER", "write_transaction"]
