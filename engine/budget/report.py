"""The budget report of one period: plan lines, approved amounts, actual cost, variance.

Every money figure traces to a formula:

* a plan line is one step of one campaign at one price:
  ``cost = unit_cost x clients x contacts_per_client x runs + preparation``,
  with ``clients = members - control - unreachable``;
* an actual line is what was recorded: ``cost = sum(unit_cost at send time x contacts)``
  over the contacts made in the period, ``+ preparation`` of campaigns that first ran in it;
* variance is ``actual - plan`` and ``actual - approved``; headroom is ``approved - plan``.

:meth:`BudgetReport.as_dict` is the stable JSON form (``schema = "crm-engine/budget/1"``,
documented in docs/budget.md); every output format is built from it or from
the same objects.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.budget.budget_files import BudgetFile, budget_data
from engine.reporting import Period

SCHEMA = "crm-engine/budget/1"
CENT = Decimal("0.01")
DIMENSIONS = ("campaign", "strategy", "segment", "channel")


def as_money(value: Any) -> Decimal:
    """A sum the database returned (Decimal, float on SQLite, or NULL) as money to the cent."""
    return Decimal(str(value or 0)).quantize(CENT)


def money(value: Decimal) -> str:
    """Money as a string with two decimals (JSON keeps it exact)."""
    return str(value.quantize(CENT))


def number(value: Decimal) -> str:
    """A count that may be fractional (contacts per client x clients), without trailing zeros."""
    text = format(value.normalize(), "f")
    return text


@dataclass(frozen=True)
class PlanLine:
    """One step of one campaign at one unit cost, over the runs that fall in the price's days."""

    campaign: str
    name: str
    strategy: str
    segment: str
    step: int
    channel: str
    runs: int
    members: int  # segment members counted (or the expected / observed audience)
    control: int  # held out as the control group
    unreachable: int  # no consent, no address or phone, suppressed on this channel
    contacts_per_client: Decimal
    unit_cost: Decimal
    preparation: Decimal  # the campaign's preparation cost, on its first line only
    basis: str  # how members and runs were found: "schedule", "expected_audience", "observed 2026-Q4" ...
    price_source: str = ""  # the setting that gives unit_cost, e.g. "channels.call.prices[0]"
    price_from: dt.date | None = None
    price_until: dt.date | None = None

    @property
    def clients(self) -> int:
        """Members minus the control group minus those unreachable on the channel."""
        return max(0, self.members - self.control - self.unreachable)

    @property
    def contacts(self) -> Decimal:
        """clients x contacts_per_client x runs."""
        return Decimal(self.clients) * self.contacts_per_client * self.runs

    @property
    def contact_cost(self) -> Decimal:
        """unit_cost x contacts."""
        return self.unit_cost * self.contacts

    @property
    def cost(self) -> Decimal:
        """unit_cost x clients x contacts_per_client x runs + preparation."""
        return self.contact_cost + self.preparation

    def as_dict(self) -> dict[str, Any]:
        """The line as JSON-ready values."""
        return {
            "campaign": self.campaign,
            "name": self.name,
            "strategy": self.strategy,
            "segment": self.segment,
            "step": self.step,
            "channel": self.channel,
            "runs": self.runs,
            "members": self.members,
            "control": self.control,
            "unreachable": self.unreachable,
            "clients": self.clients,
            "contacts_per_client": number(self.contacts_per_client),
            "contacts": number(self.contacts),
            "unit_cost": money(self.unit_cost),
            "price_source": self.price_source,
            "price_from": self.price_from.isoformat() if self.price_from else None,
            "price_until": self.price_until.isoformat() if self.price_until else None,
            "preparation": money(self.preparation),
            "cost": money(self.cost),
            "basis": self.basis,
        }


@dataclass(frozen=True)
class ActualLine:
    """What one step of one campaign cost in the period, as recorded."""

    campaign: str
    strategy: str
    segment: str
    step: int
    channel: str
    clients: int  # distinct customers contacted
    contacts: Decimal  # sum of contacts recorded
    contact_cost: Decimal  # sum of unit cost at send time x contacts
    preparation: Decimal = Decimal(0)  # on the campaign's first line, when its first run is in the period

    @property
    def cost(self) -> Decimal:
        """Contact cost plus preparation."""
        return self.contact_cost + self.preparation

    def as_dict(self) -> dict[str, Any]:
        """The line as JSON-ready values."""
        return {
            "campaign": self.campaign,
            "strategy": self.strategy,
            "segment": self.segment,
            "step": self.step,
            "channel": self.channel,
            "clients": self.clients,
            "contacts": number(self.contacts),
            "contact_cost": money(self.contact_cost),
            "preparation": money(self.preparation),
            "cost": money(self.cost),
        }


