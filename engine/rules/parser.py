"""Parse rule text into the rule syntax tree, refusing anything outside the language.

Python's own parser reads the text (so the syntax is familiar) and a strict
whitelist turns its tree into :mod:`engine.rules.nodes`; every construct not
explicitly allowed is refused with :class:`RuleSyntaxError` and a position.
"""

from __future__ import annotations

import ast
from decimal import Decimal, InvalidOperation
from typing import NoReturn

from engine.errors import RuleSyntaxError
from engine.rules import nodes
from engine.rules.catalogue import closest
from engine.rules.functions import FUNCTIONS, METHODS

MAX_LENGTH = 2000
MAX_DEPTH = 40
INT_LIMIT = 2**63  # integer literals must fit a signed 64-bit integer
MAX_DECIMAL_DIGITS = 28

_COMPARE_OPS: dict[type[ast.cmpop], nodes.CompareOp] = {
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_ARITH_OPS: dict[type[ast.operator], nodes.ArithOp] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
}
_OPERATOR_SYMBOLS: dict[type[ast.AST], str] = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.BitXor: "^",
    ast.Invert: "~",
    ast.UAdd: "unary +",
}
_REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: "subscripts ([...]) are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.Starred: "'*' unpacking is not allowed",
    ast.IfExp: "'x if c else y' is not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
    ast.Dict: "dicts are not allowed",
}
_BOOL_NAMES = {"true": True, "false": False}


def parse(text: str) -> nodes.Node:
    """Parse ``text`` into an untyped rule tree; raise :class:`RuleSyntaxError` if refused."""
    if len(text) > MAX_LENGTH:
        raise RuleSyntaxError(f"rule is too long ({len(text)} characters, at most {MAX_LENGTH})", text=text)
    if not text.strip():
        raise RuleSyntaxError("rule is empty", text=text)
    # Parenthesised so that rules may span lines and be indented (TOML multi-line strings).
    source = "(" + text + "\n)"
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        line, column = _syntax_error_position(text, exc)
        raise RuleSyntaxError(_syntax_message(exc), line=line, column=column, text=text) from None
    except (ValueError, RecursionError, MemoryError) as exc:
        reason = "rule is nested too deeply" if not isinstance(exc, ValueError) else str(exc)
        raise RuleSyntaxError(reason, text=text) from None
    return _Converter(text, source).convert(tree.body, 0)


def _syntax_message(exc: SyntaxError) -> str:
    message = exc.msg or "invalid syntax"
    if "never closed" in message or "unexpected EOF" in message:
        return "incomplete rule: " + message
    return message


def _syntax_error_position(text: str, exc: SyntaxError) -> tuple[int, int]:
    lines = text.split("\n")
    line = exc.lineno or 1
    offset = exc.offset or 1  # 1-based character offset in the parenthesised source
    if line > len(lines):  # at the closing parenthesis we added: the end of the rule
        return len(lines), len(lines[-1]) + 1
    column = offset - 1 if line == 1 else offset
    return line, max(1, min(column, len(lines[line - 1]) + 1))


