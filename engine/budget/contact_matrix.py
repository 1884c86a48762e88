"""The contact matrix of a period: every campaign's planned contacts and what they cost.

For a period P and each campaign c active in it (docs/budget.md has the full text):

* ``runs(c, P)``: the firings of c's schedule inside P, by the scheduler's own
  triggers (a one-off campaign: 1 when its time is in P);
* per step k: ``clients = members - control - unreachable``: the current
  members of c's segment, minus the control group, minus those that cannot be
  contacted on k's channel (no consent, no address or phone, suppressed);
  the control group is ``floor(share x reachable + 1/2)`` of the members
  reachable on the first step's channel, the rule the runner applies;
* ``cost = unit_cost x clients x contacts_per_client x runs + preparation``,
  one line per step and per price in force (a price change mid-period splits
  the runs at the day it takes effect); preparation is counted once, in the
  period of the campaign's first firing;
* triggered campaigns (segment entry, anniversary, event) have no schedule to
  count: they are planned from ``expected_audience`` (members per month) when
  the file gives one, else from the audience they had in the previous period,
  scaled to the length of this one; each line says which.

The members of every segment involved are counted by one ``GROUP BY``
(:mod:`engine.budget.audience_counts`), never one query per campaign.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Connection, Engine, select

from engine.budget.actual import actual_lines
from engine.budget.audience_counts import Reach, observed_reach, segment_reach
from engine.budget.budget_files import Budgets, load_budgets
from engine.budget.report import BudgetReport, PlanLine
from engine.campaigns import Campaign, CampaignFile, control_size, firings, load_campaigns
from engine.channels import UnitCosts
from engine.clock import local_instant, utcnow
from engine.config import Config
from engine.models import SEGMENT
from engine.reporting import Period

TRIGGERED = ("on_segment_entry", "on_event", "anniversary")


def half_up(value: Decimal) -> int:
    """``value`` rounded to a whole number, halves up (how scaled audiences are rounded)."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def split(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights``, each part rounded so that the parts add up to it."""
    whole = sum(weights)
    if whole == 0:
        return [0 for _ in weights]
    parts, before, cumulative = [], 0, 0
    for weight in weights:
        cumulative += weight
        upto = half_up(Decimal(total) * cumulative / whole)
        parts.append(upto - before)
        before = upto
    return parts


def active_days(campaign: Campaign, period: Period) -> Period | None:
    """The days of ``period`` on which ``campaign`` is active, None when it is not active at all."""
    start = max(campaign.start, period.start)
    end = min(campaign.end, period.end) if campaign.end else period.end
    return Period(f"{start}..{end}", start, end) if start <= end else None


@dataclass(frozen=True)
class _Audience:
    """The audience a campaign is planned on: by reach, scaled, with the basis stated."""

    reach: Reach
    scale: Decimal
    basis: str
    runs: list[dt.date]  # business days of the runs (one per period for triggered campaigns)

    def count(self, value: int) -> int:
        return value if self.scale == 1 else half_up(Decimal(value) * self.scale)


def _first_firing(campaign: Campaign, zone: zoneinfo.ZoneInfo, until: dt.datetime) -> dt.date | None:
    if campaign.trigger in TRIGGERED:
        return campaign.start
    first = local_instant(campaign.start, dt.time(0), zone)
    times = firings(campaign, zone, first, until, limit=1)
    return times[0].astimezone(zone).date() if times else None


