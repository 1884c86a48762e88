"""Segments: rules over customers, refreshed inside the database, with membership history.

A segment's rule compiles to one ``SELECT customer.id FROM customer LEFT JOIN
... WHERE ...``. A refresh puts that set and the set of open stays into two
temporary tables, closes the stays of those in the second only (``left_at``),
opens stays for those in the first only (``entered_at``) and records the
counts: all set-based (``EXCEPT``), in one transaction for all segments, in
dependency order (a segment naming ``in_segment('x')`` is
refreshed after ``x``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    Select,
    Table,
    and_,
    func,
    insert,
    literal,
    select,
    update,
)

from engine.clock import utcnow
from engine.errors import NotFoundError
from engine.metrics import business_today
from engine.models import CUSTOMER, MEMBERSHIP, METRICS, REFRESH, SEGMENT
from engine.rules import CustomerScope
from engine.sql import analyze, render

if TYPE_CHECKING:
    from engine.config import Config


_temporary = MetaData()
CANDIDATES = Table(  # who the rule selects now
    "segment_candidates",
    _temporary,
    Column("customer_id", Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)
CURRENT = Table(  # who has an open stay
    "segment_current",
    _temporary,
    Column("customer_id", Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class SegmentRefreshResult:
    """What one segment's refresh did."""

    name: str
    members: int
    entered: int
    left: int


@dataclass(frozen=True)
class SegmentInfo:
    """A configured segment and its last refresh, for listing."""

    name: str
    strategy: str | None
    description: str | None
    rule: str
    members: int | None
    refreshed_at: dt.datetime | None
    stale: bool  # the rule changed since the last refresh


def _rule_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _known(config: Config, name: str) -> None:
    if name not in config.segments:
        raise NotFoundError("segment", name, list(config.segments))


def segment_select(config: Config, name: str, as_of: dt.date | None = None) -> Select[Any]:
    """The compiled query of segment ``name``: the ids of the customers its rule selects."""
    _known(config, name)
    scope = CustomerScope(config.fields, as_of or business_today(config))
    where = config.segments[name].to_sql(scope)
    return scope.select_ids(where)


def segment_sql(config: Config, name: str, dialect: str = "sqlite", as_of: dt.date | None = None) -> str:
    """The SQL of segment ``name`` as the database would run it, values inlined."""
    query = segment_select(config, name, as_of)
    return render(query, "postgresql" if dialect.startswith("postgres") else "sqlite")


def _refresh_one(
    connection: Connection, config: Config, name: str, as_of: dt.date, now: dt.datetime
) -> SegmentRefreshResult:
    """Compare the rule's set with the open stays, as sets: close who left, open who entered."""
    current = and_(MEMBERSHIP.c.segment == name, MEMBERSHIP.c.left_at.is_(None))
    for table in (CANDIDATES, CURRENT):
        connection.execute(table.delete())
    connection.execute(insert(CANDIDATES).from_select(["customer_id"], segment_select(config, name, as_of)))
    connection.execute(
        insert(CURRENT).from_select(["customer_id"], select(MEMBERSHIP.c.customer_id).where(current))
    )
    analyze(connection, CANDIDATES.name, CURRENT.name)  # temporary tables have no statistics before
    gone = select(CURRENT.c.customer_id).except_(select(CANDIDATES.c.customer_id))
    new = select(CANDIDATES.c.customer_id).except_(select(CURRENT.c.customer_id)).subquery("new")
    connection.execute(
        update(MEMBERSHIP).where(current, MEMBERSHIP.c.customer_id.in_(gone)).values(left_at=now)
    )
    connection.execute(
        insert(MEMBERSHIP).from_select(
            ["segment", "customer_id", "entered_at"],
            select(
                literal(name, MEMBERSHIP.c.segment.type),
                new.c.customer_id,
                literal(now, MEMBERSHIP.c.entered_at.type),
            ),
        )
    )
    # counted from the two sets (INSERT ... SELECT reports no row count on every driver)
    members, before, stayed = connection.execute(
        select(
            select(func.count()).select_from(CANDIDATES).scalar_subquery(),
            select(func.count()).select_from(CURRENT).scalar_subquery(),
            select(func.count())
            .select_from(CANDIDATES.join(CURRENT, CURRENT.c.customer_id == CANDIDATES.c.customer_id))
            .scalar_subquery(),
        )
    ).one()
    return SegmentRefreshResult(name=name, members=members, entered=members - stayed, left=before - stayed)


