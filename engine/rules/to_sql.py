"""Compile a typed rule tree to a SQLAlchemy Core expression.

SQL's own three-valued logic gives the NULL semantics the Python evaluator
imitates; where SQLite and PostgreSQL differ, :mod:`engine.sql.functions`
supplies one construct with a rendering per dialect.
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement

from engine.rules import nodes
from engine.rules.bindings import SqlBindings
from engine.rules.bucket import HASH_MODULUS, HIGH_BITS_DIVISOR, KEY_MODULUS, MULTIPLIER, salt_offset
from engine.rules.types import RuleType
from engine.sql import functions as sqlf

_COMPARE = nodes.COMPARE_OPERATORS
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}


def to_sql(node: nodes.Node, bindings: SqlBindings) -> ColumnElement[Any]:
    """The SQL expression of ``node``; NULL where the Python evaluator gives ``None``."""
    match node:
        case nodes.Literal(value=value):
            return literal(value)
        case nodes.Field(name=name):
            return bindings.field(name)
        case nodes.Compare(op=op, left=left, right=right):
            a, b = to_sql(left, bindings), to_sql(right, bindings)
            if op in ("<", "<=", ">", ">=") and left.type is RuleType.STR:
                a = sqlf.BinaryCollation(a)
            comparison: ColumnElement[Any] = _COMPARE[op](a, b)
            return comparison
        case nodes.In(operand=operand, items=items, negated=negated):
            tested = to_sql(operand, bindings)
            options = [literal(item.value) for item in items.items]
            return tested.not_in(options) if negated else tested.in_(options)
        case nodes.IsNone(operand=operand, negated=negated):
            tested = to_sql(operand, bindings)
            return tested.is_not(None) if negated else tested.is_(None)
        case nodes.BoolOp(op=op, operands=operands):
            parts = [condition(o, bindings) for o in operands]
            return sa.and_(*parts) if op == "and" else sa.or_(*parts)
        case nodes.Not(operand=operand):
            return sa.not_(condition(operand, bindings))
        case nodes.Arith(op=op, left=left, right=right):
            return _arith(op, left, right, bindings)
        case nodes.Negate(operand=operand):
            return -_number(operand, bindings)
        case nodes.ToDatetime(operand=operand):
            return sqlf.DateToDatetime(to_sql(operand, bindings))
        case nodes.Call(name=name, args=args):
            return _call(name, args, bindings)
    raise TypeError(f"cannot compile {type(node).__name__}")


def condition(node: nodes.Node, bindings: SqlBindings) -> ColumnElement[Any]:
    """``node`` as a condition: a bool field alone is its bare column (see :class:`sqlf.Truth`)."""
    if isinstance(node, nodes.Field) and node.type is RuleType.BOOL:
        return sqlf.Truth(bindings.field(node.name))
    return to_sql(node, bindings)


def literal(value: nodes.LiteralValue) -> ColumnElement[Any]:
    """A bound parameter of the matching SQL type (``NULL`` for ``None``)."""
    if value is None:
        return sa.null()
    if isinstance(value, bool):
        return sa.literal(value, sa.Boolean())
    if isinstance(value, int):
        return sa.literal(value, sa.BigInteger())
    if isinstance(value, Decimal):
        return sa.literal(value, sa.Numeric())
    if isinstance(value, str):
        return sa.literal(value, sa.String())
    if isinstance(value, datetime.datetime):
        return sa.literal(value.astimezone(datetime.UTC), sa.DateTime(timezone=True))
    return sa.literal(value, sa.Date())


def _number(node: nodes.Node, bindings: SqlBindings) -> ColumnElement[Any]:
    """A numeric operand; ints widened to 64 bits so arithmetic cannot overflow a 32-bit column."""
    value = to_sql(node, bindings)
    if node.type is RuleType.INT and not isinstance(node, nodes.Literal):
        return sa.cast(value, sa.BigInteger())
    return value


def _arith(op: str, left: nodes.Node, right: nodes.Node, bindings: SqlBindings) -> ColumnElement[Any]:
    if left.type is RuleType.STR:
        return to_sql(left, bindings).concat(to_sql(right, bindings))
    a, b = _number(left, bindings), _number(right, bindings)
    if op == "/":
        return sqlf.TrueDivide(a, b)
    result: ColumnElement[Any] = _ARITH[op](a, b)
    return result


def _call(name: str, args: Sequence[nodes.Node], bindings: SqlBindings) -> ColumnElement[Any]:
    if name == "today":
        return literal(_date(bindings.today))
    if name == "in_segment":
        segment = args[0]
        assert isinstance(segment, nodes.Literal) and isinstance(segment.value, str)
        return bindings.in_segment(segment.value)
    if name == "bucket":
        return _bucket(args, bindings)
    values = [to_sql(a, bindings) for a in args]
    match name:
        case "lower":
            return sqlf.AsciiLower(values[0])
        case "upper":
            return sqlf.AsciiUpper(values[0])
        case "len":
            return sa.func.length(values[0], type_=sa.Integer())
        case "startswith":
            text, prefix = values
            return sa.func.substr(text, 1, sa.func.length(prefix), type_=sa.String()) == prefix
        case "endswith":
            text, suffix = values
            start = sa.func.length(text) - sa.func.length(suffix) + 1
            return sa.and_(
                sa.func.length(text) >= sa.func.length(suffix),
                sa.func.substr(text, start, type_=sa.String()) == suffix,
            )
        case "contains":
            return sqlf.Contains(*values)
        case "abs":
            return sa.func.abs(_number(args[0], bindings), type_=values[0].type)
        case "min" | "max":
            return _extreme(name, [_number(a, bindings) for a in args], args)
        case "days_since":
            day = sqlf.UtcDate(values[0]) if args[0].type is RuleType.DATETIME else values[0]
            return sqlf.DaysSince(day, literal(_date(bindings.today)))
    raise TypeError(f"cannot compile function {name}()")


def _date(value: datetime.date) -> datetime.date:
    return value.date() if isinstance(value, datetime.datetime) else value


def _extreme(name: str, values: list[ColumnElement[Any]], args: Sequence[nodes.Node]) -> ColumnElement[Any]:
    """min/max as CASE: NULL if any argument is NULL (PostgreSQL's LEAST/GREATEST skip NULLs)."""
    all_int = all(a.type is RuleType.INT for a in args)
    result_type: sa.types.TypeEngine[Any] = sa.BigInteger() if all_int else sa.Numeric()
    result = values[0]
    for value in values[1:]:
        keep_first = result <= value if name == "min" else result >= value
        result = sa.type_coerce(
            sa.case(
                (sa.or_(result.is_(None), value.is_(None)), sa.null()),
                (keep_first, result),
                else_=value,
            ),
            result_type,
        )
    return result


def _bucket(args: Sequence[nodes.Node], bindings: SqlBindings) -> ColumnElement[Any]:
    """See :mod:`engine.rules.bucket`; every intermediate value stays below 2**63."""
    literals = [a.value for a in args if isinstance(a, nodes.Literal)]
    count = literals[0]
    salt = literals[1] if len(literals) > 1 else ""
    assert isinstance(count, int) and isinstance(salt, str)
    return bucket_expression(bindings.row_key(), count, salt)


def bucket_expression(row_key: ColumnElement[Any], count: int, salt: str = "") -> ColumnElement[Any]:
    """``bucket(count, salt)`` of ``row_key`` in SQL, equal to :func:`engine.rules.bucket.bucket_of`."""
    key = sa.cast(row_key, sa.BigInteger())
    hashed = (
        ((key + literal(salt_offset(salt))) % literal(KEY_MODULUS))
        * literal(MULTIPLIER)
        % literal(HASH_MODULUS)
    )
    return sqlf.IntegerDivide(hashed, literal(HIGH_BITS_DIVISOR)) % literal(count)
