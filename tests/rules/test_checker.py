"""Type checking against the catalogue: types, promotions, suggestions, references."""

from __future__ import annotations

import re

import pytest

from engine.errors import RuleError, RuleTypeError, UnknownFieldError
from engine.rules import Catalogue, RuleType, compile_rule, nodes
from engine.rules.rule import compile_expression


def test_fields_and_segments_collected(rules_catalogue: Catalogue) -> None:
    rule = compile_rule(
        "orders > 2 and (attr.vip or in_segment('large')) and not in_segment('lapsing')", rules_catalogue
    )
    assert rule.fields == frozenset({"orders", "attr.vip"})
    assert rule.segments == frozenset({"large", "lapsing"})
    assert rule.text.startswith("orders")


@pytest.mark.parametrize(
    "text",
    [
        "orders > 2",
        "orders > amount",
        "amount + orders * 2 >= 10.5",
        "orders / visits > 0.5",
        "-orders < 0",
        "name < city",
        "name + ' ' + city == 'a b'",
        "attr.vip",
        "attr.vip == (orders > 1)",
        "first_order < last_order_at",
        "last_order_at >= date('2026-01-01')",
        "first_order == today()",
        "days_since(first_order) > 30 and days_since(last_order_at) <= 7",
        "days_since(today()) == 0",
        "name in ['a', 'b'] and orders not in (1, 2.5)",
        "attr.vip in [True]",
        "name is None or amount is not None",
        "(orders > 1) is None",
        "lower(name) == 'x' and name.upper() == 'X' and len(city) > 2",
        "contains(name, 'x') and name.endswith('y') and startswith(name, 'z')",
        "abs(amount) > 1 and min(orders, visits) < max(amount, 1, 2)",
        "bucket(10) < 3 and bucket(2, 'salt') == 0",
        "True",
        "not (orders > 2)",
    ],
)
def test_accepted(rules_catalogue: Catalogue, text: str) -> None:
    rule = compile_rule(text, rules_catalogue)
    assert rule.type is RuleType.BOOL
    assert rule.tree.type is RuleType.BOOL


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'abc' > 3", "cannot compare str with int"),
        ("not 5", "'not' needs a condition"),
        ("orders and attr.vip", "'and' needs a condition"),
        ("orders", "must be a condition"),
        ("name.startswith(1)", "startswith() needs a str"),
        ("orders.startswith('a')", "startswith() needs a str, got an int"),
        ("name in [1, 'a']", "list item 1 is int"),
        ("orders in [1, 'a']", "list item 'a' is str"),
        ("days_since(orders) > 1", "days_since() needs a date or datetime"),
        ("attr.vip < True", "cannot compare bool with bool using '<'"),
        ("attr.vip == 1", "cannot compare bool with int"),
        ("orders == None", "use 'x is None'"),
        ("orders != None", "use 'x is not None'"),
        ("name + 1 == 'a'", "'+' needs a number"),
        ("-name == 'a'", "unary '-' needs a number"),
        ("first_order + 1 > 3", "'+' needs a number"),
        ("first_order == 3", "cannot compare date with int"),
        ("date('2026-13-01') < today()", "invalid date"),
        ("date('tomorrow') < today()", "invalid date"),
        ("date(name) < today()", "date() needs a date in quotes"),
        ("bucket(0) == 0", "between 1 and"),
        ("bucket(orders) == 0", "bucket() needs the number of buckets"),
        ("bucket(2, 3) == 0", "bucket() needs a salt"),
        ("in_segment(name)", "needs a segment name"),
        ("min(name, 'a') == 'a'", "min() needs a number"),
        ("None", "must be a condition"),
    ],
)
def test_type_errors(rules_catalogue: Catalogue, text: str, message: str) -> None:
    with pytest.raises(RuleTypeError, match=re.escape(message)):
        compile_rule(text, rules_catalogue)


def test_unknown_field_suggestion() -> None:
    catalogue = Catalogue({"days_since_last_order": RuleType.INT, "abc_class": RuleType.STR})
    with pytest.raises(UnknownFieldError) as info:
        compile_rule("abc_class == 'A' and days_since_last_ordr > 90", catalogue)
    error = info.value
    assert (error.line, error.column, error.suggestion) == (1, 22, "days_since_last_order")
    assert str(error) == (
        "line 1, column 22: unknown field 'days_since_last_ordr' (did you mean days_since_last_order?)"
    )


def test_unknown_dotted_field(rules_catalogue: Catalogue) -> None:
    with pytest.raises(UnknownFieldError, match=re.escape("unknown field 'attr.vp'")) as info:
        compile_rule("attr.vp", rules_catalogue)
    assert info.value.suggestion == "attr.vip"
    with pytest.raises(UnknownFieldError, match=re.escape("unknown field 'name.lower'")):
        compile_rule("name.lower == 'a'", rules_catalogue)


def test_unknown_segment_suggestion(rules_catalogue: Catalogue) -> None:
    with pytest.raises(UnknownFieldError, match="unknown segment 'larg'") as info:
        compile_rule("in_segment('larg')", rules_catalogue)
    assert info.value.suggestion == "large"


def test_function_used_as_name(rules_catalogue: Catalogue) -> None:
    with pytest.raises(UnknownFieldError, match="call it like today"):
        compile_rule("first_order < today", rules_catalogue)


def test_errors_have_positions_on_later_lines(rules_catalogue: Catalogue) -> None:
    with pytest.raises(RuleError) as info:
        compile_rule("orders > 1\n  and name > 3", rules_catalogue)
    assert (info.value.line, info.value.column) == (2, 7)


def test_dates_compared_with_datetimes_are_promoted(rules_catalogue: Catalogue) -> None:
    rule = compile_rule("first_order < last_order_at and last_order_at > date('2026-01-02')", rules_catalogue)
    assert isinstance(rule.tree, nodes.BoolOp)
    field_side, literal_side = rule.tree.operands
    assert isinstance(field_side, nodes.Compare) and isinstance(field_side.left, nodes.ToDatetime)
    assert isinstance(literal_side, nodes.Compare) and literal_side.right.type is RuleType.DATETIME


def test_arithmetic_types(rules_catalogue: Catalogue) -> None:
    assert compile_expression("orders + visits", rules_catalogue).type is RuleType.INT
    assert compile_expression("orders + amount", rules_catalogue).type is RuleType.NUMBER
    assert compile_expression("orders / visits", rules_catalogue).type is RuleType.NUMBER
    assert compile_expression("amount * 0.05", rules_catalogue, RuleType.NUMBER).type is RuleType.NUMBER
    assert compile_expression("orders * 2", rules_catalogue, RuleType.NUMBER).type is RuleType.INT
    with pytest.raises(RuleTypeError, match="must be a number"):
        compile_expression("name", rules_catalogue, RuleType.NUMBER)


def test_rules_are_immutable_and_hashable(rules_catalogue: Catalogue) -> None:
    rule = compile_rule("orders > 1", rules_catalogue)
    assert rule == compile_rule("orders > 1", rules_catalogue)
    assert hash(rule) == hash(compile_rule("orders > 1", rules_catalogue))
    with pytest.raises(AttributeError):
        rule.text = "x"  # type: ignore[misc]


def test_catalogue_refuses_bad_names() -> None:
    with pytest.raises(ValueError):
        Catalogue({"__class__": RuleType.INT})
    with pytest.raises(ValueError):
        Catalogue({"a b": RuleType.INT})
