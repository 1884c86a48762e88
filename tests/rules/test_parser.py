"""The parser accepts the language and refuses everything else, with positions."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.errors import RuleError, RuleSyntaxError
from engine.rules import nodes
from engine.rules.parser import MAX_LENGTH, parse


def test_comparison_and_boolean_structure() -> None:
    tree = parse("abc_class == 'A' and 90 <= days <= 180")
    assert isinstance(tree, nodes.BoolOp) and tree.op == "and"
    first, chained = tree.operands
    assert first == nodes.Compare(
        "==",
        nodes.Field("abc_class", pos=nodes.Position(1, 1)),
        nodes.Literal("A", pos=nodes.Position(1, 14)),
        pos=nodes.Position(1, 1),
    )
    assert isinstance(chained, nodes.BoolOp)
    low, high = chained.operands
    assert isinstance(low, nodes.Compare) and isinstance(high, nodes.Compare)
    assert (low.op, high.op) == ("<=", "<=")
    assert low.right is high.left  # the middle operand is shared, not re-parsed


def test_decimal_literals_are_exact() -> None:
    tree = parse("amount > 0.1")
    assert isinstance(tree, nodes.Compare)
    assert tree.right == nodes.Literal(Decimal("0.1"), pos=nodes.Position(1, 10))


def test_negative_literals_are_folded() -> None:
    tree = parse("x in [-1, -2.5]")
    assert isinstance(tree, nodes.In)
    assert [i.value for i in tree.items.items] == [-1, Decimal("-2.5")]


def test_dotted_names_are_fields() -> None:
    assert parse("attr.vip") == nodes.Field("attr.vip", pos=nodes.Position(1, 1))


def test_methods_become_calls() -> None:
    tree = parse("name.startswith('A')")
    assert isinstance(tree, nodes.Call)
    assert tree.name == "startswith"
    assert tree.args[0] == nodes.Field("name", pos=nodes.Position(1, 1))


def test_lowercase_true_false() -> None:
    assert parse("true") == nodes.Literal(True, pos=nodes.Position(1, 1))
    assert parse("false") == nodes.Literal(False, pos=nodes.Position(1, 1))


def test_is_none_and_not_in() -> None:
    assert isinstance(parse("x is not None"), nodes.IsNone)
    tree = parse("x not in ('a', 'b')")
    assert isinstance(tree, nodes.In) and tree.negated


def test_multiline_indented_rule() -> None:
    tree = parse("\n    abc_class == 'A'\n    and orders > 2\n")
    assert isinstance(tree, nodes.BoolOp)
    assert tree.operands[1].pos == nodes.Position(3, 9)


@pytest.mark.parametrize(
    "text",
    [
        "__class__",
        "().__class__",
        "x.__class__",
        "name.__len__()",
        "__import__('os')",
        "[x for x in y]",
        "{x for x in y}",
        "(x for x in y)",
        "lambda: 1",
        "open('x')",
        "eval('1')",
        "import os",
        "x[0]",
        "x[1:2]",
        "f'{x}'",
        "(y := 1)",
        "len(*x)",
        "max(x, key=len)",
        "1 if x else 2",
        "{'a': 1}",
        "[1, 2]",
        "x in y",
        "x is y",
        "x in [y]",
        "x in []",
        "x in [None]",
        "x // 2",
        "x % 2",
        "x ** 2",
        "~x",
        "+x",
        "x.foo()",
        "'abc'.upper()" + " == x.y.z.__dict__",
        "b'x' == x",
        "1j == x",
        "99999999999999999999 > x",
        "x == 'a' x",
        "a = 1",
        "",
        "   ",
        "x ==",
        "(x",
        "await x",
        "x < y in [1]",
        "(1).real",
        "x.y()",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(RuleSyntaxError):
        parse(text)


def test_rule_error_is_config_error() -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError):
        parse("x[0]")


def test_length_limit() -> None:
    parse(" or ".join(["x"] * 100))
    with pytest.raises(RuleSyntaxError, match="too long"):
        parse("x or " * (MAX_LENGTH // 5) + "x")


def test_depth_limit() -> None:
    with pytest.raises(RuleSyntaxError, match="nested too deeply"):
        parse("not " * 100 + "x")
    with pytest.raises(RuleSyntaxError):
        parse("(" * 300 + "x" + ")" * 300)


def _error(text: str) -> RuleError:
    with pytest.raises(RuleError) as info:
        parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("x == 1 and y[0]", 1, 12),
        ("x == 1 and\n  open('f')", 2, 3),
        ("name.uper()", 1, 6),
        ("'é' == x and y[0]", 1, 14),  # columns count characters, not bytes
        ("x ==", 1, 5),
        ("abc_class = 'A'", 1, 1),
    ],
)
def test_error_positions(text: str, line: int, column: int) -> None:
    error = _error(text)
    assert (error.line, error.column) == (line, column), str(error)
    assert error.text == text


def test_unknown_function_suggests() -> None:
    error = _error("day_since(x) > 3")
    assert error.suggestion == "days_since"
    assert str(error) == "line 1, column 1: unknown function 'day_since' (did you mean days_since?)"


def test_unknown_method_suggests() -> None:
    assert _error("name.startwith('a')").suggestion == "startswith"


def test_wrong_arity() -> None:
    assert "takes 1 argument(s), got 2" in str(_error("len(a, b)"))
