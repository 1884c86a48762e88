"""Every SQL function whose spelling differs between SQLite and PostgreSQL, one construct each.

Each is made by :func:`engine.sql.dialect.construct` from its two spellings,
chosen so that both databases compute exactly what Python computes (the
docstring of each says how); ``tests/sql/test_functions.py`` runs every one
on both databases against the value Python gives.

* rules: :data:`Truth`, :data:`TrueDivide`, :data:`IntegerDivide`, :data:`Contains`,
  :data:`AsciiLower`, :data:`AsciiUpper`, :data:`BinaryCollation`;
* dates and times: :data:`DateToDatetime`, :data:`UtcDate`, :data:`DaysSince`,
  :data:`ElapsedDays`, :data:`MonthDay`, :data:`JsonDate`, :data:`EpochSeconds`,
  :data:`PlusSeconds`, :data:`PlusDays`, :data:`IsoUtc`;
* numbers: :data:`FloorPoints`, :data:`Least`, :data:`Greatest`, :data:`AmountText`;
* text and JSON: :data:`Sha256Hex`, :data:`JsonObject` (see :func:`json_object`), :data:`JsonText`.

SQLite lacks SHA-256: :func:`install_sqlite_functions` gives every SQLite
connection the Python function its spelling calls (the engine factory does
it when a connection opens).
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    DateTime,
    Integer,
    Numeric,
    String,
    Text,
    cast,
    literal,
)
from sqlalchemy.types import NullType

from engine.sql.dialect import construct
from engine.sql.types import UtcDateTime

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()

# --- rules ---------------------------------------------------------------------------------------

Truth = construct(
    "rule_truth",
    NullType(),
    postgresql="{0}",
    sqlite="{0}",
    doc="""A boolean column standing alone as a condition, rendered bare.

    SQLAlchemy writes a boolean column in a WHERE as ``col = 1`` on SQLite,
    which its planner reads as an equality constraint and which can make it
    start from the wrong table; the bare column means the same (0 false,
    NULL unknown) on SQLite and is plain SQL on PostgreSQL. Untyped, so
    SQLAlchemy adds no comparison of its own.
    """,
)
TrueDivide = construct(
    "rule_true_divide",
    Numeric(),
    postgresql="(CAST({0} AS NUMERIC) / NULLIF({1}, 0))",
    sqlite="(CAST({0} AS REAL) / NULLIF({1}, 0))",
    doc="``a / b`` as true division (integers do not truncate); NULL when ``b`` is zero.",
)
IntegerDivide = construct(
    "rule_integer_divide",
    Integer(),
    postgresql="({0} / {1})",
    sqlite="({0} / {1})",
    doc="``a / b`` on non-negative integers (truncating, the same in both databases).",
)
Contains = construct(
    "rule_contains",
    Boolean(),
    postgresql="(strpos({0}, {1}) > 0)",
    sqlite="(instr({0}, {1}) > 0)",
    doc="Case-sensitive substring test (never ``LIKE``, which SQLite folds case for).",
)
AsciiLower = construct(
    "rule_ascii_lower",
    String(),
    postgresql=f"translate({{0}}, '{_UPPER}', '{_LOWER}')",
    sqlite="lower({0})",
    doc="Lower-case ASCII letters only (SQLite's ``lower`` does exactly that).",
)
AsciiUpper = construct(
    "rule_ascii_upper",
    String(),
    postgresql=f"translate({{0}}, '{_LOWER}', '{_UPPER}')",
    sqlite="upper({0})",
    doc="Upper-case ASCII letters only (SQLite's ``upper`` does exactly that).",
)
BinaryCollation = construct(
    "rule_binary_collation",
    String(),
    postgresql='({0} COLLATE "C")',
    sqlite="{0}",
    doc="""A string compared by code point, as Python compares ``str``.

    SQLite's default BINARY collation already compares UTF-8 bytes, which
    orders like Python; PostgreSQL needs ``COLLATE "C"``.
    """,
)

# --- dates and times -----------------------------------------------------------------------------

DateToDatetime = construct(
    "rule_date_to_datetime",
    DateTime(timezone=True),
    postgresql="(CAST({0} AS TIMESTAMP) AT TIME ZONE 'UTC')",
    sqlite="({0} || ' 00:00:00.000000')",
    doc="""A date promoted to midnight UTC.

    On SQLite it is spelled in the storage format of naive UTC datetimes
    (``YYYY-MM-DD HH:MM:SS.ffffff``) so text comparison stays exact; on
    PostgreSQL midnight at UTC whatever the session time zone.
    """,
)
UtcDate = construct(
    "rule_utc_date",
    Date(),
    postgresql="CAST(({0} AT TIME ZONE 'UTC') AS DATE)",
    sqlite="date({0})",  # stored as naive UTC text
    doc="The UTC calendar date of a stored time.",
)
DaysSince = construct(
    "rule_days_since",
    Integer(),
    postgresql="(CAST({1} AS DATE) - CAST({0} AS DATE))",
    sqlite="CAST(julianday({1}) - julianday(date({0})) AS INTEGER)",
    doc="Whole days from the (UTC) date of a date or time to a given day: ``DaysSince(x, today)``.",
)
ElapsedDays = construct(
    "metrics_elapsed_days",
    Integer(),
    postgresql="CAST(floor(extract(epoch FROM ({1} - {0})) / 86400) AS INTEGER)",
    sqlite="CAST(julianday({1}) - julianday({0}) AS INTEGER)",
    doc="Whole days of 24 hours elapsed from a stored time to a later one: ``ElapsedDays(start, end)``.",
)
MonthDay = construct(
    "month_day",
    String(),
    postgresql="to_char({0}, 'MM-DD')",
    sqlite="strftime('%m-%d', {0})",
    doc="``MM-DD`` of a date (an anniversary's day of the year).",
)
JsonDate = construct(
    "json_date",
    Date(),
    postgresql="CAST({0} AS DATE)",
    sqlite="date({0})",
    doc="A ``YYYY-MM-DD`` string read from a JSON document, as a date.",
)
EpochSeconds = construct(
    "epoch_seconds",
    Integer(),
    postgresql="CAST(floor(extract(epoch FROM {0})) AS BIGINT)",
    sqlite="CAST(strftime('%s', {0}) AS INTEGER)",
    doc="Whole seconds since 1970-01-01 UTC of a stored time.",
)
PlusSeconds = construct(
    "plus_seconds",
    UtcDateTime(),
    postgresql="({0} + {1} * INTERVAL '1 second')",
    sqlite="(strftime('%Y-%m-%d %H:%M:%S', {0}, '+' || {1} || ' seconds') || substr({0}, 20))",
    doc="A stored time plus whole seconds, stored alike (SQLite: text with microseconds).",
)
PlusDays = construct(
    "plus_days",
    UtcDateTime(),
    postgresql="({0} + {1} * INTERVAL '24 hours')",
    sqlite="(strftime('%Y-%m-%d %H:%M:%S', {0}, '+' || {1} || ' days') || substr({0}, 20))",
    doc="A stored time plus whole days of 24 hours, stored alike (SQLite: text with microseconds).",
)
IsoUtc = construct(
    "iso_utc",
    String(),
    postgresql="(to_char(timezone('UTC', {0}), 'YYYY-MM-DD\"T\"HH24:MI:SS') || '+00:00')",
    sqlite="(strftime('%Y-%m-%dT%H:%M:%S', {0}) || '+00:00')",
    doc="A stored time as ISO 8601 in UTC, as ``datetime.isoformat`` writes it without microseconds.",
)

# --- numbers -------------------------------------------------------------------------------------

FloorPoints = construct(
    "floor_points",
    Integer(),
    postgresql="GREATEST(0, CAST(floor(round(CAST({0} AS NUMERIC), 6)) AS BIGINT))",
    # CAST truncates, which is the floor for what is not negative
    sqlite="max(0, CAST(round({0}, 6) AS INTEGER))",
    doc="Points from a number: rounded to 6 decimals, floored, never below 0.",
)
Least = construct(
    "least",
    Integer(),
    postgresql="LEAST({0}, {1})",
    sqlite="min({0}, {1})",
    doc="The smaller of two integers.",
)
Greatest = construct(
    "greatest",
    Integer(),
    postgresql="GREATEST({0}, {1})",
    sqlite="max({0}, {1})",
    doc="The larger of two integers, never NULL.",
)
AmountText = construct(
    "amount_text",
    String(),
    postgresql="CAST(CAST({0} AS NUMERIC(14, 2)) AS TEXT)",
    sqlite="printf('%.2f', {0})",
    doc="A money amount as text with two decimals (``120.00``), as ``str`` of the Decimal.",
)

# --- text and JSON -------------------------------------------------------------------------------

SQLITE_SHA256 = "crm_sha256"
Sha256Hex = construct(
    "sha256_hex",
    String(),
    postgresql="encode(sha256(convert_to({0}, 'UTF8')), 'hex')",
    sqlite=f"{SQLITE_SHA256}({{0}})",
    doc="SHA-256 of UTF-8 text, in hex (SQLite: a Python function every connection is given).",
)
JsonObject = construct(
    "json_object",
    String(),
    postgresql="jsonb_build_object({args})",
    sqlite="json_object({args})",
    doc="A JSON object from key, value pairs, escaped by the database (see :func:`json_object`).",
)
JsonText = construct(
    "json_text",
    String(),
    postgresql="CAST({0} AS JSONB)",
    sqlite="{0}",
    doc="JSON text stored into a JSON column (PostgreSQL: cast to JSONB; SQLite keeps the text).",
)


def typed_text(value: str) -> ColumnElement[str]:
    """A string constant with a type PostgreSQL can see (``jsonb_build_object`` needs one)."""
    return cast(literal(value, String), Text)


def json_object(**values: ColumnElement[Any]) -> ColumnElement[Any]:
    """A JSON object built in SQL from ``values`` (key order kept)."""
    args: list[ColumnElement[Any]] = []
    for name, value in values.items():
        args += [typed_text(name), value]
    result: ColumnElement[Any] = JsonObject(*args)
    return result


def _sha256_hex(value: str | None) -> str | None:
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


def install_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a new SQLite connection the functions the SQLite spellings above call."""
    dbapi_connection.create_function(SQLITE_SHA256, 1, _sha256_hex, deterministic=True)
