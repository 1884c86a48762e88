"""``crm budget --diff REV``: the budget of the config at a git revision against today's.

config.toml, campaigns/ and budgets/ are taken from the revision with
``git archive`` and planned for the same period against the same database,
so a change to prices, schedules, segments or allocations shows what it does
to every line before it is merged.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from engine.budget.budget_files import load_budgets
from engine.budget.contact_matrix import budget_report
from engine.budget.report import BudgetReport, money, number
from engine.campaigns import load_campaigns
from engine.config import Config, checkout_config, load_config
from engine.reporting import Period


@dataclass(frozen=True)
class BudgetDiffLine:
    """One campaign step whose planned contacts or cost differ between the two versions."""

    campaign: str
    step: int
    channel: str
    contacts_before: Decimal
    contacts_after: Decimal
    cost_before: Decimal
    cost_after: Decimal

    def as_dict(self) -> dict[str, Any]:
        """The line as JSON-ready values."""
        return {
            "campaign": self.campaign,
            "step": self.step,
            "channel": self.channel,
            "contacts_before": number(self.contacts_before),
            "contacts_after": number(self.contacts_after),
            "cost_before": money(self.cost_before),
            "cost_after": money(self.cost_after),
            "change": money(self.cost_after - self.cost_before),
        }


@dataclass(frozen=True)
class BudgetDiff:
    """The budget of one period at ``rev`` and now."""

    rev: str
    before: BudgetReport
    after: BudgetReport
    lines: list[BudgetDiffLine] = field(default_factory=list)

    @property
    def change(self) -> Decimal:
        """How much the plan moves."""
        return self.after.plan_total - self.before.plan_total

    def as_dict(self) -> dict[str, Any]:
        """The diff as JSON-ready values."""
        return {
            "rev": self.rev,
            "period": self.after.period.label,
            "plan_before": money(self.before.plan_total),
            "plan_after": money(self.after.plan_total),
            "change": money(self.change),
            "fingerprint_before": self.before.fingerprint,
            "fingerprint_after": self.after.fingerprint,
            "lines": [line.as_dict() for line in self.lines],
        }


def _by_step(report: BudgetReport) -> dict[tuple[str, int, str], tuple[Decimal, Decimal]]:
    found: dict[tuple[str, int, str], tuple[Decimal, Decimal]] = {}
    for line in report.lines:
        key = (line.campaign, line.step, line.channel)
        contacts, cost = found.get(key, (Decimal(0), Decimal(0)))
        found[key] = (contacts + line.contacts, cost + line.cost)
    return found


def budget_diff(engine: Engine, config: Config, *, period: Period, rev: str = "HEAD") -> BudgetDiff:
    """The plan of ``period`` by the config at ``rev`` against the current one, on the same database."""
    with tempfile.TemporaryDirectory(prefix="crm-budget-") as folder:
        old_path = checkout_config(config.path, rev, Path(folder), ("campaigns", "budgets"))
        old_config = load_config(old_path)
        old_campaigns = load_campaigns(old_config)
        before = budget_report(
            engine,
            old_config,
            period=period,
            campaigns=old_campaigns,
            budgets=load_budgets(old_config, old_campaigns),
        )
    after = budget_report(engine, config, period=period)
    old, new = _by_step(before), _by_step(after)
    zero = (Decimal(0), Decimal(0))
    lines = [
        BudgetDiffLine(
            *key, old.get(key, zero)[0], new.get(key, zero)[0], old.get(key, zero)[1], new.get(key, zero)[1]
        )
        for key in sorted(old.keys() | new.keys())
        if old.get(key, zero) != new.get(key, zero)
    ]
    return BudgetDiff(rev, before, after, lines)