def _lines(
    key: str,
    campaign: Campaign,
    audience: _Audience,
    prices: UnitCosts,
    period: Period,
    prepared_here: bool,
) -> list[PlanLine]:
    lines: list[PlanLine] = []
    reach = audience.reach
    first_channel = campaign.steps[0].channel
    control_first = control_size(campaign.control_group, audience.count(reach.reachable(first_channel)))
    triggered = campaign.trigger in TRIGGERED
    for k, step in enumerate(campaign.steps):
        members = audience.count(reach.members)
        unreachable = members - audience.count(reach.reachable(step.channel))
        if step.channel == first_channel:
            control = control_first
        else:
            both = audience.count(reach.reachable(first_channel, step.channel))
            control = control_size(campaign.control_group, both)
        spans = prices.spans(step.channel, period.start, period.end, campaign=key, segment=campaign.segment)
        if triggered:
            # one "run" per period: the audience is shared between prices by the days each holds
            days = active_days(campaign, period)
            assert days is not None
            weights = [sum(span.start <= d <= span.end for d in _days(days)) for span in spans]
            parts = (split(members, weights), split(control, weights), split(unreachable, weights))
            shares = list(zip(*parts, strict=True))
            runs = [1 if w else 0 for w in weights]
        else:
            runs = [sum(span.start <= d <= span.end for d in audience.runs) for span in spans]
            shares = [(members, control, unreachable)] * len(spans)
        for span, n, (m, c, u) in zip(spans, runs, shares, strict=True):
            if n == 0:
                continue
            preparation = campaign.preparation_cost if prepared_here and not lines else Decimal(0)
            lines.append(
                PlanLine(
                    campaign=key,
                    name=campaign.name,
                    strategy=campaign.strategy,
                    segment=campaign.segment,
                    step=k,
                    channel=step.channel,
                    runs=n,
                    members=m,
                    control=c,
                    unreachable=u,
                    contacts_per_client=step.contacts_per_client,
                    unit_cost=span.unit_cost,
                    preparation=preparation,
                    basis=audience.basis,
                    price_source=span.source,
                    price_from=span.start,
                    price_until=span.end,
                )
            )
    return lines


def _days(period: Period) -> list[dt.date]:
    return [period.start + dt.timedelta(days=n) for n in range(period.days)]


