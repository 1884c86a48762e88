"""One step of one run into the outbox: one ``INSERT ... SELECT``, then set-based updates.

Every audience member gets a row with its state decided in SQL, in this order
(the first reason that applies is recorded):

``condition_not_met`` (the step's ``only_if``) -> ``no_consent`` ->
``no_address`` -> ``suppressed`` -> ``outside_window`` (no allowed time
before the campaign ends) -> ``over_cap`` (the channel's frequency cap in the
customer's own calendar, counting contacts made, in flight, and queued by
campaigns of equal or higher priority) -> ``queued``.

Then, still in the same transaction:

* step 0 draws the control group from the *reachable* rows (``queued``,
  ``over_cap`` or ``outside_window``: everyone but ``condition_not_met``,
  ``no_consent``, ``no_address`` and ``suppressed``): exactly
  :func:`control_size` of them, ``floor(share x reachable + 1/2)`` (halves
  round up: 10 % of 101 is 10, of 105 is 11), those with the lowest
  ``bucket(customer_id, 65536, 'control:KEY')``, ties by customer id. The
  hash does not change between runs, so a customer in control stays there
  while the audience stays much the same; the budget plan counts the control
  group with the same function;
* with ``test_share`` (an A/B/n test), step 0 then keeps the test to that
  share of the reachable rows left, by another stable hash; the queued rows
  beyond it are ``held`` (no variant, no cost, no cap) until
  :func:`engine.runs.winner.send_winner` gives them the winner;
* lower-priority contacts queued in the same cap window that now exceed the
  cap are pre-empted (``over_cap``): the higher priority wins within the caps;
* the step's spending limits (:mod:`engine.budget.enforcement`: the
  campaign's budget line, its period allocation, its strategy's allocation,
  the period's approved total) trim the audience, best ``rank_by`` first
  (``over_budget``, naming the limit reached);
* calls are spread over days by the call centre's daily capacity, best
  ``rank_by`` first; calls pushed past the campaign's end are ``outside_window``.

Each row carries the unit cost of its channel on the run's business day for
the campaign and its segment (:class:`engine.channels.unit_costs.UnitCosts`);
the worker records the price of the day it actually sends.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Connection,
    Numeric,
    and_,
    case,
    false,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.sql import Select

from engine.budget import SpendingLimits, binding
from engine.campaigns import CONTROL_HASH, Campaign, control_order, control_size
from engine.channels import UnitCosts
from engine.clock import local_instant
from engine.config import Config
from engine.contact_policy import (
    Lookups,
    ZoneTimes,
    by_zone,
    consent_expression,
    customer_zones,
    recipient_expression,
    suppressed_expression,
    zone_times,
)
from engine.models import CUSTOMER, ENGAGED_KINDS, OUTBOX, PURCHASE, RESPONSE, RUN
from engine.models import outbox as states
from engine.rules import CustomerScope, RuleType, bucket_expression, compile_expression, compile_rule
from engine.sql import UtcDateTime

#: reachable rows of step 0: the control group is drawn from these
REACHABLE_STATES = (states.QUEUED, states.OVER_CAP, states.OUTSIDE_WINDOW)
#: amounts are multiples of 0.0001 (unit cost x contacts, two decimals each); SQLite sums them as
#: binary floats, so running sums are compared with half that step to spare
SUM_TOLERANCE = Decimal("0.00005")


@dataclass(frozen=True)
class StepRun:
    """What materialising one step needs to know about its run."""

    run_id: int
    key: str
    campaign: Campaign
    step: int
    base: dt.datetime  # when the step fires (the run's time, or now for later steps)
    business_day: dt.date


def variant_expression(key: str, campaign: Campaign) -> ColumnElement[Any]:
    """The variant the stable hash gives each customer, by weight; NULL without variants."""
    if not campaign.variants:
        return literal(None, OUTBOX.c.variant.type)
    weights = [int((v.weight * 100).to_integral_value()) or 1 for v in campaign.variants]
    bucket = bucket_expression(CUSTOMER.c.id, sum(weights), f"variant:{key}")
    bounds, total = [], 0
    for variant, weight in zip(campaign.variants, weights, strict=True):
        total += weight
        bounds.append((bucket < literal(total), literal(variant.name)))
    return case(*bounds[:-1], else_=literal(campaign.variants[-1].name))


def _only_if(
    step_run: StepRun, config: Config, scope: CustomerScope, lookups: Lookups
) -> ColumnElement[bool]:
    """The step's ``only_if`` as SQL over the customer and the run's responses."""
    text = step_run.campaign.steps[step_run.step].only_if
    if text is None:
        return true()
    earlier = OUTBOX.alias("earlier_step")
    this_run = earlier.c.run_id == step_run.run_id
    responders = select(earlier.c.customer_id).select_from(
        RESPONSE.join(earlier, earlier.c.id == RESPONSE.c.outbox_id)
    )
    if text == "not responded":  # engaged: clicked, replied, reached on the phone (not a mere open)
        engaged = responders.where(this_run, RESPONSE.c.kind.in_(ENGAGED_KINDS))
        return not_(lookups.has(engaged, "responded", CUSTOMER.c.id))
    if text == "opened":
        opened = responders.where(this_run, RESPONSE.c.kind.in_(("open", "click")))
        return lookups.has(opened, "opened", CUSTOMER.c.id)
    if text == "clicked":
        clicked = responders.where(this_run, RESPONSE.c.kind == "click")
        return lookups.has(clicked, "clicked", CUSTOMER.c.id)
    if text == "not converted":
        first = (
            select(earlier.c.customer_id, func.min(earlier.c.sent_at).label("first_contact"))
            .where(this_run)
            .group_by(earlier.c.customer_id)
            .subquery("first_contact")
        )
        buyers = (
            select(PURCHASE.c.customer_id)
            .select_from(PURCHASE.join(first, first.c.customer_id == PURCHASE.c.customer_id))
            .where(PURCHASE.c.amount > 0, PURCHASE.c.ordered_at >= first.c.first_contact)
        )
        return not_(lookups.has(buyers, "converted", CUSTOMER.c.id))
    return compile_rule(text, config.fields.catalogue()).to_sql(scope)


def rank_expression(campaign: Campaign, config: Config, scope: CustomerScope) -> ColumnElement[Any]:
    """Who comes first when money or capacity runs out: ``rank_by``, default total spent."""
    if campaign.rank_by is None:
        return func.coalesce(scope.field("total_spent"), 0)
    expression = compile_expression(campaign.rank_by, config.fields.catalogue(), RuleType.NUMBER)
    return func.coalesce(expression.to_sql(scope), 0)


def end_limit_of(campaign: Campaign, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The first instant after the campaign's last day (business zone); None without an end."""
    if campaign.end is None:
        return None
    return local_instant(campaign.end + dt.timedelta(days=1), dt.time(0), zone)


