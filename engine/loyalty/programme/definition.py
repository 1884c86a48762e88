"""A loyalty programme as the ledger uses it: settings, compiled earn rules, its zone and its dates.

:func:`compile_programmes` is called by :func:`engine.config.check_settings`,
so a bad earn rule is reported with file and line when the config is loaded,
never halfway through a batch. The core takes :class:`Programme` instances;
only :func:`programme_named` turns a name into one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from engine.errors import ConfigError, NotFoundError
from engine.loyalty.programme.dates import shift_days, shifted
from engine.loyalty.programme.earn_rules import EarnRules, compile_earn_rules
from engine.rules import CustomerFields
from engine.settings import Lag, Partner, ProgrammeSection, Settings, Tier, parse_duration, parse_lag

UTC = dt.UTC


@dataclass(frozen=True)
class Programme:
    """One programme of ``[loyalty.programmes]`` with its rules compiled."""

    name: str
    settings: ProgrammeSection
    zone: ZoneInfo
    earn: EarnRules
    config_version: str
    currency: str

    @property
    def point_value(self) -> Decimal:
        """Money per point."""
        return self.settings.point_value

    @property
    def tiers(self) -> list[Tier]:
        """Tiers, lowest first."""
        return list(self.settings.tiers)

    def tier(self, name: str) -> Tier:
        """The tier called ``name``; an unknown name lists the known ones."""
        for tier in self.settings.tiers:
            if tier.name == name:
                return tier
        raise NotFoundError(f"tier of programme {self.name!r}", name, [t.name for t in self.settings.tiers])

    def tier_multiplier(self, name: str | None) -> Decimal:
        """The earn multiplier of tier ``name`` (1 without a tier)."""
        return self.tier(name).multiplier if name else Decimal(1)

    def partner(self, name: str | None) -> Partner | None:
        """The partner ``name`` (a purchase's source), or None when it is not one."""
        return self.settings.partners.get(name) if name else None

    def reward(self, name: str) -> int:
        """The points reward ``name`` costs."""
        if name not in self.settings.rewards:
            raise NotFoundError(f"reward of programme {self.name!r}", name, list(self.settings.rewards))
        return self.settings.rewards[name]

    def local_day(self, instant: dt.datetime) -> dt.date:
        """The programme's calendar day of ``instant``."""
        return instant.astimezone(self.zone).date()

    def day_start(self, day: dt.date) -> dt.datetime:
        """Midnight starting ``day`` in the programme's zone, as UTC (a DST gap moves it later)."""
        return dt.datetime.combine(day, dt.time(0), tzinfo=self.zone).astimezone(UTC)

    def available_at(self, earned_at: dt.datetime) -> dt.datetime:
        """When points earned at ``earned_at`` leave the return window: the same local time
        ``pending_days`` calendar days later (:mod:`engine.loyalty.programme.dates`)."""
        if not self.settings.pending_days:
            return earned_at.astimezone(UTC)
        return shift_days(earned_at, self.settings.pending_days, self.zone)

    @property
    def expiry_lag(self) -> Lag:
        """The lag of a calendar expiry (``expiry_after``)."""
        return parse_lag(self.settings.expiry_after)

    def expires_at(self, earned_at: dt.datetime) -> dt.datetime | None:
        """When a lot earned at ``earned_at`` expires; None for ``never`` and ``inactivity``.

        Rolling: ``earned_at`` moved by the duration (calendar days for ``d``
        and ``w``). Calendar: the end of the month, quarter or year (programme
        zone) that contains the local earn date plus ``expiry_after``
        (:mod:`engine.loyalty.programme.dates`).
        """
        kind = self.settings.expiry_kind
        if kind in ("never", "inactivity"):
            return None
        if kind == "rolling":
            return shifted(earned_at, self.settings.expiry, self.zone)
        day = self.expiry_lag.after(self.local_day(earned_at))
        return self.day_start(period_end(day, kind))

    @property
    def inactivity(self) -> dt.timedelta | None:
        """For ``expiry = 'inactivity'``: how long an idle account keeps its points."""
        if self.settings.expiry_kind != "inactivity":
            return None
        return parse_duration(self.settings.expiry_after)

    @property
    def hold_timeout(self) -> dt.timedelta:
        """How long a hold waits for capture before it is voided."""
        return parse_duration(self.settings.hold_timeout)


def period_end(day: dt.date, kind: str) -> dt.date:
    """The first day after the month, quarter or year that contains ``day``."""
    if kind == "end_of_year":
        return dt.date(day.year + 1, 1, 1)
    months = 3 if kind == "end_of_quarter" else 1
    first_month = (day.month - 1) // months * months + 1
    month = first_month + months
    return dt.date(day.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def compile_programmes(
    settings: Settings, fields: CustomerFields, version: str, errors: list[ConfigError]
) -> dict[str, Programme]:
    """Every programme of ``settings`` with its earn rules compiled; problems go to ``errors``."""
    programmes = {}
    for name, section in settings.loyalty.programmes.items():
        earn = compile_earn_rules(settings, name, section, fields, errors)
        zone = ZoneInfo(section.timezone or settings.engine.timezone)
        programmes[name] = Programme(name, section, zone, earn, version, settings.engine.currency)
    return programmes


def programme_named(programmes: Mapping[str, Programme], name: str | None) -> Programme:
    """The programme ``name``; with None, the only one there is."""
    if name is None:
        if len(programmes) == 1:
            return next(iter(programmes.values()))
        if not programmes:
            raise NotFoundError("loyalty programme", "(none)", [])
        raise NotFoundError("loyalty programme", "(not given: say which with --programme)", list(programmes))
    if name not in programmes:
        raise NotFoundError("loyalty programme", name, list(programmes))
    return programmes[name]
