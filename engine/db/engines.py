"""Database engines and sessions: SQLite file by default, PostgreSQL by URL.

Every connection runs in UTC. SQLite gets foreign keys, WAL and a busy
timeout; PostgreSQL is reached through psycopg 3 (``postgresql://`` URLs are
rewritten to ``postgresql+psycopg://``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from engine.errors import DatabaseError
from engine.sql import begin_write, install_sqlite_functions, relax_durability


def normalise_url(url: str) -> str:
    """Return ``url`` with the driver crm-engine uses for its dialect."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"cannot parse database URL {url!r}: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        raise DatabaseError(
            f"unsupported database {parsed.drivername!r} in {url!r} (supported: sqlite, postgresql)"
        )
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    install_sqlite_functions(dbapi_connection)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the SQLAlchemy engine for ``url`` (SQLite path or PostgreSQL URL)."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise DatabaseError(f"cannot create SQLite database {database}: no folder {parent}")
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("connect_args", {})
    kwargs["connect_args"].setdefault("options", "-c timezone=UTC")
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` with a readable reason if ``engine`` cannot connect."""
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(
            f"cannot connect to {engine.url.render_as_string(hide_password=True)}: {reason}"
        ) from exc


def require_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseError` unless ``crm init`` has created the schema."""
    check_connection(engine)
    if not inspect(engine).has_table("customer"):
        raise DatabaseError(
            f"no crm-engine schema in {engine.url.render_as_string(hide_password=True)}: run `crm init` first"
        )


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def write_transaction(engine: Engine, *, durable: bool = True) -> Iterator[Connection]:
    """A transaction that commits on success and rolls back on any error, holding the write lock.

    See :func:`engine.sql.statements.begin_write`; ``durable=False`` lets the
    commit return before the disk has it (:func:`engine.sql.statements.relax_durability`).
    """
    with engine.connect() as connection, begin_write(connection):
        if not durable:
            relax_durability(connection, transaction_only=True)
        yield connection
