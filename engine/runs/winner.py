"""A/B/n tests: send the winning variant to the customers held for it (``crm run KEY --winner``).

A campaign with ``test_share`` tests its variants on that share of step 0's
reachable, non-control audience; :func:`engine.runs.materialise.hold_for_winner`
records the rest as ``held``. :func:`send_winner` takes the campaign's latest
run with held rows, decides the variant (the one given, else the significant
winner of :func:`engine.evaluation.ab_test.pick_winner` on the campaign's
report) and, in one transaction, re-decides each held row as of now, set-based:

1. the row takes the winner, today's unit cost, the customer's current
   address and the send time of a contact fired now (``send_at_local``,
   quiet hours in the customer's zone: the rules of every queued row);
2. ``no_consent``, ``no_address``, ``suppressed``, ``outside_window`` (no
   allowed time before the campaign ends) and ``over_cap`` are checked again
   against today's data: contacts made or queued since the run count against
   the cap (``only_if`` of step 0 stays as decided at the run);
3. the spending limits (budget line, period allocations, approved total) are
   checked with every other row committed, the test's contacts included; the
   held rows past the tightest limit become ``over_budget``, lowest
   ``rank_by`` first;
4. the rest are ``queued``; lower-priority contacts queued in their cap
   windows give way, and calls are spread by the call centre's capacity, as
   in a run.

The run is reopened (``queued``) so later steps follow the winner's
contacts. The worker checks consent and suppression again when it sends.
A second call finds no held rows and says so: nothing is sent twice.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, Connection, Engine, Numeric, and_, case, func, literal, select, update

from engine.budget import SpendingLimits, binding
from engine.campaigns import Campaign, load_campaigns
from engine.channels import UnitCosts
from engine.clock import utcnow
from engine.config import Config
from engine.contact_policy import Lookups, ZoneTimes, by_zone, recipient_expression
from engine.errors import ConfigValueError, EngineError, NotFoundError
from engine.evaluation import Winner, campaign_report, pick_winner
from engine.models import CUSTOMER, OUTBOX, RUN
from engine.models import outbox as states
from engine.runs.materialise import (
    SUM_TOLERANCE,
    StepRun,
    end_limit_of,
    exclusion_cases,
    preempt,
    spread_calls,
    step_times,
)
from engine.sql import UtcDateTime

#: what a held row may become besides ``queued``, in the order the reasons are checked
RECHECKED = (states.NO_CONSENT, states.NO_ADDRESS, states.SUPPRESSED, states.OUTSIDE_WINDOW, states.OVER_CAP)
#: the step the spending limits are asked for: no row has it, so every row of the run counts as committed
NO_STEP = -1


@dataclass(frozen=True)
class WinnerSend:
    """What :func:`send_winner` did: which run and variant, and what the held rows became."""

    campaign: str
    run_id: int | None  # None: no run of the campaign holds anyone
    variant: str | None
    chosen_by: str  # "variant" (given), "test" (the significant winner) or "" (nothing held)
    verdict: Winner | None = None  # the test's verdict when the winner was picked
    states: dict[str, int] = field(default_factory=dict)  # what the held rows became

    @property
    def held(self) -> int:
        """How many rows were held."""
        return sum(self.states.values())

    @property
    def queued(self) -> int:
        """How many held rows are now queued with the winner."""
        return self.states.get(states.QUEUED, 0)

    def describe(self) -> str:
        """One sentence for people."""
        if self.run_id is None:
            return f"campaign {self.campaign}: no customer is held for an A/B winner: nothing to send"
        how = "as asked" if self.chosen_by == "variant" else "the significant winner"
        text = f"run {self.run_id} of {self.campaign}: variant {self.variant} ({how}) for {self.held:,} held"
        others = ", ".join(
            f"{name.replace('_', ' ')} {n:,}" for name, n in self.states.items() if name != states.QUEUED
        )
        return text + f": {self.queued:,} queued" + (f", {others}" if others else "")


@dataclass(frozen=True)
class _AllCommitted:
    """The step the spending limits are asked about: none of the run's rows is left out of the spend."""

    run_id: int
    key: str
    campaign: Campaign
    business_day: dt.date
    step: int = NO_STEP


