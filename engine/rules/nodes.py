"""The rule syntax tree: immutable nodes, independent of Python's ``ast``.

The parser builds untyped nodes; the checker returns a copy of the tree in
which every node carries its :class:`RuleType` (``type``) and date operands
compared with datetimes are wrapped in :class:`ToDatetime`. Both back ends
(SQL and Python) work on the typed tree only.
"""

from __future__ import annotations

import datetime
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from typing import Literal as TypingLiteral

from engine.rules.types import RuleType

LiteralValue = int | Decimal | str | bool | None | datetime.date | datetime.datetime
CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">="]
ArithOp = TypingLiteral["+", "-", "*", "/"]
BoolOpName = TypingLiteral["and", "or"]


@dataclass(frozen=True, slots=True)
class Position:
    """A 1-based line and column inside the rule text."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class Node:
    """Base of all nodes: where the node starts and (once checked) its type."""

    pos: Position = field(kw_only=True)
    type: RuleType | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class Literal(Node):
    """A constant: int, Decimal, str, bool, None; date/datetime after checking."""

    value: LiteralValue


@dataclass(frozen=True, slots=True)
class ListLiteral(Node):
    """A list of literals; only the right side of ``in`` / ``not in``."""

    items: tuple[Literal, ...]


@dataclass(frozen=True, slots=True)
class Field(Node):
    """A catalogue field, possibly dotted (``attr.vip``)."""

    name: str


@dataclass(frozen=True, slots=True)
class Compare(Node):
    """A binary comparison; chained comparisons become ``and`` of these."""

    op: CompareOp
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class In(Node):
    """``operand in [...]`` or, when ``negated``, ``operand not in [...]``."""

    operand: Node
    items: ListLiteral
    negated: bool = False


@dataclass(frozen=True, slots=True)
class IsNone(Node):
    """``operand is None`` or, when ``negated``, ``operand is not None``."""

    operand: Node
    negated: bool = False


@dataclass(frozen=True, slots=True)
class BoolOp(Node):
    """``and`` / ``or`` over two or more operands (Kleene logic)."""

    op: BoolOpName
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``not operand`` (Kleene logic)."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Arith(Node):
    """``+ - * /``; ``+`` also concatenates strings."""

    op: ArithOp
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Negate(Node):
    """Unary minus."""

    operand: Node


@dataclass(frozen=True, slots=True)
class Call(Node):
    """A call of a whitelisted function; methods ``x.f(a)`` become ``f(x, a)``."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class ToDatetime(Node):
    """A date promoted to midnight UTC; inserted by the checker."""

    operand: Node


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-nodes of ``node``."""
    match node:
        case Compare(left=left, right=right) | Arith(left=left, right=right):
            return (left, right)
        case In(operand=operand, items=items):
            return (operand, items)
        case ListLiteral(items=items):
            return items
        case IsNone(operand=operand) | Not(operand=operand) | Negate(operand=operand):
            return (operand,)
        case ToDatetime(operand=operand):
            return (operand,)
        case BoolOp(operands=operands):
            return operands
        case Call(args=args):
            return args
        case _:
            return ()


#: the Python operator of each comparison; the same for SQLAlchemy expressions and values
COMPARE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
