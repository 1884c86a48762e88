"""``crm plan --diff``: the plan of the config at a git revision against the plan of the working tree.

config.toml and campaigns/ (templates included) are taken from the revision
with ``git archive`` into a temporary folder and planned against the same
database as the working tree's version, so a reviewer sees what a change does
to audiences and cost before it ships.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.campaigns import load_campaigns
from engine.config import Config, checkout_config, load_config
from engine.runs.planner import Plan, plan


@dataclass(frozen=True)
class DiffLine:
    """One firing, step and channel whose contacts or cost differ."""

    campaign: str
    scheduled_for: dt.datetime
    step: int
    channel: str
    contacts_before: int
    contacts_after: int
    cost_before: Decimal
    cost_after: Decimal


@dataclass(frozen=True)
class PlanDiff:
    """What changes between the plan at ``rev`` and the plan of the working tree."""

    rev: str
    cost_before: Decimal
    cost_after: Decimal
    lines: list[DiffLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "rev": self.rev,
            "cost_before": str(self.cost_before),
            "cost_after": str(self.cost_after),
            "lines": [
                {
                    "campaign": line.campaign,
                    "scheduled_for": line.scheduled_for.isoformat(),
                    "step": line.step,
                    "channel": line.channel,
                    "contacts_before": line.contacts_before,
                    "contacts_after": line.contacts_after,
                    "cost_before": str(line.cost_before),
                    "cost_after": str(line.cost_after),
                }
                for line in self.lines
            ],
        }


def _key(run: Any, step: Any) -> tuple[str, dt.datetime, int, str]:
    return (run.campaign, run.scheduled_for, step.step, step.channel)


def _lines(before: Plan, after: Plan) -> list[DiffLine]:
    old = {_key(r, s): s for r in before.runs for s in r.steps}
    new = {_key(r, s): s for r in after.runs for s in r.steps}
    lines = []
    for key in sorted(old.keys() | new.keys()):
        a, b = old.get(key), new.get(key)
        contacts = (a.contacted if a else 0, b.contacted if b else 0)
        cost = (a.cost if a else Decimal(0), b.cost if b else Decimal(0))
        if contacts[0] != contacts[1] or cost[0] != cost[1]:
            lines.append(DiffLine(*key, contacts[0], contacts[1], cost[0], cost[1]))
    return lines


def plan_diff(
    engine: Engine,
    config: Config,
    *,
    rev: str = "HEAD",
    at: dt.datetime | None = None,
    days: int = 1,
    campaign: str | None = None,
) -> PlanDiff:
    """The plan of the config at ``rev`` against the current one, on the same database."""
    with tempfile.TemporaryDirectory(prefix="crm-plan-") as folder:
        old_path = checkout_config(config.path, rev, Path(folder))
        old_config = load_config(old_path)
        old_campaigns = load_campaigns(old_config)
        if campaign is not None and campaign not in old_campaigns:
            old_campaigns = {}
        elif campaign is not None:
            old_campaigns = {campaign: old_campaigns[campaign]}
        before = plan(engine, old_config, at=at, days=days, campaigns=old_campaigns)
    current = load_campaigns(config)
    if campaign is not None:
        current = {campaign: current[campaign]} if campaign in current else {}
    after = plan(engine, config, at=before.start, days=days, campaigns=current)
    return PlanDiff(rev, before.cost, after.cost, _lines(before, after))
