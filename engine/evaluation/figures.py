"""What a campaign report holds: the figures of each variant, their comparison with control, the winner.

Every count is a count of recorded outbox rows, responses or conversions;
every amount a sum over them (see :mod:`engine.evaluation.campaign_report`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class Comparison:
    """Treated against control (or one variant against another) on one metric.

    ``difference`` = treated - control (absolute uplift) with its confidence
    interval; ``relative`` = difference / control with its interval (None when
    control is 0); ``p_value`` of the two-sided test of no difference.
    """

    metric: str
    treated: float
    control: float
    difference: float
    low: float
    high: float
    relative: float | None
    relative_low: float | None
    relative_high: float | None
    p_value: float
    confidence: float
    significant: bool


@dataclass(frozen=True)
class GroupFigures:
    """The recorded figures of one group (a variant, all variants together, or the control group)."""

    name: str
    audience: int  # customers of the run(s) in this group (treated: every row of step 0 but control)
    sent: int
    delivered: int
    failed: int
    opened: int
    clicked: int
    responded: int
    converted: int  # customers with at least one attributed purchase
    purchases: int
    revenue: Decimal
    margin: Decimal
    actual_cost: Decimal
    revenue_sum_squares: Decimal = Decimal(0)  # over customers: for the revenue test
    responders: int = 0  # customers with at least one engaged response (of ENGAGED_KINDS)
    retained: int = 0  # customers with any purchase inside their goal window, attributed or not

    @property
    def response_rate(self) -> float | None:
        """Responded contacts per contact made."""
        return self.responded / self.sent if self.sent else None

    @property
    def revenue_per_customer(self) -> Decimal | None:
        """Attributed revenue per customer of the audience."""
        return (self.revenue / self.audience).quantize(Decimal("0.01")) if self.audience else None

    @property
    def conversion_rate(self) -> float | None:
        return self.converted / self.audience if self.audience else None

    @property
    def cost_per_response(self) -> Decimal | None:
        return (self.actual_cost / self.responded).quantize(Decimal("0.01")) if self.responded else None

    @property
    def roi(self) -> Decimal | None:
        """(margin - cost) / cost; None without a cost."""
        if not self.actual_cost:
            return None
        return ((self.margin - self.actual_cost) / self.actual_cost).quantize(Decimal("0.0001"))


@dataclass(frozen=True)
class Winner:
    """The A/B/n verdict: the best variant on the goal metric, and whether it is significantly best."""

    variant: str | None
    metric: str
    significant: bool
    p_value: float | None
    reason: str


@dataclass(frozen=True)
class CampaignResult:
    """One campaign's report: its variants, all of them together, control, uplift and money."""

    campaign: str  # key (file name)
    name: str
    goal_metric: str
    window_days: int
    runs: int
    control: GroupFigures
    treated: GroupFigures  # all variants together
    variants: list[GroupFigures] = field(default_factory=list)
    uplift: list[Comparison] = field(default_factory=list)  # treated vs control: conversion, revenue...
    incremental_revenue: Decimal | None = None
    incremental_margin: Decimal | None = None
    incremental_roi: Decimal | None = None
    winner: Winner | None = None
    channels: tuple[str, ...] = ()  # the channels of its steps (empty: not known, every row shown)
    as_of: dt.datetime | None = None  # the time the report is as of
    window_closes_at: dt.datetime | None = None  # the latest run's goal window ends then

    @property
    def window_open(self) -> bool:
        """Whether the goal window of the latest run is still open at :attr:`as_of`: no verdict yet."""
        return (
            self.as_of is not None
            and self.window_closes_at is not None
            and self.as_of < self.window_closes_at
        )

    @property
    def observed_days(self) -> int:
        """Whole days of the latest run's goal window observed by :attr:`as_of` (0 .. ``window_days``)."""
        if self.as_of is None or self.window_closes_at is None:
            return self.window_days
        started = self.window_closes_at - dt.timedelta(days=self.window_days)
        return max(0, min(self.window_days, (self.as_of - started).days))

    def shows(self, figure: str) -> bool:
        """Whether ``figure`` means something for the campaign's channels: opens for email, clicks for
        email and SMS links; a call or a letter is neither opened nor clicked."""
        if not self.channels:
            return True
        if figure == "opened":
            return "email" in self.channels
        if figure == "clicked":
            return bool({"email", "sms"} & set(self.channels))
        return True

    def window_note(self) -> str | None:
        """``window open until DATE: N of M days observed`` while it is open, else None."""
        if not self.window_open or self.window_closes_at is None:
            return None
        return (
            f"window open until {self.window_closes_at:%Y-%m-%d}: {self.observed_days} of "
            f"{self.window_days} days observed; no verdict before it closes"
        )
