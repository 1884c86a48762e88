"""Tiers: each account's level from its qualifying activity, with the programme's downgrade policy.

**Qualifying value.** ``tier_qualify = "spend"``: the ``amount`` of earn and
clawback entries (a clawback carries the refunded amount, negative);
``"points"``: the points of earn and clawback entries on lots earned by a
purchase or an event. Transfers, merges, adjustments, returns and
redemptions never qualify. The window (``tier_window`` or a tier's short
form ``min_spend_365d``):

* a duration such as ``365d``: rolling, ``(now - 365d, now]``;
* ``calendar_month|quarter|year``: the calendar periods of the programme's
  zone. The value is the larger of the *last completed* period and the
  *current* one so far: a status earned in one year holds through the next
  (it is reviewed when that year ends), and reaching a threshold during the
  current year upgrades at once.

**Target tier**: the highest tier whose threshold the value reaches (a tier
at threshold 0 is everyone's floor); None below every tier.

**Changes.** An upgrade applies at once. A downgrade follows ``downgrade``:
``recompute`` goes straight to the target; ``one_level`` goes one tier down
per recompute (daily), never below the target; ``grace`` first sets
``grace_until`` = now + ``grace_days`` and downgrades to the target once that
has passed with the value still short (back at or above the tier, the grace
is cleared). A manual override (:func:`set_tier_override`) holds the account
at its tier until ``override_until``; then the tier is recomputed straight to
the target, whatever the policy. Every change of tier appends a
``loyalty_tier_change`` row and sets ``tier`` and ``tier_since``.

The values come from one ``GROUP BY`` per chunk of accounts; only accounts
whose tier, grace or override may change reach Python.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    update,
)

from engine.clock import utcnow
from engine.db import write_transaction
from engine.errors import LoyaltyError
from engine.loyalty.batch import batch_sql
from engine.loyalty.ledger import (
    customer_label,
    customer_label_sql,
    ensure_account,
    lock_accounts,
    record_tier_changes,
)
from engine.loyalty.programme import Programme, shifted
from engine.models import ACCOUNT, CLAWBACK, CUSTOMER, EARN, ENTRY, LOT
from engine.settings import TIER_WINDOWS

#: accounts per transaction
CHUNK = 5000
#: lots whose points qualify for a points tier
QUALIFYING_SOURCES = ("purchase", "event")
#: who the batch's tier changes are recorded as made by
BATCH_ACTOR = "batch"

# reasons recorded on loyalty_tier_change
QUALIFIED = "qualified"
DOWNGRADE = "downgrade"
DOWNGRADE_ONE_LEVEL = "downgrade one level"
DOWNGRADE_AFTER_GRACE = "downgrade after grace"
OVERRIDE_ENDED = "override ended"
TIER_REMOVED = "tier no longer in the programme"


@dataclass(frozen=True)
class Window:
    """Instants of qualifying activity: from ``start`` to ``end``, each end in or out."""

    start: dt.datetime
    end: dt.datetime
    start_included: bool
    end_included: bool

    def holds(self, column: Any) -> ColumnElement[bool]:
        """SQL: ``column`` falls in the window."""
        start, end = batch_sql.at(self.start), batch_sql.at(self.end)
        after = column >= start if self.start_included else column > start
        before = column <= end if self.end_included else column < end
        return and_(after, before)


def period_start(day: dt.date, kind: str) -> dt.date:
    """The first day of the month, quarter or year (``kind``) that contains ``day``."""
    if kind == "year":
        return dt.date(day.year, 1, 1)
    months = 3 if kind == "quarter" else 1
    return dt.date(day.year, (day.month - 1) // months * months + 1, 1)


def qualifying_windows(programme: Programme, now: dt.datetime) -> tuple[Window, Window | None]:
    """The current window, and for calendar windows the last completed period (None when rolling)."""
    window = programme.settings.qualify_window
    if window not in TIER_WINDOWS:
        # a rolling window in days is calendar days: the same local time that many days before now
        return Window(shifted(now, window, programme.zone, sign=-1), now, False, True), None
    kind = window.removeprefix("calendar_")
    first = period_start(programme.local_day(now), kind)
    previous = period_start(first - dt.timedelta(days=1), kind)
    start = programme.day_start(first)
    return Window(start, now, True, True), Window(programme.day_start(previous), start, True, False)


def _units(programme: Programme, value: Decimal) -> int:
    """A qualifying value in the units SQL sums (cents of spend, or points), rounded up."""
    return math.ceil(value * 100) if programme.settings.qualify == "spend" else math.ceil(value)


def _value(programme: Programme, units: int) -> Decimal:
    return Decimal(units) / 100 if programme.settings.qualify == "spend" else Decimal(units)


def _standings(programme: Programme, now: dt.datetime, scope: Sequence[ColumnElement[bool]]) -> Select[Any]:
    """Per account of ``scope``: its tier columns, qualifying ``current``/``previous`` (units), ``target``."""
    current, previous = qualifying_windows(programme, now)
    earliest = previous.start if previous is not None else current.start
    if programme.settings.qualify == "spend":
        unit: ColumnElement[Any] = cast(func.round(ENTRY.c.amount * 100), BigInteger)
        source: Any = ENTRY
        only: list[ColumnElement[bool]] = []
    else:
        unit = ENTRY.c.points
        source = ENTRY.join(LOT, LOT.c.id == ENTRY.c.lot_id)
        only = [LOT.c.source.in_(QUALIFYING_SOURCES)]
    previous_sum: ColumnElement[Any] = (
        func.sum(case((previous.holds(ENTRY.c.posted_at), unit), else_=0))
        if previous is not None
        else literal(0)
    )
    members = select(ACCOUNT.c.id).where(*scope)
    sums = (
        select(
            ENTRY.c.account_id,
            func.sum(case((current.holds(ENTRY.c.posted_at), unit), else_=0)).label("current"),
            previous_sum.label("previous"),
        )
        .select_from(source)
        .where(
            ENTRY.c.account_id.in_(members),
            ENTRY.c.kind.in_((EARN, CLAWBACK)),
            ENTRY.c.posted_at >= batch_sql.at(earliest),
            ENTRY.c.posted_at <= batch_sql.at(now),
            *only,
        )
        .group_by(ENTRY.c.account_id)
        .subquery()
    )
    now_units = func.coalesce(sums.c.current, 0)
    before_units = func.coalesce(sums.c.previous, 0)
    reached = [
        (
            or_(now_units >= _units(programme, t.threshold), before_units >= _units(programme, t.threshold)),
            t.name,
        )
        for t in reversed(programme.tiers)
    ]
    target: ColumnElement[Any] = (
        case(*[(condition, literal(name, String)) for condition, name in reached], else_=null())
        if reached
        else null()
    )
    return (
        select(
            ACCOUNT.c.id,
            ACCOUNT.c.customer_id,
            ACCOUNT.c.tier,
            now_units.label("current"),
            before_units.label("previous"),
            target.label("target"),
        )
        .select_from(ACCOUNT.outerjoin(sums, sums.c.account_id == ACCOUNT.c.id))
        .where(*scope)
    )


@dataclass(frozen=True)
class TierChange:
    """One change of an account's tier, as recorded in ``loyalty_tier_change``."""

    id: int
    account: int
    customer: str
    from_tier: str | None
    to_tier: str | None
    reason: str
    qualifying: Decimal | None
    actor: str | None
    until: dt.datetime | None
    changed_at: dt.datetime


