"""Programme indicators per period and per segment: churn, revenue and profit per customer, wallet, reads.

Definitions (``docs/evaluation.md``, "Programme indicators"; ``churn_days`` is
``[evaluation].churn_days``, a period's bounds are local midnights of the
business time zone, the current period ends now):

* **active** at an instant: at least one order (not a refund) in the
  ``churn_days`` before it. *Active customers* of a period: active at its end.
* **churn rate** (the cohort definition of the retention literature: customers
  lost over a period among those held at its start; customers won during the
  period count in neither): ``churned / active at start``, where churned =
  active at the period's start and not active at its end.
* **buyers**: customers with an order in the period. **Revenue** (net of
  refunds: a refund is booked, negative, on its own date) and **margin** (a
  purchase without a recorded margin adds 0) sum every purchase row of the
  period. *Revenue per customer* = revenue / buyers.
* **contact cost**: recorded contacts sent in the period x their unit cost at
  send time (the budget's actual contact cost). *Profit per customer* =
  (margin - contact cost) / buyers: what the period earned per buying
  customer after paying for every contact, to buyers and non-buyers alike.
* **share of wallet** (when ``[evaluation].wallet_attribute`` names a numeric
  custom attribute holding the customer's yearly spend on our categories):
  over customers with a known (> 0) wallet, their net revenue in the 365 days
  before the period's end / the sum of their wallets; how many customers that
  is, is reported beside it.
* **read rate**: emails read (an open or a click recorded on the outbox row)
  / emails mailed (``sent`` or ``delivered``) in the period.
* **satisfaction**: mean and count of the ``satisfaction`` scores given in the
  period, on the scale 1..``[responses].satisfaction_scale``.

By segment, a customer counts for every segment whose membership stay holds
the period's end instant (``segment_membership``), so each period shows the
segment as it was then (for the current period: its current members).
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from engine.clock import utcnow
from engine.errors import ConfigValueError, NotFoundError
from engine.evaluation import indicators_sql as sql
from engine.metrics import business_today
from engine.reporting import Period

if TYPE_CHECKING:
    import pandas as pd

    from engine.config import Config

CENT = Decimal("0.01")
ALL_CUSTOMERS = ""  # the segment key of the rows over all customers
COUNTS = ("buyers", "active_start", "active", "churned", "mailed", "read", "scores", "score_sum")
COUNTS_WALLET = ("wallet_customers",)
AMOUNTS = ("revenue", "margin", "contacts", "contact_cost", "wallet_total", "wallet_revenue")


def _ratio(numerator: Decimal | int, denominator: Decimal | int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal("0.0001"))


def _money(value: Decimal, count: int) -> Decimal | None:
    return (value / count).quantize(CENT) if count else None


@dataclass(frozen=True)
class ReportPeriod:
    """One period of the report: its label, days, and UTC bounds ``[start_at, end_at)``."""

    label: str
    start: dt.date
    end: dt.date  # last day, inclusive
    start_at: dt.datetime
    end_at: dt.datetime  # now, for the current period
    partial: bool  # the current period, measured up to now


@dataclass(frozen=True)
class IndicatorRow:
    """The recorded figures of one period (for one segment, or all customers) and the indicators."""

    period: ReportPeriod
    segment: str | None  # None: all customers
    buyers: int
    active_start: int
    active: int
    churned: int
    revenue: Decimal
    margin: Decimal
    contacts: Decimal
    contact_cost: Decimal
    mailed: int
    read: int
    scores: int
    score_sum: int
    wallet_customers: int
    wallet_total: Decimal
    wallet_revenue: Decimal

    @property
    def churn_rate(self) -> Decimal | None:
        """Churned / active at the period's start (None without customers active at the start)."""
        return _ratio(self.churned, self.active_start)

    @property
    def revenue_per_customer(self) -> Decimal | None:
        """Net revenue / buyers."""
        return _money(self.revenue, self.buyers)

    @property
    def profit(self) -> Decimal:
        """Margin - contact cost."""
        return self.margin - self.contact_cost

    @property
    def profit_per_customer(self) -> Decimal | None:
        """(Margin - contact cost) / buyers."""
        return _money(self.profit, self.buyers)

    @property
    def share_of_wallet(self) -> Decimal | None:
        """Yearly net revenue / yearly wallet, over customers with a known wallet."""
        return _ratio(self.wallet_revenue, self.wallet_total)

    @property
    def read_rate(self) -> Decimal | None:
        """Emails read / emails mailed."""
        return _ratio(self.read, self.mailed)

    @property
    def satisfaction(self) -> Decimal | None:
        """Mean score (two decimals)."""
        return _money(Decimal(self.score_sum), self.scores)

    def as_dict(self) -> dict[str, Any]:
        """Figures and indicators as JSON-ready values."""
        return {
            "period": self.period.label,
            "start": self.period.start.isoformat(),
            "end": self.period.end.isoformat(),
            "partial": self.period.partial,
            "segment": self.segment,
            "buyers": self.buyers,
            "active_start": self.active_start,
            "active": self.active,
            "churned": self.churned,
            "churn_rate": _text(self.churn_rate),
            "revenue": str(self.revenue),
            "revenue_per_customer": _text(self.revenue_per_customer),
            "margin": str(self.margin),
            "contacts": str(self.contacts),
            "contact_cost": str(self.contact_cost),
            "profit": str(self.profit),
            "profit_per_customer": _text(self.profit_per_customer),
            "wallet_customers": self.wallet_customers,
            "wallet_total": str(self.wallet_total),
            "wallet_revenue": str(self.wallet_revenue),
            "share_of_wallet": _text(self.share_of_wallet),
            "mailed": self.mailed,
            "read": self.read,
            "read_rate": _text(self.read_rate),
            "satisfaction_scores": self.scores,
            "satisfaction": _text(self.satisfaction),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ProgrammeIndicators:
    """The indicators of the last periods, over all customers or per segment."""

    periods: list[ReportPeriod]
    segments: list[str] | None  # None: over all customers
    rows: list[IndicatorRow]
    churn_days: int
    period_kind: str
    currency: str
    satisfaction_scale: int
    wallet_attribute: str | None
    generated_at: dt.datetime
    notes: list[str] = field(default_factory=list)

    def for_segment(self, segment: str | None) -> list[IndicatorRow]:
        """The rows of one segment (None: all customers), oldest period first."""
        return [row for row in self.rows if row.segment == segment]

    def as_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready values."""
        return {
            "period_kind": self.period_kind,
            "churn_days": self.churn_days,
            "currency": self.currency,
            "satisfaction_scale": self.satisfaction_scale,
            "wallet_attribute": self.wallet_attribute,
            "by": "segment" if self.segments is not None else None,
            "generated_at": self.generated_at.isoformat(),
            "rows": [row.as_dict() for row in self.rows],
            "notes": list(self.notes),
        }


def report_periods(config: Config, count: int, *, now: dt.datetime | None = None) -> list[ReportPeriod]:
    """The last ``count`` periods (``[evaluation].period``) up to the current one, oldest first."""
    if count < 1:
        raise ConfigValueError("--periods", "periods", f"at least one period, got {count}")
    now = now or utcnow()
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    current = Period.containing(business_today(config, now), config.settings.evaluation.period)
    chosen = [current]
    while len(chosen) < count:
        chosen.insert(0, chosen[0].previous())
    periods = []
    for period in chosen:
        start, end = period.bounds(zone)
        periods.append(
            ReportPeriod(period.label, period.start, period.end, start, min(end, now), partial=end > now)
        )
    return periods


def _wallet_kind(config: Config) -> str | None:
    """The type of the wallet attribute (int or number), None when none is configured."""
    name = config.settings.evaluation.wallet_attribute
    if name is None:
        return None
    kind = config.settings.customers.attributes.get(name)
    if kind not in ("int", "number"):
        declared = f"declared as {kind}" if kind else "not declared in [customers].attributes"
        raise ConfigValueError(
            str(config.path),
            "evaluation.wallet_attribute",
            f"{name!r} is {declared}: share of wallet needs an int or number attribute",
        )
    return kind


def _frame(rows: Iterable[Any], keys: Sequence[str]) -> pd.DataFrame:
    """Aggregated rows as a frame indexed by ``keys`` (an empty frame when no row)."""
    import pandas as pd  # only when indicators are computed: pandas takes a while to import

    frame = pd.DataFrame.from_records([dict(row) for row in rows])
    if frame.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=list(keys)))
    if "segment" not in frame:
        frame["segment"] = ALL_CUSTOMERS
    return frame.set_index(list(keys))


def _decimal(value: Any) -> Decimal:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Decimal(0)
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _count(value: Any) -> int:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0
    return int(value)


def programme_indicators(
    engine: Engine,
    config: Config,
    *,
    periods: int = 12,
    by_segment: bool = False,
    segments: Sequence[str] | None = None,
    now: dt.datetime | None = None,
) -> ProgrammeIndicators:
    """Churn, revenue and profit per customer, share of wallet, read rate and satisfaction per period.

    Over all customers, or with ``by_segment`` per configured segment (``segments``
    to choose some, in that order). Four aggregate queries, each grouped in the
    database by period (and segment); pandas aligns their small results on the grid
    of periods x segments, where a missing cell means nothing was recorded: 0.
    """
    now = now or utcnow()
    evaluation = config.settings.evaluation
    chosen = report_periods(config, periods, now=now)
    wanted: list[str] | None = None
    if by_segment or segments:
        wanted = list(segments) if segments else list(config.settings.segments)
        unknown = [name for name in wanted if name not in config.segments]
        if unknown:
            raise NotFoundError("segment", unknown[0], list(config.segments))
    kind = _wallet_kind(config)
    table = sql.periods_cte([sql.PeriodBounds(p.start_at, p.end_at) for p in chosen], evaluation.churn_days)
    keys = ("idx", "segment")
    with engine.connect() as connection:
        frames = [
            _frame(sql.purchase_figures(connection, table, wanted), keys),
            _frame(sql.contact_figures(connection, table, wanted), keys),
            _frame(sql.satisfaction_figures(connection, table, wanted), keys),
        ]
        if kind is not None:
            name = evaluation.wallet_attribute
            assert name is not None
            frames.append(_frame(sql.wallet_figures(connection, table, wanted, name, kind), keys))
    import pandas as pd

    grid = pd.MultiIndex.from_product(
        [range(len(chosen)), wanted if wanted is not None else [ALL_CUSTOMERS]], names=list(keys)
    )
    frame = pd.concat(frames, axis=1).reindex(grid)
    rows = []
    for (idx, segment), values in frame.iterrows():
        figures = values.to_dict()
        numbers: dict[str, Any] = {name: _count(figures.get(name)) for name in COUNTS + COUNTS_WALLET}
        numbers.update({name: _decimal(figures.get(name)).quantize(CENT) for name in AMOUNTS})
        segment_name = None if segment == ALL_CUSTOMERS else str(segment)
        rows.append(IndicatorRow(period=chosen[int(idx)], segment=segment_name, **numbers))
    if wanted is not None:
        order = {name: n for n, name in enumerate(wanted)}
        rows.sort(key=lambda row: (order[row.segment or ""], row.period.start))
    notes = []
    if evaluation.wallet_attribute is None:
        notes.append("share of wallet: no [evaluation].wallet_attribute configured")
    if chosen[-1].partial:
        notes.append(f"{chosen[-1].label} is the current period, measured up to now")
    return ProgrammeIndicators(
        periods=chosen,
        segments=wanted,
        rows=rows,
        churn_days=evaluation.churn_days,
        period_kind=evaluation.period,
        currency=config.settings.engine.currency,
        satisfaction_scale=config.settings.responses.satisfaction_scale,
        wallet_attribute=evaluation.wallet_attribute,
        generated_at=now,
        notes=notes,
    )