def plan_lines(
    connection: Connection,
    config: Config,
    campaigns: dict[str, CampaignFile],
    period: Period,
) -> tuple[list[PlanLine], list[str]]:
    """The plan lines of ``period`` and notes on how they were found."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    anniversary_at = config.settings.scheduler.anniversary_at
    start, end = period.bounds(zone)
    active = {
        key: (c.campaign, days)
        for key, c in sorted(campaigns.items())
        if (days := active_days(c.campaign, period)) is not None
    }
    channels = {step.channel for campaign, _ in active.values() for step in campaign.steps}
    scheduled = [key for key, (c, _) in active.items() if c.trigger not in TRIGGERED]
    triggered = [key for key, (c, _) in active.items() if c.trigger in TRIGGERED]
    reach = segment_reach(connection, {active[key][0].segment for key in scheduled}, channels)
    previous = period.previous()
    observed, observed_runs = observed_reach(
        connection,
        [key for key in triggered if active[key][0].expected_audience is None],
        channels,
        *previous.bounds(zone),
    )
    prices = UnitCosts(config.settings.channels)
    lines: list[PlanLine] = []
    notes: list[str] = []
    for key, (campaign, days) in active.items():
        if campaign.trigger in TRIGGERED:
            audience = _triggered_audience(key, campaign, days, previous, observed, observed_runs)
            if audience is None:
                notes.append(
                    f"{key}: triggered ({campaign.trigger}) with no runs in {previous.label} and no "
                    "expected_audience: planned at 0; set expected_audience in its file"
                )
                continue
        else:
            times = firings(campaign, zone, start, end, anniversary_at=anniversary_at)
            if not times:
                notes.append(f"{key}: active in {period.label} but its schedule does not fire in it")
                continue
            what = campaign.schedule or (campaign.at.isoformat() if campaign.at else "")
            audience = _Audience(
                reach[campaign.segment],
                Decimal(1),
                f"schedule {what}: {len(times)} runs; segment {campaign.segment} now",
                [t.astimezone(zone).date() for t in times],
            )
        first = _first_firing(campaign, zone, end)
        prepared_here = first is not None and period.contains(first)
        lines += _lines(key, campaign, audience, prices, period, prepared_here)
        if first is not None and first < period.start and campaign.preparation_cost:
            notes.append(f"{key}: preparation {campaign.preparation_cost} counted in the period of {first}")
    return lines, notes


def _triggered_audience(
    key: str,
    campaign: Campaign,
    days: Period,
    previous: Period,
    observed: dict[str, Reach],
    observed_runs: dict[str, int],
) -> _Audience | None:
    if campaign.expected_audience is not None:
        members = half_up(Decimal(campaign.expected_audience) * days.months())
        reach = Reach()
        reach.patterns[frozenset(s.channel for s in campaign.steps)] = members
        basis = f"expected_audience {campaign.expected_audience}/month x {days.months():.2f} months"
        return _Audience(reach, Decimal(1), basis, [days.start])
    if key not in observed:
        return None
    scale = days.months() / previous.months()
    seen = observed[key]
    basis = (
        f"observed {previous.label}: {seen.members} in {observed_runs.get(key, 0)} runs"
        f" x {scale:.2f} (months of {days.start}..{days.end} / {previous.label})"
    )
    return _Audience(seen, scale, basis, [days.start])


def config_fingerprint(config: Config, campaigns: dict[str, CampaignFile]) -> str:
    """A short hash of config.toml and every campaign file: what the plan was computed from.

    Budget files are not part of it: a budget file records the fingerprint of the
    configuration it approved, and reports say whether it still matches.
    """
    digest = hashlib.sha256(config.settings.text.encode())
    for key, campaign in sorted(campaigns.items()):
        digest.update(f"\0campaign {key}\0".encode())
        digest.update(campaign.path.read_bytes())
    return digest.hexdigest()[:12]


def _refreshed(connection: Connection, segments: set[str]) -> list[str]:
    if not segments:
        return []
    rows = connection.execute(
        select(SEGMENT.c.name, SEGMENT.c.refreshed_at).where(SEGMENT.c.name.in_(sorted(segments)))
    ).all()
    found = {name: at for name, at in rows}
    return [
        f"segment {name}: members as refreshed {found[name].isoformat(timespec='minutes')}"
        if found.get(name)
        else f"segment {name}: never refreshed (run crm refresh): planned with 0 members"
        for name in sorted(segments)
    ]


def budget_report(
    engine: Engine,
    config: Config,
    *,
    period: Period,
    campaigns: dict[str, CampaignFile] | None = None,
    budgets: Budgets | None = None,
    overrides: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> BudgetReport:
    """The plan, approved and actual of ``period``; nothing is written."""
    campaigns = campaigns if campaigns is not None else load_campaigns(config)
    budgets = budgets if budgets is not None else load_budgets(config, campaigns)
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    with engine.connect() as connection:
        lines, notes = plan_lines(connection, config, campaigns, period)
        actual = actual_lines(connection, period, zone)
        notes = _refreshed(connection, {line.segment for line in lines}) + notes
    approved = budgets.for_period(period)
    if approved is not None and approved.period != period:
        notes.append(
            f"{period.label} lies inside the budget of {approved.period.label} ({approved.path.name}): "
            "its approved amounts are for that whole period and are not compared here"
        )
        approved = None
    fingerprint = config_fingerprint(config, campaigns)
    if overrides:
        digest = hashlib.sha256(fingerprint.encode())
        for text in overrides:
            digest.update(b"\0" + text.encode())
        fingerprint = digest.hexdigest()[:12]
    return BudgetReport(
        period=period,
        currency=config.settings.engine.currency,
        generated_at=(now or utcnow()).astimezone(dt.UTC),
        fingerprint=fingerprint,
        lines=lines,
        actual=actual,
        approved=approved,
        notes=notes,
        overrides=list(overrides),
    )
