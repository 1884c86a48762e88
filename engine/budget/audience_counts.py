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

from sqlalchemy import ColumnElement, Connection, and_, case, func, literal, not_, select
from sqlalchemy.sql import Select

from engine.contact_policy import Lookups, consent_expression, recipient_expression, suppressed_expression
from engine.models import CUSTOMER, MEMBERSHIP, OUTBOX, RUN, SUPPRESSION
from engine.models import outbox as states
from engine.sql import UtcDateTime

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


def _reachable(channel: str, listed: set[str], lookups: Lookups) -> ColumnElement[bool]:
    """Consent, an address and no suppression on ``channel``: the runner's own expressions.

    The suppression list is looked up only for channels it has entries for.
    """
    recipient = recipient_expression(channel)
    reachable = and_(consent_expression(channel), recipient.is_not(None), recipient != "")
    if channel not in listed:
        return reachable
    suppressed = suppressed_expression(channel, recipient, lookups, name=f"suppressed_{channel}")
    return and_(reachable, not_(suppressed))


def _reach_codes(connection: Connection, channels: Sequence[str], *, every_customer: bool) -> Any:
    """Each customer once, with a code: bit ``i`` set when reachable on ``channels[i]``.

    ``every_customer``: the population covers most customers (segment memberships), so
    the codes are computed once per customer into a materialised CTE and the
    memberships join it, rather than repeating the consent and suppression lookups
    once per membership. A small population (last period's audience) joins the
    lookups directly.
    """
    listed = set(connection.execute(select(SUPPRESSION.c.channel).distinct()).scalars())
    lookups = Lookups()
    code: ColumnElement[Any] = literal(0)
    for bit, channel in enumerate(channels):
        code = code + case((_reachable(channel, listed, lookups), literal(1 << bit)), else_=literal(0))
    codes = select(CUSTOMER.c.id.label("customer_id"), code.label("code")).select_from(lookups.join(CUSTOMER))
    if every_customer:
        return codes.cte("reach").prefix_with("MATERIALIZED")
    return codes.subquery("reach")


def _grouped(
    connection: Connection,
    source: Any,
    customer_id: ColumnElement[Any],
    key: ColumnElement[Any],
    where: Any,
    channels: Sequence[str],
    *,
    every_customer: bool,
) -> dict[str, Reach]:
    reach = _reach_codes(connection, channels, every_customer=every_customer)
    query: Select[Any] = (
        select(key.label("population"), reach.c.code, func.count().label("members"))
        .select_from(source.join(reach, reach.c.customer_id == customer_id))
        .where(where)
        .group_by(key, reach.c.code)
    )
    found: dict[str, Reach] = defaultdict(Reach)
    for population, code, members in connection.execute(query):
        pattern = frozenset(ch for bit, ch in enumerate(channels) if int(code) & (1 << bit))
        found[str(population)].patterns[pattern] += members
    return found


def segment_reach(
    connection: Connection, segments: Iterable[str], channels: Iterable[str]
) -> dict[str, Reach]:
    """Current members of each of ``segments`` by the ``channels`` they can be reached on (one query)."""
    wanted, used = sorted(set(segments)), sorted(set(channels))
    if not wanted:
        return {}
    where = and_(MEMBERSHIP.c.segment.in_(wanted), MEMBERSHIP.c.left_at.is_(None))
    found = _grouped(
        connection,
        MEMBERSHIP,
        MEMBERSHIP.c.customer_id,
        MEMBERSHIP.c.segment,
        where,
        used,
        every_customer=True,
    )
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
    source = OUTBOX.join(RUN, RUN.c.id == OUTBOX.c.run_id)
    step_0 = and_(fired, OUTBOX.c.step == 0)
    found = _grouped(
        connection, source, OUTBOX.c.customer_id, RUN.c.campaign, step_0, used, every_customer=False
    )
    counted = connection.execute(select(RUN.c.campaign, func.count()).where(fired).group_by(RUN.c.campaign))
    runs = {str(key): int(n) for key, n in counted}
    return {key: found[key] for key in wanted if key in found}, runs