def step_times(
    connection: Connection, config: Config, campaign: Campaign, channel: str, base: dt.datetime
) -> dict[str, ZoneTimes]:
    """For each zone customers have (the business zone first): when a contact fired at ``base`` may go."""
    default = config.settings.engine.timezone
    policy = config.settings.contact_policy
    cap = policy.cap(channel)
    return {
        name: zone_times(zoneinfo.ZoneInfo(name), base, channel, campaign.send_at_local, policy.quiet, cap)
        for name in [default, *customer_zones(connection, default)]
    }


def materialise_step(
    connection: Connection,
    config: Config,
    step_run: StepRun,
    source: Select[Any],
    *,
    now: dt.datetime,
    limits: SpendingLimits | None = None,
) -> None:
    """One row per customer of ``source`` (customer_id, variant) for the step, with its state.

    ``limits`` are the spending limits with the budget files already read
    (default: read them now); an invalid budget file raises ``ConfigErrors``.
    """
    campaign = step_run.campaign
    step = campaign.steps[step_run.step]
    channel = step.channel
    settings = config.settings
    default = settings.engine.timezone
    business_zone = zoneinfo.ZoneInfo(default)
    policy = settings.contact_policy
    cap = policy.cap(channel)
    times = step_times(connection, config, campaign, channel, step_run.base)
    scheduled = by_zone({name: t.send_at for name, t in times.items()}, default)
    scope = CustomerScope(config.fields, step_run.business_day)
    lookups = Lookups()
    rank = rank_expression(campaign, config, scope)
    only_if = _only_if(step_run, config, scope, lookups)
    recipient = recipient_expression(channel)
    audience = source.subquery("audience")
    end_limit = end_limit_of(campaign, business_zone)

    whens = [
        (not_(func.coalesce(type_coerce(only_if, Boolean()), false())), literal(states.CONDITION_NOT_MET)),
        *exclusion_cases(config, campaign, channel, times, lookups, end_limit),
    ]
    state = case(*whens, else_=literal(states.QUEUED))

    unit_cost = UnitCosts(settings.channels).at(
        channel, step_run.business_day, campaign=step_run.key, segment=campaign.segment
    )
    variant: ColumnElement[Any] = (
        variant_expression(step_run.key, campaign) if step_run.step == 0 else audience.c.variant
    )
    query = select(
        literal(step_run.run_id),
        CUSTOMER.c.id,
        literal(step_run.step),
        literal(channel),
        variant,
        state,
        recipient,
        scheduled,
        type_coerce(rank, OUTBOX.c.rank.type),
        literal(unit_cost, OUTBOX.c.unit_cost.type),
        literal(step.contacts_per_client, OUTBOX.c.contacts.type),
        literal(0),
        literal(now, UtcDateTime()),
        literal(now, UtcDateTime()),
    ).select_from(lookups.join(scope.from_clause().join(audience, audience.c.customer_id == CUSTOMER.c.id)))
    columns = [
        "run_id", "customer_id", "step", "channel", "variant", "state", "recipient", "scheduled_at",
        "rank", "unit_cost", "contacts", "attempts", "created_at", "updated_at",
    ]  # fmt: skip
    connection.execute(insert(OUTBOX).from_select(columns, query))
    if step_run.step == 0:
        draw_control(connection, step_run, now)
        hold_for_winner(connection, step_run, now)
    if cap is not None:
        preempt(connection, step_run, channel, times, default, cap.count, now)
    trim_to_budget(connection, step_run, limits or SpendingLimits(config), now)
    if channel == "call":
        spread_calls(connection, config, step_run, end_limit, now)


