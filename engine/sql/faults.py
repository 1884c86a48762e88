"""Faults of the database's surroundings, told apart per database: read only, full, locked, unreachable.

A database that refuses the work for a reason outside the engine is the
user's or the administrator's to fix, not a bug: :func:`watch_faults` turns
such an error into a :class:`~engine.errors.DatabaseUnavailableError` where it
enters the engine (SQLAlchemy's ``handle_error`` hook of the engine), with
what the database answered and what to fix. What the database refused is
rolled back as any failed transaction is.

SQLite tells the fault by its result code, PostgreSQL by the SQLSTATE of the
error (none for a connection that could not be made). The kinds:

* ``read_only``: ``SQLITE_READONLY``, ``SQLITE_PERM``; ``25006`` (a read-only
  transaction, role or replica);
* ``privilege``: ``42501`` (the role lacks a privilege on a table);
* ``full``: ``SQLITE_FULL``; ``53100`` (the server's disk is full);
* ``locked``: ``SQLITE_BUSY``, ``SQLITE_LOCKED`` (another process held the
  write lock past the busy timeout); PostgreSQL's row locks wait instead;
* ``unreachable``: ``SQLITE_CANTOPEN``; no SQLSTATE (no connection), classes
  ``08`` (connection), ``28`` (authorisation), ``53`` (too many connections...),
  ``57P`` (shutting down, starting), ``3D000`` (no such database);
* ``unusable``: ``SQLITE_NOTADB``, ``SQLITE_CORRUPT``, ``SQLITE_IOERR``; class
  ``58`` (the server's own I/O).

Everything else is left as it is: a wrong statement, a missing table, a
broken constraint, a serialisation failure, and a lock timeout the caller
asked for (``55P03``, :mod:`engine.sql.locks` waits with it).
"""

from __future__ import annotations

from sqlalchemy import Dialect, Engine, event
from sqlalchemy.engine import ExceptionContext, make_url

from engine.errors import DatabaseUnavailableError
from engine.sql.dialect import spelling

# SQLite's primary result codes (https://www.sqlite.org/rescode.html)
_SQLITE_PERM = 3
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_CORRUPT = 11
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_SQLITE_NOTADB = 26

_SETTING = "engine.database_url (or CRM_DATABASE_URL)"


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def sqlite_file(url: str) -> str | None:
    """The file a SQLite URL names (``sqlite:///path`` or ``sqlite:///file:path?mode=ro&uri=true``).

    None for an in-memory database and for URLs of other databases.
    """
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database or ""
    if parsed.query.get("uri") == "true" and database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
        if parsed.query.get("mode") == "memory":
            return None
    if not database or database == ":memory:":
        return None
    return database


def _sqlite_fault(error: BaseException, where: str, _operational: bool) -> DatabaseUnavailableError | None:
    code = getattr(error, "sqlite_errorcode", None)
    if not isinstance(code, int):
        return None
    primary = code & 0xFF
    detail = _first_line(error)
    if primary in (_SQLITE_READONLY, _SQLITE_PERM):
        return DatabaseUnavailableError(
            where,
            "read_only",
            f"it refuses writes ({detail})",
            "make the file, and the folder it is in, writable for the user running crm, "
            f"or point {_SETTING} at a database that may be written",
        )
    if primary == _SQLITE_FULL:
        return DatabaseUnavailableError(
            where, "full", f"the disk is full ({detail})", "free space on the disk that holds it"
        )
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return DatabaseUnavailableError(
            where,
            "locked",
            f"another process kept it locked too long ({detail})",
            "wait until the other crm command (an import, a refresh, a worker) is done, then run this again",
        )
    if primary == _SQLITE_CANTOPEN:
        return DatabaseUnavailableError(
            where,
            "unreachable",
            f"cannot open it ({detail})",
            "check that the file and its folder exist and that the user running crm may read and write "
            f"them, or set {_SETTING}",
        )
    if primary in (_SQLITE_NOTADB, _SQLITE_CORRUPT, _SQLITE_IOERR):
        return DatabaseUnavailableError(
            where,
            "unusable",
            f"the file cannot be used as a database ({detail})",
            f"check the disk and that {_SETTING} names crm-engine's database (restore it from a backup "
            "if it is damaged)",
        )
    return None


def _postgresql_fault(error: BaseException, where: str, operational: bool) -> DatabaseUnavailableError | None:
    sqlstate = getattr(error, "sqlstate", None)
    detail = _first_line(error)
    connect = (
        "check that the server runs and accepts connections, and the host, port, user, password and "
        f"database name in {_SETTING}"
    )
    if sqlstate is None:
        if not operational:
            return None  # no SQLSTATE and no connection failure: the driver used wrongly, a bug
        return DatabaseUnavailableError(where, "unreachable", f"cannot connect ({detail})", connect)
    if sqlstate == "25006":
        return DatabaseUnavailableError(
            where,
            "read_only",
            f"it refuses writes ({detail})",
            "connect to a server that accepts writes (not a read-only replica) as a role whose "
            f"transactions are not read only (default_transaction_read_only), see {_SETTING}",
        )
    if sqlstate == "42501":
        return DatabaseUnavailableError(
            where,
            "privilege",
            f"the role may not do this ({detail})",
            f"grant the role of {_SETTING} the right to read and write crm-engine's tables, "
            "or connect as their owner",
        )
    if sqlstate == "53100":
        return DatabaseUnavailableError(
            where, "full", f"the server's disk is full ({detail})", "free space on the database server"
        )
    if sqlstate.startswith(("08", "28", "53", "57P")) or sqlstate == "3D000":
        return DatabaseUnavailableError(where, "unreachable", f"cannot use the server ({detail})", connect)
    if sqlstate.startswith("58"):
        return DatabaseUnavailableError(
            where,
            "unusable",
            f"the server failed to read or write its files ({detail})",
            "see the database server's log",
        )
    return None


def database_fault(error: BaseException, dialect: Dialect, where: str) -> DatabaseUnavailableError | None:
    """The :class:`DatabaseUnavailableError` for ``error`` (a DBAPI error), or None when it is no fault
    of the database's surroundings (see the module docstring). ``where`` names the database."""
    classify = spelling(dialect, postgresql=_postgresql_fault, sqlite=_sqlite_fault)
    return classify(error, where, isinstance(error, dialect.loaded_dbapi.OperationalError))


def _translate(context: ExceptionContext) -> Exception | None:
    if context.is_pre_ping or context.dialect is None:
        return None  # the pool's liveness check: it reconnects by itself
    error = context.original_exception
    if not isinstance(error, context.dialect.loaded_dbapi.Error):
        return None
    if context.engine is None:
        return database_fault(error, context.dialect, "(unknown)")
    url = context.engine.url
    where = sqlite_file(url.render_as_string(hide_password=False)) or url.render_as_string(hide_password=True)
    return database_fault(error, context.dialect, where)


def watch_faults(engine: Engine) -> Engine:
    """Make ``engine`` raise :class:`DatabaseUnavailableError` for faults of the database's surroundings.

    Installed by :func:`engine.db.make_engine` on every engine; the error is
    chained to the driver's (``raise ... from``).
    """
    event.listen(engine, "handle_error", _translate, retval=True)
    return engine
