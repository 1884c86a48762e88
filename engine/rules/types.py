"""The value types of the rule language."""

from __future__ import annotations

import enum


class RuleType(enum.Enum):
    """The type of a rule expression or of a catalogue field.

    ``INT`` and ``NUMBER`` (a :class:`~decimal.Decimal`) mix in arithmetic and
    comparisons; ``DATETIME`` values are aware and in UTC; a ``DATE`` compared
    with a ``DATETIME`` is promoted to midnight UTC. ``NULL`` is the type of the
    literal ``None`` and is only allowed in ``is None`` / ``is not None``.
    """

    INT = "int"
    NUMBER = "number"
    STR = "str"
    BOOL = "bool"
    DATE = "date"
    DATETIME = "datetime"
    NULL = "null"

    def __str__(self) -> str:
        return self.value

    @property
    def is_numeric(self) -> bool:
        """True for ``INT`` and ``NUMBER``."""
        return self in (RuleType.INT, RuleType.NUMBER)

    @property
    def is_temporal(self) -> bool:
        """True for ``DATE`` and ``DATETIME``."""
        return self in (RuleType.DATE, RuleType.DATETIME)