@dataclass(frozen=True)
class Total:
    """Plan, approved and actual of one campaign, strategy, segment or channel (or everything)."""

    key: str
    plan: Decimal
    actual: Decimal
    approved: Decimal | None = None
    plan_contacts: Decimal = Decimal(0)
    actual_contacts: Decimal = Decimal(0)

    @property
    def against_plan(self) -> Decimal:
        """actual - plan (positive: over plan)."""
        return self.actual - self.plan

    @property
    def against_approved(self) -> Decimal | None:
        """actual - approved (positive: over the approved amount)."""
        return None if self.approved is None else self.actual - self.approved

    @property
    def headroom(self) -> Decimal | None:
        """approved - plan (negative: the plan needs more than was approved)."""
        return None if self.approved is None else self.approved - self.plan

    def as_dict(self) -> dict[str, Any]:
        """The total as JSON-ready values."""
        optional: Callable[[Decimal | None], str | None] = lambda v: None if v is None else money(v)  # noqa: E731
        return {
            "key": self.key,
            "plan_contacts": number(self.plan_contacts),
            "plan": money(self.plan),
            "approved": optional(self.approved),
            "actual_contacts": number(self.actual_contacts),
            "actual": money(self.actual),
            "against_plan": money(self.against_plan),
            "against_approved": optional(self.against_approved),
            "headroom": optional(self.headroom),
        }


@dataclass(frozen=True)
class MatrixCell:
    """Contacts and money of one segment on one channel."""

    plan_contacts: Decimal = Decimal(0)
    plan_cost: Decimal = Decimal(0)
    actual_contacts: Decimal = Decimal(0)
    actual_cost: Decimal = Decimal(0)


@dataclass(frozen=True)
class ContactMatrix:
    """Segments x channels; preparation per segment sits beside the channels."""

    segments: list[str]
    channels: list[str]
    cells: dict[tuple[str, str], MatrixCell]
    preparation: dict[str, tuple[Decimal, Decimal]]  # segment -> (plan, actual)

    def cell(self, segment: str, channel: str) -> MatrixCell:
        """The cell, empty when nothing is planned or recorded there."""
        return self.cells.get((segment, channel), MatrixCell())

    def as_dict(self) -> dict[str, Any]:
        """The matrix as JSON-ready values."""
        return {
            "segments": self.segments,
            "channels": self.channels,
            "cells": [
                {
                    "segment": segment,
                    "channel": channel,
                    "plan_contacts": number(cell.plan_contacts),
                    "plan_cost": money(cell.plan_cost),
                    "actual_contacts": number(cell.actual_contacts),
                    "actual_cost": money(cell.actual_cost),
                }
                for (segment, channel), cell in sorted(self.cells.items())
            ],
            "preparation": {
                segment: {"plan": money(plan), "actual": money(actual)}
                for segment, (plan, actual) in sorted(self.preparation.items())
            },
        }