def latest_held_run(connection: Connection, key: str) -> int | None:
    """The latest run of campaign ``key`` that has held rows, None when none has."""
    found: int | None = connection.execute(
        select(RUN.c.id)
        .where(
            RUN.c.campaign == key,
            select(OUTBOX.c.id).where(OUTBOX.c.run_id == RUN.c.id, OUTBOX.c.state == states.HELD).exists(),
        )
        .order_by(RUN.c.scheduled_for.desc(), RUN.c.id.desc())
        .limit(1)
    ).scalar()
    return found


def _decide_variant(
    engine: Engine, config: Config, key: str, variant: str | None, now: dt.datetime
) -> tuple[str, str, Winner | None]:
    """The variant to send, how it was chosen, and the test's verdict when it was asked."""
    if variant is not None:
        return variant, "variant", None
    results = campaign_report(engine, config, [key], now=now)
    if not results:
        raise EngineError(f"campaign {key}: no report to pick a winner from; pass --variant NAME")
    verdict = pick_winner(results[0], float(config.settings.evaluation.confidence))
    if verdict.variant is None or not verdict.significant:
        raise EngineError(
            f"campaign {key}: no variant is significantly best on {verdict.metric} ({verdict.reason}); "
            "wait for more results, or pass --variant NAME to send one anyway"
        )
    return verdict.variant, "test", verdict


def _held(run_id: int) -> ColumnElement[bool]:
    return and_(OUTBOX.c.run_id == run_id, OUTBOX.c.step == 0, OUTBOX.c.state == states.HELD)


def _take_winner(
    connection: Connection,
    config: Config,
    step_run: StepRun,
    variant: str,
    times: dict[str, ZoneTimes],
    now: dt.datetime,
) -> None:
    """Held rows take the winner, today's price, the current address and a send time as of now."""
    campaign = step_run.campaign
    channel = campaign.steps[0].channel
    default = config.settings.engine.timezone
    unit_cost = UnitCosts(config.settings.channels).at(
        channel, step_run.business_day, campaign=step_run.key, segment=campaign.segment
    )
    of_customer = CUSTOMER.c.id == OUTBOX.c.customer_id
    send_at = by_zone({name: t.send_at for name, t in times.items()}, default)
    connection.execute(
        update(OUTBOX)
        .where(_held(step_run.run_id))
        .values(
            variant=variant,
            unit_cost=literal(unit_cost, OUTBOX.c.unit_cost.type),
            recipient=select(recipient_expression(channel)).where(of_customer).scalar_subquery(),
            scheduled_at=select(send_at).where(of_customer).scalar_subquery(),
            updated_at=literal(now, UtcDateTime()),
        )
    )


def _recheck(
    connection: Connection,
    config: Config,
    step_run: StepRun,
    times: dict[str, ZoneTimes],
    variant: str,
    now: dt.datetime,
) -> dict[str, int]:
    """Held rows that can no longer be contacted take their reason (one update per reason found)."""
    campaign = step_run.campaign
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    lookups = Lookups()
    whens = exclusion_cases(
        config, campaign, campaign.steps[0].channel, times, lookups, end_limit_of(campaign, zone)
    )
    source = lookups.join(CUSTOMER.join(OUTBOX, CUSTOMER.c.id == OUTBOX.c.customer_id))
    decided = (
        select(OUTBOX.c.id, case(*whens, else_=literal(states.HELD)).label("state"))
        .select_from(source)
        .where(_held(step_run.run_id))
        .subquery("decided")
    )
    found: dict[str, int] = dict(
        connection.execute(
            select(decided.c.state, func.count())
            .where(decided.c.state != states.HELD)
            .group_by(decided.c.state)
        ).all()
    )
    detail = f"when the A/B winner {variant} was sent"
    counts: dict[str, int] = {}
    for reason in RECHECKED:
        if not found.get(reason):
            continue
        counts[reason] = connection.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(select(decided.c.id).where(decided.c.state == reason)))
            .values(state=reason, detail=f"{reason.replace('_', ' ')} {detail}", updated_at=now)
        ).rowcount
    return counts


