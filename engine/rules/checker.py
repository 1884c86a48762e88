"""Type-check a parsed rule against a catalogue, producing the typed tree."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import NoReturn

from engine.errors import RuleTypeError, UnknownFieldError
from engine.rules import nodes
from engine.rules.catalogue import Catalogue
from engine.rules.functions import FUNCTIONS
from engine.rules.types import RuleType

MAX_BUCKETS = 10_000
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ORDERED = {"<", "<=", ">", ">="}


@dataclasses.dataclass(frozen=True, slots=True)
class Checked:
    """The result of checking: the typed tree and what it refers to."""

    tree: nodes.Node
    fields: frozenset[str]
    segments: frozenset[str]


def check(tree: nodes.Node, catalogue: Catalogue, text: str, expected: RuleType | None) -> Checked:
    """Type ``tree``; raise :class:`RuleTypeError` / :class:`UnknownFieldError` on mistakes.

    ``expected`` is the type the whole expression must have (``INT`` also
    accepts ``NUMBER`` and vice versa); ``None`` accepts any type but null.
    """
    checker = _Checker(catalogue, text)
    typed = checker.visit(tree)
    if expected is not None and not _fits(typed.type, expected):
        checker.fail(f"the rule must be {_describe(expected)}, but it is {_describe(typed.type)}", typed)
    if typed.type is RuleType.NULL:
        checker.fail("the rule is just None", typed)
    return Checked(typed, frozenset(checker.fields), frozenset(checker.segments))


def _fits(actual: RuleType | None, expected: RuleType) -> bool:
    if expected.is_numeric:
        return actual is not None and actual.is_numeric
    return actual is expected


_DESCRIPTIONS = {
    RuleType.BOOL: "a condition (bool)",
    RuleType.INT: "an int",
    RuleType.NUMBER: "a number",
    RuleType.STR: "a str",
    RuleType.DATE: "a date",
    RuleType.DATETIME: "a datetime",
    RuleType.NULL: "None",
}


def _describe(type_: RuleType | None) -> str:
    return _DESCRIPTIONS[type_] if type_ is not None else "untyped"


def comparable(left: RuleType, right: RuleType, op: str) -> bool:
    """Whether values of these types may be compared with ``op``."""
    if left.is_numeric and right.is_numeric:
        return True
    if left.is_temporal and right.is_temporal:
        return True
    if left is right is RuleType.STR:
        return True
    return left is right is RuleType.BOOL and op not in _ORDERED


class _Checker:
    def __init__(self, catalogue: Catalogue, text: str) -> None:
        self.catalogue = catalogue
        self.text = text
        self.fields: set[str] = set()
        self.segments: set[str] = set()

    def fail(self, message: str, node: nodes.Node) -> NoReturn:
        raise RuleTypeError(message, line=node.pos.line, column=node.pos.column, text=self.text)

    def visit(self, node: nodes.Node) -> nodes.Node:
        match node:
            case nodes.Literal(value=value):
                return dataclasses.replace(node, type=_literal_type(value))
            case nodes.Field(name=name):
                return self.field(node, name)
            case nodes.Compare():
                return self.compare(node, self.visit(node.left), self.visit(node.right))
            case nodes.In():
                return self.in_list(node, self.visit(node.operand))
            case nodes.IsNone(operand=operand):
                return dataclasses.replace(node, operand=self.visit(operand), type=RuleType.BOOL)
            case nodes.BoolOp(op=op, operands=operands):
                typed = tuple(self.boolean(self.visit(o), f"'{op}'") for o in operands)
                return dataclasses.replace(node, operands=typed, type=RuleType.BOOL)
            case nodes.Not(operand=operand):
                typed_operand = self.boolean(self.visit(operand), "'not'")
                return dataclasses.replace(node, operand=typed_operand, type=RuleType.BOOL)
            case nodes.Arith():
                return self.arith(node, self.visit(node.left), self.visit(node.right))
            case nodes.Negate(operand=operand):
                typed_operand = self.numeric(self.visit(operand), "unary '-'")
                return dataclasses.replace(node, operand=typed_operand, type=typed_operand.type)
            case nodes.Call():
                return self.call(node)
            case _:
                self.fail(f"unexpected {type(node).__name__}", node)

    def field(self, node: nodes.Node, name: str) -> nodes.Node:
        type_ = self.catalogue.type_of(name)
        if type_ is None:
            if name in FUNCTIONS:
                message = f"'{name}' is a function; call it like {FUNCTIONS[name].signature}"
                raise UnknownFieldError(message, line=node.pos.line, column=node.pos.column, text=self.text)
            raise UnknownFieldError(
                f"unknown field '{name}'",
                line=node.pos.line,
                column=node.pos.column,
                suggestion=self.catalogue.suggest(name),
                text=self.text,
            )
        self.fields.add(name)
        return dataclasses.replace(node, type=type_)

    def boolean(self, node: nodes.Node, context: str) -> nodes.Node:
        if node.type is not RuleType.BOOL:
            self.fail(f"{context} needs a condition (bool), got {_describe(node.type)}", node)
        return node

    def numeric(self, node: nodes.Node, context: str) -> nodes.Node:
        if node.type is None or not node.type.is_numeric:
            self.fail(f"{context} needs a number, got {_describe(node.type)}", node)
        return node

    def compare(self, node: nodes.Compare, left: nodes.Node, right: nodes.Node) -> nodes.Node:
        op = node.op
        assert left.type is not None and right.type is not None
        if RuleType.NULL in (left.type, right.type):
            hint = "is not None" if op == "!=" else "is None"
            self.fail(f"comparing with None is never true; use 'x {hint}'", node)
        if not comparable(left.type, right.type, op):
            self.fail(f"cannot compare {left.type} with {right.type} using '{op}'", node)
        if RuleType.DATETIME in (left.type, right.type):
            left, right = _to_datetime(left), _to_datetime(right)
        return dataclasses.replace(node, left=left, right=right, type=RuleType.BOOL)

    def in_list(self, node: nodes.In, operand: nodes.Node) -> nodes.Node:
        items = node.items
        assert operand.type is not None
        if operand.type is RuleType.NULL:
            self.fail("None is never in a list; use 'x is None'", node)
        typed_items: list[nodes.Literal] = []
        for item in items.items:
            item_type = _literal_type(item.value)
            if not comparable(operand.type, item_type, "=="):
                message = f"list item {item.value!r} is {item_type}, cannot compare with {operand.type}"
                self.fail(message, item)
            typed_items.append(dataclasses.replace(item, type=item_type))
        typed_list = dataclasses.replace(items, items=tuple(typed_items), type=operand.type)
        return dataclasses.replace(node, operand=operand, items=typed_list, type=RuleType.BOOL)

    def arith(self, node: nodes.Arith, left: nodes.Node, right: nodes.Node) -> nodes.Node:
        op = node.op
        if op == "+" and left.type is right.type is RuleType.STR:
            return dataclasses.replace(node, left=left, right=right, type=RuleType.STR)
        self.numeric(left, f"'{op}'")
        self.numeric(right, f"'{op}'")
        both_int = left.type is right.type is RuleType.INT
        result = RuleType.INT if both_int and op != "/" else RuleType.NUMBER
        return dataclasses.replace(node, left=left, right=right, type=result)

    def call(self, node: nodes.Call) -> nodes.Node:
        name = node.name
        args = tuple(self.visit(a) for a in node.args)

        def result(type_: RuleType) -> nodes.Node:
            return dataclasses.replace(node, args=args, type=type_)

        match name:
            case "lower" | "upper":
                self.expect(name, args, RuleType.STR)
                return result(RuleType.STR)
            case "len":
                self.expect(name, args, RuleType.STR)
                return result(RuleType.INT)
            case "startswith" | "endswith" | "contains":
                self.expect(name, args, RuleType.STR, RuleType.STR)
                return result(RuleType.BOOL)
            case "abs":
                arg = self.numeric(args[0], "abs()")
                assert arg.type is not None
                return result(arg.type)
            case "min" | "max":
                for arg in args:
                    self.numeric(arg, f"{name}()")
                all_int = all(a.type is RuleType.INT for a in args)
                return result(RuleType.INT if all_int else RuleType.NUMBER)
            case "today":
                return result(RuleType.DATE)
            case "date":
                return self.date_literal(node, args[0])
            case "days_since":
                if args[0].type is None or not args[0].type.is_temporal:
                    got = _describe(args[0].type)
                    self.fail(f"days_since() needs a date or datetime, got {got}", args[0])
                return result(RuleType.INT)
            case "in_segment":
                segment = str(self.literal_arg(name, args[0], str, "a segment name in quotes"))
                if segment not in self.catalogue.segments:
                    raise UnknownFieldError(
                        f"unknown segment '{segment}'",
                        line=args[0].pos.line,
                        column=args[0].pos.column,
                        suggestion=self.catalogue.suggest_segment(segment),
                        text=self.text,
                    )
                self.segments.add(segment)
                return result(RuleType.BOOL)
            case "bucket":
                count = int(self.literal_arg(name, args[0], int, "the number of buckets"))
                if not 1 <= count <= MAX_BUCKETS:
                    self.fail(f"bucket() needs between 1 and {MAX_BUCKETS} buckets, got {count}", args[0])
                if len(args) > 1:
                    self.literal_arg(name, args[1], str, "a salt in quotes")
                return result(RuleType.INT)
            case _:
                self.fail(f"unknown function '{name}'", node)

    def expect(self, name: str, args: Sequence[nodes.Node], *types: RuleType) -> None:
        for arg, type_ in zip(args, types, strict=True):
            if arg.type is not type_:
                self.fail(f"{name}() needs {_describe(type_)}, got {_describe(arg.type)}", arg)

    def literal_arg(self, name: str, arg: nodes.Node, kind: type[int] | type[str], what: str) -> int | str:
        value = arg.value if isinstance(arg, nodes.Literal) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            self.fail(f"{name}() needs {what}", arg)
        assert isinstance(value, int | str)
        return value

    def date_literal(self, node: nodes.Node, arg: nodes.Node) -> nodes.Node:
        value = self.literal_arg("date", arg, str, "a date in quotes, like date('2026-01-31')")
        assert isinstance(value, str)
        try:
            if not _ISO_DATE.fullmatch(value):
                raise ValueError(value)
            parsed = datetime.date.fromisoformat(value)
        except ValueError:
            self.fail(f"invalid date {value!r}; write date('YYYY-MM-DD')", arg)
        return nodes.Literal(parsed, pos=node.pos, type=RuleType.DATE)


def _literal_type(value: object) -> RuleType:
    if value is None:
        return RuleType.NULL
    if isinstance(value, bool):
        return RuleType.BOOL
    if isinstance(value, int):
        return RuleType.INT
    if isinstance(value, Decimal):
        return RuleType.NUMBER
    if isinstance(value, str):
        return RuleType.STR
    if isinstance(value, datetime.datetime):
        return RuleType.DATETIME
    if isinstance(value, datetime.date):
        return RuleType.DATE
    raise TypeError(f"unexpected literal {value!r}")


def _to_datetime(node: nodes.Node) -> nodes.Node:
    """Promote a date operand to midnight UTC (folded for literals)."""
    if node.type is not RuleType.DATE:
        return node
    if isinstance(node, nodes.Literal) and isinstance(node.value, datetime.date):
        d = node.value
        midnight = datetime.datetime(d.year, d.month, d.day, tzinfo=datetime.UTC)
        return nodes.Literal(midnight, pos=node.pos, type=RuleType.DATETIME)
    return nodes.ToDatetime(node, pos=node.pos, type=RuleType.DATETIME)
