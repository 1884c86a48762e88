"""The segment migration matrix: where customers were at one instant against where they were at a later one.

A customer is *in* a segment at an instant when a ``segment_membership`` stay
holds it (``entered_at <= instant < left_at``, an open stay has no
``left_at``). Segments overlap (a customer may be ``large`` and
``lapsing_large``), so each customer gets one place per instant: the first
segment of an ordered list that holds them (``--segments``, default: the
segments in the order of config.toml), else ``(none)``. Customers recorded
before the later instant count (``customer.created_at``); each cell is a
number of customers, each row also as shares of its total.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, Integer, case, func, literal, or_, select

from engine.errors import ConfigValueError, NotFoundError
from engine.models import CUSTOMER, MEMBERSHIP
from engine.sql import UtcDateTime

if TYPE_CHECKING:
    from engine.config import Config

NONE = "(none)"
SHARE = Decimal("0.0001")


@dataclass(frozen=True)
class MigrationMatrix:
    """Customers by place at ``start`` (rows) and at ``end`` (columns); labels are segments then (none)."""

    start: dt.datetime
    end: dt.datetime
    labels: list[str]
    counts: list[list[int]]  # counts[row][column]

    @property
    def customers(self) -> int:
        """Every customer counted."""
        return sum(sum(row) for row in self.counts)

    def count(self, before: str, after: str) -> int:
        """Customers in ``before`` at the start and in ``after`` at the end."""
        return self.counts[self.labels.index(before)][self.labels.index(after)]

    def row_total(self, before: str) -> int:
        """Customers in ``before`` at the start."""
        return sum(self.counts[self.labels.index(before)])

    def column_total(self, after: str) -> int:
        """Customers in ``after`` at the end."""
        column = self.labels.index(after)
        return sum(row[column] for row in self.counts)

    def share(self, before: str, after: str) -> Decimal | None:
        """The share of ``before``'s customers that ended in ``after`` (None for an empty row)."""
        total = self.row_total(before)
        if not total:
            return None
        return (Decimal(self.count(before, after)) / total).quantize(SHARE)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: the matrix and the non-empty cells with their row shares."""
        cells = [
            {
                "from": before,
                "to": after,
                "customers": self.count(before, after),
                "share_of_row": str(self.share(before, after)),
            }
            for before in self.labels
            for after in self.labels
            if self.count(before, after)
        ]
        return {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "labels": list(self.labels),
            "counts": [list(row) for row in self.counts],
            "cells": cells,
            "customers": self.customers,
        }


def _place_at(instant: dt.datetime, order: Sequence[str], name: str) -> Any:
    """Per customer with a stay in ``order`` at ``instant``: the position of the first such segment."""
    at = literal(instant, UtcDateTime())
    position = case(
        *((MEMBERSHIP.c.segment == segment, n) for n, segment in enumerate(order)), else_=len(order)
    )
    return (
        select(MEMBERSHIP.c.customer_id, func.min(position).label("place"))
        .where(
            MEMBERSHIP.c.segment.in_(list(order)),
            MEMBERSHIP.c.entered_at <= at,
            or_(MEMBERSHIP.c.left_at.is_(None), MEMBERSHIP.c.left_at > at),
        )
        .group_by(MEMBERSHIP.c.customer_id)
        .subquery(name)
    )


def history_start(engine: Engine) -> dt.datetime | None:
    """When segment history begins: the earliest entry on record (None before the first refresh).

    A migration from before it would find every customer in no segment, as if
    they had all just arrived.
    """
    with engine.connect() as connection:
        first: dt.datetime | None = connection.execute(select(func.min(MEMBERSHIP.c.entered_at))).scalar()
    return first  # MIN keeps the column's type: an aware UTC datetime


def segment_migration(
    engine: Engine,
    config: Config,
    start: dt.datetime,
    end: dt.datetime,
    segments: Sequence[str] | None = None,
) -> MigrationMatrix:
    """Customers counted by (segment at ``start``, segment at ``end``), one GROUP BY in the database.

    Example::

        matrix = segment_migration(engine, config, utc(2026, 9, 1), utc(2026, 12, 1), ["large", "medium"])
        matrix.count("large", "medium")  # customers who moved down from large to medium
    """
    if end < start:
        raise ConfigValueError("--to", "to", f"{end.isoformat()} is before --from {start.isoformat()}")
    order = list(segments) if segments else list(config.settings.segments)
    for name in order:
        if name not in config.segments:
            raise NotFoundError("segment", name, list(config.segments))
    if len(set(order)) != len(order):
        raise ConfigValueError("--segments", "segments", "a segment is named twice")
    before = _place_at(start, order, "place_before")
    after = _place_at(end, order, "place_after")
    none = literal(len(order), Integer())
    pairs = (
        select(
            func.coalesce(before.c.place, none).label("before"),
            func.coalesce(after.c.place, none).label("after"),
        )
        .select_from(
            CUSTOMER.outerjoin(before, before.c.customer_id == CUSTOMER.c.id).outerjoin(
                after, after.c.customer_id == CUSTOMER.c.id
            )
        )
        .where(CUSTOMER.c.created_at <= literal(end, UtcDateTime()))
        .subquery("pairs")
    )
    query = select(pairs.c.before, pairs.c.after, func.count().label("customers")).group_by(
        pairs.c.before, pairs.c.after
    )
    with engine.connect() as connection:
        import pandas as pd  # only when a matrix is computed: pandas takes a while to import

        frame = pd.DataFrame(connection.execute(query).all(), columns=["before", "after", "customers"])
    positions = range(len(order) + 1)
    counts = [[0 for _ in positions] for _ in positions]
    if not frame.empty:
        matrix = frame.pivot_table(
            index="before", columns="after", values="customers", aggfunc="sum", fill_value=0
        ).reindex(index=positions, columns=positions, fill_value=0)
        counts = [[int(value) for value in row] for row in matrix.to_numpy().tolist()]
    return MigrationMatrix(start=start, end=end, labels=[*order, NONE], counts=counts)
