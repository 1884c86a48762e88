"""Statements that SQLite and PostgreSQL run differently: one function each, taking the connection.

* :func:`insert_ignoring`: an ``INSERT`` that skips rows a unique key already holds;
* :func:`rowcount`: the rows an ``INSERT ... SELECT`` or ``UPDATE`` wrote;
* :func:`begin_write`: a write transaction that takes the write lock first;
  :func:`relax_durability` / :func:`restore_durability` for a connection
  whose commits may return before the disk has them;
* :func:`lock_rows`, :func:`lock_table`: locks held until the transaction ends;
  :func:`serialise`: one transaction at a time under a name;
* :func:`probe_write`: a write that changes nothing, to learn whether writes are refused;
* :func:`analyze`, :func:`planner_rows`: the planner's statistics;
* :func:`allocate_ids`, :func:`new_id`: ids for rows inserted in bulk.

PostgreSQL runs many writers at once with row locks; SQLite has one writer
at a time (its write lock, taken first by :func:`begin_write`), so several
of these do nothing there: the docstring of each says what and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Executable,
    Integer,
    Select,
    String,
    Table,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from engine.sql.dialect import spelling


def _postgresql(connection: Connection) -> bool:
    return spelling(connection, postgresql=True, sqlite=False)


def insert_ignoring(bind: Connection, table: Table, *, index_elements: Sequence[str] | None = None) -> Insert:
    """``INSERT INTO table`` that skips a row whose unique key (``index_elements``, else any) is taken.

    Add ``.values(...)`` or ``.from_select(...)``; ``.returning(table.c.id)``
    tells which rows went in (psycopg reports no rowcount with ``RETURNING``).
    """
    keys = list(index_elements) if index_elements else None
    if _postgresql(bind):
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)


def rowcount(connection: Connection, statement: Executable) -> int:
    """Rows ``statement`` wrote (psycopg keeps the count of an ``INSERT ... SELECT`` only when asked)."""
    return int(connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


@contextmanager
def begin_write(connection: Connection) -> Iterator[Connection]:
    """A transaction on ``connection`` that commits on success and rolls back on any error.

    SQLite starts it with ``BEGIN IMMEDIATE``: the write lock is taken before
    anything is read, so concurrent writers wait for each other (busy
    timeout) instead of failing halfway. PostgreSQL begins as usual (row
    locks and ``SKIP LOCKED`` share the work among writers).
    """
    if _postgresql(connection):
        with connection.begin():
            yield connection
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        connection.rollback()
        raise
    connection.commit()


def relax_durability(connection: Connection, *, transaction_only: bool = False) -> None:
    """Let commits on ``connection`` return before the disk has them (PostgreSQL's ``synchronous_commit``).

    Only a crash of the database server could undo such a commit, never a
    crash of the engine. ``transaction_only``: for the current transaction
    (``SET LOCAL``), else for the session until :func:`restore_durability`.
    SQLite commits as the engine's ``synchronous=NORMAL`` pragma says.
    """
    if _postgresql(connection):
        scope = "SET LOCAL" if transaction_only else "SET"
        connection.exec_driver_sql(f"{scope} synchronous_commit = off")


def restore_durability(connection: Connection) -> None:
    """Undo :func:`relax_durability` for the session (commits wait for the disk again)."""
    if _postgresql(connection):
        connection.exec_driver_sql("RESET synchronous_commit")


def lock_rows(connection: Connection, query: Select[Any]) -> None:
    """Lock the rows ``query`` selects until the transaction ends (``SELECT ... FOR UPDATE``).

    The ids stay in the server. SQLite needs nothing: the transaction's
    write lock (:func:`begin_write`) already keeps every other writer out.
    """
    if _postgresql(connection):
        locked = query.with_for_update().subquery()
        connection.execute(select(func.count()).select_from(locked))


def lock_table(connection: Connection, table: Table) -> None:
    """One writer of ``table`` at a time until the transaction ends; readers are not blocked.

    PostgreSQL: ``LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE``; SQLite's
    write lock does the same already.
    """
    if _postgresql(connection):
        connection.exec_driver_sql(f'LOCK TABLE "{table.name}" IN SHARE ROW EXCLUSIVE MODE')


def serialise(connection: Connection, name: str) -> None:
    """One transaction at a time holds ``name``: another one asking for it waits until this one ends.

    PostgreSQL: a transaction-level advisory lock (``pg_advisory_xact_lock``) on
    a 64-bit key drawn from ``name``, released at commit or rollback (the
    scheduler's session lock, two 32-bit keys, never meets it). SQLite needs
    nothing: one writer at a time already (:func:`begin_write`).
    """
    if _postgresql(connection):
        key = int.from_bytes(hashlib.sha256(f"crm-engine:{name}".encode()).digest()[:8], "big", signed=True)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def probe_write(connection: Connection, table: str, *, wait: float = 1.0) -> None:
    """A write to ``table`` that changes no row: it fails as any write would, then roll the transaction back.

    ``UPDATE table SET <first column> = <first column> WHERE 1 = 0``: a read-only
    database, transaction or role, a role without the privilege, a full disk
    refuse it. PostgreSQL checks all of that before it looks at a row and
    takes no row lock. SQLite takes its write lock for it, waiting at most
    ``wait`` seconds for another writer (then it fails as locked: another
    process is writing, so the database does take writes).
    """
    quoted = connection.dialect.identifier_preparer.quote(table)
    column = connection.exec_driver_sql(f"SELECT * FROM {quoted} WHERE 1 = 0").keys()
    first = connection.dialect.identifier_preparer.quote(next(iter(column)))
    statement = f"UPDATE {quoted} SET {first} = {first} WHERE 1 = 0"
    if _postgresql(connection):
        connection.exec_driver_sql(statement)
        return
    previous = int(connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one())
    connection.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, int(wait * 1000))}")
    try:
        connection.exec_driver_sql(statement)
    finally:
        connection.exec_driver_sql(f"PRAGMA busy_timeout = {previous}")


def analyze(connection: Connection, *tables: str) -> None:
    """Refresh the planner's statistics of ``tables`` just filled, so the next queries plan well.

    PostgreSQL plans from statistics that autovacuum updates only later, and
    temporary tables have none until analysed; without them the planner may
    pick a nested loop that is quadratic in the rows. SQLite plans from its
    indexes and is left as it is.
    """
    if tables and _postgresql(connection):
        connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")


def planner_rows(connection: Connection, table: str) -> float | None:
    """How many rows the planner's statistics believe ``table`` holds; None where none are kept (SQLite)."""
    if not _postgresql(connection):
        return None
    known = connection.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:table AS regclass)"), {"table": table}
    ).scalar_one()
    return max(0.0, float(known))


