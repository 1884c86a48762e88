"""Property: on random well-typed rules over random rows, SQL and Python pick the same rows.

Rules are generated as text (so the parser is exercised too) over the test
table's fields, run as a WHERE clause on real SQLite and PostgreSQL and
evaluated in Python on the same rows; the sets of matching keys must be equal.

Restrictions, and why (each keeps results exactly representable so the test
checks semantics, not rounding):

* SQLite stores NUMERIC as binary floating point. Numbers in data and literals
  are therefore multiples of 0.25 within +-1000, and arithmetic nests at most
  two levels (at most four factors in a product): every intermediate value is
  then exact in a double, in PostgreSQL's numeric and in Decimal.
* Division is not exact in binary, so a quotient has only fields or literals
  as operands and is compared directly with a small exact expression; the gap
  between the true quotient and any value it could be compared with is then
  far larger than the rounding of either database.
"""

from __future__ import annotations

import datetime
import functools
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.rules import Catalogue, DictRecord, compile_rule

UTC = datetime.UTC
MSK = datetime.timezone(datetime.timedelta(hours=3))
TODAY = datetime.date(2026, 3, 15)
ALPHABET = "aAbBzZéÉäßёЁ_% "
COMPARE = ["==", "!=", "<", "<=", ">", ">="]

# ---- data ---------------------------------------------------------------

quarters = st.integers(-4000, 4000).map(lambda q: Decimal(q) / 4)
texts = st.text(ALPHABET, max_size=4)
dates = st.one_of(
    st.dates(datetime.date(2025, 1, 1), datetime.date(2027, 12, 31)),
    st.sampled_from([TODAY, TODAY - datetime.timedelta(days=1), TODAY + datetime.timedelta(days=1)]),
)
datetimes = st.one_of(
    st.datetimes(
        datetime.datetime(2025, 1, 1), datetime.datetime(2027, 12, 31), timezones=st.sampled_from([UTC, MSK])
    ),
    dates.map(lambda d: datetime.datetime(d.year, d.month, d.day, tzinfo=UTC)),
)


def nullable(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy, strategy, strategy)


row_values = st.fixed_dictionaries(
    {
        "orders": nullable(st.integers(-1000, 1000)),
        "visits": nullable(st.sampled_from([0, 1, 2, 3, 7, -4, 1000])),
        "amount": nullable(quarters),
        "name": nullable(texts),
        "city": nullable(texts),
        "attr.vip": nullable(st.booleans()),
        "first_order": nullable(dates),
        "last_order_at": nullable(datetimes),
    }
)
segment_sets = st.frozensets(st.sampled_from(["large", "lapsing"]))

# ---- rules --------------------------------------------------------------

int_literal = st.integers(-1000, 1000).map(str)
number_literal = quarters.map(str)
str_literal = texts.map(repr)
date_literal = dates.map(lambda d: f"date('{d.isoformat()}')")


def paren(*parts: str) -> str:
    return "(" + " ".join(parts) + ")"


@functools.cache
def str_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(["name", "city"]), str_literal)
    if depth == 0:
        return leaves
    sub = str_expr(depth - 1)
    return st.one_of(
        leaves,
        sub.map(lambda s: f"lower({s})"),
        sub.map(lambda s: f"{paren(s)}.upper()"),
        st.tuples(sub, sub).map(lambda t: paren(t[0], "+", t[1])),
    )


temporal_expr = st.one_of(
    st.sampled_from(["first_order", "last_order_at", "today()"]),
    date_literal,
)
numeric_leaf = st.one_of(st.sampled_from(["orders", "visits", "amount"]), int_literal, number_literal)


