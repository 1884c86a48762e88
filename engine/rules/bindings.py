"""What a rule reads its values from: SQL bindings or one Python record."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from sqlalchemy import ColumnElement


class SqlBindings(Protocol):
    """Where a rule compiled to SQL finds its fields, segments, row key and today's date.

    The caller decides the FROM clause and joins; the rule only asks for
    column expressions. ``today`` is bound as a parameter (never the database's
    clock) so SQL and Python agree.
    """

    @property
    def today(self) -> datetime.date:
        """The date ``today()`` and ``days_since()`` count from."""
        ...

    def field(self, name: str) -> ColumnElement[Any]:
        """The column expression of catalogue field ``name``."""
        ...

    def in_segment(self, name: str) -> ColumnElement[bool]:
        """A condition: the current row is a member of segment ``name``."""
        ...

    def row_key(self) -> ColumnElement[int]:
        """The positive integer key of the row (the customer id), for ``bucket()``."""
        ...


class Record(Protocol):
    """One row as seen by the Python evaluator.

    ``field`` returns ``None`` for NULL; numbers may be ``int``/``Decimal``
    (floats are read through their ``repr``), naive datetimes are taken as UTC.
    """

    @property
    def today(self) -> datetime.date:
        """The date ``today()`` and ``days_since()`` count from."""
        ...

    @property
    def row_key(self) -> int:
        """The positive integer key of the row (the customer id), for ``bucket()``."""
        ...

    def field(self, name: str) -> Any:
        """The value of catalogue field ``name`` (``None`` for NULL)."""
        ...

    def in_segment(self, name: str) -> bool:
        """Whether the record is a member of segment ``name``."""
        ...


def _utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


@dataclasses.dataclass(frozen=True)
class DictRecord:
    """A :class:`Record` over a plain dict; missing fields read as ``None``.

    ::

        DictRecord({"abc_class": "A"}, segments={"large"}, row_key=42, today=date(2026, 1, 1))
    """

    fields: Mapping[str, Any]
    segments: Collection[str] = frozenset()
    row_key: int = 0
    today: datetime.date = dataclasses.field(default_factory=_utc_today)

    def field(self, name: str) -> Any:
        """The value of ``name``, ``None`` when absent."""
        return self.fields.get(name)

    def in_segment(self, name: str) -> bool:
        """Whether ``name`` is among ``segments``."""
        return name in self.segments
