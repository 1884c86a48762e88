"""Evaluate a typed rule tree on one record, with SQL's three-valued logic.

``None`` is SQL's NULL (unknown): comparisons, arithmetic and functions of
``None`` give ``None``; ``and`` / ``or`` / ``not`` are Kleene; division by
zero gives ``None``. The results agree with :mod:`engine.rules.to_sql`.
"""

from __future__ import annotations

import datetime
import decimal
import operator
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from engine.rules import nodes
from engine.rules.bindings import Record
from engine.rules.bucket import bucket_of
from engine.rules.types import RuleType

UTC = datetime.UTC
# Fixed context: results must not depend on the caller's thread-local decimal context.
DECIMAL_CONTEXT = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN)
ASCII_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ASCII_LOWER = ASCII_UPPER.lower()
_TO_LOWER = str.maketrans(ASCII_UPPER, ASCII_LOWER)
_TO_UPPER = str.maketrans(ASCII_LOWER, ASCII_UPPER)

_COMPARE = nodes.COMPARE_OPERATORS


def evaluate(node: nodes.Node, record: Record) -> Any:
    """The value of ``node`` for ``record``; ``None`` means NULL / unknown."""
    match node:
        case nodes.Literal(value=value):
            return value
        case nodes.Field(name=name, type=type_):
            assert type_ is not None
            return normalize(record.field(name), type_)
        case nodes.Compare(op=op, left=left, right=right):
            a, b = evaluate(left, record), evaluate(right, record)
            return None if a is None or b is None else _COMPARE[op](a, b)
        case nodes.In(operand=operand, items=items, negated=negated):
            value = evaluate(operand, record)
            if value is None:
                return None
            found = any(value == item.value for item in items.items)
            return not found if negated else found
        case nodes.IsNone(operand=operand, negated=negated):
            return (evaluate(operand, record) is None) != negated
        case nodes.BoolOp(op="and", operands=operands):
            return _and(operands, record)
        case nodes.BoolOp(operands=operands):
            return _or(operands, record)
        case nodes.Not(operand=operand):
            value = evaluate(operand, record)
            return None if value is None else not value
        case nodes.Arith(op=op, left=left, right=right, type=type_):
            return _arith(op, evaluate(left, record), evaluate(right, record), type_)
        case nodes.Negate(operand=operand):
            return _negate(evaluate(operand, record))
        case nodes.ToDatetime(operand=operand):
            value = evaluate(operand, record)
            return None if value is None else _midnight_utc(value)
        case nodes.Call(name=name, args=args):
            return _call(name, args, record)
    raise TypeError(f"cannot evaluate {type(node).__name__}")


def _and(operands: Sequence[nodes.Node], record: Record) -> bool | None:
    unknown = False
    for operand in operands:
        value = evaluate(operand, record)
        if value is None:
            unknown = True
        elif not value:
            return False
    return None if unknown else True


def _or(operands: Sequence[nodes.Node], record: Record) -> bool | None:
    unknown = False
    for operand in operands:
        value = evaluate(operand, record)
        if value is None:
            unknown = True
        elif value:
            return True
    return None if unknown else False


def _arith(op: str, a: Any, b: Any, type_: RuleType | None) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, str):
        return a + b
    if type_ is RuleType.INT:
        return {"+": operator.add, "-": operator.sub, "*": operator.mul}[op](a, b)
    x, y = Decimal(a), Decimal(b)
    match op:
        case "+":
            return DECIMAL_CONTEXT.add(x, y)
        case "-":
            return DECIMAL_CONTEXT.subtract(x, y)
        case "*":
            return DECIMAL_CONTEXT.multiply(x, y)
    return None if y == 0 else DECIMAL_CONTEXT.divide(x, y)


def _negate(value: Any) -> Any:
    if value is None:
        return None
    return DECIMAL_CONTEXT.minus(value) if isinstance(value, Decimal) else -value


def _call(name: str, args: Sequence[nodes.Node], record: Record) -> Any:
    if name == "today":
        return _utc_date(record.today)
    if name == "in_segment":
        segment = args[0]
        assert isinstance(segment, nodes.Literal) and isinstance(segment.value, str)
        return bool(record.in_segment(segment.value))
    if name == "bucket":
        literals = [a.value for a in args if isinstance(a, nodes.Literal)]
        count = literals[0]
        salt = literals[1] if len(literals) > 1 else ""
        assert isinstance(count, int) and isinstance(salt, str)
        return bucket_of(record.row_key, count, salt)
    values = [evaluate(a, record) for a in args]
    if any(v is None for v in values):
        return None
    match name:
        case "lower":
            return values[0].translate(_TO_LOWER)
        case "upper":
            return values[0].translate(_TO_UPPER)
        case "len":
            return len(values[0])
        case "startswith":
            return values[0].startswith(values[1])
        case "endswith":
            return values[0].endswith(values[1])
        case "contains":
            return values[1] in values[0]
        case "abs":
            return DECIMAL_CONTEXT.abs(values[0]) if isinstance(values[0], Decimal) else abs(values[0])
        case "min":
            return min(values)
        case "max":
            return max(values)
        case "days_since":
            return (_utc_date(record.today) - _utc_date(values[0])).days
    raise TypeError(f"cannot evaluate function {name}()")


def _utc_date(value: datetime.date) -> datetime.date:
    if isinstance(value, datetime.datetime):
        return value.date() if value.tzinfo is None else value.astimezone(UTC).date()
    return value


def _midnight_utc(value: datetime.date) -> datetime.datetime:
    return datetime.datetime(value.year, value.month, value.day, tzinfo=UTC)


def normalize(value: Any, type_: RuleType) -> Any:
    """Bring a record's value into the canonical Python form of ``type_``.

    ints stay ints, numbers become ``Decimal`` (floats through ``repr``), SQLite's
    0/1 become bools, naive datetimes are taken as UTC and aware ones converted
    to UTC, a datetime given for a date field is cut to its UTC date.
    """
    if value is None:
        return None
    match type_:
        case RuleType.INT:
            return value if type(value) is int else int(value)
        case RuleType.NUMBER:
            if isinstance(value, Decimal):
                return value
            return Decimal(repr(value)) if isinstance(value, float) else Decimal(int(value))
        case RuleType.BOOL:
            return bool(value)
        case RuleType.STR:
            return str(value)
        case RuleType.DATE:
            if isinstance(value, str):
                value = datetime.date.fromisoformat(value)
            return _utc_date(value) if isinstance(value, datetime.datetime) else value
        case RuleType.DATETIME:
            if isinstance(value, str):
                value = datetime.datetime.fromisoformat(value)
            if not isinstance(value, datetime.datetime):
                return _midnight_utc(value)
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value.astimezone(UTC)
    return value