class _Converter:
    """Turns a Python expression tree into rule nodes, allowing only the whitelist."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.lines = source.split("\n")

    def position(self, node: ast.AST) -> nodes.Position:
        lineno: int = getattr(node, "lineno", 1)
        byte_offset: int = getattr(node, "col_offset", 0)
        line = self.lines[lineno - 1] if lineno <= len(self.lines) else ""
        column = len(line.encode()[:byte_offset].decode(errors="ignore")) + 1
        if lineno == 1:
            column -= 1  # the "(" we added
        return nodes.Position(lineno, max(1, column))

    def attribute_position(self, node: ast.Attribute) -> nodes.Position:
        """Where the attribute name after the dot starts."""
        end = nodes.Position(node.end_lineno or node.lineno, 0)
        line = self.lines[end.line - 1]
        end_column = len(line.encode()[: node.end_col_offset or 0].decode(errors="ignore"))
        column = end_column - len(node.attr) + 1 - (1 if end.line == 1 else 0)
        return nodes.Position(end.line, max(1, column))

    def fail(self, message: str, node: ast.AST, suggestion: str | None = None) -> NoReturn:
        self.fail_at(message, self.position(node), suggestion)

    def fail_at(self, message: str, pos: nodes.Position, suggestion: str | None = None) -> NoReturn:
        raise RuleSyntaxError(
            message, line=pos.line, column=pos.column, suggestion=suggestion, text=self.text
        )

    def convert(self, node: ast.expr, depth: int) -> nodes.Node:
        if depth > MAX_DEPTH:
            self.fail(f"rule is nested too deeply (more than {MAX_DEPTH} levels)", node)
        pos = self.position(node)
        match node:
            case ast.Constant():
                return self.constant(node)
            case ast.Name(id=name):
                self.check_identifier(name, node)
                if name in _BOOL_NAMES:
                    return nodes.Literal(_BOOL_NAMES[name], pos=pos)
                return nodes.Field(name, pos=pos)
            case ast.Attribute():
                return nodes.Field(self.dotted_name(node), pos=pos)
            case ast.Call():
                return self.call(node, depth)
            case ast.Compare():
                return self.compare(node, depth)
            case ast.BoolOp(op=op, values=values):
                operands = tuple(self.convert(v, depth + 1) for v in values)
                return nodes.BoolOp("and" if isinstance(op, ast.And) else "or", operands, pos=pos)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                return nodes.Not(self.convert(operand, depth + 1), pos=pos)
            case ast.UnaryOp(op=ast.USub() | ast.UAdd() as op, operand=operand):
                inner = self.convert(operand, depth + 1)
                if _is_number_literal(inner):
                    assert isinstance(inner, nodes.Literal)
                    value = inner.value
                    assert isinstance(value, int | Decimal)
                    return nodes.Literal(-value if isinstance(op, ast.USub) else value, pos=pos)
                if isinstance(op, ast.UAdd):
                    self.fail("unary '+' is only allowed before a number", node)
                return nodes.Negate(inner, pos=pos)
            case ast.BinOp(op=op, left=left, right=right):
                arith = _ARITH_OPS.get(type(op))
                if arith is None:
                    symbol = _OPERATOR_SYMBOLS.get(type(op), type(op).__name__)
                    self.fail(f"operator '{symbol}' is not supported", node)
                return nodes.Arith(
                    arith, self.convert(left, depth + 1), self.convert(right, depth + 1), pos=pos
                )
            case ast.UnaryOp(op=op):
                self.fail(f"operator '{_OPERATOR_SYMBOLS.get(type(op), '?')}' is not supported", node)
            case ast.List() | ast.Tuple() | ast.Set():
                self.fail("a list is only allowed after 'in' or 'not in'", node)
            case _:
                message = _REFUSED.get(type(node), f"'{type(node).__name__}' is not allowed in rules")
                self.fail(message, node)

    def check_identifier(self, name: str, node: ast.AST) -> None:
        if "__" in name:
            self.fail(f"name '{name}' is not allowed (double underscores)", node)

    def constant(self, node: ast.Constant) -> nodes.Literal:
        pos = self.position(node)
        value = node.value
        if value is None or isinstance(value, bool | str):
            return nodes.Literal(value, pos=pos)
        if isinstance(value, int):
            if not -INT_LIMIT <= value < INT_LIMIT:
                self.fail("integer literal out of range (64 bits)", node)
            return nodes.Literal(value, pos=pos)
        if isinstance(value, float):
            return nodes.Literal(self.decimal(node), pos=pos)
        kind = {bytes: "bytes literals", complex: "complex numbers"}.get(type(value), "this literal")
        self.fail(f"{kind} are not allowed", node)

    def decimal(self, node: ast.Constant) -> Decimal:
        """The exact decimal written in the rule (never via float)."""
        segment = ast.get_source_segment(self.source, node) or repr(node.value)
        try:
            value = Decimal(segment)
        except InvalidOperation:
            value = Decimal(repr(node.value))
        if (
            not value.is_finite()
            or len(value.as_tuple().digits) > MAX_DECIMAL_DIGITS
            or abs(value.adjusted()) > MAX_DECIMAL_DIGITS
        ):
            self.fail("number literal out of range", node)
        return value

    def dotted_name(self, node: ast.Attribute) -> str:
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            if "__" in current.attr:
                self.fail_at(
                    f"name '{current.attr}' is not allowed (double underscores)",
                    self.attribute_position(current),
                )
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name):
            self.fail("attribute access is only allowed on field names", node)
        self.check_identifier(current.id, current)
        parts.append(current.id)
        return ".".join(reversed(parts))

    def call(self, node: ast.Call, depth: int) -> nodes.Node:
        pos = self.position(node)
        if node.keywords:
            self.fail("keyword arguments are not allowed", node.keywords[0].value)
        args = [self.convert(a, depth + 1) for a in node.args]
        func = node.func
        if isinstance(func, ast.Name):
            self.check_identifier(func.id, func)
            name = func.id
            if name not in FUNCTIONS:
                self.fail(f"unknown function '{name}'", func, closest(name, FUNCTIONS))
        elif isinstance(func, ast.Attribute):
            name = func.attr
            if "__" in name or name not in METHODS:
                self.fail_at(
                    f"unknown method '{name}'", self.attribute_position(func), closest(name, METHODS)
                )
            args.insert(0, self.convert(func.value, depth + 1))
        else:
            self.fail("only named functions can be called", node)
        spec = FUNCTIONS[name]
        if not spec.min_args <= len(args) <= spec.max_args:
            expected = (
                str(spec.min_args)
                if spec.min_args == spec.max_args
                else f"{spec.min_args} to {spec.max_args}"
            )
            self.fail(f"{name}() takes {expected} argument(s), got {len(args)}: {spec.signature}", node)
        return nodes.Call(name, tuple(args), pos=pos)

    def compare(self, node: ast.Compare, depth: int) -> nodes.Node:
        pos = self.position(node)
        special = (ast.In, ast.NotIn, ast.Is, ast.IsNot)
        if len(node.ops) > 1 and any(isinstance(op, special) for op in node.ops):
            self.fail("'in' and 'is' cannot be chained with other comparisons", node)
        left = self.convert(node.left, depth + 1)
        parts: list[nodes.Node] = []
        for op, right_ast in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                items = self.list_literal(right_ast, depth + 1)
                parts.append(nodes.In(left, items, isinstance(op, ast.NotIn), pos=left.pos))
                continue
            if isinstance(op, ast.Is | ast.IsNot):
                if not (isinstance(right_ast, ast.Constant) and right_ast.value is None):
                    self.fail("'is' and 'is not' are only allowed with None", right_ast)
                parts.append(nodes.IsNone(left, isinstance(op, ast.IsNot), pos=left.pos))
                continue
            right = self.convert(right_ast, depth + 1)
            parts.append(nodes.Compare(_COMPARE_OPS[type(op)], left, right, pos=left.pos))
            left = right
        if len(parts) == 1:
            return parts[0]
        return nodes.BoolOp("and", tuple(parts), pos=pos)

    def list_literal(self, node: ast.expr, depth: int) -> nodes.ListLiteral:
        if not isinstance(node, ast.List | ast.Tuple | ast.Set):
            self.fail("'in' needs a list of literals, like x in [1, 2] or x in ('a', 'b')", node)
        items: list[nodes.Literal] = []
        for element in node.elts:
            item = self.convert(element, depth + 1)
            if not isinstance(item, nodes.Literal):
                self.fail("a list after 'in' may contain only literals", element)
            if item.value is None:
                self.fail("None is not allowed in a list; use 'x is None'", element)
            items.append(item)
        if not items:
            self.fail("the list after 'in' is empty", node)
        return nodes.ListLiteral(tuple(items), pos=self.position(node))


def _is_number_literal(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Literal)
        and isinstance(node.value, int | Decimal)
        and not isinstance(node.value, bool)
    )
