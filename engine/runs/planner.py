"""``crm plan``: exactly what ``crm run`` would do, without doing it.

The plan runs the real runner, every firing in the window in time and
priority order, inside one transaction that is rolled back: the audience,
the reason each excluded customer is excluded and the cost come from the
same SQL that will run, not from an estimate beside it. Later steps are
projected as if every queued contact of the step before had been sent (no
responses yet), so caps between the plan's own runs count as they will.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, func, select, update

from engine.budget import load_budgets
from engine.campaigns import CampaignFile, firings, load_campaigns
from engine.clock import utcnow
from engine.config import Config
from engine.errors import NotFoundError
from engine.models import OUTBOX, RUN
from engine.models import outbox as states
from engine.runs.materialise import StepRun, materialise_step
from engine.runs.runner import StepCounts, due_for_step, run_summary, start_run_in


@dataclass(frozen=True)
class PlannedRun:
    """One firing of one campaign as it would run."""

    campaign: str
    name: str
    strategy: str
    segment: str
    priority: int
    scheduled_for: dt.datetime
    state: str
    detail: str | None
    steps: list[StepCounts]
    preparation_cost: Decimal
    already_ran: bool = False

    @property
    def cost(self) -> Decimal:
        """Contacts x unit cost of every step, plus preparation when the campaign has not run before."""
        return sum((s.cost for s in self.steps), Decimal(0)) + self.preparation_cost

    def as_dict(self) -> dict[str, Any]:
        """The run as plain JSON-ready values."""
        return {
            "campaign": self.campaign,
            "name": self.name,
            "strategy": self.strategy,
            "segment": self.segment,
            "priority": self.priority,
            "scheduled_for": self.scheduled_for.isoformat(),
            "state": self.state,
            "detail": self.detail,
            "already_ran": self.already_ran,
            "preparation_cost": str(self.preparation_cost),
            "cost": str(self.cost),
            "steps": [
                {
                    "step": s.step,
                    "channel": s.channel,
                    "audience": s.audience,
                    "contacts": s.contacted,
                    "states": dict(sorted(s.states.items())),
                    "queued_for_later": s.later,
                    "cost": str(s.cost),
                }
                for s in self.steps
            ],
        }


@dataclass(frozen=True)
class Plan:
    """Every firing between ``start`` and ``end`` and what it would do."""

    start: dt.datetime
    end: dt.datetime
    runs: list[PlannedRun] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        """What the window's runs would cost."""
        return sum((r.cost for r in self.runs if not r.already_ran), Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-ready values."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cost": str(self.cost),
            "runs": [r.as_dict() for r in self.runs],
        }


def _has_run(connection: Connection, key: str) -> bool:
    found = connection.execute(
        select(func.count()).where(
            RUN.c.campaign == key, RUN.c.state.in_((states.RUN_QUEUED, states.RUN_DONE))
        )
    ).scalar_one()
    return bool(found)


def _project_later_steps(
    connection: Connection, config: Config, campaign: CampaignFile, run_id: int, fired: dt.datetime
) -> list[StepCounts]:
    """Later steps as if each queued contact of the step before were sent when scheduled."""
    definition = campaign.campaign
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    projected: list[StepCounts] = []
    base = fired
    for k in range(1, len(definition.steps)):
        previous = (OUTBOX.c.run_id == run_id) & (OUTBOX.c.step == k - 1) & (OUTBOX.c.state == states.QUEUED)
        connection.execute(
            update(OUTBOX).where(previous).values(state=states.SENT, sent_at=OUTBOX.c.scheduled_at)
        )
        wait = definition.steps[k].wait_delta
        latest = connection.execute(
            select(func.max(OUTBOX.c.sent_at)).where(OUTBOX.c.run_id == run_id, OUTBOX.c.step == k - 1)
        ).scalar()
        base = max(base + wait, fired)
        source = due_for_step(run_id, k, wait, base + dt.timedelta(days=3650))
        step_run = StepRun(run_id, campaign.key, definition, k, base, base.astimezone(zone).date())
        if latest is not None:
            materialise_step(connection, config, step_run, source, now=base)
        summary = run_summary(connection, run_id)
        projected += [s for s in summary.steps if s.step == k]
    return projected


def plan_in(
    connection: Connection,
    config: Config,
    campaigns: dict[str, CampaignFile],
    start: dt.datetime,
    end: dt.datetime,
) -> Plan:
    """Plan on ``connection``; the caller rolls the transaction back."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    anniversary_at = config.settings.scheduler.anniversary_at
    due = sorted(
        (
            (moment, -c.campaign.priority, key)
            for key, c in campaigns.items()
            for moment in firings(c.campaign, zone, start, end, anniversary_at=anniversary_at)
        ),
    )
    ran_before = {key: _has_run(connection, key) for key in campaigns}
    runs: list[PlannedRun] = []
    for moment, _, key in due:
        campaign = campaigns[key]
        definition = campaign.campaign
        before = connection.execute(
            select(func.count()).where(RUN.c.campaign == key, RUN.c.scheduled_for == moment)
        ).scalar_one()
        run_id = start_run_in(connection, config, campaign, scheduled_for=moment, now=moment)
        summary = run_summary(connection, run_id)
        steps = list(summary.steps)
        if summary.state == states.RUN_QUEUED and not before:
            steps += _project_later_steps(connection, config, campaign, run_id, moment)
        preparation = Decimal(0)
        if summary.state == states.RUN_QUEUED and not ran_before[key]:
            preparation, ran_before[key] = definition.preparation_cost, True
        runs.append(
            PlannedRun(
                campaign=key,
                name=definition.name,
                strategy=definition.strategy,
                segment=definition.segment,
                priority=definition.priority,
                scheduled_for=moment,
                state=summary.state,
                detail=summary.detail,
                steps=steps,
                preparation_cost=preparation,
                already_ran=bool(before),
            )
        )
    return Plan(start, end, runs)


def plan(
    engine: Engine,
    config: Config,
    *,
    at: dt.datetime | None = None,
    days: int = 1,
    campaign: str | None = None,
    campaigns: dict[str, CampaignFile] | None = None,
) -> Plan:
    """What would run from ``at`` (default now) for ``days`` days; nothing is written."""
    campaigns = campaigns if campaigns is not None else load_campaigns(config)
    load_budgets(config, campaigns)  # a budget file validate refuses is refused here too
    if campaign is not None:
        if campaign not in campaigns:
            raise NotFoundError("campaign", campaign, list(campaigns))
        campaigns = {campaign: campaigns[campaign]}
    start = (at or utcnow()).astimezone(dt.UTC)
    end = start + dt.timedelta(days=days)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            return plan_in(connection, config, campaigns, start, end)
        finally:
            transaction.rollback()
