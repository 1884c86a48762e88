"""Every construct of engine.sql.functions on both databases, against the value Python gives.

One case per construct (more where its edges differ between the databases),
like a base test per cross-database macro: a construct added to the module
without a case here fails :func:`test_every_construct_has_a_case`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Boolean, ColumnElement, Date, Engine, Integer, Numeric, String, literal, select
from sqlalchemy.sql.functions import FunctionElement

from engine.sql import functions as f
from engine.sql.types import UtcDateTime

UTC = dt.UTC
AT = dt.datetime(2026, 3, 29, 0, 30, 15, 123456, tzinfo=UTC)


def _time(value: dt.datetime) -> ColumnElement[Any]:
    return literal(value, UtcDateTime())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


# (case id, construct, SQL expression, expected value, how to read the database's answer)
CASES: list[tuple[str, str, Callable[[], ColumnElement[Any]], Any, Callable[[Any], Any]]] = [
    ("truth of true", "Truth", lambda: f.Truth(literal(True, Boolean)), True, bool),
    ("truth of false", "Truth", lambda: f.Truth(literal(False, Boolean)), False, bool),
    ("true divide", "TrueDivide", lambda: f.TrueDivide(literal(7), literal(2)), 3.5, float),
    ("true divide by zero", "TrueDivide", lambda: f.TrueDivide(literal(7), literal(0)), None, lambda v: v),
    ("integer divide", "IntegerDivide", lambda: f.IntegerDivide(literal(7), literal(2)), 3, int),
    ("contains", "Contains", lambda: f.Contains(literal("Hello"), literal("ell")), True, bool),
    (
        "contains is case-sensitive",
        "Contains",
        lambda: f.Contains(literal("Hello"), literal("ELL")),
        False,
        bool,
    ),
    ("ascii lower", "AsciiLower", lambda: f.AsciiLower(literal("ÀBC Ж")), "Àbc Ж", str),
    ("ascii upper", "AsciiUpper", lambda: f.AsciiUpper(literal("àbc ж")), "àBC ж", str),
    (
        "binary collation orders by code point",
        "BinaryCollation",
        lambda: f.BinaryCollation(literal("a")) < f.BinaryCollation(literal("B")),
        False,
        bool,
    ),
    (
        "date to datetime is midnight UTC",
        "DateToDatetime",
        lambda: (
            f.DateToDatetime(literal(dt.date(2026, 3, 29), Date))
            == _time(dt.datetime(2026, 3, 29, tzinfo=UTC))
        ),
        True,
        bool,
    ),
    ("utc date", "UtcDate", lambda: f.UtcDate(_time(AT)), dt.date(2026, 3, 29), lambda v: v),
    (
        "days since",
        "DaysSince",
        lambda: f.DaysSince(literal(dt.date(2024, 2, 28), Date), literal(dt.date(2024, 3, 1), Date)),
        2,
        int,
    ),
    (
        "elapsed whole days",
        "ElapsedDays",
        lambda: f.ElapsedDays(_time(AT), _time(AT + dt.timedelta(days=3, hours=23))),
        3,
        int,
    ),
    ("month and day", "MonthDay", lambda: f.MonthDay(literal(dt.date(2024, 2, 29), Date)), "02-29", str),
    (
        "date in JSON",
        "JsonDate",
        lambda: f.JsonDate(literal("2026-03-29")),
        dt.date(2026, 3, 29),
        lambda v: v,
    ),
    ("epoch seconds", "EpochSeconds", lambda: f.EpochSeconds(_time(AT)), int(AT.timestamp()), int),
    (
        "plus seconds keeps microseconds",
        "PlusSeconds",
        lambda: f.PlusSeconds(_time(AT), literal(3600 * 25 + 5)),
        AT + dt.timedelta(hours=25, seconds=5),
        lambda v: v,
    ),
    (
        "plus days",
        "PlusDays",
        lambda: f.PlusDays(_time(AT), literal(2)),
        AT + dt.timedelta(days=2),
        lambda v: v,
    ),
    ("ISO time in UTC", "IsoUtc", lambda: f.IsoUtc(_time(AT)), "2026-03-29T00:30:15+00:00", str),
    (
        "floor of points",
        "FloorPoints",
        lambda: f.FloorPoints(literal(Decimal("12.9999999"), Numeric(18, 7))),
        13,
        int,
    ),
    (
        "points are floored",
        "FloorPoints",
        lambda: f.FloorPoints(literal(Decimal("12.5"), Numeric(18, 2))),
        12,
        int,
    ),
    ("points never negative", "FloorPoints", lambda: f.FloorPoints(literal(-5, Integer)), 0, int),
    ("least", "Least", lambda: f.Least(literal(3), literal(5)), 3, int),
    ("greatest", "Greatest", lambda: f.Greatest(literal(3), literal(5)), 5, int),
    (
        "amount as text",
        "AmountText",
        lambda: f.AmountText(literal(Decimal("120"), Numeric(14, 2))),
        "120.00",
        str,
    ),
    (
        "sha256 of UTF-8",
        "Sha256Hex",
        lambda: f.Sha256Hex(literal("привет, мир")),
        hashlib.sha256("привет, мир".encode()).hexdigest(),
        str,
    ),
    (
        "JSON object keeps its keys and values",
        "JsonObject",
        lambda: f.json_object(
            points=literal(12), lot=f.typed_text("lot-1"), detail=f.json_object(a=literal(1))
        ),
        {"points": 12, "lot": "lot-1", "detail": {"a": 1}},
        _json,
    ),
    ("JSON text", "JsonText", lambda: f.JsonText(literal('{"a": [1, 2]}', String)), {"a": [1, 2]}, _json),
]


@pytest.mark.parametrize(
    ("construct", "expression", "expected", "read"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_construct_gives_what_python_gives(
    db: Engine,
    construct: str,
    expression: Callable[[], ColumnElement[Any]],
    expected: Any,
    read: Callable[[Any], Any],
) -> None:
    with db.connect() as connection:
        value = connection.execute(select(expression())).scalar_one()
    assert read(value) == expected if value is not None else expected is None


def test_truth_stands_alone_as_a_condition(db: Engine) -> None:
    with db.connect() as connection:
        kept = connection.execute(select(literal(1)).where(f.Truth(literal(True, Boolean)))).all()
        dropped = connection.execute(select(literal(1)).where(f.Truth(literal(False, Boolean)))).all()
    assert (len(kept), len(dropped)) == (1, 0)


def test_every_construct_has_a_case() -> None:
    constructs = {
        name
        for name, value in vars(f).items()
        if isinstance(value, type) and issubclass(value, FunctionElement)
    }
    assert constructs == {case[1] for case in CASES}
