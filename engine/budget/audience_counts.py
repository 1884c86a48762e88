"""Who can be reached on which channel, counted per segment with one ``GROUP BY``.

The budget needs, for each campaign and step, how many members of the
campaign's segment can be contacted on the step's channel: consent for the
channel, an address (email, phone, postal address) and not suppressed. One
query over the current memberships of every segment involved answers it for
all campaigns at once: it groups the members by segment and by the set of
channels they can be reached on (a *pattern*), so each campaign's figures are
sums over a handful of rows, whatever the number of customers.

The same counts taken over the audience a triggered campaign really had in
an earlier period (its step-0 outbox rows) plan it from its observed rate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, or_, select, true
from sqlalchemy.sql import Select

from engine.campaigns.materialise import CONSENT, OUTBOX, RECIPIENT, RUN, SUPPRESSION
from engine.catalogue import CUSTOMER, MEMBERSHIP
from engine.models import UtcDateTime
from engine.models import outbox as states

Pattern = frozenset[str]


@dataclass
class Reach:
    """Members of one population by the channels they can be reached on."""

    patterns: dict[Pattern, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def members(self) -> int:
        """Every member, reachable or not."""
        return sum(self.patterns.values())

    def reachable(self, *channels: str) -> int:
        """Members reachable on every one of ``channels``."""
        wanted = set(channels)
        return sum(n for pattern, n in self.patterns.items() if wanted <= pattern)


def _recipient(channel: str) -> ColumnElement[Any]:
    if channel in RECIPIENT:
        return CUSTOMER.c[RECIPIENT[channel]]
    name = func.trim(func.coalesce(CUSTOMER.c.first_name, "") + " " + func.coalesce(CUSTOMER.c.last_name, ""))
    return func.coalesce(CUSTOMER.c.company, name)


def _reachable(channel: str, joins: list[tuple[Any, ColumnElement[bool]]]) -> ColumnElement[bool]:
    """Consent, an address and no suppression on ``channel``, as the runner decides it."""
    recipient = _recipient(channel)
    consent = CUSTOMER.c[CONSENT[channel]].is_(True) if channel in CONSENT else true()
    listed = SUPPRESSION.c.channel == channel
    by_customer = (
        select(SUPPRESSION.c.customer_id)
        .where(listed, SUPPRESSION.c.customer_id.is_not(None))
        .distinct()
        .subquery(f"suppressed_{channel}_customer")
    )
    joins.append((by_customer, by_customer.c.customer_id == CUSTOMER.c.id))
    suppressed: ColumnElement[bool] = by_customer.c.customer_id.is_not(None)
    if channel != "meeting":
        by_address = select(SUPPRESSION.c.address).where(listed).distinct().subquery(f"suppressed_{channel}")
        joins.append((by_address, by_address.c.address == recipient))
        suppressed = or_(suppressed, by_address.c.address.is_not(None))
    return and_(consent, recipient.is_not(None), recipient != "", ~suppressed)


def _grouped(
    connection: Connection, source: Any, key: ColumnElement[Any], where: Any, channels: Sequence[str]
) -> dict[str, Reach]:
    joins: list[tuple[Any, ColumnElement[bool]]] = []
    flags = [
        case((_reachable(channel, joins), literal(1)), else_=literal(0)).label(f"reach_{channel}")
        for channel in channels
    ]
    for table, on in joins:
        source = source.outerjoin(table, on)
    query: Select[Any] = (
        select(key.label("population"), *flags, func.count().label("members"))
        .select_from(source)
        .where(where)
        .group_by(key, *flags)
    )
    found: dict[str, Reach] = defaultdict(Reach)
    for row in connection.execute(query):
        population, *reach, members = row
        pattern = frozenset(ch for ch, flag in zip(channels, reach, strict=True) if flag)
        found[str(population)].patterns[pattern] += members
    return found


def segment_reach(
    connection: Connection, segments: Iterable[str], channels: Iterable[str]
) -> dict[str, Reach]:
    """Current members of each of ``segments`` by the ``channels`` they can be reached on (one query)."""
    wanted, used = sorted(set(segments)), sorted(set(channels))
    if not wanted:
        return {}
    source = MEMBERSHIP.join(CUSTOMER, CUSTOMER.c.id == MEMBERSHIP.c.customer_id)
    where = and_(MEMBERSHIP.c.segment.in_(wanted), MEMBERSHIP.c.left_at.is_(None))
    found = _grouped(connection, source, MEMBERSHIP.c.segment, where, used)
    return {segment: found.get(segment, Reach()) for segment in wanted}


def observed_reach(
    connection: Connection, campaigns: Iterable[str], channels: Iterable[str], start: Any, end: Any
) -> tuple[dict[str, Reach], dict[str, int]]:
    """The step-0 audience each campaign had in runs fired in [start, end), by reach; and its run count.

    Every audience row counts (a customer picked up twice by an event campaign counts twice).
    """
    wanted, used = sorted(set(campaigns)), sorted(set(channels))
    if not wanted:
        return {}, {}
    fired = and_(
        RUN.c.campaign.in_(wanted),
        RUN.c.scheduled_for >= literal(start, UtcDateTime()),
        RUN.c.scheduled_for < literal(end, UtcDateTime()),
        RUN.c.state.in_((states.RUN_QUEUED, states.RUN_DONE)),
    )
    source = OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id).join(
        CUSTOMER, CUSTOMER.c.id == OUTBOX.c.customer_id
    )
    found = _grouped(connection, source, RUN.c.campaign, and_(fired, OUTBOX.c.step == 0), used)
    counted = connection.execute(select(RUN.c.campaign, func.count()).where(fired).group_by(RUN.c.campaign))
    runs = {str(key): int(n) for key, n in counted}
    return {key: found[key] for key in wanted if key in found}, runs