def _trim_to_budget(connection: Connection, config: Config, step_run: StepRun, now: dt.datetime) -> int:
    """Held rows past the tightest spending limit become ``over_budget``, lowest ranked first; how many."""
    asked = _AllCommitted(step_run.run_id, step_run.key, step_run.campaign, step_run.business_day)
    limit = binding(SpendingLimits(config).of(connection, asked))
    if limit is None:
        return 0
    held = _held(step_run.run_id)
    running = (
        select(
            OUTBOX.c.id,
            func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts)
            .over(order_by=(OUTBOX.c.rank.desc(), OUTBOX.c.customer_id))
            .label("cumulative"),
        )
        .where(held)
        .subquery("running")
    )
    allowed = literal(limit.remaining + SUM_TOLERANCE, Numeric(asdecimal=True))
    past = select(running.c.id).where(running.c.cumulative > allowed)
    if limit.remaining <= 0:
        past = select(OUTBOX.c.id).where(held)
    return connection.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(past))
        .values(state=states.OVER_BUDGET, detail=limit.reason, updated_at=now)
    ).rowcount


def release_held(
    connection: Connection, config: Config, step_run: StepRun, variant: str, *, now: dt.datetime
) -> dict[str, int]:
    """Re-decide the held rows of ``step_run``'s run with ``variant`` (see the module docstring).

    Returns what the held rows became, per state. ``step_run`` is step 0 of
    the run, based now, on today's business day.
    """
    campaign = step_run.campaign
    channel = campaign.steps[0].channel
    held = select(func.count()).select_from(OUTBOX).where(_held(step_run.run_id))
    if not connection.execute(held).scalar_one():
        return {}  # another sender was first
    times = step_times(connection, config, campaign, channel, step_run.base)
    _take_winner(connection, config, step_run, variant, times, now)
    counts = _recheck(connection, config, step_run, times, variant, now)
    over_budget = _trim_to_budget(connection, config, step_run, now)
    if over_budget:
        counts[states.OVER_BUDGET] = over_budget
    counts[states.QUEUED] = connection.execute(
        update(OUTBOX)
        .where(_held(step_run.run_id))
        .values(state=states.QUEUED, detail=f"the A/B winner {variant}, sent to the rest", updated_at=now)
    ).rowcount
    cap = config.settings.contact_policy.cap(channel)
    if cap is not None:
        preempt(connection, step_run, channel, times, config.settings.engine.timezone, cap.count, now)
    if channel == "call":
        zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
        spread_calls(connection, config, step_run, end_limit_of(campaign, zone), now)
    if counts[states.QUEUED]:
        connection.execute(
            update(RUN)
            .where(RUN.c.id == step_run.run_id, RUN.c.state == states.RUN_DONE)
            .values(state=states.RUN_QUEUED, finished_at=None)
        )
    return {state: n for state, n in counts.items() if n}


def send_winner(
    engine: Engine,
    config: Config,
    campaign_key: str,
    *,
    variant: str | None = None,
    now: dt.datetime | None = None,
) -> WinnerSend:
    """Queue the held customers of ``campaign_key``'s latest A/B run with the winning variant.

    ``variant`` sends that one; without it the campaign's report must show a
    significant winner on the goal metric, else :class:`EngineError` says why.
    Nothing held (never, or already sent): a :class:`WinnerSend` with
    ``run_id`` None. The worker sends the queued rows as any others.

    Example::

        sent = send_winner(engine, config, "spring_sale", variant="b")
        print(sent.describe())
    """
    campaigns = load_campaigns(config)
    if campaign_key not in campaigns:
        raise NotFoundError("campaign", campaign_key, list(campaigns))
    campaign = campaigns[campaign_key].campaign
    names = [v.name for v in campaign.variants]
    if variant is not None and variant not in names:
        known = ", ".join(names) or "none"
        reason = f"{campaign_key} has no variant {variant!r} (known: {known})"
        raise ConfigValueError("--variant", "variant", reason)
    now = now or utcnow()
    with engine.connect() as connection:
        run_id = latest_held_run(connection, campaign_key)
    if run_id is None:
        return WinnerSend(campaign_key, None, None, "")
    chosen, chosen_by, verdict = _decide_variant(engine, config, campaign_key, variant, now)
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    with engine.begin() as connection:
        # one sender at a time per run: a second waits here, then finds nothing held
        connection.execute(select(RUN.c.id).where(RUN.c.id == run_id).with_for_update())
        step_run = StepRun(run_id, campaign_key, campaign, 0, now, now.astimezone(zone).date())
        counts = release_held(connection, config, step_run, chosen, now=now)
    if not counts:
        return WinnerSend(campaign_key, None, None, "")
    return WinnerSend(campaign_key, run_id, chosen, chosen_by, verdict, counts)