def exclusion_cases(
    config: Config,
    campaign: Campaign,
    channel: str,
    times: dict[str, ZoneTimes],
    lookups: Lookups,
    end_limit: dt.datetime | None,
) -> list[tuple[ColumnElement[bool], ColumnElement[str]]]:
    """Why a customer is not contacted on ``channel`` (``only_if`` aside), as ``CASE`` branches in order.

    ``no_consent``, ``no_address``, ``suppressed``, ``outside_window`` (the
    zone's send time at or past ``end_limit``), ``over_cap``; the expressions
    read ``CUSTOMER`` and the derived tables ``lookups`` joins to it.
    """
    default = config.settings.engine.timezone
    recipient = recipient_expression(channel)
    whens: list[tuple[ColumnElement[bool], ColumnElement[str]]] = [
        (not_(consent_expression(channel)), literal(states.NO_CONSENT)),
        (or_(recipient.is_(None), recipient == ""), literal(states.NO_ADDRESS)),
        (suppressed_expression(channel, recipient, lookups), literal(states.SUPPRESSED)),
    ]
    if end_limit is not None:
        scheduled = by_zone({name: t.send_at for name, t in times.items()}, default)
        whens.append((scheduled >= literal(end_limit, UtcDateTime()), literal(states.OUTSIDE_WINDOW)))
    cap = config.settings.contact_policy.cap(channel)
    if cap is not None:
        used = _cap_used(channel, times, default, campaign.priority, lookups)
        whens.append((used >= cap.count, literal(states.OVER_CAP)))
    return whens


def _cap_used(
    channel: str, times: dict[str, Any], default: str, priority: int, lookups: Lookups
) -> ColumnElement[int]:
    """Contacts on ``channel`` in the customer's current cap window that this contact must respect."""
    other = OUTBOX.alias("counted")
    other_run = RUN.alias("counted_run")
    starts = {name: t.cap_start for name, t in times.items()}
    ends = {name: t.cap_end for name, t in times.items()}
    counts = (
        select(other.c.customer_id, func.count().label("used"))
        .select_from(
            other.join(other_run, other_run.c.id == other.c.run_id).join(
                CUSTOMER, CUSTOMER.c.id == other.c.customer_id
            )
        )
        .where(
            other.c.channel == channel,
            other.c.state.in_(states.CAP_STATES),
            # the widest window over all zones first (an index range), then each customer's own
            other.c.scheduled_at >= literal(min(starts.values()), UtcDateTime()),
            other.c.scheduled_at < literal(max(ends.values()), UtcDateTime()),
            other.c.scheduled_at >= by_zone(starts, default),
            other.c.scheduled_at < by_zone(ends, default),
            or_(other.c.state != states.QUEUED, other_run.c.priority >= priority),
        )
        .group_by(other.c.customer_id)
    )
    return lookups.value(counts, "cap_used", 0)


