"""SQL constructs whose spelling differs between SQLite and PostgreSQL.

Each is a small :class:`FunctionElement` with one ``@compiles`` rendering per
dialect, chosen so that both databases compute exactly what the Python
evaluator computes (see the docstring of each class).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType

_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = _UPPER.lower()


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


class Truth(FunctionElement[Any]):
    """A boolean column standing alone as a condition, rendered bare.

    SQLAlchemy writes a boolean column in a WHERE as ``col = 1`` on SQLite,
    which its planner reads as an equality constraint and which can make it
    start from the wrong table; the bare column means the same (0 false,
    NULL unknown) on SQLite and is plain SQL on PostgreSQL. Untyped, so
    SQLAlchemy adds no comparison of its own.
    """

    type = NullType()
    name = "rule_truth"
    inherit_cache = True


@compiles(Truth)
def _truth(element: Truth, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = _args(element, compiler, **kw)
    return column


class TrueDivide(FunctionElement[Any]):
    """``a / b`` as true division; ``NULL`` when ``b`` is zero.

    The dividend is cast to a non-integer type so integer operands do not
    truncate (REAL on SQLite, NUMERIC on PostgreSQL).
    """

    type = Numeric()
    name = "rule_true_divide"
    inherit_cache = True


@compiles(TrueDivide)
def _true_divide(element: TrueDivide, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"(CAST({a} AS FLOAT) / NULLIF({b}, 0))"


@compiles(TrueDivide, "sqlite")
def _true_divide_sqlite(element: TrueDivide, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"(CAST({a} AS REAL) / NULLIF({b}, 0))"


@compiles(TrueDivide, "postgresql")
def _true_divide_postgresql(element: TrueDivide, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"(CAST({a} AS NUMERIC) / NULLIF({b}, 0))"


class IntegerDivide(FunctionElement[int]):
    """``a / b`` on non-negative integers (truncating, the same in both databases)."""

    type = Integer()
    name = "rule_integer_divide"
    inherit_cache = True


@compiles(IntegerDivide)
def _integer_divide(element: IntegerDivide, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _args(element, compiler, **kw)
    return f"({a} / {b})"


class Contains(FunctionElement[bool]):
    """Case-sensitive substring test (never ``LIKE``, which SQLite folds case for)."""

    type = Boolean()
    name = "rule_contains"
    inherit_cache = True


@compiles(Contains)
def _contains(element: Contains, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(instr({text}, {part}) > 0)"


@compiles(Contains, "postgresql")
def _contains_postgresql(element: Contains, compiler: SQLCompiler, **kw: Any) -> str:
    text, part = _args(element, compiler, **kw)
    return f"(strpos({text}, {part}) > 0)"


class AsciiLower(FunctionElement[str]):
    """Lower-case ASCII letters only (SQLite's ``lower`` does exactly that)."""

    type = String()
    name = "rule_ascii_lower"
    inherit_cache = True


class AsciiUpper(FunctionElement[str]):
    """Upper-case ASCII letters only (SQLite's ``upper`` does exactly that)."""

    type = String()
    name = "rule_ascii_upper"
    inherit_cache = True


@compiles(AsciiLower)
def _ascii_lower(element: AsciiLower, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f"translate({text}, '{_UPPER}', '{_LOWER}')"


@compiles(AsciiUpper)
def _ascii_upper(element: AsciiUpper, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f"translate({text}, '{_LOWER}', '{_UPPER}')"


@compiles(AsciiLower, "sqlite")
def _ascii_lower_sqlite(element: AsciiLower, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f"lower({text})"


@compiles(AsciiUpper, "sqlite")
def _ascii_upper_sqlite(element: AsciiUpper, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f"upper({text})"


class BinaryCollation(FunctionElement[str]):
    """A string compared by code point: ``COLLATE "C"`` on PostgreSQL.

    SQLite's default BINARY collation already compares UTF-8 bytes, which
    orders like Python's ``str`` comparison.
    """

    type = String()
    name = "rule_binary_collation"
    inherit_cache = True


@compiles(BinaryCollation)
def _binary_collation(element: BinaryCollation, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return text


@compiles(BinaryCollation, "postgresql")
def _binary_collation_postgresql(element: BinaryCollation, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f'({text} COLLATE "C")'


class DateToDatetime(FunctionElement[Any]):
    """A date promoted to midnight UTC.

    On SQLite it is spelled in SQLAlchemy's storage format of naive UTC
    datetimes (``YYYY-MM-DD HH:MM:SS.ffffff``) so text comparison stays exact;
    on PostgreSQL midnight at UTC whatever the session time zone.
    """

    type = DateTime(timezone=True)
    name = "rule_date_to_datetime"
    inherit_cache = True


@compiles(DateToDatetime)
def _date_to_datetime(element: DateToDatetime, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"(CAST({value} AS TIMESTAMP) AT TIME ZONE 'UTC')"


@compiles(DateToDatetime, "sqlite")
def _date_to_datetime_sqlite(element: DateToDatetime, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"({value} || ' 00:00:00.000000')"


class UtcDate(FunctionElement[Any]):
    """The UTC calendar date of an aware datetime."""

    type = Date()
    name = "rule_utc_date"
    inherit_cache = True


@compiles(UtcDate)
def _utc_date(element: UtcDate, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"CAST(({value} AT TIME ZONE 'UTC') AS DATE)"


@compiles(UtcDate, "sqlite")
def _utc_date_sqlite(element: UtcDate, compiler: SQLCompiler, **kw: Any) -> str:
    (value,) = _args(element, compiler, **kw)
    return f"date({value})"  # stored as naive UTC text


class DaysSince(FunctionElement[int]):
    """Whole days from the (UTC) date of a date/datetime to a given day: ``days_since(x, today)``."""

    type = Integer()
    name = "rule_days_since"
    inherit_cache = True


@compiles(DaysSince)
def _days_since(element: DaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    value, today = _args(element, compiler, **kw)
    return f"(CAST({today} AS DATE) - CAST({value} AS DATE))"


@compiles(DaysSince, "sqlite")
def _days_since_sqlite(element: DaysSince, compiler: SQLCompiler, **kw: Any) -> str:
    value, today = _args(element, compiler, **kw)
    return f"CAST(julianday({today}) - julianday(date({value})) AS INTEGER)"