@dataclass(frozen=True)
class BudgetReport:
    """Everything finance needs about one period."""

    period: Period
    currency: str
    generated_at: dt.datetime
    fingerprint: str  # of config.toml and campaigns/ (and any what-if) this report came from
    lines: list[PlanLine]
    actual: list[ActualLine]
    approved: BudgetFile | None = None
    notes: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # what-if settings (--set) applied to the plan

    @property
    def plan_total(self) -> Decimal:
        """The budget of all CRM actions in the period."""
        return sum((line.cost for line in self.lines), Decimal(0))

    @property
    def actual_total(self) -> Decimal:
        """What the period cost so far."""
        return sum((line.cost for line in self.actual), Decimal(0))

    @property
    def approved_total(self) -> Decimal | None:
        """The approved total, None without a budget file."""
        return self.approved.approved if self.approved else None

    @property
    def fingerprint_matches(self) -> bool | None:
        """Whether the approval was given on this very configuration (None: the file records none)."""
        if self.approved is None or self.approved.definition.fingerprint is None:
            return None
        return self.approved.definition.fingerprint == self.fingerprint

    def _approved_of(self, dimension: str, key: str) -> Decimal | None:
        if self.approved is None:
            return None
        if dimension == "strategy":
            return self.approved.allocation(strategy=key)
        if dimension == "campaign":
            return self.approved.allocation(campaign=key)
        return None

    def totals(self, dimension: str) -> list[Total]:
        """Plan, approved and actual per ``dimension`` (campaign, strategy, segment or channel)."""
        if dimension not in DIMENSIONS:
            raise ValueError(f"unknown dimension {dimension!r} (known: {', '.join(DIMENSIONS)})")
        plan: dict[str, Decimal] = defaultdict(Decimal)
        actual: dict[str, Decimal] = defaultdict(Decimal)
        plan_contacts: dict[str, Decimal] = defaultdict(Decimal)
        actual_contacts: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            key = getattr(line, dimension)
            plan[key] += line.contact_cost if dimension == "channel" else line.cost
            plan_contacts[key] += line.contacts
        for done in self.actual:
            key = getattr(done, dimension)
            actual[key] += done.contact_cost if dimension == "channel" else done.cost
            actual_contacts[key] += done.contacts
        keys = set(plan) | set(actual)
        if self.approved is not None and dimension in ("strategy", "campaign"):
            keys |= set(getattr(self.approved.definition.allocations, dimension))
        return [
            Total(
                key,
                plan[key],
                actual[key],
                self._approved_of(dimension, key),
                plan_contacts[key],
                actual_contacts[key],
            )
            for key in sorted(keys)
        ]

    def total(self) -> Total:
        """The whole period."""
        return Total(
            "total",
            self.plan_total,
            self.actual_total,
            self.approved_total,
            sum((line.contacts for line in self.lines), Decimal(0)),
            sum((done.contacts for done in self.actual), Decimal(0)),
        )

    def preparation(self) -> tuple[Decimal, Decimal]:
        """Preparation cost in the plan and in the actual."""
        return (
            sum((line.preparation for line in self.lines), Decimal(0)),
            sum((done.preparation for done in self.actual), Decimal(0)),
        )

    def matrix(self) -> ContactMatrix:
        """The contact matrix: segments x channels, contacts and money, plan and actual."""
        cells: dict[tuple[str, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        preparation: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
        for line in self.lines:
            cell = cells[(line.segment, line.channel)]
            cell["plan_contacts"] += line.contacts
            cell["plan_cost"] += line.contact_cost
            preparation[line.segment][0] += line.preparation
        for done in self.actual:
            cell = cells[(done.segment, done.channel)]
            cell["actual_contacts"] += done.contacts
            cell["actual_cost"] += done.contact_cost
            preparation[done.segment][1] += done.preparation
        segments = sorted({segment for segment, _ in cells} | set(preparation))
        channels = sorted({channel for _, channel in cells})
        return ContactMatrix(
            segments,
            channels,
            {key: MatrixCell(**values) for key, values in cells.items()},
            {segment: (plan, actual) for segment, (plan, actual) in preparation.items()},
        )

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready values (schema ``crm-engine/budget/1``, see docs/budget.md)."""
        total = self.total()
        by: dict[str, list[dict[str, Any]]] = {
            f"by_{dimension}": [t.as_dict() for t in self.totals(dimension)] for dimension in DIMENSIONS
        }
        plan_preparation, actual_preparation = self.preparation()
        return {
            "schema": SCHEMA,
            "period": {
                "label": self.period.label,
                "start": self.period.start.isoformat(),
                "end": self.period.end.isoformat(),
            },
            "currency": self.currency,
            "generated_at": self.generated_at.isoformat(),
            "fingerprint": {
                "report": self.fingerprint,
                "approved_on": self.approved.definition.fingerprint if self.approved else None,
                "matches": self.fingerprint_matches,
            },
            "overrides": list(self.overrides),
            "lines": [line.as_dict() for line in self.lines],
            "matrix": self.matrix().as_dict(),
            "totals": {
                "plan": money(total.plan),
                "plan_contacts": number(total.plan_contacts),
                "plan_preparation": money(plan_preparation),
                "approved": None if total.approved is None else money(total.approved),
                "actual": money(total.actual),
                "actual_contacts": number(total.actual_contacts),
                "actual_preparation": money(actual_preparation),
                **by,
            },
            "approved": budget_data(self.approved) if self.approved else None,
            "actual": [done.as_dict() for done in self.actual],
            "variance": {
                "against_plan": money(total.against_plan),
                "against_approved": None if total.against_approved is None else money(total.against_approved),
                "headroom": None if total.headroom is None else money(total.headroom),
            },
            "notes": list(self.notes),
        }


def csv_rows(report: BudgetReport) -> Iterable[list[str]]:
    """Plan lines with their actual beside them, one row per campaign step and price (``--format csv``)."""
    actual: dict[tuple[str, int], ActualLine] = {(a.campaign, a.step): a for a in report.actual}
    yield [
        "period", "campaign", "strategy", "segment", "step", "channel", "runs", "members", "control",
        "unreachable", "clients", "contacts_per_client", "contacts", "unit_cost", "price_source",
        "preparation", "plan_cost", "actual_contacts", "actual_cost", "basis",
    ]  # fmt: skip
    seen: set[tuple[str, int]] = set()
    for line in report.lines:
        key = (line.campaign, line.step)
        done = actual.get(key) if key not in seen else None
        seen.add(key)
        yield [
            report.period.label, line.campaign, line.strategy, line.segment, str(line.step), line.channel,
            str(line.runs), str(line.members), str(line.control), str(line.unreachable), str(line.clients),
            number(line.contacts_per_client), number(line.contacts), money(line.unit_cost), line.price_source,
            money(line.preparation), money(line.cost),
            number(done.contacts) if done else "0", money(done.cost) if done else "0.00", line.basis,
        ]  # fmt: skip
    for key, done in sorted(actual.items()):
        if key in seen:
            continue
        yield [
            report.period.label, done.campaign, done.strategy, done.segment, str(done.step), done.channel,
            "0", "0", "0", "0", "0", "0", "0", "", "", "0.00", "0.00",
            number(done.contacts), money(done.cost), "not planned in this period",
        ]  # fmt: skip