def _upsert_segment(connection: Connection, config: Config, name: str, now: dt.datetime) -> None:
    """Write the segment's row (memberships reference it); its count follows the refresh."""
    rule = config.settings.segments[name].rule
    values = {
        "rule": rule,
        "strategy": config.settings.segments[name].strategy,
        "rule_hash": _rule_hash(rule),
        "refreshed_at": now,
    }
    updated = connection.execute(update(SEGMENT).where(SEGMENT.c.name == name).values(**values)).rowcount
    if not updated:
        connection.execute(insert(SEGMENT).values(name=name, **values))


def refresh_segments(
    engine: Engine,
    config: Config,
    *,
    now: dt.datetime | None = None,
    as_of: dt.date | None = None,
) -> list[SegmentRefreshResult]:
    """Refresh every configured segment, in dependency order, in one transaction.

    Segments no longer in config.toml keep their history; their open stays are closed.
    """
    now = now or utcnow()
    as_of = as_of or business_today(config, now)
    results = []
    with engine.begin() as connection:
        _temporary.create_all(connection, checkfirst=True)
        try:
            for name in config.segment_order:
                _upsert_segment(connection, config, name, now)
                result = _refresh_one(connection, config, name, as_of, now)
                connection.execute(
                    update(SEGMENT).where(SEGMENT.c.name == name).values(members=result.members)
                )
                connection.execute(
                    insert(REFRESH).values(
                        segment=name,
                        refreshed_at=now,
                        entered=result.entered,
                        left=result.left,
                        members=result.members,
                    )
                )
                results.append(result)
            removed = SEGMENT.c.name.not_in(list(config.segments))
            connection.execute(
                update(MEMBERSHIP)
                .where(
                    MEMBERSHIP.c.left_at.is_(None),
                    MEMBERSHIP.c.segment.in_(select(SEGMENT.c.name).where(removed)),
                )
                .values(left_at=now)
            )
            connection.execute(update(SEGMENT).where(removed).values(members=0))
        finally:
            _temporary.drop_all(connection, checkfirst=True)
    return results


def list_segments(engine: Engine, config: Config) -> list[SegmentInfo]:
    """Every configured segment with its member count and last refresh."""
    with engine.connect() as connection:
        stored = {row.name: row for row in connection.execute(select(SEGMENT)).all()}
    infos = []
    for name, section in config.settings.segments.items():
        row = stored.get(name)
        infos.append(
            SegmentInfo(
                name=name,
                strategy=section.strategy,
                description=section.description,
                rule=section.rule,
                members=row.members if row else None,
                refreshed_at=row.refreshed_at if row else None,
                stale=row is not None and row.rule_hash != _rule_hash(section.rule),
            )
        )
    return infos


@dataclass(frozen=True)
class SegmentMember:
    """One current member of a segment, with the fields a marketer looks at first."""

    customer_id: int
    external_id: str | None
    name: str
    email: str | None
    phone: str | None
    abc_class: str | None
    orders_count: int | None
    total_spent: Any
    days_since_last_order: int | None
    entered_at: dt.datetime


def segment_members(
    engine: Engine, config: Config, name: str, *, limit: int = 20
) -> tuple[int, list[SegmentMember]]:
    """The current member count of ``name`` and its first ``limit`` members (by id)."""
    _known(config, name)
    current = and_(MEMBERSHIP.c.segment == name, MEMBERSHIP.c.left_at.is_(None))
    query = (
        select(
            CUSTOMER.c.id,
            CUSTOMER.c.external_id,
            CUSTOMER.c.first_name,
            CUSTOMER.c.last_name,
            CUSTOMER.c.company,
            CUSTOMER.c.email,
            CUSTOMER.c.phone,
            METRICS.c.abc_class,
            METRICS.c.orders_count,
            METRICS.c.total_spent,
            METRICS.c.days_since_last_order,
            MEMBERSHIP.c.entered_at,
        )
        .select_from(
            MEMBERSHIP.join(CUSTOMER, CUSTOMER.c.id == MEMBERSHIP.c.customer_id).outerjoin(
                METRICS, METRICS.c.customer_id == CUSTOMER.c.id
            )
        )
        .where(current)
        .order_by(CUSTOMER.c.id)
        .limit(limit)
    )
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(MEMBERSHIP).where(current)).scalar_one()
        members = [
            SegmentMember(
                customer_id=row.id,
                external_id=row.external_id,
                name=" ".join(p for p in (row.first_name, row.last_name) if p) or (row.company or ""),
                email=row.email,
                phone=row.phone,
                abc_class=row.abc_class,
                orders_count=row.orders_count,
                total_spent=row.total_spent,
                days_since_last_order=row.days_since_last_order,
                entered_at=row.entered_at,
            )
            for row in connection.execute(query).all()
        ]
    return count, members
