"""The spending limits of one step of a run: what it may still spend, and which limit binds.

A step of campaign *c* (strategy *s*) fired on business day *d* is limited by:

* the campaign file's ``budget``, its lifetime **budget line**: preparation
  cost plus every contact of *c*'s runs that is queued, in flight, made,
  bounced or failed, at the unit cost recorded on its row;
* from the budget file whose period *P* contains *d*
  (``budgets/*.toml``; no file, no period limits): the **campaign
  allocation** ``allocations.campaign.c``, the **strategy allocation**
  ``allocations.strategy.s`` and the **approved total**.

The committed spend of a period limit is the sum of ``unit_cost x contacts``
over outbox rows that are waiting or contacted (``queued``, ``sending``,
``committing``, ``sent``, ``delivered``, ``bounced``; ``failed`` costs
nothing) whose ``coalesce(sent_at, scheduled_at)`` lies in *P* (local
midnights of the business zone, as UTC bounds), restricted to the scope's
runs (``campaign_run.campaign = c``, ``campaign_run.strategy = s``, or every
run), plus the ``preparation_cost`` of every campaign of the scope whose
first run (the earliest ``scheduled_for`` among its runs that are running,
queued or done; the run being materialised is running) falls in *P*. The
rows of the step being limited are never counted: they are what is decided.

Each limit is one SQL aggregate. The runner
(:func:`engine.runs.materialise.trim_to_budget`) ranks the step's queued
rows and stops at the smallest remaining amount, naming that limit.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, and_, func, literal, not_, select

from engine.budget.actual import first_runs
from engine.budget.budget_files import BudgetFile, Budgets, load_budgets
from engine.budget.report import as_money
from engine.campaigns import Campaign
from engine.config import Config
from engine.models import OUTBOX, RUN
from engine.models import outbox as states
from engine.sql import UtcDateTime

#: rows whose cost counts against a period's budget: waiting to be sent, or sent
PERIOD_STATES = (*states.WAITING_STATES, *states.CONTACTED_STATES)
#: rows whose cost counts against a campaign's budget line (failed included, as ever)
LINE_STATES = (*states.CAP_STATES, states.BOUNCED, states.FAILED)


class LimitedStep(Protocol):
    """The step being limited (:class:`engine.runs.materialise.StepRun` is one)."""

    @property
    def run_id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def campaign(self) -> Campaign: ...
    @property
    def step(self) -> int: ...
    @property
    def business_day(self) -> dt.date: ...


@dataclass(frozen=True)
class Limit:
    """One spending limit: its amount, what is committed against it elsewhere, what to say when reached."""

    name: str  # "strategy loyalty allocation 900000.00 for 2027-Q1"
    amount: Decimal
    committed: Decimal
    reason: str  # the detail of the rows it turns away

    @property
    def remaining(self) -> Decimal:
        """What the step may still spend under this limit (negative when already overspent)."""
        return self.amount - self.committed


def _period_limit(name: str, amount: Decimal, committed: Decimal) -> Limit:
    return Limit(name, amount, committed, f"{name} reached (committed {committed:.2f})")


def _not_this_step(step: LimitedStep) -> ColumnElement[bool]:
    return not_(and_(OUTBOX.c.run_id == step.run_id, OUTBOX.c.step == step.step))


def line_limit(connection: Connection, step: LimitedStep) -> Limit | None:
    """The campaign's lifetime budget line, None without one."""
    campaign = step.campaign
    if campaign.budget is None:
        return None
    spent = connection.execute(
        select(func.coalesce(func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts), 0))
        .select_from(OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id))
        .where(RUN.c.campaign == step.key, OUTBOX.c.state.in_(LINE_STATES), _not_this_step(step))
    ).scalar_one()
    reason = f"budget line {campaign.budget} reached (with preparation {campaign.preparation_cost})"
    committed = campaign.preparation_cost + as_money(spent)
    return Limit(f"campaign {step.key} budget line {campaign.budget}", campaign.budget, committed, reason)


def committed_in_period(
    connection: Connection,
    step: LimitedStep,
    bounds: tuple[dt.datetime, dt.datetime],
    scope: ColumnElement[bool] | None,
) -> Decimal:
    """Contacts and preparation of the runs ``scope`` selects (None: all) in a period, this step left out."""
    start, end = (literal(t, UtcDateTime()) for t in bounds)
    when = func.coalesce(OUTBOX.c.sent_at, OUTBOX.c.scheduled_at)
    contacts = (
        select(func.coalesce(func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts), 0))
        .select_from(OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id))
        .where(OUTBOX.c.state.in_(PERIOD_STATES), when >= start, when < end, _not_this_step(step))
    )
    if scope is not None:
        contacts = contacts.where(scope)
    first = first_runs(*bounds, scope)
    preparation = select(func.coalesce(func.sum(first.c.preparation_cost), 0))
    total = connection.execute(select(contacts.scalar_subquery(), preparation.scalar_subquery())).one()
    return as_money(total[0]) + as_money(total[1])


def period_limits(
    connection: Connection, step: LimitedStep, budget: BudgetFile, zone: zoneinfo.ZoneInfo
) -> list[Limit]:
    """The campaign allocation, the strategy allocation and the approved total of ``budget``."""
    campaign = step.campaign
    label = budget.period.label
    bounds = budget.period.bounds(zone)
    limits: list[Limit] = []
    own = budget.allocation(campaign=step.key)
    if own is not None:
        committed = committed_in_period(connection, step, bounds, RUN.c.campaign == step.key)
        limits.append(_period_limit(f"campaign {step.key} allocation {own:.2f} for {label}", own, committed))
    shared = budget.allocation(strategy=campaign.strategy)
    if shared is not None:
        committed = committed_in_period(connection, step, bounds, RUN.c.strategy == campaign.strategy)
        name = f"strategy {campaign.strategy} allocation {shared:.2f} for {label}"
        limits.append(_period_limit(name, shared, committed))
    committed = committed_in_period(connection, step, bounds, None)
    limits.append(
        _period_limit(f"approved total {budget.approved:.2f} for {label}", budget.approved, committed)
    )
    return limits


class SpendingLimits:
    """The limits of the steps one materialisation decides; budget files are read once, when built.

    An invalid budget file raises :class:`engine.errors.ConfigErrors`: a run
    fails rather than spend unchecked.
    """

    def __init__(self, config: Config, budgets: Budgets | None = None) -> None:
        self.zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
        self.budgets = budgets if budgets is not None else load_budgets(config)

    def of(self, connection: Connection, step: LimitedStep) -> list[Limit]:
        """Every limit on ``step``: its budget line, then its period's allocations and total."""
        limits: list[Limit] = []
        line = line_limit(connection, step)
        if line is not None:
            limits.append(line)
        budget = self.budgets.for_day(step.business_day)
        if budget is not None:
            limits += period_limits(connection, step, budget, self.zone)
        return limits


def binding(limits: list[Limit]) -> Limit | None:
    """The limit with the least remaining (the first of equals), None without limits."""
    return min(limits, key=lambda limit: limit.remaining, default=None)
