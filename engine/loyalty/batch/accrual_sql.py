"""SQL pieces of the accrual with one rendering per database.

* :class:`LocalDays`: the programme's local day of an instant, in SQL, without
  time zones (SQLite has none): each offset change of the zone in the range is
  a span with its own UTC offset, so days are exact across DST;
* epoch seconds and instants plus seconds; amounts as text; JSON objects;
  SHA-256 in hex (a Python function registered on SQLite connections).
"""

from __future__ import annotations

import datetime as dt
import hashlib

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Integer, String

from engine.loyalty.programme.definition import Programme
from engine.sql.dialect import dialect_function
from engine.sql.functions import IntegerDivide
from engine.sql.types import UtcDateTime

UTC = dt.UTC
DAY = 86_400
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


class LocalDays:
    """The programme's local day of instants between ``earliest`` and ``latest``, as a day number in SQL.

    Day number = days from 1970-01-01 of the local date: ``(epoch + offset) / 86400``,
    where the zone's UTC offset is a ``CASE`` over the changes of offset in the
    span (listed by ``zoneinfo``), so SQLite (no time zones) and PostgreSQL
    agree with :meth:`Programme.local_day`. Valid for instants in ``[start, end)``:
    the local days from the earliest's to the latest's.
    """

    def __init__(self, programme: Programme, earliest: dt.datetime, latest: dt.datetime) -> None:
        self.programme = programme
        first, last = programme.local_day(aware(earliest)), programme.local_day(aware(latest))
        self.start = programme.day_start(first)
        self.end = programme.day_start(last + dt.timedelta(days=1))
        self.offsets = offset_changes(programme, self.start, self.end)

    def number(self, instant: ColumnElement[dt.datetime]) -> ColumnElement[int]:
        """The local day number of ``instant`` (a timestamp column)."""
        seconds = EpochSeconds(instant)
        (_, offset), *changes = self.offsets
        local: ColumnElement[int] = sa.literal(offset, Integer)
        if changes:
            whens = [
                (seconds < sa.literal(at, Integer), sa.literal(before, Integer))
                for at, before in _spans(self.offsets)
            ]
            local = sa.case(*whens, else_=sa.literal(changes[-1][1], Integer))
        return IntegerDivide((seconds + local).self_group(), sa.literal(DAY, Integer))


def day_number(programme: Programme, instant: dt.datetime) -> int:
    """The Python twin of :meth:`LocalDays.number`."""
    return (programme.local_day(instant) - EPOCH.date()).days


def offset_changes(programme: Programme, start: dt.datetime, end: dt.datetime) -> list[tuple[int, int]]:
    """``[(epoch second from which, UTC offset in seconds), ...]`` of the programme's zone, start to end.

    The first item starts at ``start``; each next one at the exact second the offset changes.
    """

    def offset(second: int) -> int:
        instant = EPOCH + dt.timedelta(seconds=second)
        delta = instant.astimezone(programme.zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    low, high = int((start - EPOCH).total_seconds()), int((end - EPOCH).total_seconds())
    changes = [(low, offset(low))]
    step = 6 * 3600
    at = low
    while at < high:
        following = min(at + step, high)
        if offset(following) != changes[-1][1]:
            before, after = at, following  # offset(before) is the current one, offset(after) is not
            while after - before > 1:
                middle = (before + after) // 2
                before, after = (middle, after) if offset(middle) == changes[-1][1] else (before, middle)
            changes.append((after, offset(after)))
        at = following
    return changes


def _spans(changes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(end of span, offset in it) of every span but the last."""
    return [(changes[n + 1][0], changes[n][1]) for n in range(len(changes) - 1)]


def plus(instant: ColumnElement[dt.datetime], delta: dt.timedelta) -> ColumnElement[dt.datetime]:
    """``instant + delta`` (whole seconds) in SQL, stored like the engine stores times."""
    seconds = delta.total_seconds()
    if seconds != int(seconds):
        raise ValueError(f"{delta} is not a whole number of seconds")
    return instant if not seconds else PlusSeconds(instant, sa.literal_column(str(int(seconds))))


def rowcount(connection: Connection, statement: sa.Executable) -> int:
    """Rows an ``INSERT ... SELECT`` wrote (psycopg reports them only when asked to keep the count)."""
    return int(connection.execute(statement.execution_options(preserve_rowcount=True)).rowcount)


def text_literal(value: str) -> ColumnElement[str]:
    """A string parameter typed for the database (PostgreSQL cannot guess it inside jsonb_build_object)."""
    return sa.cast(sa.literal(value, String), String)


def aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- SQL spelled per database -------------------------------------------------------------------


EpochSeconds = dialect_function(
    "loyalty_epoch_seconds",
    Integer(),
    "CAST(floor(extract(epoch FROM {0})) AS BIGINT)",
    "CAST(strftime('%s', {0}) AS INTEGER)",
    "Whole seconds since 1970-01-01 UTC of a stored time.",
)
PlusSeconds = dialect_function(
    "loyalty_plus_seconds",
    UtcDateTime(),
    "({0} + {1} * INTERVAL '1 second')",
    "(strftime('%Y-%m-%d %H:%M:%S', {0}, '+' || {1} || ' seconds') || substr({0}, 20))",
    "A stored time plus whole seconds, stored alike (SQLite: text with microseconds).",
)
AmountText = dialect_function(
    "loyalty_amount_text",
    String(),
    "CAST(CAST({0} AS NUMERIC(14, 2)) AS TEXT)",
    "printf('%.2f', {0})",
    "A money amount as text with two decimals (120.00), as str of the Decimal.",
)
Sha256Hex = dialect_function(
    "loyalty_sha256_hex",
    String(),
    "encode(sha256(convert_to({0}, 'UTF8')), 'hex')",
    "crm_sha256({0})",
    "sha256 of UTF-8 text, in hex (SQLite: a function registered on the connection).",
)
JsonObject = dialect_function(
    "loyalty_json_object",
    String(),
    "jsonb_build_object({args})",
    "json_object({args})",
    "A JSON object from key, value pairs, escaped by the database.",
)
JsonText = dialect_function(
    "loyalty_json_text",
    String(),
    "CAST({0} AS JSONB)",
    "{0}",
    "JSON text stored into a JSON column (PostgreSQL: cast to JSONB; SQLite keeps the text).",
)