@dataclass
class TierResult:
    """What :func:`recompute_tiers` did."""

    accounts: int = 0  # accounts looked at
    upgraded: int = 0
    downgraded: int = 0
    grace_started: int = 0
    grace_cleared: int = 0
    overrides_ended: int = 0
    changes: list[int] = field(default_factory=list)  # ids of the loyalty_tier_change rows added


@dataclass(frozen=True)
class TierDecision:
    """What :func:`decide` makes of one account: columns to set, and the new tier with its reason (if any)."""

    values: dict[str, Any]
    to_tier: str | None = None
    reason: str | None = None  # set when the tier changes


def decide(
    programme: Programme, account: Row[Any], target: str | None, now: dt.datetime
) -> TierDecision | None:
    """The policy: what becomes of ``account`` (read under its lock) whose activity reaches ``target``.

    None when nothing changes.
    """
    current = account.tier
    if account.tier_override is not None:
        if account.override_until is None or account.override_until > now:
            if current != account.tier_override:
                return TierDecision({}, account.tier_override, "override")
            return None
        cleared = {"tier_override": None, "override_until": None, "grace_until": None}
        if target != current:
            return TierDecision(cleared, target, OVERRIDE_ENDED)
        return TierDecision(cleared)
    ranks = {tier.name: n for n, tier in enumerate(programme.tiers)}
    if current is not None and current not in ranks:
        return TierDecision({"grace_until": None}, target, TIER_REMOVED)
    have = ranks[current] if current is not None else -1
    want = ranks[target] if target is not None else -1
    if want > have:
        return TierDecision({"grace_until": None}, target, QUALIFIED)
    if want == have:
        return TierDecision({"grace_until": None}) if account.grace_until is not None else None
    policy = programme.settings.downgrade
    if policy == "recompute":
        return TierDecision({}, target, DOWNGRADE)
    if policy == "one_level":
        return TierDecision({}, programme.tiers[have - 1].name if have > 0 else None, DOWNGRADE_ONE_LEVEL)
    if account.grace_until is None:
        until = now + dt.timedelta(days=programme.settings.grace_days)
        if until > now:
            return TierDecision({"grace_until": until})
    elif account.grace_until > now:
        return None
    return TierDecision({"grace_until": None}, target, DOWNGRADE_AFTER_GRACE)


