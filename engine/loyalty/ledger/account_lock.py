"""One writer per loyalty account at a time, with every invariant re-checked under the lock.

Every command runs in :func:`engine.db.write_transaction`: on SQLite that is
``BEGIN IMMEDIATE`` (one writer for the whole database, taken before anything
is read); on PostgreSQL, :func:`lock_accounts` takes a row lock on each
account the command touches (``SELECT ... FOR UPDATE``, in id order so two
commands on the same pair of accounts cannot deadlock). Balances are read
after the lock, so a concurrent redemption sees the points the first one left.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Row, select

from engine.models import ACCOUNT


def lock_accounts(connection: Connection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Lock the accounts ``ids`` for this transaction and return their rows, read under the lock."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    # FOR UPDATE: row locks on PostgreSQL; SQLite has the write lock already and no such clause
    query = select(ACCOUNT).where(ACCOUNT.c.id.in_(wanted)).order_by(ACCOUNT.c.id).with_for_update()
    return {row.id: row for row in connection.execute(query)}