def preempt(
    connection: Connection,
    step_run: StepRun,
    channel: str,
    times: dict[str, Any],
    default: str,
    cap: int,
    now: dt.datetime,
) -> None:
    """Queued contacts of lower-priority campaigns that now exceed the cap give way (``over_cap``)."""
    widest = and_(
        OUTBOX.c.channel == channel,
        OUTBOX.c.state == states.QUEUED,
        OUTBOX.c.scheduled_at >= literal(min(t.cap_start for t in times.values()), UtcDateTime()),
        OUTBOX.c.scheduled_at < literal(max(t.cap_end for t in times.values()), UtcDateTime()),
        RUN.c.priority < step_run.campaign.priority,
    )
    weaker = select(OUTBOX.c.id).select_from(OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id)).where(widest)
    if connection.execute(weaker.limit(1)).first() is None:
        return  # nothing of lower priority waits in any of these windows: nothing can give way
    ours = OUTBOX.alias("ours")
    mine = select(ours.c.customer_id).where(
        ours.c.run_id == step_run.run_id, ours.c.step == step_run.step, ours.c.state == states.QUEUED
    )
    start = by_zone({name: t.cap_start for name, t in times.items()}, default)
    end = by_zone({name: t.cap_end for name, t in times.items()}, default)
    in_window = and_(
        OUTBOX.c.customer_id.in_(mine),
        OUTBOX.c.channel == channel,
        OUTBOX.c.state.in_(states.CAP_STATES),
        OUTBOX.c.scheduled_at >= start,
        OUTBOX.c.scheduled_at < end,
    )
    counted = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.state,
            RUN.c.priority,
            func.count().over(partition_by=OUTBOX.c.customer_id).label("used"),
            func.row_number()
            .over(
                partition_by=OUTBOX.c.customer_id,
                order_by=(RUN.c.priority, OUTBOX.c.scheduled_at.desc(), OUTBOX.c.id.desc()),
            )
            .label("weakest"),
        )
        .select_from(
            OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id).join(
                CUSTOMER, CUSTOMER.c.id == OUTBOX.c.customer_id
            )
        )
        .where(in_window)
        .subquery("counted")
    )
    losers = select(counted.c.id).where(
        counted.c.state == states.QUEUED,
        counted.c.priority < step_run.campaign.priority,
        counted.c.weakest <= counted.c.used - cap,
    )
    detail = f"pre-empted by campaign {step_run.key} (priority {step_run.campaign.priority})"
    _mark(connection, losers, states.OVER_CAP, detail, now)


def _mark(connection: Connection, ids: Select[Any], state: str, detail: str, now: dt.datetime) -> int:
    """Give the rows ``ids`` selects their final ``state`` and why; how many."""
    return connection.execute(
        update(OUTBOX).where(OUTBOX.c.id.in_(ids)).values(state=state, detail=detail, updated_at=now)
    ).rowcount


def draw_control(connection: Connection, step_run: StepRun, now: dt.datetime) -> int:
    """Turn the control group of the run (see the module docstring) into ``control``; its size."""
    share = step_run.campaign.control_group
    reachable = and_(
        OUTBOX.c.run_id == step_run.run_id, OUTBOX.c.step == 0, OUTBOX.c.state.in_(REACHABLE_STATES)
    )
    count = connection.execute(select(func.count()).select_from(OUTBOX).where(reachable)).scalar_one()
    size = control_size(share, count)
    if size == 0:
        return 0
    ordered = (
        select(
            OUTBOX.c.id,
            func.row_number()
            .over(order_by=(control_order(step_run.key), OUTBOX.c.customer_id))
            .label("position"),
        )
        .where(reachable)
        .subquery("control_order")
    )
    chosen = select(ordered.c.id).where(ordered.c.position <= size)
    detail = f"control group: {size} of {count} reachable customers ({share:%})"
    _mark(connection, chosen, states.CONTROL, detail, now)
    return size


def test_order(key: str) -> ColumnElement[Any]:
    """Where a customer stands for the A/B test of campaign ``key``: lowest first, tested."""
    return bucket_expression(OUTBOX.c.customer_id, CONTROL_HASH, f"test:{key}")


