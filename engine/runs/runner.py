"""Running campaigns: a firing becomes a ``campaign_run`` and its audience becomes outbox rows.

:func:`start_run` is idempotent on (campaign, scheduled time): a scheduler
that fires twice, two schedulers, or a rerun by hand find the run already
there and change nothing. The run row and its audience are written in one
transaction, so a crash leaves either both or neither. A firing later than
the campaign's ``max_lateness`` is recorded as ``expired`` and contacts
nobody; one outside the campaign's start/end dates is ``skipped``.

:func:`advance` is the housekeeping the scheduler runs every minute: it
materialises later steps once their ``wait`` has passed since the previous
step was sent (with ``only_if`` evaluated then), and closes runs whose every
row is final.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, and_, exists, func, insert, literal, not_, select, update
from sqlalchemy.exc import IntegrityError

from engine.campaigns import CampaignFile, load_campaigns
from engine.clock import utcnow
from engine.config import Config
from engine.models import OUTBOX, RUN
from engine.models import outbox as states
from engine.runs.audience import audience_select
from engine.runs.materialise import StepRun, materialise_step
from engine.settings import parse_duration
from engine.sql import UtcDateTime

TRIGGERED = ("on_segment_entry", "on_event", "anniversary")


@dataclass(frozen=True)
class StepCounts:
    """How the rows of one step ended (or wait), and what the queued and made contacts cost."""

    step: int
    channel: str
    states: dict[str, int]
    cost: Decimal
    later: int = 0  # step 0 queued for later than the firing: quiet hours, local send time, call capacity

    @property
    def audience(self) -> int:
        """Every row of the step, whatever its state."""
        return sum(self.states.values())

    @property
    def contacted(self) -> int:
        """Rows that are or will be contacts: waiting, sent, delivered, bounced."""
        keep = (*states.WAITING_STATES, *states.CONTACTED_STATES)
        return sum(n for state, n in self.states.items() if state in keep)


@dataclass(frozen=True)
class RunSummary:
    """A run and the state of each of its rows."""

    run_id: int
    campaign: str
    state: str
    scheduled_for: dt.datetime
    detail: str | None = None
    steps: list[StepCounts] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """Rows per state over all steps."""
        total: dict[str, int] = defaultdict(int)
        for step in self.steps:
            for state, n in step.states.items():
                total[state] += n
        return dict(total)

    @property
    def cost(self) -> Decimal:
        """Unit cost x contacts of rows that are or will be contacts."""
        return sum((step.cost for step in self.steps), Decimal(0))


def fingerprint(campaign: CampaignFile) -> str:
    """A short hash of the campaign file, kept with each run."""
    return hashlib.sha256(campaign.path.read_bytes()).hexdigest()[:12]


def run_summary(connection: Connection, run_id: int) -> RunSummary:
    """The summary of run ``run_id``."""
    run = connection.execute(select(RUN).where(RUN.c.id == run_id)).one()
    contact_states = (*states.WAITING_STATES, *states.CONTACTED_STATES)
    cost = func.sum(OUTBOX.c.unit_cost * OUTBOX.c.contacts).filter(OUTBOX.c.state.in_(contact_states))
    deferred = func.count().filter(
        OUTBOX.c.step == 0,
        OUTBOX.c.state == states.QUEUED,
        OUTBOX.c.scheduled_at > literal(run.scheduled_for + dt.timedelta(minutes=1), UtcDateTime()),
    )
    rows = connection.execute(
        select(OUTBOX.c.step, OUTBOX.c.channel, OUTBOX.c.state, func.count(), cost, deferred)
        .where(OUTBOX.c.run_id == run_id)
        .group_by(OUTBOX.c.step, OUTBOX.c.channel, OUTBOX.c.state)
        .order_by(OUTBOX.c.step)
    ).all()
    by_step: dict[tuple[int, str], dict[str, int]] = defaultdict(dict)
    costs: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
    later: dict[tuple[int, str], int] = defaultdict(int)
    for step, channel, state, count, money, waiting in rows:
        by_step[(step, channel)][state] = count
        costs[(step, channel)] += Decimal(str(money or 0)).quantize(Decimal("0.01"))
        later[(step, channel)] += waiting
    return RunSummary(
        run_id=run.id,
        campaign=run.campaign,
        state=run.state,
        scheduled_for=run.scheduled_for,
        detail=run.detail,
        steps=[
            StepCounts(k, ch, by_step[(k, ch)], costs[(k, ch)], later[(k, ch)]) for (k, ch) in sorted(by_step)
        ],
    )


def _existing(connection: Connection, key: str, scheduled_for: dt.datetime) -> int | None:
    found: int | None = connection.execute(
        select(RUN.c.id).where(
            RUN.c.campaign == key, RUN.c.scheduled_for == literal(scheduled_for, UtcDateTime())
        )
    ).scalar()
    return found


def _window_start(
    connection: Connection, config: Config, campaign: CampaignFile, before: dt.datetime
) -> dt.datetime:
    """Where a triggered run's window begins: the previous firing, else the campaign's start.

    Never earlier than ``max_lateness`` before the firing: after an outage, entries and
    events older than that are stale and are not acted on, as a late firing is not.
    """
    previous = connection.execute(
        select(func.max(RUN.c.scheduled_for)).where(
            RUN.c.campaign == campaign.key, RUN.c.scheduled_for < literal(before, UtcDateTime())
        )
    ).scalar()
    definition = campaign.campaign
    if previous is None:
        zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
        previous = dt.datetime.combine(definition.start, dt.time(0), zone).astimezone(dt.UTC)
    elif isinstance(previous, str):  # SQLite hands MAX() back as text
        previous = dt.datetime.fromisoformat(previous).replace(tzinfo=dt.UTC)
    if definition.trigger == "anniversary":
        return previous
    return max(previous, before - parse_duration(definition.max_lateness))


def start_run_in(
    connection: Connection,
    config: Config,
    campaign: CampaignFile,
    *,
    scheduled_for: dt.datetime,
    now: dt.datetime,
    expired_reason: str | None = None,
) -> int:
    """Record the run and materialise its first step on ``connection``; return the run id."""
    existing = _existing(connection, campaign.key, scheduled_for)
    if existing is not None:
        return existing
    definition = campaign.campaign
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    day = scheduled_for.astimezone(zone).date()
    state, detail = states.RUN_RUNNING, None
    lateness = parse_duration(definition.max_lateness)
    if expired_reason is not None:
        state, detail = states.RUN_EXPIRED, expired_reason
    elif day < definition.start or (definition.end is not None and day > definition.end):
        state, detail = states.RUN_SKIPPED, f"{day} is outside the campaign's dates"
    elif now - scheduled_for > lateness:
        state = states.RUN_EXPIRED
        detail = (
            f"fired {now - scheduled_for} late, more than max_lateness {definition.max_lateness}: not sent"
        )
    window_start = (
        _window_start(connection, config, campaign, scheduled_for)
        if definition.trigger in TRIGGERED
        else None
    )
    run_id: int = connection.execute(
        insert(RUN)
        .values(
            campaign=campaign.key,
            trigger=definition.trigger,
            scheduled_for=scheduled_for,
            window_start=window_start,
            state=state,
            detail=detail,
            segment=definition.segment,
            strategy=definition.strategy,
            priority=definition.priority,
            steps=len(definition.steps),
            preparation_cost=definition.preparation_cost,
            config_fingerprint=config.fingerprint(),
            campaign_fingerprint=fingerprint(campaign),
            started_at=now,
            finished_at=None if state == states.RUN_RUNNING else now,
        )
        .returning(RUN.c.id)
    ).scalar_one()
    if state != states.RUN_RUNNING:
        return run_id
    source = audience_select(
        definition,
        scheduled_for=scheduled_for,
        window_start=window_start,
        business_day=day,
    )
    step_run = StepRun(run_id, campaign.key, definition, 0, max(scheduled_for, now), day)
    materialise_step(
        connection, config, step_run, source.add_columns(literal(None).label("variant")), now=now
    )
    connection.execute(update(RUN).where(RUN.c.id == run_id).values(state=states.RUN_QUEUED))
    return run_id


def _record_once(
    engine: Engine,
    config: Config,
    campaign: CampaignFile,
    scheduled_for: dt.datetime,
    now: dt.datetime,
    expired_reason: str | None = None,
) -> RunSummary:
    try:
        with engine.begin() as connection:
            run_id = start_run_in(
                connection,
                config,
                campaign,
                scheduled_for=scheduled_for,
                now=now,
                expired_reason=expired_reason,
            )
    except IntegrityError:
        # another scheduler or process recorded the same firing first: theirs stands
        with engine.connect() as connection:
            found = _existing(connection, campaign.key, scheduled_for)
        if found is None:
            raise
        run_id = found
    with engine.connect() as connection:
        return run_summary(connection, run_id)


def start_run(
    engine: Engine,
    config: Config,
    campaign: CampaignFile,
    *,
    scheduled_for: dt.datetime,
    now: dt.datetime | None = None,
) -> RunSummary:
    """Fire ``campaign`` for ``scheduled_for``: record the run and queue its audience, once."""
    return _record_once(engine, config, campaign, scheduled_for, now or utcnow())


def expire_run(
    engine: Engine, config: Config, campaign: CampaignFile, *, scheduled_for: dt.datetime, reason: str
) -> RunSummary:
    """Record a firing that was missed (an outage longer than max_lateness) as ``expired``."""
    return _record_once(engine, config, campaign, scheduled_for, utcnow(), expired_reason=reason)


@dataclass(frozen=True)
class AdvanceSummary:
    """What one round of housekeeping did."""

    steps_materialised: list[tuple[int, int, int]]  # (run, step, rows)
    runs_done: list[int]


def due_for_step(run_id: int, step: int, wait: dt.timedelta, now: dt.datetime) -> Any:
    """Customers whose previous step was contacted at least ``wait`` ago and have no row for ``step`` yet."""
    previous = OUTBOX.alias("previous")
    later = OUTBOX.alias("later")
    return select(previous.c.customer_id, previous.c.variant).where(
        previous.c.run_id == run_id,
        previous.c.step == step - 1,
        previous.c.state.in_(states.CONTACTED_STATES),
        previous.c.sent_at <= literal(now - wait, UtcDateTime()),
        not_(
            exists().where(
                later.c.run_id == run_id, later.c.step == step, later.c.customer_id == previous.c.customer_id
            )
        ),
    )


def advance_in(
    connection: Connection, config: Config, campaigns: dict[str, CampaignFile], now: dt.datetime
) -> AdvanceSummary:
    """Materialise due later steps and close finished runs, on ``connection``."""
    zone = zoneinfo.ZoneInfo(config.settings.engine.timezone)
    materialised: list[tuple[int, int, int]] = []
    runs = connection.execute(
        select(RUN.c.id, RUN.c.campaign, RUN.c.steps).where(RUN.c.state == states.RUN_QUEUED)
    ).all()
    for run_id, key, steps in runs:
        campaign = campaigns.get(key)
        if campaign is None:
            continue
        definition = campaign.campaign
        for k in range(1, min(steps, len(definition.steps))):
            source = due_for_step(run_id, k, definition.steps[k].wait_delta, now)
            due = connection.execute(select(func.count()).select_from(source.subquery())).scalar_one()
            if not due:
                continue
            step_run = StepRun(run_id, key, definition, k, now, now.astimezone(zone).date())
            materialise_step(connection, config, step_run, source, now=now)
            materialised.append((run_id, k, due))
    done = _close_finished(connection, now)
    return AdvanceSummary(materialised, done)


def _close_finished(connection: Connection, now: dt.datetime) -> list[int]:
    """Runs with no waiting row and no contacted row still owed a next step are done."""
    waiting = exists().where(OUTBOX.c.run_id == RUN.c.id, OUTBOX.c.state.in_(states.WAITING_STATES))
    previous = OUTBOX.alias("previous")
    later = OUTBOX.alias("later")
    owed = exists().where(
        previous.c.run_id == RUN.c.id,
        previous.c.step < RUN.c.steps - 1,
        previous.c.state.in_(states.CONTACTED_STATES),
        not_(
            exists().where(
                later.c.run_id == previous.c.run_id,
                later.c.step == previous.c.step + 1,
                later.c.customer_id == previous.c.customer_id,
            )
        ),
    )
    finished = and_(RUN.c.state == states.RUN_QUEUED, not_(waiting), not_(owed))
    ids = list(connection.execute(select(RUN.c.id).where(finished)).scalars())
    if ids:
        connection.execute(
            update(RUN).where(RUN.c.id.in_(ids)).values(state=states.RUN_DONE, finished_at=now)
        )
    return ids


def advance(engine: Engine, config: Config, *, now: dt.datetime | None = None) -> AdvanceSummary:
    """Housekeeping: later steps whose wait has passed, and runs that are finished."""
    campaigns = load_campaigns(config)
    with engine.begin() as connection:
        return advance_in(connection, config, campaigns, now or utcnow())
