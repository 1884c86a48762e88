"""Customer events from the ledger, for campaigns to fire on (``on_event = "loyalty.tier_changed"``).

* ``loyalty.points_expiring``: a lot with points left expires within one of
  the programme's ``expiry_notice_days``. Each lot is announced once per
  notice, for the tightest notice it falls in when the batch sees it: with
  ``[30, 7]`` a lot 20 days from expiry gets the 30-day event, later the
  7-day one; a lot first seen 5 days from expiry gets only the 7-day event.
  Key ``expiring:<programme>:<lot>:<days>``; data ``programme``, ``lot``,
  ``points``, ``expires_at`` (ISO, UTC), ``days``; it occurs at the batch's time.
* ``loyalty.tier_changed``: each row of ``loyalty_tier_change`` that changed
  the tier (batch, manual override, merge). Key
  ``tier:<programme>:<tier change id>``; data ``programme``, ``from``, ``to``,
  ``reason``; it occurs when the tier changed.

Events go into ``customer_event`` (source ``loyalty``) with ``INSERT ...
SELECT ... WHERE NOT EXISTS`` on the key, in chunks: a second run adds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    Select,
    String,
    cast,
    insert,
    literal,
    select,
)

from engine.clock import utcnow
from engine.loyalty.batch import batch_sql
from engine.loyalty.programme import Programme
from engine.models import ACCOUNT, EVENT, LOT, TIER_CHANGE
from engine.sql import IsoUtc, json_object, typed_text

SOURCE = "loyalty"
POINTS_EXPIRING = "loyalty.points_expiring"
TIER_CHANGED = "loyalty.tier_changed"
#: rows per INSERT ... SELECT
CHUNK = 10_000


@dataclass
class EventsResult:
    """Events added by :func:`post_events`."""

    points_expiring: int = 0
    tier_changed: int = 0


def _missing(key: ColumnElement[str]) -> ColumnElement[bool]:
    return batch_sql.absent(select(EVENT.c.id).where(EVENT.c.source == SOURCE, EVENT.c.key == key))


def _insert_in_chunks(engine: Engine, id_column: Any, rows: Select[Any]) -> int:
    """Insert the events ``rows`` selects, by ranges of ``id_column`` of ``CHUNK`` rows; returns how many."""
    columns = ["customer_id", "name", "occurred_at", "source", "key", "data", "recorded_at"]
    added, last = 0, 0
    while True:
        with engine.begin() as connection:
            ids = list(
                connection.execute(
                    rows.with_only_columns(id_column).where(id_column > last).order_by(id_column).limit(CHUNK)
                ).scalars()
            )
            if not ids:
                return added
            chunk = rows.where(id_column.between(ids[0], ids[-1]))
            added += len(
                connection.execute(insert(EVENT).from_select(columns, chunk).returning(EVENT.c.id)).all()
            )
        last = ids[-1]


def expiring_events(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> int:
    """Add ``loyalty.points_expiring`` for lots expiring within the notice days; returns how many."""
    now = now or utcnow()
    notices = programme.settings.expiry_notice_days  # longest first
    added = 0
    for n, days in enumerate(notices):
        shorter = notices[n + 1] if n + 1 < len(notices) else 0
        key = batch_sql.key(f"expiring:{programme.name}:", LOT.c.id, f":{days}")
        data = json_object(
            programme=typed_text(programme.name),
            lot=LOT.c.id,
            points=LOT.c.remaining,
            expires_at=IsoUtc(LOT.c.expires_at),
            days=cast(literal(days, Integer), Integer),
        )
        rows = (
            select(
                ACCOUNT.c.customer_id,
                literal(POINTS_EXPIRING, String),
                batch_sql.at(now),
                literal(SOURCE, String),
                key,
                data,
                batch_sql.at(utcnow()),
            )
            .select_from(LOT.join(ACCOUNT, ACCOUNT.c.id == LOT.c.account_id))
            .where(
                ACCOUNT.c.programme == programme.name,
                ACCOUNT.c.merged_into_id.is_(None),
                LOT.c.remaining > 0,
                LOT.c.expires_at > batch_sql.at(now + dt.timedelta(days=shorter)),
                LOT.c.expires_at <= batch_sql.at(now + dt.timedelta(days=days)),
                _missing(key),
            )
        )
        added += _insert_in_chunks(engine, LOT.c.id, rows)
    return added


def tier_events(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> int:
    """Add ``loyalty.tier_changed`` per tier change up to ``now`` not announced yet; returns how many."""
    now = now or utcnow()
    key = batch_sql.key(f"tier:{programme.name}:", TIER_CHANGE.c.id)
    data = json_object(
        programme=typed_text(programme.name),
        **{"from": TIER_CHANGE.c.from_tier, "to": TIER_CHANGE.c.to_tier},
        reason=TIER_CHANGE.c.reason,
    )
    rows = (
        select(
            ACCOUNT.c.customer_id,
            literal(TIER_CHANGED, String),
            TIER_CHANGE.c.changed_at,
            literal(SOURCE, String),
            key,
            data,
            batch_sql.at(utcnow()),
        )
        .select_from(TIER_CHANGE.join(ACCOUNT, ACCOUNT.c.id == TIER_CHANGE.c.account_id))
        .where(
            ACCOUNT.c.programme == programme.name,
            TIER_CHANGE.c.changed_at <= batch_sql.at(now),
            TIER_CHANGE.c.from_tier.is_distinct_from(TIER_CHANGE.c.to_tier),
            _missing(key),
        )
    )
    return _insert_in_chunks(engine, TIER_CHANGE.c.id, rows)


def post_events(engine: Engine, programme: Programme, *, now: dt.datetime | None = None) -> EventsResult:
    """Both kinds of event, as of ``now``."""
    now = now or utcnow()
    return EventsResult(expiring_events(engine, programme, now=now), tier_events(engine, programme, now=now))