def hold_for_winner(connection: Connection, step_run: StepRun, now: dt.datetime) -> int:
    """With ``test_share``, hold the rows beyond the test for the A/B winner (``held``); how many.

    The test takes :func:`control_size` (the same rounding) of the reachable
    rows left after the control group, those with the lowest
    ``bucket(customer_id, 65536, 'test:KEY')``, ties by customer id. Of the
    others, the ``queued`` ones are held, without a variant until
    :mod:`engine.runs.winner` gives them the winner; the rest keep their
    reason (``over_cap``, ``outside_window``): they would not be contacted now.
    """
    share = step_run.campaign.test_share
    if share is None:
        return 0
    reachable = and_(
        OUTBOX.c.run_id == step_run.run_id, OUTBOX.c.step == 0, OUTBOX.c.state.in_(REACHABLE_STATES)
    )
    count = connection.execute(select(func.count()).select_from(OUTBOX).where(reachable)).scalar_one()
    tested = control_size(share, count)
    ordered = (
        select(
            OUTBOX.c.id,
            OUTBOX.c.state,
            func.row_number()
            .over(order_by=(test_order(step_run.key), OUTBOX.c.customer_id))
            .label("position"),
        )
        .where(reachable)
        .subquery("test_order")
    )
    rest = select(ordered.c.id).where(ordered.c.position > tested, ordered.c.state == states.QUEUED)
    detail = f"held for the A/B winner: the test takes {tested} of {count} reachable customers ({share:%})"
    return connection.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(rest))
        .values(state=states.HELD, variant=None, detail=detail, updated_at=now)
    ).rowcount


def trim_to_budget(
    connection: Connection, step_run: StepRun, limits: SpendingLimits, now: dt.datetime
) -> None:
    """Contacts past the step's tightest spending limit become ``over_budget``, the lowest ranked first.

    When nothing is left under that limit before the first contact, every
    queued contact of the step is ``over_budget`` and the run's ``detail``
    says the step was skipped and why.
    """
    limit = binding(limits.of(connection, step_run))
    if limit is None:
        return
    this_step = and_(
        OUTBOX.c.run_id == step_run.run_id, OUTBOX.c.step == step_run.step, OUTBOX.c.state == states.QUEUED
    )
    if limit.remaining <= 0:
        skipped = _mark(
            connection, select(OUTBOX.c.id).where(this_step), states.OVER_BUDGET, limit.reason, now
        )
        if skipped:
            what = "skipped" if step_run.step == 0 else f"step {step_run.step} skipped"
            connection.execute(
                update(RUN).where(RUN.c.id == step_run.run_id).values(detail=f"{what}: {limit.reason}")
            )
        return
    running = (
        select(
            OUTBOX.c.id,
            func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts)
            .over(order_by=(OUTBOX.c.rank.desc(), OUTBOX.c.customer_id))
            .label("cumulative"),
        )
        .where(this_step)
        .subquery("running")
    )
    allowed = literal(limit.remaining + SUM_TOLERANCE, Numeric(asdecimal=True))  # no scale: not rounded
    _mark(
        connection,
        select(running.c.id).where(running.c.cumulative > allowed),
        states.OVER_BUDGET,
        limit.reason,
        now,
    )


def spread_calls(
    connection: Connection, config: Config, step_run: StepRun, end_limit: dt.datetime | None, now: dt.datetime
) -> None:
    """Calls beyond a day's capacity move to the next business day, the lowest ranked first."""
    settings = config.settings.channels.call
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    day = step_run.base.astimezone(zone).date()
    this_step = and_(
        OUTBOX.c.run_id == step_run.run_id, OUTBOX.c.step == step_run.step, OUTBOX.c.state == states.QUEUED
    )
    while True:
        end = local_instant(day + dt.timedelta(days=1), dt.time(0), zone)
        on_day = and_(
            OUTBOX.c.channel == "call",
            OUTBOX.c.state.in_((*states.WAITING_STATES, states.SENT, states.DELIVERED)),
            OUTBOX.c.scheduled_at >= local_instant(day, dt.time(0), zone),
            OUTBOX.c.scheduled_at < end,
        )
        others = connection.execute(
            select(func.count()).where(
                on_day, not_(and_(OUTBOX.c.run_id == step_run.run_id, OUTBOX.c.step == step_run.step))
            )
        ).scalar_one()
        mine = connection.execute(select(func.count()).where(on_day, this_step)).scalar_one()
        excess = mine - max(0, settings.capacity_per_day - others)
        if excess <= 0:
            return
        following = local_instant(day + dt.timedelta(days=1), dt.time(0), zone)
        weakest = (
            select(OUTBOX.c.id)
            .where(on_day, this_step)
            .order_by(OUTBOX.c.rank, OUTBOX.c.customer_id.desc())
            .limit(excess)
        )
        if end_limit is not None and following >= end_limit:
            full = "the call centre's capacity is used up until the campaign ends"
            _mark(connection, weakest, states.OUTSIDE_WINDOW, full, now)
            return
        connection.execute(
            update(OUTBOX).where(OUTBOX.c.id.in_(weakest)).values(scheduled_at=following, updated_at=now)
        )
        day += dt.timedelta(days=1)
