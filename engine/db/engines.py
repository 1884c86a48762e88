"""Database engines and sessions: SQLite file by default, PostgreSQL by URL.

Every connection runs in UTC. SQLite gets foreign keys, WAL and a busy
timeout; PostgreSQL is reached through psycopg 3 (``postgresql://`` URLs are
rewritten to ``postgresql+psycopg://``). A database that refuses the work
for a reason outside the engine (read only, full, locked, unreachable)
raises :class:`~engine.errors.DatabaseUnavailableError` from every engine
made here (:func:`engine.sql.watch_faults`).

Only ``crm init`` (:func:`engine.db.upgrade`) creates a SQLite file: every
other command asks :func:`require_schema` first, which names a missing file
rather than leaving an empty one behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlmodel import Session

from engine.errors import DatabaseError, DatabaseUnavailableError
from engine.sql import (
    begin_write,
    install_sqlite_functions,
    relax_durability,
    serialise,
    sqlite_file,
    watch_faults,
)

SCHEMA_REVISION = "0010"
"""The migration this version of the engine works with (engine/db/migrations; a test keeps them equal)."""


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
    """Create the SQLAlchemy engine for ``url`` (SQLite path or PostgreSQL URL); nothing is connected yet."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return watch_faults(engine)
    kwargs.setdefault("connect_args", {})
    kwargs["connect_args"].setdefault("options", "-c timezone=UTC")
    kwargs.setdefault("pool_pre_ping", True)
    return watch_faults(create_engine(url, **kwargs))


def _where(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _sqlite_path(engine: Engine) -> Path | None:
    """The file of a SQLite database, resolved (a relative path is the working folder's); None otherwise."""
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    return Path(database).expanduser().resolve() if database else None


def check_folder(engine: Engine) -> None:
    """Raise :class:`DatabaseError` when the folder a SQLite file is to be created in does not exist."""
    path = _sqlite_path(engine)
    if path is None or path.exists():
        return
    if not path.parent.is_dir():
        what = "is not a folder" if path.parent.exists() else "does not exist"
        raise DatabaseError(
            f"cannot create the SQLite database {path}: its folder {path.parent} {what}: create the folder, "
            "or set engine.database_url (or CRM_DATABASE_URL) to a file in a folder that exists"
        )


def check_connection(engine: Engine) -> None:
    """Raise :class:`DatabaseError` with a readable reason if ``engine`` cannot connect."""
    try:
        with engine.connect():
            pass
    except DatabaseUnavailableError:
        raise  # names the database, what it answered and what to fix
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseError(f"cannot connect to {_where(engine)}: {reason}") from exc


def require_schema(engine: Engine) -> None:
    """Raise :class:`DatabaseError` unless ``crm init`` has created the schema.

    A SQLite file that does not exist is named, and not created: only
    ``crm init`` creates the database.
    """
    path = _sqlite_path(engine)
    if path is not None and not path.is_file():
        what = "is a folder, not a database file" if path.is_dir() else "does not exist"
        raise DatabaseError(
            f"no database: the SQLite file {path} {what}: run `crm init` first to create it, "
            "or set engine.database_url (or CRM_DATABASE_URL) to the database to use"
        )
    check_connection(engine)
    if not inspect(engine).has_table("customer"):
        raise DatabaseError(f"no crm-engine schema in {_where(engine)}: run `crm init` first")
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if revision is None or str(revision) < SCHEMA_REVISION:
        raise DatabaseError(
            f"the schema of {_where(engine)} is at revision {revision or 'none'}; this version of crm-engine "
            f"needs {SCHEMA_REVISION}: run `crm init` to upgrade it (your data is kept)"
        )
    if str(revision) > SCHEMA_REVISION:
        raise DatabaseError(
            f"the schema of {_where(engine)} is at revision {revision}, newer than this version of "
            f"crm-engine knows ({SCHEMA_REVISION}): upgrade crm-engine"
        )


@contextmanager
def serialised(engine: Engine, name: str) -> Iterator[None]:
    """One holder of ``name`` at a time across processes and hosts; others wait here until it is done.

    For work of several transactions (``crm refresh``: metrics, scores,
    segments) that two at once would break. The lock lives in a transaction
    of a connection of its own (:func:`engine.sql.serialise`), held until the
    block ends; on SQLite, whose write lock lets one writer in at a time
    already, it is nothing.
    """
    with engine.connect() as connection, connection.begin():
        serialise(connection, name)
        yield


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
