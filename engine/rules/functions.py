"""The functions and methods a rule may call, with their arity.

The parser refuses any other call; the checker (types), the SQL compiler and
the Python evaluator each implement exactly these names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Function:
    """A callable of the rule language: its name, arity and a one-line signature."""

    name: str
    min_args: int
    max_args: int
    signature: str


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("lower", 1, 1, "lower(str) -> str (ASCII letters only)"),
        Function("upper", 1, 1, "upper(str) -> str (ASCII letters only)"),
        Function("len", 1, 1, "len(str) -> int (characters)"),
        Function("startswith", 2, 2, "startswith(str, prefix) -> bool"),
        Function("endswith", 2, 2, "endswith(str, suffix) -> bool"),
        Function("contains", 2, 2, "contains(str, part) -> bool"),
        Function("abs", 1, 1, "abs(number) -> number"),
        Function("min", 2, 8, "min(number, number, ...) -> number"),
        Function("max", 2, 8, "max(number, number, ...) -> number"),
        Function("today", 0, 0, "today() -> date"),
        Function("date", 1, 1, "date('YYYY-MM-DD') -> date"),
        Function("days_since", 1, 1, "days_since(date | datetime) -> int"),
        Function("in_segment", 1, 1, "in_segment('segment') -> bool"),
        Function("bucket", 1, 2, "bucket(n) | bucket(n, 'salt') -> int in 0..n-1"),
    )
}

#: Methods allowed as ``x.method(...)``; each is sugar for ``method(x, ...)``.
METHODS: frozenset[str] = frozenset({"startswith", "endswith", "lower", "upper"})