def allocate_ids(connection: Connection, table: str, count: int) -> list[int]:
    """Ids for ``count`` new rows of ``table``, so one plain executemany inserts them.

    PostgreSQL draws them from the table's id sequence; SQLite continues after
    the highest id (the transaction already holds the write lock).
    """
    if count <= 0:
        return []
    if _postgresql(connection):
        query = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")
        return [int(value) for value in connection.execute(query, {"table": table, "n": count}).scalars()]
    highest = connection.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{table}"').scalar_one()
    return list(range(int(highest) + 1, int(highest) + 1 + count))


def new_id(connection: Connection, table: str, order: ColumnElement[Any]) -> ColumnElement[int]:
    """The id of a new row of ``table`` for each row of an ``INSERT ... SELECT``, numbered by ``order``.

    PostgreSQL: the next value of the table's sequence; SQLite: the highest
    id so far plus the row's number (the transaction holds the write lock).
    """
    if _postgresql(connection):
        sequence = connection.execute(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table}
        ).scalar_one()
        drawn: ColumnElement[int] = func.nextval(literal(sequence, String))
        return drawn
    base = connection.exec_driver_sql(f'SELECT coalesce(max(id), 0) FROM "{table}"').scalar_one()
    return literal(int(base), Integer) + func.row_number().over(order_by=order)


def drop_temporary(connection: Connection, *tables: Table) -> None:
    """Drop the temporary ``tables`` of this transaction (created with ``postgresql_on_commit="DROP"``).

    PostgreSQL drops them at commit (and a statement after an error would
    fail in the aborted transaction); SQLite keeps them for the connection,
    so they are dropped here.
    """
    if not _postgresql(connection):
        for table in tables:
            table.drop(connection)
