"""SQL pieces the batch jobs build rows with inside ``INSERT ... SELECT``, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, String, Text, cast, func, literal

from engine.sql.types import UtcDateTime

_SQLITE_SHA256 = "crm_sha256_hex"


def at(instant: dt.datetime) -> ColumnElement[dt.datetime]:
    """An instant as a bound parameter of the engine's UTC type."""
    return literal(instant, UtcDateTime())


def text(value: str) -> ColumnElement[str]:
    """A string constant with a type PostgreSQL can see (``jsonb_build_object`` needs one)."""
    return cast(literal(value, String), Text)


def key(prefix: str, identifier: Any, suffix: str = "") -> ColumnElement[str]:
    """``<prefix><identifier><suffix>``: an idempotency key made from an id column."""
    made = literal(prefix, String) + cast(identifier, String)
    return made + literal(suffix, String) if suffix else made


def absent(lookup: Select[Any]) -> ColumnElement[bool]:
    """True when ``lookup`` (a correlated ``SELECT id ...``) finds no row.

    Written as ``(SELECT id ... LIMIT 1) IS NULL``: PostgreSQL runs that per
    row through the index, whatever its statistics say. A ``NOT EXISTS`` may
    be planned as an anti-join instead, which on tables not yet analysed
    (right after a large import) can scan every operation for every lot.
    """
    return lookup.limit(1).scalar_subquery().is_(None)


def json_object(dialect: str, **values: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON object built in SQL from ``values`` (key order kept)."""
    args: list[ColumnElement[Any]] = []
    for name, value in values.items():
        args += [text(name), value]
    if dialect == "postgresql":
        return func.jsonb_build_object(*args)
    return func.json_object(*args)


def iso_utc(dialect: str, column: Any) -> ColumnElement[str]:
    """A UTC time as ISO 8601, as ``datetime.isoformat`` writes it without microseconds."""
    if dialect == "postgresql":
        written = func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS')
    else:
        written = func.strftime("%Y-%m-%dT%H:%M:%S", column)
    return written + literal("+00:00", String)


def _sha256_hex(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


def sha256_hex(connection: Connection, value: ColumnElement[str]) -> ColumnElement[str]:
    """The SHA-256 of ``value`` (UTF-8) in hex; on SQLite through a function this connection is given."""
    if connection.dialect.name == "postgresql":
        return func.encode(func.sha256(func.convert_to(value, "UTF8")), "hex")
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.create_function(_SQLITE_SHA256, 1, _sha256_hex, deterministic=True)
    sha: ColumnElement[str] = getattr(func, _SQLITE_SHA256)(value)
    return sha