def _members(programme: Programme) -> list[ColumnElement[bool]]:
    return [ACCOUNT.c.programme == programme.name, ACCOUNT.c.merged_into_id.is_(None)]


def recompute_tiers(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> TierResult:
    """Recompute every account's tier as of ``now`` (see the module's rules); returns what changed."""
    now = now or utcnow()
    result = TierResult()
    last = 0
    while True:
        with write_transaction(engine) as connection:
            ids = list(
                connection.execute(
                    select(ACCOUNT.c.id)
                    .where(*_members(programme), ACCOUNT.c.id > last)
                    .order_by(ACCOUNT.c.id)
                    .limit(CHUNK)
                ).scalars()
            )
            if not ids:
                return result
            result.accounts += len(ids)
            _recompute_chunk(connection, programme, now, ids[0], ids[-1], result)
        last = ids[-1]


def _recompute_chunk(
    connection: Connection, programme: Programme, now: dt.datetime, low: int, high: int, result: TierResult
) -> None:
    standings = _standings(programme, now, [*_members(programme), ACCOUNT.c.id.between(low, high)]).subquery()
    may_change = or_(
        standings.c.target.is_distinct_from(standings.c.tier),
        ACCOUNT.c.grace_until.is_not(None),
        ACCOUNT.c.tier_override.is_not(None),
    )
    found = {
        int(row.id): row
        for row in connection.execute(
            select(standings)
            .select_from(standings.join(ACCOUNT, ACCOUNT.c.id == standings.c.id))
            .where(may_change)
            .order_by(standings.c.id)
        )
    }
    if not found:
        return
    locked = lock_accounts(connection, found)
    ranks = {tier.name: n for n, tier in enumerate(programme.tiers)}
    updates: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for account_id, standing in found.items():
        account = locked[account_id]
        decision = decide(programme, account, standing.target, now)
        if decision is None:
            continue
        values = {
            "tier": account.tier,
            "tier_since": account.tier_since,
            "tier_override": account.tier_override,
            "override_until": account.override_until,
            "grace_until": account.grace_until,
            **decision.values,
        }
        _count(result, ranks, account, decision)
        if decision.reason is not None and decision.to_tier != account.tier:
            values.update(tier=decision.to_tier, tier_since=now, grace_until=None)
            qualifying = max(int(standing.current), int(standing.previous))
            changes.append(
                {
                    "account_id": account_id,
                    "from_tier": account.tier,
                    "to_tier": decision.to_tier,
                    "reason": decision.reason,
                    "qualifying": _value(programme, qualifying),
                    "actor": BATCH_ACTOR,
                    "until": values["override_until"],
                    "changed_at": now,
                }
            )
        updates.append({"account": account_id, **{f"new_{k}": v for k, v in values.items()}})
    if updates:
        connection.execute(
            update(ACCOUNT)
            .where(ACCOUNT.c.id == bindparam("account"))
            .values(
                {
                    **{
                        ACCOUNT.c[name]: bindparam(f"new_{name}", type_=ACCOUNT.c[name].type)
                        for name in _COLUMNS
                    },
                    ACCOUNT.c.updated_at: batch_sql.at(now),
                }
            ),
            updates,
        )
    result.changes += record_tier_changes(connection, changes)


_COLUMNS = ("tier", "tier_since", "tier_override", "override_until", "grace_until")


def _count(result: TierResult, ranks: dict[str, int], account: Row[Any], decision: TierDecision) -> None:
    if account.tier_override is not None and decision.values.get("tier_override", "") is None:
        result.overrides_ended += 1
    if decision.reason is not None:
        before = ranks.get(account.tier, -1) if account.tier is not None else -1
        after = ranks.get(decision.to_tier, -1) if decision.to_tier is not None else -1
        result.upgraded += after > before
        result.downgraded += after < before
    elif decision.values.get("grace_until") is not None:
        result.grace_started += 1
    elif account.grace_until is not None and account.tier_override is None:
        result.grace_cleared += 1


def set_tier_override(
    engine: Engine,
    programme: Programme,
    customer_id: int,
    tier: str,
    *,
    until: dt.datetime,
    reason: str,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> TierChange:
    """Hold the customer's account at ``tier`` until ``until`` (a status match, a goodwill gesture).

    The account is opened if the customer has none. The change is recorded
    with ``reason`` and ``actor``; when ``until`` passes, the daily
    recompute puts the account at the tier its activity reaches.
    """
    now = now or utcnow()
    programme.tier(tier)  # an unknown tier lists the known ones
    if not reason.strip():
        raise LoyaltyError("a manual tier needs a reason (e.g. --reason 'status match from another airline')")
    if until.tzinfo is None:
        raise LoyaltyError(f"the end of a manual tier needs a time zone, got {until.isoformat()}")
    if until <= now:
        raise LoyaltyError(f"a manual tier must end in the future, got {until.isoformat()}")
    with write_transaction(engine) as connection:
        account_id = ensure_account(connection, programme.name, customer_id, now)
        account = lock_accounts(connection, [account_id])[account_id]
        if account.merged_into_id is not None:
            raise LoyaltyError(f"account {account_id} was merged into account {account.merged_into_id}")
        values: dict[str, Any] = {
            "tier_override": tier,
            "override_until": until,
            "grace_until": None,
            "tier": tier,
            "updated_at": now,
        }
        if account.tier != tier:
            values["tier_since"] = now
        connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(**values))
        change = {
            "account_id": account_id,
            "from_tier": account.tier,
            "to_tier": tier,
            "reason": reason.strip(),
            "qualifying": None,
            "actor": actor,
            "until": until,
            "changed_at": now,
        }
        [change_id] = record_tier_changes(connection, [change])
        label = customer_label(connection, account_id)
    return TierChange(
        change_id, account_id, label, account.tier, tier, reason.strip(), None, actor, until, now
    )


@dataclass(frozen=True)
class TierStanding:
    """An account's tier next to what its activity reaches (``crm loyalty tiers``)."""

    customer: str
    account: int
    tier: str | None
    tier_since: dt.datetime | None
    qualifying: Decimal
    target: str | None
    override_until: dt.datetime | None
    grace_until: dt.datetime | None


@dataclass
class TierReport:
    """Accounts per tier, and the standings of some accounts."""

    programme: str
    qualify: str  # spend or points
    window: str
    counts: dict[str, int] = field(default_factory=dict)  # tier name ("-" for none) -> accounts
    accounts: list[TierStanding] = field(default_factory=list)


def tier_report(
    engine: Engine,
    programme: Programme,
    *,
    now: dt.datetime | None = None,
    customer_id: int | None = None,
    limit: int | None = 20,
) -> TierReport:
    """How many accounts hold each tier, and the first ``limit`` accounts (or one customer's) in detail."""
    now = now or utcnow()
    report = TierReport(programme.name, programme.settings.qualify, programme.settings.qualify_window)
    scope = _members(programme)
    if customer_id is not None:
        scope.append(ACCOUNT.c.customer_id == customer_id)
    counted = list(scope)
    if limit is not None:  # only the accounts shown have their activity summed
        scope.append(ACCOUNT.c.id.in_(select(ACCOUNT.c.id).where(*scope).order_by(ACCOUNT.c.id).limit(limit)))
    label = customer_label_sql()
    with engine.connect() as connection:
        for tier, count in connection.execute(
            select(ACCOUNT.c.tier, func.count()).where(*counted).group_by(ACCOUNT.c.tier)
        ):
            report.counts[tier or "-"] = int(count)
        inner = _standings(programme, now, scope).subquery()
        rows = connection.execute(
            select(
                inner,
                label.label("customer"),
                ACCOUNT.c.tier_since,
                ACCOUNT.c.override_until,
                ACCOUNT.c.grace_until,
            )
            .select_from(
                inner.join(ACCOUNT, ACCOUNT.c.id == inner.c.id).join(
                    CUSTOMER, CUSTOMER.c.id == ACCOUNT.c.customer_id
                )
            )
            .order_by(inner.c.id)
        )
        for row in rows:
            override = row.override_until if row.override_until and row.override_until > now else None
            report.accounts.append(
                TierStanding(
                    customer=row.customer,
                    account=int(row.id),
                    tier=row.tier,
                    tier_since=row.tier_since,
                    qualifying=_value(programme, max(int(row.current), int(row.previous))),
                    target=row.target,
                    override_until=override,
                    grace_until=row.grace_until,
                )
            )
    return report