@functools.cache
def num_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        numeric_leaf,
        str_expr(1).map(lambda s: f"len({s})"),
        temporal_expr.map(lambda t: f"days_since({t})"),
    )
    if depth == 0:
        return leaves
    sub = num_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-", "*"]), sub).map(lambda t: paren(*t)),
        sub.map(lambda s: f"-{paren(s)}"),
        sub.map(lambda s: f"abs({s})"),
        st.tuples(st.sampled_from(["min", "max"]), st.lists(sub, min_size=2, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
    )


def compare(a: st.SearchStrategy[str], b: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(a, st.sampled_from(COMPARE), b).map(lambda t: paren(*t))


any_expr = st.one_of(num_expr(1), str_expr(1), temporal_expr, st.just("attr.vip"))

atoms = st.one_of(
    compare(num_expr(2), num_expr(2)),
    st.tuples(numeric_leaf, numeric_leaf, st.sampled_from(COMPARE), num_expr(1)).map(
        lambda t: paren(paren(t[0], "/", t[1]), t[2], t[3])
    ),
    st.tuples(
        num_expr(1), st.sampled_from(["<", "<="]), num_expr(1), st.sampled_from(["<", "<="]), num_expr(1)
    ).map(lambda t: paren(*t)),
    compare(str_expr(2), str_expr(2)),
    compare(temporal_expr, temporal_expr),
    st.sampled_from(["attr.vip", "True", "False", "in_segment('large')", "in_segment('lapsing')"]),
    any_expr.map(lambda e: paren(e, "is None")),
    any_expr.map(lambda e: paren(e, "is not None")),
    st.tuples(
        num_expr(1),
        st.sampled_from(["in", "not in"]),
        st.lists(st.one_of(int_literal, number_literal), min_size=1),
    ).map(lambda t: paren(t[0], t[1], "[" + ", ".join(t[2]) + "]")),
    st.tuples(
        str_expr(1), st.sampled_from(["in", "not in"]), st.lists(str_literal, min_size=1, max_size=4)
    ).map(lambda t: paren(t[0], t[1], "[" + ", ".join(t[2]) + "]")),
    st.tuples(st.sampled_from(["startswith", "endswith", "contains"]), str_expr(1), str_expr(1)).map(
        lambda t: f"{t[0]}({t[1]}, {t[2]})"
    ),
    st.tuples(
        st.integers(1, 10),
        st.sampled_from(["", ", 'x'", ", 'winback'"]),
        st.sampled_from(COMPARE),
        st.integers(0, 9),
    ).map(lambda t: f"(bucket({t[0]}{t[1]}) {t[2]} {t[3]})"),
)


@functools.cache
def bool_expr(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return atoms
    sub = bool_expr(depth - 1)
    return st.one_of(
        atoms,
        st.tuples(st.sampled_from([" and ", " or "]), st.lists(sub, min_size=2, max_size=3)).map(
            lambda t: paren(t[0].join(t[1]))
        ),
        sub.map(lambda s: f"(not {s})"),
        st.tuples(sub, st.sampled_from(["==", "!="]), sub).map(lambda t: paren(*t)),
    )


# ---- the property -------------------------------------------------------


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    base_key=st.integers(1, 2**40),
    rows=st.lists(st.tuples(row_values, segment_sets), min_size=1, max_size=25),
    rules=st.lists(bool_expr(2), min_size=1, max_size=6),
)
def test_sql_and_python_agree(
    rules_db: Any,
    rules_catalogue: Catalogue,
    rules_bindings: Any,
    base_key: int,
    rows: list[tuple[dict[str, Any], frozenset[str]]],
    rules: list[str],
) -> None:
    keyed = [(base_key + i, values, segments) for i, (values, segments) in enumerate(rows)]
    rules_db.load(keyed)
    for text in rules:
        rule = compile_rule(text, rules_catalogue)
        expected = {
            key
            for key, values, segments in keyed
            if rule.matches(DictRecord(values, segments=segments, row_key=key, today=TODAY))
        }
        got = rules_db.matching(rule.to_sql(rules_bindings))
        if got != expected:
            differing = [(k, v) for k, v, _ in keyed if (k in got) != (k in expected)]
            raise AssertionError(
                f"{rules_db.name}: {text}\n  SQL only: {sorted(got - expected)}\n"
                f"  Python only: {sorted(expected - got)}\n  rows: {differing}"
            )


def test_generated_rules_are_well_typed(rules_catalogue: Catalogue) -> None:
    """The generator itself only produces rules the checker accepts."""

    @settings(max_examples=200, deadline=None, database=None)
    @given(bool_expr(3))
    def check(text: str) -> None:
        compile_rule(text, rules_catalogue)

    check()


def test_agreement_catches_a_difference(rules_sqlite: Any, rules_bindings: Any) -> None:
    """Sanity check of the harness: a LIKE-based condition (case-insensitive on SQLite) differs."""
    rules_sqlite.load([(1, {"name": "ABC"}, frozenset())])
    like = rules_bindings.field("name").like("abc%")
    assert rules_sqlite.matching(like) == {1}
    assert rules_sqlite.matching(sa.literal(True, sa.Boolean())) == {1}
