"""``[loyalty.programmes.NAME]`` of config.toml: what a points, discount, coalition or status programme is.

One model covers the four kinds of programme the literature names:

* **bonus** (points or cashback): ``earn`` rules give points, ``point_value``
  says what a point is worth, ``rewards`` and discounts burn them;
* **discount**: ``tiers`` with ``discount_percent`` and no earn rules (the
  customer's level is computed from qualifying spend);
* **coalition**: ``partners`` issue points at their ``earn_rate`` and pay
  ``price_per_point`` for them; points burnt at a partner are paid back at
  its ``burn_rate``;
* **privilege** (status, club): ``tiers`` qualifying on spend or points
  earned in a window, with benefits and a downgrade policy.

The rules inside (``earn[].when``, ``earn[].points``) are compiled and
type-checked by :mod:`engine.loyalty.programme` when the config is loaded.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.settings.durations import parse_duration, parse_lag
from engine.settings.limits import (
    MAX_POINTS,
    Days,
    Factor,
    Money,
    Points,
    PointsTotal,
    Priority,
    Total,
    check_points,
)
from engine.settings.zones import time_zone

ExpiryKind = Literal["never", "rolling", "end_of_month", "end_of_quarter", "end_of_year", "inactivity"]
CALENDAR_EXPIRY = ("end_of_month", "end_of_quarter", "end_of_year")
TIER_WINDOWS = ("calendar_month", "calendar_quarter", "calendar_year")
#: events the engine itself knows; any other name is a custom event reported by a shop or the API
BUILT_IN_EVENTS = ("purchase", "birthday", "signup", "referral")
_SHORT_TIER_MIN = re.compile(r"^min_(spend|points)_(\d+d)$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EarnRule(_Strict):
    """One entry of ``earn``: points for a purchase or an event when ``when`` holds.

    Exactly one of ``points`` (an expression such as ``"amount * 0.05"`` or a
    fixed number) and ``multiplier`` (multiplies the points of the rules that
    apply with it). Rules run by ``priority``, highest first (ties: file
    order); a rule with ``stack = false`` that applies stops every rule after it.
    """

    name: str | None = Field(None, description="shown in statements; default earn[N]")
    on: str = Field("purchase", description="purchase, birthday, signup, referral or a custom event")
    when: str = "true"
    points: str | int | None = None
    multiplier: Annotated[Factor, Field(gt=0)] | None = None
    priority: Priority = 0
    stack: bool = True

    @model_validator(mode="after")
    def _one_effect(self) -> EarnRule:
        if (self.points is None) == (self.multiplier is None):
            raise ValueError("give exactly one of points (an expression or a number) and multiplier")
        if isinstance(self.points, int) and self.points < 0:
            raise ValueError(f"points must not be negative, got {self.points}")
        if isinstance(self.points, int):
            check_points(self.points, minimum=0, maximum=MAX_POINTS)
        return self

    @field_validator("points", mode="before")
    @classmethod
    def _not_a_yes_no(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("points is an expression or a number, not a yes/no value")
        return value

    @field_validator("on")
    @classmethod
    def _event_name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_.-]{0,99}", value):
            raise ValueError(
                f"event name {value!r} must be lower-case letters, digits, _ . - (e.g. birthday)"
            )
        return value


class EarnLimits(_Strict):
    """``limits``: the most points one transaction, one day (programme zone) or one customer may earn."""

    per_transaction: Annotated[Points, Field(gt=0)] | None = None
    per_day: Annotated[Points, Field(gt=0)] | None = None
    per_customer: Annotated[PointsTotal, Field(gt=0)] | None = Field(
        None, description="over the customer's whole membership"
    )


class Tier(_Strict):
    """One level of ``tiers``: reached at ``min_spend`` or ``min_points`` of qualifying activity."""

    name: str
    min_spend: Total | None = None
    min_points: PointsTotal | None = None
    multiplier: Annotated[Factor, Field(gt=0)] = Field(
        Decimal(1), description="multiplies points earned on purchases"
    )
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100)
    window: str | None = Field(None, description="set by the short form min_spend_365d")

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, data: Any) -> Any:
        """``min_spend_365d = 50000`` is ``min_spend = 50000`` over a rolling 365-day window."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in list(data):
            found = _SHORT_TIER_MIN.match(key)
            if found:
                data[f"min_{found.group(1)}"] = data.pop(key)
                data["window"] = found.group(2)
        return data

    @model_validator(mode="after")
    def _one_threshold(self) -> Tier:
        if (self.min_spend is None) == (self.min_points is None):
            raise ValueError(f"tier {self.name!r} needs exactly one of min_spend and min_points")
        return self

    @property
    def threshold(self) -> Decimal:
        """The qualifying value that reaches this tier."""
        return Decimal(self.min_points) if self.min_points is not None else Decimal(self.min_spend or 0)


class Partner(_Strict):
    """``partners.NAME``: a coalition partner; purchases whose ``source`` is NAME earn at its rate."""

    earn_rate: Factor = Field(description="points per unit of money spent at the partner")
    burn_rate: Money = Field(description="money the programme pays the partner per point burnt there")
    price_per_point: Money = Field(description="money the partner pays per point it issued")


