"""The lifecycle funnel: how many customers reached each stage, against the targets of config.toml.

Stages, in order (:data:`engine.settings.evaluation.FUNNEL_STAGES`), after the
base of every customer record (``visitor``: everyone we know of, prospects
included):

* ``identified``: we can reach them: an email or a phone, or they bought;
* ``client``: at least one order (lifecycle stage client, regular or partner);
* ``regular``: lifecycle stage regular or partner (``[metrics].regular_min_orders``
  orders within ``regular_window_days``);
* ``partner``: lifecycle stage partner (declared).

The lifecycle stage is the one of the last metrics refresh (``crm refresh``),
else the stage declared on the customer record. Each customer counts at the
highest stage reached and at every stage before it, so the funnel narrows.
*Actual* conversion of a stage = customers at it / customers at the stage
before; *gap* = actual - target (``[evaluation].funnel_targets``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, case, func, or_, select

from engine.models import CUSTOMER, METRICS
from engine.settings import FUNNEL_STAGES

if TYPE_CHECKING:
    from engine.config import Config

BASE = "visitor"  # the stage before the first: every customer record
RATE = Decimal("0.0001")


@dataclass(frozen=True)
class FunnelStage:
    """One stage: customers at it, the conversion from the stage before, and its target."""

    name: str
    customers: int
    previous: int | None  # customers at the stage before (None for the base)
    target: Decimal | None

    @property
    def actual(self) -> Decimal | None:
        """Customers at this stage / customers at the stage before."""
        if self.previous is None or not self.previous:
            return None
        return (Decimal(self.customers) / Decimal(self.previous)).quantize(RATE)

    @property
    def gap(self) -> Decimal | None:
        """Actual - target: negative when the stage falls short."""
        actual = self.actual
        if actual is None or self.target is None:
            return None
        return actual - self.target

    @property
    def expected(self) -> Decimal | None:
        """Customers the target asks for: target x customers at the stage before."""
        if self.previous is None or self.target is None:
            return None
        return (self.target * self.previous).quantize(Decimal("0.1"))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "stage": self.name,
            "customers": self.customers,
            "previous": self.previous,
            "actual": None if self.actual is None else str(self.actual),
            "target": None if self.target is None else str(self.target),
            "gap": None if self.gap is None else str(self.gap),
            "expected": None if self.expected is None else str(self.expected),
        }


@dataclass(frozen=True)
class Funnel:
    """The lifecycle funnel: the base and each stage in order."""

    stages: list[FunnelStage]
    metrics_as_of: dt.date | None  # the business day of the last metrics refresh
    notes: list[str] = field(default_factory=list)

    def stage(self, name: str) -> FunnelStage:
        """The stage called ``name``."""
        return next(stage for stage in self.stages if stage.name == name)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "metrics_as_of": None if self.metrics_as_of is None else self.metrics_as_of.isoformat(),
            "stages": [stage.as_dict() for stage in self.stages],
            "notes": list(self.notes),
        }


def _reached() -> Any:
    """The highest stage a customer reached, as its position: 0 visitor ... 4 partner."""
    stage = func.coalesce(METRICS.c.lifecycle_stage, CUSTOMER.c.lifecycle_stage)
    reachable = or_(
        and_(CUSTOMER.c.email.is_not(None), CUSTOMER.c.email != ""),
        and_(CUSTOMER.c.phone.is_not(None), CUSTOMER.c.phone != ""),
    )
    positions = {name: n for n, name in enumerate(FUNNEL_STAGES, start=1)}
    return case(
        *((stage == name, positions[name]) for name in reversed(FUNNEL_STAGES) if name != "identified"),
        (reachable, positions["identified"]),
        else_=0,
    )


def lifecycle_funnel(engine: Engine, config: Config) -> Funnel:
    """Customers per stage reached (one GROUP BY over all customers) against ``funnel_targets``."""
    reached = (
        select(_reached().label("reached"))
        .select_from(CUSTOMER.outerjoin(METRICS, METRICS.c.customer_id == CUSTOMER.c.id))
        .subquery("reached")
    )
    with engine.connect() as connection:
        query = select(reached.c.reached, func.count()).group_by(reached.c.reached)
        counts = {int(position): int(count) for position, count in connection.execute(query).all()}
        as_of = connection.execute(select(func.max(METRICS.c.as_of))).scalar_one()
    targets = config.settings.evaluation.funnel_targets
    names = (BASE, *FUNNEL_STAGES)
    at_least = [sum(count for position, count in counts.items() if position >= n) for n in range(len(names))]
    stages = [
        FunnelStage(
            name=name,
            customers=at_least[n],
            previous=at_least[n - 1] if n else None,
            target=targets.get(name),
        )
        for n, name in enumerate(names)
    ]
    notes = []
    if as_of is None:
        notes.append("no metrics refresh yet: stages are the ones declared on customer records (crm refresh)")
    return Funnel(stages=stages, metrics_as_of=as_of, notes=notes)
