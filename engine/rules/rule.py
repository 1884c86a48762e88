"""Compiled rules: parse and type-check once, then run in SQL or in Python."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from engine.rules import nodes
from engine.rules.bindings import Record, SqlBindings
from engine.rules.catalogue import Catalogue
from engine.rules.checker import check
from engine.rules.evaluate import evaluate
from engine.rules.parser import parse
from engine.rules.to_sql import condition, to_sql
from engine.rules.types import RuleType


@dataclass(frozen=True)
class Expression:
    """A parsed and type-checked expression of the rule language (immutable).

    ``to_sql`` and ``evaluate`` agree: SQL NULL is Python ``None``.
    """

    text: str
    tree: nodes.Node
    type: RuleType
    fields: frozenset[str]
    segments: frozenset[str]

    def to_sql(self, bindings: SqlBindings) -> ColumnElement[Any]:
        """The expression as SQLAlchemy Core, reading columns from ``bindings``."""
        return to_sql(self.tree, bindings)

    def evaluate(self, record: Record) -> Any:
        """The value for one record; ``None`` is NULL (unknown)."""
        return evaluate(self.tree, record)


@dataclass(frozen=True)
class Rule(Expression):
    """A condition: an expression of type bool (for segments, scores, filters).

    ::

        rule = compile_rule("abc_class == 'A' and 90 <= days_since_last_order <= 180", catalogue)
        select(customer.c.id).where(rule.to_sql(bindings))
        rule.matches(DictRecord({"abc_class": "A", "days_since_last_order": 100}))
    """

    def to_sql(self, bindings: SqlBindings) -> ColumnElement[bool]:
        """A WHERE clause; a row whose condition is NULL does not match."""
        return condition(self.tree, bindings)

    def evaluate(self, record: Record) -> bool | None:
        """True, False or ``None`` (unknown, like SQL NULL)."""
        result: bool | None = evaluate(self.tree, record)
        return result

    def matches(self, record: Record) -> bool:
        """Whether the rule is exactly True for ``record`` (unknown does not match)."""
        return self.evaluate(record) is True


def compile_rule(text: str, catalogue: Catalogue) -> Rule:
    """Parse and type-check a condition; raises a :class:`~engine.errors.RuleError` subclass."""
    checked = check(parse(text), catalogue, text, RuleType.BOOL)
    return Rule(text, checked.tree, RuleType.BOOL, checked.fields, checked.segments)


def compile_expression(text: str, catalogue: Catalogue, expected: RuleType | None = None) -> Expression:
    """Parse and type-check any expression (e.g. points ``amount * 0.05``).

    ``expected`` is the required type; ``INT`` and ``NUMBER`` accept each other.
    """
    checked = check(parse(text), catalogue, text, expected)
    assert checked.tree.type is not None
    return Expression(text, checked.tree, checked.tree.type, checked.fields, checked.segments)