class ProgrammeSection(_Strict):
    """``[loyalty.programmes.NAME]``: one loyalty programme."""

    description: str | None = None
    point_value: Money = Field(Decimal(1), description="money per point, for the liability")
    pending_days: Days = Field(0, description="return window: points become available after it")
    expiry: str = Field("never", description="365d (rolling), end_of_month|quarter|year, inactivity, never")
    expiry_after: str = Field(
        "0d", description="calendar expiry: lag (30d, 1mo, 1y); inactivity: how long idle"
    )
    expiry_notice_days: list[Days] = Field(
        default_factory=lambda: [30], description="'points expiring' events"
    )
    timezone: str | None = Field(None, description="default: [engine] timezone")
    batch_at: dt.time = Field(dt.time(3, 0), description="daily batch jobs, programme time")
    earn: list[EarnRule] = Field(default_factory=list)
    limits: EarnLimits = Field(default_factory=EarnLimits)
    tiers: list[Tier] = Field(default_factory=list)
    tier_qualify: Literal["spend", "points"] | None = Field(None, description="default: from the tiers")
    tier_window: str = Field("365d", description="rolling 365d, or calendar_month|quarter|year")
    downgrade: Literal["recompute", "one_level", "grace"] = "recompute"
    grace_days: Days = 90
    partners: dict[str, Partner] = Field(default_factory=dict)
    rewards: dict[str, Points] = Field(default_factory=dict, description="reward name -> points")
    transferable: bool = False
    spent_refund: Literal["clawback", "debt"] = Field(
        "clawback", description="points of a refund already spent: other lots first, or straight to debt"
    )
    hold_timeout: str = Field("15m", description="an uncaptured hold is voided after this")

    @field_validator("expiry")
    @classmethod
    def _expiry(cls, value: str) -> str:
        if value in ("never", "inactivity", *CALENDAR_EXPIRY):
            return value
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ValueError(
                f"expiry {value!r} is not one of: a duration such as 365d, end_of_month, end_of_quarter,"
                " end_of_year, inactivity, never"
            ) from exc
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            time_zone(value)
        return value

    @field_validator("hold_timeout")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("expiry_after")
    @classmethod
    def _lag_or_duration(cls, value: str) -> str:
        try:
            parse_duration(value)
        except ValueError:
            parse_lag(value)  # months and years: a calendar expiry's lag (checked against expiry below)
        return value

    @field_validator("tier_window")
    @classmethod
    def _tier_window(cls, value: str) -> str:
        if value in TIER_WINDOWS:
            return value
        try:
            parse_duration(value)
        except ValueError as exc:
            raise ValueError(
                f"tier_window {value!r}: a duration such as 365d, or one of {TIER_WINDOWS}"
            ) from exc
        return value

    @field_validator("expiry_notice_days")
    @classmethod
    def _notice(cls, value: list[int]) -> list[int]:
        if any(day <= 0 for day in value):
            raise ValueError("expiry_notice_days are days before expiry: positive numbers")
        return sorted(set(value), reverse=True)

    @field_validator("rewards")
    @classmethod
    def _rewards(cls, value: dict[str, int]) -> dict[str, int]:
        for name, points in value.items():
            if points <= 0:
                raise ValueError(f"reward {name!r} must cost a positive number of points")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> ProgrammeSection:
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError(f"tier names must be unique, got {names}")
        kinds = {"points" if tier.min_points is not None else "spend" for tier in self.tiers}
        if len(kinds) > 1:
            raise ValueError("tiers qualify on one thing: all min_spend or all min_points")
        if self.tier_qualify is not None and kinds and kinds != {self.tier_qualify}:
            raise ValueError(f"tier_qualify = {self.tier_qualify!r} but the tiers give min_{kinds.pop()}")
        windows = {tier.window for tier in self.tiers if tier.window is not None}
        if len(windows) > 1:
            raise ValueError(f"tiers must share one window, got {sorted(windows)}")
        thresholds = [tier.threshold for tier in self.tiers]
        if thresholds != sorted(thresholds) or len(set(thresholds)) != len(thresholds):
            raise ValueError("tiers go from the lowest threshold to the highest, each higher than the last")
        if self.expiry == "inactivity":
            try:
                idle = parse_duration(self.expiry_after)
            except ValueError as exc:
                reason = "the idle time of 'inactivity' is a duration, e.g. '180d'"
                raise ValueError(f"expiry_after {self.expiry_after!r}: {reason}") from exc
            if idle <= dt.timedelta(0):
                raise ValueError("expiry = 'inactivity' needs expiry_after, e.g. '180d'")
        if self.expiry in CALENDAR_EXPIRY:
            try:
                parse_lag(self.expiry_after)
            except ValueError as exc:
                reason = (
                    f"the lag of {self.expiry} is whole days, weeks, months or years (e.g. 30d, 2w, 1mo, 1y);"
                    " minutes and hours are not a calendar lag ('12m' is 12 minutes)"
                )
                raise ValueError(f"expiry_after {self.expiry_after!r}: {reason}") from exc
        return self

    @property
    def qualify(self) -> Literal["spend", "points"]:
        """What tiers qualify on."""
        if self.tier_qualify is not None:
            return self.tier_qualify
        return "points" if any(tier.min_points is not None for tier in self.tiers) else "spend"

    @property
    def qualify_window(self) -> str:
        """The window of qualifying activity (a tier's short form wins)."""
        return next((tier.window for tier in self.tiers if tier.window is not None), self.tier_window)

    @property
    def expiry_kind(self) -> ExpiryKind:
        """How lots expire."""
        if self.expiry in ("never", "inactivity", *CALENDAR_EXPIRY):
            return self.expiry  # type: ignore[return-value]
        return "rolling"


class LoyaltySection(_Strict):
    """``[loyalty]``: the programmes, by name."""

    programmes: dict[str, ProgrammeSection] = Field(default_factory=dict)

    @field_validator("programmes")
    @classmethod
    def _names(cls, value: dict[str, ProgrammeSection]) -> dict[str, ProgrammeSection]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_-]{0,49}", name):
                raise ValueError(f"programme name {name!r}: lower-case letters, digits, _ and - (e.g. bonus)")
        return value
