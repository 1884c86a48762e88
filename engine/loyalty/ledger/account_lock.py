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

from sqlalchemy import ColumnElement, Connection, Integer, Row, Select, String, bindparam, select

from engine.loyalty.ledger.posting import customer_label_sql
from engine.models import ACCOUNT, CUSTOMER


def lock_accounts(connection: Connection, ids: Iterable[int]) -> dict[int, Row[Any]]:
    """Lock the accounts ``ids`` for this transaction and return their rows, read under the lock."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    # FOR UPDATE: row locks on PostgreSQL; SQLite has the write lock already and no such clause
    query = select(ACCOUNT).where(ACCOUNT.c.id.in_(wanted)).order_by(ACCOUNT.c.id).with_for_update()
    return {row.id: row for row in connection.execute(query)}


def lock_member(connection: Connection, programme: str, customer: int | str) -> Row[Any] | None:
    """Lock the account of ``customer`` (an id, or an external id) in ``programme``, in one statement.

    Returns the account's row read under the lock, with ``label`` (how receipts name the customer),
    or None when the customer has no account there (or is unknown): then the caller creates it.
    """
    statement = _BY_CUSTOMER_ID if isinstance(customer, int) else _BY_EXTERNAL_ID
    return connection.execute(statement, {"customer": customer, "programme": programme}).first()


def lock_account(connection: Connection, account_id: int) -> Row[Any] | None:
    """Lock the account ``account_id`` in one statement: its row read under the lock, with ``label``."""
    return connection.execute(_BY_ACCOUNT, {"account": account_id}).first()


def _locking(*where: ColumnElement[bool]) -> Select[Any]:
    return (
        select(ACCOUNT, customer_label_sql().label("label"))
        .join(CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id)
        .where(*where)
        .with_for_update(of=ACCOUNT)
    )


_IN_PROGRAMME = ACCOUNT.c.programme == bindparam("programme")
_BY_EXTERNAL_ID = _locking(CUSTOMER.c.external_id == bindparam("customer", type_=String), _IN_PROGRAMME)
_BY_CUSTOMER_ID = _locking(CUSTOMER.c.id == bindparam("customer", type_=Integer), _IN_PROGRAMME)
_BY_ACCOUNT = _locking(ACCOUNT.c.id == bindparam("account"))
