"""Faults of the database's surroundings become DatabaseUnavailableError where they enter; bugs stay bugs.

Every engine :func:`engine.db.make_engine` makes translates what the
database answers when it refuses the work (read only, no privilege, locked,
unreachable, not a database) into an engine error naming the database and
what to fix, chained to the driver's error. A wrong statement, a missing
table, a broken constraint stay SQLAlchemy's errors: they are bugs. How the
faults are made: tests/cli/faults.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine.db import require_schema, serialised, upgrade
from engine.db.engines import make_engine
from engine.errors import DatabaseError, DatabaseUnavailableError
from engine.models.tables import CUSTOMER
from engine.sql import database_fault
from tests.cli.faults import postgres_role, read_only_url
from tests.factories import add_customer


def test_writes_to_a_read_only_database_are_refused_with_what_to_fix(db: Engine, db_url: str) -> None:
    with read_only_url(db_url) as url:
        engine = make_engine(url)
        try:
            with engine.connect() as connection:  # reading is fine
                assert connection.execute(select(CUSTOMER.c.id)).all() == []
            with pytest.raises(DatabaseUnavailableError) as refused, engine.begin() as connection:
                add_customer(connection, email="a@example.ru")
        finally:
            engine.dispose()
    error = refused.value
    assert error.kind == "read_only" and "it refuses writes" in str(error)
    assert "engine.database_url (or CRM_DATABASE_URL)" in str(error)
    assert error.__cause__ is not None and type(error.__cause__).__module__.startswith(("sqlite3", "psycopg"))
    with db.connect() as connection:
        assert connection.execute(select(CUSTOMER.c.id)).all() == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_role_without_the_privilege_is_refused(db: Engine, db_url: str) -> None:
    with postgres_role(db_url, select_only=True) as url:
        engine = make_engine(url)
        try:
            with pytest.raises(DatabaseUnavailableError) as refused, engine.begin() as connection:
                add_customer(connection)
        finally:
            engine.dispose()
    assert refused.value.kind == "privilege" and "permission denied for table customer" in str(refused.value)


def test_an_unreachable_server_and_a_file_that_is_no_database(tmp_path: Path) -> None:
    down = make_engine("postgresql://crm@127.0.0.1:1/crm", connect_args={"connect_timeout": 2})
    with pytest.raises(DatabaseUnavailableError) as unreachable:
        down.connect()
    assert unreachable.value.kind == "unreachable" and "check that the server runs" in str(unreachable.value)
    assert "crm@127.0.0.1:1/crm" in str(unreachable.value)

    garbage = tmp_path / "crm.db"
    garbage.write_bytes(b"this is not a database, only text saved under its name" * 100)
    engine = make_engine(f"sqlite:///{garbage}")
    with pytest.raises(DatabaseUnavailableError) as unusable:
        require_schema(engine)
    assert unusable.value.kind == "unusable" and str(garbage) in str(unusable.value)
    engine.dispose()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_sqlite_database_locked_too_long_is_named(db: Engine, db_url: str) -> None:
    """Another process holds the write lock past the busy timeout (here 0.1 s instead of 30)."""
    holder = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with db.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout = 100")
            with pytest.raises(DatabaseUnavailableError) as locked:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.value.kind == "locked" and "wait until the other crm command" in str(locked.value)


def test_bugs_stay_bugs(db: Engine) -> None:
    """A wrong statement, a missing table, a broken constraint: SQLAlchemy's errors, not a user's fault."""
    for statement in ("SELEC 1", "SELECT * FROM no_such_table", "SELECT no_such_column FROM customer"):
        with pytest.raises(DBAPIError) as raised, db.connect() as connection:
            connection.execute(text(statement))
        assert not isinstance(raised.value, DatabaseUnavailableError), statement
    with db.begin() as connection:
        add_customer(connection, id=70)
    with pytest.raises(IntegrityError), db.begin() as connection:
        add_customer(connection, id=70)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_dropped_connection_is_replaced_by_the_pool_not_reported(db: Engine, db_url: str) -> None:
    """pool_pre_ping finds a connection the server closed and reconnects: not a fault to report."""
    with db.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    with db.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_only_init_creates_a_sqlite_database(tmp_path: Path) -> None:
    database = tmp_path / "crm.db"
    engine = make_engine(f"sqlite:///{database}")
    with pytest.raises(DatabaseError, match="run `crm init` first to create it"):
        require_schema(engine)
    assert not database.exists()

    folder = tmp_path / "crm.db.d"
    folder.mkdir()
    with pytest.raises(DatabaseError, match="is a folder, not a database file"):
        require_schema(make_engine(f"sqlite:///{folder}"))

    nowhere = make_engine(f"sqlite:///{tmp_path / 'data' / 'crm.db'}")
    with pytest.raises(DatabaseError, match="does not exist: create the folder"):
        upgrade(nowhere)
    assert not (tmp_path / "data").exists()

    upgrade(engine)
    require_schema(engine)
    engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_serialised_work_waits_for_the_holder(db: Engine) -> None:
    """Two holders of one name on PostgreSQL: the second enters only after the first left."""
    events: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.wait(30)
        with serialised(db, "test"):
            events.append("second in")

    thread = threading.Thread(target=second)
    thread.start()
    with serialised(db, "test"):
        events.append("first in")
        entered.set()
        time.sleep(0.5)
        with serialised(db, "another name"):  # other names are not held up
            events.append("other in")
        events.append("first out")
    thread.join(30)
    assert events == ["first in", "other in", "first out", "second in"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_serialised_work_on_sqlite_takes_no_lock(db: Engine) -> None:
    """SQLite's write lock serialises writers already: holding a name blocks no writer."""
    with serialised(db, "test"), db.begin() as connection:
        add_customer(connection)
    with db.connect() as connection:
        assert len(connection.execute(select(CUSTOMER.c.id)).all()) == 1


