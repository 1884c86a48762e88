"""One table of cases: each rule's three-valued result in Python, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from engine.rules import Catalogue, DictRecord, RuleType, compile_expression, compile_rule
from engine.rules.bucket import bucket_of

UTC = datetime.UTC
MSK = datetime.timezone(datetime.timedelta(hours=3))
TODAY = datetime.date(2026, 3, 15)
KEY = 123_456

CASES: list[tuple[str, dict[str, Any], bool | None]] = [
    # Kleene logic and NULL
    ("orders > 1 or name == 'x'", {"name": "x"}, True),
    ("orders > 1 or name == 'x'", {"name": "y"}, None),
    ("orders > 1 and name == 'x'", {"name": "y"}, False),
    ("orders > 1 and name == 'x'", {"name": "x"}, None),
    ("not (orders > 1)", {}, None),
    ("not (orders > 1)", {"orders": 0}, True),
    ("orders is None", {}, True),
    ("orders is not None", {"orders": 0}, True),
    ("(orders > 1) is None", {}, True),
    ("orders in [1, 2]", {}, None),
    ("orders not in [1, 2]", {}, None),
    ("orders not in [1, 2]", {"orders": 3}, True),
    ("orders in [1, 2.5]", {"orders": 1}, True),
    ("amount in [2.5, 3]", {"amount": Decimal("3.00")}, True),
    ("1 < orders < 5", {"orders": 3}, True),
    ("1 < orders < 5", {"orders": 5}, False),
    ("attr.vip", {"attr.vip": True}, True),
    ("not attr.vip", {"attr.vip": False}, True),
    ("attr.vip == False", {}, None),
    ("attr.vip == (orders > 2)", {"attr.vip": False, "orders": 1}, True),
    ("True", {}, True),
    ("false or attr.vip", {}, None),
    # arithmetic and division
    ("orders / visits == 3.5", {"orders": 7, "visits": 2}, True),
    ("orders / visits > 0", {"orders": 7, "visits": 0}, None),
    ("(visits / orders) is None", {"orders": 0, "visits": 1}, True),
    ("amount / 4 == 0.3125", {"amount": Decimal("1.25")}, True),
    ("amount / 0.5 == 5", {"amount": Decimal("2.50")}, True),
    ("amount / 0 is None", {"amount": Decimal("2.50")}, True),
    ("orders / 3 > 0.33 and orders / 3 < 0.34", {"orders": 1}, True),
    ("-orders * 2 == -10", {"orders": 5}, True),
    ("orders * 1000000000 > 2000000000", {"orders": 3}, True),
    ("orders + visits == 3", {"orders": 3}, None),
    ("amount + orders == 4.5", {"amount": Decimal("1.50"), "orders": 3}, True),
    ("abs(amount) == 1.5", {"amount": Decimal("-1.50")}, True),
    ("abs(-orders) == 4", {"orders": 4}, True),
    ("min(orders, amount) == 1.5", {"orders": 3, "amount": Decimal("1.50")}, True),
    ("max(orders, visits, 2) == 7", {"orders": 3, "visits": 7}, True),
    ("min(orders, visits) < 100", {"orders": 3}, None),
    ("max(orders, visits) > 0", {"visits": 3}, None),
    # strings: exact and case-sensitive
    ("name.startswith('Ab')", {"name": "abc"}, False),
    ("name.startswith('Ab')", {"name": "Abc"}, True),
    ("name.startswith('')", {"name": ""}, True),
    ("name.startswith('%')", {"name": "abc"}, False),
    ("name.startswith('a_')", {"name": "abc"}, False),
    ("name.startswith('abcd')", {"name": "abc"}, False),
    ("name.endswith('bc')", {"name": "abc"}, True),
    ("name.endswith('xabc')", {"name": "abc"}, False),
    ("name.endswith('')", {"name": "abc"}, True),
    ("name.endswith('ä')", {"name": "aä"}, True),
    ("endswith(name, city)", {"name": "abc"}, None),
    ("contains(name, 'B')", {"name": "abc"}, False),
    ("contains(name, 'b')", {"name": "abc"}, True),
    ("contains(name, '')", {"name": ""}, True),
    ("contains(name, 'ё')", {"name": "Алёна"}, True),
    ("lower(name) == 'abc'", {"name": "ABC"}, True),
    ("lower(name) == 'äbc'", {"name": "ÄBC"}, False),  # ASCII letters only
    ("lower(name) == 'Äbc'", {"name": "ÄBC"}, True),
    ("name.upper() == 'ÄBC'", {"name": "äbc"}, False),
    ("name.upper() == 'äBC'", {"name": "äbc"}, True),
    ("len(name) == 5", {"name": "Алёна"}, True),
    ("len(name) == 0", {"name": ""}, True),
    ("name < 'a'", {"name": "B"}, True),  # code point order, not locale order
    ("name > 'z'", {"name": "é"}, True),
    ("name < city", {"name": "Z", "city": "a"}, True),
    ("name + ' ' + city == 'a b'", {"name": "a", "city": "b"}, True),
    ("name + city == 'a'", {"name": "a"}, None),
    ("name in ['x', 'Y']", {"name": "y"}, False),
    # dates and datetimes
    ("days_since(first_order) == 10", {"first_order": TODAY - datetime.timedelta(days=10)}, True),
    ("days_since(first_order) == -2", {"first_order": TODAY + datetime.timedelta(days=2)}, True),
    (
        "days_since(last_order_at) == 1",
        {"last_order_at": datetime.datetime(2026, 3, 14, 23, 59, tzinfo=UTC)},
        True,
    ),
    (
        "days_since(last_order_at) == 1",
        {"last_order_at": datetime.datetime(2026, 3, 15, 1, 0, tzinfo=MSK)},
        True,
    ),
    (
        "days_since(last_order_at) == 0",
        {"last_order_at": datetime.datetime(2026, 3, 15, 0, 0, tzinfo=UTC)},
        True,
    ),
    ("days_since(last_order_at) > 0", {}, None),
    ("days_since(today()) == 0", {}, True),
    ("days_since(date('2025-03-15')) == 365", {}, True),
    (
        "first_order < last_order_at",
        {
            "first_order": datetime.date(2026, 3, 14),
            "last_order_at": datetime.datetime(2026, 3, 14, tzinfo=UTC),
        },
        False,
    ),
    (
        "first_order == last_order_at",
        {
            "first_order": datetime.date(2026, 3, 14),
            "last_order_at": datetime.datetime(2026, 3, 14, tzinfo=UTC),
        },
        True,
    ),
    (
        "first_order < last_order_at",
        {
            "first_order": datetime.date(2026, 3, 14),
            "last_order_at": datetime.datetime(2026, 3, 14, 0, 0, 0, 1, tzinfo=UTC),
        },
        True,
    ),
    (
        "last_order_at >= date('2026-03-14')",
        {"last_order_at": datetime.datetime(2026, 3, 14, tzinfo=UTC)},
        True,
    ),
    (
        "last_order_at < today()",
        {"last_order_at": datetime.datetime(2026, 3, 14, 23, 59, 59, tzinfo=UTC)},
        True,
    ),
    ("last_order_at < today()", {"last_order_at": datetime.datetime(2026, 3, 15, 1, 0, tzinfo=MSK)}, True),
    ("first_order == today()", {"first_order": TODAY}, True),
    ("first_order > date('2026-01-01')", {"first_order": datetime.date(2026, 1, 2)}, True),
    ("first_order <= date('2026-01-01')", {}, None),
    # segments and buckets
    ("in_segment('large')", {}, True),
    ("in_segment('lapsing')", {}, False),
    ("not in_segment('lapsing') and orders is None", {}, True),
    (f"bucket(10) == {bucket_of(KEY, 10)}", {}, True),
    (f"bucket(10, 'winback') == {bucket_of(KEY, 10, 'winback')}", {}, True),
    (f"bucket(7, 'ß') == {bucket_of(KEY, 7, 'ß')}", {}, True),
    ("bucket(1) == 0", {}, True),
]


@pytest.mark.parametrize(("text", "values", "expected"), CASES, ids=[c[0] for c in CASES])
def test_python(rules_catalogue: Catalogue, text: str, values: dict[str, Any], expected: bool | None) -> None:
    rule = compile_rule(text, rules_catalogue)
    record = DictRecord(values, segments={"large"}, row_key=KEY, today=TODAY)
    assert rule.evaluate(record) is expected
    assert rule.matches(record) is (expected is True)


def test_sql(rules_db: Any, rules_catalogue: Catalogue, rules_bindings: Any) -> None:
    """All cases on one database; the SQL result is read three-valued (1, 0 or NULL)."""
    assert_cases(rules_db, rules_catalogue, rules_bindings)


def test_postgresql_session_time_zone_does_not_matter(
    rules_postgresql: Any, rules_catalogue: Catalogue, rules_bindings: Any
) -> None:
    """Dates of datetimes are taken in UTC even if the session runs in another zone."""
    url = rules_postgresql.engine.url
    for zone in ("Pacific/Kiritimati", "America/Los_Angeles"):
        engine = sa.create_engine(url, connect_args={"options": f"-c timezone={zone}"})
        try:
            assert_cases(type(rules_postgresql)("postgresql", engine), rules_catalogue, rules_bindings)
        finally:
            engine.dispose()


def assert_cases(rules_db: Any, rules_catalogue: Catalogue, rules_bindings: Any) -> None:
    failures = []
    for text, values, expected in CASES:
        rules_db.load([(KEY, values, {"large"})])
        condition = compile_rule(text, rules_catalogue).to_sql(rules_bindings)
        three_valued = sa.case((condition, 1), (sa.not_(condition), 0), else_=None)
        from_sql = rules_db.value(three_valued)
        got = None if from_sql is None else bool(from_sql)
        if got is not expected:
            failures.append(f"{text!r} with {values}: SQL gave {got}, expected {expected}")
    assert not failures, "\n".join(failures)


def test_python_reads_sqlite_shaped_values(rules_catalogue: Catalogue) -> None:
    """Floats, 0/1 booleans and naive UTC datetimes (as SQLite returns them) are normalised."""
    rule = compile_rule(
        "amount == 2.5 and attr.vip and last_order_at == date('2026-03-14') and orders == 2", rules_catalogue
    )
    record = DictRecord(
        {"amount": 2.5, "attr.vip": 1, "last_order_at": datetime.datetime(2026, 3, 14), "orders": 2},
        today=TODAY,
    )
    assert rule.matches(record)


def test_compile_once_use_for_many_days(rules_catalogue: Catalogue) -> None:
    rule = compile_rule("days_since(first_order) >= 30", rules_catalogue)
    values = {"first_order": datetime.date(2026, 1, 1)}
    assert not rule.matches(DictRecord(values, today=datetime.date(2026, 1, 30)))
    assert rule.matches(DictRecord(values, today=datetime.date(2026, 1, 31)))


def test_bucket_distribution_is_even() -> None:
    counts = [0] * 10
    for key in range(1, 10_001):
        counts[bucket_of(key, 10, "ab-test")] += 1
    assert all(900 <= c <= 1100 for c in counts), counts
    salted = sum(bucket_of(k, 10, "a") == bucket_of(k, 10, "b") for k in range(1, 10_001))
    assert salted < 1500  # a different salt reshuffles


def test_numeric_expression(rules_db: Any, rules_catalogue: Catalogue, rules_bindings: Any) -> None:
    """Non-bool expressions (e.g. loyalty points) compile and evaluate the same way."""
    points = compile_expression("amount * 0.25 + orders", rules_catalogue, RuleType.NUMBER)
    values = {"amount": Decimal("10.50"), "orders": 2}
    assert points.evaluate(DictRecord(values)) == Decimal("4.625")
    rules_db.load([(1, values, ())])
    assert Decimal(str(rules_db.value(points.to_sql(rules_bindings)))) == Decimal("4.625")
    rules_db.load([(1, {"orders": 2}, ())])
    assert rules_db.value(points.to_sql(rules_bindings)) is None
    assert points.evaluate(DictRecord({"orders": 2})) is None