LITE = "sqlite:///crm.db"
PG = "postgresql://crm@db/crm"


def _sqlite_error(code: int, text: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(text)
    error.sqlite_errorcode = code  # as SQLite sets it
    return error


@pytest.mark.parametrize(
    ("url", "make", "kind"),
    [
        (LITE, lambda: _sqlite_error(8, "attempt to write a readonly database"), "read_only"),
        (LITE, lambda: _sqlite_error(13, "database or disk is full"), "full"),
        (LITE, lambda: _sqlite_error(5, "database is locked"), "locked"),
        (LITE, lambda: _sqlite_error(14, "unable to open database file"), "unreachable"),
        (LITE, lambda: _sqlite_error(26, "file is not a database"), "unusable"),
        (LITE, lambda: _sqlite_error(10 | (12 << 8), "disk I/O error"), "unusable"),
        (LITE, lambda: _sqlite_error(1, "no such table: customer"), None),
        (PG, lambda: psycopg.errors.DiskFull("no space"), "full"),
        (
            PG,
            lambda: psycopg.errors.ReadOnlySqlTransaction("ro"),
            "read_only",
        ),
        (
            PG,
            lambda: psycopg.errors.InsufficientPrivilege("no"),
            "privilege",
        ),
        (PG, lambda: psycopg.errors.AdminShutdown("bye"), "unreachable"),
        (PG, lambda: psycopg.OperationalError("refused"), "unreachable"),
        (PG, lambda: psycopg.errors.LockNotAvailable("wait"), None),
        (PG, lambda: psycopg.errors.SerializationFailure("retry"), None),
        (PG, lambda: psycopg.errors.UndefinedTable("none"), None),
        (PG, lambda: psycopg.errors.SyntaxError("bad"), None),
    ],
)
def test_every_fault_has_its_kind_and_bugs_have_none(url: str, make, kind: str | None) -> None:  # type: ignore[no-untyped-def]
    """Disk full and the rest, which a test cannot make for real on a shared machine, by their codes."""
    engine = make_engine(url)
    fault = database_fault(make(), engine.dialect, "the database")
    assert (fault.kind if fault is not None else None) == kind
    if fault is not None:
        assert str(fault).startswith("database the database: ") and fault.fix
